#!/usr/bin/env bash
# Sets up a fresh Debian machine (idempotently), builds corekv in release mode and runs it with
# the default config (config/corekv.json). Extra arguments are passed on as flags, e.g.
#   scripts/run-server.sh --port 6380 --cores 2
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-deps.sh
cargo build --release -p corekv
exec ./target/release/corekv --config config/corekv.json "$@"
