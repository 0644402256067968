use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, Instant};

use contract::venue::{Category, Point, Row, Section, VenueLayout, VenueSeat};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::index::Kind;
use super::*;

// ---- venues ---------------------------------------------------------------------------

fn categories() -> Vec<Category> {
    ["A", "B", "C", "D"]
        .iter()
        .enumerate()
        .map(|(i, key)| Category {
            key: (*key).into(),
            name: format!("Category {key}"),
            price: 1_000 * (4 - i as i64),
            colour: "#336699".into(),
        })
        .collect()
}

fn seat(position: usize, y: f64, category: &str) -> VenueSeat {
    VenueSeat {
        label: (position + 1).to_string(),
        x: position as f64,
        y,
        category: category.into(),
        accessible: false,
        companion: false,
        restricted_view: false,
    }
}

/// A section of straight rows of `len` seats (x = 0, 1, …), one unit apart, rows 10
/// apart from `y0` away from the stage; all of category A.
fn section(name: &str, rows: usize, len: usize, y0: f64) -> Section {
    let rows = (0..rows)
        .map(|r| Row {
            label: ((b'A' + r as u8) as char).to_string(),
            seats: (0..len).map(|p| seat(p, y0 + 10.0 * r as f64, "A")).collect(),
        })
        .collect();
    Section { name: name.into(), focal: None, rows }
}

fn venue(sections: Vec<Section>) -> VenueLayout {
    let venue = VenueLayout { categories: categories(), sections, areas: vec![] };
    venue.validate().expect("a sound test venue");
    venue
}

/// Seat ids tell where a seat is: section s, row r, position p (from 0) is
/// `(s + 1) * 10_000 + (r + 1) * 100 + p + 1`.
fn id(s: usize, r: usize, p: usize) -> i64 {
    ((s + 1) * 10_000 + (r + 1) * 100 + p + 1) as i64
}

fn index(layout: &VenueLayout) -> VenueIndex {
    let ids: Vec<i64> =
        layout.placed_seats().map(|p| id(p.section as usize, p.row as usize, p.position as usize)).collect();
    VenueIndex::from_layout(layout, &ids)
}

fn take(index: &mut VenueIndex, ids: impl IntoIterator<Item = i64>) {
    for seat in ids {
        assert!(index.mark_taken(seat), "{seat} was free");
    }
}

fn take_row_but(index: &mut VenueIndex, s: usize, r: usize, len: usize, keep: &[usize]) {
    take(index, (0..len).filter(|p| !keep.contains(p)).map(|p| id(s, r, p)));
}

fn ask(quantity: usize) -> BestRequest {
    BestRequest::new(quantity)
}

fn together(ids: Vec<i64>) -> Option<Pick> {
    Some(Pick { seat_ids: ids, adjacent: true })
}

fn apart(ids: Vec<i64>) -> Option<Pick> {
    Some(Pick { seat_ids: ids, adjacent: false })
}

// ---- the order of preference ------------------------------------------------------------

#[test]
fn an_empty_venue_gives_the_front_centre() {
    let ix = index(&venue(vec![section("Stalls", 3, 10, 10.0)]));
    assert_eq!(ix.pick(&ask(2)), together(vec![id(0, 0, 4), id(0, 0, 5)]));
    // a tie between (3,4,5) and (4,5,6): the leftmost
    assert_eq!(ix.pick(&ask(3)), together(vec![id(0, 0, 3), id(0, 0, 4), id(0, 0, 5)]));
    assert_eq!(ix.pick(&ask(10)), together((0..10).map(|p| id(0, 0, p)).collect()));
    // a whole row cannot hold 11: split, best seats first
    let eleven = ix.pick(&ask(11)).unwrap();
    assert!(!eleven.adjacent);
    assert_eq!(eleven.seat_ids.len(), 11);
    assert_eq!(eleven.seat_ids[..2], [id(0, 0, 4), id(0, 0, 5)]);
}

