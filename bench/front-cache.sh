#!/usr/bin/env bash
# eBPF front cache on vs off, same machine, same run: the GET-heavy hot-set workload and the
# write-heavy one (50% SET on the hot keys), corekv on 1 CPU and the load generator on the
# other, alternating off/on for ROUNDS rounds. Needs root (the BPF programs) and a release
# build: cargo build --release -p corekv -p corekv-bench
# Prints one line per run and the on/off ratios; raw JSON lands in bench/results/front-cache/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-2}
out=bench/results/front-cache
mkdir -p "$out"
run() { # mode round
    local args=()
    [ "$1" = on ] && args=(--corekv-arg=--ebpf-front-cache --corekv-arg=yes)
    target/release/corekv-bench compare -q --no-peers "${args[@]}" \
        --workload bench/front-cache/get-hot-p1.json \
        --workload bench/front-cache/set-hot-50.json \
        --out "$out/$1-$2" >/dev/null
}
for round in $(seq 1 "$ROUNDS"); do
    run off "$round"
    run on "$round"
done
python3 - "$out" "$ROUNDS" <<'PY'
import json, sys
out, rounds = sys.argv[1], int(sys.argv[2])
rows = {}
for mode in ("off", "on"):
    for r in range(1, rounds + 1):
        for m in json.load(open(f"{out}/{mode}-{r}/compare.json"))["results"]:
            rep = m["report"]
            rows.setdefault((m["workload"], mode), []).append(rep)
            print(f"{m['workload']:<11} cache {mode:<3} round {r}: {rep['ops_per_sec']:>9.0f} ops/s"
                  f"  p99 {rep['latency_us']['p99']:>8.1f} us"
                  f"  server CPU {rep.get('server_cpu_us_per_request') or 0:6.2f} us/req"
                  f"  machine CPU {rep.get('machine_cpu_us_per_request') or 0:6.2f} us/req")
def mean(reps, f):
    return sum(f(r) or 0 for r in reps) / len(reps)
print()
print("| workload | ops/s on/off | p99 on/off | server CPU/req on/off | machine CPU/req on/off |")
print("|---|---:|---:|---:|---:|")
for w in sorted({w for w, _ in rows}):
    on, off = rows[(w, "on")], rows[(w, "off")]
    ratio = lambda f: mean(on, f) / (mean(off, f) or float("nan"))
    print(f"| {w} | {ratio(lambda r: r['ops_per_sec']):.2f} | {ratio(lambda r: r['latency_us']['p99']):.2f}"
          f" | {ratio(lambda r: r.get('server_cpu_us_per_request')):.2f}"
          f" | {ratio(lambda r: r.get('machine_cpu_us_per_request')):.2f} |")
PY
