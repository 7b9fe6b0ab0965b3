//! The server restarts under an open page: it reconnects, resubscribes and shows what is true now.
use crate::harness::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

const SECS: fn(u64) -> Duration = Duration::from_secs;

async fn page_slots(b: &Browser) -> BTreeMap<String, u64> {
    let v = b
        .js(
            "return [...document.querySelectorAll('[data-testid=slot]')].map(e => [e.dataset.time, Number(e.dataset.available)]);",
            vec![],
        )
        .await;
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_str().unwrap().to_owned(), p[1].as_u64().unwrap()))
        .collect()
}

fn server_slots(avail: &Value) -> BTreeMap<String, u64> {
    let now = chrono::Utc::now();
    avail["slots"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| {
            s["start"]
                .as_str()
                .unwrap()
                .parse::<chrono::DateTime<chrono::Utc>>()
                .unwrap()
                > now
        })
        .map(|s| {
            (
                s["time"].as_str().unwrap().to_owned(),
                s["available_tables"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Kills `server` under the open page `diner`, lets `meanwhile` change the store through another
/// instance on the same database while the page is away, then starts the server again on its
/// port: returns it once the page says live again.
async fn restart_under<Fut: std::future::Future<Output = ()>>(
    diner: &Browser,
    server: &mut Server,
    db: &std::path::Path,
    meanwhile: impl FnOnce(Server) -> Fut,
) -> Server {
    let port = server.port;
    server.kill();
    diner
        .wait_attr(
            "[data-testid=live-status]",
            "data-state",
            "reconnecting",
            SECS(15),
        )
        .await;
    meanwhile(Server::start(db, 0)).await;
    let again = Server::start(db, port);
    assert_eq!(again.port, port);
    diner
        .wait_attr("[data-testid=live-status]", "data-state", "live", SECS(20))
        .await;
    again
}

#[tokio::test]
async fn the_page_reconnects_after_a_server_restart_and_shows_the_state_of_the_store() {
    if require(
        Service::Chromium,
        "the_page_reconnects_after_a_server_restart",
    )
    .is_none()
    {
        return;
    }
    let _one = exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("restart.db");
    let mut first = Server::start(&db, 0);
    let (rid, _) = first
        .restaurant(paris_restaurant(
            "Le Phénix",
            json!([{"id": "t1", "max_party": 2}, {"id": "t2", "max_party": 4}]),
        ))
        .await;
    let date = date_in(1);

    let mut driver = Driver::start().await;
    let diner = driver.browser(1100, 900).await;
    diner
        .goto(&first.url(&format!("/?restaurant={rid}&date={date}&party=2")))
        .await;
    diner
        .wait_attr("[data-testid=live-status]", "data-state", "live", SECS(10))
        .await;
    diner
        .wait_attr(
            r#"[data-testid=slot][data-time="20:00"]"#,
            "data-available",
            "2",
            SECS(15),
        )
        .await;

    // While the page is away, the store changes: both tables go at 20:00.
    let (r, d) = (&rid, &date);
    let again = restart_under(&diner, &mut first, &db, |elsewhere| async move {
        let a = elsewhere.hold(r, d, "20:00", 2, None).await;
        elsewhere.confirm(&a, "Ines").await;
        elsewhere.hold(r, d, "20:00", 2, None).await;
    })
    .await;
    let truth = server_slots(&again.availability(&rid, &date, 2).await);
    assert_eq!(truth.get("20:00"), Some(&0));
    until(
        SECS(2),
        "the page to show the store's availability",
        || async {
            let shown = page_slots(&diner).await;
            (shown == truth).then_some(())
        },
    )
    .await;
    assert!(diner
        .attr(r#"[data-testid=slot][data-time="20:00"]"#, "disabled")
        .await
        .is_some());
    let stale = diner
        .js(
            "return document.querySelector('#slots').classList.contains('stale');",
            vec![],
        )
        .await;
    assert_eq!(stale, json!(false));

    // Still live: a change after the restart arrives as an update.
    again.hold(&rid, &date, "21:30", 2, Some("t1")).await;
    diner
        .wait_attr(
            r#"[data-testid=slot][data-time="21:30"]"#,
            "data-available",
            "1",
            SECS(2),
        )
        .await;

    // The server was down for a moment: the page's reconnect attempts meanwhile were refused.
    diner.finish(&["/v1/live"]).await;
}

/// The nearby times offered after a lost race follow the snapshot a reconnect brings: one filled
/// while the page was away shows taken and cannot be tapped.
#[tokio::test]
async fn nearby_times_after_a_lost_race_follow_the_snapshot_of_a_reconnect() {
    if require(Service::Chromium, "nearby_times_follow_a_reconnect").is_none() {
        return;
    }
    let _one = exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("nearby.db");
    let mut first = Server::start(&db, 0);
    let (rid, _) = first
        .restaurant(paris_restaurant(
            "L'Autre Heure",
            json!([{"id": "t1", "max_party": 2}]),
        ))
        .await;
    let date = date_in(1);
    let mut driver = Driver::start().await;
    let diner = driver.browser(1100, 900).await;
    diner.open_diner(&first, &rid, &date).await;
    let slot = r#"[data-testid=slot][data-time="19:00"]"#;
    diner.wait_attr(slot, "data-available", "1", SECS(15)).await;
    // 19:00 goes to someone else; the diner taps it anyway (as if the tap beat the update).
    first.hold(&rid, &date, "19:00", 2, Some("t1")).await;
    diner.wait_attr(slot, "data-available", "0", SECS(5)).await;
    diner
        .js(
            "document.querySelector(arguments[0]).disabled = false;",
            vec![json!(slot)],
        )
        .await;
    diner.click(slot).await;
    diner
        .wait_visible("[data-testid=alternative]", SECS(5))
        .await;
    let alternatives = diner
        .js(
            "return [...document.querySelectorAll('[data-testid=alternative]')].map(e => e.dataset.time);",
            vec![],
        )
        .await;
    let filled = alternatives[0].as_str().unwrap().to_owned();
    let button = format!(r#"[data-testid=alternative][data-time="{filled}"]"#);
    assert!(
        diner.attr(&button, "disabled").await.is_none(),
        "{filled} is offered free: {alternatives}"
    );

    // While the page is away, the nearby time goes too.
    let (r, d, t) = (&rid, &date, &filled);
    let _again = restart_under(&diner, &mut first, &db, |elsewhere| async move {
        elsewhere.hold(r, d, t, 2, None).await;
    })
    .await;
    until(
        SECS(3),
        "the nearby time shown taken after the snapshot",
        || async {
            let taken = diner.attr(&button, "disabled").await.is_some()
                && diner.text(&button).await?.contains("Taken");
            taken.then_some(())
        },
    )
    .await;

    // The lost race's 409, and the reconnect attempts while the server was down.
    diner.finish(&["409", "/v1/live"]).await;
}

/// A TCP proxy to the server that the test can stall: while stalled it still accepts and holds
/// every connection open, but passes no byte either way (a network that went silent, with no
/// FIN and no RST); once it forwards again, everything held goes through.
struct StallingProxy {
    port: u16,
    stalled: tokio::sync::watch::Sender<bool>,
}

impl StallingProxy {
    async fn start(upstream: u16) -> StallingProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (stalled, _) = tokio::sync::watch::channel(false);
        let gate = stalled.subscribe();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                else {
                    continue;
                };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(pump(cr, sw, gate.clone()));
                tokio::spawn(pump(sr, cw, gate.clone()));
            }
        });
        StallingProxy { port, stalled }
    }

    fn stall(&self, on: bool) {
        self.stalled.send_replace(on);
    }
}

/// Copies `from` to `to`, holding each chunk (and the end of the stream) while stalled.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut stalled: tokio::sync::watch::Receiver<bool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = from.read(&mut buf).await.unwrap_or(0);
        if stalled.wait_for(|s| !*s).await.is_err() {
            return;
        }
        if n == 0 || to.write_all(&buf[..n]).await.is_err() {
            let _ = to.shutdown().await;
            return;
        }
    }
}

/// The heartbeat the page is given here (production: a ping every 15 s, 10 s for the answer).
const PING_EVERY_MS: u64 = 1000;
const PONG_WITHIN_MS: u64 = 1000;

#[tokio::test]
async fn a_page_whose_connection_goes_silent_stops_saying_live_and_comes_back() {
    if require(
        Service::Chromium,
        "a_page_whose_connection_goes_silent_stops_saying_live",
    )
    .is_none()
    {
        return;
    }
    let _one = exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("silent.db"), 0);
    let (rid, _) = server
        .restaurant(paris_restaurant(
            "Le Silence",
            json!([{"id": "t1", "max_party": 2}, {"id": "t2", "max_party": 2}]),
        ))
        .await;
    let date = date_in(1);
    let proxy = StallingProxy::start(server.port).await;

    let mut driver = Driver::start().await;
    let diner = driver.browser(1100, 900).await;
    diner
        .before_each_page(&format!(
            "globalThis.tablecastHeartbeat = {{ pingEveryMs: {PING_EVERY_MS}, pongWithinMs: {PONG_WITHIN_MS} }};"
        ))
        .await;
    diner
        .goto(&format!(
            "http://127.0.0.1:{}/?restaurant={rid}&date={date}&party=2",
            proxy.port
        ))
        .await;
    let badge = "[data-testid=live-status]";
    diner.wait_attr(badge, "data-state", "live", SECS(10)).await;
    let slot = r#"[data-testid=slot][data-time="20:00"]"#;
    diner.wait_attr(slot, "data-available", "2", SECS(10)).await;

    // The network goes silent: no answer to the next ping. Within one ping interval and one
    // answer timeout (and a little slack for a busy machine) the badge stops saying Live.
    proxy.stall(true);
    let bound = Duration::from_millis(PING_EVERY_MS + PONG_WITHIN_MS) + SECS(3);
    until(bound, "the badge to leave Live", || async {
        (diner.attr(badge, "data-state").await.as_deref() != Some("live")).then_some(())
    })
    .await;
    assert_eq!(
        diner.text(&format!("{badge} .live-text")).await.as_deref(),
        Some("Reconnecting…")
    );

    // Meanwhile a table goes; once the network is back the page is live again and shows it.
    server.hold(&rid, &date, "20:00", 2, Some("t1")).await;
    proxy.stall(false);
    diner.wait_attr(badge, "data-state", "live", SECS(20)).await;
    diner.wait_attr(slot, "data-available", "1", SECS(3)).await;
    // And updates flow on the new connection.
    server.hold(&rid, &date, "20:00", 2, Some("t2")).await;
    diner.wait_attr(slot, "data-available", "0", SECS(3)).await;

    diner.finish(&["/v1/live"]).await;
}