#[test]
fn a_run_of_exactly_n_beats_stranding_a_seat() {
    let mut ix = index(&venue(vec![section("Stalls", 1, 10, 10.0)]));
    // free: 3 4 5 (the centre) and 8 9 (the end)
    take(&mut ix, [0, 1, 2, 6, 7].map(|p| id(0, 0, p)));
    assert_eq!(ix.pick(&ask(2)), together(vec![id(0, 0, 8), id(0, 0, 9)]));
    // with the end gone, stranding one of the centre is all that is left
    take(&mut ix, [id(0, 0, 8), id(0, 0, 9)]);
    assert_eq!(ix.pick(&ask(2)), together(vec![id(0, 0, 4), id(0, 0, 5)]));
    assert_eq!(ix.pick(&ask(3)), together(vec![id(0, 0, 3), id(0, 0, 4), id(0, 0, 5)]));
}

#[test]
fn a_row_further_back_beats_stranding_a_seat_in_front() {
    let mut ix = index(&venue(vec![section("Stalls", 2, 10, 10.0)]));
    take_row_but(&mut ix, 0, 0, 10, &[3, 4, 5]);
    assert_eq!(ix.pick(&ask(2)), together(vec![id(0, 1, 4), id(0, 1, 5)]));
    // a gap of two or more is no stranding: 2 of a run of 4 at its end
    let mut ix = index(&venue(vec![section("Stalls", 2, 10, 10.0)]));
    take_row_but(&mut ix, 0, 0, 10, &[2, 3, 4, 5]);
    assert_eq!(ix.pick(&ask(2)), together(vec![id(0, 0, 4), id(0, 0, 5)]));
}

#[test]
fn the_row_end_counts_as_a_neighbour_for_stranding() {
    let mut ix = index(&venue(vec![section("Stalls", 2, 10, 10.0)]));
    // row A: 0 1 2 free at the left end; taking 1 2 would strand 0, taking 0 1 strands 2
    take_row_but(&mut ix, 0, 0, 10, &[0, 1, 2]);
    assert_eq!(ix.pick(&ask(2)), together(vec![id(0, 1, 4), id(0, 1, 5)]));
    take(&mut ix, (0..10).map(|p| id(0, 1, p)));
    assert_eq!(ix.pick(&ask(2)), together(vec![id(0, 0, 1), id(0, 0, 2)]));
}

#[test]
fn groups_are_split_only_when_no_row_holds_them() {
    let mut ix = index(&venue(vec![section("Stalls", 2, 10, 10.0)]));
    for r in 0..2 {
        take(&mut ix, (1..10).step_by(2).map(|p| id(0, r, p)));
    }
    // free: 0 2 4 6 8 in both rows; the best two are 4 and 6 of row A
    assert_eq!(ix.pick(&ask(2)), apart(vec![id(0, 0, 4), id(0, 0, 6)]));
    assert_eq!(ix.pick(&ask(1)), together(vec![id(0, 0, 4)]));
    // one pair side by side anywhere wins over the best scattered seats
    ix.mark_free(id(0, 1, 9));
    assert_eq!(ix.pick(&ask(2)), together(vec![id(0, 1, 8), id(0, 1, 9)]));
}

#[test]
fn seats_are_split_across_sections_last() {
    let mut ix = index(&venue(vec![section("Stalls", 1, 4, 10.0), section("Circle", 1, 4, 100.0)]));
    take_row_but(&mut ix, 0, 0, 4, &[1]);
    take_row_but(&mut ix, 1, 0, 4, &[0, 3]);
    // two apart in the circle, rather than the stalls' better seat and one of the circle
    assert_eq!(ix.pick(&ask(2)), apart(vec![id(1, 0, 0), id(1, 0, 3)]));
    let three = ix.pick(&ask(3)).unwrap();
    assert!(!three.adjacent);
    assert_eq!(
        three.seat_ids.iter().copied().collect::<HashSet<_>>(),
        HashSet::from([id(0, 0, 1), id(1, 0, 0), id(1, 0, 3)])
    );
    assert_eq!(ix.pick(&ask(4)), None);
}

