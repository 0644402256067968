//! Venues, standing areas and best available (docs/VENUES.md), on either engine.

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{self, assert_error, spawn_app};

/// A small venue: a straight front row of `front` seats (its first a wheelchair space, its
/// second the companion), and a curved back row of six whose ends are drawn side by side,
/// both in category A; a balcony of `balcony` seats in category B; a standing floor.
fn venue(front: usize, balcony: usize, standing: i64) -> Value {
    let mut front_row: Vec<Value> =
        (1..=front).map(|i| json!({"label": i.to_string(), "x": 100 + 10 * i, "y": 10, "category": "A"})).collect();
    front_row[0]["accessible"] = json!(true);
    front_row[1]["companion"] = json!(true);
    // The ends of the curve (seats 1 and 6) are closer on the drawing than to their
    // neighbours: adjacency is the order, not x.
    let curve: Vec<Value> = [(100, 40), (90, 60), (100, 80), (120, 80), (130, 60), (120, 40)]
        .iter()
        .enumerate()
        .map(|(i, (x, y))| json!({"label": (i + 1).to_string(), "x": x, "y": y, "category": "A"}))
        .collect();
    let balcony_row: Vec<Value> =
        (1..=balcony).map(|i| json!({"label": i.to_string(), "x": 100 + 10 * i, "y": 200, "category": "B"})).collect();
    json!({
        "categories": [
            {"key": "A", "name": "Stalls", "price": 9000, "colour": "#c0392b"},
            {"key": "B", "name": "Balcony", "price": 4000, "colour": "#2980b9"},
            {"key": "S", "name": "Standing", "price": 2500, "colour": "#27ae60"}
        ],
        "sections": [
            {"name": "Stalls", "rows": [{"label": "A", "seats": front_row}, {"label": "B", "seats": curve}]},
            {"name": "Balcony", "rows": [{"label": "A", "seats": balcony_row}]}
        ],
        "areas": [{"name": "Floor", "capacity": standing, "category": "S"}]
    })
}

/// Creates a venue show and waits until the reservation module has its seats.
async fn create(app: &common::TestApp, venue: Value) -> i64 {
    let r = app
        .admin_post("/admin/events", json!({"title": "Venue", "dateTime": "2027-01-01T20:00:00", "venue": venue}))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED, "{}", r.text().await.unwrap());
    let id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    app.wait_for_seats(id).await;
    id
}

async fn map(app: &common::TestApp, event_id: i64) -> Value {
    app.http.get(app.api(&format!("/events/{event_id}/seats"))).send().await.unwrap().json().await.unwrap()
}

async fn hold_best(buyer: &common::Buyer, event_id: i64, best: Value) -> reqwest::Response {
    let mut buyer = buyer.clone();
    buyer.post("/reservations", json!({"eventId": event_id, "bestAvailable": best, "holdSeconds": 60})).await
}

async fn hold_standing(buyer: &common::Buyer, event_id: i64, area_id: i64, quantity: i64) -> reqwest::Response {
    let mut buyer = buyer.clone();
    let body = json!({"eventId": event_id, "areaId": area_id, "quantity": quantity, "holdSeconds": 60});
    buyer.post("/reservations", body).await
}

#[tokio::test]
async fn a_venue_shows_its_places_categories_and_areas_and_a_grid_map_stays_v1() {
    let app = spawn_app().await;
    let id = create(&app, venue(6, 4, 5)).await;
    let m = map(&app, id).await;
    let seats = m["seats"].as_array().unwrap();
    assert_eq!(seats.len(), 16, "seats only; the standing places are counted in areas");
    assert_eq!(m["rows"], 3, "v1's rows: the venue's rows in all");
    assert_eq!(m["cols"], 6, "v1's cols: its longest row");
    let first = &seats[0];
    assert_eq!(
        (first["section"].as_str(), first["row"].as_str(), first["label"].as_str()),
        (Some("Stalls"), Some("A"), Some("1"))
    );
    assert_eq!(
        (first["category"].as_str(), first["price"].as_i64(), first["accessible"].as_bool()),
        (Some("A"), Some(9000), Some(true))
    );
    assert_eq!(seats[1]["companion"], true);
    assert_eq!((first["r"].as_i64(), first["c"].as_i64()), (Some(1), Some(1)));
    assert_eq!(seats[15]["price"], 4000);
    assert_eq!(m["categories"].as_array().unwrap().len(), 3);
    assert_eq!(m["areas"], json!([{"id": 1, "name": "Floor", "capacity": 5, "available": 5, "price": 2500}]));

    // A grid show's map has exactly v1's fields.
    let grid = map(&app, 1).await;
    let keys: HashSet<&str> = grid.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, HashSet::from(["rows", "cols", "seats", "eventId", "version"]));
    let keys: HashSet<&str> = grid["seats"][0].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, HashSet::from(["id", "r", "c", "price", "status"]));

    // The demo venue: about 2,000 seats, four categories, a standing area of 500.
    let demo = map(&app, 4).await;
    let n = demo["seats"].as_array().unwrap().len();
    assert!((1_500..=2_500).contains(&n), "{n} seats");
    assert!(demo["categories"].as_array().unwrap().len() >= 4);
    assert_eq!(demo["areas"][0]["capacity"], 500);
    app.assert_audit_passes().await;
}

