//! Live fan-out benchmark: N WebSocket subscribers on one restaurant/date, K holds; the latency of
//! each delivery from the commit time `at` to receipt, and lost deliveries — next to a baseline
//! from the same run and the same client: a minimal raw WebSocket broadcast server writing one
//! pre-encoded frame to every socket.
//!
//! `cargo bench --bench fanout -- [--subscribers N] [--changes K] [--gap-ms MS]`
use chrono::{DateTime, Utc};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{broadcast, mpsc};

use tokio_tungstenite::tungstenite::Message;

struct Opts {
    subscribers: usize,
    changes: usize,
    gap: Duration,
}

fn opts() -> Opts {
    let args: Vec<String> = std::env::args().collect();
    let get = |name: &str, default: usize| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    // `cargo bench` passes --bench; `cargo test --all-targets` does not: then run a small smoke.
    let smoke = !args.iter().any(|a| a == "--bench");
    Opts {
        subscribers: get("--subscribers", if smoke { 50 } else { 1000 }),
        changes: get("--changes", if smoke { 3 } else { 20 }),
        gap: Duration::from_millis(get("--gap-ms", if smoke { 50 } else { 250 }) as u64),
    }
}

fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain libc calls on a valid struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            // Root may raise the hard limit too; otherwise take the hard limit.
            let want = libc::rlimit {
                rlim_cur: 200_000,
                rlim_max: lim.rlim_max.max(200_000),
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) != 0 {
                lim.rlim_cur = lim.rlim_max;
                libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            }
        }
    }
}

type Socket = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// Connects from a spread of loopback source addresses so that 20,000 sockets fit.
async fn connect(server: SocketAddr, i: usize) -> Socket {
    let src = Ipv4Addr::new(127, 0, 1 + (i / 20_000) as u8, 1 + (i % 200) as u8);
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::new(src.into(), 0)).unwrap();
    sock.set_recv_buffer_size(16 * 1024).unwrap();
    let stream = sock.connect(server).await.expect("connect");
    // tungstenite 0.24 reads in 4 KiB chunks: small read buffers on both sides.
    let (ws, _) =
        tokio_tungstenite::client_async_with_config(format!("ws://{server}/v1/live"), stream, None)
            .await
            .expect("handshake");
    ws
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<i64>,
    updates: usize,
    snapshots: usize,
}

/// Reads frames until `expected` updates arrived or the deadline passed; records `at` → now.
async fn listen(
    mut ws: Socket,
    expected: usize,
    ready: mpsc::Sender<()>,
    subscribe: Option<Value>,
) -> Tally {
    let mut t = Tally::default();
    if let Some(s) = subscribe {
        ws.send(Message::Text(s.to_string())).await.unwrap();
    }
    let mut announced = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    while t.updates < expected {
        let msg = match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(m))) => m,
            _ => break,
        };
        let Message::Text(text) = msg else { continue };
        let v: Value = serde_json::from_str(&text).unwrap();
        match v["type"].as_str() {
            Some("snapshot") | Some("ready") => {
                t.snapshots += 1;
                if !announced {
                    announced = true;
                    let _ = ready.send(()).await;
                }
            }
            Some("update") => {
                let at: DateTime<Utc> = v["at"].as_str().unwrap().parse().unwrap();
                t.latencies_us
                    .push((Utc::now() - at).num_microseconds().unwrap());
                t.updates += 1;
            }
            _ => {}
        }
    }
    t
}

fn report(name: &str, n: usize, k: usize, tallies: &[Tally]) -> (f64, f64, f64, usize) {
    let mut all: Vec<i64> = tallies
        .iter()
        .flat_map(|t| t.latencies_us.iter().copied())
        .collect();
    all.sort_unstable();
    let pct = |p: f64| {
        if all.is_empty() {
            f64::NAN
        } else {
            all[((all.len() as f64 * p).ceil() as usize).clamp(1, all.len()) - 1] as f64 / 1000.0
        }
    };
    let lost = n * k - all.len();
    let resent: usize = tallies.iter().map(|t| t.snapshots.saturating_sub(1)).sum();
    let (p50, p99, max) = (pct(0.50), pct(0.99), pct(1.0));
    println!(
        "{name:<28} subscribers {n:>6}  changes {k:>3}  p50 {p50:>8.2} ms  p99 {p99:>8.2} ms  max {max:>8.2} ms  lost {lost}  snapshots resent {resent}"
    );
    (p50, p99, max, lost)
}

/// The floor: accept WebSockets and write every text frame a client sends, once encoded, to
/// every socket. Runs in its own process (`--raw-server`) so each side has its own fd budget.
async fn raw_server() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("raw server on {}", listener.local_addr().unwrap());
    let (tx, _) = broadcast::channel::<Message>(64);
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let (tx, mut rx) = (tx.clone(), tx.subscribe());
        tokio::spawn(async move {
            let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
                return;
            };
            let (mut sink, mut read) = ws.split();
            if sink
                .send(Message::Text(r#"{"type":"ready"}"#.into()))
                .await
                .is_err()
            {
                return;
            }
            loop {
                tokio::select! {
                    m = rx.recv() => match m {
                        Ok(m) => if sink.send(m).await.is_err() { return },
                        Err(_) => return,
                    },
                    r = read.next() => match r {
                        Some(Ok(m @ Message::Text(_))) => { let _ = tx.send(m); }
                        Some(Ok(_)) => {}
                        _ => return,
                    },
                }
            }
        });
    }
}

