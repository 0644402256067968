#!/usr/bin/env bash
# The benchmark of docs/BENCHMARKS.md: the ceiling of this machine (a trivial endpoint),
# the throughput run on a large show, and the original's 400-user run on 100 seats —
# each against a fresh embedded boxoffice, with the load generator on the same machine.
# Usage: bash bench/load.sh [normal|full]   (the server's --durability; default full)
# THROUGHPUT_ARGS adds arguments to the throughput run's server (e.g. "--settle-target-ms 80").
set -euo pipefail
cd "$(dirname "$0")/.."
durability="${1:-full}"
out="${OUT:-target/bench}"
mkdir -p "$out"
# BIN=path benchmarks that binary (another build, to compare) instead of this checkout's.
[ -n "${BIN:-}" ] || cargo build --release -q
bin="${BIN:-${CARGO_TARGET_DIR:-target}/release/boxoffice}"

serve() { # serve PORT [extra args]: a fresh server on PORT
    local port=$1; shift
    rm -rf "$out/data-$port"
    "$bin" serve --addr "127.0.0.1:$port" --data-dir "$out/data-$port" --admin-token bench --open-bearer --rate-limit-buyer 0 --rate-limit-address 0 \
        --durability "$durability" "$@" >"$out/server-$port.log" 2>&1 &
    echo $! >"$out/server-$port.pid"
    for _ in $(seq 100); do curl -sf "127.0.0.1:$port/actuator/health" >/dev/null && return; sleep 0.1; done
    echo "server on $port did not start" >&2; exit 1
}
stop() { kill "$(cat "$out/server-$1.pid")" 2>/dev/null || true; wait 2>/dev/null || true; }

echo "== ceiling: GET /actuator/info, 400 users"
serve 18081
"$bin" load --quiet --url http://127.0.0.1:18081 --admin-token bench --scenario ceiling \
    --stages 5s:400,15s:400 --json "$out/ceiling.json" || true
stop 18081

echo "== throughput: 400 users buying distinct seats of a 300x300 show, instant payments"
serve 18082 --payment-latency-ms 0..0 --payment-success-rate 1 ${THROUGHPUT_ARGS:-}
"$bin" load --quiet --url http://127.0.0.1:18082 --admin-token bench --scenario throughput \
    --stages 5s:400,25s:400 --json "$out/throughput.json" --html "$out/throughput.html" || true
stop 18082

echo "== original: the k6 stages, 400 users on 100 seats, the original's gateway (500-1500 ms, 80%)"
serve 18083
"$bin" load --quiet --url http://127.0.0.1:18083 --admin-token bench --scenario original \
    --json "$out/original.json" --html "$out/original.html" || true
stop 18083
