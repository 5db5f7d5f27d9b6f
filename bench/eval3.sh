#!/usr/bin/env bash
# 3-key EVAL benchmark: corekv (2 executors) and redis-server in one run, same load.
# Script: INCR each of its 3 declared keys. Two key layouts:
#   one-tag:  {t}a:N {t}b:N {t}c:N  (one hash tag: one shard, runs where its keys live)
#   spanning: a:N b:N c:N           (keys on different shards: every shard held)
# Usage: bench/eval3.sh [duration]   (needs target/release/{corekv,corekv-bench})
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-5s}
script="redis.call('incr', KEYS[1]) redis.call('incr', KEYS[2]) return redis.call('incr', KEYS[3])"
sha=$(printf '%s' "$script" | sha1sum | cut -d' ' -f1)
ck_port=$((21000 + RANDOM % 10000))
rd_port=$((ck_port + 1))
target/release/corekv --port "$ck_port" --cores 2 --bind 127.0.0.1 >/dev/null 2>&1 &
ck=$!
redis-server --port "$rd_port" --bind 127.0.0.1 --save '' --appendonly no >/dev/null 2>&1 &
rd=$!
trap 'kill $ck $rd 2>/dev/null || true' EXIT
for port in $ck_port $rd_port; do
  for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  redis-cli -p "$port" script load "$script" >/dev/null
done
for layout in one-tag spanning; do
  if [ "$layout" = one-tag ]; then
    keys="{t}a:__key__ {t}b:__key__ {t}c:__key__"
  else
    keys="a:__key__ b:__key__ c:__key__"
  fi
  for server in corekv:$ck_port redis:$rd_port; do
    name=${server%%:*}
    port=${server##*:}
    echo "== $layout $name"
    target/release/corekv-bench run --port "$port" --command "EVALSHA $sha 3 $keys" \
      --connections 50 --pipeline 1 --keys 10000 --duration "$duration" --warmup 1s --threads 1
  done
done