#[test]
fn one_section_is_chosen_by_its_best_seats() {
    let mut ix = index(&venue(vec![section("Stalls", 2, 4, 10.0), section("Circle", 2, 4, 100.0)]));
    // stalls: 0 and 3 of the back row; circle: 0 and 2 of the front row, nearer its focal
    take_row_but(&mut ix, 0, 0, 4, &[]);
    take_row_but(&mut ix, 0, 1, 4, &[0, 3]);
    take_row_but(&mut ix, 1, 0, 4, &[0, 2]);
    take_row_but(&mut ix, 1, 1, 4, &[]);
    assert_eq!(ix.pick(&ask(2)), apart(vec![id(1, 0, 2), id(1, 0, 0)]));
}

#[test]
fn adjacency_is_the_order_of_a_curved_row_not_x() {
    // 36 seats on 350° of a circle: the first and the last are next to each other on
    // the drawing, but at the two ends of the row
    let row = Row::arc("A", Point { x: 0.0, y: 0.0 }, 50.0, 350.0, 36, "A");
    let (first, last) = (&row.seats[0], &row.seats[35]);
    assert!((first.x - last.x).abs() < 10.0 && (first.y - last.y).abs() < 1e-6);
    let layout = venue(vec![Section { name: "Ring".into(), focal: Some(Point { x: 0.0, y: 0.0 }), rows: vec![row] }]);
    let mut ix = index(&layout);
    take_row_but(&mut ix, 0, 0, 36, &[0, 35]);
    assert_eq!(ix.pick(&ask(2)), apart(vec![id(0, 0, 0), id(0, 0, 35)]));
    ix.mark_free(id(0, 0, 1));
    assert_eq!(ix.pick(&ask(2)), together(vec![id(0, 0, 0), id(0, 0, 1)]));
}

// ---- filters ---------------------------------------------------------------------------

fn with_categories(mut layout: VenueLayout, row_categories: &[&[&str]]) -> VenueLayout {
    for (row, cats) in layout.sections[0].rows.iter_mut().zip(row_categories) {
        for (p, seat) in row.seats.iter_mut().enumerate() {
            seat.category = cats[p * cats.len() / 10].into();
        }
    }
    layout.validate().unwrap();
    layout
}

#[test]
fn categories_restrict_the_seats() {
    // row A: category A; row B: B on its left half, C on its right half
    let layout = with_categories(venue(vec![section("Stalls", 2, 10, 10.0)]), &[&["A"], &["B", "C"]]);
    let ix = index(&layout);
    let only =
        |keys: &[&str], n| BestRequest { categories: Some(keys.iter().map(|k| (*k).into()).collect()), ..ask(n) };
    assert_eq!(ix.pick(&only(&["B"], 2)), together(vec![id(0, 1, 3), id(0, 1, 4)]));
    assert_eq!(ix.pick(&only(&["C"], 2)), together(vec![id(0, 1, 5), id(0, 1, 6)]));
    assert_eq!(ix.pick(&only(&["B", "C"], 2)), together(vec![id(0, 1, 4), id(0, 1, 5)]));
    assert_eq!(ix.pick(&only(&["B"], 5)), together((0..5).map(|p| id(0, 1, p)).collect()));
    assert_eq!(ix.pick(&only(&["B"], 6)), None);
    assert_eq!(ix.pick(&only(&["D"], 1)), None);
    assert_eq!(ix.pick(&only(&["nope"], 1)), None);
    assert_eq!(ix.pick(&only(&[], 1)), None);
    assert_eq!(ix.pick(&only(&["A", "nope"], 2)), together(vec![id(0, 0, 4), id(0, 0, 5)]));
}

