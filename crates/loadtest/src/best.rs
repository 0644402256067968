//! The `best-available` scenario's own figures, computed from what the server answered:
//! the share of groups seated together (`adjacent` in each hold's answer) and the single
//! seats left stranded on the final seat map (docs/VENUES.md).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};

/// How many seats a buyer asks for: uniformly 2 to 4.
pub const GROUP_SIZES: RangeInclusive<usize> = 2..=4;

/// The share of the venue sold up to which `together_until_90` counts the groups (the
/// issue's benchmark: together in ≥ 95% of purchases until the venue is 90% sold).
const UNTIL_SOLD: f64 = 0.9;

/// A seat of the seat map, as far as this scenario reads it: a venue's seats carry
/// `section` and `row`, a grid show's do not.
#[derive(Debug, Clone, Deserialize)]
pub struct MapSeat {
    pub c: i64,
    pub status: String,
    #[serde(default)]
    pub section: Option<String>,
    #[serde(default)]
    pub row: Option<String>,
}

/// `GET /events/{id}/seats`, the part read here.
#[derive(Debug, Clone, Deserialize)]
pub struct SeatMap {
    pub seats: Vec<MapSeat>,
}

impl MapSeat {
    fn free(&self) -> bool {
        self.status == "AVAILABLE"
    }
}

impl SeatMap {
    pub fn free(&self) -> usize {
        self.seats.iter().filter(|s| s.free()).count()
    }
}

/// Free seats whose neighbours in their row are both taken (held or sold) or the row's
/// end: singles no group of two or more can have. Neighbours are the order of the seats
/// within one section and row, by `c`; seats without `section` and `row` (a grid show's)
/// are not counted.
pub fn stranded_seats(seats: &[MapSeat]) -> usize {
    let mut rows: BTreeMap<(&str, &str), Vec<(i64, bool)>> = BTreeMap::new();
    for seat in seats {
        if let (Some(section), Some(row)) = (&seat.section, &seat.row) {
            rows.entry((section, row)).or_default().push((seat.c, seat.free()));
        }
    }
    rows.into_values()
        .map(|mut row| {
            row.sort_unstable();
            let free = |i: Option<usize>| i.and_then(|i| row.get(i)).is_some_and(|s| s.1);
            (0..row.len()).filter(|&i| row[i].1 && !free(i.checked_sub(1)) && !free(Some(i + 1))).count()
        })
        .sum()
}

/// One best-available hold granted: how many seats, whether side by side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Group {
    pub seats: usize,
    pub adjacent: bool,
}

/// The share of `groups` seated together, `None` without any.
pub fn together_share(groups: &[Group]) -> Option<f64> {
    (!groups.is_empty()).then(|| groups.iter().filter(|g| g.adjacent).count() as f64 / groups.len() as f64)
}

/// The share of groups seated together among those granted (in the order they were)
/// while less than `sold` of `capacity` seats had been given to the run's groups.
pub fn together_share_until(groups: &[Group], capacity: usize, sold: f64) -> Option<f64> {
    let limit = capacity as f64 * sold;
    let mut given = 0usize;
    let early: Vec<Group> = groups
        .iter()
        .take_while(|g| {
            let before = given;
            given += g.seats;
            (before as f64) < limit
        })
        .copied()
        .collect();
    together_share(&early)
}

/// Whether `groups` have been given `UNTIL_SOLD` (90%) of `capacity` seats: when the
/// scenario reads the seat map for the seats stranded then.
pub fn mostly_sold(groups: &[Group], capacity: usize) -> bool {
    capacity > 0 && groups.iter().map(|g| g.seats).sum::<usize>() as f64 >= capacity as f64 * UNTIL_SOLD
}

/// What the `best-available` scenario reports besides the usual figures.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BestAvailableSummary {
    /// The seed of the group sizes (`--seed`).
    pub seed: u64,
    /// Free seats on the seat map when the run started.
    pub free_at_start: usize,
    /// Holds granted, and of those, seated side by side in one row.
    pub groups: usize,
    pub groups_together: usize,
    pub together_share: Option<f64>,
    /// The same share over the groups granted until 90% of `free_at_start` was given.
    pub together_share_until_90: Option<f64>,
    /// Holds refused, by status and error code (`409 NOT_ENOUGH_SEATS`: no fitting seats
    /// left; any other is the server's doing).
    pub refused: BTreeMap<String, u64>,
    /// Seconds from the start until a group of the smallest size was refused
    /// `NOT_ENOUGH_SEATS` (everyone would be); `None`: not sold out.
    pub sold_out_seconds: Option<f64>,
    /// On the final seat map: free seats, and of those, single seats stranded.
    pub free_at_end: Option<usize>,
    pub stranded_seats: Option<usize>,
    /// Single seats stranded on the seat map read once 90% of `free_at_start` was given
    /// (before the last buyers are given whatever singles remain); `None`: not reached.
    pub stranded_at_90: Option<usize>,
}

