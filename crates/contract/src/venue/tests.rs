use super::*;

fn seat(label: &str, x: f64, y: f64) -> VenueSeat {
    VenueSeat {
        label: label.into(),
        x,
        y,
        category: "A".into(),
        accessible: false,
        companion: false,
        restricted_view: false,
    }
}

/// Two categories; one section of two rows of four; one standing area of 100.
fn layout() -> VenueLayout {
    let row = |label: &str, y: f64| Row {
        label: label.into(),
        seats: (1..=4).map(|i| seat(&i.to_string(), i as f64, y)).collect(),
    };
    VenueLayout {
        categories: vec![
            Category { key: "A".into(), name: "Category A".into(), price: 9_000, colour: "#aa3300".into() },
            Category { key: "B".into(), name: "Category B".into(), price: 5_000, colour: "#00AAff".into() },
        ],
        sections: vec![Section { name: "Stalls".into(), focal: None, rows: vec![row("A", 10.0), row("B", 12.0)] }],
        areas: vec![Area { name: "Floor".into(), capacity: 100, category: "B".into() }],
    }
}

fn fault(change: impl FnOnce(&mut VenueLayout)) -> VenueFault {
    let mut venue = layout();
    change(&mut venue);
    venue.validate().expect_err("the layout should be refused")
}

#[test]
fn a_sound_layout_passes() {
    assert_eq!(layout().validate(), Ok(()));
}

#[test]
fn duplicate_category_key_is_named() {
    let f = fault(|v| v.categories[1].key = "A".into());
    assert_eq!(f, VenueFault::DuplicateCategory { at: "category \"A\"".into() });
}

#[test]
fn negative_and_absurd_prices_are_refused() {
    assert!(matches!(fault(|v| v.categories[0].price = -1), VenueFault::BadPrice { price: -1, .. }));
    assert!(matches!(fault(|v| v.categories[0].price = MAX_PRICE + 1), VenueFault::BadPrice { .. }));
}

#[test]
fn colours_must_be_hex_triplets() {
    for bad in ["red", "#abc", "#12345g", "123456#", "#1234567", ""] {
        assert!(matches!(fault(|v| v.categories[0].colour = bad.into()), VenueFault::BadColour { .. }), "{bad}");
    }
}

#[test]
fn empty_and_long_texts_are_refused() {
    assert_eq!(
        fault(|v| v.categories[0].key = " ".into()),
        VenueFault::EmptyText { at: "category 1".into(), what: "key" }
    );
    assert_eq!(
        fault(|v| v.sections[0].name = String::new()),
        VenueFault::EmptyText { at: "section 1".into(), what: "name" }
    );
    assert_eq!(
        fault(|v| v.sections[0].rows[1].label = String::new()),
        VenueFault::EmptyText { at: "section \"Stalls\", row 2".into(), what: "label" }
    );
    assert_eq!(
        fault(|v| v.sections[0].rows[0].seats[2].label = String::new()),
        VenueFault::EmptyText { at: "section \"Stalls\", row \"A\", seat 3".into(), what: "label" }
    );
    assert!(matches!(fault(|v| v.areas[0].name = "x".repeat(MAX_TEXT + 1)), VenueFault::TextTooLong { .. }));
    // the cap counts characters, not bytes
    let mut venue = layout();
    venue.sections[0].name = "é".repeat(MAX_TEXT);
    assert_eq!(venue.validate(), Ok(()));
}

#[test]
fn duplicate_section_and_area_names_are_refused() {
    let f = fault(|v| {
        let copy = v.sections[0].clone();
        v.sections.push(copy);
    });
    assert_eq!(f, VenueFault::DuplicateSection { at: "section \"Stalls\"".into() });
    assert_eq!(
        fault(|v| v.areas[0].name = "Stalls".into()),
        VenueFault::DuplicateSection { at: "area \"Stalls\"".into() }
    );
}

#[test]
fn a_section_without_rows_and_a_row_without_seats_are_refused() {
    assert_eq!(fault(|v| v.sections[0].rows.clear()), VenueFault::NoRows { at: "section \"Stalls\"".into() });
    assert_eq!(
        fault(|v| v.sections[0].rows[1].seats.clear()),
        VenueFault::NoSeats { at: "section \"Stalls\", row \"B\"".into() }
    );
}

#[test]
fn duplicate_row_and_seat_labels_are_named() {
    assert_eq!(
        fault(|v| v.sections[0].rows[1].label = "A".into()),
        VenueFault::DuplicateRow { at: "section \"Stalls\", row \"A\"".into() }
    );
    assert_eq!(
        fault(|v| v.sections[0].rows[1].seats[3].label = "1".into()),
        VenueFault::DuplicateSeat { at: "section \"Stalls\", row \"B\", seat \"1\"".into() }
    );
    // the same seat label in two rows is fine
    assert_eq!(layout().sections[0].rows[0].seats[0].label, layout().sections[0].rows[1].seats[0].label);
}

