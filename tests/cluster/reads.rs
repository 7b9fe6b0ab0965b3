//! Store reads of the live hub do not grow with the number of instances: a change carries its
//! after-image, and every instance applies it without reading the store.
use super::*;

/// The sum of `tablecast_hub_store_reads_total` samples of one instance with this `reason`
/// (and `kind`, when given).
async fn hub_reads(base: &str, kind: Option<&str>, reason: &str) -> u64 {
    let mut labels = vec![("reason", reason)];
    labels.extend(kind.map(|k| ("kind", k)));
    let text = crate::kit::metrics::scrape(base).await;
    crate::kit::metrics::sum(&text, "tablecast_hub_store_reads_total", &labels) as u64
}

async fn total(c: &Cluster, kind: Option<&str>, reason: &str) -> u64 {
    let mut n = 0;
    for i in &c.instances {
        n += hub_reads(&i.base, kind, reason).await;
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn store_reads_per_change_do_not_grow_with_instances_and_every_watcher_sees_each_change() {
    let _serial = SERIAL.lock().await;
    let test =
        "store_reads_per_change_do_not_grow_with_instances_and_every_watcher_sees_each_change";
    let Some(c) = Cluster::start(test, 3) else {
        return;
    };
    let api = Api::new(&c.front, ADMIN);
    let tables = 8;
    let rid = api.create_restaurant(big_restaurant(tables)).await.id;
    let date = date_in(3);
    // Two watchers on every instance: one channel per instance.
    let mut watchers = Vec::new();
    for i in &c.instances {
        for _ in 0..2 {
            watchers.push(Watcher::start(&i.base, &rid, &date, 2).await);
        }
    }
    let subscribe_reads = total(&c, Some("day"), "subscribe").await;
    assert!(
        (3..=6).contains(&subscribe_reads),
        "one day read per channel to subscribe: {subscribe_reads}"
    );
    let before = total(&c, None, "change").await;
    // Holds, confirms and releases, each committed by the next instance in turn, every
    // watcher converging on the store's availability after each one.
    let mut changes = 0;
    let mut held = Vec::new();
    for t in 0..tables {
        let at = &c.instances[t % 3].base;
        let res = api
            .at(at)
            .send(
                reqwest::Method::POST,
                &format!("/v1/restaurants/{rid}/holds"),
                None,
                Some(json!({"date": date, "time": "19:00", "party_size": 2,
                            "table_id": format!("t{t:02}")})),
            )
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let v: Value = res.json().await.unwrap();
        held.push((
            v["id"].as_str().unwrap().to_owned(),
            v["token"].as_str().unwrap().to_owned(),
        ));
        changes += 1;
        let expected = api.at(at).availability(&rid, &date, 2).await;
        assert_eq!(free_at(&expected, "19:00"), (tables - t - 1) as u64);
        for w in watchers.iter_mut() {
            w.converge(&expected, Duration::from_secs(2)).await.unwrap();
        }
    }
    for (k, (id, token)) in held.iter().enumerate() {
        let api = api.at(&c.instances[(k + 1) % 3].base);
        let res = if k % 2 == 0 {
            api.delete_reservation(id, token).await
        } else {
            api.confirm(id, token).await
        };
        assert!(res.status().is_success(), "{}", res.status());
        changes += 1;
        let expected = api.availability(&rid, &date, 2).await;
        for w in watchers.iter_mut() {
            w.converge(&expected, Duration::from_secs(2)).await.unwrap();
        }
    }
    assert_eq!(changes, 2 * tables);
    let after = total(&c, None, "change").await;
    // The old design read the day on every instance for every change: 3 × 16 = 48 here. Now a
    // change reaches each instance with its image; a read happens only on a gap (a change
    // overtaking another on the bus), which sequential changes do not make.
    assert!(
        after - before <= 2,
        "{} store reads by the hub for {changes} changes on 3 instances",
        after - before
    );
    for w in &watchers {
        assert!(w.closes.is_empty(), "{:?}", w.closes);
    }
}
