//! Combinations and pacing across instances on one shared store: the store's conditional
//! writes decide, whichever instance each hold reaches.
use crate::harness::*;
use crate::kit::api::{date_in, free_at, many_tables, restaurant_body, Api};
use crate::{never_go_back, Watcher, SERIAL};
use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

async fn hold(api: &Api, rid: &str, body: Value) -> (StatusCode, Value) {
    let res = api
        .send(
            Method::POST,
            &format!("/v1/restaurants/{rid}/holds"),
            None,
            Some(body),
        )
        .await;
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_holds_into_one_paced_window_across_instances_win_exactly_the_covers_limit() {
    let _serial = SERIAL.lock().await;
    let Some(c) = Cluster::start(
        "a_hundred_holds_into_one_paced_window_across_instances_win_exactly_the_covers_limit",
        3,
    ) else {
        return;
    };
    let api = Api::new(&c.front, ADMIN);
    let mut body = restaurant_body(many_tables(30));
    body["pacing"] = json!({"window_minutes": 15, "max_covers": 10, "max_parties": null});
    let rid = api.create_restaurant(body).await.id;
    let date = date_in(5);
    let mut watchers = Vec::new();
    for i in 0..6 {
        watchers.push(Watcher::start(&c.instances[i % 3].base, &rid, &date, 2).await);
    }
    let at: Vec<Api> = c.instances.iter().map(|i| api.at(&i.base)).collect();
    let holds = (0..100).map(|i| {
        let body = json!({"date": date, "time": "19:00", "party_size": 2});
        hold(&at[i % 3], &rid, body)
    });
    let outcomes = join_all(holds).await;
    let answers: Vec<(u16, &Value)> = outcomes
        .iter()
        .map(|(s, p)| (s.as_u16(), &p["reason"]))
        .collect();
    let won = answers.iter().filter(|(s, _)| *s == 201).count();
    let paced = answers
        .iter()
        .filter(|(s, r)| *s == 409 && *r == "pacing")
        .count();
    assert_eq!((won, paced), (5, 95), "{answers:?}");
    let expected = api.at(&c.front).availability(&rid, &date, 2).await;
    assert_eq!(free_at(&expected, "19:00"), 0);
    for w in watchers.iter_mut() {
        w.converge(&expected, Duration::from_secs(1)).await.unwrap();
        assert!(never_go_back(&w.st.versions_seen));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_member_table_and_its_combination_held_on_two_instances_never_both_win() {
    let _serial = SERIAL.lock().await;
    let Some(c) = Cluster::start(
        "a_member_table_and_its_combination_held_on_two_instances_never_both_win",
        3,
    ) else {
        return;
    };
    let api = Api::new(&c.front, ADMIN);
    let mut body = restaurant_body(json!([
        {"id": "t3", "min_party": 2, "max_party": 6},
        {"id": "t4", "min_party": 2, "max_party": 6},
    ]));
    body["combinations"] =
        json!([{"id": "c34", "tables": ["t3", "t4"], "min_party": 5, "max_party": 10}]);
    let rid = api.create_restaurant(body).await.id;
    for round in 0..10usize {
        let date = date_in(10 + round as i64);
        let (a, b) = (
            api.at(&c.instances[round % 3].base),
            api.at(&c.instances[(round + 1) % 3].base),
        );
        let single = json!({"date": date, "time": "19:30", "party_size": 2, "table_id": "t3"});
        let joined =
            json!({"date": date, "time": "19:00", "party_size": 6, "combination_id": "c34"});
        let ((sa, pa), (sc, pc)) = tokio::join!(hold(&a, &rid, single), hold(&b, &rid, joined));
        let mut statuses = [sa.as_u16(), sc.as_u16()];
        statuses.sort();
        assert_eq!(statuses, [201, 409], "round {round}: {pa} / {pc}");
        let loser = if sa == StatusCode::CONFLICT { &pa } else { &pc };
        assert_eq!(loser["reason"], "table", "round {round}");
    }
}