#[test]
fn unknown_categories_are_named() {
    assert_eq!(
        fault(|v| v.sections[0].rows[0].seats[1].category = "Z".into()),
        VenueFault::UnknownCategory { at: "section \"Stalls\", row \"A\", seat \"2\"".into(), category: "Z".into() }
    );
    assert_eq!(
        fault(|v| v.areas[0].category = "a".into()),
        VenueFault::UnknownCategory { at: "area \"Floor\"".into(), category: "a".into() }
    );
}

#[test]
fn bad_coordinates_are_refused() {
    for bad in [f64::NAN, f64::INFINITY, -f64::INFINITY, MAX_COORDINATE * 2.0] {
        assert!(matches!(fault(|v| v.sections[0].rows[0].seats[0].x = bad), VenueFault::BadCoordinate { .. }));
        assert!(matches!(fault(|v| v.sections[0].rows[0].seats[0].y = bad), VenueFault::BadCoordinate { .. }));
        assert!(matches!(
            fault(|v| v.sections[0].focal = Some(Point { x: 0.0, y: bad })),
            VenueFault::BadCoordinate { .. }
        ));
    }
}

#[test]
fn capacity_must_be_positive() {
    assert_eq!(
        fault(|v| v.areas[0].capacity = 0),
        VenueFault::BadCapacity { at: "area \"Floor\"".into(), capacity: 0 }
    );
    assert!(matches!(fault(|v| v.areas[0].capacity = -5), VenueFault::BadCapacity { capacity: -5, .. }));
}

#[test]
fn places_are_capped_counting_seats_and_standing() {
    let mut venue = layout();
    venue.areas[0].capacity = MAX_PLACES - 8;
    assert_eq!(venue.validate(), Ok(()));
    venue.areas[0].capacity = MAX_PLACES - 7;
    assert_eq!(venue.validate(), Err(VenueFault::TooManyPlaces { places: MAX_PLACES + 1 }));
    venue.areas[0].capacity = i64::MAX;
    assert!(matches!(venue.validate(), Err(VenueFault::TooManyPlaces { .. })));
}

#[test]
fn a_venue_needs_places() {
    assert_eq!(
        fault(|v| {
            v.sections.clear();
            v.areas.clear();
        }),
        VenueFault::NoPlaces
    );
    // standing only is a venue
    let mut venue = layout();
    venue.sections.clear();
    assert_eq!(venue.validate(), Ok(()));
}

#[test]
fn companions_need_a_wheelchair_space_beside_them() {
    let f = fault(|v| v.sections[0].rows[0].seats[1].companion = true);
    assert_eq!(f, VenueFault::LoneCompanion { at: "section \"Stalls\", row \"A\", seat \"2\"".into() });
    // a wheelchair space in the next row does not count
    assert!(matches!(
        fault(|v| {
            v.sections[0].rows[0].seats[1].companion = true;
            v.sections[0].rows[1].seats[1].accessible = true;
        }),
        VenueFault::LoneCompanion { .. }
    ));
    for neighbour in [0, 2] {
        let mut venue = layout();
        venue.sections[0].rows[0].seats[1].companion = true;
        venue.sections[0].rows[0].seats[neighbour].accessible = true;
        assert_eq!(venue.validate(), Ok(()));
    }
    // at a row's end
    let mut venue = layout();
    venue.sections[0].rows[0].seats[3].companion = true;
    venue.sections[0].rows[0].seats[2].accessible = true;
    assert_eq!(venue.validate(), Ok(()));
    assert!(matches!(
        fault(|v| {
            v.sections[0].rows[0].seats[2].companion = true;
            v.sections[0].rows[0].seats[2].accessible = true;
        }),
        VenueFault::BothFlags { .. }
    ));
}

#[test]
fn the_first_fault_in_document_order_is_named() {
    let f = fault(|v| {
        v.sections[0].rows[1].seats[0].category = "Z".into();
        v.sections[0].rows[0].seats[3].label = "1".into();
        v.areas[0].capacity = 0;
    });
    assert!(matches!(f, VenueFault::DuplicateSeat { .. }), "{f:?}");
}

#[test]
fn faults_read_well() {
    let f = fault(|v| v.sections[0].rows[1].seats[0].category = "Z".into());
    assert_eq!(f.to_string(), "section \"Stalls\", row \"B\", seat \"1\": unknown category \"Z\"");
    assert_eq!(
        VenueFault::TooManyPlaces { places: 100_001 }.to_string(),
        "the venue has 100001 places (seats and standing), more than 100000"
    );
}

