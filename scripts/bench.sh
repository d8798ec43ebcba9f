#!/usr/bin/env bash
# Runs the benchmark suite: builds examples/echo and examples/notes (release) and the
# benches workspace (rmcp echo server, bare axum floor, the load generator), then runs the
# load generator pinned to core 1 while every server runs pinned to core 0.
#
#   ./scripts/bench.sh            # full run (a few minutes)
#   ./scripts/bench.sh --quick    # short durations, for a smoke run
#
# Other options are passed to the runner (see benches/src/main.rs), e.g. `--only ours,rmcp`,
# `--rss-calls 200000`, `--sessions 2000`, `--out DIR`. Results: target/bench/results.{md,json}.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v taskset >/dev/null; then
  echo "bench.sh needs taskset (util-linux) to pin the server and the load generator" >&2
  exit 1
fi
if [ "$(nproc)" -lt 2 ]; then
  echo "warning: fewer than 2 cores; server and load generator will share one" >&2
fi

cargo build --release --example echo --example notes
cargo build --release -p mcp-gateway
cargo build --release --manifest-path benches/Cargo.toml

echo "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
exec taskset -c 1 benches/target/release/mcp-bench \
  --echo target/release/examples/echo \
  --notes target/release/examples/notes \
  --rmcp benches/target/release/rmcp-echo \
  --floor benches/target/release/floor \
  --gateway target/release/mcp-gateway \
  "$@"