#[test]
fn stranding_counts_seats_of_other_categories() {
    // row A: 0..5 category A, 5..10 category B; row B: all A
    let layout = with_categories(venue(vec![section("Stalls", 2, 10, 10.0)]), &[&["A", "B"], &["A"]]);
    let mut ix = index(&layout);
    take(&mut ix, [0, 1, 2, 6, 7].map(|p| id(0, 0, p)));
    // free in row A: 3 4 (A) 5 (B) and 8 9 (B); 2 of A at 3 4 would strand B's seat 5
    let a = BestRequest { categories: Some(vec!["A".into()]), ..ask(2) };
    assert_eq!(ix.pick(&a), together(vec![id(0, 1, 4), id(0, 1, 5)]));
}

#[test]
fn sections_restrict_the_seats() {
    let ix = index(&venue(vec![section("Stalls", 2, 10, 10.0), section("Circle", 2, 10, 100.0)]));
    let only = |names: &[&str]| BestRequest { sections: Some(names.iter().map(|n| (*n).into()).collect()), ..ask(2) };
    assert_eq!(ix.pick(&only(&["Circle"])), together(vec![id(1, 0, 4), id(1, 0, 5)]));
    assert_eq!(ix.pick(&only(&["Stalls", "Circle"])), together(vec![id(0, 0, 4), id(0, 0, 5)]));
    assert_eq!(ix.pick(&only(&["Balcony"])), None);
    // each section measured from its own front centre: the circle's front row ties
    // with the stalls' front row, and the earlier ranked row wins
    assert_eq!(ix.pick(&ask(2)), together(vec![id(0, 0, 4), id(0, 0, 5)]));
}

// ---- accessible ------------------------------------------------------------------------

/// Row A: companion, wheelchair, wheelchair, companion at 0..4; row B ordinary.
fn accessible_venue() -> VenueLayout {
    let mut layout = venue(vec![section("Stalls", 2, 10, 10.0)]);
    let row = &mut layout.sections[0].rows[0].seats;
    row[0].companion = true;
    row[1].accessible = true;
    row[2].accessible = true;
    row[3].companion = true;
    layout.validate().unwrap();
    layout
}

fn accessible(n: usize) -> BestRequest {
    BestRequest { accessible: true, ..ask(n) }
}

#[test]
fn accessible_requests_get_wheelchair_spaces_with_companions() {
    let mut ix = index(&accessible_venue());
    // (2, 3) is nearest the centre: a space and its companion
    assert_eq!(ix.pick(&accessible(2)), together(vec![id(0, 0, 2), id(0, 0, 3)]));
    // one place is a wheelchair space, never a companion seat alone
    assert_eq!(ix.pick(&accessible(1)), together(vec![id(0, 0, 2)]));
    assert_eq!(ix.pick(&accessible(4)), together((0..4).map(|p| id(0, 0, p)).collect()));
    assert_eq!(ix.pick(&accessible(5)), None);
    take(&mut ix, [id(0, 0, 2)]);
    assert_eq!(ix.pick(&accessible(2)), together(vec![id(0, 0, 0), id(0, 0, 1)]));
    take(&mut ix, [id(0, 0, 1)]);
    // companions are left, but no wheelchair space
    assert_eq!(ix.pick(&accessible(1)), None);
    assert_eq!(ix.pick(&accessible(2)), None);
}

#[test]
fn accessible_groups_split_when_they_must() {
    let mut ix = index(&accessible_venue());
    take(&mut ix, [id(0, 0, 1)]);
    // free: companion 0 (alone), space 2, companion 3: three means splitting
    let three = ix.pick(&accessible(3)).unwrap();
    assert!(!three.adjacent);
    assert_eq!(three.seat_ids, vec![id(0, 0, 3), id(0, 0, 2), id(0, 0, 0)]);
}

