//! Venue layouts (issue 22): sections of rows of seats with a price category each,
//! standing areas sold by quantity, and the fields a venue adds to the seat map.
//!
//! Modelled after pretix's seating plan (zones → rows → seats, categories) and Seats.io's
//! charts. A layout arrives as the `venue` of `POST /admin/events` and is checked as a
//! whole by [`VenueLayout::validate`], which names the first fault so that the 422 says
//! what to fix and nothing is created.
//!
//! Conventions:
//! - **Adjacency** is the order of `seats` in its row, never their `x`: the two ends of a
//!   curved row may be close on the drawing and are still not neighbours.
//! - **Coordinates** are drawing units with `y` growing away from the stage (as in SVG
//!   with the stage at the top). A section's focal point, the place "best" is measured
//!   from, is its `focal` if given, else its front centre: the middle of its seats'
//!   `x` extent at their smallest `y` ([`Section::focal_point`]).
//! - A **wheelchair space** is a seat with `accessible: true`; a **companion seat**
//!   (`companion: true`) sits next to one in its row.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

/// Most places (seats plus standing capacity) one venue may have.
pub const MAX_PLACES: i64 = 100_000;
/// Longest name, key or label, in characters.
pub const MAX_TEXT: usize = 64;
/// Largest absolute coordinate accepted (drawing units).
pub const MAX_COORDINATE: f64 = 1_000_000.0;
/// Highest price of a category (in the API's minor units, as seat prices).
pub const MAX_PRICE: i64 = 1_000_000_000;

/// `venue` of `POST /admin/events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VenueLayout {
    pub categories: Vec<Category>,
    #[serde(default)]
    pub sections: Vec<Section>,
    #[serde(default)]
    pub areas: Vec<Area>,
}

