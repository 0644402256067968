//! What boxoffice exposes and what it costs (issue 20): the data directory's secrets and
//! databases are its user's alone; a reconnecting SSE client that missed more than the
//! map is worth gets the map; seat maps and the list of shows carry validators.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{self, TestApp, free_port, spawn_app, until_healthy};
use crate::stream::Sse;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// `boxoffice ARGS…` that is expected to exit (within 60 s): its status and stderr.
async fn run_binary(args: &[&str]) -> (std::process::ExitStatus, String) {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_boxoffice"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("boxoffice {args:?} did not exit"))
        .unwrap();
    (out.status, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The real binary, as an operator starts it — no --admin-token, no --auth-secret — on a
/// data directory it creates: the directory is 0700, and every file in it (the three
/// secrets, the databases with their -wal and -shm files) is 0600.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_data_directory_is_its_owners_alone() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let port = free_port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_boxoffice"))
        .args(["serve", "--addr", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(&data)
        .args(["--payment-latency-ms", "0..0"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}");
    until_healthy(&url, "boxoffice").await;
    // Some writes beyond the migrations: a hold (which sets the buyer's cookie).
    let r = http
        .post(format!("{url}/ticketing/api/reservations"))
        .json(&json!({ "eventId": 1, "seatId": 1, "holdSeconds": 60 }))
        .send()
        .await
        .unwrap();
    assert!([StatusCode::CREATED, StatusCode::NOT_FOUND].contains(&r.status()), "{}", r.status());

    assert_eq!(mode(&data), 0o700, "the data directory");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&data).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        assert_eq!(mode(&entry.path()), 0o600, "{name}");
        names.push(name);
    }
    for expected in ["admin-token", "auth-secret", "cookie-key", "catalog.db", "order.db", "bus.db", "payment.db-wal"] {
        assert!(names.iter().any(|n| n == expected), "{expected} not in {names:?}");
    }
    child.kill().await.unwrap();
}

/// A secret group or others may read — as builds before this one wrote them — is refused,
/// as ssh refuses such a key, with the chmod that fixes it; so is a data directory others
/// may write to. Once fixed, the same directory is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_others_can_read_are_refused_with_the_fix() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    std::fs::create_dir(&data).unwrap();
    set_mode(&data, 0o755);
    for name in ["admin-token", "auth-secret", "cookie-key"] {
        std::fs::write(data.join(name), format!("{name}-0123456789abcdef0123456789abcdef")).unwrap();
        set_mode(&data.join(name), 0o644);
    }
    let dir = data.to_str().unwrap();
    let serve = ["serve", "--addr", "127.0.0.1:0", "--data-dir", dir];

    let (status, stderr) = run_binary(&serve).await;
    assert!(!status.success());
    let path = data.join("admin-token").display().to_string();
    let expected = format!("{path} is readable by others (mode 0644); chmod 600 {path}");
    assert!(stderr.contains(&expected), "{stderr}");

    // `boxoffice token` reads the token key: the same refusal.
    let (status, stderr) = run_binary(&["token", "--sub", "alice", "--data-dir", dir]).await;
    assert!(!status.success());
    assert!(stderr.contains("auth-secret is readable by others (mode 0644); chmod 600"), "{stderr}");

    // Group-readable is refused too; so is each secret in turn.
    set_mode(&data.join("admin-token"), 0o640);
    let (_, stderr) = run_binary(&serve).await;
    assert!(stderr.contains("admin-token is readable by others (mode 0640)"), "{stderr}");
    set_mode(&data.join("admin-token"), 0o600);
    let (_, stderr) = run_binary(&serve).await;
    assert!(stderr.contains("cookie-key is readable by others (mode 0644)"), "{stderr}");

    // A directory others may write to: anyone could swap a secret for their own.
    for name in ["auth-secret", "cookie-key"] {
        set_mode(&data.join(name), 0o600);
    }
    set_mode(&data, 0o777);
    let (status, stderr) = run_binary(&serve).await;
    assert!(!status.success());
    assert!(stderr.contains("is writable by others (mode 0777)") && stderr.contains("chmod 700"), "{stderr}");

    // Fixed (a directory others may only read is warned about): `token` signs with the key.
    set_mode(&data, 0o755);
    let (status, stderr) = run_binary(&["token", "--sub", "alice", "--data-dir", dir]).await;
    assert!(status.success(), "{stderr}");
}

async fn map_version(app: &TestApp, event_id: i64) -> i64 {
    let map: Value =
        app.http.get(app.api(&format!("/events/{event_id}/seats"))).send().await.unwrap().json().await.unwrap();
    map["version"].as_i64().unwrap()
}

/// A show of `seats` seats in one row, numbered 1 to `seats`, its seats known to the
/// reservation module.
async fn small_show(app: &TestApp, seats: i64) -> i64 {
    let r = app
        .admin_post(
            "/admin/events",
            json!({ "title": "Small hall", "dateTime": "2026-12-01T20:00:00", "description": "",
                    "rows": 1, "cols": seats, "basePrice": 1000, "columnStep": 0 }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    app.wait_for_seats(id).await;
    id
}

/// A client that missed no more changes than the show has seats is sent them; one that
/// missed more is sent one INIT — the whole map costs less — and then the live updates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_missed_more_than_the_map_is_worth_gets_the_map() {
    let app = spawn_app().await;
    let show = small_show(&app, 4).await;
    let start = map_version(&app, show).await;
    let buyer = app.buyer("stream-buyer");
    assert_eq!(buyer.hold(show, &[1, 2, 3]).await.status(), StatusCode::CREATED);
    app.wait_map_version(show, start + 3).await;
    for seat in [1, 2, 3] {
        assert_eq!(buyer.release(show, seat).await.status(), StatusCode::NO_CONTENT);
    }
    app.wait_map_version(show, start + 6).await;

    // Four missed (as many as the seats): the four updates, in order.
    let mut resumed = Sse::open(&app, show, Some(&(start + 2).to_string())).await;
    for version in start + 3..=start + 6 {
        let (event, id, data) = resumed.next().await;
        assert_eq!(
            (event.as_str(), id.parse::<i64>().unwrap(), data["version"].as_i64()),
            ("SEAT_UPDATE", version, Some(version))
        );
    }

    // Six missed, more than the four seats: one INIT at the current version…
    let mut fresh = Sse::open(&app, show, Some(&start.to_string())).await;
    let (event, id, map) = fresh.next().await;
    assert_eq!((event.as_str(), id.parse::<i64>().unwrap()), ("INIT", start + 6));
    assert_eq!(map["seats"].as_array().unwrap().len(), 4);
    assert!(map["seats"].as_array().unwrap().iter().all(|s| s["status"] == "AVAILABLE"), "{map}");
    // …then what happens next, with nothing replayed in between.
    assert_eq!(buyer.hold(show, &[4]).await.status(), StatusCode::CREATED);
    for sse in [&mut fresh, &mut resumed] {
        let (event, id, data) = sse.next().await;
        assert_eq!(
            (event.as_str(), id.parse::<i64>().unwrap(), data["seatId"].as_i64()),
            ("SEAT_UPDATE", start + 7, Some(4))
        );
    }
}

async fn get(app: &TestApp, path: &str, if_none_match: Option<&str>) -> reqwest::Response {
    let mut rb = app.http.get(app.api(path));
    if let Some(tag) = if_none_match {
        rb = rb.header("if-none-match", tag);
    }
    rb.send().await.unwrap()
}

fn etag(r: &reqwest::Response) -> String {
    r.headers().get("etag").expect("an ETag").to_str().unwrap().to_owned()
}

/// Asserts a 304: no body, the same validator, the Trace-Id.
async fn assert_not_modified(r: reqwest::Response, tag: &str) {
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(etag(&r), tag);
    assert_eq!(r.headers()["cache-control"], "no-cache");
    assert!(r.headers().contains_key("trace-id"));
    assert!(r.bytes().await.unwrap().is_empty());
}

/// A seat map carries a validator: the same one back is answered 304, and a seat change
/// makes a new one, under which the map is sent again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seat_map_is_revalidated_by_its_etag() {
    let app = spawn_app().await;
    let r = get(&app, "/events/2/seats", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-cache");
    let tag = etag(&r);
    assert!(tag.starts_with("W/\""), "a weak tag: {tag}");
    let map: Value = r.json().await.unwrap();
    assert_eq!(map["seats"].as_array().unwrap().len(), 100);

    assert_not_modified(get(&app, "/events/2/seats", Some(&tag)).await, &tag).await;
    assert_not_modified(get(&app, "/events/2/seats", Some(&format!("W/\"other\", {tag}"))).await, &tag).await;
    // Another show's tag is not this one's.
    let other = etag(&get(&app, "/events/3/seats", None).await);
    assert_ne!(other, tag);
    assert_eq!(get(&app, "/events/2/seats", Some(&other)).await.status(), StatusCode::OK);

    // A hold changes the map: the old tag gets the new map and a new tag.
    let version = map["version"].as_i64().unwrap();
    let seat = crate::common::seat(2, 12);
    assert_eq!(app.buyer("etag-buyer").hold(2, &[seat]).await.status(), StatusCode::CREATED);
    app.wait_map_version(2, version + 1).await;
    let r = get(&app, "/events/2/seats", Some(&tag)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let fresh = etag(&r);
    assert_ne!(fresh, tag);
    let map: Value = r.json().await.unwrap();
    assert_eq!(map["seats"].as_array().unwrap().iter().find(|s| s["id"] == seat).unwrap()["status"], "HELD");
    assert_not_modified(get(&app, "/events/2/seats", Some(&fresh)).await, &fresh).await;

    // An unknown show is still not found, whatever the client holds.
    let r = get(&app, "/events/424242/seats", Some("*")).await;
    crate::common::assert_error(r, 404, "NOT_FOUND").await;
}

/// The list of shows carries a validator, which a new show changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_of_shows_is_revalidated_by_its_etag() {
    let app = spawn_app().await;
    let r = get(&app, "/events", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-cache");
    let tag = etag(&r);
    assert_eq!(r.json::<Value>().await.unwrap().as_array().unwrap().len(), common::DEMO_EVENTS);
    assert_not_modified(get(&app, "/events", Some(&tag)).await, &tag).await;

    let show = small_show(&app, 2).await;
    let r = get(&app, "/events", Some(&tag)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let fresh = etag(&r);
    assert_ne!(fresh, tag);
    let events: Value = r.json().await.unwrap();
    assert_eq!(events.as_array().unwrap().last().unwrap()["id"], show);
    assert_not_modified(get(&app, "/events", Some(&fresh)).await, &fresh).await;
    // Seat changes do not change the list.
    assert_eq!(app.buyer("list-buyer").hold(show, &[1]).await.status(), StatusCode::CREATED);
    assert_not_modified(get(&app, "/events", Some(&fresh)).await, &fresh).await;
}
