//! N subscribers on one restaurant/date, K changes: delivery latency from the commit time `at`
//! to receipt, lost deliveries, snapshots resent, memory per connection — next to the raw
//! broadcast baseline and the Node `ws` one (benches/node/broadcast.js, same protocol), both
//! driven by the same client.
use super::wsclient::{self, Socket};
use super::{Common, Ctx, Report};
use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::Args;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;

#[derive(Debug, Clone, Args)]
pub struct Opts {
    #[command(flatten)]
    pub common: Common,
    #[arg(long, default_value_t = 1000)]
    pub subscribers: usize,
    #[arg(long, default_value_t = 20)]
    pub changes: usize,
    /// Pause between changes.
    #[arg(long, default_value_t = 250)]
    pub gap_ms: u64,
    /// The server's PID, to report its memory per idle connection.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Also measure the raw broadcast baseline (a `tablecast loadgen raw-server` process).
    #[arg(long)]
    pub baseline: bool,
    /// Where the changes (holds) are made; default: the --url targets in turn.
    #[arg(long)]
    pub change_url: Option<String>,
    /// The tablecast binary that serves the baseline (default: this one).
    #[arg(long, hide = true)]
    pub raw_server_bin: Option<std::path::PathBuf>,
    /// Also measure the Node `ws` broadcast baseline: this script (benches/node/broadcast.js,
    /// its dependencies installed with `npm ci --prefix benches/node`), run by `--node-bin`.
    #[arg(long, value_name = "BROADCAST_JS")]
    pub node_baseline: Option<PathBuf>,
    /// The Node.js binary for --node-baseline.
    #[arg(long, default_value = "node")]
    pub node_bin: PathBuf,
}

const NODE_MARKER: &str = "node ws server on ";

/// Fails before any crowd connects, saying what is missing, when the Node baseline cannot run.
fn check_node_baseline(node: &Path, script: &Path) -> anyhow::Result<()> {
    anyhow::ensure!(
        script.is_file(),
        "Node baseline: {} is not a file",
        script.display()
    );
    let dir = script.parent().unwrap_or(Path::new("."));
    let ws = dir.join("node_modules/ws/package.json");
    anyhow::ensure!(
        ws.is_file(),
        "Node baseline: the npm package ws is not installed ({} is missing): run `npm ci --prefix {}`",
        ws.display(),
        dir.display()
    );
    match std::process::Command::new(node).arg("--version").output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => anyhow::bail!(
            "Node baseline: `{} --version` failed ({})",
            node.display(),
            out.status
        ),
        Err(e) => anyhow::bail!(
            "Node baseline: cannot run `{}` ({e}): install Node.js (20) or pass --node-bin",
            node.display()
        ),
    }
}

#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    updates: usize,
    snapshots: usize,
    /// The most slots one update carried.
    slots: usize,
}

/// What a subscriber reads of a frame: its type, its `at` and how many slots it carries. The
/// rest is skipped without being built (see `wsclient::next_text`); the same for every server.
#[derive(serde::Deserialize)]
struct Frame<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<&'a str>,
    #[serde(borrow)]
    at: Option<&'a str>,
    slots: Option<Vec<serde::de::IgnoredAny>>,
}

async fn listen(
    mut ws: Socket,
    expected: usize,
    ready: mpsc::Sender<()>,
    subscribe: Option<Value>,
    give_up: tokio::time::Instant,
) -> Tally {
    let mut t = Tally::default();
    if let Some(s) = subscribe {
        if wsclient::send(&mut ws, &s).await.is_err() {
            return t;
        }
    }
    let mut announced = false;
    while t.updates < expected {
        let Some(text) = wsclient::next_text(&mut ws, give_up).await else {
            break;
        };
        let Ok(v) = serde_json::from_str::<Frame>(&text) else {
            continue;
        };
        match v.kind {
            Some("snapshot") | Some("ready") => {
                t.snapshots += 1;
                if !announced {
                    announced = true;
                    let _ = ready.send(()).await;
                }
            }
            Some("update") => {
                if let Some(at) = v.at.and_then(|a| a.parse::<DateTime<Utc>>().ok()) {
                    t.latencies
                        .push((Utc::now() - at).to_std().unwrap_or_default());
                }
                t.updates += 1;
                t.slots = t.slots.max(v.slots.map_or(0, |s| s.len()));
            }
            _ => {}
        }
    }
    t
}

struct Crowd {
    handles: Vec<tokio::task::JoinHandle<Tally>>,
}

