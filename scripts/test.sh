#!/usr/bin/env bash
# Sets up a fresh Debian machine (idempotently) and runs the whole test suite: formatting,
# lints, unit tests, integration tests against the real binary, differential tests against
# Debian's redis-server, redis-benchmark smoke runs and the parser fuzz test.
set -euo pipefail
cd "$(dirname "$0")/.."
export COREKV_WITH_REDIS=1
source scripts/ensure-deps.sh
# A packaged redis-server may have started a system instance; tests never use port 6379.

# redis-py >= 5.1 (its client-side cache) for tests/tracking.rs; that test skips, saying so,
# when it cannot be installed (no network).
install_redis_py() {
    python3 -m pip --version >/dev/null 2>&1 || {
        SUDO=""
        [ "$(id -u)" -eq 0 ] || SUDO="sudo"
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-pip >/dev/null
    }
    # Debian's Python is "externally managed": a --user install needs the override.
    python3 -m pip install --user --quiet 'redis>=5.1' 2>/dev/null \
        || python3 -m pip install --user --quiet --break-system-packages 'redis>=5.1'
}
python3 -c 'import redis.cache' 2>/dev/null || install_redis_py \
    || echo "redis-py unavailable: tests/tracking.rs will skip its redis-py check"

rustup component add rustfmt clippy >/dev/null 2>&1 || true
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test"
cargo test --workspace --all-targets -- --test-threads=4
echo "== real-world scripts: BullMQ"
scripts/bullmq/run.sh
