//! The report of a load run: as text, JSON, and an HTML page with charts.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use crate::best::BestAvailableSummary;
use crate::room::RoomSummary;
use crate::run::BotSummary;
use crate::stats::{Check, Summary, TimelinePoint};
use crate::{Scenario, Stage};

#[derive(Debug, Clone, Serialize)]
pub struct Threshold {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

impl Threshold {
    pub fn new(name: &str, ok: bool, detail: String) -> Self {
        Threshold { name: name.to_owned(), ok, detail }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub scenario: Scenario,
    pub url: String,
    pub stages: Vec<Stage>,
    pub event_id: i64,
    pub seats: i64,
    pub seats_sold: usize,
    pub max_users: usize,
    pub load_seconds: f64,
    pub requests: u64,
    pub requests_per_second: f64,
    /// Purchases that reached CONFIRMED.
    pub purchases: u64,
    pub purchases_per_second: f64,
    /// Latency of each step, from when the request was due.
    pub steps: BTreeMap<String, Summary>,
    /// Order accepted → CONFIRMED/CANCELLED as the server recorded it.
    pub final_state_server: Option<Summary>,
    /// Last user stopped → nothing in flight.
    pub drain_ms: Option<u64>,
    /// Outbox row committed → published, p99 (the upper bound of its histogram bucket),
    /// over every process since it started.
    pub outbox_lag_p99_ms: Option<f64>,
    pub statuses: BTreeMap<String, u64>,
    pub checks: BTreeMap<String, Check>,
    pub check_rate: f64,
    pub audit_violations: Vec<String>,
    pub thresholds: Vec<Threshold>,
    pub passed: bool,
    pub timeline: Vec<TimelinePoint>,
    /// The `spinning` scenario's bot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bot: Option<BotSummary>,
    /// The `best-available` scenario's groups, stranded seats and sell-out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub best_available: Option<BestAvailableSummary>,
    /// The waiting room's scenarios: the visitors, their time in queue, the order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting_room: Option<RoomSummary>,
}

fn row(name: &str, s: &Summary) -> String {
    format!(
        "  {name:<30} {:>8} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}\n",
        s.count, s.avg_ms, s.p50_ms, s.p95_ms, s.p99_ms, s.max_ms
    )
}

impl Report {
    pub fn text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\nscenario {:?} against {} — {:.1} s, up to {} users",
            self.scenario, self.url, self.load_seconds, self.max_users
        );
        let _ = writeln!(
            out,
            "  {:<30} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "latency (ms)", "count", "avg", "p50", "p95", "p99", "max"
        );
        for (name, s) in &self.steps {
            out.push_str(&row(name, s));
        }
        if let Some(s) = &self.final_state_server {
            out.push_str(&row("final state (server)", s));
        }
        let _ = writeln!(
            out,
            "  throughput: {:.0} requests/s, {:.1} purchases/s ({} confirmed)",
            self.requests_per_second, self.purchases_per_second, self.purchases
        );
        if self.seats > 0 {
            let _ = writeln!(out, "  seats sold: {} of {}", self.seats_sold, self.seats);
        }
        if let Some(bot) = &self.bot {
            let _ = writeln!(
                out,
                "  bot: {} holds asked, {} granted, at most {} seats held at once",
                bot.requests, bot.granted, bot.held_max
            );
        }
        if let Some(best) = &self.best_available {
            out.push_str(&best.text());
        }
        if let Some(room) = &self.waiting_room {
            out.push_str(&room.text());
        }
        if let Some(ms) = self.outbox_lag_p99_ms {
            let _ = writeln!(out, "  outbox lag p99 ≤ {ms} ms (histogram bucket bound)");
        }
        match self.drain_ms {
            Some(ms) => {
                let _ = writeln!(out, "  drained {ms} ms after the last user stopped");
            }
            None if self.scenario != Scenario::Ceiling => {
                let _ = writeln!(out, "  NOT drained");
            }
            None => {}
        }
        for (name, c) in &self.checks {
            let mark = if c.fails == 0 { "✓" } else { "✗" };
            let _ = writeln!(out, "  {mark} {name}: {} passed, {} failed", c.passes, c.fails);
        }
        for v in &self.audit_violations {
            let _ = writeln!(out, "  VIOLATION: {v}");
        }
        for t in &self.thresholds {
            let _ = writeln!(out, "  {} {}: {}", if t.ok { "PASS" } else { "FAIL" }, t.name, t.detail);
        }
        let _ = writeln!(out, "{}", if self.passed { "load test passed" } else { "load test FAILED" });
        out
    }

