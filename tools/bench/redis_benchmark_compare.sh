#!/usr/bin/env bash
# Compares corekv with redis-server under redis-benchmark: throughput, latency percentiles and
# server CPU time per request.
#
# Both servers run on one CPU (taskset -c SERVER_CPU; corekv with --cores 1), redis-benchmark on
# another (CLIENT_CPU), on free ports of 127.0.0.1. Each workload (SET and GET, without and with
# pipelining) is a separate redis-benchmark run, so each server's CPU time (utime + stime from
# /proc/PID/stat, all threads) can be read before and after it.
#
# Usage: tools/bench/redis_benchmark_compare.sh [options]
#   --quick            10x fewer requests (defaults become 20000 / 200000)
#   --n-p1 N           requests per -P 1 run      (default 200000)
#   --n-p16 N          requests per -P 16 run     (default 2000000)
#   --clients C        redis-benchmark -c         (default 50)
#   --tests LIST       redis-benchmark -t tests, comma separated, each run on its own
#                      (default set,get; e.g. lpush,lpop,sadd,hset,spop,zadd,zpopmin,lrange_100)
#   --pipelines LIST   pipeline depths, comma separated (default 1,16)
#   --json FILE        where to write the results (default bench/results/latest.json,
#                      relative to the repository root)
#   --server-cpu N     CPU the servers are pinned to     (default 0)
#   --client-cpu N     CPU redis-benchmark is pinned to  (default 1)
#   --no-build         use the existing target/release/corekv
#   -h, --help         this text
#
# Needs: cargo, redis-server, redis-cli, redis-benchmark (7.x, for --csv latency columns),
# taskset, awk, ss.
#
# CPU time comes in clock ticks (usually 10 ms), so short --quick runs give CPU µs/op to
# roughly +-10 ms / N; use the default sizes for numbers to compare.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

usage() { sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }
die() {
    echo "error: $*" >&2
    exit 1
}

QUICK=0
N_P1=""
N_P16=""
CLIENTS=50
TESTS=set,get
PIPELINES=1,16
JSON="$ROOT/bench/results/latest.json"
SERVER_CPU=0
CLIENT_CPU=1
BUILD=1

while [[ $# -gt 0 ]]; do
    case "$1" in
    --quick) QUICK=1 ;;
    --n-p1) N_P1=${2:?--n-p1 needs a value}; shift ;;
    --n-p16) N_P16=${2:?--n-p16 needs a value}; shift ;;
    --clients) CLIENTS=${2:?--clients needs a value}; shift ;;
    --tests) TESTS=${2:?--tests needs a list}; shift ;;
    --pipelines) PIPELINES=${2:?--pipelines needs a list}; shift ;;
    --json) JSON=${2:?--json needs a file}; shift ;;
    --server-cpu) SERVER_CPU=${2:?--server-cpu needs a value}; shift ;;
    --client-cpu) CLIENT_CPU=${2:?--client-cpu needs a value}; shift ;;
    --no-build) BUILD=0 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
    esac
    shift
done

if [[ $QUICK == 1 ]]; then
    : "${N_P1:=20000}" "${N_P16:=200000}"
else
    : "${N_P1:=200000}" "${N_P16:=2000000}"
fi
for v in "$N_P1" "$N_P16" "$CLIENTS" "$SERVER_CPU" "$CLIENT_CPU"; do
    [[ $v =~ ^[0-9]+$ ]] || die "not a number: $v"
done

for cmd in cargo redis-server redis-cli redis-benchmark taskset awk ss; do
    command -v "$cmd" >/dev/null || die "$cmd not found"
done
# The CPUs must be ones this shell may use.
taskset -c "$SERVER_CPU" true 2>/dev/null || die "cannot pin to server CPU $SERVER_CPU"
taskset -c "$CLIENT_CPU" true 2>/dev/null || die "cannot pin to client CPU $CLIENT_CPU"
[[ $SERVER_CPU != "$CLIENT_CPU" ]] || echo "warning: servers and client share CPU $SERVER_CPU" >&2

CLK_TCK=$(getconf CLK_TCK)

if [[ $BUILD == 1 ]]; then
    echo "building corekv (release)..." >&2
    (cd "$ROOT" && cargo build --release -p corekv) >&2
fi
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/corekv"
[[ -x $BIN ]] || die "$BIN not found (build it, or drop --no-build)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/corekv-bench.XXXXXX")
SERVER_PIDS=()

