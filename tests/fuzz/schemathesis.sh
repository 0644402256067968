#!/usr/bin/env bash
# Fuzzes the HTTP API from its OpenAPI document with schemathesis (from PyPI, pinned):
# the real binary on a free port with a fresh data directory; every operation but the
# SSE streams; no 5xx, and every response — errors included — as the document says
# (status, content type, headers, body schema: errors are the contract's ErrorBody).
# Exits non-zero on any finding. `FUZZ_EXAMPLES` bounds the cases per operation.
set -euo pipefail
cd "$(dirname "$0")/../.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/boxoffice/target}"
version=4.32.5
venv="$HOME/.cache/boxoffice/schemathesis-$version"
if [ ! -x "$venv/bin/schemathesis" ]; then
    echo "installing schemathesis $version into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$version"
fi

cargo build --quiet -p boxoffice --locked
bin="$CARGO_TARGET_DIR/debug/boxoffice"

work="$(mktemp -d)"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
url="http://127.0.0.1:$port"
export BOXOFFICE_FUZZ_ADMIN="fuzz-admin-$RANDOM$RANDOM"
secret="fuzz-secret-$RANDOM$RANDOM$RANDOM$RANDOM"
BOXOFFICE_FUZZ_BUYER="$("$bin" token --sub fuzz-buyer --auth-secret "$secret")"
export BOXOFFICE_FUZZ_BUYER
# The rate limits stay off here: the fuzzer's own pace would turn most answers into 429
# (the limits have their tests in tests/it/abuse.rs).
"$bin" serve --addr "127.0.0.1:$port" --data-dir "$work/data" --admin-token "$BOXOFFICE_FUZZ_ADMIN" \
    --auth-secret "$secret" --rate-limit-buyer 0 --rate-limit-address 0 \
    --payment-latency-ms 0..0 --durability normal >"$work/boxoffice.log" 2>&1 &
server=$!
cleanup() {
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 100); do
    curl -fsS "$url/actuator/health" >/dev/null 2>&1 && break
    kill -0 "$server" 2>/dev/null || { cat "$work/boxoffice.log"; echo "boxoffice did not start" >&2; exit 1; }
    sleep 0.1
done

status=0
# One worker: schemathesis' workers are threads, and Hypothesis, which draws the cases,
# is not thread-safe — with two, a CI run once died of a FlakyFailure inside its own
# generator (not a finding about the server).
config="$PWD/tests/fuzz/schemathesis.toml"
# From the scratch directory: schemathesis keeps state in ./.schemathesis.
(cd "$work" && "$venv/bin/schemathesis" --no-color --config-file "$config" run "$url/ticketing/api/openapi.yaml" \
    --url "$url" \
    --exclude-path '/ticketing/api/events/{id}/seats/stream' \
    --exclude-path '/ticketing/api/queue/{eventId}/me/stream' \
    --checks "${FUZZ_CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance}" \
    --max-examples "${FUZZ_EXAMPLES:-50}" \
    --seed "${FUZZ_SEED:-20250913}" \
    --generation-database none \
    --request-timeout 10 \
    --workers 1 \
    ${FUZZ_ARGS:-}) \
    || status=$?
if [ "$status" -ne 0 ]; then
    echo "== schemathesis found problems; the server's last log lines:"
    tail -n 20 "$work/boxoffice.log"
fi
exit "$status"
