//! kill -9 of the instance that committed a free, right after its answer: the offer it owed is
//! made by the survivors' waitlist reconcile, within its interval, exactly once.
use crate::harness::*;
use crate::kit::api::{date_in, free_at, many_tables, restaurant_body, Api};
use crate::kit::process::Sig;
use crate::waitlist_live::*;
use crate::SERIAL;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// What the survivors may take beyond their reconcile interval: a pass's reads and the offer.
const MARGIN: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_offer_lost_to_a_kill_9_right_after_the_release_is_made_once_by_the_survivors_in_time() {
    let _serial = SERIAL.lock().await;
    // Instance 0 would make its post-commit offer only after ten minutes (a hidden test-only
    // flag): killed right after its answer, it has certainly not made it.
    let Some(mut c) = Cluster::start_custom(
        "an_offer_lost_to_a_kill_9_right_after_the_release_is_made_once_by_the_survivors_in_time",
        3,
        Limits::OFF,
        |i| match i {
            0 => vec![("TABLECAST_TEST_ONLY_OFFER_DELAY_SECS", "600".to_owned())],
            _ => Vec::new(),
        },
    ) else {
        return;
    };
    let api = Api::new(&c.front, ADMIN);
    let at: Vec<Api> = c.instances.iter().map(|i| api.at(&i.base)).collect();
    let rid = api
        .create_restaurant(restaurant_body(many_tables(1)))
        .await
        .id;
    let date = date_in(9);
    let (hold_id, hold_token, _) = hold(&at[1], &rid, &date).await;
    let (e1, t1) = join(&api, &rid, &date, "First").await;
    let (e2, t2) = join(&api, &rid, &date, "Second").await;
    let mut first = EntrySub::start(&c.instances[1].base, 1, &e1, &t1).await;
    let mut second = EntrySub::start(&c.instances[2].base, 2, &e2, &t2).await;
    assert_eq!(first.snapshot["data"]["position"], 1);
    let before = [offers_made(&at[1]).await, offers_made(&at[2]).await];

    let res = at[0].delete_reservation(&hold_id, &hold_token).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let answered = Instant::now();
    c.instances[0].proc.signal(Sig::KILL);
    c.instances[0].proc.wait_exit(Duration::from_secs(5));

    let seen = first.offered(WAITLIST_RECONCILE + MARGIN + MARGIN).await;
    let latency = seen.at - answered;
    eprintln!(
        "offer made by a survivor {} ms after the killed instance's release (reconcile {:?})",
        latency.as_millis(),
        WAITLIST_RECONCILE
    );
    assert!(
        latency < WAITLIST_RECONCILE + MARGIN,
        "offer {latency:?} after the release"
    );
    let offer = seen.frame["data"]["offer"].clone();
    let offer_id = offer["reservation_id"].as_str().unwrap();

    // Every survivor's reconcile runs at least once more: none repeats the offer.
    let passes = [
        reconcile_passes(&at[1]).await,
        reconcile_passes(&at[2]).await,
    ];
    two_more_reconciles(&at[1..], &passes, WAITLIST_RECONCILE * 4 + MARGIN).await;
    let after = [offers_made(&at[1]).await, offers_made(&at[2]).await];
    assert_eq!(
        after[0] + after[1] - before[0] - before[1],
        1,
        "the survivors made exactly one offer: {before:?} → {after:?}"
    );
    let entries = queue(&at[1], &rid, &date).await;
    let got: Vec<(&str, &str, &Value)> = entries
        .iter()
        .map(|e| {
            (
                e["id"].as_str().unwrap(),
                e["status"].as_str().unwrap(),
                &e["position"],
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (e1.as_str(), "offered", &Value::Null),
            (e2.as_str(), "waiting", &json!(1)),
        ]
    );
    assert_eq!(entries[0]["offer"], offer);
    let rs = reservations(&at[1], &rid, &date).await;
    let mut got: Vec<(&str, &str)> = rs
        .iter()
        .map(|r| (r["id"].as_str().unwrap(), r["status"].as_str().unwrap()))
        .collect();
    got.sort();
    let mut want = vec![(hold_id.as_str(), "released"), (offer_id, "held")];
    want.sort();
    assert_eq!(got, want);
    assert_eq!(
        free_at(&at[2].availability(&rid, &date, 2).await, "19:00"),
        0
    );
    first.drain();
    second.drain();
    assert_eq!((first.offers(), second.offers()), (1, 0));
}
