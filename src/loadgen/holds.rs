//! Throughput: successful holds per second on distinct tables while subscribers watch, next to
//! `GET /healthz` requests per second at the same concurrency.
use super::wsclient;
use super::{double_bookings, Common, Ctx, Report};
use clap::Args;
use futures_util::future::join_all;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Args)]
pub struct Opts {
    #[command(flatten)]
    pub common: Common,
    #[arg(long, default_value_t = 2000)]
    pub holds: usize,
    #[arg(long, default_value_t = 1000)]
    pub watchers: usize,
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
}

const TABLES: usize = 100;
/// `/healthz` requests of the baseline per hold of the measured run.
const BASELINE_PER_HOLD: usize = 10;

/// `total` requests by `concurrency` workers; each one's outcome and latency, and the wall time.
async fn closed_loop<F, Fut, T>(
    total: usize,
    concurrency: usize,
    call: F,
) -> (Vec<(T, Duration)>, Duration)
where
    F: Fn(usize) -> Fut + Sync,
    Fut: std::future::Future<Output = T>,
{
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers = (0..concurrency).map(|_| {
        let next = next.clone();
        let call = &call;
        async move {
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return out;
                }
                let t = Instant::now();
                let ok = call(i).await;
                out.push((ok, t.elapsed()));
            }
        }
    });
    let all: Vec<(T, Duration)> = join_all(workers).await.into_iter().flatten().collect();
    (all, started.elapsed())
}

pub async fn run(o: Opts) -> anyhow::Result<Report> {
    wsclient::raise_fd_limit();
    // Distinct (table, hour) pairs never collide: 100 tables × 24 one-hour turns.
    let holds = o.holds.min(TABLES * 24);
    let ctx = Ctx::setup(o.common.clone(), TABLES, 2).await?;
    let mut report = Report::new(
        "holds",
        format!(
            "{holds} holds on distinct tables, concurrency {}, {} subscribers watching",
            o.concurrency, o.watchers
        ),
    );
    let mut watchers = Vec::new();
    let pb = ctx.progress(o.watchers as u64, "watchers");
    for i in 0..o.watchers {
        let addr = wsclient::resolve(ctx.url(i)).await?;
        let mut ws = wsclient::connect(addr, i).await?;
        let sub = json!({"op": "subscribe", "sub": "w", "restaurant_id": ctx.restaurant, "date": ctx.date, "party_size": 2});
        wsclient::subscribe(&mut ws, &sub).await?;
        watchers.push(ws);
        pb.inc(1);
    }
    pb.finish_and_clear();
    // Watchers read everything they are sent, as live clients do.
    let readers: Vec<_> = watchers
        .into_iter()
        .map(|mut ws| {
            tokio::spawn(async move {
                let mut frames = 0usize;
                let end = tokio::time::Instant::now() + Duration::from_secs(600);
                while wsclient::next_text(&mut ws, end).await.is_some() {
                    frames += 1;
                }
                frames
            })
        })
        .collect();

    // Ten times as many: /healthz is that much faster, and a run of a few tens of
    // milliseconds says more about the scheduler than about the server.
    let (base, base_wall) = closed_loop(holds * BASELINE_PER_HOLD, o.concurrency, |i| {
        let r = ctx.http.get(format!("{}/healthz", ctx.url(i)));
        async move { r.send().await.is_ok_and(|r| r.status() == 200) }
    })
    .await;
    let base_rate = base.iter().filter(|(ok, _)| *ok).count() as f64 / base_wall.as_secs_f64();
    report.latencies(
        "GET /healthz (baseline)",
        &base.iter().map(|(_, d)| *d).collect::<Vec<_>>(),
        Some(base_rate),
    );

    let pb = ctx.progress(holds as u64, "holds");
    let (done, wall) = closed_loop(holds, o.concurrency, |i| {
        let body = json!({"date": ctx.date, "time": format!("{:02}:00", i / TABLES),
                          "party_size": 2, "table_id": format!("t{:04}", i % TABLES)});
        let r = ctx
            .http
            .post(format!(
                "{}/v1/restaurants/{}/holds",
                ctx.url(i),
                ctx.restaurant
            ))
            .json(&body);
        let pb = pb.clone();
        async move {
            let outcome = match r.send().await {
                Ok(res) => Ok(res.status().as_u16()),
                Err(e) => Err(transport_error(&e)),
            };
            pb.inc(1);
            outcome
        }
    })
    .await;
    pb.finish_and_clear();
    let won = done.iter().filter(|(o, _)| *o == Ok(201)).count();
    let rate = won as f64 / wall.as_secs_f64();
    report.latencies(
        "POST holds (201)",
        &done.iter().map(|(_, d)| *d).collect::<Vec<_>>(),
        Some(rate),
    );
    for r in &readers {
        r.abort();
    }
    report.fact("successful holds", won);
    report.check(
        "every hold on a free table succeeded",
        won == holds,
        format!("{won}/{holds}{}", others(done.iter().map(|(o, _)| o))),
    );
    // Holds whose start already passed today would be refused; the date is two days ahead.
    let reservations = ctx.reservations().await?;
    let doubles = double_bookings(&reservations);
    report.check(
        "no double booking",
        doubles.is_empty(),
        format!("{} overlapping pairs", doubles.len()),
    );
    report.target(
        "holds/s ÷ healthz req/s",
        rate / base_rate.max(0.001),
        0.25,
        false,
    );
    Ok(report)
}

/// What a request that got no answer met, in a few words: the error's innermost cause (for
/// example "Connection reset by peer (os error 104)").
fn transport_error(e: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    cause.to_string()
}

/// The outcomes other than `201`, counted: "; the others: 1 × 408, 2 × Connection reset by
/// peer (os error 104)", or nothing when every hold got its `201`.
fn others<'a>(outcomes: impl Iterator<Item = &'a Result<u16, String>>) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for o in outcomes {
        match o {
            Ok(201) => {}
            Ok(status) => *counts.entry(status.to_string()).or_default() += 1,
            Err(e) => *counts.entry(e.clone()).or_default() += 1,
        }
    }
    if counts.is_empty() {
        return String::new();
    }
    let list: Vec<String> = counts.iter().map(|(o, n)| format!("{n} × {o}")).collect();
    format!("; the others: {}", list.join(", "))
}

#[cfg(test)]
mod tests {
    use super::others;

    #[test]
    fn the_outcomes_other_than_201_are_counted_by_status_or_error() {
        let outcomes = [
            Ok(201),
            Ok(408),
            Err("Connection reset by peer (os error 104)".to_string()),
            Ok(201),
            Ok(408),
        ];
        assert_eq!(
            others(outcomes.iter()),
            "; the others: 2 × 408, 1 × Connection reset by peer (os error 104)"
        );
        assert_eq!(others([Ok(201), Ok(201)].iter()), "");
    }
}
