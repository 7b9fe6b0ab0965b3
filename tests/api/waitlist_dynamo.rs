//! The waitlist over HTTP and the live socket on the DynamoDB store (DynamoDB Local): an offer
//! pushed within two seconds of the release (the 1 s target is checked on SQLite), confirmed by
//! the entry's token, and a passed offer cascading to the next entry.
use crate::kit::api::*;
use crate::kit::app::*;
use crate::kit::ws::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

async fn join(app: &TestApp, rid: &str, date: &str) -> Value {
    let res = app
        .send(
            Method::POST,
            &format!("/v1/restaurants/{rid}/waitlist"),
            None,
            Some(
                json!({"date": date, "party_size": 2, "from": "18:30", "to": "19:30",
                        "guest": {"name": "Ada"}}),
            ),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json().await.unwrap()
}

/// Waits for the entry's update whose status is `status`.
async fn update_with(ws: &mut Ws, status: &str, within: Duration) -> Value {
    let start = Instant::now();
    loop {
        match ws.next(within.saturating_sub(start.elapsed())).await {
            Got::Frame(f) if f["data"]["status"] == status => return f,
            Got::Frame(f) => assert_eq!(f["type"], "update", "{f}"),
            other => panic!("no `{status}` update within {within:?}: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_dynamodb_an_offer_is_pushed_within_two_seconds_confirmed_by_the_entry_and_a_pass_cascades(
) {
    let Some(b) = Backend::dynamo("waitlist_dynamo::offer_pushed") else {
        return;
    };
    let app = TestApp::spawn_on(b).await;
    let r = app
        .create_restaurant(restaurant_body(json!([{"id": "t1", "max_party": 2}])))
        .await;
    // One untimed free → offer on another date first: DynamoDB Local is a JVM, and the first
    // run of the offer's queries and transaction there (interpreted, not yet compiled) took over
    // a second under the whole suite's load. The bound below is for normal operation.
    let warm = date_in(4);
    let warm_hold = app.held(&r.id, &warm, "19:00", 2).await;
    let waiting = join(&app, &r.id, &warm).await;
    app.release_hold(&warm_hold).await;
    let (wid, wtok) = (
        waiting["id"].as_str().unwrap(),
        waiting["token"].as_str().unwrap(),
    );
    crate::kit::wait::eventually(Duration::from_secs(20), "the warm-up offer", || async {
        app.waitlist_entry(wid, wtok).await["status"] == "offered"
    })
    .await;

    let date = date_in(3);
    let hold = app.held(&r.id, &date, "19:00", 2).await;
    let (first, second) = (
        join(&app, &r.id, &date).await,
        join(&app, &r.id, &date).await,
    );
    let tok = |e: &Value| e["token"].as_str().unwrap().to_owned();
    let id = |e: &Value| e["id"].as_str().unwrap().to_owned();
    let mut ws = Ws::connect(&app.base).await;
    ws.send(json!({"op": "subscribe", "sub": "w", "view": "waitlist",
                   "entry_id": id(&first), "token": tok(&first)}))
        .await;
    let snap = ws.frame().await;
    assert_eq!(snap["data"]["position"], 1, "{snap}");

    let freed_at = Instant::now();
    app.release_hold(&hold).await;
    // The 1 s of the waitlist's target is checked on SQLite (`waitlist.rs`) and by the bench.
    // Here the release and the offer are a dozen calls to DynamoDB Local, an emulator in a JVM
    // sharing the machine's two cores with the whole suite: after the warm-up above it still
    // took over a second in fresh-clone runs of the suite (two of three in one session, one of
    // one in the next), and well under it alone.
    let offer = update_with(&mut ws, "offered", Duration::from_secs(2)).await;
    eprintln!(
        "offer pushed {} ms after the release was sent (DynamoDB)",
        freed_at.elapsed().as_millis()
    );
    let offered = offer["data"]["offer"]["reservation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The first entry passes its offer: lapsed, and the second entry is offered the table.
    let res = app.delete_reservation(&offered, &tok(&first)).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    update_with(&mut ws, "lapsed", Duration::from_secs(2)).await;
    let mut ws2 = Ws::connect(&app.base).await;
    ws2.send(json!({"op": "subscribe", "sub": "w", "view": "waitlist",
                    "entry_id": id(&second), "token": tok(&second)}))
        .await;
    let snap = ws2.frame().await;
    let next = if snap["data"]["status"] == "offered" {
        snap
    } else {
        update_with(&mut ws2, "offered", Duration::from_secs(2)).await
    };
    let rid2 = next["data"]["offer"]["reservation_id"].as_str().unwrap();
    assert_ne!(rid2, offered);
    // The second entry's token confirms it: booked.
    let res = app.confirm(rid2, &tok(&second)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        app.waitlist_entry(&id(&second), &tok(&second)).await["status"],
        "booked"
    );
    assert_eq!(
        app.waitlist_entry(&id(&first), &tok(&first)).await["status"],
        "lapsed"
    );
    let avail = app.availability(&r.id, &date, 2).await;
    assert_eq!(free_at(&avail, "19:00"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_dynamodb_public_holds_racing_a_release_never_take_the_time_a_waiting_entry_is_owed() {
    let Some(b) = Backend::dynamo("waitlist_dynamo::public_holds_racing_a_release") else {
        return;
    };
    // The freed minutes are kept for the planned offer, which is the next write.
    crate::waitlist::public_holds_race_releases(&TestApp::spawn_on(b).await, 6, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_dynamodb_public_holds_racing_an_early_completion_past_midnight_never_take_it() {
    let Some(b) =
        Backend::dynamo("waitlist_dynamo::public_holds_racing_a_completion_past_midnight")
    else {
        return;
    };
    crate::waitlist::public_holds_race_completions_past_midnight(&TestApp::spawn_on(b).await, 4)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_dynamodb_public_holds_racing_a_declined_offer_never_take_the_time_the_next_entry_is_owed(
) {
    let Some(b) = Backend::dynamo("waitlist_dynamo::public_holds_racing_a_declined_offer") else {
        return;
    };
    crate::waitlist::public_holds_race_declines(&TestApp::spawn_on(b).await, 6, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_dynamodb_the_freed_minutes_a_planned_offer_did_not_take_are_public_at_once() {
    let Some(b) = Backend::dynamo("waitlist_dynamo::freed_minutes_not_taken") else {
        return;
    };
    let app = TestApp::spawn_on(b).await;
    let r = app
        .create_restaurant(restaurant_body(json!([{"id": "t1", "max_party": 2}])))
        .await;
    let date = date_in(5);
    // 19:30 on t1 (to 21:00) is released; the entry waits for 19:45 only, so its offer takes
    // t1 from 19:45: the release's 19:30–19:45 is not the offer's and is free again at once.
    let hold = app.held(&r.id, &date, "19:30", 2).await;
    let res = app
        .send(
            Method::POST,
            &format!("/v1/restaurants/{}/waitlist", r.id),
            None,
            Some(
                json!({"date": date, "party_size": 2, "from": "19:45", "to": "19:45",
                        "guest": {"name": "Ada"}}),
            ),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let entry: Value = res.json().await.unwrap();
    app.release_hold(&hold).await;
    let e = app.waitlist_entry_of(&entry).await;
    assert_eq!(e["status"], "offered", "{e}");
    assert_eq!(e["offer"]["time"], "19:45");
    // 18:15 runs to 19:45: it needs exactly the minutes the offer left.
    let early = app.hold(&r.id, &date, "18:15", 2).await;
    assert_eq!(early.status(), StatusCode::CREATED);
}
