#!/usr/bin/env python3
# Per-hop latencies of a run: p50 and p99 (bucket bounds) of the outbox lag (and of the
# broker's acknowledgement in it) and of each consumer group's event lag, summed over the
# processes whose base URLs are given.
# Usage: ADMIN_TOKEN=… python3 bench/hops.py URL...  (the metrics need the operator's token)
import collections, os, re, sys, urllib.request
series = collections.defaultdict(lambda: collections.defaultdict(float))
for u in sys.argv[1:]:
    req = urllib.request.Request(u + "/actuator/prometheus",
                                 headers={"Authorization": "Bearer " + os.environ.get("ADMIN_TOKEN", "bench")})
    t = urllib.request.urlopen(req).read().decode()
    for line in t.splitlines():
        m = re.match(r'(outbox_publish_lag_seconds|outbox_broker_ack_seconds|consumer_event_lag_seconds|http_server_request_duration_seconds)_bucket\{(.*)\} (\S+)', line)
        if not m: continue
        labels = m.group(2)
        # `le`, not the end of another label's name (`module="…"`).
        le = re.search(r'(?:^|,)le="([^"]+)"', labels).group(1)
        key = m.group(1) + " " + re.sub(r'(?:^|,)le="[^"]+"', '', labels)
        series[key][float('inf') if le == '+Inf' else float(le)] += float(m.group(3))
for k, b in sorted(series.items()):
    total = b[float('inf')]
    if total == 0: continue
    def q(p):
        for le in sorted(b):
            if b[le] >= p * total: return le
    print(f"{int(total):>8} p50<={q(0.5)} p99<={q(0.99)}  {k}")