async fn gather(
    ctx: &Ctx,
    addrs: &[SocketAddr],
    n: usize,
    k: usize,
    give_up: tokio::time::Instant,
    sub: impl Fn(usize) -> Option<Value>,
) -> anyhow::Result<Crowd> {
    let (ready_tx, mut ready_rx) = mpsc::channel(n.max(1));
    let pb = ctx.progress(n as u64, "connecting");
    let mut handles = Vec::with_capacity(n);
    for i in 0..n {
        let ws = wsclient::connect(addrs[i % addrs.len()], i).await?;
        handles.push(tokio::spawn(listen(
            ws,
            k,
            ready_tx.clone(),
            sub(i),
            give_up,
        )));
        pb.inc(1);
    }
    pb.finish_and_clear();
    for _ in 0..n {
        tokio::time::timeout_at(give_up, ready_rx.recv())
            .await
            .map_err(|_| anyhow::anyhow!("subscribers did not all get their snapshot"))?;
    }
    Ok(Crowd { handles })
}

async fn finish(crowd: Crowd, give_up: tokio::time::Instant) -> Vec<Tally> {
    let mut out = Vec::new();
    for h in crowd.handles {
        out.push(
            tokio::time::timeout_at(give_up, h)
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default(),
        );
    }
    out
}

fn record(report: &mut Report, name: &str, n: usize, k: usize, tallies: &[Tally]) -> (f64, usize) {
    let all: Vec<Duration> = tallies
        .iter()
        .flat_map(|t| t.latencies.iter().copied())
        .collect();
    let s = report.latencies(name, &all, None);
    let lost = (n * k).saturating_sub(tallies.iter().map(|t| t.updates).sum::<usize>());
    let resent: usize = tallies.iter().map(|t| t.snapshots.saturating_sub(1)).sum();
    report.fact(&format!("{name}: lost deliveries"), lost);
    report.fact(&format!("{name}: snapshots resent"), resent);
    (s.p99_ms, lost)
}

/// The date's slots (party of 2) that a hold at 19:00 moves: every slot whose seating overlaps
/// the 19:00 one's, read from tablecast's availability.
async fn slots_moved_at_19(ctx: &Ctx) -> anyhow::Result<Value> {
    let url = format!(
        "{}/v1/restaurants/{}/availability?date={}&party_size=2",
        ctx.url(0),
        ctx.restaurant,
        ctx.date
    );
    let res = ctx.http.get(url).send().await?;
    anyhow::ensure!(
        res.status() == 200,
        "availability answered {}",
        res.status()
    );
    let body: Value = res.json().await?;
    let slots = body["slots"]
        .as_array()
        .context("availability has no slots")?;
    let window = |s: &Value| -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        Some((
            s["start"].as_str()?.parse().ok()?,
            s["end"].as_str()?.parse().ok()?,
        ))
    };
    let (start, end) = slots
        .iter()
        .find(|s| s["time"] == "19:00")
        .and_then(window)
        .context("availability has no 19:00 slot")?;
    let moved: Vec<Value> = slots
        .iter()
        .filter(|s| window(s).is_some_and(|(a, b)| a < end && b > start))
        .cloned()
        .collect();
    Ok(Value::from(moved))
}

/// Reports a server's resident memory growth per connection, from `before` to now.
fn rss_per_connection(report: &mut Report, name: &str, pid: u32, before: Option<u64>, n: usize) {
    if let (Some(before), Some(after)) = (before, wsclient::rss_kib(pid)) {
        let per = after.saturating_sub(before) as f64 / n.max(1) as f64;
        report.fact(
            &format!("{name}: RSS per idle connection (KiB)"),
            (per * 10.0).round() / 10.0,
        );
    }
}

/// What each baseline is asked to do: N listeners, K updates carrying `slots`, `gap` apart.
struct Plan {
    n: usize,
    k: usize,
    gap: Duration,
    slots: Value,
}

/// A broadcast baseline (raw or Node, process `pid`) at `addr`: the plan's listeners, then its
/// timestamped updates sent through one more socket, which the server writes to every socket.
/// Its p99 in ms.
async fn broadcast(
    ctx: &Ctx,
    report: &mut Report,
    name: &str,
    (addr, pid): (SocketAddr, u32),
    plan: &Plan,
    deadline: tokio::time::Instant,
) -> anyhow::Result<f64> {
    let Plan { n, k, gap, slots } = plan;
    let (n, k) = (*n, *k);
    let before = wsclient::rss_kib(pid);
    let crowd = gather(ctx, &[addr], n, k, deadline, |_| None).await?;
    rss_per_connection(report, name, pid, before, n);
    let mut control = wsclient::connect(addr, n + 1).await?;
    for _ in 0..k {
        let frame = json!({"type": "update", "sub": "s", "version": 1, "cause": "held",
                           "at": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                           "slots": slots});
        wsclient::send(&mut control, &frame).await?;
        tokio::time::sleep(*gap).await;
    }
    let tallies = finish(crowd, deadline).await;
    Ok(record(report, name, n, k, &tallies).0)
}

