//! N diners race for the last M tables at one time. Exactly M win; the losers hear 409 at once.
//! `--combination ID` races a combination against its member tables; `--paced` races into one
//! paced window with tables to spare, so pacing decides.
use super::wsclient;
use super::{double_bookings, pacing_overruns, Common, Ctx, Report};
use anyhow::Context;
use clap::Args;
use futures_util::future::join_all;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Args)]
pub struct Opts {
    #[command(flatten)]
    pub common: Common,
    #[arg(long, default_value_t = 1000)]
    pub diners: usize,
    /// How many tables are left (the restaurant created for the run has exactly these).
    /// Default: 1; 2 with `--combination`; 30 with `--paced`.
    #[arg(long)]
    pub tables: Option<usize>,
    /// Subscribers watching the slot over WebSockets while the crowd races.
    #[arg(long, default_value_t = 0)]
    pub watchers: usize,
    #[arg(long, default_value = "19:00")]
    pub time: String,
    /// Party size of each diner (of those holding a single table, with `--combination`).
    #[arg(long, default_value_t = 2)]
    pub party: u32,
    /// Race for the combination ID: half the diners hold it by `combination_id`, the other half
    /// hold its member tables one by one; either the combination or its tables win, never
    /// both. The restaurant created for the run joins all its tables (2–6) into it.
    #[arg(long, value_name = "ID", conflicts_with = "paced")]
    pub combination: Option<String>,
    /// Race into one paced window: every diner asks for any table at `--time`, with tables to
    /// spare, so the window's pacing limit decides who wins. The restaurant created for the
    /// run paces 15-minute windows at `--max-covers`.
    #[arg(long)]
    pub paced: bool,
    /// Covers per window of the restaurant created for `--paced`.
    #[arg(long, default_value_t = 10)]
    pub max_covers: u32,
}

/// One hold's answer: status, latency (to the response head), and a 409's `reason`.
struct Answer {
    status: u16,
    took: Duration,
    reason: Option<String>,
}

/// `n` concurrent requests built by `req`; each answer's status, latency and 409 reason.
async fn burst<F>(n: usize, req: F) -> Vec<Answer>
where
    F: Fn(usize) -> reqwest::RequestBuilder,
{
    let calls = (0..n).map(|i| {
        let r = req(i);
        async move {
            let t = Instant::now();
            let res = r.send().await;
            let took = t.elapsed();
            let (status, reason) = match res {
                Ok(res) if res.status() == 409 => {
                    let v: Value = res.json().await.unwrap_or(Value::Null);
                    (409, v["reason"].as_str().map(str::to_owned))
                }
                Ok(res) => (res.status().as_u16(), None),
                Err(_) => (0, None),
            };
            Answer {
                status,
                took,
                reason,
            }
        }
    });
    join_all(calls).await
}

fn latencies<'a>(answers: impl Iterator<Item = &'a Answer>) -> Vec<Duration> {
    answers.map(|a| a.took).collect()
}

/// What the crowd races for.
enum Aim {
    /// The last `tables` tables, any of them.
    Tables,
    /// A combination (`id`) against its member tables, each with the party it fits.
    Combination {
        id: String,
        party: u32,
        members: Vec<(String, u32)>,
    },
    /// One paced window with tables to spare: at most `expected` can win.
    Paced { expected: usize },
}

/// The restaurant body members the run's own restaurant gets for `o`'s aim.
fn extra_members(o: &Opts, tables: usize) -> anyhow::Result<Value> {
    Ok(if let Some(id) = &o.combination {
        anyhow::ensure!(
            (2..=6).contains(&tables),
            "--combination joins the run's 2–6 tables (--tables {tables})"
        );
        let members: Vec<String> = (0..tables).map(|i| format!("t{i:04}")).collect();
        json!({"combinations": [{"id": id, "tables": members, "min_party": 5,
                                 "max_party": 4 * tables}]})
    } else if o.paced {
        json!({"pacing": {"window_minutes": 15, "max_covers": o.max_covers, "max_parties": null}})
    } else {
        json!({})
    })
}

/// `available_tables` and `covers_left` of `time` for `party`, read before the race.
async fn slot_before(ctx: &Ctx, time: &str, party: u32) -> anyhow::Result<Value> {
    let v: Value = ctx
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
    let slot = v["slots"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["time"] == time))
        .cloned();
    slot.with_context(|| format!("{time} is not a bookable start for {party}"))
}