#[test]
fn ordinary_requests_never_get_wheelchair_spaces_or_companion_seats() {
    let mut ix = index(&accessible_venue());
    // row A's ordinary seats are 4..10; 4 5 is the pair nearest the centre
    assert_eq!(ix.pick(&ask(2)), together(vec![id(0, 0, 4), id(0, 0, 5)]));
    take(&mut ix, (4..10).map(|p| id(0, 0, p)));
    take(&mut ix, (0..10).map(|p| id(0, 1, p)));
    assert_eq!(ix.free_count(), 4);
    assert_eq!(ix.pick(&ask(1)), None);
    assert!(ix.pick(&accessible(1)).is_some());
}

// ---- availability and the retry contract -----------------------------------------------

#[test]
fn marking_reports_changes_only() {
    let mut ix = index(&venue(vec![section("Stalls", 1, 4, 10.0)]));
    assert!(ix.mark_taken(id(0, 0, 1)));
    assert!(!ix.mark_taken(id(0, 0, 1)));
    assert!(!ix.mark_taken(999));
    assert!(!ix.is_free(id(0, 0, 1)));
    assert_eq!(ix.free_count(), 3);
    assert!(ix.mark_free(id(0, 0, 1)));
    assert!(!ix.mark_free(id(0, 0, 1)));
    assert!(!ix.mark_free(999));
    assert_eq!(ix.free_count(), 4);
    assert_eq!(ix.pick(&ask(4)), together((0..4).map(|p| id(0, 0, p)).collect()));
    assert_eq!(ix.pick(&ask(5)), None);
    assert_eq!(ix.pick(&ask(0)), None);
    assert_eq!(ix.pick(&ask(usize::MAX)), None);
}

#[test]
fn a_pick_after_mark_taken_never_proposes_a_taken_seat() {
    let mut ix = index(&venue(vec![section("Stalls", 4, 12, 10.0)]));
    let first = ix.pick(&ask(3)).unwrap();
    // another replica held the middle one meanwhile
    assert!(ix.mark_taken(first.seat_ids[1]));
    let second = ix.pick(&ask(3)).unwrap();
    assert!(second.adjacent);
    assert!(!second.seat_ids.contains(&first.seat_ids[1]));
    assert!(second.seat_ids.iter().all(|&s| ix.is_free(s)));
}

/// The holding code's loop: try the pick against the database (here, a set of seats
/// other replicas took that this index has not heard of), mark the lost ones, pick
/// again.
#[test]
fn the_retry_loop_ends_and_never_gives_a_taken_seat() {
    let layout = venue(vec![section("Stalls", 10, 20, 10.0)]);
    let mut ix = index(&layout);
    let mut rng = StdRng::seed_from_u64(22);
    let all: Vec<i64> = (0..10).flat_map(|r| (0..20).map(move |p| id(0, r, p))).collect();
    let mut elsewhere: HashSet<i64> = all.iter().copied().filter(|_| rng.random_bool(0.3)).collect();
    let mut sold = HashSet::new();
    let mut rounds = 0;
    while let Some(pick) = ix.pick(&ask(rng.random_range(1..=4))) {
        rounds += 1;
        assert!(rounds < 1_000, "the loop ends");
        let lost: Vec<i64> = pick.seat_ids.iter().copied().filter(|s| elsewhere.contains(s)).collect();
        for s in &lost {
            assert!(ix.mark_taken(*s), "a seat lost to another replica was still free in the index");
        }
        if lost.is_empty() {
            for s in pick.seat_ids {
                assert!(sold.insert(s) && !elsewhere.contains(&s));
                ix.mark_taken(s);
            }
        }
        elsewhere.retain(|s| ix.is_free(*s));
    }
    assert!(ix.free_count() < 4);
    assert_eq!(
        sold.len() + ix.free_count() + all.iter().filter(|s| !sold.contains(s) && !ix.is_free(**s)).count(),
        all.len()
    );
}

