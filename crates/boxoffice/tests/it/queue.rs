//! The waiting room over HTTP: joining, one's place, admission in queue order, and the
//! operator's switch.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use reqwest::Method;

use crate::common::{ADMIN, Buyer, TestApp, assert_error, eventually, get_json, seat, spawn_app};

/// An on-sale `secs` from the app's clock, as the API writes times.
fn on_sale_in(app: &TestApp, secs: i64) -> String {
    let at = app.clock.now_millis() + secs * 1000;
    chrono::DateTime::from_timestamp_millis(at).unwrap().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

async fn set_room(app: &TestApp, event_id: i64, body: Value) -> reqwest::Response {
    let url = app.api(&format!("/admin/events/{event_id}/room"));
    app.http.patch(url).bearer_auth(ADMIN).json(&body).send().await.unwrap()
}

async fn place(buyer: &Buyer, event_id: i64) -> Value {
    let r = buyer.get(&format!("/queue/{event_id}/me")).await;
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn visitors_join_before_the_on_sale_and_are_let_through_in_queue_order() {
    let app = spawn_app().await;
    let room = json!({ "onSaleAt": on_sale_in(&app, 40), "waitingRoom": { "enabled": true, "ratePerMinute": 60 } });
    let r = set_room(&app, 1, room).await;
    assert_eq!(r.status(), StatusCode::OK);
    let set: Value = r.json().await.unwrap();
    assert_eq!(set["waitingRoom"], json!({ "enabled": true, "ratePerMinute": 60 }));

    let mut ann = app.buyer("ann");
    let mut bob = app.anonymous();
    for buyer in [&mut ann, &mut bob] {
        let r = buyer.post("/queue/1/join", json!({})).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let joined: Value = r.json().await.unwrap();
        assert_eq!(joined["status"], "PREQUEUE", "{joined}");
        assert_eq!(joined["position"], Value::Null);
        assert!(joined["onSaleAt"].is_string());
        assert!(joined["estimatedWaitSeconds"].as_u64().unwrap() <= 40);
    }
    assert!(bob.cookie.is_some(), "an anonymous visitor gets the buyer cookie");
    // A repeat answers the same place.
    assert_eq!(ann.post("/queue/1/join", json!({})).await.status(), StatusCode::OK);
    assert_eq!(bob.post("/queue/1/join", json!({})).await.status(), StatusCode::OK);

    // The on-sale: both get a place from the shuffle.
    app.clock.advance(Duration::from_secs(40));
    let positions = eventually(Duration::from_secs(10), "the pre-queue is shuffled", || async {
        let (a, b) = (place(&ann, 1).await, place(&bob, 1).await);
        (a["status"] == "WAITING" || a["status"] == "ADMITTED")
            .then(|| (a["position"].as_u64().unwrap(), b["position"].as_u64().unwrap()))
    })
    .await;
    let mut both = [positions.0, positions.1];
    both.sort_unstable();
    assert_eq!(both, [1, 2], "unique, gap-free positions");
    let audit: Value =
        app.http.get(app.api("/admin/events/1/room")).bearer_auth(ADMIN).send().await.unwrap().json().await.unwrap();
    assert!(audit["draw"]["seed"].is_string(), "the seed is recorded: {audit}");
    assert_eq!(audit["order"].as_array().unwrap().len(), 2);

    // One a second: the first in line is let through first, with a token.
    let (first, second) = if positions.0 == 1 { (&ann, &bob) } else { (&bob, &ann) };
    let admitted = eventually(Duration::from_secs(10), "the first in line is let through", || async {
        app.clock.advance(Duration::from_millis(200));
        let (f, s) = (place(first, 1).await, place(second, 1).await);
        // Both may be let through in one round between the two reads (the clock moves
        // faster than the rounds): then the first must be in, and no later.
        let f = if s["status"] == "ADMITTED" { place(first, 1).await } else { f };
        if f["status"] == "ADMITTED" {
            if s["status"] == "ADMITTED" {
                let (fa, sa) = (f["admissionExpiresAt"].as_str(), s["admissionExpiresAt"].as_str());
                assert!(fa.is_some() && fa <= sa, "the second went first: {f} {s}");
            }
            return Some((f, s));
        }
        assert_ne!(s["status"], "ADMITTED", "the second went first: {s} {f}");
        None
    })
    .await;
    assert!(admitted.0["admissionToken"].as_str().is_some_and(|t| !t.is_empty()), "{}", admitted.0);
    let r = first.get("/queue/1/me").await;
    let cookie = r.headers().get("set-cookie").expect("the token as a cookie").to_str().unwrap().to_owned();
    assert!(cookie.starts_with("admission_1="), "{cookie}");
    eventually(Duration::from_secs(10), "the second is let through", || async {
        app.clock.advance(Duration::from_millis(200));
        place(second, 1).await["status"] == "ADMITTED"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_turned_off_lets_everyone_through() {
    let app = spawn_app().await;
    let room =
        json!({ "onSaleAt": on_sale_in(&app, 3600), "waitingRoom": { "enabled": true, "ratePerMinute": "auto" } });
    assert_eq!(set_room(&app, 2, room).await.status(), StatusCode::OK);
    let mut ann = app.buyer("ann");
    let joined: Value = ann.post("/queue/2/join", json!({})).await.json().await.unwrap();
    assert_eq!(joined["status"], "PREQUEUE");
    let set: Value = set_room(&app, 2, json!({ "waitingRoom": { "enabled": false } })).await.json().await.unwrap();
    assert_eq!(set["waitingRoom"]["ratePerMinute"], "auto", "what is not sent stays");
    let now = place(&ann, 2).await;
    assert_eq!(now["status"], "ADMITTED", "{now}");
    assert!(now["admissionToken"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_refuses_bad_requests_with_the_contract_error() {
    let app = spawn_app().await;
    let mut ann = app.buyer("ann");
    assert_error(ann.post("/queue/3/join", json!({})).await, 404, "NOT_FOUND").await;
    assert_error(ann.post("/queue/abc/join", json!({})).await, 404, "NOT_FOUND").await;
    assert_error(ann.post("/queue/0/join", json!({})).await, 422, "VALIDATION_FAILED").await;
    assert_error(ann.get("/queue/3/me").await, 404, "NOT_FOUND").await;
    assert_error(app.anonymous().get("/queue/3/me").await, 401, "UNAUTHORIZED").await;
    let unsigned = app.http.patch(app.api("/admin/events/3/room")).json(&json!({})).send().await.unwrap();
    assert_error(unsigned, 401, "UNAUTHORIZED").await;
    for bad in [
        json!({ "waitingRoom": { "ratePerMinute": 0 } }),
        json!({ "waitingRoom": { "ratePerMinute": "fast" } }),
        json!({ "onSaleAt": "tomorrow" }),
        json!({ "onSaleAt": 12 }),
        json!({ "unknown": true }),
    ] {
        assert_error(set_room(&app, 3, bad).await, 422, "VALIDATION_FAILED").await;
    }
    let none: Value =
        app.http.get(app.api("/admin/events/3/room")).bearer_auth(ADMIN).send().await.unwrap().json().await.unwrap();
    assert_eq!(none["code"], "NOT_FOUND");
}

/// A show created with its on-sale time and room is guarded from its first seat: no
/// moment between the show's creation and the room when a bot could hold. A bad room in
/// the request creates nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_show_created_with_a_room_is_guarded_from_the_start() {
    let app = spawn_app().await;
    let shows = |app: &TestApp| {
        let url = app.api("/events");
        let http = app.http.clone();
        async move { http.get(url).send().await.unwrap().json::<Value>().await.unwrap().as_array().unwrap().len() }
    };
    let before = shows(&app).await;
    let show = |room: Value| {
        let mut body = json!({ "title": "Gated", "dateTime": "2027-01-01T20:00:00", "rows": 2, "cols": 5 });
        body.as_object_mut().unwrap().extend(room.as_object().unwrap().clone());
        body
    };
    for bad in [
        json!({ "waitingRoom": { "ratePerMinute": 0 } }),
        json!({ "waitingRoom": { "enabled": "yes" } }),
        json!({ "onSaleAt": "next friday" }),
        json!({ "waitingRoom": { "enabled": true, "surprise": 1 } }),
    ] {
        assert_error(app.admin_post("/admin/events", show(bad.clone())).await, 422, "VALIDATION_FAILED").await;
    }
    assert_eq!(shows(&app).await, before, "a refused show is not created");

    let room = json!({ "onSaleAt": on_sale_in(&app, 60), "waitingRoom": { "enabled": true, "ratePerMinute": 600 } });
    let r = app.admin_post("/admin/events", show(room)).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let event_id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let seat_id = 1; // a show made through the API numbers its seats 1, 2, …
    // Every answer, from the first, refuses: the seats and the door arrive together.
    let mut ann = app.buyer("ann");
    let refused = eventually(Duration::from_secs(10), "the new show's seats are known", || async {
        let r = ann.hold(event_id, &[seat_id]).await;
        assert_ne!(r.status(), StatusCode::CREATED, "a seat of a show not on sale was held");
        (r.status() == StatusCode::FORBIDDEN).then_some(r)
    })
    .await;
    assert_error(refused, 403, "NOT_ON_SALE").await;
    // The waiting room has the room: visitors join its pre-queue.
    let set = eventually(Duration::from_secs(10), "the room is set up", || async {
        let r = app.http.get(app.api(&format!("/admin/events/{event_id}/room"))).bearer_auth(ADMIN).send().await;
        let body: Value = r.unwrap().json().await.unwrap();
        (body["waitingRoom"]["enabled"] == true).then_some(body)
    })
    .await;
    assert_eq!(set["waitingRoom"]["ratePerMinute"], 600);
    assert!(set["onSaleAt"].is_string(), "{set}");
    let joined: Value = ann.post(&format!("/queue/{event_id}/join"), json!({})).await.json().await.unwrap();
    assert_eq!(joined["status"], "PREQUEUE", "{joined}");
    // At the on-sale the room guards the seats: a hold without a token is refused. (Ann
    // keeps asking on the way, as her waiting page does, so she keeps her place.)
    for _ in 0..4 {
        app.clock.advance(Duration::from_millis(15_500));
        place(&ann, event_id).await;
    }
    assert_error(app.buyer("bot").hold(event_id, &[seat_id]).await, 403, "QUEUE_REQUIRED").await;
    let token = admitted(&app, &mut ann, event_id).await;
    assert_eq!(hold_with(&ann, event_id, &[seat_id], Some(&token)).await.status(), StatusCode::CREATED);
    app.assert_audit_passes().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_place_streams_until_the_visitor_is_let_through() {
    let app = spawn_app().await;
    let room = json!({ "onSaleAt": on_sale_in(&app, 3600), "waitingRoom": { "enabled": true, "ratePerMinute": 60 } });
    assert_eq!(set_room(&app, 1, room).await.status(), StatusCode::OK);
    let mut ann = app.buyer("ann");
    assert_eq!(ann.post("/queue/1/join", json!({})).await.status(), StatusCode::CREATED);
    let mut stream = ann.get("/queue/1/me/stream").await;
    assert_eq!(stream.status(), StatusCode::OK);
    assert!(stream.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let first = String::from_utf8(stream.chunk().await.unwrap().unwrap().to_vec()).unwrap();
    assert!(first.contains("event: place") && first.contains("\"status\":\"PREQUEUE\""), "{first}");
    // The sale opens: the stream says so, then ends once she is let through.
    set_room(&app, 1, json!({ "onSaleAt": on_sale_in(&app, -1) })).await;
    app.clock.advance(Duration::from_secs(2));
    let mut seen = String::new();
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(10), stream.chunk()).await.unwrap().unwrap() {
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains("\"status\":\"ADMITTED\"") && seen.contains("admissionToken"), "{seen}");
}

/// A hold of `seats` of show `event_id` carrying `token` (in the `Admission-Token`
/// header), if any.
async fn hold_with(buyer: &Buyer, event_id: i64, seats: &[i64], token: Option<&str>) -> reqwest::Response {
    let body = json!({ "eventId": event_id, "seatIds": seats, "holdSeconds": 60 });
    let mut rb = buyer.request(Method::POST, "/reservations").json(&body);
    if let Some(token) = token {
        rb = rb.header("Admission-Token", token);
    }
    rb.send().await.unwrap()
}

/// Joins and waits, moving the clock, until let through; returns the admission token.
async fn admitted(app: &TestApp, buyer: &mut Buyer, event_id: i64) -> String {
    let r = buyer.post(&format!("/queue/{event_id}/join"), json!({})).await;
    assert!(r.status().is_success(), "{}", r.status());
    eventually(Duration::from_secs(20), format!("let through show {event_id}'s room"), || async {
        app.clock.advance(Duration::from_millis(500));
        let p = place(buyer, event_id).await;
        assert_ne!(p["status"], "EXPIRED", "{p}");
        p["admissionToken"].as_str().map(str::to_owned)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_room_guards_the_seats_until_it_is_turned_off() {
    let app = spawn_app().await;
    // The path; the on-sale half a minute away.
    let url = app.api("/admin/events/1");
    let room = json!({ "onSaleAt": on_sale_in(&app, 30), "waitingRoom": { "enabled": true, "ratePerMinute": 600 } });
    let r = app.http.patch(url).bearer_auth(ADMIN).json(&room).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // Before the on-sale nothing is held (once reservation has heard of the room: until
    // then the probe may hold a seat of its own).
    let mut ann = app.buyer("ann");
    let refused = eventually(Duration::from_secs(10), "holds wait for the on-sale", || async {
        let r = ann.hold(1, &[seat(1, 50)]).await;
        (r.status() == StatusCode::FORBIDDEN).then_some(r)
    })
    .await;
    assert_error(refused, 403, "NOT_ON_SALE").await;

    // Another show whose room is open, to have a token of another show.
    let other = json!({ "onSaleAt": on_sale_in(&app, -1), "waitingRoom": { "enabled": true, "ratePerMinute": 600 } });
    assert_eq!(set_room(&app, 2, other).await.status(), StatusCode::OK);

    let (mut bob, mut carol) = (app.buyer("bob"), app.buyer("carol"));
    for buyer in [&mut ann, &mut carol] {
        assert_eq!(buyer.post("/queue/1/join", json!({})).await.status(), StatusCode::CREATED);
    }
    app.clock.advance(Duration::from_secs(30));
    let ann_token = admitted(&app, &mut ann, 1).await;
    let carol_token = admitted(&app, &mut carol, 1).await;
    let bob_other_show = admitted(&app, &mut bob, 2).await;

    // A bot without a token holds nothing, whatever form its hold takes.
    let mut bot = app.anonymous();
    for body in [
        json!({ "eventId": 1, "seatIds": [seat(1, 1)] }),
        json!({ "eventId": 1, "seatId": seat(1, 1) }),
        json!({ "eventId": 1, "bestAvailable": { "quantity": 2 } }),
        json!({ "eventId": 1, "areaId": 1, "quantity": 2 }),
    ] {
        assert_error(bot.post("/reservations", body).await, 403, "QUEUE_REQUIRED").await;
    }
    // Forged, another buyer's, another show's: refused, nothing held.
    let (head, _) = ann_token.rsplit_once('.').unwrap();
    let forged = format!("{head}.{}", "0".repeat(64));
    let stretched = ann_token.replacen(&ann_token.split('.').nth(1).unwrap().to_owned(), "99999999999999", 1);
    for (who, token) in [
        (&ann, forged.as_str()),
        (&ann, stretched.as_str()),
        (&bob, ann_token.as_str()),
        (&bob, bob_other_show.as_str()),
    ] {
        assert_error(hold_with(who, 1, &[seat(1, 1)], Some(token)).await, 403, "QUEUE_REQUIRED").await;
    }
    let r = hold_with(&carol, 1, &[seat(1, 1)], Some(&carol_token)).await;
    assert_eq!(r.status(), StatusCode::CREATED, "nothing was held by the refused");
    // Nor an order without the token, of seats held with it.
    let r = hold_with(&ann, 1, &[seat(1, 2), seat(1, 3)], Some(&ann_token)).await;
    assert_eq!(r.status(), StatusCode::CREATED, "the admitted buyer holds");
    assert_error(ann.order("k1", 1, &[seat(1, 2), seat(1, 3)]).await, 403, "QUEUE_REQUIRED").await;
    // With the token in the cookie it goes through.
    let body = json!({ "eventId": 1, "seatIds": [seat(1, 2), seat(1, 3)] });
    let r = ann
        .request(Method::POST, "/orders")
        .header("Idempotency-Key", "k1")
        .header("cookie", format!("admission_1={ann_token}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);

    // Past its window the token is refused, and joining again does not jump the line.
    app.clock.advance(Duration::from_secs(601));
    assert_error(hold_with(&ann, 1, &[seat(1, 4)], Some(&ann_token)).await, 403, "QUEUE_REQUIRED").await;
    let again: Value = ann.post("/queue/1/join", json!({})).await.json().await.unwrap();
    assert_eq!(again["status"], "EXPIRED", "one admission per buyer and show: {again}");
    assert!(again["admissionToken"].is_null());

    // The operator turns the room off: everyone goes through.
    assert_eq!(set_room(&app, 1, json!({ "waitingRoom": { "enabled": false } })).await.status(), StatusCode::OK);
    eventually(Duration::from_secs(10), "the bot holds once the room is off", || async {
        bot.hold(1, &[seat(1, 4)]).await.status() == StatusCode::CREATED
    })
    .await;
}

/// The modules in processes of their own, two replicas of the waiting room, one
/// `--auth-secret`: the room's token opens the reservation and order processes' door,
/// and the two replicas let visitors through in one queue order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_door_holds_across_processes_and_replicas_admit_in_queue_order() {
    use crate::common::start_binary;
    use crate::distributed::{replica_args, services};
    let Some(s) = services() else { return };
    let prefix = format!("bt_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let data = tempfile::tempdir().unwrap();
    let secret = ["--auth-secret".to_owned(), "a-shared-secret-of-the-test".to_owned()];
    let start = |module: &'static str, extra: Vec<String>| {
        let args = replica_args(&s, &prefix, data.path(), module, &[secret.to_vec(), extra].concat());
        async move { start_binary(&args).await }
    };
    let (_catalog, _) = start("catalog", vec![]).await;
    let (_reservation, reservation) = start("reservation", vec![]).await;
    let pin_via = vec!["--reservation-url".to_owned(), reservation.clone()];
    let (_order, order) = start("order", pin_via).await;
    let (_room1, room1) = start("waitingroom", vec![]).await;
    let (_room2, room2) = start("waitingroom", vec![]).await;
    let http = reqwest::Client::new();
    let api = |url: &str, path: &str| format!("{url}/ticketing/api{path}");

    // The on-sale in 3 s (these processes go by the system's clock), one a second.
    let at = chrono::Utc::now() + chrono::Duration::seconds(3);
    let room = json!({ "onSaleAt": at.to_rfc3339(), "waitingRoom": { "enabled": true, "ratePerMinute": 60 } });
    let r = http.patch(api(&room1, "/admin/events/1")).bearer_auth(ADMIN).json(&room).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let hold = |who: &str, seat_n: i64, token: Option<&str>| {
        let mut rb = http
            .post(api(&reservation, "/reservations"))
            .bearer_auth(who)
            .json(&json!({ "eventId": 1, "seatId": seat(1, seat_n), "holdSeconds": 60 }));
        if let Some(t) = token {
            rb = rb.header("Admission-Token", t);
        }
        rb.send()
    };
    eventually(Duration::from_secs(30), "the reservation process hears of the room", || async {
        hold("early", 99, None).await.unwrap().status() == StatusCode::FORBIDDEN
    })
    .await;

    // Visitors join through either replica before the on-sale.
    let visitors: Vec<String> = (0..6).map(|i| format!("visitor-{i}")).collect();
    for (i, v) in visitors.iter().enumerate() {
        let url = if i % 2 == 0 { &room1 } else { &room2 };
        let r = http.post(api(url, "/queue/1/join")).bearer_auth(v).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    // Each asks its own replica; none is let through ahead of someone before it.
    let seen = std::sync::Mutex::new((vec![None::<String>; visitors.len()], Vec::<u64>::new()));
    eventually(Duration::from_secs(40), "everyone is let through", || async {
        for (i, v) in visitors.iter().enumerate() {
            let url = if i % 2 == 0 { &room1 } else { &room2 };
            let p = get_json(&http, &api(url, "/queue/1/me"), v).await;
            let mut seen = seen.lock().unwrap();
            if p["status"] == "ADMITTED" && seen.0[i].is_none() {
                seen.0[i] = p["admissionToken"].as_str().map(str::to_owned);
                seen.1.push(p["position"].as_u64().unwrap());
            }
        }
        seen.lock().unwrap().0.iter().all(Option::is_some)
    })
    .await;
    let (tokens, admitted_positions) = seen.into_inner().unwrap();
    let mut sorted = admitted_positions.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (1..=6).collect::<Vec<u64>>(), "unique, gap-free positions");
    // Seen a second apart each, they are seen in queue order (two at most in one poll).
    assert!(
        admitted_positions.windows(2).all(|w| w[0] < w[1] + 2),
        "let through in queue order: {admitted_positions:?}"
    );
    let audit = |url: String| {
        let http = http.clone();
        async move { get_json(&http, &format!("{url}/ticketing/api/admin/events/1/room"), ADMIN).await }
    };
    assert_eq!(audit(room1.clone()).await["order"], audit(room2.clone()).await["order"], "one queue order");

    // The token of the waiting room's process opens the reservation and order processes.
    let token = tokens[0].clone().unwrap();
    assert_error(hold("bot", 5, None).await.unwrap(), 403, "QUEUE_REQUIRED").await;
    assert_error(hold("visitor-1", 5, Some(&token)).await.unwrap(), 403, "QUEUE_REQUIRED").await;
    assert_eq!(hold("visitor-0", 5, Some(&token)).await.unwrap().status(), StatusCode::CREATED);
    let ordered = http
        .post(api(&order, "/orders"))
        .bearer_auth("visitor-0")
        .header("Idempotency-Key", "door-1")
        .header("Admission-Token", &token)
        .json(&json!({ "eventId": 1, "seatIds": [seat(1, 5)] }))
        .send()
        .await
        .unwrap();
    assert_eq!(ordered.status(), StatusCode::CREATED);
    let without = http
        .post(api(&order, "/orders"))
        .bearer_auth("visitor-0")
        .header("Idempotency-Key", "door-2")
        .json(&json!({ "eventId": 1, "seatIds": [seat(1, 5)] }))
        .send()
        .await
        .unwrap();
    assert_error(without, 403, "QUEUE_REQUIRED").await;
}

/// Joins racing over HTTP (each visitor twice at once): one place each, positions unique
/// and gap-free; then the process is killed and restarted on its data, and every place
/// is where it was, the line moving on in its order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_joins_get_one_place_each_and_a_restart_keeps_every_place() {
    use crate::common::{Store, free_port, start_binary_on};
    let data = tempfile::tempdir().unwrap();
    let store = Store::new(data.path());
    let args = store.serve_args();
    let port = free_port();
    let (mut child, url) = start_binary_on(port, &args, None).await;
    let http = reqwest::Client::new();
    let api = |path: &str| format!("{url}/ticketing/api{path}");
    // The on-sale in 2 s of the process's (system) clock; one visitor every 2 s.
    let at = chrono::Utc::now() + chrono::Duration::seconds(2);
    let room = json!({ "onSaleAt": at.to_rfc3339(), "waitingRoom": { "enabled": true, "ratePerMinute": 30 } });
    let r = http.patch(api("/admin/events/1/room")).bearer_auth(ADMIN).json(&room).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    let visitors: Vec<String> = (0..20).map(|i| format!("racer-{i}")).collect();
    let joins = visitors.iter().chain(&visitors).map(|v| {
        let (http, url, v) = (http.clone(), api("/queue/1/join"), v.clone());
        tokio::spawn(async move { http.post(url).bearer_auth(v).send().await.unwrap().status() })
    });
    let statuses: Vec<StatusCode> =
        futures_util::future::join_all(joins).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::CREATED).count(), 20, "one place each: {statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 20);

    let places = |url: String| {
        let (http, visitors) = (http.clone(), visitors.clone());
        async move {
            let mut positions = Vec::new();
            for v in &visitors {
                let p = get_json(&http, &format!("{url}/ticketing/api/queue/1/me"), v).await;
                positions.push((p["position"].as_u64(), p["status"].as_str().unwrap_or_default().to_owned()));
            }
            positions
        }
    };
    let before = eventually(Duration::from_secs(20), "the pre-queue is shuffled", || async {
        let now = places(url.clone()).await;
        now.iter().all(|(p, _)| p.is_some()).then_some(now)
    })
    .await;
    let mut sorted: Vec<u64> = before.iter().map(|(p, _)| p.unwrap()).collect();
    sorted.sort_unstable();
    assert_eq!(sorted, (1..=20).collect::<Vec<u64>>(), "unique, gap-free positions");
    let order = get_json(&http, &api("/admin/events/1/room"), ADMIN).await["order"].clone();

    // Killed mid-line, restarted on the same data.
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let (_child, url) = start_binary_on(port, &args, None).await;
    let after = places(url.clone()).await;
    for ((was, _), (is, status)) in before.iter().zip(&after) {
        assert_eq!(was, is, "the same place after the restart");
        assert_ne!(status, "EXPIRED");
    }
    assert_eq!(get_json(&http, &format!("{url}/ticketing/api/admin/events/1/room"), ADMIN).await["order"], order);
    // The line moves on from where it was, in its order.
    let admitted = eventually(Duration::from_secs(20), "the line moves on after the restart", || async {
        let now = places(url.clone()).await;
        let admitted: Vec<u64> = now.iter().filter(|(_, s)| s == "ADMITTED").filter_map(|(p, _)| *p).collect();
        (admitted.len() >= 3).then_some(admitted)
    })
    .await;
    let mut admitted = admitted;
    admitted.sort_unstable();
    assert_eq!(admitted, (1..=admitted.len() as u64).collect::<Vec<u64>>(), "the first in line first");
}
