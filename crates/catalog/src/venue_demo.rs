//! The realistic demo venue (issue 22): a theatre of about 2,000 seats and a standing
//! area of 500, seeded beside the original's three grid shows.
//!
//! The stage's front edge is the x axis, its centre the origin; `y` grows away from the
//! stage. The stalls' rows are arcs around a point behind the stage, so the ends of a row
//! come forward and seats near the centre of a row are nearer the stage than its ends;
//! the circle and the balcony are further back (above, in a theatre), on wider arcs.
//! Every section's focal point is the stage's centre.

use contract::venue::{Area, Category, Point, Row, Section, VenueLayout};

/// The name of the demo venue's show.
pub const DEMO_VENUE_TITLE: &str = "The Grand: Midsummer Night";

/// Room between neighbouring seats along a row, in drawing units.
const SEAT_PITCH: f64 = 5.0;
/// The centre of the arcs, behind the stage.
const ARC_CENTRE: Point = Point { x: 0.0, y: -40.0 };
const STAGE: Point = Point { x: 0.0, y: 0.0 };

fn category(key: &str, name: &str, price: i64, colour: &str) -> Category {
    Category { key: key.into(), name: name.into(), price, colour: colour.into() }
}

/// Curved rows: row `i` (labelled `labels[i]`) at `radius + i * 8`, as many seats as
/// fit `spread_degrees` of arc, of category `category_of(i)`.
fn curved_rows(
    labels: &str,
    radius: f64,
    spread_degrees: f64,
    category_of: impl Fn(usize) -> &'static str,
) -> Vec<Row> {
    labels
        .chars()
        .enumerate()
        .map(|(i, label)| {
            let radius = radius + 8.0 * i as f64;
            let count = (radius * spread_degrees.to_radians() / SEAT_PITCH).round() as usize;
            Row::arc(&label.to_string(), ARC_CENTRE, radius, spread_degrees, count, category_of(i))
        })
        .collect()
}

/// Marks `pattern` (C: companion, W: wheelchair space) on the first seats of the row,
/// and mirrored on its last seats.
fn accessible_ends(row: &mut Row, pattern: &str) {
    let len = row.seats.len();
    for (i, mark) in pattern.chars().enumerate() {
        for seat in [i, len - 1 - i] {
            row.seats[seat].accessible = mark == 'W';
            row.seats[seat].companion = mark == 'C';
        }
    }
}

/// The demo theatre: stalls (16 curved rows, categories A and B, wheelchair spaces with
/// companions at the ends of the back row), a circle (8 rows, B and C, wheelchair spaces
/// at the ends of its front row), a balcony (6 rows, D, its sides behind pillars:
/// restricted view) and a standing area of 500 (D).
pub fn demo_venue() -> VenueLayout {
    let mut stalls = curved_rows("ABCDEFGHJKLMNPQR", 80.0, 110.0, |i| if i < 8 { "A" } else { "B" });
    accessible_ends(stalls.last_mut().expect("stalls have rows"), "CWWC");
    let mut circle = curved_rows("ABCDEFGH", 240.0, 80.0, |i| if i < 3 { "B" } else { "C" });
    accessible_ends(&mut circle[0], "WC");
    let mut balcony = curved_rows("ABCDEF", 320.0, 70.0, |_| "D");
    for row in &mut balcony {
        let len = row.seats.len();
        for (i, seat) in row.seats.iter_mut().enumerate() {
            seat.restricted_view = i < 6 || i >= len - 6;
        }
    }
    let section = |name: &str, rows| Section { name: name.into(), focal: Some(STAGE), rows };
    VenueLayout {
        categories: vec![
            category("A", "Premium", 8_900, "#c0392b"),
            category("B", "Standard", 6_500, "#e67e22"),
            category("C", "Value", 4_500, "#2980b9"),
            category("D", "Balcony and standing", 2_500, "#27ae60"),
        ],
        sections: vec![section("Stalls", stalls), section("Circle", circle), section("Balcony", balcony)],
        areas: vec![Area { name: "Standing".into(), capacity: 500, category: "D".into() }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_venue_is_valid() {
        assert_eq!(demo_venue().validate(), Ok(()));
    }

    #[test]
    fn the_demo_venue_is_a_theatre_of_about_two_thousand_seats() {
        let venue = demo_venue();
        let seats = venue.seat_count();
        assert!((1_800..=2_200).contains(&seats), "{seats} seats");
        assert_eq!(venue.categories.len(), 4);
        assert_eq!(venue.sections.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["Stalls", "Circle", "Balcony"]);
        assert_eq!(venue.areas.len(), 1);
        assert_eq!(venue.areas[0].capacity, 500);
        let all: Vec<_> = venue.sections.iter().flat_map(|s| &s.rows).flat_map(|r| &r.seats).collect();
        assert_eq!(all.iter().filter(|s| s.accessible).count(), 6);
        assert_eq!(all.iter().filter(|s| s.companion).count(), 6);
        assert!(all.iter().filter(|s| s.restricted_view).count() >= 60);
        for key in ["A", "B", "C", "D"] {
            assert!(all.iter().any(|s| s.category == key), "category {key} has seats");
        }
    }

    #[test]
    fn stalls_rows_curve_round_the_stage() {
        let venue = demo_venue();
        for row in &venue.sections[0].rows {
            let (first, last) = (&row.seats[0], &row.seats[row.seats.len() - 1]);
            let middle = &row.seats[row.seats.len() / 2];
            assert!(first.y < middle.y && last.y < middle.y, "row {}: the ends come forward", row.label);
            assert!(last.x - first.x > 50.0, "row {}: the ends are far apart", row.label);
            for pair in row.seats.windows(2) {
                let gap = (pair[1].x - pair[0].x).hypot(pair[1].y - pair[0].y);
                assert!(
                    (SEAT_PITCH * 0.8..SEAT_PITCH * 1.2).contains(&gap),
                    "row {}: neighbours {gap} apart",
                    row.label
                );
            }
        }
    }

    #[test]
    fn sections_are_behind_one_another() {
        let venue = demo_venue();
        // each section's (nearest, furthest) seat from the arcs' centre
        let span = |s: usize| {
            let radii =
                venue.sections[s].rows.iter().flat_map(|r| &r.seats).map(|seat| seat.x.hypot(seat.y - ARC_CENTRE.y));
            radii.fold((f64::INFINITY, 0.0), |(lo, hi): (f64, f64), r| (lo.min(r), hi.max(r)))
        };
        let (nearest, furthest) = (|s| span(s).0, |s| span(s).1);
        assert!(furthest(0) < nearest(1) && furthest(1) < nearest(2));
    }

    #[test]
    fn the_demo_venue_survives_the_wire() {
        let venue = demo_venue();
        let json = serde_json::to_string(&venue).unwrap();
        let back: VenueLayout = serde_json::from_str(&json).unwrap();
        assert_eq!(back, venue);
    }
}
