//! The Redis bus between two instances when it is slow or goes silent: a subscriber on the
//! instance behind it still sees every change in about a second, not at the next reconcile
//! (turned off here, 60 s, so only the bus can carry the change).
use crate::harness::*;
use crate::kit::api::{date_in, many_tables, restaurant_body, Api};
use crate::kit::process::Sig;
use crate::kit::proxy::Proxy;
use crate::kit::wait::until;
use crate::{Watcher, SERIAL};
use std::time::Duration;

/// Two instances; instance 0 replaced by one that reaches Redis through a proxy that delays what
/// it sends by `delay`, with no reconcile in the test's time. The API on instance 1, and a
/// restaurant of three tables.
async fn behind_a_proxy(test: &str, delay: Duration) -> Option<(Cluster, Proxy, Api, String)> {
    let mut c = Cluster::start(test, 2)?;
    let proxy = Proxy::start(c.redis_port, delay).await;
    c.replace_instance_on_bus(0, proxy.port, &[("TABLECAST_RECONCILE_SECS", "60")]);
    ready(&c, 0).await;
    let api = Api::new(&c.instances[1].base, ADMIN);
    let rid = api
        .create_restaurant(restaurant_body(many_tables(3)))
        .await
        .id;
    Some((c, proxy, api, rid))
}

/// Waits until instance `i` is ready: its bus connected and subscribed.
async fn ready(c: &Cluster, i: usize) {
    let ready = format!("{}/readyz", c.instances[i].base);
    until(Duration::from_secs(10), "instance ready", || {
        let ready = ready.clone();
        async move {
            let res = reqwest::get(ready).await.ok()?;
            res.status().is_success().then_some(())
        }
    })
    .await;
}

/// A channel opening on an instance reads the store only once its Redis subscription is in
/// place: a hold committed elsewhere just after the subscriber's snapshot reaches it. It used to
/// read at once, and a change published before its SUBSCRIBE reached Redis (here 300 ms on the
/// way) was seen only at the reconcile.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_change_committed_while_a_channel_opens_behind_a_slow_bus_reaches_its_subscriber() {
    let _serial = SERIAL.lock().await;
    let Some((c, _proxy, api, rid)) = behind_a_proxy(
        "a_change_committed_while_a_channel_opens_behind_a_slow_bus_reaches_its_subscriber",
        Duration::from_millis(300),
    )
    .await
    else {
        return;
    };
    let date = date_in(3);
    let mut w = Watcher::start(&c.instances[0].base, &rid, &date, 2).await;
    api.held(&rid, &date, "19:00", 2).await;
    let expected = api.availability(&rid, &date, 2).await;
    w.converge(&expected, Duration::from_secs(3)).await.unwrap();
}

/// A Redis connection that goes silent (nothing forwarded, nothing closed) is found out by the
/// subscriber's own check, or by the SUBSCRIBE of a date opened meanwhile, and replaced, and its
/// channels reload: holds committed on the other instance meanwhile reach both subscribers
/// within a few seconds. It used to be waited on for
/// ever, with `/readyz` still ready, and every change reached it only at the reconcile.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redis_subscription_gone_silent_is_replaced_and_its_subscribers_catch_up() {
    let _serial = SERIAL.lock().await;
    let Some((c, proxy, api, rid)) = behind_a_proxy(
        "a_redis_subscription_gone_silent_is_replaced_and_its_subscribers_catch_up",
        Duration::ZERO,
    )
    .await
    else {
        return;
    };
    let date = date_in(4);
    let mut w = Watcher::start(&c.instances[0].base, &rid, &date, 2).await;
    proxy.silence();
    // A date opened on the silenced connection: its SUBSCRIBE gets no answer either (it used to
    // be waited on for ever, and the check never ran again).
    let other = date_in(5);
    let mut w2 = Watcher::start(&c.instances[0].base, &rid, &other, 2).await;
    api.held(&rid, &date, "19:00", 2).await;
    api.held(&rid, &other, "19:00", 2).await;
    for (w, date) in [(&mut w, &date), (&mut w2, &other)] {
        let expected = api.availability(&rid, date, 2).await;
        w.converge(&expected, Duration::from_secs(12))
            .await
            .unwrap();
    }
}

/// A draining instance sends what it published before it exits: holds made on it just before its
/// SIGTERM, whose publishes still wait their turn for a slow Redis (400 ms on the way here),
/// reach a subscriber on the other instance (no reconcile in the test's time) within a few
/// seconds. They used to go with the process's queue, and reached others only at their
/// reconcile.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn changes_a_draining_instance_published_reach_the_others_before_it_exits() {
    let _serial = SERIAL.lock().await;
    let Some((mut c, _proxy, api, rid)) = behind_a_proxy(
        "changes_a_draining_instance_published_reach_the_others_before_it_exits",
        Duration::from_millis(400),
    )
    .await
    else {
        return;
    };
    // The subscriber's instance, too, learns of changes only from the bus.
    let redis = c.redis_port;
    c.replace_instance_on_bus(1, redis, &[("TABLECAST_RECONCILE_SECS", "60")]);
    ready(&c, 1).await;
    let api = api.at(&c.instances[1].base);
    let date = date_in(6);
    let mut w = Watcher::start(&c.instances[1].base, &rid, &date, 2).await;
    let draining = api.at(&c.instances[0].base);
    for t in ["18:00", "19:00", "20:00"] {
        draining.held(&rid, &date, t, 2).await;
    }
    c.instances[0].proc.signal(Sig::TERM);
    let expected = api.availability(&rid, &date, 2).await;
    w.converge(&expected, Duration::from_secs(6)).await.unwrap();
    assert!(
        c.instances[0]
            .proc
            .wait_exit(Duration::from_secs(15))
            .success(),
        "the drained instance exits 0"
    );
}