#[tokio::test]
async fn a_bad_venue_is_refused_with_its_first_fault_and_nothing_is_created() {
    let app = spawn_app().await;
    let before = app.http.get(app.api("/events")).send().await.unwrap().json::<Value>().await.unwrap();
    let mut twice = venue(4, 2, 5);
    twice["sections"][0]["rows"][1]["label"] = json!("A");
    let mut unknown = venue(4, 2, 5);
    unknown["sections"][1]["rows"][0]["seats"][0]["category"] = json!("Z");
    let mut empty_area = venue(4, 2, 5);
    empty_area["areas"][0]["capacity"] = json!(0);
    let mut huge = venue(4, 2, 5);
    huge["areas"][0]["capacity"] = json!(100_000);
    for (bad, says) in [(twice, "row"), (unknown, "categor"), (empty_area, "capacity"), (huge, "100")] {
        let r = app
            .admin_post("/admin/events", json!({"title": "Bad", "dateTime": "2027-01-01T20:00:00", "venue": bad}))
            .await;
        let body = assert_error(r, 422, "VALIDATION_FAILED").await;
        assert!(body["message"].as_str().unwrap().contains(says), "{body}");
    }
    let both =
        json!({"title": "Both", "dateTime": "2027-01-01T20:00:00", "rows": 2, "cols": 2, "venue": venue(4, 2, 5)});
    assert_error(app.admin_post("/admin/events", both).await, 422, "VALIDATION_FAILED").await;
    let after = app.http.get(app.api("/events")).send().await.unwrap().json::<Value>().await.unwrap();
    assert_eq!(before, after, "nothing was created");
}