/// Reads the restaurant (created or given) and decides what the crowd aims at.
async fn aim(ctx: &Ctx, o: &Opts, doc: &Value) -> anyhow::Result<Aim> {
    if let Some(id) = &o.combination {
        let combo = doc["combinations"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["id"] == id.as_str()))
            .with_context(|| format!("the restaurant has no combination {id}"))?;
        let lo = combo["min_party"].as_u64().unwrap_or(1) as u32;
        let hi = combo["max_party"].as_u64().unwrap_or(100) as u32;
        let tables = doc["tables"].as_array().cloned().unwrap_or_default();
        let members = combo["tables"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|t| {
                let doc = tables.iter().find(|x| x["id"] == t);
                let min = doc.and_then(|d| d["min_party"].as_u64()).unwrap_or(1) as u32;
                let max = doc.and_then(|d| d["max_party"].as_u64()).unwrap_or(1) as u32;
                (t.to_owned(), o.party.clamp(min, max.max(min)))
            })
            .collect::<Vec<_>>();
        anyhow::ensure!(
            o.diners >= 2 * members.len(),
            "--combination needs at least two diners per member table"
        );
        return Ok(Aim::Combination {
            id: id.clone(),
            party: o.party.clamp(lo, hi.max(lo)),
            members,
        });
    }
    if o.paced {
        let pacing = &doc["pacing"];
        anyhow::ensure!(pacing.is_object(), "--paced needs a restaurant with pacing");
        // Room left in the window, from what is already in it, and the free seating options.
        let w = pacing["window_minutes"].as_u64().unwrap_or(15) as u32;
        let before = ctx.reservations().await?;
        let counts = super::checks::pacing_counts(&before, w);
        let window = {
            let (h, m) = o.time.split_once(':').unwrap_or(("0", "0"));
            let t = h.parse::<u32>().unwrap_or(0) * 60 + m.parse::<u32>().unwrap_or(0);
            format!("{:02}:{:02}", t / w * w / 60, t / w * w % 60)
        };
        let now = counts.get(&window).cloned().unwrap_or_default();
        let by_covers = pacing["max_covers"]
            .as_u64()
            .map(|m| (m.saturating_sub(now.covers) / u64::from(o.party.max(1))) as usize);
        let by_parties = pacing["max_parties"]
            .as_u64()
            .map(|m| m.saturating_sub(now.parties) as usize);
        let room = by_covers
            .unwrap_or(usize::MAX)
            .min(by_parties.unwrap_or(usize::MAX));
        // A window that is full already reads 0 free options: then nobody wins either.
        let free = slot_before(ctx, &o.time, o.party).await?["available_tables"]
            .as_u64()
            .unwrap_or(0) as usize;
        anyhow::ensure!(
            room == 0 || free > room,
            "--paced needs more free tables ({free}) than the window has room for ({room}), or \
             tables decide instead of pacing"
        );
        return Ok(Aim::Paced {
            expected: room.min(free).min(o.diners),
        });
    }
    Ok(Aim::Tables)
}