#[test]
fn freed_seats_come_back() {
    let mut ix = index(&venue(vec![section("Stalls", 1, 6, 10.0)]));
    take(&mut ix, (0..6).map(|p| id(0, 0, p)));
    assert_eq!(ix.pick(&ask(1)), None);
    ix.mark_free(id(0, 0, 5));
    ix.mark_free(id(0, 0, 4));
    assert_eq!(ix.pick(&ask(2)), together(vec![id(0, 0, 4), id(0, 0, 5)]));
}

#[test]
fn the_index_can_be_built_from_placed_seats_in_any_order() {
    let layout = venue(vec![section("Stalls", 2, 10, 10.0), section("Circle", 1, 5, 100.0)]);
    let sections: Vec<(String, Point)> = layout.sections.iter().map(|s| (s.name.clone(), s.focal_point())).collect();
    let keys: Vec<String> = layout.categories.iter().map(|c| c.key.clone()).collect();
    let mut placed: Vec<_> =
        layout.placed_seats().map(|p| (id(p.section as usize, p.row as usize, p.position as usize), p)).collect();
    placed.reverse();
    let ix = VenueIndex::build(&sections, &keys, placed);
    assert_eq!(ix.pick(&ask(2)), index(&layout).pick(&ask(2)));
    assert_eq!(ix.free_count(), 25);
}

// ---- a property: random venues filled by random requests --------------------------------

fn random_venue(rng: &mut StdRng) -> VenueLayout {
    let keys = ["A", "B", "C", "D"];
    let sections = (0..rng.random_range(1..=3))
        .map(|s| {
            let rows = (0..rng.random_range(1..=6))
                .map(|r| {
                    let len = rng.random_range(1..=14);
                    let mut seats: Vec<VenueSeat> = (0..len)
                        .map(|p| seat(p, 10.0 * r as f64 + 100.0 * s as f64, keys[rng.random_range(0..keys.len())]))
                        .collect();
                    if len >= 2 && rng.random_bool(0.3) {
                        let p = rng.random_range(0..len - 1);
                        seats[p].accessible = true;
                        seats[p + 1].companion = true;
                    }
                    Row { label: format!("R{r}"), seats }
                })
                .collect();
            Section { name: format!("S{s}"), focal: None, rows }
        })
        .collect();
    venue(sections)
}

fn random_request(rng: &mut StdRng, layout: &VenueLayout) -> BestRequest {
    let categories = rng
        .random_bool(0.3)
        .then(|| ["A", "B", "C", "D"].iter().filter(|_| rng.random_bool(0.5)).map(|k| (*k).into()).collect());
    let sections = rng
        .random_bool(0.2)
        .then(|| layout.sections.iter().filter(|_| rng.random_bool(0.6)).map(|s| s.name.clone()).collect());
    BestRequest { quantity: rng.random_range(1..=5), categories, sections, accessible: rng.random_bool(0.1) }
}

/// What an exhaustive search says: (section, seat indexes of each row) for fitting
/// seats, and the best clean and stranding windows' scores.
struct Oracle<'a> {
    ix: &'a VenueIndex,
    request: &'a BestRequest,
}

