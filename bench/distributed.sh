#!/usr/bin/env bash
# The distributed mode's benchmark of docs/BENCHMARKS.md: each module its own process,
# REPLICAS replicas of each, on PostgreSQL and Kafka, everything on this machine; then
# the load tool's 400-user throughput run against them.
# Usage: bash bench/distributed.sh [REPLICAS]   (PG and KAFKA name the services;
# STAGES replaces the 400-user stages; LOAD_ARGS adds arguments to the load run, e.g.
# LOAD_ARGS="--think-ms 2000"; SERVE_ARGS to every module process)
set -euo pipefail
cd "$(dirname "$0")/.."
replicas="${1:-1}"
pg="${PG:-postgres://postgres@127.0.0.1:5432}"
kafka="${KAFKA:-127.0.0.1:9092}"
prefix="bench_$(date +%s)_$replicas"
out="${OUT:-target/bench}/distributed-$replicas"
mkdir -p "$out"
# BIN=path benchmarks that binary (another build, to compare) instead of this checkout's.
[ -n "${BIN:-}" ] || cargo build --release -q
bin="${BIN:-${CARGO_TARGET_DIR:-target}/release/boxoffice}"
# PostgreSQL here takes 100 connections: each process keeps up to `--postgres-pool` for
# requests and 4 for its consumers and relay.
pool=$(( replicas > 1 ? 8 : 16 ))
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT

start() { # start MODULE PORT [extra args]
    local module=$1 port=$2; shift 2
    "$bin" serve --module "$module" --addr "127.0.0.1:$port" --data-dir "$out/$module-$port" --admin-token bench --open-bearer --rate-limit-buyer 0 --rate-limit-address 0 \
        --postgres "$pg" --postgres-pool "$pool" --database-prefix "$prefix" --kafka "$kafka" --kafka-namespace "$prefix" \
        --payment-latency-ms 0..0 --payment-success-rate 1 --durability normal ${SERVE_ARGS:-} "$@" >"$out/$module-$port.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 200); do curl -sf "127.0.0.1:$port/actuator/health" >/dev/null && return; sleep 0.1; done
    echo "$module on $port did not start" >&2; exit 1
}

urls() { local base=$1 list=""; for i in $(seq 0 $((replicas - 1))); do list="$list${list:+,}http://127.0.0.1:$((base + i))"; done; echo "$list"; }

start catalog 18100
for i in $(seq 0 $((replicas - 1))); do
    start reservation $((18120 + i))
    start payment $((18110 + i))
done
for i in $(seq 0 $((replicas - 1))); do
    start order $((18130 + i)) --reservation-url "http://127.0.0.1:$((18120 + i))"
done

echo "== throughput: 400 users, $replicas replica(s) of each module"
"$bin" load --quiet --url http://127.0.0.1:18100 --admin-token bench --scenario throughput \
    --stages "${STAGES:-5s:400,15s:400}" --rows 200 --cols 200 \
    --reservation-url "$(urls 18120)" --order-url "$(urls 18130)" --payment-url "$(urls 18110)" \
    --json "$out/throughput.json" ${LOAD_ARGS:-} || true

echo "== per hop (p50/p99 bucket bounds, seconds)"
python3 bench/hops.py http://127.0.0.1:18100 $(urls 18120 | tr , ' ') $(urls 18110 | tr , ' ') $(urls 18130 | tr , ' ') | tee "$out/hops.txt" || true