/// A price category: every seat and area names one by its `key`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Category {
    pub key: String,
    pub name: String,
    pub price: i64,
    /// `#rrggbb`
    pub colour: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Point {
    pub x: f64,
    pub y: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Section {
    pub name: String,
    /// Where "best" is measured from; by default the section's front centre.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub focal: Option<Point>,
    pub rows: Vec<Row>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Row {
    pub label: String,
    /// In adjacency order: `seats[i]` and `seats[i + 1]` are neighbours.
    pub seats: Vec<VenueSeat>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VenueSeat {
    pub label: String,
    pub x: f64,
    pub y: f64,
    pub category: String,
    /// A wheelchair space.
    #[serde(default, skip_serializing_if = "is_false")]
    pub accessible: bool,
    /// A companion seat, next to a wheelchair space.
    #[serde(default, skip_serializing_if = "is_false")]
    pub companion: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub restricted_view: bool,
}

/// A standing area, sold by quantity against its capacity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Area {
    pub name: String,
    pub capacity: i64,
    pub category: String,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The first fault of a layout, worded for a 422 body. `at` says where, as
/// `section "Stalls", row "C", seat "12"`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VenueFault {
    #[error("the venue has no seats and no standing areas")]
    NoPlaces,
    #[error("{at}: the {what} is empty")]
    EmptyText { at: String, what: &'static str },
    #[error("{at}: the {what} is longer than {MAX_TEXT} characters")]
    TextTooLong { at: String, what: &'static str },
    #[error("{at}: the key is used by an earlier category")]
    DuplicateCategory { at: String },
    #[error("{at}: the price {price} is not between 0 and {MAX_PRICE}")]
    BadPrice { at: String, price: i64 },
    #[error("{at}: the colour {colour:?} is not of the form #rrggbb")]
    BadColour { at: String, colour: String },
    #[error("{at}: the name is used by an earlier section or area")]
    DuplicateSection { at: String },
    #[error("{at}: the section has no rows")]
    NoRows { at: String },
    #[error("{at}: the label is used by an earlier row of the section")]
    DuplicateRow { at: String },
    #[error("{at}: the row has no seats")]
    NoSeats { at: String },
    #[error("{at}: the label is used by an earlier seat of the row")]
    DuplicateSeat { at: String },
    #[error("{at}: unknown category {category:?}")]
    UnknownCategory { at: String, category: String },
    #[error("{at}: the coordinates are not finite numbers within ±{MAX_COORDINATE}")]
    BadCoordinate { at: String },
    #[error("{at}: a seat cannot be both a wheelchair space and a companion seat")]
    BothFlags { at: String },
    #[error("{at}: a companion seat needs a wheelchair space next to it in its row")]
    LoneCompanion { at: String },
    #[error("{at}: the capacity {capacity} is not positive")]
    BadCapacity { at: String, capacity: i64 },
    #[error("the venue has {places} places (seats and standing), more than {MAX_PLACES}")]
    TooManyPlaces { places: i64 },
}

fn check_text(at: &str, what: &'static str, text: &str) -> Result<(), VenueFault> {
    if text.trim().is_empty() {
        return Err(VenueFault::EmptyText { at: at.to_owned(), what });
    }
    if text.chars().count() > MAX_TEXT {
        return Err(VenueFault::TextTooLong { at: at.to_owned(), what });
    }
    Ok(())
}

fn is_colour(colour: &str) -> bool {
    let bytes = colour.as_bytes();
    bytes.len() == 7 && bytes[0] == b'#' && bytes[1..].iter().all(u8::is_ascii_hexdigit)
}

fn is_coordinate(v: f64) -> bool {
    v.is_finite() && v.abs() <= MAX_COORDINATE
}

fn check_point(at: &str, x: f64, y: f64) -> Result<(), VenueFault> {
    if is_coordinate(x) && is_coordinate(y) { Ok(()) } else { Err(VenueFault::BadCoordinate { at: at.to_owned() }) }
}

fn check_category(at: &str, category: &str, keys: &HashSet<&str>) -> Result<(), VenueFault> {
    if keys.contains(category) {
        Ok(())
    } else {
        Err(VenueFault::UnknownCategory { at: at.to_owned(), category: category.to_owned() })
    }
}

impl VenueLayout {
    /// Checks the layout as a whole and names its first fault, in document order
    /// (categories, then sections row by row, then areas), the place count last.
    pub fn validate(&self) -> Result<(), VenueFault> {
        let mut keys = HashSet::new();
        for (i, category) in self.categories.iter().enumerate() {
            let at = format!("category {}", i + 1);
            check_text(&at, "key", &category.key)?;
            let at = format!("category {:?}", category.key);
            check_text(&at, "name", &category.name)?;
            if !keys.insert(category.key.as_str()) {
                return Err(VenueFault::DuplicateCategory { at });
            }
            if !(0..=MAX_PRICE).contains(&category.price) {
                return Err(VenueFault::BadPrice { at, price: category.price });
            }
            if !is_colour(&category.colour) {
                return Err(VenueFault::BadColour { at, colour: category.colour.clone() });
            }
        }
        let mut names = HashSet::new();
        let mut places: i64 = 0;
        for (i, section) in self.sections.iter().enumerate() {
            check_text(&format!("section {}", i + 1), "name", &section.name)?;
            let at = format!("section {:?}", section.name);
            if !names.insert(section.name.as_str()) {
                return Err(VenueFault::DuplicateSection { at });
            }
            if let Some(focal) = section.focal {
                check_point(&format!("{at}, focal point"), focal.x, focal.y)?;
            }
            if section.rows.is_empty() {
                return Err(VenueFault::NoRows { at });
            }
            let mut labels = HashSet::new();
            for (j, row) in section.rows.iter().enumerate() {
                check_text(&format!("{at}, row {}", j + 1), "label", &row.label)?;
                let at = format!("{at}, row {:?}", row.label);
                if !labels.insert(row.label.as_str()) {
                    return Err(VenueFault::DuplicateRow { at });
                }
                check_row(&at, row, &keys)?;
                places += row.seats.len() as i64;
            }
        }
        for (i, area) in self.areas.iter().enumerate() {
            check_text(&format!("area {}", i + 1), "name", &area.name)?;
            let at = format!("area {:?}", area.name);
            if !names.insert(area.name.as_str()) {
                return Err(VenueFault::DuplicateSection { at });
            }
            check_category(&at, &area.category, &keys)?;
            if area.capacity <= 0 {
                return Err(VenueFault::BadCapacity { at, capacity: area.capacity });
            }
            places = places.saturating_add(area.capacity);
        }
        if places == 0 {
            return Err(VenueFault::NoPlaces);
        }
        if places > MAX_PLACES {
            return Err(VenueFault::TooManyPlaces { places });
        }
        Ok(())
    }

    /// Every seat with its place in the layout, in layout order (section by section, row
    /// by row, in adjacency order): the order seat ids are given in.
    pub fn placed_seats(&self) -> impl Iterator<Item = PlacedSeat> + '_ {
        self.sections.iter().enumerate().flat_map(|(s, section)| {
            section.rows.iter().enumerate().flat_map(move |(r, row)| {
                row.seats.iter().enumerate().map(move |(p, seat)| PlacedSeat {
                    section: s as u32,
                    row: r as u32,
                    position: p as u32,
                    label: seat.label.clone(),
                    category: seat.category.clone(),
                    x: seat.x,
                    y: seat.y,
                    accessible: seat.accessible,
                    companion: seat.companion,
                    restricted_view: seat.restricted_view,
                })
            })
        })
    }

    /// Number of seats (standing places not counted).
    pub fn seat_count(&self) -> usize {
        self.sections.iter().flat_map(|s| &s.rows).map(|r| r.seats.len()).sum()
    }
}

fn check_row(at: &str, row: &Row, keys: &HashSet<&str>) -> Result<(), VenueFault> {
    if row.seats.is_empty() {
        return Err(VenueFault::NoSeats { at: at.to_owned() });
    }
    let mut labels = HashSet::new();
    for (k, seat) in row.seats.iter().enumerate() {
        check_text(&format!("{at}, seat {}", k + 1), "label", &seat.label)?;
        let at = format!("{at}, seat {:?}", seat.label);
        if !labels.insert(seat.label.as_str()) {
            return Err(VenueFault::DuplicateSeat { at });
        }
        check_category(&at, &seat.category, keys)?;
        check_point(&at, seat.x, seat.y)?;
        if seat.accessible && seat.companion {
            return Err(VenueFault::BothFlags { at });
        }
        let beside = |i: Option<usize>| i.and_then(|i| row.seats.get(i)).is_some_and(|s| s.accessible);
        if seat.companion && !beside(k.checked_sub(1)) && !beside(Some(k + 1)) {
            return Err(VenueFault::LoneCompanion { at });
        }
    }
    Ok(())
}

impl Section {
    /// The point "best" is measured from: `focal`, or the front centre of the section —
    /// the middle of its seats' `x` extent, at their smallest `y` (y grows away from the
    /// stage).
    pub fn focal_point(&self) -> Point {
        if let Some(focal) = self.focal {
            return focal;
        }
        let seats = self.rows.iter().flat_map(|r| &r.seats);
        let (mut min_x, mut max_x, mut min_y) = (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY);
        for seat in seats {
            min_x = min_x.min(seat.x);
            max_x = max_x.max(seat.x);
            min_y = min_y.min(seat.y);
        }
        if min_x.is_finite() { Point { x: (min_x + max_x) / 2.0, y: min_y } } else { Point { x: 0.0, y: 0.0 } }
    }
}

impl Row {
    /// A row of `count` seats labelled 1..=count on an arc of `radius` around `centre`
    /// (the stage), spread over `spread_degrees` (0: a straight row is better made by
    /// hand), facing the stage: seat 1 on the left as seen from the stage's side of the
    /// drawing. `y` grows away from the stage. For demo and test venues.
    pub fn arc(label: &str, centre: Point, radius: f64, spread_degrees: f64, count: usize, category: &str) -> Row {
        let half = spread_degrees.to_radians() / 2.0;
        let seats = (0..count)
            .map(|i| {
                let t = if count > 1 { i as f64 / (count - 1) as f64 } else { 0.5 };
                let angle = -half + t * 2.0 * half;
                VenueSeat {
                    label: (i + 1).to_string(),
                    x: round2(centre.x + radius * angle.sin()),
                    y: round2(centre.y + radius * angle.cos()),
                    category: category.to_owned(),
                    accessible: false,
                    companion: false,
                    restricted_view: false,
                }
            })
            .collect();
        Row { label: label.to_owned(), seats }
    }
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// One seat of a venue with its place in the layout: what `EventCreated` can carry for a
/// venue show (section, row and position are indexes into the layout; `position` orders
/// the row, so adjacency survives the trip).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlacedSeat {
    pub section: u32,
    pub row: u32,
    pub position: u32,
    pub label: String,
    pub category: String,
    pub x: f64,
    pub y: f64,
    #[serde(default, skip_serializing_if = "is_false")]
    pub accessible: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub companion: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub restricted_view: bool,
}

/// A section as `EventCreated` names it: its name and its focal point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SectionFocus {
    pub name: String,
    pub focal: Point,
}

/// What a venue adds to a seat of the seat map (`GET /events/{id}/seats`), meant to be
/// `#[serde(flatten)]`ed into `api::Seat`: every field is left out when absent, so a grid
/// show's map stays byte for byte what v1 sends.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeatPlace {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accessible: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub companion: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restricted_view: Option<bool>,
}

/// Data of the SSE `AREA_UPDATE` message: a standing area's places still available, as
/// of the map's `version`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AreaUpdate {
    pub area_id: i64,
    pub available: i64,
    pub version: i64,
}

