#!/usr/bin/env bash
# Runs BullMQ's own job workflow (scripts/bullmq/workflow.js: its Lua scripts drive every job
# state change) against a 2-executor corekv. Installs Node.js and the bullmq package when
# missing (idempotent); skips with a message when they cannot be installed (no network).
set -euo pipefail
cd "$(dirname "$0")/../.."
skip() {
  echo "== bullmq workflow: SKIPPED ($1)"
  exit 0
}
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get install -y nodejs npm >/dev/null 2>&1 || true
  fi
fi
command -v node >/dev/null && command -v npm >/dev/null || skip "node/npm not available"
dir=target/bullmq
mkdir -p "$dir"
cp scripts/bullmq/workflow.js "$dir/"
if [ ! -d "$dir/node_modules/bullmq" ]; then
  (cd "$dir" && timeout 300 npm install --no-audit --no-fund --silent bullmq@5 >/dev/null 2>&1) ||
    skip "npm install bullmq failed (no registry access?)"
fi
cargo build --quiet -p corekv
port=$((20000 + RANDOM % 20000))
target/debug/corekv --port "$port" --cores 2 --bind 127.0.0.1 >"$dir/corekv.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  redis-cli -p "$port" ping >/dev/null 2>&1 && break
  sleep 0.1
done
echo "== bullmq workflow against corekv (2 executors)"
(cd "$dir" && REDIS_PORT=$port timeout 120 node workflow.js)
