//! The live seat map over SSE.

use std::time::Duration;

use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{Later, TestApp, eventually, seat, seats, spawn_app};

/// Reads SSE messages `(event, id, data)` from a response.
pub(crate) struct Sse {
    body: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buffer: String,
}

impl Sse {
    pub(crate) async fn open(app: &TestApp, event_id: i64, last_event_id: Option<&str>) -> Sse {
        let mut rb = app.http.get(app.api(&format!("/events/{event_id}/seats/stream")));
        if let Some(id) = last_event_id {
            rb = rb.header("last-event-id", id);
        }
        let r = rb.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
        Sse { body: Box::pin(r.bytes_stream()), buffer: String::new() }
    }

    pub(crate) async fn next(&mut self) -> (String, String, Value) {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut event, mut id, mut data) = (String::new(), String::new(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("id:") {
                        id = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim());
                    }
                }
                if event.is_empty() {
                    continue; // keep-alive comment
                }
                return (event, id, serde_json::from_str(&data).unwrap());
            }
            let chunk = tokio::time::timeout(Duration::from_secs(5), self.body.next())
                .await
                .expect("an SSE message within 5 s");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk.unwrap().unwrap()));
        }
    }

    /// The next SEAT_UPDATE for `seat_id`.
    async fn update_of(&mut self, seat_id: i64) -> (String, Value) {
        loop {
            let (event, id, data) = self.next().await;
            if event == "SEAT_UPDATE" && data["seatId"] == seat_id {
                assert_eq!(id, data["version"].to_string());
                return (id, data);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_shows_a_hold_and_a_sale_and_replays_what_a_client_missed() {
    let app = spawn_app().await;
    let mut sse = Sse::open(&app, 2, None).await;
    let (event, init_id, map) = sse.next().await;
    assert_eq!(event, "INIT");
    assert_eq!(map["seats"].as_array().unwrap().len(), 100);
    assert_eq!(init_id, map["version"].to_string());

    let buyer = app.buyer("sse-buyer");
    let order_id = buyer.buy(2, &seats(2, [33])).await;
    let (held_id, held) = sse.update_of(seat(2, 33)).await;
    assert_eq!(held["status"], "HELD");
    let (sold_id, sold) = sse.update_of(seat(2, 33)).await;
    assert_eq!(sold["status"], "SOLD");
    assert!(sold["version"].as_i64() > held["version"].as_i64());
    assert_eq!(buyer.final_order(order_id).await["status"], "CONFIRMED");

    // Reconnecting after the INIT replays both changes, in order, with no INIT.
    let mut resumed = Sse::open(&app, 2, Some(&init_id)).await;
    let (event, id, data) = resumed.next().await;
    assert_eq!((event.as_str(), id.as_str(), data["status"].as_str()), ("SEAT_UPDATE", held_id.as_str(), Some("HELD")));
    let (_, id, _) = resumed.next().await;
    assert_eq!(id, sold_id);

    // An id the server cannot resume from starts over with the whole map.
    for bad in ["not-a-number", "-5", "999999999"] {
        let mut fresh = Sse::open(&app, 2, Some(bad)).await;
        let (event, _, map) = fresh.next().await;
        assert_eq!(event, "INIT", "Last-Event-ID {bad}");
        let sold = map["seats"].as_array().unwrap().iter().find(|s| s["id"] == seat(2, 33)).unwrap().clone();
        assert_eq!(sold["status"], "SOLD");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_streams_are_cleaned_up() {
    let app = spawn_app().await;
    let streams: Vec<Sse> = futures_util::future::join_all((0..5).map(|_| Sse::open(&app, 3, None))).await;
    assert_eq!(app.modules.catalog().stream_clients(3), 5);
    drop(streams);
    // A change makes every stream try to write; the closed ones go away.
    app.buyer("nudge").hold(3, &seats(3, [5])).await;
    let left = || app.modules.catalog().stream_clients(3);
    let what = Later(|| format!("no stream left behind ({} are)", left()));
    eventually(Duration::from_secs(3), what, || async { left() == 0 }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_of_an_unknown_event_is_not_found() {
    let app = spawn_app().await;
    let r = app.http.get(app.api("/events/424242/seats/stream")).send().await.unwrap();
    crate::common::assert_error(r, 404, "NOT_FOUND").await;
}