/// Seats (or places) by state: one line of the operator's sales view.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tally {
    pub seats: i64,
    pub available: i64,
    pub held: i64,
    pub sold: i64,
}

/// `GET /admin/events/{id}/sales`: a show's sales by section, category and standing area.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sales {
    pub event_id: i64,
    pub sections: Vec<SectionSales>,
    pub categories: Vec<CategorySales>,
    pub areas: Vec<AreaSales>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SectionSales {
    pub name: String,
    #[serde(flatten)]
    pub tally: Tally,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CategorySales {
    pub key: String,
    pub name: String,
    pub price: i64,
    pub colour: String,
    #[serde(flatten)]
    pub tally: Tally,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AreaSales {
    pub id: i64,
    pub name: String,
    pub capacity: i64,
    #[serde(flatten)]
    pub tally: Tally,
}

/// A standing area on the seat map: counts, not one entry per place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AreaStatus {
    pub id: i64,
    pub name: String,
    pub capacity: i64,
    pub available: i64,
    pub price: i64,
}

/// What a venue adds to the seat map itself, meant to be `#[serde(flatten)]`ed into
/// `api::SeatMap`; empty (and absent on the wire) for a grid show.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeatMapVenue {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<Category>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub areas: Vec<AreaStatus>,
}

#[cfg(test)]
mod tests;
