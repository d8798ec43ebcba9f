#!/usr/bin/env bash
# Runs the whole test suite: Rust unit, doc, compile-fail and end-to-end tests,
# the interop suite with the official TypeScript SDK client, the browser tests, the official
# conformance suite against the conformance-server example over HTTP, then lints.
# Needs only the Rust toolchain: scripts/setup.sh first installs what is missing (clippy, rustfmt,
# Node.js and npm, Debian's Chromium), and each Node suite installs its packages from its lockfile.
set -euo pipefail
cd "$(dirname "$0")/.."

# Free disk space goes into the log at the start and on any failure: a full disk makes cargo
# and its tools fail in ways that do not say so.
df -h . | tail -n 1
trap 'echo "test.sh failed; free disk space:"; df -h . | tail -n 1' ERR

./scripts/setup.sh
# Every example, the main one (hello) included, so the end-to-end tests can start them.
cargo build --workspace --examples
# The gateway binary, and the real MCP servers tests/gateway.rs puts behind it.
cargo build -p mcp-gateway
(cd tests/gateway && npm ci --no-audit --no-fund --loglevel=error)
# The test OpenID provider (tests/oidc) is used by tests/auth_rs.rs and the interop OAuth tests.
(cd tests/oidc && npm ci --no-audit --no-fund --loglevel=error)
# The official TypeScript SDK client: tests/scale_out.rs runs it too (tests/interop/oauth-scale-out.mjs).
(cd tests/interop && npm ci --no-audit --no-fund --loglevel=error)
cargo test --workspace

(cd tests/interop && npm test)
(cd tests/github-standin && npm test)
# The authorization server's login and consent pages in headless Chromium (playwright-core),
# against the notes example in authorization-server mode; then real clients through github-oauth's
# GitHub login (stand-in): the MCP Inspector 2.x web UI (on its pinned Node 22) and mcp-remote.
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error && npm test)
# The official conformance suite (0.1.16 and 0.2.0-alpha.12, on a pinned Node 22) over HTTP,
# against the debug build made above (behaviour is the same; it saves a release build).
CONFORMANCE_PROFILE=debug ./scripts/conformance.sh
# Again with resource-server auth on, through a loopback proxy that adds a bearer token (0.1.16).
CONFORMANCE_PROFILE=debug CONFORMANCE_SKIP_INSTALL=1 CONFORMANCE_SKIP_BUILD=1 ./scripts/conformance.sh --auth
# The built-in OAuth authorization server (notes in authorization-server mode) against the alpha's
# `authorization` command, login and consent played headlessly by the script.
CONFORMANCE_PROFILE=debug CONFORMANCE_SKIP_INSTALL=1 CONFORMANCE_SKIP_BUILD=1 ./scripts/conformance.sh --authorization
# The conformance suite against server-everything directly and through mcp-gateway: no check that
# passes directly may fail through the gateway.
./scripts/gateway-conformance.sh
(cd tests/oidc && npm test)

cargo clippy --workspace --all-targets -- -D warnings
cargo fmt --all --check
echo "All tests passed."