impl BestAvailableSummary {
    pub fn new(seed: u64, free_at_start: usize, groups: &[Group]) -> Self {
        BestAvailableSummary {
            seed,
            free_at_start,
            groups: groups.len(),
            groups_together: groups.iter().filter(|g| g.adjacent).count(),
            together_share: together_share(groups),
            together_share_until_90: together_share_until(groups, free_at_start, UNTIL_SOLD),
            refused: BTreeMap::new(),
            sold_out_seconds: None,
            free_at_end: None,
            stranded_seats: None,
            stranded_at_90: None,
        }
    }

    /// The report's lines.
    pub fn text(&self) -> String {
        let pct = |share: Option<f64>| share.map_or("–".to_owned(), |s| format!("{:.1}%", s * 100.0));
        let sold_out = self.sold_out_seconds.map_or("not sold out".to_owned(), |s| format!("sold out at {s:.1} s"));
        let stranded = match (self.stranded_seats, self.free_at_end) {
            (Some(stranded), Some(free)) => format!("single seats stranded: {stranded} of {free} left free"),
            _ => "the final seat map could not be read".to_owned(),
        };
        let at_90 = self.stranded_at_90.map_or(String::new(), |n| format!(" ({n} when 90% sold)"));
        let mut refused = String::new();
        for (refusal, n) in &self.refused {
            let _ = write!(refused, "{}{n} {refusal}", if refused.is_empty() { "" } else { ", " });
        }
        format!(
            "  best available (seed {}): {} groups, {} seated together ({}; {} until 90% sold); refused: {}\n  \
             {sold_out} ({} seats free at the start); {stranded}{at_90}\n",
            self.seed,
            self.groups,
            self.groups_together,
            pct(self.together_share),
            pct(self.together_share_until_90),
            if refused.is_empty() { "none" } else { &refused },
            self.free_at_start,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row of a venue from a pattern: `x` taken, `.` free, in seat order.
    fn row(section: &str, label: &str, pattern: &str) -> Vec<MapSeat> {
        pattern
            .chars()
            .enumerate()
            .map(|(i, mark)| MapSeat {
                c: i as i64 + 1,
                status: if mark == 'x' { "SOLD" } else { "AVAILABLE" }.to_owned(),
                section: Some(section.to_owned()),
                row: Some(label.to_owned()),
            })
            .collect()
    }

    #[test]
    fn a_free_seat_between_taken_ones_or_a_rows_end_is_stranded() {
        assert_eq!(stranded_seats(&row("S", "A", ".x")), 1, "a row's end and a taken seat");
        assert_eq!(stranded_seats(&row("S", "A", "x.x..x.")), 2);
        assert_eq!(stranded_seats(&row("S", "A", "..x..")), 0, "pairs are not stranded");
        assert_eq!(stranded_seats(&row("S", "A", ".")), 1, "a one-seat row left free");
        assert_eq!(stranded_seats(&row("S", "A", "xxx")), 0);
        assert_eq!(stranded_seats(&[]), 0);
    }

    #[test]
    fn held_seats_are_taken_too() {
        let mut seats = row("S", "A", "...");
        seats[0].status = "HELD".into();
        seats[2].status = "HELD".into();
        assert_eq!(stranded_seats(&seats), 1);
    }

    #[test]
    fn neighbours_are_the_order_in_one_section_and_row() {
        // Same row label in two sections, and two rows of one section: none neighbours
        // the other, however they are listed.
        let mut seats = row("Stalls", "A", "x.");
        seats.extend(row("Circle", "A", ".x"));
        seats.extend(row("Stalls", "B", "..x"));
        seats.reverse();
        assert_eq!(stranded_seats(&seats), 2);
        // Order by `c`, not by position in the list: seats 1 and 3 taken, 2 free.
        let mut seats = row("S", "A", "x.x.");
        seats.swap(0, 3);
        assert_eq!(stranded_seats(&seats), 2);
    }

    #[test]
    fn a_grid_shows_seats_are_not_counted() {
        let seats: Vec<MapSeat> =
            row("S", "A", "x.x").into_iter().map(|s| MapSeat { section: None, row: None, ..s }).collect();
        assert_eq!(stranded_seats(&seats), 0);
    }

    #[test]
    fn the_seat_map_is_read_from_its_json() {
        let map: SeatMap = serde_json::from_str(
            r#"{"rows":1,"cols":3,"eventId":4,"version":9,"seats":[
                {"id":1,"r":1,"c":1,"price":100,"status":"SOLD","section":"S","row":"A","label":"1","category":"A","x":0,"y":0},
                {"id":2,"r":1,"c":2,"price":100,"status":"AVAILABLE","section":"S","row":"A","label":"2","category":"A","x":5,"y":0,"accessible":true},
                {"id":3,"r":1,"c":3,"price":100,"status":"HELD","section":"S","row":"A","label":"3","category":"A","x":10,"y":0}],
              "categories":[],"areas":[{"id":1,"name":"Standing","capacity":500,"available":500,"price":2500}]}"#,
        )
        .unwrap();
        assert_eq!(map.free(), 1);
        assert_eq!(stranded_seats(&map.seats), 1);
    }

