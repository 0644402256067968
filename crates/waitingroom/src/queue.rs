//! A show's queue as pure logic: who joined, in what order they are let through, and
//! what each visitor is told — on a time the caller passes in, so tests move it at will.
//!
//! The rules (Queue-it's): visitors who come before the on-sale wait in a pre-queue; at
//! the on-sale the pre-queue is put in a random order from a seed drawn then and
//! recorded ([`shuffle`] recomputes it), and later arrivals queue behind in arrival
//! order. A serving counter moves through the queue at the room's rate; a visitor who
//! has not been seen for the grace period when the counter reaches them (or when they
//! come back) has lost the place — a no-show, skipped without using up the rate.

use std::collections::{HashMap, VecDeque};

use contract::Millis;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha20Rng;
use serde::Serialize;

/// How fast a room lets visitors through, and what the operator sets for a show: the
/// contract's, as the create and change requests parse them.
pub use contract::room::{RoomPlan as Settings, RoomRate as Rate};

/// The pre-queue's shuffle, as recorded: its seed, the last entry (by id) it took, and
/// when it was drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Draw {
    pub seed: u64,
    pub prequeue_last: i64,
    pub drawn_at: Millis,
}

/// The serving counter: queue positions it has passed (admitted or skipped), the
/// fraction of a visitor it has earned towards the next, and when it last moved.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Counter {
    pub served: u64,
    pub carry: f64,
    pub served_at: Millis,
}

/// One visitor's place; `id` is the arrival order.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub id: i64,
    pub buyer: String,
    pub joined_at: Millis,
    pub seen_at: Millis,
    pub admitted_at: Option<Millis>,
    pub no_show: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Prequeue,
    Waiting,
    Admitted,
    Expired,
}

/// What a visitor is told.
#[derive(Debug, Clone, PartialEq)]
pub struct View {
    pub status: Status,
    /// 1-based, once the queue has an order (not in the pre-queue).
    pub position: Option<u64>,
    pub ahead: Option<u64>,
    pub estimated_wait_secs: Option<u64>,
    /// Until when an admitted visitor's admission holds.
    pub admitted_until: Option<Millis>,
}

/// What one move of the counter did, for storage to record.
#[derive(Debug, Default, PartialEq)]
pub struct Advanced {
    pub admitted: Vec<i64>,
    pub no_shows: Vec<i64>,
    /// How long each admitted visitor waited: from joining, or from the on-sale for the
    /// pre-queue.
    pub waits: Vec<Millis>,
}

impl Advanced {
    pub fn is_empty(&self) -> bool {
        self.admitted.is_empty() && self.no_shows.is_empty()
    }
}

/// How long a visitor may go unseen, and how long an admission lasts.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub grace_ms: Millis,
    pub window_ms: Millis,
}

/// The pre-queue's order: its entries' ids, sorted, then shuffled (Fisher–Yates, as
/// `rand`'s `SliceRandom::shuffle`) by ChaCha20 seeded with `seed` — the same ids and
/// seed give the same order, so it can be checked later. The generator is named, not
/// `rand`'s default (which may change between versions), so a recorded order stays
/// checkable; a unit test pins one order.
pub fn shuffle(ids: &[i64], seed: u64) -> Vec<i64> {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.shuffle(&mut ChaCha20Rng::seed_from_u64(seed));
    ids
}

/// How long the measured rate looks back.
const MEASURE_MS: Millis = 60_000;

/// A show's room: its settings, its entries, the queue order and the counter.
#[derive(Debug, Clone, Default)]
pub struct Room {
    pub settings: Settings,
    pub draw: Option<Draw>,
    pub counter: Counter,
    /// The storage's version of the room this state reflects.
    pub version: i64,
    /// By id.
    entries: Vec<Entry>,
    /// Each buyer's entry id (ids are stable; indexes move when a late entry is put in).
    by_buyer: HashMap<String, i64>,
    /// Queue order once drawn: indexes into `entries`, position 1 first.
    order: Vec<usize>,
    /// Each entry's 1-based position (0 before the draw).
    positions: Vec<u64>,
    /// When recent admissions happened, for the measured rate.
    admissions: VecDeque<Millis>,
    /// Entries seen, and places lost on coming back, since storage last heard of them.
    seen: std::collections::HashSet<i64>,
    lost: Vec<i64>,
}

