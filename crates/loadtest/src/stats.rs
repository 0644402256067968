//! What a load run records: latency histograms per step, a per-second timeline, checks.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::best::Group;

/// How long the show must stay refused to the smallest group, with nothing in flight and
/// nothing granted, to count as sold out: seats an order gave back when it was cancelled
/// reach the server's picker a little after the buyer sees the order CANCELLED.
pub const SOLD_OUT_CONFIRM: Duration = Duration::from_millis(100);

/// Latencies in microseconds, up to a minute, 3 significant digits.
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds")
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub count: u64,
    pub avg_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

pub fn summarize(h: &Histogram<u64>) -> Summary {
    let ms = |us: u64| us as f64 / 1000.0;
    Summary {
        count: h.len(),
        avg_ms: if h.is_empty() { 0.0 } else { h.mean() / 1000.0 },
        p50_ms: ms(h.value_at_quantile(0.50)),
        p95_ms: ms(h.value_at_quantile(0.95)),
        p99_ms: ms(h.value_at_quantile(0.99)),
        max_ms: ms(h.max()),
    }
}

/// One second of the run.
pub struct Second {
    pub requests: u64,
    pub errors: u64,
    pub purchases: u64,
    pub users: usize,
    pub latency: Histogram<u64>,
}

impl Default for Second {
    fn default() -> Self {
        Second { requests: 0, errors: 0, purchases: 0, users: 0, latency: histogram() }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TimelinePoint {
    pub second: usize,
    pub users: usize,
    pub requests: u64,
    pub errors: u64,
    pub purchases: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Check {
    pub passes: u64,
    pub fails: u64,
}

#[derive(Default)]
pub struct Stats {
    pub steps: BTreeMap<&'static str, Histogram<u64>>,
    pub statuses: BTreeMap<String, u64>,
    pub checks: BTreeMap<&'static str, Check>,
    pub timeline: Vec<Second>,
    pub purchases: u64,
    /// `best-available`: the holds granted, in order; the holds refused, by status and
    /// error code (`409 NOT_ENOUGH_SEATS`); when the show sold out.
    pub groups: Vec<Group>,
    pub refused: BTreeMap<String, u64>,
    pub sold_out_at: Option<Duration>,
    /// When the smallest group was refused with nothing in flight, and the groups granted
    /// by then: sold out, if it still holds [`SOLD_OUT_CONFIRM`] later.
    pub sold_out_since: Option<(Duration, usize)>,
}

impl Stats {
    fn second(&mut self, at: Duration) -> &mut Second {
        let i = at.as_secs() as usize;
        if self.timeline.len() <= i {
            self.timeline.resize_with(i + 1, Second::default);
        }
        &mut self.timeline[i]
    }

    /// A request of `step` answered `status` after `latency`, measured from when it was
    /// due; `at` is when it was due, from the start of the run.
    pub fn request(&mut self, step: &'static str, status: u16, latency: Duration, at: Duration) {
        let us = (latency.as_micros() as u64).clamp(1, 60_000_000);
        self.steps.entry(step).or_insert_with(histogram).saturating_record(us);
        *self.statuses.entry(format!("{step} {status}")).or_default() += 1;
        let second = self.second(at);
        second.requests += 1;
        second.errors += u64::from(status == 0 || status >= 500);
        second.latency.saturating_record(us);
    }

    /// A duration that is not one request (the time to a final state).
    pub fn duration(&mut self, step: &'static str, d: Duration) {
        self.steps.entry(step).or_insert_with(histogram).saturating_record((d.as_micros() as u64).max(1));
    }

    pub fn check(&mut self, name: &'static str, ok: bool) {
        let c = self.checks.entry(name).or_default();
        if ok { c.passes += 1 } else { c.fails += 1 }
    }

    pub fn purchase(&mut self, at: Duration) {
        self.purchases += 1;
        self.second(at).purchases += 1;
    }

    /// The smallest group was refused `NOT_ENOUGH_SEATS` at `at`, with purchases still
    /// in flight or not: true when this makes the show sold out — refused with nothing in
    /// flight since at least [`SOLD_OUT_CONFIRM`], nothing granted meanwhile.
    pub fn smallest_refused(&mut self, at: Duration, in_flight: bool) -> bool {
        let granted = self.groups.len();
        match self.sold_out_since {
            _ if in_flight => self.sold_out_since = None,
            Some((since, then)) if then == granted => {
                if at >= since + SOLD_OUT_CONFIRM {
                    self.sold_out_at.get_or_insert(since);
                    return true;
                }
            }
            _ => self.sold_out_since = Some((at, granted)),
        }
        self.sold_out_at.is_some()
    }

    pub fn users(&mut self, at: Duration, users: usize) {
        let s = self.second(at);
        s.users = s.users.max(users);
    }

    pub fn timeline(&self) -> Vec<TimelinePoint> {
        self.timeline
            .iter()
            .enumerate()
            .map(|(i, s)| TimelinePoint {
                second: i,
                users: s.users,
                requests: s.requests,
                errors: s.errors,
                purchases: s.purchases,
                p50_ms: s.latency.value_at_quantile(0.5) as f64 / 1000.0,
                p99_ms: s.latency.value_at_quantile(0.99) as f64 / 1000.0,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_the_timeline_come_from_what_was_recorded() {
        let mut stats = Stats::default();
        for ms in 1..=100u64 {
            stats.request("hold", 201, Duration::from_millis(ms), Duration::from_millis(ms * 20));
        }
        stats.request("hold", 503, Duration::from_millis(5), Duration::from_millis(1500));
        let s = summarize(&stats.steps["hold"]);
        assert_eq!(s.count, 101);
        assert!((49.0..=51.5).contains(&s.p50_ms), "{s:?}");
        assert!((98.0..=100.5).contains(&s.p99_ms), "{s:?}");
        let timeline = stats.timeline();
        assert_eq!(timeline.len(), 3);
        assert_eq!(timeline[0].requests, 49);
        assert_eq!(timeline[1].errors, 1);
        assert_eq!(stats.statuses["hold 503"], 1);
    }

    #[test]
    fn the_show_is_sold_out_when_refusals_last_with_nothing_in_flight_or_granted() {
        let ms = Duration::from_millis;
        let mut stats = Stats::default();
        assert!(!stats.smallest_refused(ms(1000), true), "purchases in flight may give seats back");
        assert!(!stats.smallest_refused(ms(1010), false), "the first quiet refusal");
        assert!(!stats.smallest_refused(ms(1050), false), "too soon to be sure");
        stats.groups.push(Group { seats: 2, adjacent: true });
        assert!(!stats.smallest_refused(ms(1200), false), "a group was granted meanwhile");
        assert!(!stats.smallest_refused(ms(1250), true));
        assert!(!stats.smallest_refused(ms(1260), false));
        assert!(stats.smallest_refused(ms(1360), false));
        assert_eq!(stats.sold_out_at, Some(ms(1260)), "since the refusals began");
        assert!(stats.smallest_refused(ms(1400), true), "sold out stays sold out");
    }
}
