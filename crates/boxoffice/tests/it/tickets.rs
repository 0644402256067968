//! Tickets and the door: issued when an order is confirmed, only to its owner; checked
//! in once however many gates scan them at once; offline uploads counted once; forged,
//! altered, foreign and retired tokens refused; revoked with their order.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Row;

use crate::common::{
    ADMIN, Buyer, Later, TestApp, args, assert_error, eventually, scanner_token, seats, spawn_app, spawn_with,
};

/// The order's tickets once there are as many as `n`.
async fn tickets_of(buyer: &Buyer, order_id: i64, n: usize) -> Vec<Value> {
    let last = std::sync::Mutex::new(Value::Null);
    let what = Later(|| format!("order {order_id} has {n} tickets; it has {}", last.lock().unwrap()));
    eventually(Duration::from_secs(20), what, || async {
        let r = buyer.get(&format!("/orders/{order_id}/tickets")).await;
        let body: Value = r.json().await.unwrap();
        *last.lock().unwrap() = body.clone();
        body.as_array().filter(|t| t.len() == n).cloned()
    })
    .await
}

/// A confirmed order of `seats` bought by `name`, with its tickets.
async fn bought(app: &TestApp, name: &str, event_id: i64, seats: &[i64]) -> (Buyer, i64, Vec<Value>) {
    let buyer = app.buyer(name);
    let order_id = buyer.buy(event_id, seats).await;
    assert_eq!(buyer.final_order(order_id).await["status"], "CONFIRMED");
    let tickets = tickets_of(&buyer, order_id, seats.len()).await;
    (buyer, order_id, tickets)
}

async fn scan(app: &TestApp, scanner: &str, token: &str, gate: &str, scan_id: &str) -> reqwest::Response {
    let body = json!({ "token": token, "gate": gate, "scanId": scan_id });
    app.http.post(app.api("/checkin")).bearer_auth(scanner).json(&body).send().await.unwrap()
}