impl Oracle<'_> {
    fn fits(&self, i: usize) -> bool {
        let seat = &self.ix.seats[i];
        let row = self.ix.rows.iter().find(|r| (r.start as usize..(r.start + r.len) as usize).contains(&i)).unwrap();
        let in_list = |list: &Option<Vec<String>>, name: &String| list.as_ref().is_none_or(|l| l.contains(name));
        seat.free
            && in_list(&self.request.categories, &self.ix.categories[seat.category as usize])
            && in_list(&self.request.sections, &self.ix.sections[row.section as usize])
            && (seat.kind == Kind::Ordinary) != self.request.accessible
    }

    fn has_wheelchair(&self, seats: &[usize]) -> bool {
        !self.request.accessible || seats.iter().any(|&i| self.ix.seats[i].kind == Kind::Wheelchair)
    }

    /// Best (clean, stranding) window scores over all rows.
    fn windows(&self) -> (Option<u64>, Option<u64>) {
        let n = self.request.quantity;
        let (mut clean, mut stranding): (Option<u64>, Option<u64>) = (None, None);
        for row in &self.ix.rows {
            let (start, len) = (row.start as usize, row.len as usize);
            for w in 0..len.saturating_sub(n - 1) {
                let window: Vec<usize> = (start + w..start + w + n).collect();
                if !window.iter().all(|&i| self.fits(i)) || !self.has_wheelchair(&window) {
                    continue;
                }
                let free = |p: usize| self.ix.seats[start + p].free;
                let left_single = w >= 1 && free(w - 1) && (w == 1 || !free(w - 2));
                let right_single = w + n < len && free(w + n) && (w + n + 1 == len || !free(w + n + 1));
                let score = window.iter().map(|&i| self.ix.seats[i].dist).sum::<u64>();
                let best = if left_single || right_single { &mut stranding } else { &mut clean };
                *best = Some(best.map_or(score, |b: u64| b.min(score)));
            }
        }
        (clean, stranding)
    }

    fn fitting(&self) -> Vec<usize> {
        (0..self.ix.seats.len()).filter(|&i| self.fits(i)).collect()
    }
}

#[test]
fn random_venues_sell_out_without_a_seat_given_twice() {
    let mut rng = StdRng::seed_from_u64(2_026);
    let (mut picks, mut refusals, mut together_count) = (0, 0, 0);
    for _ in 0..40 {
        let layout = random_venue(&mut rng);
        let mut ix = index(&layout);
        let mut given: BTreeSet<i64> = BTreeSet::new();
        for _ in 0..400 {
            if rng.random_bool(0.05) && !given.is_empty() {
                // a hold expires
                let back = *given.iter().nth(rng.random_range(0..given.len())).unwrap();
                given.remove(&back);
                assert!(ix.mark_free(back));
            }
            let request = random_request(&mut rng, &layout);
            let oracle = Oracle { ix: &ix, request: &request };
            let fitting = oracle.fitting();
            let (clean, stranding) = oracle.windows();
            let enough = fitting.len() >= request.quantity && oracle.has_wheelchair(&fitting);
            let Some(pick) = ix.pick(&request) else {
                assert!(!enough, "refused with {} fitting seats for {request:?}", fitting.len());
                refusals += 1;
                continue;
            };
            assert!(enough, "{request:?}");
            let seats: Vec<usize> =
                pick.seat_ids.iter().map(|s| ix.seats.iter().position(|x| x.id == *s).unwrap()).collect();
            assert_eq!(seats.len(), request.quantity);
            assert!(seats.iter().all(|&i| oracle.fits(i)), "a seat that does not fit: {pick:?} for {request:?}");
            assert!(oracle.has_wheelchair(&seats));
            let score: u64 = seats.iter().map(|&i| ix.seats[i].dist).sum();
            match (clean, stranding) {
                (Some(best), _) => assert_eq!((pick.adjacent, score), (true, best), "the best group stranding nothing"),
                (None, Some(best)) => assert_eq!((pick.adjacent, score), (true, best), "the best group"),
                (None, None) => assert!(!pick.adjacent),
            }
            if pick.adjacent {
                together_count += 1;
                assert!(seats.windows(2).all(|w| w[1] == w[0] + 1));
                let rows: HashSet<_> = seats
                    .iter()
                    .map(|&i| ix.rows.iter().position(|r| r.start as usize <= i && i < (r.start + r.len) as usize))
                    .collect();
                assert_eq!(rows.len(), 1);
            }
            for s in pick.seat_ids {
                assert!(given.insert(s), "seat {s} given twice");
                assert!(ix.mark_taken(s));
            }
            picks += 1;
        }
        // everything fitting an ordinary request of one is sold, bar what holds freed
        assert_eq!(ix.free_count(), ix.seats.iter().filter(|s| s.free).count());
        assert_eq!(given.len() + ix.free_count(), ix.seats.len());
    }
    assert!(
        picks > 1_000 && refusals > 100 && together_count > 500,
        "{picks} picks, {refusals} refusals, {together_count} together"
    );
}