pub async fn run(o: Opts) -> anyhow::Result<Report> {
    wsclient::raise_fd_limit();
    let tables = o.tables.unwrap_or(if o.paced {
        30
    } else if o.combination.is_some() {
        2
    } else {
        1
    });
    let ctx = Ctx::setup_with(o.common.clone(), tables, 4, extra_members(&o, tables)?).await?;
    let doc = ctx.restaurant_doc().await?;
    let aim = aim(&ctx, &o, &doc).await?;
    let what = match &aim {
        Aim::Tables => format!("the last {tables} table(s)"),
        Aim::Combination { id, members, .. } => format!(
            "combination {id} (half of them) or its {} tables (the other half)",
            members.len()
        ),
        Aim::Paced { expected } => format!(
            "{tables} tables in a paced window with room for {expected} parties of {}",
            o.party
        ),
    };
    let mut report = Report::new(
        "stampede",
        format!(
            "{} diners for {what} at {}, {} watching",
            o.diners, o.time, o.watchers
        ),
    );
    report.variant = match &aim {
        Aim::Tables => None,
        Aim::Combination { .. } => Some("combination".into()),
        Aim::Paced { .. } => Some("paced".into()),
    };
    let mut watchers = Vec::new();
    for i in 0..o.watchers {
        let addr = wsclient::resolve(ctx.url(i)).await?;
        let mut ws = wsclient::connect(addr, i).await?;
        let sub = json!({"op": "subscribe", "sub": "w", "restaurant_id": ctx.restaurant, "date": ctx.date, "party_size": o.party});
        wsclient::subscribe(&mut ws, &sub).await?;
        watchers.push(ws);
    }
    // Warm the connection pool so both bursts start from the same place.
    let base = burst(o.diners.min(64), |i| {
        ctx.http.get(format!("{}/healthz", ctx.url(i)))
    })
    .await;
    anyhow::ensure!(
        base.iter().all(|a| a.status == 200),
        "the target is not healthy"
    );

    let baseline = burst(o.diners, |i| {
        ctx.http.get(format!("{}/healthz", ctx.url(i)))
    })
    .await;
    let base_summary =
        report.latencies("GET /healthz (baseline)", &latencies(baseline.iter()), None);

    // Diner i's body: with a combination, even diners hold it and odd ones a member table.
    let body = |i: usize| match &aim {
        Aim::Combination { id, party, .. } if i.is_multiple_of(2) => {
            json!({"date": ctx.date, "time": o.time, "party_size": party, "combination_id": id})
        }
        Aim::Combination { members, .. } => {
            let (table, party) = &members[(i / 2) % members.len()];
            json!({"date": ctx.date, "time": o.time, "party_size": party, "table_id": table})
        }
        _ => json!({"date": ctx.date, "time": o.time, "party_size": o.party}),
    };
    let pb = ctx.progress(1, "stampede");
    let started = Instant::now();
    let results = burst(o.diners, |i| {
        ctx.http
            .post(format!(
                "{}/v1/restaurants/{}/holds",
                ctx.url(i),
                ctx.restaurant
            ))
            .json(&body(i))
    })
    .await;
    let elapsed = started.elapsed();
    pb.finish_and_clear();
    let winners = results.iter().filter(|a| a.status == 201).count();
    let losers = latencies(results.iter().filter(|a| a.status == 409));
    let other = results.len() - winners - losers.len();
    let because = |why: &str| {
        results
            .iter()
            .filter(|a| a.status == 409 && a.reason.as_deref() == Some(why))
            .count()
    };
    let loser_summary = report.latencies(
        "hold: losers (409)",
        &losers,
        Some(losers.len() as f64 / elapsed.as_secs_f64()),
    );
    report.latencies(
        "hold: winners (201)",
        &latencies(results.iter().filter(|a| a.status == 201)),
        None,
    );
    report.fact("winners", winners);
    report.fact("losers", losers.len());
    report.fact("losers: reason pacing", because("pacing"));
    report.fact("losers: reason table", because("table"));
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
    match &aim {
        Aim::Tables => report.check(
            "winners == tables",
            winners == tables,
            format!("{winners} winners for {tables} tables"),
        ),
        Aim::Combination { id, members, .. } => {
            let won = |even: bool| {
                results
                    .iter()
                    .enumerate()
                    .filter(|(i, a)| i.is_multiple_of(2) == even && a.status == 201)
                    .count()
            };
            let (combo, single) = (won(true), won(false));
            report.fact("winners: combination", combo);
            report.fact("winners: member tables", single);
            report.check(
                "the combination or its tables, never both",
                combo <= 1 && (combo == 0 || single == 0),
                format!("{combo} holds on {id}, {single} on its tables"),
            );
            if o.common.restaurant.is_none() {
                report.check(
                    "every member table taken once",
                    combo == 1 || single == members.len(),
                    format!("{combo} on {id}, {single} of {} tables", members.len()),
                );
            }
        }
        Aim::Paced { expected } => {
            report.check(
                "winners == the window's room",
                winners == *expected,
                format!("{winners} winners, room for {expected}"),
            );
            report.check(
                "every loser was refused by pacing",
                because("pacing") == losers.len(),
                format!(
                    "{} of {} losers say reason pacing",
                    because("pacing"),
                    losers.len()
                ),
            );
        }
    }
    report.check(
        "read back: one hold per winner",
        held_at_time == winners,
        format!("{held_at_time} held at {}", o.time),
    );
    let doubles = double_bookings(&reservations);
    report.check(
        "no double booking (every table of every reservation)",
        doubles.is_empty(),
        format!("{} overlapping pairs", doubles.len()),
    );
    let over = pacing_overruns(&reservations, &doc["pacing"]);
    report.check(
        "no pacing window above its limits",
        over.is_empty(),
        if over.is_empty() {
            "none over".to_owned()
        } else {
            over.iter()
                .map(|(w, c)| format!("{w}: {} covers, {} parties", c.covers, c.parties))
                .collect::<Vec<_>>()
                .join("; ")
        },
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
