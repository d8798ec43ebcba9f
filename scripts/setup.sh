#!/usr/bin/env bash
# Installs what the test suite needs beyond the Rust toolchain, when it is missing:
#   - clippy and rustfmt (rustup components);
#   - Node.js and npm (Debian packages) for the interop, browser, OpenID and conformance suites;
#   - Debian's Chromium at /usr/bin/chromium for the browser tests (Playwright cannot fetch a browser
#     without internet access, so playwright-core drives the system one);
#   - procps (pkill) for the gateway's fault tests;
#   - PostgreSQL's server binaries (Debian's `postgresql`) for the authorization server's PostgreSQL
#     store tests, which start a throwaway server of their own (tests/src/postgres.rs);
#   - Redis (Debian's `redis-server`) for the scale-out tests, which start their own (tests/src/redis.rs).
# Node packages are installed by each suite from its package-lock.json (`npm ci`), not here.
# Debian packages need root: the script uses sudo when it is not run as root.
# Idempotent: on a machine that has everything it changes nothing.
set -euo pipefail

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

APT_UPDATED=0
apt_install() {
  if ((APT_UPDATED == 0)); then
    as_root apt-get update -qq
    APT_UPDATED=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

if command -v rustup >/dev/null; then
  rustup component add clippy rustfmt >/dev/null 2>&1 || true
fi
command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm
[[ -x /usr/bin/chromium ]] || apt_install chromium
# pkill (the gateway test kills a stdio upstream mid-call by its command line).
command -v pkill >/dev/null || apt_install procps
# initdb, pg_ctl and postgres under /usr/lib/postgresql/N/bin (not on PATH), and the `postgres` user
# they run as when the tests run as root. Only the binaries are used: no cluster is started here.
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || apt_install postgresql
# redis-server on PATH; the package also starts a system service, which the tests do not use.
command -v redis-server >/dev/null || apt_install redis-server