    /// A self-contained page: summary tables and SVG charts of latency, throughput and
    /// users over time.
    pub fn html(&self) -> String {
        let secs: Vec<f64> = self.timeline.iter().map(|p| p.second as f64).collect();
        let latency = chart(
            "Latency per second (ms, from when each request was due)",
            &secs,
            &[
                ("p50", "#2b8cbe", self.timeline.iter().map(|p| p.p50_ms).collect()),
                ("p99", "#e34a33", self.timeline.iter().map(|p| p.p99_ms).collect()),
            ],
        );
        let throughput = chart(
            "Throughput per second",
            &secs,
            &[
                ("requests", "#2b8cbe", self.timeline.iter().map(|p| p.requests as f64).collect()),
                ("purchases confirmed", "#31a354", self.timeline.iter().map(|p| p.purchases as f64).collect()),
                ("errors", "#e34a33", self.timeline.iter().map(|p| p.errors as f64).collect()),
            ],
        );
        let users = chart(
            "Virtual users",
            &secs,
            &[("users", "#756bb1", self.timeline.iter().map(|p| p.users as f64).collect())],
        );
        let mut steps = String::new();
        let mut all: Vec<(String, &Summary)> = self.steps.iter().map(|(k, v)| (k.clone(), v)).collect();
        if let Some(s) = &self.final_state_server {
            all.push(("final state (server)".into(), s));
        }
        for (name, s) in all {
            let _ = write!(
                steps,
                "<tr><td>{}</td><td>{}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td></tr>",
                esc(&name),
                s.count,
                s.avg_ms,
                s.p50_ms,
                s.p95_ms,
                s.p99_ms,
                s.max_ms
            );
        }
        let mut thresholds = String::new();
        for t in &self.thresholds {
            let _ = write!(
                thresholds,
                "<li class=\"{}\">{} {} — {}</li>",
                if t.ok { "ok" } else { "bad" },
                if t.ok { "✓" } else { "✗" },
                esc(&t.name),
                esc(&t.detail)
            );
        }
        format!(
            r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>boxoffice load report</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font:15px system-ui,sans-serif;margin:2rem auto;max-width:1000px;color:#222;padding:0 1rem}}
h1{{font-size:1.5rem}}.verdict{{font-size:1.2rem;font-weight:600}}.ok{{color:#1a7f37}}.bad{{color:#c62828}}
table{{border-collapse:collapse;margin:1rem 0}}td,th{{padding:.3rem .7rem;border-bottom:1px solid #ddd;text-align:right}}
td:first-child,th:first-child{{text-align:left}}.cards{{display:flex;gap:1rem;flex-wrap:wrap}}
.card{{border:1px solid #ddd;border-radius:8px;padding:.7rem 1rem;min-width:10rem}}.card b{{display:block;font-size:1.4rem}}
svg{{background:#fafafa;border:1px solid #eee;border-radius:6px;margin:.5rem 0}}</style></head><body>
<h1>boxoffice load report — {scenario:?}</h1>
<p class="verdict {verdict_class}">{verdict}</p>
<div class="cards">
<div class="card">purchases/s<b>{pps:.1}</b></div><div class="card">requests/s<b>{rps:.0}</b></div>
<div class="card">hold p99<b>{hold_p99}</b></div><div class="card">final state p99<b>{final_p99}</b></div>
<div class="card">drained after<b>{drain}</b></div><div class="card">checks passed<b>{checks:.2}%</b></div>
</div>
<ul>{thresholds}</ul>
{latency}{throughput}{users}
<h2>Latency by step (ms)</h2>
<table><tr><th>step</th><th>count</th><th>avg</th><th>p50</th><th>p95</th><th>p99</th><th>max</th></tr>{steps}</table>
<p>{url} · {seconds:.1} s · up to {max_users} users · show {event_id}: {sold} of {seats} seats sold</p>
{best}</body></html>"#,
            scenario = self.scenario,
            verdict_class = if self.passed { "ok" } else { "bad" },
            verdict = if self.passed { "Passed" } else { "Failed" },
            pps = self.purchases_per_second,
            rps = self.requests_per_second,
            hold_p99 = self.steps.get("hold").map_or("–".into(), |s| format!("{:.1} ms", s.p99_ms)),
            final_p99 = self.final_state_server.as_ref().map_or("–".into(), |s| format!("{:.0} ms", s.p99_ms)),
            drain = self.drain_ms.map_or("–".into(), |d| format!("{d} ms")),
            checks = self.check_rate * 100.0,
            url = esc(&self.url),
            seconds = self.load_seconds,
            max_users = self.max_users,
            event_id = self.event_id,
            sold = self.seats_sold,
            seats = self.seats,
            best = [
                self.best_available.as_ref().map(BestAvailableSummary::text),
                self.waiting_room.as_ref().map(RoomSummary::text)
            ]
            .into_iter()
            .flatten()
            .map(|text| format!("<pre>{}</pre>", esc(text.trim_end())))
            .collect::<String>(),
        )
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A line chart as inline SVG.
fn chart(title: &str, xs: &[f64], series: &[(&str, &str, Vec<f64>)]) -> String {
    let (w, h, pad) = (960.0, 260.0, 44.0);
    let x_max = xs.last().copied().unwrap_or(1.0).max(1.0);
    let y_max = series.iter().flat_map(|s| s.2.iter().copied()).fold(0.0f64, f64::max).max(1e-9) * 1.1;
    let sx = |x: f64| pad + x / x_max * (w - 2.0 * pad);
    let sy = |y: f64| h - pad - y / y_max * (h - 2.0 * pad);
    let mut svg = format!(
        r#"<h2>{}</h2><svg viewBox="0 0 {w} {h}" width="100%" role="img" aria-label="{}">"#,
        esc(title),
        esc(title)
    );
    for i in 0..=4 {
        let y = y_max * i as f64 / 4.0;
        let py = sy(y);
        let _ = write!(
            svg,
            r##"<line x1="{pad}" x2="{}" y1="{py:.1}" y2="{py:.1}" stroke="#ddd"/><text x="4" y="{:.1}" font-size="11">{}</text>"##,
            w - pad,
            py + 4.0,
            fmt_num(y),
        );
    }
    let _ = write!(svg, r#"<text x="{:.1}" y="{:.1}" font-size="11">{x_max:.0} s</text>"#, w - pad - 20.0, h - 12.0);
    for (i, (name, color, ys)) in series.iter().enumerate() {
        let points: Vec<String> = xs.iter().zip(ys).map(|(x, y)| format!("{:.1},{:.1}", sx(*x), sy(*y))).collect();
        let _ =
            write!(svg, r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#, points.join(" "));
        let lx = pad + 10.0 + 170.0 * i as f64;
        let _ = write!(
            svg,
            r#"<rect x="{lx}" y="8" width="12" height="12" fill="{color}"/><text x="{}" y="18" font-size="12">{}</text>"#,
            lx + 16.0,
            esc(name)
        );
    }
    svg.push_str("</svg>");
    svg
}

fn fmt_num(v: f64) -> String {
    if v >= 100.0 { format!("{v:.0}") } else { format!("{v:.2}") }
}
