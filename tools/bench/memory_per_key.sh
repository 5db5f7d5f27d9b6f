#!/bin/sh
# Bytes per key: loads N keys (16-byte keys, 32-byte values, optionally with a TTL) into corekv
# and into redis-server, and prints used_memory and used_memory_rss per key for each.
#
#   tools/bench/memory_per_key.sh [N...]        (default: 1000000; bench/RESULTS.md: 1000000 10000000)
#
# Needs target/release/corekv (cargo build --release -p corekv), redis-server, redis-cli and
# python3 (to write the load). Servers run on free ports and are stopped afterwards.
set -eu
COREKV=${COREKV:-target/release/corekv}
COUNTS=${*:-1000000}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
field() { redis-cli -p "$1" INFO memory | tr -d '\r' | sed -n "s/^$2://p"; }

load() { # count ttl(0|1) > file: SET key:<12 digits> <32 bytes> [EX 100000]
    python3 - "$1" "$2" <<'PY'
import sys
n, ttl = int(sys.argv[1]), sys.argv[2] == "1"
v = b"v" * 32
out = sys.stdout.buffer
for i in range(n):
    k = b"key:%012d" % i
    if ttl:
        out.write(b"*5\r\n$3\r\nSET\r\n$16\r\n%s\r\n$32\r\n%s\r\n$2\r\nEX\r\n$6\r\n100000\r\n" % (k, v))
    else:
        out.write(b"*3\r\n$3\r\nSET\r\n$16\r\n%s\r\n$32\r\n%s\r\n" % (k, v))
PY
}

measure() { # name port count ttl
    before=$(field "$2" used_memory)
    rss_before=$(field "$2" used_memory_rss)
    load "$3" "$4" > "$TMP/load"
    redis-cli -p "$2" --pipe < "$TMP/load" > /dev/null
    used=$(field "$2" used_memory)
    rss=$(field "$2" used_memory_rss)
    keys=$(redis-cli -p "$2" DBSIZE)
    echo "| $1 | $3 | $( [ "$4" = 1 ] && echo yes || echo no ) | $keys | $used | $rss | $(( (used - before) / $3 )) | $(( (rss - rss_before) / $3 )) | $(( rss / $3 )) |"
    redis-cli -p "$2" FLUSHALL > /dev/null
}

echo "| server | keys | TTL | DBSIZE | used_memory | used_memory_rss | used bytes/key (over empty) | RSS bytes/key (over empty) | RSS bytes/key |"
echo "|---|---:|---|---:|---:|---:|---:|---:|---:|"
for n in $COUNTS; do
    for ttl in 0 1; do
        p=$(port)
        "$COREKV" --port "$p" --cores 1 --bind 127.0.0.1 --loglevel warning > /dev/null 2>&1 &
        pid=$!
        until redis-cli -p "$p" PING > /dev/null 2>&1; do sleep 0.1; done
        measure corekv "$p" "$n" "$ttl"
        kill "$pid"; wait "$pid" 2>/dev/null || true
        p=$(port)
        redis-server --port "$p" --bind 127.0.0.1 --save '' --appendonly no > /dev/null 2>&1 &
        pid=$!
        until redis-cli -p "$p" PING > /dev/null 2>&1; do sleep 0.1; done
        measure redis-server "$p" "$n" "$ttl"
        kill "$pid"; wait "$pid" 2>/dev/null || true
    done
done
