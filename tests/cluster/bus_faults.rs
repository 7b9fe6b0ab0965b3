//! The Redis bus between two instances when it is slow or goes silent: a subscriber on the
//! instance behind it still sees every change in about a second, not at the next reconcile
//! (turned off here, 60 s, so only the bus can carry the change).
use crate::harness::*;
use crate::kit::api::{date_in, many_tables, restaurant_body, Api};
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
    // Ready once its bus is connected and subscribed.
    let ready = format!("{}/readyz", c.instances[0].base);
    until(Duration::from_secs(10), "instance 0 ready", || {
        let ready = ready.clone();
        async move {
            let res = reqwest::get(ready).await.ok()?;
            res.status().is_success().then_some(())
        }
    })
    .await;
    let api = Api::new(&c.instances[1].base, ADMIN);
    let rid = api
        .create_restaurant(restaurant_body(many_tables(3)))
        .await
        .id;
    Some((c, proxy, api, rid))
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
