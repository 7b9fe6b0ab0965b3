//! A realistic evening: diners search, hold, confirm or abandon, and cancel; staff seat and
//! complete. Throughput and latency per operation, then the invariant check.
use super::{double_bookings, Common, Ctx, Report};
use clap::Args;
use futures_util::future::join_all;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Args)]
pub struct Opts {
    #[command(flatten)]
    pub common: Common,
    #[arg(long, default_value_t = 100)]
    pub diners: usize,
    #[arg(long, default_value_t = 20)]
    pub tables: usize,
    #[arg(long, default_value_t = 15)]
    pub duration_secs: u64,
}

type Samples = Mutex<BTreeMap<&'static str, Vec<Duration>>>;

async fn timed(
    samples: &Samples,
    op: &'static str,
    r: reqwest::RequestBuilder,
) -> Option<(u16, Value)> {
    let t = Instant::now();
    let res = r.send().await.ok()?;
    let status = res.status().as_u16();
    let v = res.json::<Value>().await.unwrap_or(Value::Null);
    samples
        .lock()
        .expect("samples")
        .entry(op)
        .or_default()
        .push(t.elapsed());
    Some((status, v))
}

async fn diner(
    ctx: &Ctx,
    samples: &Samples,
    won: &std::sync::atomic::AtomicUsize,
    seed: u64,
    until: Instant,
) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    while Instant::now() < until {
        let party = rng.gen_range(1..=4);
        let url = ctx.url(seed as usize);
        let Some((200, avail)) = timed(
            samples,
            "search",
            ctx.http.get(format!(
                "{url}/v1/restaurants/{}/availability?date={}&party_size={party}",
                ctx.restaurant, ctx.date
            )),
        )
        .await
        else {
            continue;
        };
        let free: Vec<&Value> = avail["slots"]
            .as_array()
            .map(|a| a.iter().filter(|s| s["available_tables"] != 0).collect())
            .unwrap_or_default();
        if free.is_empty() {
            continue;
        }
        let time = free[rng.gen_range(0..free.len())]["time"].clone();
        let hold = ctx
            .http
            .post(format!("{url}/v1/restaurants/{}/holds", ctx.restaurant))
            .json(&json!({"date": ctx.date, "time": time, "party_size": party}));
        let Some((201, r)) = timed(samples, "hold", hold).await else {
            continue;
        };
        won.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (id, token) = (
            r["id"].as_str().unwrap_or_default().to_owned(),
            r["token"].as_str().unwrap_or_default().to_owned(),
        );
        if rng.gen_bool(0.25) {
            timed(
                samples,
                "release (abandon)",
                ctx.http
                    .delete(format!("{url}/v1/reservations/{id}"))
                    .bearer_auth(&token),
            )
            .await;
            continue;
        }
        let confirm = ctx
            .http
            .post(format!("{url}/v1/reservations/{id}/confirm"))
            .bearer_auth(&token)
            .json(
                &json!({"guest": {"name": format!("Diner {seed}"), "email": "diner@example.com"}}),
            );
        timed(samples, "confirm", confirm).await;
        if rng.gen_bool(0.15) {
            timed(
                samples,
                "cancel",
                ctx.http
                    .delete(format!("{url}/v1/reservations/{id}"))
                    .bearer_auth(&token),
            )
            .await;
        }
    }
}

async fn staff(ctx: &Ctx, samples: &Samples, until: Instant) {
    let url = ctx.url(0);
    while Instant::now() < until {
        let list = ctx
            .http
            .get(format!(
                "{url}/v1/restaurants/{}/reservations?date={}",
                ctx.restaurant, ctx.date
            ))
            .bearer_auth(&ctx.staff);
        let Some((200, v)) = timed(samples, "staff list", list).await else {
            continue;
        };
        for r in v["reservations"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .take(5)
        {
            let next = match r["status"].as_str() {
                Some("confirmed") => ("seat", "seated"),
                Some("seated") => ("complete", "completed"),
                _ => continue,
            };
            let patch = ctx
                .http
                .patch(format!(
                    "{url}/v1/reservations/{}",
                    r["id"].as_str().unwrap_or_default()
                ))
                .bearer_auth(&ctx.staff)
                .json(&json!({"status": next.1}));
            timed(samples, next.0, patch).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Available tables per slot implied by the reservations (every table fits parties 1–4).
fn implied(avail: &Value, tables: usize, reservations: &[Value]) -> Vec<u64> {
    let live = super::occupying(reservations);
    avail["slots"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|s| {
            let (a, b) = (s["start"].as_str(), s["end"].as_str());
            (0..tables)
                .filter(|i| {
                    let id = format!("t{i:04}");
                    !live.iter().any(|r| {
                        super::tables_of(r).contains(&id.as_str())
                            && r["start"].as_str() < b
                            && a < r["end"].as_str()
                    })
                })
                .count() as u64
        })
        .collect()
}

pub async fn run(o: Opts) -> anyhow::Result<Report> {
    let ctx = Ctx::setup(o.common.clone(), o.tables, 4).await?;
    let mut report = Report::new(
        "mixed",
        format!(
            "{} diners and 1 staff for {} s on {} tables",
            o.diners, o.duration_secs, o.tables
        ),
    );
    let samples: Samples = Mutex::new(BTreeMap::new());
    let started = Instant::now();
    let until = started + Duration::from_secs(o.duration_secs);
    let pb = ctx.progress(o.duration_secs, "evening");
    let ticker = async {
        while Instant::now() < until {
            tokio::time::sleep(Duration::from_secs(1)).await;
            pb.inc(1);
        }
    };
    let won = std::sync::atomic::AtomicUsize::new(0);
    let diners = join_all((0..o.diners).map(|i| diner(&ctx, &samples, &won, i as u64, until)));
    tokio::join!(diners, staff(&ctx, &samples, until), ticker);
    pb.finish_and_clear();
    let wall = started.elapsed().as_secs_f64();
    for (op, v) in samples.into_inner().expect("samples") {
        report.latencies(op, &v, Some(v.len() as f64 / wall));
    }
    let reservations = ctx.reservations().await?;
    report.fact("reservations written", reservations.len());
    report.fact("holds won", won.into_inner());
    let doubles = double_bookings(&reservations);
    report.check(
        "no double booking",
        doubles.is_empty(),
        format!("{} overlapping pairs", doubles.len()),
    );
    let mut mismatches = 0;
    for party in 1..=4 {
        let avail: Value = ctx
            .http
            .get(format!(
                "{}/v1/restaurants/{}/availability?date={}&party_size={party}",
                ctx.url(0),
                ctx.restaurant,
                ctx.date
            ))
            .send()
            .await?
            .json()
            .await?;
        let served: Vec<u64> = avail["slots"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|s| s["available_tables"].as_u64().unwrap_or(0))
            .collect();
        if o.common.restaurant.is_none() && served != implied(&avail, o.tables, &reservations) {
            mismatches += 1;
        }
    }
    report.check(
        "availability equals what reservations imply",
        mismatches == 0,
        format!("{mismatches} party sizes differ"),
    );
    Ok(report)
}