cleanup() {
    local pid
    for pid in "${SERVER_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${SERVER_PIDS[@]}"; do
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A TCP port nothing on this host listens on (and that we did not hand out already).
TAKEN=" "
free_port() {
    local p
    for _ in $(seq 200); do
        p=$((20000 + RANDOM % 40000))
        [[ $TAKEN == *" $p "* ]] && continue
        if [[ -z $(ss -Htan "( sport = :$p )" 2>/dev/null) ]]; then
            TAKEN+="$p "
            echo "$p"
            return 0
        fi
    done
    die "no free port found"
}

# wait_ready NAME PID PORT LOG: waits until the server answers PING, or fails if it died.
wait_ready() {
    local name=$1 pid=$2 port=$3 log=$4
    for _ in $(seq 300); do
        if ! kill -0 "$pid" 2>/dev/null; then
            cat "$log" >&2
            die "$name exited during startup"
        fi
        if [[ $(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null) == PONG ]]; then
            return 0
        fi
        sleep 0.1
    done
    cat "$log" >&2
    die "$name did not answer PING on port $port within 30s"
}

# Server CPU time so far, all threads, in microseconds.
cpu_us() {
    local stat rest f
    stat=$(<"/proc/$1/stat") || die "process $1 is gone"
    rest=${stat##*) } # fields from 3 (state) on; comm may hold spaces
    read -r -a f <<<"$rest"
    # utime and stime are fields 14 and 15, i.e. 11 and 12 counting from state.
    echo $(((f[11] + f[12]) * 1000000 / CLK_TCK))
}

COREKV_PORT=$(free_port)
REDIS_PORT=$(free_port)

taskset -c "$SERVER_CPU" "$BIN" --cores 1 --port "$COREKV_PORT" --bind 127.0.0.1 \
    --loglevel warning >"$WORK/corekv.log" 2>&1 &
COREKV_PID=$!
SERVER_PIDS+=("$COREKV_PID")

taskset -c "$SERVER_CPU" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 \
    --save '' --appendonly no --daemonize no --logfile '' >"$WORK/redis.log" 2>&1 &
REDIS_PID=$!
SERVER_PIDS+=("$REDIS_PID")

wait_ready corekv "$COREKV_PID" "$COREKV_PORT" "$WORK/corekv.log"
wait_ready redis-server "$REDIS_PID" "$REDIS_PORT" "$WORK/redis.log"

COREKV_VERSION=$(redis-cli -p "$COREKV_PORT" info server | awk -F: '/^redis_version:/ {print $2}' | tr -d '\r')
REDIS_VERSION=$(redis-cli -p "$REDIS_PORT" info server | awk -F: '/^redis_version:/ {print $2}' | tr -d '\r')
echo "corekv pid $COREKV_PID port $COREKV_PORT; redis-server $REDIS_VERSION pid $REDIS_PID port $REDIS_PORT" >&2

# The name redis-benchmark's CSV gives a -t test.
csv_name() {
    case $1 in
    lrange_*) echo "LRANGE_${1#lrange_} (first ${1#lrange_} elements)" ;;
    *) echo "${1^^}" ;;
    esac
}

# bench PORT PID TEST PIPELINE N -> "rps p50 p99 cpu_us_per_op"
bench() {
    local port=$1 pid=$2 test=$3 pipe=$4 n=$5 before after out line
    before=$(cpu_us "$pid")
    out=$(taskset -c "$CLIENT_CPU" redis-benchmark -h 127.0.0.1 -p "$port" -t "$test" \
        -c "$CLIENTS" -n "$n" -P "$pipe" --csv 2>>"$WORK/benchmark.err") ||
        { cat "$WORK/benchmark.err" >&2; die "redis-benchmark failed on port $port"; }
    after=$(cpu_us "$pid")
    kill -0 "$pid" 2>/dev/null || die "server pid $pid died during the $test run"
    # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
    line=$(grep -F "\"$(csv_name "$test")\"," <<<"$out") || { echo "$out" >&2; die "no $test line in redis-benchmark output"; }
    awk -F, -v cpu=$((after - before)) -v n="$n" '{
        gsub(/"/, "")
        printf "%s %s %s %.3f\n", $2, $5, $7, cpu / n
    }' <<<"$line"
}

# Warm both servers up (allocator, page cache of the binaries), unmeasured.
for port in "$COREKV_PORT" "$REDIS_PORT"; do
    taskset -c "$CLIENT_CPU" redis-benchmark -h 127.0.0.1 -p "$port" -t set,get -c "$CLIENTS" \
        -n 10000 -P 1 -q >/dev/null 2>>"$WORK/benchmark.err"
done

