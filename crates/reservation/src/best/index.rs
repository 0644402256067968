//! The per-show index: seats grouped by row in adjacency order, rows ranked by their
//! nearest seat, and the availability the picker reads.

use std::collections::{BTreeSet, HashMap};

use contract::venue::{PlacedSeat, Point, VenueLayout};

use super::tree::RankTree;

/// What a seat is for best available.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Ordinary,
    Wheelchair,
    Companion,
}

#[derive(Debug, Clone)]
pub(super) struct Seat {
    pub id: i64,
    pub category: u16,
    pub kind: Kind,
    /// Distance to the section's focal point, in thousandths of a drawing unit.
    pub dist: u64,
    pub free: bool,
}

#[derive(Debug, Clone)]
pub(super) struct RowEntry {
    pub section: u32,
    /// The row's seats are `seats[start..start + len]`, in adjacency order.
    pub start: u32,
    pub len: u32,
    pub rank: u32,
    /// The distance of its nearest seat: no group of n seats of the row scores below
    /// n times this.
    pub min_dist: u64,
    /// `group_floor[n - 1]`: the lowest score a group of n of its seats side by side
    /// can have, all seats free (for n up to [`BITS`] and the row's length).
    pub group_floor: Vec<u64>,
    /// What its runs of free seats (of any kind) side by side can serve: [`run_bits`].
    pub runs: u64,
    /// Free ordinary seats per category present in the row.
    pub ordinary_free: Vec<(u16, u32)>,
}

/// One show's seats and their availability, for [`VenueIndex::pick`](super::VenueIndex).
#[derive(Debug, Clone)]
pub struct VenueIndex {
    pub(super) seats: Vec<Seat>,
    by_id: HashMap<i64, u32>,
    pub(super) rows: Vec<RowEntry>,
    /// Row index by rank.
    pub(super) by_rank: Vec<u32>,
    pub(super) sections: Vec<String>,
    pub(super) categories: Vec<String>,
    /// `[section][category]`: ranks of the rows with a free ordinary seat of that
    /// category.
    pub(super) live: Vec<Vec<BTreeSet<u32>>>,
    /// `[category]`: over all sections, each row's [`run_bits`] if it has a free
    /// ordinary seat of that category (else none), so that a request for any section finds
    /// the rows that can hold its group in O(log rows) each, however many sections and
    /// fragmented rows the venue has.
    pub(super) runs: Vec<RankTree>,
    /// Ranks of the rows with a wheelchair space, ascending.
    pub(super) accessible_ranks: Vec<u32>,
    pub(super) free: usize,
}

/// Group sizes above this are looked for with the bits of this size (an upper bound: the
/// rows found are then searched in full).
const BITS: usize = 32;

/// The bit of [`run_bits`] set when a row has `n` free seats side by side.
pub(super) fn run_bit(n: usize) -> u64 {
    1 << (n.clamp(1, BITS) - 1)
}

/// The bit of [`run_bits`] set when a row has `n` free seats side by side that strand no
/// single seat.
pub(super) fn clean_bit(n: usize) -> u64 {
    if n > BITS { run_bit(n) } else { 1 << (BITS + n - 1) }
}

/// What a row whose free runs have these lengths can serve: for each group size n up to
/// [`BITS`], whether some run holds n ([`run_bit`]) and whether one holds n without
/// stranding a single seat ([`clean_bit`]: the run is n long, or at least n + 2).
pub(super) fn run_bits(runs: impl IntoIterator<Item = usize>) -> u64 {
    let low = |k: usize| (1u64 << k.min(BITS)) - 1;
    runs.into_iter().fold(0, |bits, len| {
        let exact = if (1..=BITS).contains(&len) { clean_bit(len) } else { 0 };
        bits | low(len) | (low(len.saturating_sub(2)) << BITS) | exact
    })
}

/// Milli-units, so that group sums are exact integers.
fn distance(x: f64, y: f64, focal: Point) -> u64 {
    ((x - focal.x).hypot(y - focal.y) * 1000.0).round() as u64
}

