#!/usr/bin/env bash
# eBPF front cache on vs off with the client on "another host": corekv runs in a network
# namespace behind a veth pair whose receive side is steered (RPS) to CPU 0, the server's CPU,
# as a NIC's interrupt would be. So everything the server side costs (corekv, the TCP receive
# softirqs, the verdict program, the psock workqueue that sends the kernel's answers) lands on
# CPU 0, and the load generator's side on CPU 1. On plain loopback the receive softirq and
# the kernel's answers run on the *client's* CPU instead (bench/front-cache.sh), which hides
# the cache's gain as client load.
#
# Reports per run: ops/s, p99, and CPU 0's busy time per request (/proc/stat: the server
# host's whole cost per request, kernel included), with corekv's own share. Meaningful only
# on an otherwise idle machine (anything else running on CPU 0 counts). Needs root, and
#   cargo build --release -p corekv -p corekv-bench
# ROUNDS (default 2) alternates cache off / on; WORKLOADS defaults to both front-cache ones.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-2}
WORKLOADS=${WORKLOADS:-"get-hot-p1 set-hot-50"}
NS=corekv-fc
HOST=10.201.0.2
PORT=7390
BIN=target/release

teardown() {
    ip netns pids "$NS" 2>/dev/null | xargs -r kill 2>/dev/null || true
    ip link del vfc-c 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
}
trap teardown EXIT
teardown
ip netns add "$NS"
ip link add vfc-c type veth peer name vfc-s
ip link set vfc-s netns "$NS"
ip addr add 10.201.0.1/24 dev vfc-c
ip link set vfc-c up
ip netns exec "$NS" ip addr add "$HOST/24" dev vfc-s
ip netns exec "$NS" ip link set vfc-s up
ip netns exec "$NS" ip link set lo up
# Receive processing of each side on its own CPU: server side CPU 0, client side CPU 1.
ip netns exec "$NS" sh -c 'echo 1 > /sys/class/net/vfc-s/queues/rx-0/rps_cpus'
echo 2 >/sys/class/net/vfc-c/queues/rx-0/rps_cpus

busy_cpu() { # cpu -> busy jiffies (user nice system irq softirq steal)
    awk -v c="cpu$1" '$1 == c { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat
}
proc_cpu() { # pid -> utime + stime jiffies
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}

run() { # workload mode
    local args=() wl="bench/front-cache/$1.json"
    [ "$2" = on ] && args=(--ebpf-front-cache yes)
    ip netns exec "$NS" taskset -c 0 "$BIN/corekv" --cores 1 --bind "$HOST" --port "$PORT" \
        --protected-mode no --loglevel warning "${args[@]}" >/dev/null 2>&1 &
    local server=$!
    sleep 1
    # The workload's own arguments, minus its timing: fill and warm up first, then measure.
    mapfile -t wargs < <(python3 -c 'import json,sys; a=json.load(open(sys.argv[1]))["args"]
skip={"--duration","--warmup","--fill"}; i=0
while i < len(a):
    if a[i] in skip: i += 1 if a[i] == "--fill" else 2; continue
    print(a[i]); i += 1' "$wl")
    taskset -c 1 "$BIN/corekv-bench" run --host "$HOST" --port "$PORT" "${wargs[@]}" --fill \
        --duration 2s --warmup 0s --json >/dev/null
    local c0 s0 p0 c1 s1 p1
    c0=$(busy_cpu 0) s0=$(busy_cpu 1) p0=$(proc_cpu "$server")
    taskset -c 1 "$BIN/corekv-bench" run --host "$HOST" --port "$PORT" "${wargs[@]}" \
        --duration 5s --warmup 0s --json >"$out/$1-$2-$round.json"
    c1=$(busy_cpu 0) s1=$(busy_cpu 1) p1=$(proc_cpu "$server")
    kill "$server"
    wait "$server" 2>/dev/null || true
    echo "$1 $2 $round $((c1 - c0)) $((s1 - s0)) $((p1 - p0))" >>"$out/cpu.txt"
}

out=bench/results/front-cache-remote
rm -rf "$out"
mkdir -p "$out"
for round in $(seq 1 "$ROUNDS"); do
    for w in $WORKLOADS; do
        run "$w" off
        run "$w" on
    done
done
python3 - "$out" "$(getconf CLK_TCK)" <<'PY'
import json, sys
out, hz = sys.argv[1], int(sys.argv[2])
us = 1e6 / hz
rows = {}
print("| workload | cache | round | ops/s | p99 us | CPU 0 us/req | corekv us/req | CPU 1 us/req |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
for line in open(f"{out}/cpu.txt"):
    w, mode, r, cpu0, cpu1, proc = line.split()
    rep = json.load(open(f"{out}/{w}-{mode}-{r}.json"))
    n = rep["requests"]
    row = (rep["ops_per_sec"], rep["latency_us"]["p99"], int(cpu0) * us / n, int(proc) * us / n,
           int(cpu1) * us / n)
    rows.setdefault((w, mode), []).append(row)
    print(f"| {w} | {mode} | {r} | {row[0]:.0f} | {row[1]:.0f} | {row[2]:.2f} | {row[3]:.2f} | {row[4]:.2f} |")
print()
print("| workload | ops/s on/off | p99 on/off | CPU 0 per request on/off |")
print("|---|---:|---:|---:|")
mean = lambda rs, i: sum(r[i] for r in rs) / len(rs)
for w in dict.fromkeys(k[0] for k in rows):
    on, off = rows[(w, "on")], rows[(w, "off")]
    print(f"| {w} | {mean(on, 0) / mean(off, 0):.2f} | {mean(on, 1) / mean(off, 1):.2f} | {mean(on, 2) / mean(off, 2):.2f} |")
PY
