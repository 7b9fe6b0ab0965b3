//! N diners race for the last M tables at one time. Exactly M win; the losers hear 409 at once.
use super::stats::summarize;
use super::wsclient;
use super::{double_bookings, Common, Ctx, Report};
use clap::Args;
use futures_util::future::join_all;
use serde_json::json;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Args)]
pub struct Opts {
    #[command(flatten)]
    pub common: Common,
    #[arg(long, default_value_t = 1000)]
    pub diners: usize,
    /// How many tables are left (the restaurant created for the run has exactly these).
    #[arg(long, default_value_t = 1)]
    pub tables: usize,
    /// Subscribers watching the slot over WebSockets while the crowd races.
    #[arg(long, default_value_t = 0)]
    pub watchers: usize,
    #[arg(long, default_value = "19:00")]
    pub time: String,
}

/// `n` concurrent requests built by `req`; each answer's status and latency.
async fn burst<F>(n: usize, req: F) -> Vec<(u16, Duration)>
where
    F: Fn(usize) -> reqwest::RequestBuilder,
{
    let calls = (0..n).map(|i| {
        let r = req(i);
        async move {
            let t = Instant::now();
            let status = r.send().await.map(|r| r.status().as_u16()).unwrap_or(0);
            (status, t.elapsed())
        }
    });
    join_all(calls).await
}

pub async fn run(o: Opts) -> anyhow::Result<Report> {
    wsclient::raise_fd_limit();
    let ctx = Ctx::setup(o.common.clone(), o.tables, 4).await?;
    let mut report = Report::new(
        "stampede",
        format!(
            "{} diners for the last {} table(s) at {}, {} watching",
            o.diners, o.tables, o.time, o.watchers
        ),
    );
    let mut watchers = Vec::new();
    for i in 0..o.watchers {
        let addr = wsclient::resolve(ctx.url(i)).await?;
        let mut ws = wsclient::connect(addr, i).await?;
        wsclient::send(&mut ws, &json!({"op": "subscribe", "sub": "w", "restaurant_id": ctx.restaurant, "date": ctx.date, "party_size": 2})).await?;
        watchers.push(ws);
    }
    // Warm the connection pool so both bursts start from the same place.
    let base = burst(o.diners.min(64), |i| {
        ctx.http.get(format!("{}/healthz", ctx.url(i)))
    })
    .await;
    anyhow::ensure!(
        base.iter().all(|(s, _)| *s == 200),
        "the target is not healthy"
    );

    let baseline = burst(o.diners, |i| {
        ctx.http.get(format!("{}/healthz", ctx.url(i)))
    })
    .await;
    let base_summary = summarize(&baseline.iter().map(|(_, d)| *d).collect::<Vec<_>>());
    report.row("GET /healthz (baseline)", base_summary, None);

    let pb = ctx.progress(1, "stampede");
    let started = Instant::now();
    let results = burst(o.diners, |i| {
        ctx.http
            .post(format!(
                "{}/v1/restaurants/{}/holds",
                ctx.url(i),
                ctx.restaurant
            ))
            .json(&json!({"date": ctx.date, "time": o.time, "party_size": 2}))
    })
    .await;
    let elapsed = started.elapsed();
    pb.finish_and_clear();
    let winners = results.iter().filter(|(s, _)| *s == 201).count();
    let losers: Vec<Duration> = results
        .iter()
        .filter(|(s, _)| *s == 409)
        .map(|(_, d)| *d)
        .collect();
    let other = results.len() - winners - losers.len();
    let loser_summary = summarize(&losers);
    report.row(
        "hold: losers (409)",
        loser_summary,
        Some(losers.len() as f64 / elapsed.as_secs_f64()),
    );
    report.row(
        "hold: winners (201)",
        summarize(
            &results
                .iter()
                .filter(|(s, _)| *s == 201)
                .map(|(_, d)| *d)
                .collect::<Vec<_>>(),
        ),
        None,
    );
    report.fact("winners", winners);
    report.fact("losers", losers.len());
    report.fact("other answers (errors)", other);

    // Watchers must see the slot go to 0.
    if !watchers.is_empty() {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let seen = join_all(watchers.iter_mut().map(|ws| async {
            while let Some(v) = wsclient::next_json(ws, deadline).await {
                let slots = if v["type"] == "snapshot" {
                    &v["data"]["slots"]
                } else {
                    &v["slots"]
                };
                let zero = slots.as_array().is_some_and(|a| {
                    a.iter()
                        .any(|s| s["time"] == o.time.as_str() && s["available_tables"] == 0)
                });
                if zero {
                    return true;
                }
            }
            false
        }))
        .await;
        let saw = seen.iter().filter(|s| **s).count();
        report.check(
            "every watcher saw the slot taken",
            saw == seen.len(),
            format!("{saw}/{}", seen.len()),
        );
    }

    let reservations = ctx.reservations().await?;
    let held_at_time: usize = reservations
        .iter()
        .filter(|r| r["time"] == o.time.as_str() && r["status"] == "held")
        .count();
    report.check(
        "winners == tables",
        winners == o.tables,
        format!("{winners} winners for {} tables", o.tables),
    );
    report.check(
        "read back: one hold per winner",
        held_at_time == winners,
        format!("{held_at_time} held at {}", o.time),
    );
    let doubles = double_bookings(&reservations);
    report.check(
        "no double booking",
        doubles.is_empty(),
        format!("{} overlapping pairs", doubles.len()),
    );
    report.check(
        "no errors",
        other == 0,
        format!("{other} answers neither 201 nor 409"),
    );
    report.target(
        "loser p99 / healthz p99",
        loser_summary.p99_ms / base_summary.p99_ms.max(0.001),
        2.0,
        true,
    );
    Ok(report)
}
