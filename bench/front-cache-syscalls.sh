#!/usr/bin/env bash
# System calls corekv makes per reply on the write-heavy front-cache load, cache off then on:
# corekv --cores 1 on CPU 0, corekv-bench (50 connections, 50% SET on 1000 hot keys) on CPU 1,
# `perf stat` on corekv for 3 s of the run. A healthy run makes about one recvfrom per sendto
# either way. Needs root, perf and a release build:
#   cargo build --release -p corekv -p corekv-bench
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${PORT:-7391}
for mode in off on; do
    args=()
    [ "$mode" = on ] && args=(--ebpf-front-cache yes)
    taskset -c 0 target/release/corekv --port "$PORT" --bind 127.0.0.1 --cores 1 "${args[@]}" \
        >/dev/null 2>&1 &
    server=$!
    sleep 1
    target/release/corekv-bench run -p "$PORT" --cpus 1 --ratio 1:1 --pipeline 1 \
        --connections 50 --keys 1000 --key-width 16 --value-size 16 --fill \
        --duration 8s --warmup 2s >/dev/null 2>&1 &
    bench=$!
    sleep 4
    echo "cache $mode:"
    perf stat -e syscalls:sys_enter_recvfrom,syscalls:sys_enter_sendto,syscalls:sys_enter_io_uring_enter,syscalls:sys_enter_bpf \
        -p "$server" -- sleep 3 2>&1 | grep sys_enter
    wait "$bench"
    redis-cli -p "$PORT" info ebpf | tr -d "\r" | grep -E "hits|fills|invalidations|connections" || true
    kill "$server"
    wait "$server" 2>/dev/null || true
done