impl Room {
    pub fn new(settings: Settings) -> Room {
        Room { settings, ..Room::default() }
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn entry(&self, buyer: &str) -> Option<&Entry> {
        self.index_of(buyer).map(|i| &self.entries[i])
    }

    fn index_of(&self, buyer: &str) -> Option<usize> {
        let &id = self.by_buyer.get(buyer)?;
        self.entries.binary_search_by_key(&id, |e| e.id).ok()
    }

    pub fn contains(&self, id: i64) -> bool {
        self.entries.binary_search_by_key(&id, |e| e.id).is_ok()
    }

    pub fn last_id(&self) -> i64 {
        self.entries.last().map_or(0, |e| e.id)
    }

    /// Visitors in the queue order (ids), position 1 first.
    pub fn order(&self) -> Vec<i64> {
        self.order.iter().map(|&i| self.entries[i].id).collect()
    }

    /// Adds an entry (a join, or one read from storage); one already known is ignored.
    pub fn add(&mut self, entry: Entry) {
        if self.by_buyer.contains_key(&entry.buyer) || self.contains(entry.id) {
            return;
        }
        self.by_buyer.insert(entry.buyer.clone(), entry.id);
        if entry.id > self.last_id() {
            let index = self.entries.len();
            let arrival = self.draw.is_some_and(|d| entry.id > d.prequeue_last);
            if let Some(at) = entry.admitted_at {
                self.admissions.push_back(at);
            }
            self.entries.push(entry);
            self.positions.push(0);
            if arrival {
                self.order.push(index);
                self.positions[index] = self.order.len() as u64;
            }
        } else {
            self.insert_late(entry);
        }
    }

    /// Puts an entry committed after a later one (concurrent joins) in its place. A
    /// waiting arrival goes into the arrivals' tail in id order without rebuilding the
    /// rest — with many joins at once this happens often, and a rebuild each time would
    /// make joining quadratic; anything else (a pre-queue entry, an admitted one) is
    /// rare and rebuilds. Only what follows it moves: the pre-queue's ids (and so its
    /// indexes) are all below an arrival's, and the arrivals are in the order in id order,
    /// so the order's entries at or after its index are those after its place.
    fn insert_late(&mut self, entry: Entry) {
        let at = self.entries.partition_point(|e| e.id < entry.id);
        let prequeue_last = self.draw.map(|d| d.prequeue_last);
        let waiting_arrival = entry.admitted_at.is_none() && prequeue_last.is_none_or(|last| entry.id > last);
        // Its place in the order: after the pre-queue and the arrivals before it.
        let p = self.order.partition_point(|&i| i < at);
        self.entries.insert(at, entry);
        if !waiting_arrival {
            self.reindex();
            return;
        }
        self.positions.insert(at, 0);
        if prequeue_last.is_none() {
            return; // no order before the draw
        }
        for i in &mut self.order[p..] {
            *i += 1;
        }
        self.order.insert(p, at);
        for (position, &i) in (p as u64 + 1..).zip(&self.order[p..]) {
            self.positions[i] = position;
        }
    }

    /// Rebuilds the indexes and the queue order from the entries and the draw.
    fn reindex(&mut self) {
        self.positions = vec![0; self.entries.len()];
        self.order.clear();
        let mut admissions: Vec<Millis> = self.entries.iter().filter_map(|e| e.admitted_at).collect();
        admissions.sort_unstable();
        self.admissions = admissions.into();
        let Some(draw) = self.draw else { return };
        let prequeue: Vec<i64> = self.entries.iter().map(|e| e.id).filter(|&id| id <= draw.prequeue_last).collect();
        let index: HashMap<i64, usize> = self.entries.iter().enumerate().map(|(i, e)| (e.id, i)).collect();
        self.order = shuffle(&prequeue, draw.seed).into_iter().map(|id| index[&id]).collect();
        self.order.extend((0..self.entries.len()).filter(|&i| self.entries[i].id > draw.prequeue_last));
        for (position, &i) in (1..).zip(&self.order) {
            self.positions[i] = position;
        }
    }

    /// Takes what storage holds. Places this replica knows that the snapshot does not
    /// (joins committed after it was read) are kept, and so are visits not yet written.
    pub fn load(
        &mut self,
        settings: Settings,
        draw: Option<Draw>,
        counter: Counter,
        version: i64,
        mut entries: Vec<Entry>,
    ) {
        entries.sort_by_key(|e| e.id);
        for known in std::mem::take(&mut self.entries) {
            match entries.binary_search_by_key(&known.id, |e| e.id) {
                Ok(i) => {
                    entries[i].seen_at = entries[i].seen_at.max(known.seen_at);
                    entries[i].no_show |= known.no_show;
                }
                Err(i) => entries.insert(i, known),
            }
        }
        self.settings = settings;
        self.draw = draw;
        self.counter = counter;
        self.version = version;
        self.by_buyer = entries.iter().map(|e| (e.buyer.clone(), e.id)).collect();
        self.entries = entries;
        self.reindex();
    }

    /// Whether the pre-queue is due to be shuffled: the on-sale has come and it was not.
    pub fn draw_due(&self, now: Millis) -> bool {
        self.draw.is_none() && self.settings.on_sale_at.is_some_and(|at| now >= at)
    }

    /// The draw to record now with `seed`: the pre-queue is everyone who joined before
    /// the on-sale.
    pub fn draw_for(&self, seed: u64, now: Millis) -> Draw {
        let on_sale = self.settings.on_sale_at.unwrap_or(now);
        let prequeue_last = self.entries.iter().filter(|e| e.joined_at < on_sale).map(|e| e.id).max().unwrap_or(0);
        Draw { seed, prequeue_last, drawn_at: now }
    }

    /// Puts the pre-queue in the drawn order; the counter starts at the draw.
    pub fn apply_draw(&mut self, draw: Draw) {
        self.draw = Some(draw);
        self.counter = Counter { served: 0, carry: 0.0, served_at: draw.drawn_at };
        self.reindex();
    }

    /// Notes that a visitor asked (polled or is listening); false for an unknown one.
    pub fn touch(&mut self, buyer: &str, now: Millis, timing: Timing) -> bool {
        let Some(i) = self.index_of(buyer) else { return false };
        let waiting = self.entries[i].admitted_at.is_none() && !self.entries[i].no_show;
        if waiting && now - self.entries[i].seen_at > timing.grace_ms {
            // Gone longer than the grace period: the place is lost.
            self.entries[i].no_show = true;
            self.lost.push(self.entries[i].id);
        } else {
            self.entries[i].seen_at = self.entries[i].seen_at.max(now);
            self.seen.insert(self.entries[i].id);
        }
        true
    }

    /// Visitors next in line (from the counter on, at most `limit`) who look gone to
    /// this replica: they may have been asking another one, whose word is in storage.
    pub fn suspects(&self, now: Millis, timing: Timing, limit: usize) -> Vec<i64> {
        let next = self.order.iter().skip(self.counter.served as usize).map(|&i| &self.entries[i]);
        next.filter(|e| !e.no_show && now - e.seen_at > timing.grace_ms).take(limit).map(|e| e.id).collect()
    }

    /// What storage says of an entry another replica may have seen or given up.
    pub fn heard(&mut self, id: i64, seen_at: Millis, no_show: bool) {
        if let Ok(i) = self.entries.binary_search_by_key(&id, |e| e.id) {
            let entry = &mut self.entries[i];
            entry.seen_at = entry.seen_at.max(seen_at);
            entry.no_show |= no_show;
        }
    }

    /// The entries seen, and the places lost, since the last call: for storage.
    pub fn take_news(&mut self) -> (Vec<i64>, Vec<i64>) {
        (self.seen.drain().collect(), std::mem::take(&mut self.lost))
    }

    /// Moves the counter to `now` at `per_minute`, admitting in queue order and skipping
    /// visitors who lost their place.
    pub fn advance(&mut self, now: Millis, per_minute: f64, timing: Timing) -> Advanced {
        let mut done = Advanced::default();
        if !self.settings.enabled || self.draw.is_none() {
            return done;
        }
        let drawn_at = self.draw.map_or(0, |d| d.drawn_at);
        let Counter { mut served, mut carry, served_at } = self.counter;
        let mut budget = None;
        while let Some(&i) = self.order.get(served as usize) {
            let entry = &mut self.entries[i];
            if entry.no_show || now - entry.seen_at > timing.grace_ms {
                if !entry.no_show {
                    entry.no_show = true;
                    done.no_shows.push(entry.id);
                }
                served += 1;
                continue;
            }
            let budget = budget.get_or_insert_with(|| {
                // The rate is earned only while someone waits: a queue that ran empty
                // starts again when its next visitor joined, without a banked burst.
                let start = served_at.max(entry.joined_at);
                if entry.joined_at > served_at {
                    carry = 0.0;
                }
                carry + per_minute * (now - start).max(0) as f64 / 60_000.0
            });
            if *budget < 1.0 {
                break;
            }
            *budget -= 1.0;
            entry.admitted_at = Some(now);
            done.admitted.push(entry.id);
            done.waits.push(now - entry.joined_at.max(drawn_at));
            self.admissions.push_back(now);
            served += 1;
        }
        if !done.is_empty() {
            let drained = served as usize == self.order.len();
            let left = budget.unwrap_or(carry);
            self.counter = Counter { served, carry: if drained { 0.0 } else { left.fract() }, served_at: now };
        }
        while self.admissions.front().is_some_and(|&at| now - at > MEASURE_MS) {
            self.admissions.pop_front();
        }
        done
    }

    /// Admissions per second over the last minute, else the configured rate.
    fn measured_per_sec(&self, now: Millis, per_minute: f64) -> f64 {
        let recent = self.admissions.iter().filter(|&&at| now - at <= MEASURE_MS).count();
        let since = self.draw.map_or(now, |d| d.drawn_at).max(now - MEASURE_MS);
        let span = (now - since).max(1_000) as f64 / 1_000.0;
        if recent >= 2 { recent as f64 / span } else { per_minute / 60.0 }
    }

    /// What `buyer` is told now, if they joined.
    pub fn view(&self, buyer: &str, now: Millis, per_minute: f64, timing: Timing) -> Option<View> {
        let i = self.index_of(buyer)?;
        let entry = &self.entries[i];
        let told = |status, position, ahead, wait, until| View {
            status,
            position,
            ahead,
            estimated_wait_secs: wait,
            admitted_until: until,
        };
        if !self.settings.enabled {
            // No room: everyone is let through.
            return Some(told(Status::Admitted, None, Some(0), Some(0), Some(now + timing.window_ms)));
        }
        if let Some(at) = entry.admitted_at {
            let until = at + timing.window_ms;
            let status = if now < until { Status::Admitted } else { Status::Expired };
            return Some(told(status, Some(self.positions[i]), Some(0), Some(0), Some(until)));
        }
        if entry.no_show || now - entry.seen_at > timing.grace_ms {
            return Some(told(Status::Expired, None, None, None, None));
        }
        if self.draw.is_none() {
            let until_sale = self.settings.on_sale_at.map(|at| ((at - now).max(0) as u64).div_ceil(1000));
            return Some(told(Status::Prequeue, None, None, until_sale, None));
        }
        let position = self.positions[i];
        let ahead = position.saturating_sub(self.counter.served + 1);
        let per_sec = self.measured_per_sec(now, per_minute);
        let wait = if per_sec > 0.0 { (ahead as f64 / per_sec).ceil() as u64 } else { 0 };
        Some(told(Status::Waiting, Some(position), Some(ahead), Some(wait), None))
    }

    /// Visitors let through out of queue order: an admitted visitor behind one let
    /// through later, or behind the counter's reach; one passed by the counter neither
    /// admitted nor gone. Zero for a fair room.
    pub fn out_of_order(&self) -> usize {
        let mut wrong = 0;
        let mut last = Millis::MIN;
        for (position, &i) in self.order.iter().enumerate() {
            let entry = &self.entries[i];
            let passed = (position as u64) < self.counter.served;
            match entry.admitted_at {
                Some(at) if !passed || at < last => wrong += 1,
                Some(at) => last = at,
                None if passed && !entry.no_show => wrong += 1,
                None => {}
            }
        }
        // Admitted without a place in the order (before the draw).
        wrong
            + self
                .entries
                .iter()
                .enumerate()
                .filter(|(i, e)| e.admitted_at.is_some() && self.positions[*i] == 0)
                .count()
    }

    /// Whether the room lets visitors through now: on, and its pre-queue drawn.
    pub fn open(&self) -> bool {
        self.settings.enabled && self.draw.is_some()
    }

    /// Waiting visitors (joined, not admitted, not gone), for the gauges.
    pub fn waiting(&self) -> usize {
        self.entries.iter().filter(|e| e.admitted_at.is_none() && !e.no_show).count()
    }

    /// What the operator watches at `now`: who was let through (in all, and in the last
    /// minute), the no-shows, and the median wait of those let through.
    pub fn figures(&self, now: Millis) -> Figures {
        let drawn_at = self.draw.map_or(0, |d| d.drawn_at);
        let mut waits: Vec<Millis> =
            self.entries.iter().filter_map(|e| e.admitted_at.map(|at| at - e.joined_at.max(drawn_at))).collect();
        let median_wait_ms = (!waits.is_empty()).then(|| {
            let middle = waits.len() / 2;
            *waits.select_nth_unstable(middle).1
        });
        Figures {
            admitted: waits.len(),
            admitted_last_minute: self
                .entries
                .iter()
                .filter(|e| e.admitted_at.is_some_and(|at| now - at <= 60_000))
                .count(),
            no_shows: self.entries.iter().filter(|e| e.no_show).count(),
            median_wait_ms,
        }
    }
}

/// A room's figures for the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Figures {
    pub admitted: usize,
    pub admitted_last_minute: usize,
    pub no_shows: usize,
    pub median_wait_ms: Option<Millis>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timing = Timing { grace_ms: 60_000, window_ms: 600_000 };
    const SALE: Millis = 1_000_000;

