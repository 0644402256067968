//! The search: the four steps of the order of preference over the index.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::index::{Kind, RowEntry, Seat, VenueIndex, clean_bit, run_bit};
use super::{BestRequest, Pick};

/// A request resolved against the index.
struct Fit {
    quantity: usize,
    categories: Vec<bool>,
    sections: Vec<bool>,
    accessible: bool,
}

impl Fit {
    /// Whether the seat may be given (free, of a wanted category, of the right kind).
    fn fits(&self, seat: &Seat) -> bool {
        seat.free
            && self.categories[seat.category as usize]
            && match seat.kind {
                Kind::Ordinary => !self.accessible,
                Kind::Wheelchair | Kind::Companion => self.accessible,
            }
    }

    /// Whether the chosen seats meet the request's own condition.
    fn complete<'a>(&self, seats: impl IntoIterator<Item = &'a Seat>) -> bool {
        !self.accessible || seats.into_iter().any(|s| s.kind == Kind::Wheelchair)
    }
}

/// The best group seen so far: its score and its first seat (a window of a row).
#[derive(Clone, Copy)]
struct Group {
    score: u64,
    start: usize,
}

fn keep_better(best: &mut Option<Group>, candidate: Group) {
    if best.is_none_or(|b| candidate.score < b.score) {
        *best = Some(candidate);
    }
}

/// Several ascending rank sets walked as one ascending sequence, without repeats.
struct Merged<I> {
    iters: Vec<I>,
    heap: BinaryHeap<Reverse<(u32, usize)>>,
    last: Option<u32>,
}

impl<I: Iterator<Item = u32>> Merged<I> {
    fn new(sets: impl IntoIterator<Item = I>) -> Self {
        let mut iters: Vec<_> = sets.into_iter().collect();
        let heap = iters.iter_mut().enumerate().filter_map(|(i, it)| it.next().map(|r| Reverse((r, i)))).collect();
        Merged { iters, heap, last: None }
    }
}

impl<I: Iterator<Item = u32>> Iterator for Merged<I> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        while let Some(Reverse((rank, i))) = self.heap.pop() {
            if let Some(next) = self.iters[i].next() {
                self.heap.push(Reverse((next, i)));
            }
            if self.last != Some(rank) {
                self.last = Some(rank);
                return Some(rank);
            }
        }
        None
    }
}

impl VenueIndex {
    /// Proposes the best seats for the request, following the order of preference (see
    /// the module's documentation); `None` only when fewer fitting seats are free than
    /// asked (or, for an accessible request, no fitting wheelchair space is free).
    /// Changes nothing: the caller marks the seats it manages to hold.
    pub fn pick(&self, request: &BestRequest) -> Option<Pick> {
        let fit = self.resolve(request);
        if fit.quantity == 0 || fit.quantity > self.free {
            return None;
        }
        if let Some(group) = self.in_one_row(&fit) {
            let seat_ids = self.seats[group.start..group.start + fit.quantity].iter().map(|s| s.id).collect();
            return Some(Pick { seat_ids, adjacent: true });
        }
        let in_a_section = (0..self.sections.len())
            .filter(|&s| fit.sections[s])
            .filter_map(|s| self.best_seats(&fit, Some(s)))
            .min_by_key(|(score, _)| *score);
        let (_, seats) = in_a_section.or_else(|| self.best_seats(&fit, None))?;
        Some(Pick { seat_ids: seats.iter().map(|&i| self.seats[i].id).collect(), adjacent: false })
    }

    fn resolve(&self, request: &BestRequest) -> Fit {
        let wanted = |names: &[String], filter: &Option<Vec<String>>| -> Vec<bool> {
            names.iter().map(|name| filter.as_ref().is_none_or(|f| f.contains(name))).collect()
        };
        Fit {
            quantity: request.quantity,
            categories: wanted(&self.categories, &request.categories),
            sections: wanted(&self.sections, &request.sections),
            accessible: request.accessible,
        }
    }

    /// The candidate rows in rank order: of one section or of every wanted one, with a
    /// free seat that may fit (and, over all sections, one of the [`run_bits`] in `bits`).
    ///
    /// [`run_bits`]: super::index::run_bits
    fn ranks<'a>(&'a self, fit: &'a Fit, section: Option<usize>, bits: u64) -> Box<dyn Iterator<Item = u32> + 'a> {
        let wanted = move |s: usize| fit.sections[s] && section.is_none_or(|only| only == s);
        if fit.accessible {
            let rows = &self.rows;
            let by_rank = &self.by_rank;
            return Box::new(
                self.accessible_ranks
                    .iter()
                    .copied()
                    .filter(move |&rank| wanted(rows[by_rank[rank as usize] as usize].section as usize)),
            );
        }
        let categories = move || (0..self.categories.len()).filter(|&c| fit.categories[c]);
        if section.is_none() && fit.sections.iter().all(|&s| s) {
            return Box::new(Merged::new(categories().map(|c| self.runs[c].walk(bits))));
        }
        let sets = (0..self.sections.len())
            .filter(move |&s| wanted(s))
            .flat_map(|s| categories().map(move |c| self.live[s][c].iter().copied()));
        Box::new(Merged::new(sets))
    }