/// Starts a server process and reads the address it prints.
fn spawn_server(
    cmd: &mut std::process::Command,
    marker: &str,
) -> (std::process::Child, SocketAddr) {
    use std::io::BufRead;
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("server starts");
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("server printed its address").unwrap();
        if let Some(rest) = line.strip_prefix(marker) {
            break rest
                .trim_start_matches("http://")
                .split_whitespace()
                .next()
                .unwrap()
                .parse()
                .unwrap();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, addr)
}

async fn connect_all(
    addr: SocketAddr,
    n: usize,
    k: usize,
    sub: impl Fn(usize) -> Option<Value>,
) -> (Vec<tokio::task::JoinHandle<Tally>>, mpsc::Receiver<()>) {
    let (ready_tx, ready_rx) = mpsc::channel(n.max(1));
    let mut handles = Vec::with_capacity(n);
    for i in 0..n {
        let ws = connect(addr, i).await;
        handles.push(tokio::spawn(listen(ws, k, ready_tx.clone(), sub(i))));
    }
    (handles, ready_rx)
}

async fn wait_ready(rx: &mut mpsc::Receiver<()>, n: usize) {
    for _ in 0..n {
        rx.recv().await.expect("subscriber ready");
    }
}

async fn run_baseline(o: &Opts) -> (f64, f64, f64, usize) {
    let exe = std::env::current_exe().unwrap();
    let (mut child, addr) = spawn_server(
        std::process::Command::new(exe).arg("--raw-server"),
        "raw server on ",
    );
    let (handles, mut ready) = connect_all(addr, o.subscribers, o.changes, |_| None).await;
    wait_ready(&mut ready, o.subscribers).await;
    let mut control = connect(addr, o.subscribers + 1).await;
    let filler = "x".repeat(220);
    for _ in 0..o.changes {
        let frame = json!({"type": "update", "sub": "a", "version": 1, "cause": "held",
                           "at": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                           "slots": [{"time": "19:00", "pad": filler}]});
        control
            .send(Message::Text(frame.to_string()))
            .await
            .unwrap();
        tokio::time::sleep(o.gap).await;
    }
    let tallies = collect(handles, o.gap).await;
    let _ = child.kill();
    let _ = child.wait();
    report(
        "raw broadcast (baseline)",
        o.subscribers,
        o.changes,
        &tallies,
    )
}

async fn collect(handles: Vec<tokio::task::JoinHandle<Tally>>, gap: Duration) -> Vec<Tally> {
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        match tokio::time::timeout(gap * 20 + Duration::from_secs(10), h).await {
            Ok(Ok(t)) => out.push(t),
            _ => out.push(Tally::default()),
        }
    }
    out
}

async fn run_tablecast(o: &Opts) -> (f64, f64, f64, usize) {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("bench.db").display());
    let admin = "bench-admin";
    let (mut child, addr) = spawn_server(
        std::process::Command::new(env!("CARGO_BIN_EXE_tablecast"))
            .args(["serve", "--listen", "127.0.0.1:0", "--store", &db])
            .env("TABLECAST_ADMIN_TOKEN", admin),
        "tablecast listening on ",
    );
    let base = format!("http://{addr}");
    let http = reqwest::Client::new();
    let tables: Vec<Value> = (0..o.changes)
        .map(|i| json!({"id": format!("t{i:03}"), "max_party": 2}))
        .collect();
    let created: Value = http
        .post(format!("{base}/v1/restaurants"))
        .bearer_auth(admin)
        .json(&json!({"name": "Bench", "timezone": "UTC", "booking_horizon_days": 30,
                      "hours": [{"days": ["mon","tue","wed","thu","fri","sat","sun"], "open": "00:00", "close": "24:00"}],
                      "tables": tables}))
        .send().await.unwrap().json().await.unwrap();
    let rid = created["restaurant"]["id"].as_str().unwrap().to_owned();
    let date = (Utc::now() + chrono::Duration::days(2))
        .format("%Y-%m-%d")
        .to_string();
    let (rid2, date2) = (rid.clone(), date.clone());
    let (handles, mut ready) = connect_all(addr, o.subscribers, o.changes, move |i| {
        Some(json!({"op": "subscribe", "sub": format!("s{i}"), "restaurant_id": rid2, "date": date2, "party_size": 2}))
    })
    .await;
    wait_ready(&mut ready, o.subscribers).await;
    // Every hold takes a fresh table at 19:00, so each one moves the 19:00 count: one update each.
    for _ in 0..o.changes {
        let res = http
            .post(format!("{base}/v1/restaurants/{rid}/holds"))
            .json(&json!({"date": date, "time": "19:00", "party_size": 2}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201, "hold");
        tokio::time::sleep(o.gap).await;
    }
    let tallies = collect(handles, o.gap).await;
    let _ = child.kill();
    let _ = child.wait();
    report("tablecast /v1/live", o.subscribers, o.changes, &tallies)
}

fn main() {
    raise_fd_limit();
    if std::env::args().any(|a| a == "--raw-server") {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(raw_server());
        return;
    }
    let o = opts();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        println!("fanout: {} subscribers on one channel, {} changes {} ms apart (client and servers share this machine)",
                 o.subscribers, o.changes, o.gap.as_millis());
        let base = run_baseline(&o).await;
        let tc = run_tablecast(&o).await;
        let ratio = tc.1 / base.1;
        println!(
            "p99 ratio tablecast / baseline: {ratio:.2} (target ≤ 1.5) — {}; lost {} (target 0)",
            if ratio <= 1.5 { "meets target" } else { "MISSES target" },
            tc.3
        );
        assert_eq!(base.3 + tc.3, 0, "deliveries were lost");
    });
}