// ---- a micro benchmark ------------------------------------------------------------------

/// An arena: `sections` sections of 25 curved rows of 40 seats (1,000 seats each), ten
/// to a ring round the stage, rings behind one another; every section measured from the
/// stage's front centre, the arcs centred behind it (so a row's centre is its best part).
fn big_venue(sections: usize) -> VenueLayout {
    let keys = ["A", "B", "C", "D"];
    let centre = Point { x: 0.0, y: -40.0 };
    let sections = (0..sections)
        .map(|s| {
            let (ring, sector) = (s / 10, s % 10);
            let from = (-150.0 + 30.0 * sector as f64).to_radians();
            let rows = (0..25)
                .map(|r| {
                    let radius = 60.0 + 60.0 * ring as f64 + 2.0 * r as f64;
                    let seats = (0..40)
                        .map(|p| {
                            let angle = from + (28.0 * p as f64 / 39.0).to_radians();
                            VenueSeat {
                                x: centre.x + radius * angle.sin(),
                                y: centre.y + radius * angle.cos(),
                                ..seat(p, 0.0, keys[r * 4 / 25])
                            }
                        })
                        .collect();
                    Row { label: format!("R{r}"), seats }
                })
                .collect();
            Section { name: format!("S{s}"), focal: Some(Point { x: 0.0, y: 0.0 }), rows }
        })
        .collect();
    venue(sections)
}

/// `cargo test -p reservation --release --lib best::tests::picks_per_second -- --ignored --nocapture`
#[test]
#[ignore = "a benchmark: run by hand"]
fn picks_per_second() {
    for sections in [2, 100] {
        let layout = big_venue(sections);
        let ids: Vec<i64> = (1..=layout.seat_count() as i64).collect();
        let started = Instant::now();
        let mut ix = VenueIndex::from_layout(&layout, &ids);
        let built = started.elapsed();
        let total = ix.free_count();
        let mut rng = StdRng::seed_from_u64(7);
        let bands = [0.5, 0.9, 0.99, 1.0];
        let mut spent = [Duration::ZERO; 4];
        let mut count = [0u32; 4];
        // among the requests for any category
        let (mut plain, mut adjacent) = ([0u32; 4], [0u32; 4]);
        loop {
            let sold = 1.0 - ix.free_count() as f64 / total as f64;
            let band = bands.iter().position(|&b| sold < b).unwrap_or(3);
            let filtered = rng.random_bool(0.3);
            let request = if filtered {
                BestRequest {
                    categories: Some(vec![["A", "B", "C", "D"][rng.random_range(0..4)].into()]),
                    ..ask(rng.random_range(2..=4))
                }
            } else {
                ask(rng.random_range(2..=4))
            };
            let t = Instant::now();
            let pick = ix.pick(&request);
            if let Some(pick) = &pick {
                for &s in &pick.seat_ids {
                    ix.mark_taken(s);
                }
            }
            spent[band] += t.elapsed();
            count[band] += 1;
            let Some(pick) = pick else {
                // sold out for this quantity (a category may sell out before)
                if filtered {
                    continue;
                }
                break;
            };
            if !filtered {
                plain[band] += 1;
                adjacent[band] += u32::from(pick.adjacent);
            }
        }
        println!("{total} seats in {} sections (index built in {built:?}):", sections);
        for (i, upto) in ["0-50%", "50-90%", "90-99%", "99-100%"].iter().enumerate() {
            let per_second = f64::from(count[i]) / spent[i].as_secs_f64().max(1e-9);
            println!(
                "  sold {upto:>8}: {:>6} picks, {per_second:>10.0} picks/s (pick + mark_taken), {:>5.1}% of groups of any category together",
                count[i],
                100.0 * f64::from(adjacent[i]) / f64::from(plain[i].max(1))
            );
        }
    }
}
