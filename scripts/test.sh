#!/usr/bin/env bash
# Sets up a fresh Debian machine (idempotently) and runs the whole test suite: formatting,
# lints, unit tests, integration tests against the real binary, differential tests against
# Debian's redis-server, redis-benchmark smoke runs and the parser fuzz test.
set -euo pipefail
cd "$(dirname "$0")/.."
export COREKV_WITH_REDIS=1
source scripts/ensure-deps.sh
# A packaged redis-server may have started a system instance; tests never use port 6379.

rustup component add rustfmt clippy >/dev/null 2>&1 || true
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test"
cargo test --workspace --all-targets -- --test-threads=4
echo "== real-world scripts: BullMQ"
scripts/bullmq/run.sh
