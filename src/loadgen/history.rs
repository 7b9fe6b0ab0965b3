//! Cost bounded by live data: hold and availability latency on one date of a 10-table
//! restaurant, measured before and after N hold+release cycles on that same date. The history
//! the churn leaves (released holds) must not make requests slower: the ratio after ÷ before
//! is the target. Run it against a server with per-client limits off, or the churn is refused.
use super::stats::summarize;
use super::{double_bookings, Common, Ctx, Report};
use anyhow::{bail, Context};
use clap::Args;
use futures_util::future::join_all;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Args)]
pub struct Opts {
    #[command(flatten)]
    pub common: Common,
    /// Hold+release cycles between the two measurements.
    #[arg(long, default_value_t = 30_000)]
    pub cycles: usize,
    /// Samples of each measure, before and after (taken one at a time).
    #[arg(long, default_value_t = 200)]
    pub samples: usize,
    /// Concurrent clients of the churn (at most 8, so a free table always remains).
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
}

const TABLES: usize = 10;
/// Where the measured holds go: the middle of the churned day.
const MEASURED_TIME: &str = "12:00";
/// The starts of the 15-minute grid whose one-hour turn ends by midnight: 00:00 to 23:00.
const SLOTS: usize = 93;

fn grid_time(i: usize) -> String {
    let m = (i % SLOTS) * 15;
    format!("{:02}:{:02}", m / 60, m % 60)
}

/// One hold at `time` on any table that fits; `(status, id, token)`.
async fn hold(ctx: &Ctx, time: &str) -> anyhow::Result<(u16, String, String)> {
    let res = ctx
        .http
        .post(format!(
            "{}/v1/restaurants/{}/holds",
            ctx.url(0),
            ctx.restaurant
        ))
        .json(&json!({"date": ctx.date, "time": time, "party_size": 2}))
        .send()
        .await?;
    let status = res.status().as_u16();
    let v: Value = res.json().await.unwrap_or(Value::Null);
    if status == 429 {
        bail!(
            "the server refused a hold with 429 ({}): start it with per-client limits off \
             (--max-live-holds-per-client 0 --hold-rate off)",
            v["limit"]
        );
    }
    Ok((
        status,
        v["id"].as_str().unwrap_or_default().to_owned(),
        v["token"].as_str().unwrap_or_default().to_owned(),
    ))
}

async fn release(ctx: &Ctx, id: &str, token: &str) -> anyhow::Result<bool> {
    let res = ctx
        .http
        .delete(format!("{}/v1/reservations/{id}", ctx.url(0)))
        .bearer_auth(token)
        .send()
        .await?;
    Ok(res.status() == 204)
}

/// `samples` sequential holds at the measured time (each released, untimed) and `samples`
/// availability reads of the date: their latencies.
async fn measure(ctx: &Ctx, samples: usize) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    let (mut holds, mut reads) = (Vec::with_capacity(samples), Vec::with_capacity(samples));
    for _ in 0..samples {
        let t = Instant::now();
        let (status, id, token) = hold(ctx, MEASURED_TIME).await?;
        let took = t.elapsed();
        if status != 201 {
            bail!("a measured hold on a free restaurant answered {status}");
        }
        holds.push(took);
        if !release(ctx, &id, &token).await? {
            bail!("releasing a measured hold failed");
        }
        let t = Instant::now();
        let res = ctx
            .http
            .get(format!(
                "{}/v1/restaurants/{}/availability?date={}&party_size=2",
                ctx.url(0),
                ctx.restaurant,
                ctx.date
            ))
            .send()
            .await?;
        let ok = res.status() == 200;
        let _ = res.bytes().await?;
        reads.push(t.elapsed());
        if !ok {
            bail!("an availability read failed");
        }
    }
    Ok((holds, reads))
}

fn p50_ms(v: &[Duration]) -> f64 {
    summarize(v).p50_ms
}

pub async fn run(o: Opts) -> anyhow::Result<Report> {
    let concurrency = o.concurrency.clamp(1, 8);
    let ctx = Ctx::setup(o.common.clone(), TABLES, 4).await?;
    let mut report = Report::new(
        "history",
        format!(
            "hold and availability p50 on one date of a {TABLES}-table restaurant, before and \
             after {} hold+release cycles on it (concurrency {concurrency}), {} samples each",
            o.cycles, o.samples
        ),
    );
    // Warm the connection pool and the server's caches before anything is measured.
    measure(&ctx, 10).await.context("warm-up")?;
    let (holds_before, reads_before) = measure(&ctx, o.samples).await.context("before")?;

    let pb = ctx.progress(o.cycles as u64, "churn");
    let next = Arc::new(AtomicUsize::new(0));
    let cycled = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers = (0..concurrency).map(|_| {
        let (next, cycled, pb, ctx) = (next.clone(), cycled.clone(), pb.clone(), &ctx);
        async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= o.cycles {
                    return anyhow::Ok(());
                }
                let (status, id, token) = hold(ctx, &grid_time(i)).await?;
                if status == 201 && release(ctx, &id, &token).await? {
                    cycled.fetch_add(1, Ordering::Relaxed);
                }
                pb.inc(1);
            }
        }
    });
    for r in join_all(workers).await {
        r.context("churn")?;
    }
    let churn = started.elapsed();
    pb.finish_and_clear();
    let cycled = cycled.load(Ordering::Relaxed);

    let (holds_after, reads_after) = measure(&ctx, o.samples).await.context("after")?;
    report.latencies("POST hold, before", &holds_before, None);
    report.latencies("POST hold, after", &holds_after, None);
    report.latencies("GET availability, before", &reads_before, None);
    report.latencies("GET availability, after", &reads_after, None);
    report.fact("churn cycles (hold + release)", cycled);
    report.fact(
        "churn cycles per second",
        (cycled as f64 / churn.as_secs_f64()).round(),
    );
    report.check(
        "every churn cycle held and released",
        cycled == o.cycles,
        format!("{cycled}/{}", o.cycles),
    );
    let reservations = ctx.reservations().await?;
    let doubles = double_bookings(&reservations);
    report.check(
        "no double booking",
        doubles.is_empty(),
        format!(
            "{} overlapping pairs among {} reservations of the date",
            doubles.len(),
            reservations.len()
        ),
    );
    report.target(
        "hold p50 after ÷ before",
        p50_ms(&holds_after) / p50_ms(&holds_before).max(0.001),
        1.5,
        true,
    );
    report.target(
        "availability p50 after ÷ before",
        p50_ms(&reads_after) / p50_ms(&reads_before).max(0.001),
        1.5,
        true,
    );
    Ok(report)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_churn_walks_the_whole_day_grid() {
        assert_eq!(super::grid_time(0), "00:00");
        assert_eq!(super::grid_time(49), "12:15");
        assert_eq!(super::grid_time(92), "23:00");
        assert_eq!(super::grid_time(93), "00:00");
    }
}