pub async fn run(o: Opts) -> anyhow::Result<Report> {
    wsclient::raise_fd_limit();
    let (n, k) = (o.subscribers, o.changes);
    let gap = Duration::from_millis(o.gap_ms);
    if let Some(script) = &o.node_baseline {
        check_node_baseline(&o.node_bin, script)?;
    }
    let ctx = Ctx::setup(o.common.clone(), k.max(1), 2).await?;
    let mut report = Report::new(
        "fanout",
        format!(
            "{n} subscribers on one restaurant/date, {k} changes {} ms apart, targets {:?}",
            o.gap_ms, ctx.common.urls
        ),
    );
    let give_up = || tokio::time::Instant::now() + gap * (k as u32 + 20) + Duration::from_secs(60);

    // The baselines broadcast what tablecast will send for each change: an update carrying the
    // slots a 19:00 hold moves, as they stand now. The same bytes to write, frame and parse.
    let plan = Plan {
        n,
        k,
        gap,
        slots: slots_moved_at_19(&ctx).await?,
    };
    let raw_p99 = if o.baseline {
        let program = match &o.raw_server_bin {
            Some(p) => p.clone(),
            None => std::env::current_exe()?,
        };
        let raw = super::raw::spawn(&program, &["loadgen", "raw-server"], &[], "raw server on ")?;
        let name = "raw broadcast (baseline)";
        let server = (raw.addr, raw.pid());
        Some(broadcast(&ctx, &mut report, name, server, &plan, give_up()).await?)
    } else {
        None
    };
    let node_p99 = if let Some(script) = &o.node_baseline {
        let script = script
            .to_str()
            .context("the --node-baseline path is not UTF-8")?;
        let node =
            super::raw::spawn(&o.node_bin, &[script], &[], NODE_MARKER).with_context(|| {
                format!(
                    "Node baseline: starting `{} {script}`",
                    o.node_bin.display()
                )
            })?;
        let name = "node ws broadcast (baseline)";
        let server = (node.addr, node.pid());
        let p99 = broadcast(&ctx, &mut report, name, server, &plan, give_up()).await?;
        if let Some(raw) = raw_p99 {
            report.fact(
                "node ws p99 / raw broadcast p99",
                (p99 / raw.max(0.001) * 100.0).round() / 100.0,
            );
        }
        Some(p99)
    } else {
        None
    };

    let addrs: Vec<SocketAddr> = {
        let mut v = Vec::new();
        for u in &ctx.common.urls {
            v.push(wsclient::resolve(u).await?);
        }
        v
    };
    let rss_before = o.server_pid.and_then(wsclient::rss_kib);
    let (rid, date) = (ctx.restaurant.clone(), ctx.date.clone());
    let deadline = give_up();
    let crowd = gather(&ctx, &addrs, n, k, deadline, move |i| {
        Some(json!({"op": "subscribe", "sub": format!("s{i}"), "restaurant_id": rid, "date": date, "party_size": 2}))
    })
    .await?;
    if let (Some(before), Some(after)) = (rss_before, o.server_pid.and_then(wsclient::rss_kib)) {
        let per = after.saturating_sub(before) as f64 / n.max(1) as f64;
        report.fact(
            "server RSS per idle connection (KiB)",
            (per * 10.0).round() / 10.0,
        );
        report.target("server RSS per idle connection (KiB)", per, 12.0, true);
    }
    // Each hold takes a fresh table at 19:00: it moves the 19:00 count, one update each.
    let pb = ctx.progress(k as u64, "changes");
    for i in 0..k {
        let res = ctx
            .http
            .post(format!("{}/v1/restaurants/{}/holds", o.change_url.as_deref().unwrap_or(ctx.url(i)), ctx.restaurant))
            .json(&json!({"date": ctx.date, "time": "19:00", "party_size": 2, "table_id": format!("t{i:04}")}))
            .send()
            .await?;
        anyhow::ensure!(
            res.status() == 201,
            "a change (hold) answered {}",
            res.status()
        );
        pb.inc(1);
        tokio::time::sleep(gap).await;
    }
    pb.finish_and_clear();
    let tallies = finish(crowd, deadline).await;
    let (p99, lost) = record(&mut report, "tablecast /v1/live", n, k, &tallies);
    report.check(
        "no lost deliveries",
        lost == 0,
        format!("{lost} of {} lost", n * k),
    );
    if o.baseline || o.node_baseline.is_some() {
        // The baselines wrote what tablecast wrote: as many slots per update.
        let sent = tallies.iter().map(|t| t.slots).max().unwrap_or(0);
        let theirs = plan.slots.as_array().map_or(0, Vec::len);
        report.check(
            "the baselines' updates carry the slots tablecast's do",
            sent == theirs,
            format!("{theirs} slots in theirs, {sent} in tablecast's"),
        );
    }
    if let Some(base) = raw_p99 {
        report.target(
            "delivery p99 / raw broadcast p99",
            p99 / base.max(0.001),
            1.2,
            true,
        );
    }
    if let Some(base) = node_p99 {
        // Ahead of Node `ws`: tablecast's p99 at most the Node baseline's.
        report.target(
            "delivery p99 / node ws p99",
            p99 / base.max(0.001),
            1.0,
            true,
        );
    }
    Ok(report)
}
