#!/usr/bin/env bash
# Multi-shard MSET (10 random keys) on corekv (2 executors) vs redis-server, in one run; then
# GET/SET (1:10) throughput alone and with the MSET load running alongside, on each server.
# Usage: tools/bench/txn_compare.sh [seconds]   (after cargo build --release -p corekv -p corekv-bench)
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-5}
bench=target/release/corekv-bench
mset="MSET$(for _ in $(seq 10); do printf ' __key__ __data__'; done)"
target/release/corekv --port 7801 --cores 2 --bind 127.0.0.1 --loglevel warning &
corekv_pid=$!
redis-server --port 7802 --bind 127.0.0.1 --save '' --appendonly no --daemonize no --loglevel warning &
redis_pid=$!
trap 'kill $corekv_pid $redis_pid' EXIT
sleep 1
for port in 7801 7802; do
    name=$([ $port = 7801 ] && echo "corekv (2 cores)" || echo redis-server)
    echo "== $name: MSET of 10 keys"
    $bench run -q -p $port --command "$mset" --connections 50 --duration ${secs}s --warmup 1s
    echo "== $name: GET/SET 1:10 alone"
    $bench run -q -p $port --ratio 1:10 --connections 50 --fill --duration ${secs}s --warmup 1s
    echo "== $name: GET/SET 1:10 with MSET of 10 keys alongside (10 connections)"
    $bench run -q -p $port --command "$mset" --connections 10 --duration $((secs + 3))s --warmup 1s >/dev/null &
    mset_pid=$!
    $bench run -q -p $port --ratio 1:10 --connections 50 --duration ${secs}s --warmup 1s
    wait $mset_pid
done
