//! Best available (issue 22): which seats to give a buyer who asks for "N of the best".
//!
//! A [`VenueIndex`] is built once per show from its layout and keeps the show's
//! availability in memory ([`VenueIndex::mark_taken`], [`VenueIndex::mark_free`]).
//! [`VenueIndex::pick`] is pure: it proposes seats and changes nothing. The holding code
//! tries the proposal with its conditional update; seats another replica took meanwhile
//! are reported with `mark_taken` and it picks again — each round marks at least one seat
//! taken, so the loop ends, and a pick made after `mark_taken` never proposes a taken
//! seat. When the hold succeeds, the held seats are marked taken (and freed again when a
//! hold expires or is released).
//!
//! # Order of preference (Seats.io's published steps)
//! 1. `quantity` seats side by side in one row that strand no single seat: the free run
//!    they are cut from leaves 0 or at least 2 free seats on each side (a free seat
//!    alone between the group and a taken seat or the row's end is stranded);
//! 2. side by side in one row, stranding allowed;
//! 3. the `quantity` best seats of one section (the section whose best seats are best);
//! 4. the `quantity` best seats across sections.
//!
//! Within a step the group nearest the focal point wins. A seat's distance is measured
//! to its own section's focal point ([`contract::venue::Section::focal_point`]: the
//! stage, by default the section's front centre). A group's score is the **sum** of its
//! seats' distances, i.e. their mean: it ranks a group by how good its seats are on the
//! whole, where the worst seat alone would not tell a centred group from one hanging off
//! the aisle as long as their worst seats tie. Distances are kept in thousandths of a
//! drawing unit as integers, so sums are exact and ties are broken the same way every
//! time (the earlier row in rank order, then the leftmost group).
//!
//! Adjacency is the order of seats in their row, never `x`.
//!
//! # Filters
//! `categories` (keys) and `sections` (names) restrict the seats that may be given; an
//! unknown key or name matches nothing. Stranding is judged on the physical row: a free
//! seat of another category still counts as a seat that can be stranded.
//!
//! Wheelchair spaces and companion seats are kept for those who need them: an ordinary
//! request never gets them (they can still be chosen on the map). `accessible: true`
//! asks for wheelchair spaces with their companions: every seat given is a wheelchair
//! space or a companion seat, at least one of them a wheelchair space, and `quantity`
//! counts both (2 = one space and the companion beside it, if the row allows).
//!
//! # Cost
//! Rows are ranked once by their nearest seat. Each row keeps, as a bit set, what its
//! runs of free seats can serve (a group of n; a group of n stranding nothing), and per
//! category a segment tree over the ranks finds the next row that can serve a request in
//! O(log rows): full rows, and rows whose free seats are too scattered for the group,
//! are never walked. Per section and category, an ordered set holds the ranks of the rows
//! with a free ordinary seat, for section filters and steps 3 and 4. A search walks the
//! candidate rows in rank order, searches a row only if its best group (all seats free,
//! precomputed for groups of up to 32) would beat the best found, and stops at the first
//! row whose nearest seat cannot. `mark_taken`/`mark_free` cost O(row length + log rows).
//! What a request walks is rows near the best group, never every seat: in an empty or
//! front-filled venue one or two; more when many rows tie (sections with the same
//! geometry each measured from its own front centre). Step 3 looks at every wanted
//! section once, and accessible requests walk only the (few) rows with wheelchair spaces.
//! Figures: the `picks_per_second` micro benchmark in `tests.rs`.

mod index;
mod pick;
mod tree;

#[cfg(test)]
mod tests;

pub use index::VenueIndex;

/// What a buyer asks for: `bestAvailable` of `POST /reservations`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BestRequest {
    pub quantity: usize,
    /// Category keys; `None`: any.
    pub categories: Option<Vec<String>>,
    /// Section names; `None`: any.
    pub sections: Option<Vec<String>>,
    pub accessible: bool,
}

impl BestRequest {
    pub fn new(quantity: usize) -> Self {
        BestRequest { quantity, ..Default::default() }
    }
}

/// The proposed seats: in row order when `adjacent`, else best first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pick {
    pub seat_ids: Vec<i64>,
    /// All in one row, side by side.
    pub adjacent: bool,
}