async fn check_in(app: &TestApp, scanner: &str, token: &str, gate: &str, scan_id: &str) -> Value {
    let r = scan(app, scanner, token, gate, scan_id).await;
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

fn token_of(ticket: &Value) -> String {
    ticket["token"].as_str().unwrap().to_owned()
}

/// The show's signing key, read from the module's database (a test forging tokens).
async fn signing_key(app: &TestApp, event_id: i64) -> (String, String) {
    let db = app.store.connect("tickets").await;
    let row = sqlx::query("SELECT kid, secret_key FROM keys WHERE event_id = $1 AND active = 1")
        .bind(event_id)
        .fetch_one(&db)
        .await
        .unwrap();
    let key = (row.get("kid"), row.get("secret_key"));
    db.close().await;
    key
}

async fn forge(app: &TestApp, event_id: i64, claims: &tickets::token::Claims) -> String {
    let (kid, secret) = signing_key(app, event_id).await;
    tickets::token::sign(&tickets::token::signing_key(&secret).unwrap(), &kid, claims)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmed_orders_tickets_are_its_owners_alone() {
    let app = spawn_app().await;
    let seat_ids = seats(1, [1, 2]);
    let (buyer, order_id, tickets) = bought(&app, "ticket-owner", 1, &seat_ids).await;
    for (ticket, seat) in tickets.iter().zip(seat_ids) {
        assert_eq!(ticket["eventId"], 1);
        assert_eq!(ticket["seatId"], seat);
        assert_eq!(ticket["status"], "VALID");
        assert!(ticket["label"].as_str().unwrap().contains("row 1, seat "), "{ticket}");
    }
    // The token names its key, which the show publishes.
    let token = token_of(&tickets[0]);
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);
    let keys: Value = app.http.get(app.api("/events/1/ticket-keys")).send().await.unwrap().json().await.unwrap();
    let key = keys["keys"].as_array().unwrap().iter().find(|k| k["kid"] == header.kid.as_deref().unwrap()).unwrap();
    assert_eq!(key["alg"], "Ed25519");
    let public = jsonwebtoken::DecodingKey::from_ed_components(key["publicKey"].as_str().unwrap()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    let claims = jsonwebtoken::decode::<Value>(&token, &public, &validation).unwrap().claims;
    assert_eq!(claims["tid"], tickets[0]["ticketId"]);
    assert_eq!(claims["ev"], 1);

    // The QR code and the printable PDF.
    let ticket_id = tickets[0]["ticketId"].as_str().unwrap();
    let r = buyer.get(&format!("/orders/{order_id}/tickets/{ticket_id}/qr.svg")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "image/svg+xml");
    assert!(r.text().await.unwrap().contains("<svg"));
    let r = buyer.get(&format!("/orders/{order_id}/tickets.pdf")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/pdf");
    let pdf = r.bytes().await.unwrap();
    assert!(pdf.starts_with(b"%PDF"));
    // The page names the show and its date, not just a number.
    let has = |text: &str| pdf.windows(text.len()).any(|w| w == text.as_bytes());
    assert!(has("(Aurora Live in Seoul)") && has("(2025-10-01 19:00)"), "the show's title and date are printed");

    // Another buyer's order is one that does not exist; so is a ticket not of the order.
    let other = app.buyer("someone-else");
    for path in [
        format!("/orders/{order_id}/tickets"),
        format!("/orders/{order_id}/tickets.pdf"),
        format!("/orders/{order_id}/tickets/{ticket_id}/qr.svg"),
    ] {
        assert_error(other.get(&path).await, 404, "NOT_FOUND").await;
    }
    assert_error(buyer.get(&format!("/orders/{order_id}/tickets/nope/qr.svg")).await, 404, "NOT_FOUND").await;
    assert_error(app.http.get(app.api("/events/999/ticket-keys")).send().await.unwrap(), 404, "NOT_FOUND").await;
    app.assert_audit_passes().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_gates_scanning_one_ticket_at_once_admit_it_once() {
    let app = spawn_app().await;
    let (_, _, tickets) = bought(&app, "at-the-door", 2, &seats(2, [5])).await;
    let token = token_of(&tickets[0]);
    let scanner = scanner_token(&app, "gates", Some(2));
    let scans: Vec<_> = (0..50)
        .map(|gate| {
            let (app_http, url, scanner, token) =
                (app.http.clone(), app.api("/checkin"), scanner.clone(), token.clone());
            tokio::spawn(async move {
                let body = json!({ "token": token, "gate": format!("gate-{gate}"), "scanId": format!("s-{gate}") });
                let r = app_http.post(url).bearer_auth(scanner).json(&body).send().await.unwrap();
                assert_eq!(r.status(), StatusCode::OK);
                r.json::<Value>().await.unwrap()
            })
        })
        .collect();
    let mut answers = Vec::new();
    for s in scans {
        answers.push(s.await.unwrap());
    }
    let admitted: Vec<&Value> = answers.iter().filter(|a| a["result"] == "ADMITTED").collect();
    assert_eq!(admitted.len(), 1, "{answers:#?}");
    let first_gate = admitted[0]["scanId"].as_str().unwrap().replace("s-", "gate-");
    for a in answers.iter().filter(|a| a["result"] != "ADMITTED") {
        assert_eq!(a["result"], "ALREADY_USED", "{a}");
        assert_eq!(a["firstGate"], first_gate.as_str(), "{a}");
        assert!(a["firstUsedAt"].is_string(), "{a}");
        assert_eq!(a["ticket"]["seatId"], seats(2, [5])[0]);
    }
    // The same scan again: the same answer, counted once.
    let again = check_in(&app, &scanner, &token, "gate-0", "s-0").await;
    let first = answers.iter().find(|a| a["scanId"] == "s-0").unwrap();
    assert_eq!(&again, first);
    let audit: Value = crate::common::get_json(&app.http, &app.api("/admin/audit/tickets"), ADMIN).await;
    assert_eq!(audit["checkins"], json!([{ "ticketId": tickets[0]["ticketId"], "admissions": 1 }]));
    app.assert_audit_passes().await;

    // Prometheus counts each scan once, by result and gate.
    let text = app.operations("/actuator/prometheus").await.text().await.unwrap();
    assert!(text.contains("tickets_checkins_total{"), "no check-in counter");
    assert!(text.contains("tickets_scan_seconds"), "no scan latency");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_altered_foreign_and_retired_tokens_are_refused() {
    let app = spawn_app().await;
    let (_, _, tickets) = bought(&app, "refused-at-the-door", 1, &seats(1, [7])).await;
    let token = token_of(&tickets[0]);
    let gate3 = scanner_token(&app, "gate-3", Some(1));
    let result = |a: Value| a["result"].as_str().unwrap().to_owned();

    // Forged: signed with a key of nobody's.
    let claims = tickets::token::Claims { tid: "forged".into(), ev: 1, seat: 19, nbf: 0 };
    let nobody = tickets::token::generate();
    let forged = tickets::token::sign(&nobody, &tickets::token::kid(&nobody.verifying_key()), &claims);
    assert_eq!(result(check_in(&app, &gate3, &forged, "g3", "f-1").await), "INVALID");
    // Signed with the show's own kid but another key.
    let (kid, _) = signing_key(&app, 1).await;
    let forged = tickets::token::sign(&nobody, &kid, &claims);
    assert_eq!(result(check_in(&app, &gate3, &forged, "g3", "f-2").await), "INVALID");
    // One byte altered, in the claims or the signature.
    for (i, at) in [token.find('.').unwrap() + 5, token.len() - 10].into_iter().enumerate() {
        let mut bytes = token.clone().into_bytes();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(bytes).unwrap();
        assert_eq!(result(check_in(&app, &gate3, &altered, "g3", &format!("a-{i}")).await), "INVALID");
    }
    assert_eq!(result(check_in(&app, &gate3, "not a token", "g3", "a-3").await), "INVALID");
    // Genuine, but of another show than this scanner's.
    let (_, _, other_show) = bought(&app, "refused-at-the-door", 2, &seats(2, [7])).await;
    let answer = check_in(&app, &gate3, &token_of(&other_show[0]), "g3", "w-1").await;
    assert_eq!(result(answer), "WRONG_EVENT");
    // Genuine, not valid yet.
    let later = app.clock.now_secs() as i64 + 3600;
    let claims =
        tickets::token::Claims { tid: tickets[0]["ticketId"].as_str().unwrap().into(), ev: 1, seat: 19, nbf: later };
    let early = forge(&app, 1, &claims).await;
    assert_eq!(result(check_in(&app, &gate3, &early, "g3", "n-1").await), "NOT_YET_VALID");

    // A key rotation signs the tickets again; tokens of the retired key are refused.
    let r = app.admin_post("/admin/events/1/ticket-keys/rotate", json!({})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let keys: Value = app.http.get(app.api("/events/1/ticket-keys")).send().await.unwrap().json().await.unwrap();
    assert_eq!(keys["retired"], json!([kid]));
    assert_eq!(result(check_in(&app, &gate3, &token, "g3", "r-1").await), "INVALID");
    let buyer = app.buyer("refused-at-the-door");
    let order_id = buyer.get("/orders").await.json::<Value>().await.unwrap()[1]["orderId"].as_i64().unwrap();
    let fresh = tickets_of(&buyer, order_id, 1).await;
    assert_ne!(token_of(&fresh[0]), token);
    assert_eq!(result(check_in(&app, &gate3, &token_of(&fresh[0]), "g3", "r-2").await), "ADMITTED");

    // Malformed scans are the contract's errors; a buyer is no scanner.
    let r = app.http.post(app.api("/checkin")).bearer_auth(&gate3).json(&json!({ "token": token })).send().await;
    assert_error(r.unwrap(), 422, "VALIDATION_FAILED").await;
    assert_error(scan(&app, &gate3, &token, "", "x").await, 422, "VALIDATION_FAILED").await;
    assert_error(scan(&app, "a-buyer", &token, "g", "x").await, 403, "FORBIDDEN").await;
    let r = app.http.post(app.api("/checkin")).json(&json!({ "token": token, "gate": "g", "scanId": "x" })).send();
    assert_error(r.await.unwrap(), 401, "UNAUTHORIZED").await;
    // A scanner's token names no buyer, and opens no operator's route.
    let r = app.http.get(app.api("/orders")).bearer_auth(&gate3).send().await.unwrap();
    assert_error(r, 403, "FORBIDDEN").await;
    let r = app.http.get(app.api("/admin/audit/tickets")).bearer_auth(&gate3).send().await.unwrap();
    assert_error(r, 403, "FORBIDDEN").await;
    app.assert_audit_passes().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_scans_uploaded_twice_count_once_and_conflicts_are_reported() {
    let app = spawn_app().await;
    let (_, _, tickets) = bought(&app, "offline", 3, &seats(3, [1, 2])).await;
    let scanner = scanner_token(&app, "gate-9", None);
    let bundle = |scanner: String| {
        let (http, url) = (app.http.clone(), app.api("/admin/events/3/scanner-bundle"));
        async move { http.get(url).bearer_auth(scanner).send().await.unwrap() }
    };
    let before: Value = bundle(scanner.clone()).await.json().await.unwrap();
    assert_eq!(before["keys"].as_array().unwrap().len(), 1);
    assert_eq!(before["used"], json!([]));
    let now = chrono::DateTime::from_timestamp_millis(app.clock.now_millis()).unwrap().to_rfc3339();
    let (a, b) = (token_of(&tickets[0]), token_of(&tickets[1]));
    // Gate A let both in offline; gate B let the first in too.
    let upload = |scans: Value| {
        let (http, url, scanner) = (app.http.clone(), app.api("/checkin/batch"), scanner.clone());
        async move {
            let r = http.post(url).bearer_auth(scanner).json(&json!({ "scans": scans })).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            r.json::<Value>().await.unwrap()["results"].clone()
        }
    };
    let from_a = json!([
        { "scanId": "a-1", "token": a, "gate": "A", "scannedAt": now },
        { "scanId": "a-2", "token": b, "gate": "A", "scannedAt": now },
    ]);
    let first = upload(from_a.clone()).await;
    assert_eq!(first[0]["result"], "STOOD");
    assert_eq!(first[1]["result"], "STOOD");
    assert_eq!(upload(from_a).await, first, "the same upload again is answered the same");
    let from_b = upload(json!([{ "scanId": "b-1", "token": a, "gate": "B", "scannedAt": now }])).await;
    assert_eq!(from_b[0]["result"], "CONFLICT");
    assert_eq!(from_b[0]["firstGate"], "A");

    let conflicts: Value =
        crate::common::get_json(&app.http, &app.api("/admin/events/3/checkins/conflicts"), ADMIN).await;
    let conflicts = conflicts["conflicts"].as_array().unwrap();
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    assert_eq!(conflicts[0]["scanId"], "b-1");
    assert_eq!(conflicts[0]["gate"], "B");
    assert_eq!(conflicts[0]["firstGate"], "A");
    let after: Value = bundle(scanner.clone()).await.json().await.unwrap();
    assert_eq!(after["used"].as_array().unwrap().len(), 2);

    // A bad scan refuses the whole upload, and applies none of it.
    let bad = json!([
        { "scanId": "c-1", "token": a, "gate": "C", "scannedAt": now },
        { "scanId": "c-2", "token": b, "gate": "C", "scannedAt": "yesterday" },
    ]);
    let r = app.http.post(app.api("/checkin/batch")).bearer_auth(&scanner).json(&json!({ "scans": bad })).send();
    assert_error(r.await.unwrap(), 422, "VALIDATION_FAILED").await;
    // A scanner of another show gets no bundle of this one.
    let r = bundle(scanner_token(&app, "gate-1", Some(1))).await;
    assert_error(r, 403, "FORBIDDEN").await;
    app.assert_audit_passes().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_show_revokes_its_tickets_online_and_in_the_bundle() {
    let app = spawn_app().await;
    let (buyer, order_id, tickets) = bought(&app, "reset-victim", 1, &seats(1, [40])).await;
    let token = token_of(&tickets[0]);
    let r = app.admin_post("/admin/events/1/reset", json!({})).await;
    assert!(r.status().is_success(), "reset: {}", r.status());
    buyer.order_until(order_id, |s| s == "CANCELLED").await;
    eventually(Duration::from_secs(20), "the ticket is revoked", || async {
        let body: Value = buyer.get(&format!("/orders/{order_id}/tickets")).await.json().await.unwrap();
        body[0]["status"] == "REVOKED"
    })
    .await;
    let answer = check_in(&app, ADMIN, &token, "g1", "rv-1").await;
    assert_eq!(answer["result"], "REVOKED");
    let bundle: Value = crate::common::get_json(&app.http, &app.api("/admin/events/1/scanner-bundle"), ADMIN).await;
    assert_eq!(bundle["revoked"], json!([tickets[0]["ticketId"]]));
    // A cancelled order is not refunded again (its payment was, with the reset).
    let r = app.admin_post(&format!("/admin/orders/{order_id}/refund"), json!({})).await;
    assert_error(r, 422, "VALIDATION_FAILED").await;
    app.assert_audit_passes().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operators_refund_returns_the_money_once_frees_the_seats_and_revokes_the_tickets() {
    let app = spawn_app().await;
    let seat_ids = seats(2, [30, 31]);
    let (buyer, order_id, tickets) = bought(&app, "refunded", 2, &seat_ids).await;
    let path = format!("/admin/orders/{order_id}/refund");
    let refund = || app.admin_post(&path, json!({}));
    let r = refund().await;
    assert_eq!(r.status(), StatusCode::OK);
    let order: Value = r.json().await.unwrap();
    assert_eq!((order["status"].as_str(), order["cancelReason"].as_str()), (Some("CANCELLED"), Some("REFUNDED")));
    // Asked again: the same answer, nothing more happens.
    let again: Value = refund().await.json().await.unwrap();
    assert_eq!(again, order);
    assert_eq!(buyer.final_order(order_id).await["cancelReason"], "REFUNDED");

    for seat in seat_ids {
        app.wait_seat(2, seat, "AVAILABLE").await;
    }
    eventually(Duration::from_secs(20), "the tickets are revoked", || async {
        let body: Value = buyer.get(&format!("/orders/{order_id}/tickets")).await.json().await.unwrap();
        body.as_array().unwrap().iter().all(|t| t["status"] == "REVOKED")
    })
    .await;
    let answer = check_in(&app, ADMIN, &token_of(&tickets[0]), "g1", "refunded-1").await;
    assert_eq!(answer["result"], "REVOKED");
    let bundle: Value = crate::common::get_json(&app.http, &app.api("/admin/events/2/scanner-bundle"), ADMIN).await;
    assert_eq!(bundle["revoked"].as_array().unwrap().len(), 2);
    let order_ref = app.store.order_ref(order_id).await;
    let refunded = eventually(Duration::from_secs(20), "the payment is refunded", || async {
        let payments = crate::common::get_json(&app.http, &app.api("/admin/audit/payment"), ADMIN).await;
        let payment =
            payments["payments"].as_array().unwrap().iter().find(|p| p["orderRef"] == order_ref.as_str()).cloned();
        payment.filter(|p| p["status"] == "REFUNDED")
    })
    .await;
    // The gateway keeps nothing of it: charged once, refunded once.
    assert_eq!(refunded["gatewayKept"], 0, "{refunded}");
    app.assert_audit_passes().await;

    // Only an order that exists, only by the operator.
    let r = app.admin_post("/admin/orders/99999/refund", json!({})).await;
    assert_error(r, 404, "NOT_FOUND").await;
    let r = app.http.post(app.api(&format!("/admin/orders/{order_id}/refund"))).bearer_auth("refunded").send();
    assert_error(r.await.unwrap(), 403, "FORBIDDEN").await;
}

/// How many orders the order module has CONFIRMED whose tickets are not issued yet,
/// read straight from the databases; `None` for none.
async fn confirmed_without_tickets(orders: &sqlx::AnyPool, tickets: &sqlx::AnyPool) -> Option<usize> {
    let confirmed: Vec<String> =
        sqlx::query_scalar("SELECT order_id FROM orders WHERE status = 'CONFIRMED'").fetch_all(orders).await.ok()?;
    let issued: std::collections::HashSet<String> = sqlx::query_scalar("SELECT DISTINCT order_id FROM tickets")
        .fetch_all(tickets)
        .await
        .ok()?
        .into_iter()
        .collect();
    let missing = confirmed.iter().filter(|o| !issued.contains(*o)).count();
    (missing > 0).then_some(missing)
}

/// A process killed (SIGKILL) while orders are being confirmed, some confirmed and their
/// tickets not issued yet: restarted, every confirmed order has its tickets, none twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tickets_of_orders_confirmed_before_a_kill_are_issued_after_restart_once() {
    use crate::common::{Store, seat, start_binary};
    let data = tempfile::tempdir().unwrap();
    let store = Store::new(data.path());
    let mut args: Vec<String> =
        ["--payment-latency-ms", "20..200", "--sweep-interval-ms", "100"].map(str::to_owned).to_vec();
    args.extend(store.serve_args());
    let http = reqwest::Client::new();
    let mut bought = Vec::new();
    let mut caught = 0;
    for round in 0..5i64 {
        let (mut child, url) = start_binary(&args).await;
        let event_id = round % 3 + 1;
        let buyers: Vec<_> = (1..=20)
            .map(|n| {
                let (http, url) = (http.clone(), url.clone());
                let seat = seat(event_id, round / 3 * 20 + n);
                tokio::spawn(async move {
                    let buyer = format!("door-crash-{round}-{n}");
                    let hold = json!({ "eventId": event_id, "seatId": seat, "holdSeconds": 60 });
                    let r = http.post(format!("{url}/ticketing/api/reservations")).bearer_auth(&buyer).json(&hold);
                    if r.send().await.ok()?.status() != StatusCode::CREATED {
                        return None;
                    }
                    let order = json!({ "eventId": event_id, "seatIds": [seat] });
                    let r = http
                        .post(format!("{url}/ticketing/api/orders"))
                        .bearer_auth(&buyer)
                        .header("Idempotency-Key", format!("k-{round}-{n}"))
                        .json(&order)
                        .send()
                        .await
                        .ok()?;
                    let body: Value = r.json().await.ok()?;
                    Some((buyer, body["orderId"].as_i64()?))
                })
            })
            .collect();
        // Kill the moment an order is seen confirmed without its tickets.
        let (orders, tickets) = (store.connect("order").await, store.connect("tickets").await);
        crate::common::at_most(Duration::from_secs(30), || confirmed_without_tickets(&orders, &tickets)).await;
        child.start_kill().unwrap();
        child.wait().await.unwrap();
        for b in buyers {
            bought.extend(b.await.unwrap());
        }
        caught += confirmed_without_tickets(&orders, &tickets).await.unwrap_or(0);
        orders.close().await;
        tickets.close().await;
        if caught > 0 {
            break;
        }
    }
    assert!(caught > 0, "no kill came between an order's confirmation and its tickets");

    let (mut child, url) = start_binary(&args).await;
    let report = audit::audit(&url, ADMIN, Duration::from_secs(30)).await.unwrap();
    assert!(report.violations.is_empty(), "{:#?}", report.violations);
    for (buyer, order_id) in &bought {
        let order = crate::common::get_json(&http, &format!("{url}/ticketing/api/orders/{order_id}"), buyer).await;
        let tickets =
            crate::common::get_json(&http, &format!("{url}/ticketing/api/orders/{order_id}/tickets"), buyer).await;
        let expected = if order["status"] == "CONFIRMED" { 1 } else { 0 };
        let valid = tickets.as_array().unwrap().iter().filter(|t| t["status"] == "VALID").count();
        assert_eq!(valid, expected, "order {order}: tickets {tickets}");
    }
    child.start_kill().unwrap();
}

/// Online check-ins per second and their p99 at the door: 400 tickets of the demo venue,
/// each scanned 5 times (once ADMITTED, then ALREADY_USED) by 32 gates at once.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a benchmark: cargo test --release -p boxoffice --test it -- --ignored --nocapture online_check_ins"]
async fn online_check_ins_per_second() {
    let app = spawn_app().await;
    app.wait_for_seats(4).await;
    let mut tokens = Vec::new();
    for n in 0..100 {
        let mut buyer = app.buyer(&format!("bench-{n}"));
        let r = buyer.post("/reservations", json!({ "eventId": 4, "bestAvailable": { "quantity": 4 } })).await;
        assert_eq!(r.status(), StatusCode::CREATED, "{}", r.text().await.unwrap());
        let held: Value = r.json().await.unwrap();
        let seat_ids: Vec<i64> = held["seatIds"].as_array().unwrap().iter().map(|s| s.as_i64().unwrap()).collect();
        let r = buyer.order(&format!("bench-{n}"), 4, &seat_ids).await;
        let order_id = r.json::<Value>().await.unwrap()["orderId"].as_i64().unwrap();
        assert_eq!(buyer.final_order(order_id).await["status"], "CONFIRMED");
        tokens.extend(tickets_of(&buyer, order_id, 4).await.iter().map(token_of));
    }
    let scans: Vec<(String, String)> = (0..5)
        .flat_map(|round| tokens.iter().enumerate().map(move |(i, t)| (format!("b-{round}-{i}"), t.clone())))
        .collect();
    let queue = std::sync::Arc::new(tokio::sync::Mutex::new(scans.into_iter()));
    let started = std::time::Instant::now();
    let gates: Vec<_> = (0..32)
        .map(|gate| {
            let (queue, http, url) = (queue.clone(), app.http.clone(), app.api("/checkin"));
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let Some((scan_id, token)) = queue.lock().await.next() else { return latencies };
                    let body = json!({ "token": token, "gate": format!("gate-{gate}"), "scanId": scan_id });
                    let at = std::time::Instant::now();
                    let r = http.post(&url).bearer_auth(ADMIN).json(&body).send().await.unwrap();
                    assert_eq!(r.status(), StatusCode::OK);
                    latencies.push(at.elapsed());
                }
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for g in gates {
        latencies.extend(g.await.unwrap());
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100];
    let rate = latencies.len() as f64 / elapsed.as_secs_f64();
    println!("online check-in: {} scans in {elapsed:?}: {rate:.0}/s, p99 {p99:?}", latencies.len());
    let audit: Value = crate::common::get_json(&app.http, &app.api("/admin/audit/tickets"), ADMIN).await;
    assert_eq!(audit["checkins"].as_array().unwrap().len(), tokens.len(), "every ticket in once");
    app.assert_audit_passes().await;
}

/// `serve --without tickets`: a sale that issues no tickets sells as before; the ticket
/// routes are not there, and the audit (which then has no tickets to judge) is clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_the_tickets_module_sells_and_issues_none() {
    let app = spawn_with(boxoffice::cli::ServeArgs { without: vec!["tickets".into()], ..args() }).await;
    let buyer = app.buyer("no-tickets");
    let order_id = buyer.buy(1, &seats(1, [3])).await;
    assert_eq!(buyer.final_order(order_id).await["status"], "CONFIRMED");
    assert_eq!(buyer.get(&format!("/orders/{order_id}/tickets")).await.status(), StatusCode::NOT_FOUND);
    let running: Value = app.operations("/actuator/consistency").await.json().await.unwrap();
    let modules = running["modules"].as_object().unwrap();
    assert!(modules.contains_key("reservation") && !modules.contains_key("tickets"), "{running}");
    app.assert_audit_passes().await;
}
