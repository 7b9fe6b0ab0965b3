//! What the waitlist cluster tests share: joins through the front, an entry's live subscriber
//! on one chosen instance that timestamps every frame as it arrives, and read-backs.
use crate::harness::ADMIN;
use crate::kit::api::Api;
use crate::kit::ws::{Got, Ws};
use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Staff's view of a date's queue, in queue order.
pub async fn queue(api: &Api, rid: &str, date: &str) -> Vec<Value> {
    let res = api
        .send(
            Method::GET,
            &format!("/v1/restaurants/{rid}/waitlist?date={date}"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    body["entries"].as_array().unwrap().clone()
}

/// Every reservation of a date, in every status.
pub async fn reservations(api: &Api, rid: &str, date: &str) -> Vec<Value> {
    api.staff_list(rid, ADMIN, date).await["reservations"]
        .as_array()
        .unwrap()
        .clone()
}

/// One reservation as the admin reads it.
pub async fn reservation(api: &Api, id: &str) -> Value {
    let res = api.get_reservation(id, ADMIN).await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

/// A hold of `rid`'s 19:00 for two: its id and token.
pub async fn hold(api: &Api, rid: &str, date: &str) -> (String, String, Value) {
    let res = api.hold(rid, date, "19:00", 2).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let v: Value = res.json().await.unwrap();
    (
        v["id"].as_str().unwrap().to_owned(),
        v["token"].as_str().unwrap().to_owned(),
        v,
    )
}

/// Joins the queue for 19:00 exactly, party of two: the entry's id and token.
pub async fn join(api: &Api, rid: &str, date: &str, name: &str) -> (String, String) {
    let res = api
        .send(
            Method::POST,
            &format!("/v1/restaurants/{rid}/waitlist"),
            None,
            Some(
                json!({"date": date, "party_size": 2, "from": "19:00", "to": "19:00",
                        "guest": {"name": name}}),
            ),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let v: Value = res.json().await.unwrap();
    (
        v["id"].as_str().unwrap().to_owned(),
        v["token"].as_str().unwrap().to_owned(),
    )
}

/// A frame and when it arrived.
#[derive(Debug, Clone)]
pub struct Seen {
    pub at: Instant,
    pub utc: DateTime<Utc>,
    pub frame: Value,
}

impl Seen {
    pub fn is_offer(&self) -> bool {
        self.frame["type"] == "update" && self.frame["data"]["status"] == "offered"
    }
}

/// An entry's `waitlist` subscription on one instance (not through nginx). A task reads the
/// socket all along and stamps each frame on arrival, so a late look never inflates a latency.
pub struct EntrySub {
    pub id: String,
    pub instance: usize,
    pub snapshot: Value,
    pub seen: Vec<Seen>,
    rx: mpsc::UnboundedReceiver<Seen>,
    reader: tokio::task::JoinHandle<()>,
}

impl EntrySub {
    pub async fn start(base: &str, instance: usize, id: &str, token: &str) -> EntrySub {
        let mut ws = Ws::connect(base).await;
        ws.send(json!({"op": "subscribe", "sub": "w", "view": "waitlist",
                       "entry_id": id, "token": token}))
            .await;
        let snapshot = ws.frame().await;
        assert_eq!(snapshot["type"], "snapshot", "{snapshot}");
        let (tx, rx) = mpsc::unbounded_channel();
        let reader = tokio::spawn(async move {
            loop {
                match ws.next(Duration::from_secs(3600)).await {
                    Got::Frame(frame) => {
                        let seen = Seen {
                            at: Instant::now(),
                            utc: Utc::now(),
                            frame,
                        };
                        if tx.send(seen).is_err() {
                            return;
                        }
                    }
                    Got::Timeout => {}
                    Got::Closed(_) => return,
                }
            }
        });
        EntrySub {
            id: id.to_owned(),
            instance,
            snapshot,
            seen: Vec::new(),
            rx,
            reader,
        }
    }

    /// The first `offered` update, failing the test when none arrived `within`.
    pub async fn offered(&mut self, within: Duration) -> Seen {
        if let Some(s) = self.seen.iter().find(|s| s.is_offer()) {
            return s.clone();
        }
        let end = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(end, self.rx.recv()).await {
                Ok(Some(s)) => {
                    self.seen.push(s.clone());
                    if s.is_offer() {
                        return s;
                    }
                }
                Ok(None) => panic!("entry {}: socket closed before an offer", self.id),
                Err(_) => panic!(
                    "entry {} (socket on instance {}): no offer within {within:?}; saw {:?}",
                    self.id,
                    self.instance,
                    self.seen.iter().map(|s| &s.frame).collect::<Vec<_>>()
                ),
            }
        }
    }

    /// Takes in whatever arrived so far.
    pub fn drain(&mut self) {
        while let Ok(s) = self.rx.try_recv() {
            self.seen.push(s);
        }
    }

    /// `offered` updates received so far (after [`EntrySub::drain`]).
    pub fn offers(&self) -> usize {
        self.seen.iter().filter(|s| s.is_offer()).count()
    }
}

impl Drop for EntrySub {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Waits until every instance of `apis` has completed at least two more waitlist reconcile
/// passes than `before` (its count at the start): one may have been under way already.
pub async fn two_more_reconciles(apis: &[Api], before: &[u64], within: Duration) {
    for (api, from) in apis.iter().zip(before) {
        crate::kit::wait::until(within, "two more waitlist reconcile passes", || async {
            (reconcile_passes(api).await >= from + 2).then_some(())
        })
        .await;
    }
}

/// The waitlist reconcile passes an instance completed (the metric must be there).
pub async fn reconcile_passes(api: &Api) -> u64 {
    let text = crate::kit::metrics::scrape(&api.base).await;
    assert!(
        text.contains("tablecast_waitlist_reconcile_passes_total"),
        "the reconcile metric is exported"
    );
    crate::kit::metrics::sum(&text, "tablecast_waitlist_reconcile_passes_total", &[]) as u64
}

/// `tablecast_holds_total{outcome="offered"}` of one instance: the offers it made.
pub async fn offers_made(api: &Api) -> u64 {
    let text = crate::kit::metrics::scrape(&api.base).await;
    crate::kit::metrics::sum(&text, "tablecast_holds_total", &[("outcome", "offered")]) as u64
}