/// A TCP proxy to the server that lets pages and requests through, but drops every live
/// socket right after its upgrade: the browser sees the socket open, then close, before any
/// frame. Counts the live sockets it dropped.
struct DroppingProxy {
    port: u16,
    dropped: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl DroppingProxy {
    async fn start(upstream: u16) -> DroppingProxy {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let dropped = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = dropped.clone();
        let (_never, gate) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            let _never = _never;
            while let Ok((mut client, _)) = listener.accept().await {
                let Ok(mut server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                else {
                    continue;
                };
                let (count, gate) = (count.clone(), gate.clone());
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    let n = client.read(&mut buf).await.unwrap_or(0);
                    if n == 0 || server.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                    if buf[..n].starts_with(b"GET /v1/live") {
                        // The upgrade's answer, then nothing: both ends are dropped.
                        let m = server.read(&mut buf).await.unwrap_or(0);
                        let _ = client.write_all(&buf[..m]).await;
                        count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        return;
                    }
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    tokio::spawn(pump(cr, sw, gate.clone()));
                    pump(sr, cw, gate).await;
                });
            }
        });
        DroppingProxy { port, dropped }
    }

    fn dropped(&self) -> usize {
        self.dropped.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[tokio::test]
async fn a_server_that_opens_the_socket_and_drops_it_at_once_is_tried_ever_more_slowly() {
    if require(
        Service::Chromium,
        "a_server_that_opens_the_socket_and_drops_it",
    )
    .is_none()
    {
        return;
    }
    let _one = exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("dropping.db"), 0);
    let (rid, _) = server
        .restaurant(paris_restaurant(
            "La Porte",
            json!([{"id": "t1", "max_party": 2}]),
        ))
        .await;
    let date = date_in(1);
    let proxy = DroppingProxy::start(server.port).await;

    let mut driver = Driver::start().await;
    let diner = driver.browser(1100, 900).await;
    diner
        .goto(&format!(
            "http://127.0.0.1:{}/?restaurant={rid}&date={date}&party=2",
            proxy.port
        ))
        .await;
    until(SECS(10), "the first live socket to be dropped", || async {
        (proxy.dropped() >= 1).then_some(())
    })
    .await;
    let first = proxy.dropped();
    // The backoff doubles its cap from 400 ms (full jitter, at least 150 ms): in 5 s the page
    // tries about 5 times. Reset on every open, it tried every 150–400 ms: about 18 times.
    tokio::time::sleep(SECS(5)).await;
    let tries = proxy.dropped() - first;
    assert!(
        (1..=9).contains(&tries),
        "{tries} live sockets in 5 s after the first drop"
    );
    assert_ne!(
        diner
            .attr("[data-testid=live-status]", "data-state")
            .await
            .as_deref(),
        Some("live")
    );
    diner.finish(&["/v1/live"]).await;
}