    fn room() -> Room {
        Room::new(Settings { enabled: true, rate: Rate::PerMinute(60), on_sale_at: Some(SALE) })
    }

    fn join(room: &mut Room, id: i64, at: Millis) {
        room.add(Entry { id, buyer: format!("b{id}"), joined_at: at, seen_at: at, admitted_at: None, no_show: false });
    }

    /// Everyone polls at `now`.
    fn poll_all(room: &mut Room, now: Millis) {
        let buyers: Vec<String> = room.entries().iter().map(|e| e.buyer.clone()).collect();
        for b in buyers {
            room.touch(&b, now, T);
        }
    }

    #[test]
    fn the_shuffle_is_reproducible_from_its_seed() {
        let ids: Vec<i64> = (1..=50).collect();
        let once = shuffle(&ids, 42);
        assert_eq!(once, shuffle(&ids, 42));
        let mut reversed = ids.clone();
        reversed.reverse();
        assert_eq!(once, shuffle(&reversed, 42), "the order does not depend on how ids are listed");
        assert_ne!(once, ids, "50 visitors are not left in arrival order");
        assert_ne!(once, shuffle(&ids, 43));
        let mut sorted = once.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, ids, "a permutation");
    }

    #[test]
    fn the_shuffle_is_pinned_to_chacha20() {
        // Recorded once: a change of generator (or of how it is used) breaks every
        // recorded order, and this test.
        let ids: Vec<i64> = (1..=10).collect();
        assert_eq!(shuffle(&ids, 42), PINNED_42);
    }

    const PINNED_42: [i64; 10] = [5, 8, 10, 6, 7, 2, 1, 3, 4, 9];

    #[test]
    fn before_the_on_sale_visitors_wait_in_the_prequeue() {
        let mut room = room();
        join(&mut room, 1, SALE - 10_000);
        let view = room.view("b1", SALE - 10_000, 60.0, T).unwrap();
        assert_eq!(view.status, Status::Prequeue);
        assert_eq!(view.position, None);
        assert_eq!(view.estimated_wait_secs, Some(10));
        assert!(!room.draw_due(SALE - 1));
        assert!(room.draw_due(SALE));
        assert!(room.view("nobody", SALE, 60.0, T).is_none());
    }

    #[test]
    fn the_prequeue_is_shuffled_at_the_on_sale_and_later_arrivals_queue_behind() {
        let mut room = room();
        for id in 1..=20 {
            join(&mut room, id, SALE - 30_000 + id);
        }
        join(&mut room, 21, SALE + 10);
        let draw = room.draw_for(7, SALE + 20);
        assert_eq!(draw.prequeue_last, 20);
        room.apply_draw(draw);
        join(&mut room, 22, SALE + 30);
        let order = room.order();
        assert_eq!(&order[..20], shuffle(&(1..=20).collect::<Vec<_>>(), 7).as_slice());
        assert_eq!(&order[20..], &[21, 22], "arrivals after the on-sale in arrival order");
        // Positions are unique and gap-free.
        let mut positions: Vec<u64> =
            (1..=22).map(|id| room.view(&format!("b{id}"), SALE + 30, 60.0, T).unwrap().position.unwrap()).collect();
        positions.sort_unstable();
        assert_eq!(positions, (1..=22).collect::<Vec<u64>>());
        // Reloading from storage gives the same order.
        let mut again = Room::default();
        again.load(room.settings, room.draw, room.counter, 1, room.entries().to_vec());
        assert_eq!(again.order(), order);
    }

    #[test]
    fn visitors_are_admitted_in_queue_order_at_the_rate() {
        let mut room = room();
        for id in 1..=5 {
            join(&mut room, id, SALE - 1_000);
        }
        room.apply_draw(room.draw_for(1, SALE));
        let order = room.order();
        poll_all(&mut room, SALE + 1_500);
        let first = room.advance(SALE + 1_500, 60.0, T);
        assert_eq!(first.admitted, vec![order[0]], "one a second at 60 a minute");
        let second = room.advance(SALE + 3_000, 60.0, T);
        assert_eq!(second.admitted, order[1..3].to_vec(), "the half second left over counts");
        assert!(room.advance(SALE + 3_100, 60.0, T).is_empty());
        let admitted = room.view(&format!("b{}", order[0]), SALE + 3_100, 60.0, T).unwrap();
        assert_eq!(admitted.status, Status::Admitted);
        assert_eq!(admitted.admitted_until, Some(SALE + 1_500 + T.window_ms));
        let waiting = room.view(&format!("b{}", order[4]), SALE + 3_100, 60.0, T).unwrap();
        assert_eq!(waiting.status, Status::Waiting);
        assert_eq!(waiting.position, Some(5));
        assert_eq!(waiting.ahead, Some(1));
        assert!(waiting.estimated_wait_secs.unwrap() >= 1);
        // The admission ends with its window.
        let later = room.view(&format!("b{}", order[0]), SALE + 1_500 + T.window_ms, 60.0, T).unwrap();
        assert_eq!(later.status, Status::Expired);
    }

    #[test]
    fn a_visitor_let_through_out_of_order_is_reported() {
        let mut room = room();
        for id in 1..=4 {
            join(&mut room, id, SALE - 1_000);
        }
        room.apply_draw(room.draw_for(3, SALE));
        poll_all(&mut room, SALE + 2_000);
        room.advance(SALE + 2_000, 60.0, T);
        assert_eq!(room.counter.served, 2);
        assert_eq!(room.out_of_order(), 0);
        // The last in line let through ahead of the counter.
        let last = room.order[3];
        room.entries[last].admitted_at = Some(SALE + 2_000);
        assert_eq!(room.out_of_order(), 1);
    }

    #[test]
    fn an_empty_queue_banks_no_burst() {
        let mut room = room();
        room.apply_draw(room.draw_for(1, SALE));
        for id in 1..=10 {
            join(&mut room, id, SALE + 600_000);
        }
        let done = room.advance(SALE + 601_000, 60.0, T);
        assert_eq!(done.admitted, vec![1], "ten idle minutes earn nothing for later visitors");
    }

    #[test]
    fn a_visitor_unseen_for_the_grace_period_loses_the_place() {
        let mut room = room();
        for id in 1..=3 {
            join(&mut room, id, SALE - 1_000);
        }
        room.apply_draw(room.draw_for(9, SALE));
        let order = room.order();
        // Only the second in line keeps asking.
        let keeper = format!("b{}", order[1]);
        for t in (0..=70).map(|s| SALE + s * 1_000) {
            room.touch(&keeper, t, T);
        }
        assert_eq!(room.suspects(SALE + 70_000, T, 10), vec![order[0], order[2]]);
        // Another replica saw the third a moment ago.
        room.heard(order[2], SALE + 69_000, false);
        assert_eq!(room.suspects(SALE + 70_000, T, 10), vec![order[0]]);
        let done = room.advance(SALE + 70_000, 1.0, T);
        assert_eq!(done.no_shows, vec![order[0]], "skipped without using the rate");
        assert_eq!(done.admitted, vec![order[1]]);
        let gone = room.view(&format!("b{}", order[0]), SALE + 70_000, 1.0, T).unwrap();
        assert_eq!(gone.status, Status::Expired);
        assert_eq!(room.view(&format!("b{}", order[2]), SALE + 70_000, 1.0, T).unwrap().status, Status::Waiting);
    }

    #[test]
    fn coming_back_after_the_grace_period_is_too_late() {
        let mut room = room();
        join(&mut room, 1, SALE - 1_000);
        room.apply_draw(room.draw_for(9, SALE));
        assert!(room.touch("b1", SALE + 60_000, T));
        assert!(room.touch("b1", SALE + 120_001, T));
        assert_eq!(room.view("b1", SALE + 120_001, 60.0, T).unwrap().status, Status::Expired);
        assert!(room.entry("b1").unwrap().no_show);
        assert_eq!(room.take_news(), (vec![1], vec![1]));
        assert!(!room.touch("nobody", SALE, T));
    }

    #[test]
    fn a_room_turned_off_lets_everyone_through() {
        let mut room = room();
        join(&mut room, 1, SALE - 1_000);
        room.settings.enabled = false;
        let view = room.view("b1", SALE - 500, 60.0, T).unwrap();
        assert_eq!(view.status, Status::Admitted);
        assert!(room.advance(SALE + 10_000, 60.0, T).is_empty());
    }

    #[test]
    fn an_entry_committed_late_takes_its_place() {
        let mut room = room();
        join(&mut room, 1, SALE - 3_000);
        join(&mut room, 3, SALE - 1_000);
        join(&mut room, 2, SALE - 2_000);
        assert_eq!(room.entries().iter().map(|e| e.id).collect::<Vec<_>>(), vec![1, 2, 3]);
        room.apply_draw(room.draw_for(5, SALE));
        join(&mut room, 5, SALE + 2);
        join(&mut room, 4, SALE + 1);
        assert_eq!(&room.order()[3..], &[4, 5]);
        assert!(room.entry("b4").is_some());
    }

    #[test]
    fn entries_committed_in_any_order_give_the_queue_of_a_rebuild() {
        let mut room = room();
        for id in [3, 1, 2, 6, 4, 5] {
            join(&mut room, id, SALE - 10_000 + id);
        }
        room.apply_draw(room.draw_for(7, SALE));
        // Arrivals after the draw, committed out of order, one admitted in between.
        for id in [12, 9, 7, 11, 8, 10, 15, 13, 14] {
            join(&mut room, id, SALE + id);
        }
        room.advance(SALE + 60_000, 3.0, T);
        for id in [20, 17, 16, 19, 18] {
            join(&mut room, id, SALE + 60_000 + id);
        }
        let (order, positions) = (room.order(), room.positions.clone());
        room.reindex();
        assert_eq!(room.order(), order);
        assert_eq!(room.positions, positions);
        assert_eq!(&order[6..], &(7..=20).collect::<Vec<_>>()[..]);
        for id in 1..=20 {
            assert_eq!(room.entry(&format!("b{id}")).unwrap().id, id);
        }
    }

    #[test]
    fn a_load_keeps_a_join_committed_after_storage_was_read() {
        let mut room = room();
        join(&mut room, 1, SALE - 2_000);
        let snapshot = room.entries().to_vec();
        // A visitor joins while the snapshot is on its way; another is seen meanwhile.
        join(&mut room, 2, SALE - 1_000);
        room.touch("b1", SALE - 500, T);
        room.load(room.settings, None, Counter::default(), 2, snapshot);
        assert_eq!(room.entry("b2").map(|e| e.id), Some(2));
        assert_eq!(room.entry("b1").unwrap().seen_at, SALE - 500);
        assert_eq!(room.view("b2", SALE - 500, 60.0, T).unwrap().status, Status::Prequeue);
    }

    #[test]
    fn the_operators_figures_count_the_room() {
        let mut room = room();
        for id in 1..=4 {
            join(&mut room, id, SALE - 1_000);
        }
        room.apply_draw(room.draw_for(3, SALE));
        let order = room.order();
        // The first in line goes unseen; the others keep asking.
        for t in (0..=70).map(|s| SALE + s * 1_000) {
            for &id in &order[1..] {
                room.touch(&format!("b{id}"), t, T);
            }
        }
        room.advance(SALE + 70_000, 2.0, T);
        let figures = room.figures(SALE + 70_000);
        assert_eq!(figures.no_shows, 1);
        assert_eq!(figures.admitted, 2);
        assert_eq!(figures.admitted_last_minute, 2);
        assert_eq!(figures.median_wait_ms, Some(70_000), "waits count from the on-sale for the pre-queue");
        assert_eq!(room.figures(SALE + 200_000).admitted_last_minute, 0);
    }

    #[test]
    fn joins_committed_out_of_order_at_random_give_the_queue_of_a_rebuild() {
        let mut rng = ChaCha20Rng::seed_from_u64(21);
        let mut room = room();
        let mut next = 1;
        for round in 0..40 {
            // A batch of joins committed in any order, as concurrent requests finish.
            let mut batch: Vec<i64> = (next..next + 25).collect();
            next += 25;
            batch.shuffle(&mut rng);
            for id in batch {
                join(&mut room, id, SALE - 100_000 + round * 5_000 + id);
            }
            if round == 10 {
                room.apply_draw(room.draw_for(99, SALE));
            }
            if round % 7 == 3 {
                poll_all(&mut room, SALE + round * 5_000);
                room.advance(SALE + round * 5_000, 120.0, T);
            }
            let (order, positions) = (room.order(), room.positions.clone());
            let mut rebuilt = room.clone();
            rebuilt.reindex();
            assert_eq!(rebuilt.order(), order, "round {round}");
            assert_eq!(rebuilt.positions, positions, "round {round}");
        }
    }
}