impl VenueIndex {
    /// The index of a venue whose seats were given `ids` in layout order
    /// ([`VenueLayout::placed_seats`]); every seat starts free.
    ///
    /// # Panics
    /// If `ids` does not hold one id per seat.
    pub fn from_layout(layout: &VenueLayout, ids: &[i64]) -> Self {
        assert_eq!(ids.len(), layout.seat_count(), "one id per seat of the layout");
        let sections: Vec<(String, Point)> =
            layout.sections.iter().map(|s| (s.name.clone(), s.focal_point())).collect();
        let categories: Vec<String> = layout.categories.iter().map(|c| c.key.clone()).collect();
        Self::build(&sections, &categories, ids.iter().copied().zip(layout.placed_seats()))
    }

    /// The index of seats given with their places (as `EventCreated` carries them),
    /// in any order; `sections` gives each section's name and focal point by index.
    /// Seats whose section index is out of range are measured from the origin.
    pub fn build(
        sections: &[(String, Point)],
        categories: &[String],
        seats: impl IntoIterator<Item = (i64, PlacedSeat)>,
    ) -> Self {
        let mut placed: Vec<(i64, PlacedSeat)> = seats.into_iter().collect();
        placed.sort_by_key(|(_, p)| (p.section, p.row, p.position));
        let mut category_keys: Vec<String> = categories.to_vec();
        let mut category_of: HashMap<String, u16> =
            category_keys.iter().enumerate().map(|(i, k)| (k.clone(), i as u16)).collect();
        let mut section_names: Vec<String> = sections.iter().map(|(name, _)| name.clone()).collect();

        let mut index = VenueIndex {
            seats: Vec::with_capacity(placed.len()),
            by_id: HashMap::with_capacity(placed.len()),
            rows: Vec::new(),
            by_rank: Vec::new(),
            sections: Vec::new(),
            categories: Vec::new(),
            live: Vec::new(),
            runs: Vec::new(),
            accessible_ranks: Vec::new(),
            free: placed.len(),
        };
        let mut current: Option<(u32, u32)> = None;
        for (id, p) in placed {
            if current != Some((p.section, p.row)) {
                current = Some((p.section, p.row));
                index.rows.push(RowEntry {
                    section: p.section,
                    start: index.seats.len() as u32,
                    len: 0,
                    rank: 0,
                    min_dist: u64::MAX,
                    runs: 0,
                    group_floor: Vec::new(),
                    ordinary_free: Vec::new(),
                });
            }
            let focal = sections.get(p.section as usize).map_or(Point { x: 0.0, y: 0.0 }, |(_, f)| *f);
            let next = category_keys.len() as u16;
            let category = *category_of.entry(p.category.clone()).or_insert_with(|| {
                category_keys.push(p.category.clone());
                next
            });
            let kind = if p.accessible {
                Kind::Wheelchair
            } else if p.companion {
                Kind::Companion
            } else {
                Kind::Ordinary
            };
            let dist = distance(p.x, p.y, focal);
            let row = index.rows.last_mut().expect("a row was pushed");
            row.len += 1;
            row.min_dist = row.min_dist.min(dist);
            index.by_id.insert(id, index.seats.len() as u32);
            index.seats.push(Seat { id, category, kind, dist, free: true });
        }
        while section_names.len() < index.rows.last().map_or(0, |r| r.section as usize + 1) {
            section_names.push(format!("#{}", section_names.len()));
        }

        let mut order: Vec<u32> = (0..index.rows.len() as u32).collect();
        order.sort_by_key(|&r| (index.rows[r as usize].min_dist, r));
        for (rank, &r) in order.iter().enumerate() {
            index.rows[r as usize].rank = rank as u32;
        }
        index.by_rank = order;
        index.live = vec![vec![BTreeSet::new(); category_keys.len()]; section_names.len()];
        index.runs = vec![RankTree::new(index.rows.len()); category_keys.len()];
        for r in 0..index.rows.len() {
            let row = &index.rows[r];
            let seats = &index.seats[row.start as usize..(row.start + row.len) as usize];
            let mut counts: Vec<(u16, u32)> = Vec::new();
            for seat in seats.iter().filter(|s| s.kind == Kind::Ordinary) {
                match counts.iter_mut().find(|(c, _)| *c == seat.category) {
                    Some((_, n)) => *n += 1,
                    None => counts.push((seat.category, 1)),
                }
            }
            for &(category, _) in &counts {
                index.live[row.section as usize][category as usize].insert(row.rank);
                index.runs[category as usize].set(row.rank, run_bits([row.len as usize]));
            }
            if seats.iter().any(|s| s.kind == Kind::Wheelchair) {
                index.accessible_ranks.push(row.rank);
            }
            let dists: Vec<u64> = seats.iter().map(|s| s.dist).collect();
            let floor = (1..=dists.len().min(BITS))
                .map(|n| dists.windows(n).map(|w| w.iter().sum()).min().unwrap_or(u64::MAX))
                .collect();
            let rank_row = &mut index.rows[r];
            rank_row.group_floor = floor;
            rank_row.ordinary_free = counts;
            rank_row.runs = run_bits([rank_row.len as usize]);
        }
        index.accessible_ranks.sort_unstable();
        index.sections = section_names;
        index.categories = category_keys;
        index
    }