/// Answers the page's first two subscribes itself with the server's `503` error frame (its
/// store did not answer; the `sub` stays free), never sending them; counts what it refused and
/// what went to the server.
const REFUSE_TWO_SUBSCRIBES: &str = r#"
globalThis.tablecastFaults = { refuse: 2, refused: 0, sent: 0 };
const NativeSocket = WebSocket;
globalThis.WebSocket = class extends NativeSocket {
  send(data) {
    const f = globalThis.tablecastFaults;
    let m = null;
    try { m = JSON.parse(data); } catch { m = null; }
    if (m && m.op === "subscribe") {
      if (f.refuse > 0) {
        f.refuse -= 1;
        f.refused += 1;
        const frame = { type: "error", sub: m.sub, status: 503, title: "Service Unavailable",
                        detail: "the store could not be reached" };
        setTimeout(() => this.onmessage && this.onmessage(
          new MessageEvent("message", { data: JSON.stringify(frame) })), 10);
        return;
      }
      f.sent += 1;
    }
    super.send(data);
  }
};
"#;

#[tokio::test]
async fn a_subscription_refused_with_503_is_asked_for_again_and_goes_live() {
    if require(Service::Chromium, "a_subscription_refused_with_503").is_none() {
        return;
    }
    let _one = exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("refused.db"), 0);
    let (rid, _) = server
        .restaurant(paris_restaurant(
            "Le Retour",
            json!([{"id": "t1", "max_party": 2}, {"id": "t2", "max_party": 4}]),
        ))
        .await;
    let date = date_in(1);
    let mut driver = Driver::start().await;
    let diner = driver.browser(1100, 900).await;
    diner.before_each_page(REFUSE_TWO_SUBSCRIBES).await;
    diner
        .goto(&server.url(&format!("/?restaurant={rid}&date={date}&party=2")))
        .await;
    // Live once the subscription asked for again has its snapshot. (The pill also reads live
    // for the moment between the socket's open and the page's first subscribe: no
    // subscription is waiting then. So the wait is for the subscribe that went through.)
    until(SECS(20), "the page live on a subscription sent", || async {
        let faults = diner.js("return globalThis.tablecastFaults;", vec![]).await;
        let live = diner.attr("[data-testid=live-status]", "data-state").await;
        (faults["sent"] == 1 && live.as_deref() == Some("live")).then_some(())
    })
    .await;
    let faults = diner.js("return globalThis.tablecastFaults;", vec![]).await;
    assert_eq!(faults["refused"], 2, "{faults}");
    assert_eq!(
        faults["sent"], 1,
        "asked again once it could be served: {faults}"
    );
    // Live for real: a hold made elsewhere reaches the page as an update.
    diner
        .wait_attr(
            r#"[data-testid=slot][data-time="21:30"]"#,
            "data-available",
            "2",
            SECS(5),
        )
        .await;
    server.hold(&rid, &date, "21:30", 2, Some("t1")).await;
    diner
        .wait_attr(
            r#"[data-testid=slot][data-time="21:30"]"#,
            "data-available",
            "1",
            SECS(3),
        )
        .await;
    diner.finish(&[]).await;
}