    const TOGETHER: Group = Group { seats: 2, adjacent: true };
    const APART: Group = Group { seats: 4, adjacent: false };

    #[test]
    fn the_share_together_counts_adjacent_groups() {
        assert_eq!(together_share(&[]), None);
        assert_eq!(together_share(&[TOGETHER, TOGETHER, TOGETHER, APART]), Some(0.75));
        assert_eq!(together_share(&[APART]), Some(0.0));
    }

    #[test]
    fn the_share_until_90_percent_sold_leaves_out_the_last_groups() {
        // 10 seats: 2 + 2 + 2 + 2 are given before 9 (90%); the group granted with 8
        // given still counts, the one after it (12 given) does not.
        let groups = [TOGETHER, TOGETHER, TOGETHER, TOGETHER, APART, APART];
        assert_eq!(together_share_until(&groups, 10, 0.9), Some(0.8));
        assert_eq!(together_share_until(&groups, 1000, 0.9), Some(4.0 / 6.0));
        assert_eq!(together_share_until(&groups, 0, 0.9), None);
    }

    #[test]
    fn mostly_sold_is_90_percent_of_the_seats_given() {
        assert!(!mostly_sold(&[TOGETHER; 4], 10), "8 of 10");
        assert!(mostly_sold(&[TOGETHER; 5], 10), "10 of 10");
        assert!(mostly_sold(&[TOGETHER, TOGETHER, APART, TOGETHER], 11), "10 of 11");
        assert!(!mostly_sold(&[], 0), "nothing to sell");
    }

    #[test]
    fn the_summary_says_when_the_show_sold_out_or_that_it_did_not() {
        let mut summary = BestAvailableSummary::new(7, 10, &[TOGETHER, APART]);
        assert_eq!((summary.groups, summary.groups_together), (2, 1));
        assert!(summary.text().contains("not sold out"), "{}", summary.text());
        assert!(summary.text().contains("refused: none\n"), "{}", summary.text());
        summary.refused = BTreeMap::from([("409 NOT_ENOUGH_SEATS".into(), 12), ("409 SEAT_TAKEN".into(), 1)]);
        assert!(summary.text().contains("refused: 12 409 NOT_ENOUGH_SEATS, 1 409 SEAT_TAKEN\n"), "{}", summary.text());
        summary.sold_out_seconds = Some(12.34);
        summary.stranded_seats = Some(3);
        summary.free_at_end = Some(4);
        let text = summary.text();
        assert!(text.contains("sold out at 12.3 s"), "{text}");
        assert!(text.contains("single seats stranded: 3 of 4 left free\n"), "{text}");
        summary.stranded_at_90 = Some(5);
        assert!(summary.text().contains("of 4 left free (5 when 90% sold)"), "{}", summary.text());
        assert!(text.contains("2 groups, 1 seated together (50.0%; 50.0% until 90% sold)"), "{text}");
    }
}