    /// Seats still free.
    pub fn free_count(&self) -> usize {
        self.free
    }

    /// Whether the seat is known and free.
    pub fn is_free(&self, id: i64) -> bool {
        self.by_id.get(&id).is_some_and(|&i| self.seats[i as usize].free)
    }

    /// Records that the seat was held or sold. Returns whether anything changed (false
    /// for an unknown seat or one already taken). O(row length + log rows).
    pub fn mark_taken(&mut self, id: i64) -> bool {
        self.set_free(id, false)
    }

    /// Records that the seat is free again (a hold expired or was released).
    pub fn mark_free(&mut self, id: i64) -> bool {
        self.set_free(id, true)
    }

    fn set_free(&mut self, id: i64, free: bool) -> bool {
        let Some(&i) = self.by_id.get(&id) else { return false };
        let seat = &mut self.seats[i as usize];
        if seat.free == free {
            return false;
        }
        seat.free = free;
        let (category, kind) = (seat.category, seat.kind);
        if free {
            self.free += 1;
        } else {
            self.free -= 1;
        }
        let r = self.row_of(i);
        let row = &mut self.rows[r];
        if kind == Kind::Ordinary
            && let Some((_, count)) = row.ordinary_free.iter_mut().find(|(c, _)| *c == category)
        {
            let set = &mut self.live[row.section as usize][category as usize];
            if free {
                *count += 1;
                if *count == 1 {
                    set.insert(row.rank);
                }
            } else {
                *count -= 1;
                if *count == 0 {
                    set.remove(&row.rank);
                }
            }
        }
        let seats = &self.seats[row.start as usize..(row.start + row.len) as usize];
        row.runs = run_bits(seats.chunk_by(|a, b| a.free == b.free).filter(|run| run[0].free).map(<[Seat]>::len));
        for &(category, count) in &row.ordinary_free {
            self.runs[category as usize].set(row.rank, if count > 0 { row.runs } else { 0 });
        }
        true
    }

    /// The row holding seat `i` (rows are contiguous and in seat order).
    fn row_of(&self, i: u32) -> usize {
        self.rows.partition_point(|r| r.start <= i) - 1
    }

    /// No group of `n` seats side by side in the row scores below this.
    pub(super) fn group_floor(row: &RowEntry, n: usize) -> u64 {
        row.group_floor.get(n.wrapping_sub(1)).copied().unwrap_or_else(|| (n as u64).saturating_mul(row.min_dist))
    }

    /// The seats of a row, with their indexes.
    pub(super) fn row_seats(&self, row: &RowEntry) -> &[Seat] {
        &self.seats[row.start as usize..(row.start + row.len) as usize]
    }
}