WORKLOADS=() # keys like SET_P1
declare -A R
IFS=, read -r -a PIPE_LIST <<<"$PIPELINES"
IFS=, read -r -a TEST_LIST <<<"$TESTS"
for pipe in "${PIPE_LIST[@]}"; do
    if [[ $pipe == 1 ]]; then n=$N_P1; else n=$N_P16; fi
    for test in "${TEST_LIST[@]}"; do
        w="${test}_P$pipe"
        WORKLOADS+=("$w")
        R[$w,test]=$test
        R[$w,pipe]=$pipe
        R[$w,n]=$n
        echo "running $test -P $pipe (-n $n -c $CLIENTS)..." >&2
        c=$(bench "$COREKV_PORT" "$COREKV_PID" "$test" "$pipe" "$n")
        r=$(bench "$REDIS_PORT" "$REDIS_PID" "$test" "$pipe" "$n")
        read -r c_rps c_p50 c_p99 c_cpu <<<"$c"
        read -r r_rps r_p50 r_p99 r_cpu <<<"$r"
        R[$w,c_rps]=$c_rps R[$w,c_p50]=$c_p50 R[$w,c_p99]=$c_p99 R[$w,c_cpu]=$c_cpu
        R[$w,r_rps]=$r_rps R[$w,r_p50]=$r_p50 R[$w,r_p99]=$r_p99 R[$w,r_cpu]=$r_cpu
    done
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

echo
echo "corekv (--cores 1) vs redis-server $REDIS_VERSION; servers on CPU $SERVER_CPU, redis-benchmark on CPU $CLIENT_CPU, -c $CLIENTS"
echo
echo "| workload | corekv ops/s | redis ops/s | ratio | corekv p50/p99 ms | redis p50/p99 ms | corekv CPU µs/op | redis CPU µs/op | CPU ratio |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
for w in "${WORKLOADS[@]}"; do
    printf "| %s -P %s (n=%s) | %s | %s | %s | %s / %s | %s / %s | %s | %s | %s |\n" \
        "${R[$w,test]}" "${R[$w,pipe]}" "${R[$w,n]}" "${R[$w,c_rps]}" "${R[$w,r_rps]}" "$(ratio "${R[$w,c_rps]}" "${R[$w,r_rps]}")" \
        "${R[$w,c_p50]}" "${R[$w,c_p99]}" "${R[$w,r_p50]}" "${R[$w,r_p99]}" \
        "${R[$w,c_cpu]}" "${R[$w,r_cpu]}" "$(ratio "${R[$w,c_cpu]}" "${R[$w,r_cpu]}")"
done
echo
echo "ratio = corekv / redis (ops/s: higher is better for corekv; CPU: lower is better)."

mkdir -p "$(dirname "$JSON")"
{
    printf '{\n'
    printf '  "date": "%s",\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    printf '  "git_rev": "%s",\n' "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    printf '  "host": {"cpus": %s, "kernel": "%s"},\n' "$(nproc --all)" "$(uname -r)"
    printf '  "corekv": {"binary": "%s", "reports_redis_version": "%s", "cores": 1},\n' "$BIN" "$COREKV_VERSION"
    printf '  "redis": {"version": "%s"},\n' "$REDIS_VERSION"
    printf '  "setup": {"server_cpu": %s, "client_cpu": %s, "clients": %s, "quick": %s, "clk_tck": %s},\n' \
        "$SERVER_CPU" "$CLIENT_CPU" "$CLIENTS" "$([[ $QUICK == 1 ]] && echo true || echo false)" "$CLK_TCK"
    printf '  "results": [\n'
    sep=""
    for w in "${WORKLOADS[@]}"; do
        printf '%s    {"workload": "%s", "test": "%s", "pipeline": %s, "requests": %s,\n' \
            "$sep" "$w" "${R[$w,test]}" "${R[$w,pipe]}" "${R[$w,n]}"
        printf '     "corekv": {"rps": %s, "p50_ms": %s, "p99_ms": %s, "cpu_us_per_op": %s},\n' \
            "${R[$w,c_rps]}" "${R[$w,c_p50]}" "${R[$w,c_p99]}" "${R[$w,c_cpu]}"
        printf '     "redis": {"rps": %s, "p50_ms": %s, "p99_ms": %s, "cpu_us_per_op": %s},\n' \
            "${R[$w,r_rps]}" "${R[$w,r_p50]}" "${R[$w,r_p99]}" "${R[$w,r_cpu]}"
        printf '     "rps_ratio": %s, "cpu_ratio": %s}' \
            "$(ratio "${R[$w,c_rps]}" "${R[$w,r_rps]}" | sed 's/n\/a/null/')" \
            "$(ratio "${R[$w,c_cpu]}" "${R[$w,r_cpu]}" | sed 's/n\/a/null/')"
        sep=$',\n'
    done
    printf '\n  ]\n}\n'
} >"$JSON"
echo "results written to $JSON" >&2
