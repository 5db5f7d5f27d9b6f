#!/bin/sh
# Round-trip latency over TCP, a Unix socket and shared memory against one corekv (1 core,
# pinned to CPU 0; the client on CPU 1), PING and GET of a 64-byte value, back to back (busy)
# and 1 ms apart (sleeping server). Writes one JSON line per run to $OUT (default
# bench/results/shm_latency.jsonl) and prints a table.
#   bench/shm_latency.sh [SAMPLES]     (default 100000)
set -eu
SAMPLES=${1:-100000}
BIN=${BIN:-target/release}
OUT=${OUT:-bench/results/shm_latency.jsonl}
DIR=$(mktemp -d)
PORT=${PORT:-7399}
mkdir -p "$(dirname "$OUT")"
: > "$OUT"
taskset -c 0 "$BIN/corekv" --cores 1 --port "$PORT" --bind 127.0.0.1 --loglevel warning \
    --unixsocket "$DIR/unix.sock" --shm-path "$DIR/shm.sock" &
SERVER=$!
trap 'kill $SERVER; rm -rf "$DIR"' EXIT
sleep 1
for interval in 0 1000; do
    for cmd in ping get; do
        for t in tcp unix shm; do
            case $t in
                tcp) target="--port $PORT" ;;
                unix) target="--socket $DIR/unix.sock" ;;
                shm) target="--socket $DIR/shm.sock" ;;
            esac
            taskset -c 1 "$BIN/corekv-bench" latency --transport $t $target --command $cmd \
                --samples "$SAMPLES" --interval-us $interval --json | tr -d '\n ' >> "$OUT"
            echo >> "$OUT"
        done
    done
done
python3 - "$OUT" <<'PY'
import json, sys
print("| interval | command | transport | p50 us | p99 us | p99.9 us | max us |")
print("|---:|---|---|---:|---:|---:|---:|")
for line in open(sys.argv[1]):
    r = json.loads(line)
    l = r["latency_us"]
    print(f'| {r["interval_us"]} | {r["command"]} | {r["transport"]} | {l["p50"]:.2f} | {l["p99"]:.2f} | {l["p999"]:.2f} | {l["max"]:.1f} |')
PY
