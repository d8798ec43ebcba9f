#!/usr/bin/env bash
# Runs the whole test suite: Rust unit, doc, compile-fail and end-to-end tests,
# the interop suite with the official TypeScript SDK client, then lints.
# Needs: the Rust toolchain (with clippy and rustfmt), Node.js >= 20 and npm.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --workspace --examples
cargo test --workspace

(cd tests/interop && npm ci --no-audit --no-fund --loglevel=error && npm test)

cargo clippy --workspace --all-targets -- -D warnings
cargo fmt --all --check
echo "All tests passed."
