#!/usr/bin/env python3
"""Writes a venue layout (docs/VENUES.md) of about N seats for the benchmarks: an arena of
sections around a stage, each of 25-seat rows curving around it, four price categories
by distance, a few wheelchair spaces with companions per section, and no standing area.
Usage: python3 bench/venue.py 20000 > /tmp/arena-20000.json"""
import json
import math
import sys

seats_wanted = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
per_row = 25
rows_per_section = 20
sections = max(1, round(seats_wanted / (per_row * rows_per_section)))
categories = [
    {"key": "A", "name": "Premium", "price": 15000, "colour": "#c0392b"},
    {"key": "B", "name": "Lower", "price": 9000, "colour": "#d35400"},
    {"key": "C", "name": "Upper", "price": 6000, "colour": "#2980b9"},
    {"key": "D", "name": "Gods", "price": 3500, "colour": "#27ae60"},
]
layout = {"categories": categories, "sections": [], "areas": []}
for s in range(sections):
    ring, slot = divmod(s, 12)
    angle = 2 * math.pi * slot / 12
    base = 200 + ring * 260
    rows = []
    for r in range(rows_per_section):
        radius = base + r * 12
        seats = []
        for k in range(per_row):
            a = angle + (k - per_row / 2) * (math.pi / 6) / per_row
            seat = {"label": str(k + 1), "x": round(radius * math.cos(a), 2), "y": round(radius * math.sin(a), 2),
                    "category": "ABCD"[min(3, (ring * rows_per_section + r) // 10)]}
            if r == 0 and k in (0, per_row - 1):
                seat["accessible"] = True
            if r == 0 and k in (1, per_row - 2):
                seat["companion"] = True
            seats.append(seat)
        rows.append({"label": str(r + 1), "seats": seats})
    # Every block faces the stage at the centre: "best" is nearest to it.
    layout["sections"].append({"name": f"Block {s + 1}", "focal": {"x": 0, "y": 0}, "rows": rows})
json.dump(layout, sys.stdout)