/// Closes every socket with `4008` (too slow) right after its first snapshot, as the server
/// does to a client that cannot keep up, and counts the closes.
const SLOW_AFTER_EACH_SNAPSHOT: &str = r#"
globalThis.slowCloses = 0;
const NativeSocket = WebSocket;
globalThis.WebSocket = class extends NativeSocket {
  constructor(...args) {
    super(...args);
    this.addEventListener("message", (e) => {
      let f = null;
      try { f = JSON.parse(e.data); } catch { f = null; }
      if (!f || f.type !== "snapshot" || this.kicked) return;
      this.kicked = true;
      setTimeout(() => {
        globalThis.slowCloses += 1;
        const handler = this.pageOnClose;
        this.pageOnClose = null;
        super.onclose = null;
        try { super.close(); } catch { /* closing */ }
        if (handler) handler(new CloseEvent("close", { code: 4008, reason: "too slow" }));
      }, 0);
    });
  }
  set onclose(h) { this.pageOnClose = h; super.onclose = h; }
  get onclose() { return this.pageOnClose; }
};
"#;

#[tokio::test]
async fn a_page_closed_as_too_slow_after_each_snapshot_reconnects_ever_more_slowly() {
    if require(Service::Chromium, "a_page_closed_as_too_slow").is_none() {
        return;
    }
    let _one = exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("slow.db"), 0);
    let (rid, _) = server
        .restaurant(paris_restaurant(
            "La Lenteur",
            json!([{"id": "t1", "max_party": 2}]),
        ))
        .await;
    let date = date_in(1);
    let mut driver = Driver::start().await;
    let diner = driver.browser(1100, 900).await;
    diner.before_each_page(SLOW_AFTER_EACH_SNAPSHOT).await;
    diner
        .goto(&server.url(&format!("/?restaurant={rid}&date={date}&party=2")))
        .await;
    let closes = || async {
        diner
            .js("return globalThis.slowCloses;", vec![])
            .await
            .as_u64()
            .unwrap_or(0)
    };
    until(SECS(10), "the first close for being slow", || async {
        (closes().await >= 1).then_some(())
    })
    .await;
    let first = closes().await;
    // The backoff doubles its cap from 400 ms (full jitter, at least 150 ms): in 5 s about 5
    // tries. Reset by every snapshot, it tried every 150–400 ms: about 15, each a snapshot.
    // A measuring window, not a wait for something to happen.
    tokio::time::sleep(SECS(5)).await;
    let tries = closes().await - first;
    assert!(
        (1..=9).contains(&tries),
        "{tries} snapshots closed as too slow in 5 s after the first"
    );
    diner.finish(&[]).await;
}