    fn row_at(&self, rank: u32) -> &RowEntry {
        &self.rows[self.by_rank[rank as usize] as usize]
    }

    /// Steps 1 and 2: the best group side by side in one row that strands no single
    /// seat; if there is none, the best side by side. Each walks only the rows whose free
    /// runs can serve it, in rank order: a row is searched only if its best group (all
    /// seats free) would beat the best found, and the walk stops at the first row whose
    /// nearest seat cannot.
    fn in_one_row(&self, fit: &Fit) -> Option<Group> {
        let n = fit.quantity;
        let best = |bits: u64, clean_only: bool| {
            let mut best: Option<Group> = None;
            for rank in self.ranks(fit, None, bits) {
                let row = self.row_at(rank);
                if let Some(g) = best {
                    if (n as u64).saturating_mul(row.min_dist) >= g.score {
                        break;
                    }
                    if VenueIndex::group_floor(row, n) >= g.score {
                        continue;
                    }
                }
                if row.runs & bits != 0 {
                    self.groups_in_row(fit, row, |group, strands| {
                        if !(clean_only && strands) {
                            keep_better(&mut best, group);
                        }
                    });
                }
            }
            best
        };
        best(clean_bit(n), true).or_else(|| best(run_bit(n), false))
    }

    /// Every window of `n` fitting seats within a run of free seats of the row, and
    /// whether it strands a single seat.
    fn groups_in_row(&self, fit: &Fit, row: &RowEntry, mut found: impl FnMut(Group, bool)) {
        let n = fit.quantity;
        let mut run_start = 0;
        for run in self.row_seats(row).chunk_by(|a, b| a.free == b.free) {
            let run_end = run_start + run.len();
            if run[0].free && run.len() >= n {
                for (w, window) in run.windows(n).enumerate() {
                    if window.iter().all(|s| fit.fits(s)) && fit.complete(window) {
                        let group = Group {
                            score: window.iter().map(|s| s.dist).sum(),
                            start: row.start as usize + run_start + w,
                        };
                        found(group, w == 1 || run.len() - (w + n) == 1);
                    }
                }
            }
            run_start = run_end;
        }
    }

    /// Steps 3 and 4: the `n` best fitting seats of one section (or of all), with their
    /// summed distance; best first.
    fn best_seats(&self, fit: &Fit, section: Option<usize>) -> Option<(u64, Vec<usize>)> {
        let n = fit.quantity;
        // (distance, seat index): the worst of the n best on top
        let mut best: BinaryHeap<(u64, usize)> = BinaryHeap::new();
        let mut all = Vec::new();
        for rank in self.ranks(fit, section, run_bit(1)) {
            let row = self.row_at(rank);
            if !fit.accessible && best.len() == n && best.peek().is_some_and(|&(worst, _)| row.min_dist >= worst) {
                break;
            }
            for (k, seat) in self.row_seats(row).iter().enumerate() {
                if !fit.fits(seat) {
                    continue;
                }
                let i = row.start as usize + k;
                if fit.accessible {
                    all.push((seat.dist, i));
                } else {
                    best.push((seat.dist, i));
                    if best.len() > n {
                        best.pop();
                    }
                }
            }
        }
        let chosen = if fit.accessible { self.with_a_wheelchair(all, n)? } else { best.into_sorted_vec() };
        if chosen.len() < n {
            return None;
        }
        Some((chosen.iter().map(|(d, _)| d).sum(), chosen.into_iter().map(|(_, i)| i).collect()))
    }

    /// The `n` best of `candidates` that include a wheelchair space: the best one if
    /// none of the `n` best is.
    fn with_a_wheelchair(&self, mut candidates: Vec<(u64, usize)>, n: usize) -> Option<Vec<(u64, usize)>> {
        candidates.sort_unstable();
        let is_wheelchair = |&(_, i): &(u64, usize)| self.seats[i].kind == Kind::Wheelchair;
        let space = *candidates.iter().find(|c| is_wheelchair(c))?;
        let mut chosen: Vec<(u64, usize)> = candidates.into_iter().take(n).collect();
        if !chosen.iter().any(is_wheelchair) && chosen.len() == n {
            chosen[n - 1] = space;
            chosen.sort_unstable();
        }
        Some(chosen)
    }
}
