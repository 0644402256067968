#!/usr/bin/env bash
# Two builds compared the way docs/BENCHMARKS.md compares them: the throughput run
# (400 users, distinct seats, instant payments, `--durability normal`) against a fresh
# embedded server, A and B in turns, so that a VM whose speed drifts over minutes drifts
# for both. Each run reports purchases/s, final-state p99, and the CPU the server and
# the load generator spent per purchase — steadier than throughput on a shared VM.
# Usage: bash bench/ab.sh A_BIN B_BIN [pairs (3)] [seconds at 400 users (30)]
# A_ARGS and B_ARGS add arguments to each build's server (one binary, two settings).
set -euo pipefail
a="$1" b="$2" pairs="${3:-3}" secs="${4:-30}"
out="${OUT:-target/bench-ab}"
mkdir -p "$out"
tick=$(getconf CLK_TCK)

run() { # run NAME BIN N: one throughput run; prints one line of results
    local name=$1 bin=$2 n=$3 data="$out/data-$1-$3" json="$out/$1-$3.json" args
    args="$([ "$name" = A ] && echo "${A_ARGS:-}" || echo "${B_ARGS:-}")"
    rm -rf "$data"
    "$bin" serve --addr 127.0.0.1:18090 --data-dir "$data" --admin-token bench --open-bearer \
        --rate-limit-buyer 0 --rate-limit-address 0 --durability normal \
        --payment-latency-ms 0..0 --payment-success-rate 1 $args >"$out/server-$name-$n.log" 2>&1 &
    local pid=$!
    for _ in $(seq 100); do curl -sf 127.0.0.1:18090/actuator/health >/dev/null && break; sleep 0.1; done
    # The generator's CPU: its user and system time, from the resource usage of a child.
    local gen
    gen=$(python3 -c 'import resource, subprocess, sys
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(r.ru_utime + r.ru_stime)' "$bin" load --quiet --url http://127.0.0.1:18090 --admin-token bench \
        --scenario throughput --stages "5s:400,${secs}s:400" --json "$json")
    local server
    server=$(awk -v t="$tick" '{print ($14 + $15) / t}' "/proc/$pid/stat")
    kill "$pid"; wait "$pid" 2>/dev/null || true
    rm -rf "$data"
    python3 - "$name" "$json" "$server" "$gen" <<'PY'
import json, sys
name, path, server, gen = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
r = json.load(open(path))
n = max(r["purchases"], 1)
final = r["steps"]["final state (seen by client)"]["p99Ms"]
print(f"{name}\t{r['purchasesPerSecond']:.1f}\t{final:.0f}\t{1000 * server / n:.3f}\t{1000 * gen / n:.3f}")
PY
}

printf 'build\tpurchases/s\tfinal p99 ms\tserver CPU ms/purchase\tgenerator CPU ms/purchase\n' | tee "$out/results.tsv"
for i in $(seq "$pairs"); do
    run A "$a" "$i" | tee -a "$out/results.tsv"
    run B "$b" "$i" | tee -a "$out/results.tsv"
done
python3 - "$out/results.tsv" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])][1:]
for build in ("A", "B"):
    cols = list(zip(*[[float(x) for x in r[1:]] for r in rows if r[0] == build]))
    print(f"median {build}: {statistics.median(cols[0]):.1f} purchases/s, final p99 {statistics.median(cols[1]):.0f} ms, "
          f"server {statistics.median(cols[2]):.3f} ms/purchase, generator {statistics.median(cols[3]):.3f} ms/purchase")
PY