#[test]
fn the_wire_form_is_camel_case_and_strict() {
    let json = r##"{"categories":[{"key":"A","name":"A","price":1,"colour":"#000000"}],
        "sections":[{"name":"S","focal":{"x":1,"y":2},"rows":[{"label":"A","seats":[
            {"label":"1","x":0,"y":0,"category":"A","accessible":true},
            {"label":"2","x":1,"y":0,"category":"A","companion":true,"restrictedView":true}]}]}],
        "areas":[{"name":"Floor","capacity":5,"category":"A"}]}"##;
    let venue: VenueLayout = serde_json::from_str(json).unwrap();
    assert_eq!(venue.validate(), Ok(()));
    let seat = &venue.sections[0].rows[0].seats[1];
    assert!(seat.companion && seat.restricted_view && !seat.accessible);
    let out = serde_json::to_string(&venue.sections[0].rows[0].seats[1]).unwrap();
    assert_eq!(out, r#"{"label":"2","x":1.0,"y":0.0,"category":"A","companion":true,"restrictedView":true}"#);
    let unknown = json.replace("\"accessible\":true", "\"wheelchair\":true");
    assert!(serde_json::from_str::<VenueLayout>(&unknown).is_err());
    let unknown = json.replace("\"capacity\":5", "\"capacity\":5,\"price\":3");
    assert!(serde_json::from_str::<VenueLayout>(&unknown).is_err());
}

#[test]
fn the_default_focal_point_is_the_front_centre() {
    let venue = layout();
    assert_eq!(venue.sections[0].focal_point(), Point { x: 2.5, y: 10.0 });
    let mut section = venue.sections[0].clone();
    section.focal = Some(Point { x: -3.0, y: 4.0 });
    assert_eq!(section.focal_point(), Point { x: -3.0, y: 4.0 });
}

#[test]
fn placed_seats_follow_the_layout_order() {
    let placed: Vec<PlacedSeat> = layout().placed_seats().collect();
    assert_eq!(placed.len(), layout().seat_count());
    assert_eq!(placed.len(), 8);
    assert_eq!((placed[5].section, placed[5].row, placed[5].position, placed[5].label.as_str()), (0, 1, 1, "2"));
    let json = serde_json::to_string(&placed[0]).unwrap();
    assert_eq!(json, r#"{"section":0,"row":0,"position":0,"label":"1","category":"A","x":1.0,"y":10.0}"#);
}

#[test]
fn arc_rows_curve_round_the_stage() {
    let row = Row::arc("A", Point { x: 0.0, y: 0.0 }, 100.0, 120.0, 21, "A");
    assert_eq!(row.seats.len(), 21);
    let (first, middle, last) = (&row.seats[0], &row.seats[10], &row.seats[20]);
    assert!(first.x < 0.0 && last.x > 0.0 && middle.x.abs() < 1e-9);
    assert!(first.y < middle.y, "the ends come forward, towards the stage");
    for pair in row.seats.windows(2) {
        let d = ((pair[1].x - pair[0].x).powi(2) + (pair[1].y - pair[0].y).powi(2)).sqrt();
        assert!((d - 100.0 * (120f64.to_radians() / 20.0)).abs() < 0.1, "neighbours are evenly spaced: {d}");
    }
}

/// The v1 seat with the venue's additions flattened in, as `api::Seat` will carry them.
#[test]
fn seat_map_additions_leave_a_grid_map_byte_identical() {
    let mut seat = crate::api::Seat {
        id: 7,
        r: 0,
        c: 3,
        price: 53_000,
        status: crate::api::SeatStatus::Available,
        place: SeatPlace::default(),
    };
    assert_eq!(serde_json::to_string(&seat).unwrap(), r#"{"id":7,"r":0,"c":3,"price":53000,"status":"AVAILABLE"}"#);
    assert_eq!(serde_json::to_string(&SeatMapVenue::default()).unwrap(), "{}");
    let place = SeatPlace {
        section: Some("Stalls".into()),
        row: Some("C".into()),
        label: Some("12".into()),
        category: Some("A".into()),
        x: Some(1.5),
        y: Some(2.0),
        accessible: Some(true),
        companion: None,
        restricted_view: Some(false),
    };
    seat.place = place;
    let with = serde_json::to_string(&seat).unwrap();
    assert_eq!(
        with,
        r#"{"id":7,"r":0,"c":3,"price":53000,"status":"AVAILABLE","section":"Stalls","row":"C","label":"12","category":"A","x":1.5,"y":2.0,"accessible":true,"restrictedView":false}"#
    );
    let map = SeatMapVenue {
        categories: vec![],
        areas: vec![AreaStatus { id: 1, name: "Floor".into(), capacity: 500, available: 498, price: 3_000 }],
    };
    assert_eq!(
        serde_json::to_string(&map).unwrap(),
        r#"{"areas":[{"id":1,"name":"Floor","capacity":500,"available":498,"price":3000}]}"#
    );
}
