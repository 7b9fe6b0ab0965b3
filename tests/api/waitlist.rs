//! The waitlist over HTTP and the live socket: joins and their validation and limits, the
//! entry's token (read, leave, confirm or pass its offer), the staff's queue, and an offer
//! pushed to the entry's subscriber within a second of the freeing commit.
use crate::kit::api::*;
use crate::kit::app::*;
use crate::kit::ws::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// One table t1 for parties of 1–2.
async fn one_table(app: &TestApp) -> Fixture {
    app.create_restaurant(restaurant_body(json!([{"id": "t1", "max_party": 2}])))
        .await
}

fn join_body(date: &str, party: i64, from: &str, to: &str) -> Value {
    json!({"date": date, "party_size": party, "from": from, "to": to,
           "guest": {"name": "Ada", "email": "ada@example.com"}})
}

async fn join(app: &TestApp, rid: &str, body: Value) -> (StatusCode, Value) {
    let res = app
        .send(
            Method::POST,
            &format!("/v1/restaurants/{rid}/waitlist"),
            None,
            Some(body),
        )
        .await;
    (res.status(), res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_join_answers_the_entry_with_its_token_and_position_and_staff_list_it_in_order() {
    let app = TestApp::spawn().await;
    let r = one_table(&app).await;
    let date = date_in(3);
    let (s1, first) = join(&app, &r.id, join_body(&date, 2, "18:30", "21:00")).await;
    assert_eq!(s1, StatusCode::CREATED, "{first}");
    for k in [
        "id",
        "restaurant_id",
        "date",
        "party_size",
        "from",
        "to",
        "status",
        "position",
        "offer",
        "guest",
        "created_at",
        "token",
    ] {
        assert!(first.get(k).is_some(), "missing {k}: {first}");
    }
    assert_eq!(first["status"], "waiting");
    assert_eq!(first["position"], 1);
    assert_eq!(first["offer"], Value::Null);
    assert_eq!(first["from"], "18:30");
    let (_, second) = join(&app, &r.id, join_body(&date, 2, "19:00", "19:00")).await;
    assert_eq!(second["position"], 2);
    let token = second["token"].as_str().unwrap();
    let got = app
        .waitlist_entry(second["id"].as_str().unwrap(), token)
        .await;
    assert_eq!(got["position"], 2);
    assert_eq!(got["guest"]["name"], "Ada");
    assert!(got.get("token").is_none());
    // Another entry's token, or none: 403, 401.
    let other = first["token"].as_str().unwrap();
    let path = format!("/v1/waitlist/{}", second["id"].as_str().unwrap());
    assert_eq!(
        app.send(Method::GET, &path, Some(other), None)
            .await
            .status(),
        403
    );
    assert_eq!(app.send(Method::GET, &path, None, None).await.status(), 401);
    let list = app
        .send(
            Method::GET,
            &format!("/v1/restaurants/{}/waitlist?date={date}", r.id),
            Some(&r.staff),
            None,
        )
        .await;
    assert_eq!(list.status(), StatusCode::OK);
    let list: Value = list.json().await.unwrap();
    let ids: Vec<&str> = list["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            first["id"].as_str().unwrap(),
            second["id"].as_str().unwrap()
        ]
    );
    let stranger = app
        .send(
            Method::GET,
            &format!("/v1/restaurants/{}/waitlist?date={date}", r.id),
            Some(token),
            None,
        )
        .await;
    assert_eq!(stranger.status(), StatusCode::FORBIDDEN);
    // Leaving: 204, again 204; the other moves up.
    let first_path = format!("/v1/waitlist/{}", first["id"].as_str().unwrap());
    for _ in 0..2 {
        let res = app
            .send(Method::DELETE, &first_path, Some(other), None)
            .await;
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
    }
    assert_eq!(
        app.waitlist_entry(second["id"].as_str().unwrap(), token)
            .await["position"],
        1
    );
    assert_eq!(
        app.waitlist_entry(first["id"].as_str().unwrap(), other)
            .await["status"],
        "left"
    );
}

#[tokio::test]
async fn bad_joins_are_422_or_400_and_change_nothing() {
    let app = TestApp::spawn().await;
    let r = one_table(&app).await;
    let date = date_in(3);
    let cases = [
        (join_body(&date_in(-1), 2, "19:00", "19:00"), 422, "date"),
        (join_body(&date_in(800), 2, "19:00", "19:00"), 422, "date"),
        (join_body(&date, 0, "19:00", "19:00"), 422, "party_size"),
        (join_body(&date, 101, "19:00", "19:00"), 422, "party_size"),
        (join_body(&date, 2, "19:07", "20:00"), 422, "from"),
        (join_body(&date, 2, "20:00", "19:00"), 422, "to"),
        // Open 18:00–23:00: nothing could ever be offered at 05:00.
        (join_body(&date, 2, "05:00", "05:15"), 422, "from"),
        (join_body(&date, 2, "25:00", "19:00"), 400, ""),
        (
            json!({"date": date, "party_size": 2, "from": "19:00"}),
            400,
            "",
        ),
    ];
    for (body, status, field) in cases {
        let (s, v) = join(&app, &r.id, body.clone()).await;
        assert_eq!(s.as_u16(), status, "{body} → {v}");
        if status == 422 {
            assert_eq!(v["type"], "/problems/validation");
            assert!(
                v["errors"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|e| e["field"] == field),
                "{v}"
            );
        }
    }
    // Every broken rule in one answer: the guest's and the window's.
    let mut body = join_body(&date, 2, "05:00", "05:15");
    body["guest"]["email"] = json!("nope");
    let (s, v) = join(&app, &r.id, body).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert!(
        fields.contains(&"guest.email") && fields.contains(&"from"),
        "{v}"
    );
    // A party no table fits today may still join (tables can change).
    let (s, _) = join(&app, &r.id, join_body(&date, 8, "19:00", "19:00")).await;
    assert_eq!(s, StatusCode::CREATED);
    let unknown = format!("/v1/restaurants/{}/waitlist", uuid::Uuid::new_v4());
    let res = app
        .send(
            Method::POST,
            &unknown,
            None,
            Some(join_body(&date, 2, "19:00", "19:00")),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let list: Value = app
        .send(
            Method::GET,
            &format!("/v1/restaurants/{}/waitlist?date={date}", r.id),
            Some(&r.staff),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["entries"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn joins_take_a_rate_token_like_holds() {
    let app = TestApp::spawn_with(|a| a.hold_rate = "3/min".parse().unwrap()).await;
    let r = one_table(&app).await;
    let date = date_in(3);
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(join(&app, &r.id, join_body(&date, 2, "19:00", "19:00")).await);
    }
    let codes: Vec<u16> = statuses.iter().map(|(s, _)| s.as_u16()).collect();
    assert_eq!(codes, [201, 201, 201, 429]);
    assert_eq!(statuses[3].1["limit"], "hold-rate");
    // Staff are exempt.
    let res = app
        .send(
            Method::POST,
            &format!("/v1/restaurants/{}/waitlist", r.id),
            Some(&r.staff),
            Some(join_body(&date, 2, "19:00", "19:00")),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn an_offer_is_pushed_to_the_entrys_subscriber_within_a_second_and_its_token_confirms_it() {
    let app = TestApp::spawn().await;
    let r = one_table(&app).await;
    let date = date_in(3);
    let hold = app.held(&r.id, &date, "19:00", 2).await;
    let (_, e) = join(&app, &r.id, join_body(&date, 2, "18:30", "19:30")).await;
    let (id, token) = (e["id"].as_str().unwrap(), e["token"].as_str().unwrap());
    let mut ws = Ws::connect(&app.base).await;
    ws.send(
        json!({"op": "subscribe", "sub": "w", "view": "waitlist", "entry_id": id, "token": token}),
    )
    .await;
    let snap = ws.frame().await;
    assert_eq!(snap["type"], "snapshot", "{snap}");
    assert_eq!(snap["sub"], "w");
    assert_eq!(snap["data"]["status"], "waiting");
    assert_eq!(snap["data"]["position"], 1);
    // The staff floor shows the queue too.
    let mut floor = Ws::connect(&app.base).await;
    let fsnap = floor.subscribe_floor("f", &r.id, &date, &r.staff).await;
    assert_eq!(fsnap["data"]["waitlist"][0]["id"], id, "{fsnap}");

    let freed_at = Instant::now();
    app.release_hold(&hold).await;
    let offer = loop {
        let left = Duration::from_secs(1).saturating_sub(freed_at.elapsed());
        match ws.next(left).await {
            Got::Frame(f) if f["data"]["status"] == "offered" => break f,
            Got::Frame(f) => assert_eq!(f["type"], "update", "{f}"),
            other => panic!("no offer within 1 s of the release: {other:?}"),
        }
    };
    eprintln!(
        "offer pushed {} ms after the release was sent",
        freed_at.elapsed().as_millis()
    );
    assert_eq!(offer["type"], "update");
    assert_eq!(offer["data"]["offer"]["time"], "19:00");
    assert_eq!(offer["data"]["position"], Value::Null);
    let rid = offer["data"]["offer"]["reservation_id"].as_str().unwrap();
    // The entry's token reads and confirms the offered reservation like a reservation token.
    let got = app.get_reservation(rid, token).await;
    assert_eq!(got.status(), StatusCode::OK);
    let got: Value = got.json().await.unwrap();
    assert_eq!(got["status"], "held");
    // Nobody else can take it meanwhile.
    assert_eq!(
        app.hold(&r.id, &date, "19:00", 2).await.status(),
        StatusCode::CONFLICT
    );
    let res = app.confirm(rid, token).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(app.waitlist_entry(id, token).await["status"], "booked");
    let booked = loop {
        match ws.next(Duration::from_secs(2)).await {
            Got::Frame(f) if f["data"]["status"] == "booked" => break f,
            Got::Frame(_) => {}
            other => panic!("no booked update: {other:?}"),
        }
    };
    assert_eq!(booked["data"]["offer"]["reservation_id"], rid);
    // Waitlist subscriptions need the entry's token: 401, then 403 for another's.
    ws.send(json!({"op": "subscribe", "sub": "x", "view": "waitlist", "entry_id": id}))
        .await;
    assert_eq!(ws.frame().await["status"], 401);
    ws.send(
        json!({"op": "subscribe", "sub": "y", "view": "waitlist", "entry_id": id,
                   "token": hold["token"]}),
    )
    .await;
    assert_eq!(ws.frame().await["status"], 403);
    // A frame without its entry is `400`, whatever its token says.
    for token in [None, Some("tc_nobody")] {
        let mut f = json!({"op": "subscribe", "sub": "z", "view": "waitlist"});
        if let Some(t) = token {
            f["token"] = json!(t);
        }
        ws.send(f).await;
        let e = ws.frame().await;
        assert_eq!(
            (e["type"].as_str(), e["status"].as_u64()),
            (Some("error"), Some(400)),
            "{e}"
        );
    }
}

/// The first snapshot of an entry subscribed right after its join shows the entry, never `null`
/// ("no longer exists"): not even when the join's change is still held back by the channel's
/// fan-out gap, as it is after a hold fanned out just before it. The date's channel already
/// shows its waitlist (a floor), so no subscribe reads the store for it.
#[tokio::test]
async fn an_entry_subscribed_right_after_its_join_opens_on_the_entry() {
    let app = TestApp::spawn().await;
    let r = app
        .create_restaurant(restaurant_body(many_tables(10)))
        .await;
    let date = date_in(3);
    let mut floor = Ws::connect(&app.base).await;
    floor.subscribe_floor("f", &r.id, &date, &r.staff).await;
    let mut ws = Ws::connect(&app.base).await;
    for i in 0..10 {
        app.held(&r.id, &date, "19:00", 2).await;
        let (status, e) = join(&app, &r.id, join_body(&date, 2, "20:00", "20:30")).await;
        assert_eq!(status, StatusCode::CREATED, "{e}");
        let sub = format!("w{i}");
        ws.send(json!({"op": "subscribe", "sub": sub, "view": "waitlist",
                       "entry_id": e["id"], "token": e["token"]}))
            .await;
        let snap = ws.frame_of(&sub).await;
        assert_eq!(snap["type"], "snapshot", "{snap}");
        assert_eq!(snap["data"]["id"], e["id"], "join {i}: {snap}");
        assert_eq!(snap["data"]["status"], "waiting", "join {i}: {snap}");
    }
}

#[tokio::test]
async fn passing_an_offer_over_http_cascades_to_the_next_entry() {
    let app = TestApp::spawn().await;
    let r = one_table(&app).await;
    let date = date_in(3);
    let hold = app.held(&r.id, &date, "19:00", 2).await;
    let (_, a) = join(&app, &r.id, join_body(&date, 2, "19:00", "19:00")).await;
    let (_, b) = join(&app, &r.id, join_body(&date, 2, "19:00", "19:00")).await;
    let (a_id, a_tok) = (a["id"].as_str().unwrap(), a["token"].as_str().unwrap());
    let (b_id, b_tok) = (b["id"].as_str().unwrap(), b["token"].as_str().unwrap());
    app.delete_reservation(
        hold["id"].as_str().unwrap(),
        hold["token"].as_str().unwrap(),
    )
    .await;
    let offered = |id: String, tok: String| {
        let app = &app;
        async move {
            crate::kit::wait::until(Duration::from_secs(5), "an offer", || {
                let (id, tok) = (id.clone(), tok.clone());
                async move {
                    let e = app.waitlist_entry(&id, &tok).await;
                    (e["status"] == "offered").then_some(e)
                }
            })
            .await
        }
    };
    let ea = offered(a_id.into(), a_tok.into()).await;
    // A declines by leaving: its offer is released and goes to B.
    let res = app
        .send(
            Method::DELETE,
            &format!("/v1/waitlist/{a_id}"),
            Some(a_tok),
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let rid = ea["offer"]["reservation_id"].as_str().unwrap();
    let old: Value = app.get_reservation(rid, a_tok).await.json().await.unwrap();
    assert_eq!(old["status"], "released");
    let eb = offered(b_id.into(), b_tok.into()).await;
    assert_ne!(eb["offer"]["reservation_id"], ea["offer"]["reservation_id"]);
    // B's token cannot touch A's old offer.
    assert_eq!(
        app.get_reservation(rid, b_tok).await.status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn offer_seconds_defaults_to_120_and_is_15_to_3600() {
    let app = TestApp::spawn().await;
    let r = one_table(&app).await;
    assert_eq!(r.body["offer_seconds"], 120);
    let mut body = restaurant_body(json!([{"id": "t1", "max_party": 2}]));
    body["offer_seconds"] = json!(10);
    let res = app
        .send(
            Method::POST,
            "/v1/restaurants",
            Some(&app.admin),
            Some(body),
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let path = format!("/v1/restaurants/{}", r.id);
    for (v, status) in [(3601, 422), (15, 200), (3600, 200)] {
        let res = app
            .send(
                Method::PATCH,
                &path,
                Some(&r.staff),
                Some(json!({"offer_seconds": v})),
            )
            .await;
        assert_eq!(res.status().as_u16(), status, "{v}");
    }
    let got: Value = app
        .send(Method::GET, &path, None, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got["offer_seconds"], 3600);
}

#[tokio::test]
async fn freed_time_is_offered_before_the_release_is_answered_or_shown_so_no_public_hold_takes_it()
{
    let app = TestApp::spawn().await;
    let r = one_table(&app).await;
    for days in 3..8 {
        let date = date_in(days);
        let mut ws = Ws::connect(&app.base).await;
        ws.subscribe("a", &r.id, &date, 2).await;
        let hold = app.held(&r.id, &date, "19:00", 2).await;
        let (status, entry) = join(&app, &r.id, join_body(&date, 2, "19:00", "19:00")).await;
        assert_eq!(status, StatusCode::CREATED);
        let (id, token) = (
            hold["id"].as_str().unwrap(),
            hold["token"].as_str().unwrap(),
        );
        let res = app.delete_reservation(id, token).await;
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        // Right after the release's answer: the entry has the time, a public hold does not.
        let e = app.waitlist_entry_of(&entry).await;
        assert_eq!(e["status"], "offered", "{e}");
        assert_eq!(
            app.hold(&r.id, &date, "19:00", 2).await.status(),
            StatusCode::CONFLICT
        );
        // A later change, then every frame up to it: 19:00 was never shown free.
        app.held(&r.id, &date, "21:00", 2).await;
        loop {
            let f = ws.frame().await;
            let slot = |t: &str| {
                f["slots"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|s| s["time"] == t)
                    .cloned()
            };
            if let Some(s) = slot("19:00") {
                assert_eq!(s["available_tables"], 0, "{days}: 19:00 shown free: {f}");
            }
            if slot("21:00").is_some_and(|s| s["available_tables"] == 0) {
                break;
            }
        }
    }
}

/// Public diners retrying holds without pause, one per time in `times` (at the restaurant `rid`
/// on `date`, party 2), until [`Hammers::settle`] says how many holds they won.
pub(crate) struct Hammers {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    running: Vec<tokio::task::JoinHandle<usize>>,
}

impl Hammers {
    /// Starts them, and returns once every one of them has been answered at least once: they
    /// are hammering when the caller frees the time, so the race it tests does take place.
    pub(crate) async fn start(app: &Api, rid: &str, date: &str, times: &[String]) -> Hammers {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let answered = std::sync::Arc::new(AtomicUsize::new(0));
        let running = times
            .iter()
            .map(|time| {
                let (api, rid, date, time, stop, answered) = (
                    app.clone(),
                    rid.to_owned(),
                    date.to_owned(),
                    time.clone(),
                    stop.clone(),
                    answered.clone(),
                );
                tokio::spawn(async move {
                    let (mut won, mut first) = (0, true);
                    while !stop.load(Ordering::Relaxed) {
                        won += usize::from(
                            api.hold(&rid, &date, &time, 2).await.status() == StatusCode::CREATED,
                        );
                        if std::mem::take(&mut first) {
                            answered.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    won
                })
            })
            .collect();
        let all = times.len();
        crate::kit::wait::until(
            Duration::from_secs(10),
            "every hammer answered once",
            || {
                let n = answered.load(Ordering::Relaxed);
                async move { (n >= all).then_some(()) }
            },
        )
        .await;
        Hammers { stop, running }
    }

    /// Stops them, and notes in `taken` (as `trial`) a trial where they won a hold or the
    /// `entry` owed the time was not offered it.
    pub(crate) async fn settle(self, entry: &Value, trial: String, taken: &mut Vec<String>) {
        let won = self.stop().await;
        if won > 0 || entry["status"] != "offered" {
            taken.push(format!(
                "{trial}: {won} public holds, entry {}",
                entry["status"]
            ));
        }
    }
}

impl Hammers {
    /// Stops them: how many holds they won.
    pub(crate) async fn stop(self) -> usize {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        futures_util::future::join_all(self.running)
            .await
            .into_iter()
            .map(Result::unwrap)
            .sum()
    }
}

/// Two instances on one SQLite file: ten held tables released on both at once, while public
/// diners on both retry the same time and fifteen entries wait for it. A release's planned
/// offer may name the entry the other instance has just offered a table: the release then
/// plans again before it frees anything. Every freed table goes to an entry, in queue order,
/// and none to the public.
#[tokio::test]
async fn releases_on_two_instances_at_once_offer_every_freed_table_and_the_public_gets_none() {
    let app = TestApp::spawn().await;
    let apis = [app.api.clone(), app.another_on_the_same_store().await];
    let tables: Vec<Value> = (0..10)
        .map(|i| json!({"id": format!("t{i}"), "max_party": 2}))
        .collect();
    let r = app.create_restaurant(restaurant_body(json!(tables))).await;
    let mut failures = Vec::new();
    for days in 3..6 {
        let date = date_in(days);
        let mut holds = Vec::new();
        for i in 0..10 {
            holds.push(apis[i % 2].held(&r.id, &date, "19:00", 2).await);
        }
        let mut entries = Vec::new();
        for i in 0..15 {
            let res = apis[i % 2]
                .send(
                    Method::POST,
                    &format!("/v1/restaurants/{}/waitlist", r.id),
                    None,
                    Some(join_body(&date, 2, "19:00", "19:00")),
                )
                .await;
            assert_eq!(res.status(), StatusCode::CREATED);
            entries.push(res.json::<Value>().await.unwrap());
        }
        let times = vec!["19:00".to_string(); 3];
        let hammers = [
            Hammers::start(&apis[0], &r.id, &date, &times).await,
            Hammers::start(&apis[1], &r.id, &date, &times).await,
        ];
        futures_util::future::join_all(
            holds
                .iter()
                .enumerate()
                .map(|(i, h)| apis[i % 2].release_hold(h)),
        )
        .await;
        let [a, b] = hammers;
        let won = a.stop().await + b.stop().await;
        let mut statuses = Vec::new();
        for e in &entries {
            statuses.push(app.waitlist_entry_of(e).await["status"].clone());
        }
        let expected: Vec<Value> = (0..15)
            .map(|i| json!(if i < 10 { "offered" } else { "waiting" }))
            .collect();
        if won > 0 || statuses != expected {
            failures.push(format!("{date}: {won} public holds, entries {statuses:?}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[tokio::test]
async fn public_holds_racing_a_release_never_take_the_time_a_waiting_entry_is_owed() {
    public_holds_race_releases(&TestApp::spawn().await, 10, 3).await;
}

/// On `app`'s store, `trials` times: a hold on a one-table restaurant's 19:00, an entry waiting
/// for 19:00, and `diners` public diners retrying 19:00 without pause while the hold is
/// released. The entry must be offered it every time, and the public never win it.
pub(crate) async fn public_holds_race_releases(app: &TestApp, trials: i64, diners: usize) {
    let r = one_table(app).await;
    let mut taken_by_the_public = Vec::new();
    for days in 3..3 + trials {
        let date = date_in(days);
        let hold = app.held(&r.id, &date, "19:00", 2).await;
        let (status, entry) = join(app, &r.id, join_body(&date, 2, "19:00", "19:00")).await;
        assert_eq!(status, StatusCode::CREATED);
        let hammers = Hammers::start(app, &r.id, &date, &vec!["19:00".to_string(); diners]).await;
        app.release_hold(&hold).await;
        let e = app.waitlist_entry_of(&entry).await;
        hammers
            .settle(&e, date.clone(), &mut taken_by_the_public)
            .await;
    }
    assert!(
        taken_by_the_public.is_empty(),
        "the freed 19:00 went to the public: {taken_by_the_public:?}"
    );
}

/// A restaurant open all day, every day, on a clock where it is now about noon (so a turn that
/// starts now ends today), with one table t1 for 1–2: the restaurant, today's local date there
/// and the local grid time at or before now (a waiting window from it reaches the next starts).
async fn open_all_day(app: &TestApp) -> (Fixture, String, String) {
    use chrono::{Duration as Minutes, Timelike};
    let (tz, local) = zone_at_noon();
    let body = open_all_day_in(restaurant_body(json!([{"id": "t1", "max_party": 2}])), &tz);
    let r = app.create_restaurant(body).await;
    let from = local - Minutes::minutes(i64::from(local.minute() % 15));
    let date = local.format("%Y-%m-%d").to_string();
    (r, date, from.format("%H:%M").to_string())
}

/// A walk-in seated on t1 now: its id.
async fn walk_in(app: &TestApp, r: &Fixture) -> String {
    let res = app
        .send(
            Method::POST,
            &format!("/v1/restaurants/{}/walk-ins", r.id),
            Some(&r.staff),
            Some(json!({"party_size": 2})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let w: Value = res.json().await.unwrap();
    w["id"].as_str().unwrap().to_string()
}

/// The local `HH:MM` `minutes` after `hh_mm`.
fn later(hh_mm: &str, minutes: i64) -> String {
    let t = chrono::NaiveTime::parse_from_str(hh_mm, "%H:%M").unwrap();
    (t + chrono::Duration::minutes(minutes))
        .format("%H:%M")
        .to_string()
}

#[tokio::test]
async fn ending_a_turn_early_offers_the_rest_of_it_to_the_waiting_entry() {
    let app = TestApp::spawn().await;
    for ending in ["completed", "no_show"] {
        let (r, date, from) = open_all_day(&app).await;
        // Completed: a walk-in seated now. No-show: a booking confirmed for the next start.
        let id = if ending == "completed" {
            walk_in(&app, &r).await
        } else {
            let hold = app.held(&r.id, &date, &later(&from, 15), 2).await;
            let (id, token) = (
                hold["id"].as_str().unwrap(),
                hold["token"].as_str().unwrap(),
            );
            assert_eq!(app.confirm(id, token).await.status(), StatusCode::OK);
            id.to_string()
        };
        let (status, entry) =
            join(&app, &r.id, join_body(&date, 2, &from, &later(&from, 60))).await;
        assert_eq!(status, StatusCode::CREATED, "{entry}");
        let res = app.set_status(&id, &r.staff, ending).await;
        assert_eq!(res.status(), StatusCode::OK, "{ending}");
        let ended: Value = res.json().await.unwrap();
        // Answered after the offer: the entry already holds the rest of the turn.
        let e = app.waitlist_entry_of(&entry).await;
        assert_eq!(e["status"], "offered", "{ending}: {e}");
        let offered = app
            .get_reservation(
                e["offer"]["reservation_id"].as_str().unwrap(),
                entry["token"].as_str().unwrap(),
            )
            .await
            .json::<Value>()
            .await
            .unwrap();
        assert_eq!(offered["status"], "held", "{offered}");
        assert_eq!(offered["table_id"], "t1");
        assert_eq!(
            offered["start"], ended["end"],
            "{ending}: offered from the new end of the turn"
        );
    }
}

#[tokio::test]
async fn public_holds_racing_an_early_completion_never_take_the_time_a_waiting_entry_is_owed() {
    let app = TestApp::spawn().await;
    let mut taken_by_the_public = Vec::new();
    for trial in 0..8 {
        let (r, date, from) = open_all_day(&app).await;
        let id = walk_in(&app, &r).await;
        let (status, entry) =
            join(&app, &r.id, join_body(&date, 2, &from, &later(&from, 60))).await;
        assert_eq!(status, StatusCode::CREATED, "{entry}");
        // Three diners retry the next two starts without pause while the turn ends early.
        let times: Vec<String> = (0..3).map(|i| later(&from, 15 * (1 + i % 2))).collect();
        let race = (&r, &entry, date.as_str(), &times[..]);
        ends_early_under_hammers(
            &app,
            &id,
            race,
            format!("trial {trial}"),
            &mut taken_by_the_public,
        )
        .await;
    }
    assert!(
        taken_by_the_public.is_empty(),
        "the rest of the turn went to the public: {taken_by_the_public:?}"
    );
}

/// Completes the walk-in `id` of `r` early while public diners retry `times` of `date`, and
/// notes in `taken` (as `trial`) whether they won a hold or `entry` was not offered the time.
async fn ends_early_under_hammers(
    app: &TestApp,
    id: &str,
    (r, entry, date, times): (&Fixture, &Value, &str, &[String]),
    trial: String,
    taken: &mut Vec<String>,
) {
    let hammers = Hammers::start(app, &r.id, date, times).await;
    let ended = app.set_status(id, &r.staff, "completed").await;
    assert_eq!(ended.status(), StatusCode::OK);
    let e = app.waitlist_entry_of(entry).await;
    hammers.settle(&e, trial, taken).await;
}

/// A fixed-offset zone where it is now late in the evening (22:50–23:49), so that a turn
/// that starts now runs past local midnight, with at least ten minutes before it; and the
/// date after today there.
fn zone_late_in_the_evening() -> (String, String) {
    use chrono::Timelike;
    let (tz, local) = zone_at(if chrono::Utc::now().minute() < 50 {
        23
    } else {
        22
    });
    let next = (local.date_naive() + chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    (tz, next)
}

/// A walk-in seated late in the evening runs past midnight; the entry waits for the next
/// date's first starts. Ending the turn early frees time on both dates (or on the next alone),
/// and that time is offered with the change, as on one date: public diners retrying those
/// starts never take it. (It was offered right after the change, and they won it.)
#[tokio::test]
async fn public_holds_racing_an_early_completion_past_midnight_never_take_the_next_dates_time() {
    public_holds_race_completions_past_midnight(&TestApp::spawn().await, 6).await;
}

/// On `app`'s store, `trials` times: see the test above.
pub(crate) async fn public_holds_race_completions_past_midnight(app: &TestApp, trials: usize) {
    let mut taken_by_the_public = Vec::new();
    for trial in 0..trials {
        let (tz, next) = zone_late_in_the_evening();
        let body = open_all_day_in(restaurant_body(json!([{"id": "t1", "max_party": 2}])), &tz);
        let r = app.create_restaurant(body).await;
        let id = walk_in(app, &r).await;
        let (status, entry) = join(app, &r.id, join_body(&next, 2, "00:00", "00:15")).await;
        assert_eq!(status, StatusCode::CREATED, "{entry}");
        let times = ["00:00", "00:15", "00:00"].map(String::from);
        let race = (&r, &entry, next.as_str(), &times[..]);
        let trial = format!("trial {trial} ({tz})");
        ends_early_under_hammers(app, &id, race, trial, &mut taken_by_the_public).await;
    }
    assert!(
        taken_by_the_public.is_empty(),
        "the next date's freed time went to the public: {taken_by_the_public:?}"
    );
}

#[tokio::test]
async fn public_holds_racing_a_declined_offer_never_take_the_time_the_next_entry_is_owed() {
    public_holds_race_declines(&TestApp::spawn().await, 8, 3).await;
}

/// On `app`'s store, `trials` times: two entries waiting for a one-table restaurant's 19:00, the
/// first offered it, and `diners` public diners retrying 19:00 without pause while the first
/// leaves. The next entry must be offered it every time, and the public never win it.
pub(crate) async fn public_holds_race_declines(app: &TestApp, trials: i64, diners: usize) {
    let r = one_table(app).await;
    let mut taken_by_the_public = Vec::new();
    for days in 3..3 + trials {
        let date = date_in(days);
        let hold = app.held(&r.id, &date, "19:00", 2).await;
        let (_, first) = join(app, &r.id, join_body(&date, 2, "19:00", "19:00")).await;
        let (_, next) = join(app, &r.id, join_body(&date, 2, "19:00", "19:00")).await;
        app.release_hold(&hold).await;
        let entry = |e: &Value| {
            (
                e["id"].as_str().unwrap().to_string(),
                e["token"].as_str().unwrap().to_string(),
            )
        };
        let ((first_id, first_token), (next_id, next_token)) = (entry(&first), entry(&next));
        assert_eq!(
            app.waitlist_entry(&first_id, &first_token).await["status"],
            "offered"
        );
        // The diners retry 19:00 without pause while the first entry declines its offer.
        let hammers = Hammers::start(app, &r.id, &date, &vec!["19:00".to_string(); diners]).await;
        let left = app
            .send(
                Method::DELETE,
                &format!("/v1/waitlist/{first_id}"),
                Some(&first_token),
                None,
            )
            .await;
        assert_eq!(left.status(), StatusCode::NO_CONTENT);
        let e = app.waitlist_entry(&next_id, &next_token).await;
        hammers
            .settle(&e, date.clone(), &mut taken_by_the_public)
            .await;
    }
    assert!(
        taken_by_the_public.is_empty(),
        "the declined 19:00 went to the public: {taken_by_the_public:?}"
    );
}

#[tokio::test]
async fn a_release_that_makes_room_in_a_full_pacing_window_offers_its_starts_on_any_table() {
    let app = TestApp::spawn().await;
    let mut body =
        restaurant_body(json!([{"id": "t1", "max_party": 2}, {"id": "t2", "max_party": 2}]));
    body["pacing"] = json!({"window_minutes": 30, "max_covers": null, "max_parties": 1});
    let r = app.create_restaurant(body).await;
    let date = date_in(4);
    // 19:30 on t1 fills the 19:30–20:00 window; 21:00 on t1 keeps t1 from a 19:45 turn.
    let filling = app.held(&r.id, &date, "19:30", 2).await;
    assert_eq!(filling["table_id"], "t1");
    let res = app
        .send(
            Method::POST,
            &format!("/v1/restaurants/{}/holds", r.id),
            None,
            Some(json!({"date": date, "time": "21:00", "party_size": 2, "table_id": "t1"})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(
        free_at(&app.availability(&r.id, &date, 2).await, "19:45"),
        0
    );
    let (status, entry) = join(&app, &r.id, join_body(&date, 2, "19:45", "19:45")).await;
    assert_eq!(status, StatusCode::CREATED, "{entry}");
    app.release_hold(&filling).await;
    // The window has room again: 19:45 opens on t2, and it goes to the waiting entry.
    let token = entry["token"].as_str().unwrap();
    let e = app
        .waitlist_entry(entry["id"].as_str().unwrap(), token)
        .await;
    assert_eq!(e["status"], "offered", "{e}");
    assert_eq!(e["offer"]["time"], "19:45");
    let offered: Value = app
        .get_reservation(e["offer"]["reservation_id"].as_str().unwrap(), token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(offered["table_id"], "t2", "{offered}");
    assert_eq!(
        free_at(&app.availability(&r.id, &date, 2).await, "19:45"),
        0
    );
}

/// A hold runs out while an entry waits for its time. The sweep runs at the hold's expiry (it
/// is planned then, not left to the next tick), offers the freed time, and only then publishes
/// the expiry: a subscriber never sees the time free, and a diner who acts on the expiry's
/// update finds it taken by the offer.
#[tokio::test]
async fn an_expiring_hold_goes_to_the_waiting_entry_before_anyone_sees_its_time_free() {
    let app = TestApp::spawn().await;
    let mut body = restaurant_body(json!([{"id": "t1", "max_party": 2}]));
    body["hold_seconds"] = json!(2);
    let r = app.create_restaurant(body).await;
    let date = date_in(4);
    let held = app.held(&r.id, &date, "19:00", 2).await;
    let (status, entry) = join(&app, &r.id, join_body(&date, 2, "19:00", "19:00")).await;
    assert_eq!(status, StatusCode::CREATED, "{entry}");
    let mut ws = Ws::connect(&app.base).await;
    let mut seen = LiveState::default();
    seen.apply(&ws.subscribe("a", &r.id, &date, 2).await);
    assert_eq!(seen.slots["19:00"], 0);
    // No frame shows 19:00 free, until the entry holds the offer and after: a change that
    // leaves every count as it was sends no update at all.
    let (id, token) = (
        entry["id"].as_str().unwrap(),
        entry["token"].as_str().unwrap(),
    );
    async fn frames(ws: &mut Ws, seen: &mut LiveState, within: Duration) {
        while let Got::Frame(f) = ws.next(within).await {
            seen.apply(&f);
            assert_eq!(seen.slots["19:00"], 0, "19:00 shown free: {f}");
        }
    }
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        frames(&mut ws, &mut seen, Duration::from_millis(50)).await;
        let e = app.waitlist_entry(id, token).await;
        if e["status"] == "offered" {
            assert_eq!(e["offer"]["time"], "19:00");
            break;
        }
        assert!(
            Instant::now() < end,
            "no offer after the expiry of {held}: {e}"
        );
    }
    // Whatever was published before the offer reaches the socket before the frame of a later
    // change: a hold at 21:00 (after the 19:00 turn) marks the end.
    assert_eq!(seen.slots["21:00"], 1);
    let marker = app.held(&r.id, &date, "21:00", 2).await;
    let end = Instant::now() + Duration::from_secs(5);
    while seen.slots["21:00"] != 0 {
        match ws.next(end.saturating_duration_since(Instant::now())).await {
            Got::Frame(f) => {
                seen.apply(&f);
                assert_eq!(seen.slots["19:00"], 0, "19:00 shown free: {f}");
            }
            other => panic!("no frame of the later hold {marker}: {other:?}"),
        }
    }
    let res = app.hold(&r.id, &date, "19:00", 2).await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
}

/// One change that frees room for several waiting entries offers each its part before it is
/// answered, not one now and the rest at the next reconcile (10 s later): a released
/// combination frees two tables, and a long reservation released frees starts that two entries
/// wait for. A client acting on the release's `204` finds both offered.
async fn a_release_that_frees_room_for_two_offers_both_at_once(app: TestApp) {
    let both_offered = |entries: [(String, String); 2]| {
        let app = &app;
        async move {
            let mut offers = Vec::new();
            for (id, token) in &entries {
                let e = app.waitlist_entry(id, token).await;
                assert_eq!(e["status"], "offered", "when the release answered: {e}");
                offers.push(e["offer"].clone());
            }
            offers
        }
    };
    let entry = |e: &Value| {
        (
            e["id"].as_str().unwrap().to_owned(),
            e["token"].as_str().unwrap().to_owned(),
        )
    };

    // A combination of two tables, released: each table goes to one of two parties of 2.
    let mut body = restaurant_body(json!([
        {"id": "a", "max_party": 4},
        {"id": "b", "max_party": 4},
    ]));
    body["combinations"] =
        json!([{"id": "ab", "tables": ["a", "b"], "min_party": 5, "max_party": 8}]);
    let r = app.create_restaurant(body).await;
    let date = date_in(5);
    let six = app.held(&r.id, &date, "19:00", 6).await;
    assert_eq!(six["combination_id"], "ab", "{six}");
    let mut waiting = Vec::new();
    for _ in 0..2 {
        let (status, e) = join(&app, &r.id, join_body(&date, 2, "19:00", "19:00")).await;
        assert_eq!(status, StatusCode::CREATED, "{e}");
        waiting.push(entry(&e));
    }
    let mut ws = Ws::connect(&app.base).await;
    let mut seen = LiveState::default();
    seen.apply(&ws.subscribe("a", &r.id, &date, 2).await);
    assert_eq!(seen.slots["19:00"], 0);
    app.release_hold(&six).await;
    let offers = both_offered([waiting[0].clone(), waiting[1].clone()]).await;
    // No frame showed a table free at 19:00: both offers came before the release was published.
    // A later hold at 21:30 marks the end of what was published before it.
    assert_eq!(seen.slots["21:30"], 2);
    app.held(&r.id, &date, "21:30", 2).await;
    let end = Instant::now() + Duration::from_secs(5);
    while seen.slots["21:30"] != 1 {
        match ws.next(end.saturating_duration_since(Instant::now())).await {
            Got::Frame(f) => {
                seen.apply(&f);
                assert_eq!(seen.slots["19:00"], 0, "19:00 shown free: {f}");
            }
            other => panic!("no frame of the 21:30 hold: {other:?}"),
        }
    }
    let mut tables: Vec<String> = Vec::new();
    for o in &offers {
        assert_eq!(o["time"], "19:00", "{o}");
        let id = o["reservation_id"].as_str().unwrap();
        let held = app
            .send(
                Method::GET,
                &format!("/v1/reservations/{id}"),
                Some(&r.staff),
                None,
            )
            .await
            .json::<Value>()
            .await
            .unwrap();
        tables.push(held["table_id"].as_str().unwrap().to_owned());
    }
    tables.sort();
    assert_eq!(tables, ["a", "b"], "one table each");
    // Held for them: nobody else takes 19:00.
    let res = app.hold(&r.id, &date, "19:00", 2).await;
    assert_eq!(res.status(), StatusCode::CONFLICT);

    // One table, a party of 6 from 19:00 to 21:30, released: 19:00 and 20:30 each go to the
    // party of 2 waiting for it.
    let r = app
        .create_restaurant(restaurant_body(json!([{"id": "t1", "max_party": 8}])))
        .await;
    let date = date_in(6);
    let six = app.held(&r.id, &date, "19:00", 6).await;
    let mut waiting = Vec::new();
    for time in ["19:00", "20:30"] {
        let (status, e) = join(&app, &r.id, join_body(&date, 2, time, time)).await;
        assert_eq!(status, StatusCode::CREATED, "{e}");
        waiting.push(entry(&e));
    }
    app.release_hold(&six).await;
    let offers = both_offered([waiting[0].clone(), waiting[1].clone()]).await;
    assert_eq!(offers[0]["time"], "19:00", "{offers:?}");
    assert_eq!(offers[1]["time"], "20:30", "{offers:?}");
}

#[tokio::test]
async fn a_release_that_frees_room_for_two_offers_both_at_once_on_sqlite() {
    a_release_that_frees_room_for_two_offers_both_at_once(TestApp::spawn().await).await;
}

#[tokio::test]
async fn a_release_that_frees_room_for_two_offers_both_at_once_on_dynamodb() {
    let Some(b) = Backend::dynamo("waitlist::frees_room_for_two") else {
        return;
    };
    a_release_that_frees_room_for_two_offers_both_at_once(TestApp::spawn_on(b).await).await;
}

/// A table added while an entry waits for a time every table holds: the entry is offered the
/// new table before the `PUT` is answered, so a diner acting on the answer finds it taken.
async fn a_new_table_is_offered_before_its_change_is_answered(app: TestApp) {
    for days in 3..6 {
        let r = one_table(&app).await;
        let date = date_in(days);
        app.held(&r.id, &date, "19:00", 2).await;
        let (status, entry) = join(&app, &r.id, join_body(&date, 2, "19:00", "19:00")).await;
        assert_eq!(status, StatusCode::CREATED);
        let table = format!("n{days}");
        let res = app
            .send(
                Method::PUT,
                &format!("/v1/restaurants/{}/tables/{table}", r.id),
                Some(&r.staff),
                Some(json!({"max_party": 2})),
            )
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let e = app.waitlist_entry_of(&entry).await;
        assert_eq!(e["status"], "offered", "{date}: {e}");
        assert_eq!(
            app.hold(&r.id, &date, "19:00", 2).await.status(),
            StatusCode::CONFLICT,
            "{date}: the public took the new table"
        );
    }
}

#[tokio::test]
async fn a_new_table_is_offered_before_its_change_is_answered_on_sqlite() {
    a_new_table_is_offered_before_its_change_is_answered(TestApp::spawn().await).await;
}

#[tokio::test]
async fn a_new_table_is_offered_before_its_change_is_answered_on_dynamodb() {
    let Some(b) = Backend::dynamo("waitlist::new_table_offered") else {
        return;
    };
    a_new_table_is_offered_before_its_change_is_answered(TestApp::spawn_on(b).await).await;
}
