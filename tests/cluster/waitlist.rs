//! The waitlist across instances on one shared store: frees committed on different instances
//! at once are offered by whichever instance committed them, and the store's conditional
//! writes keep it to one offer per freed table and per entry, in queue order.
use crate::harness::*;
use crate::kit::api::{date_in, free_at, many_tables, restaurant_body, Api};
use crate::kit::wait::until;
use crate::kit::ws::Ws;
use crate::waitlist_live::{join, queue};
use crate::SERIAL;
use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_tables_released_on_three_instances_at_once_are_offered_to_the_first_five_entries() {
    let _serial = SERIAL.lock().await;
    let Some(c) = Cluster::start(
        "five_tables_released_on_three_instances_at_once_are_offered_to_the_first_five_entries",
        3,
    ) else {
        return;
    };
    let api = Api::new(&c.front, ADMIN);
    let rid = api
        .create_restaurant(restaurant_body(many_tables(5)))
        .await
        .id;
    let date = date_in(5);
    let at: Vec<Api> = c.instances.iter().map(|i| api.at(&i.base)).collect();
    let mut held = Vec::new();
    for i in 0..5 {
        let res = at[i % 3].hold(&rid, &date, "19:00", 2).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let body: Value = res.json().await.unwrap();
        held.push((
            body["id"].as_str().unwrap().to_owned(),
            body["token"].as_str().unwrap().to_owned(),
        ));
    }
    let mut entries = Vec::new();
    for i in 0..20 {
        let res = at[i % 3]
            .send(
                Method::POST,
                &format!("/v1/restaurants/{rid}/waitlist"),
                None,
                Some(
                    json!({"date": date, "party_size": 2, "from": "19:00", "to": "19:00",
                            "guest": {"name": format!("Guest {i}")}}),
                ),
            )
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let body: Value = res.json().await.unwrap();
        entries.push(body["id"].as_str().unwrap().to_owned());
    }
    // Every hold released at once, each through another instance than the one that made it.
    let released = join_all(
        held.iter()
            .enumerate()
            .map(|(i, (id, token))| at[(i + 1) % 3].delete_reservation(id, token)),
    )
    .await;
    assert!(released
        .iter()
        .all(|r| r.status() == StatusCode::NO_CONTENT));
    let all = until(Duration::from_secs(10), "five offers", || async {
        let q = queue(&api, &rid, &date).await;
        let offered = q.iter().filter(|e| e["status"] == "offered").count();
        (offered >= 5).then_some(q)
    })
    .await;
    let ids: Vec<&str> = all.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids, entries, "queue order is join order");
    let statuses: Vec<&str> = all.iter().map(|e| e["status"].as_str().unwrap()).collect();
    assert_eq!(&statuses[..5], &["offered"; 5], "the first five, in order");
    assert_eq!(&statuses[5..], &["waiting"; 15]);
    let positions: Vec<Value> = all[5..].iter().map(|e| e["position"].clone()).collect();
    assert_eq!(positions, (1..=15).map(|p| json!(p)).collect::<Vec<_>>());
    // One offer per freed table: five distinct held reservations on five distinct tables.
    let mut tables = BTreeSet::new();
    for e in &all[..5] {
        let id = e["offer"]["reservation_id"].as_str().unwrap();
        let res = api
            .send(
                Method::GET,
                &format!("/v1/reservations/{id}"),
                Some(ADMIN),
                None,
            )
            .await;
        let r: Value = res.json().await.unwrap();
        assert_eq!(r["status"], "held", "{r}");
        tables.insert(r["table_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(tables.len(), 5, "{tables:?}");
    // The offers hold the capacity: nothing is public at 19:00.
    let avail = api.availability(&rid, &date, 2).await;
    assert_eq!(free_at(&avail, "19:00"), 0);
}

/// An entry joined on one instance and subscribed on another right after opens on the entry,
/// never on `null` ("no longer exists"), though the join's change may still be on the bus: the
/// other instance's channel already shows the date's waitlist (a floor), and reads the store
/// for an entry it does not know yet.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_entry_joined_on_one_instance_and_subscribed_on_another_opens_on_the_entry() {
    let _serial = SERIAL.lock().await;
    let Some(c) = Cluster::start(
        "an_entry_joined_on_one_instance_and_subscribed_on_another_opens_on_the_entry",
        2,
    ) else {
        return;
    };
    let api = Api::new(&c.front, ADMIN);
    let r = api.create_restaurant(restaurant_body(many_tables(2))).await;
    let date = date_in(4);
    let mut floor = Ws::connect(&c.instances[1].base).await;
    floor.subscribe_floor("f", &r.id, &date, &r.staff).await;
    let on_a = api.at(&c.instances[0].base);
    let mut ws = Ws::connect(&c.instances[1].base).await;
    for i in 0..10 {
        let (id, token) = join(&on_a, &r.id, &date, &format!("Guest {i}")).await;
        let sub = format!("w{i}");
        ws.send(json!({"op": "subscribe", "sub": sub, "view": "waitlist",
                       "entry_id": id, "token": token}))
            .await;
        let snap = ws.frame_of(&sub).await;
        assert_eq!(snap["type"], "snapshot", "{snap}");
        assert_eq!(snap["data"]["id"], id.as_str(), "join {i}: {snap}");
    }
}