#[tokio::test]
async fn best_available_holds_adjacent_seats_in_row_order_and_keeps_wheelchair_spaces() {
    let app = spawn_app().await;
    let id = create(&app, venue(6, 4, 5)).await;
    let ann = app.buyer("ann");
    let r = hold_best(&ann, id, json!({"quantity": 3, "categories": ["A"]})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let held: Value = r.json().await.unwrap();
    assert_eq!(held["adjacent"], true, "{held}");
    let ids: Vec<i64> = held["seatIds"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
    // Front row, never the wheelchair space (1) or its companion (2), side by side.
    assert_eq!(ids.len(), 3);
    assert!(ids.iter().all(|id| (3..=6).contains(id)), "{ids:?}");
    assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "in row order: {ids:?}");
    for seat in &ids {
        app.wait_seat(id, *seat, "HELD").await;
    }
    // Asked for, the wheelchair space comes with its companion.
    let r = hold_best(&app.buyer("bo"), id, json!({"quantity": 2, "accessible": true})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let held: Value = r.json().await.unwrap();
    let mut ids: Vec<i64> = held["seatIds"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
    ids.sort();
    assert_eq!(ids, [1, 2]);
    // A balcony pair, then nothing fitting: NOT_ENOUGH_SEATS, and nothing held.
    let cy = app.buyer("cy");
    assert_eq!(hold_best(&cy, id, json!({"quantity": 4, "sections": ["Balcony"]})).await.status(), StatusCode::CREATED);
    let r = hold_best(&app.buyer("di"), id, json!({"quantity": 1, "sections": ["Balcony"]})).await;
    assert_error(r, 409, "NOT_ENOUGH_SEATS").await;
    // Bad requests change nothing.
    for bad in [
        json!({"quantity": 0}),
        json!({"quantity": 21}),
        json!({"quantity": 2, "categories": []}),
        json!({"quantity": 2, "extra": 1}),
    ] {
        let r = hold_best(&app.buyer("eve"), id, bad).await;
        assert_eq!(r.status().as_u16(), 422);
    }
    let mut eve = app.buyer("eve");
    let both = json!({"eventId": id, "seatIds": [7], "bestAvailable": {"quantity": 1}});
    assert_error(eve.post("/reservations", both).await, 422, "VALIDATION_FAILED").await;
    app.assert_audit_passes().await;
}

#[tokio::test]
async fn buyers_racing_for_the_best_seats_never_share_one_and_are_refused_only_when_none_remain() {
    let app = spawn_app().await;
    // 16 ordinary seats in the stalls (the wheelchair space and companion are kept out),
    // 8 in the balcony: 24 seats, 12 pairs; 200 buyers at once.
    let id = create(&app, venue(12, 8, 5)).await;
    let buyers: Vec<common::Buyer> = (0..200).map(|i| app.buyer(&format!("racer-{i}"))).collect();
    let answers = futures_util::future::join_all(buyers.iter().map(|b| hold_best(b, id, json!({"quantity": 2})))).await;
    let mut seats = HashSet::new();
    let (mut won, mut refused) = (0, 0);
    for r in answers {
        match r.status() {
            StatusCode::CREATED => {
                won += 1;
                let held: Value = r.json().await.unwrap();
                for s in held["seatIds"].as_array().unwrap() {
                    assert!(seats.insert(s.as_i64().unwrap()), "seat {s} given twice");
                }
            }
            _ => {
                assert_error(r, 409, "NOT_ENOUGH_SEATS").await;
                refused += 1;
            }
        }
    }
    assert_eq!((won, refused), (12, 188), "every pair held, and only then refusals");
    app.assert_audit_passes().await;
}

#[tokio::test]
async fn seats_whose_holds_expire_are_offered_again() {
    let app = spawn_app().await;
    let id = create(&app, venue(4, 2, 5)).await;
    let r = hold_best(&app.buyer("first"), id, json!({"quantity": 2, "sections": ["Balcony"]})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_error(
        hold_best(&app.buyer("second"), id, json!({"quantity": 2, "sections": ["Balcony"]})).await,
        409,
        "NOT_ENOUGH_SEATS",
    )
    .await;
    // Past the hold's 60 s (on the server's clock): the seats are free again for best available.
    app.clock.advance(std::time::Duration::from_secs(61));
    let second = app.buyer("second");
    let held: Value =
        common::eventually(std::time::Duration::from_secs(5), "the expired seats offered again", || async {
            let r = hold_best(&second, id, json!({"quantity": 2, "sections": ["Balcony"]})).await;
            match r.status() {
                StatusCode::CREATED => Some(r.json::<Value>().await.unwrap()),
                _ => None,
            }
        })
        .await;
    assert_eq!(held["seatIds"].as_array().unwrap().len(), 2);
    assert_eq!(held["adjacent"], true);
}

#[tokio::test]
async fn a_standing_area_is_never_oversold_and_its_places_sell_like_seats() {
    let app = spawn_app().await;
    let id = create(&app, venue(4, 2, 100)).await;
    // 200 buyers at once for 3 places each of 100.
    let buyers: Vec<common::Buyer> = (0..200).map(|i| app.buyer(&format!("stander-{i}"))).collect();
    let answers = futures_util::future::join_all(buyers.iter().map(|b| hold_standing(b, id, 1, 3))).await;
    let mut places = HashSet::new();
    let mut winners = Vec::new();
    for (buyer, r) in buyers.iter().zip(answers) {
        if r.status() == StatusCode::CREATED {
            let held: Value = r.json().await.unwrap();
            let ids: Vec<i64> = held["seatIds"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
            assert_eq!(ids.len(), 3);
            for p in &ids {
                assert!(places.insert(*p), "place {p} given twice");
            }
            winners.push((buyer.clone(), ids));
        } else {
            assert_error(r, 409, "NOT_ENOUGH_SEATS").await;
        }
    }
    assert_eq!(winners.len(), 33, "99 places, 3 each, never one more");
    assert_error(hold_standing(&app.buyer("late"), id, 1, 2).await, 409, "NOT_ENOUGH_SEATS").await;
    assert_eq!(hold_standing(&app.buyer("last"), id, 1, 1).await.status(), StatusCode::CREATED, "the 100th place");
    assert_error(hold_standing(&app.buyer("lost"), id, 9, 1).await, 404, "NOT_FOUND").await;
    let mut eve = app.buyer("eve");
    let r = eve.post("/reservations", json!({"eventId": id, "areaId": 1})).await;
    assert_error(r, 422, "VALIDATION_FAILED").await;

    // Places are ordered, paid and sold like seats.
    let (buyer, ids) = &winners[0];
    let r = buyer.order(&uuid::Uuid::new_v4().to_string(), id, ids).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let order: Value = r.json().await.unwrap();
    let order = buyer.final_order(order["orderId"].as_i64().unwrap()).await;
    assert_eq!(order["status"], "CONFIRMED", "{order}");
    assert_eq!(order["amount"], 7500, "three places of the area's category");

    let sales: Value = app
        .http
        .get(app.api(&format!("/admin/events/{id}/sales")))
        .bearer_auth(common::ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut available = Value::Null;
    for _ in 0..250 {
        available = map(&app, id).await["areas"][0]["available"].clone();
        if available == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(available, 0, "the map counts the held and sold places");
    let area = &sales["areas"][0];
    assert_eq!((area["capacity"].as_i64(), area["seats"].as_i64()), (Some(100), Some(100)));
    assert_eq!(
        area["available"].as_i64().unwrap() + area["held"].as_i64().unwrap() + area["sold"].as_i64().unwrap(),
        100
    );
    let stalls = sales["sections"].as_array().unwrap().iter().find(|s| s["name"] == "Stalls").unwrap();
    assert_eq!(stalls["seats"], 10);
    app.assert_audit_passes().await;
}

#[tokio::test]
async fn best_available_serves_a_grid_show_too() {
    let app = spawn_app().await;
    let r = hold_best(&app.buyer("grid"), 1, json!({"quantity": 4})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let held: Value = r.json().await.unwrap();
    assert_eq!(held["adjacent"], true);
    // Front row, centre: the original's seats of row 1 are 1, 4, …, 28 (show 1).
    let ids: Vec<i64> = held["seatIds"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
    assert!(ids.iter().all(|s| *s <= common::seat(1, 10)), "{ids:?}");
}

#[tokio::test]
async fn a_released_seat_is_offered_again_at_once() {
    let app = spawn_app().await;
    let id = create(&app, venue(4, 4, 5)).await;
    let balcony = json!({"quantity": 2, "sections": ["Balcony"]});
    let first = app.buyer("first");
    let r = hold_best(&first, id, balcony.clone()).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let best: Vec<i64> = serde_json::from_value(r.json::<Value>().await.unwrap()["seatIds"].clone()).unwrap();
    for seat in &best {
        assert_eq!(first.release(id, *seat).await.status(), StatusCode::NO_CONTENT);
    }
    // Straight after the release, not after the index's next reading of the show: the
    // next buyer is offered the best seats again.
    let r = hold_best(&app.buyer("second"), id, balcony.clone()).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let again: Vec<i64> = serde_json::from_value(r.json::<Value>().await.unwrap()["seatIds"].clone()).unwrap();
    assert_eq!(again, best, "the released seats are the best again");
    // A seat held on the map is never proposed: with every ordinary stalls seat but one
    // held that way, best available gives that one.
    let seats = map(&app, id).await["seats"].as_array().unwrap().clone();
    let stalls: Vec<i64> = seats
        .iter()
        .filter(|s| s["section"] == "Stalls" && s["accessible"] != true && s["companion"] != true)
        .map(|s| s["id"].as_i64().unwrap())
        .collect();
    let (last, on_map) = stalls.split_last().unwrap();
    assert_eq!(app.buyer("map").hold(id, on_map).await.status(), StatusCode::CREATED);
    let r = hold_best(&app.buyer("third"), id, json!({"quantity": 1, "sections": ["Stalls"]})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.json::<Value>().await.unwrap()["seatIds"], json!([last]));
}
