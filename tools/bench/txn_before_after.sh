#!/usr/bin/env bash
# Transaction workloads on two corekv builds (2 executors each) and redis-server, in one run:
# cross-shard MSET of 10 keys (pipeline 1), MGET of 10 keys pipelined 16 deep, a 3-key EVAL
# whose keys span shards, and GET/SET 1:10 alone and with MSET + EVAL running alongside.
# Usage: tools/bench/txn_before_after.sh BEFORE_BINARY AFTER_BINARY [seconds]
#   (binaries built with cargo build --release -p corekv; needs target/release/corekv-bench)
set -euo pipefail
cd "$(dirname "$0")/../.."
before=$1
after=$2
secs=${3:-5}
bench=target/release/corekv-bench
mset="MSET$(for _ in $(seq 10); do printf ' __key__ __data__'; done)"
mget="MGET$(for _ in $(seq 10); do printf ' __key__'; done)"
script="redis.call('incr', KEYS[1]) redis.call('incr', KEYS[2]) return redis.call('incr', KEYS[3])"
sha=$(printf '%s' "$script" | sha1sum | cut -d' ' -f1)
eval3="EVALSHA $sha 3 a:__key__ b:__key__ c:__key__"
"$before" --port 7811 --cores 2 --bind 127.0.0.1 --loglevel warning &
p1=$!
"$after" --port 7812 --cores 2 --bind 127.0.0.1 --loglevel warning &
p2=$!
redis-server --port 7813 --bind 127.0.0.1 --save '' --appendonly no --daemonize no --loglevel warning >/dev/null &
p3=$!
trap 'kill $p1 $p2 $p3' EXIT INT TERM
sleep 1
for port in 7811 7812 7813; do
    redis-cli -p $port script load "$script" >/dev/null
done
run() { $bench run -q --threads 1 --warmup 1s "$@"; }
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for port in 7811 7812 7813; do
    case $port in 7811) name="corekv before";; 7812) name="corekv after";; *) name=redis-server;; esac
    echo "== $name: MSET of 10 keys, 50 connections, pipeline 1"
    run -p $port --command "$mset" --connections 50 --duration ${secs}s
    echo "== $name: MGET of 10 keys, 10 connections, pipeline 16"
    run -p $port --command "$mget" --connections 10 --pipeline 16 --duration ${secs}s
    echo "== $name: 3-key EVALSHA across shards, 50 connections"
    run -p $port --command "$eval3" --connections 50 --keys 10000 --duration ${secs}s
    echo "== $name: GET/SET 1:10 alone, 50 connections"
    run -p $port --ratio 1:10 --connections 50 --fill --duration ${secs}s
    echo "== $name: GET/SET 1:10 with MSET and EVAL alongside (10 more connections)"
    run -p $port --command "$mset" --command "$eval3" --connections 10 --duration $((secs + 3))s >/dev/null &
    side=$!
    run -p $port --ratio 1:10 --connections 50 --duration ${secs}s
    wait $side
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
