//! The waitlist under concurrent frees: a time full on every table, N entries waiting for it,
//! each watching its entry live; K clients free M of the filling reservations at random
//! (releases of holds, cancels of bookings). Each entry answers its offer as soon as it sees it
//! (confirms some, passes the rest, which frees the table again). Measured: from a freeing
//! request's answer to the update frame that shows the resulting offer to its entry. Checked
//! from what is read back: one offer per freed capacity, no entry offered twice, queue order,
//! no double booking.
use super::wsclient;
use super::{double_bookings, tables_of, Common, Ctx, Report};
use anyhow::{bail, Context};
use clap::Args;
use futures_util::future::join_all;
use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Args)]
pub struct Opts {
    #[command(flatten)]
    pub common: Common,
    /// Entries joining the full time's waitlist, each watching its entry over a WebSocket.
    #[arg(long, default_value_t = 200)]
    pub entries: usize,
    /// Filling reservations freed (released or cancelled), at random, by the clients.
    #[arg(long, default_value_t = 50)]
    pub frees: usize,
    /// Concurrent clients making the frees.
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// Percent of offers confirmed; the others are passed (released by the entry's token),
    /// which lapses them and frees the table again for the next entry.
    #[arg(long, default_value_t = 50)]
    pub confirm_percent: u32,
    /// The full time (every entry's window is exactly this start).
    #[arg(long, default_value = "19:00")]
    pub time: String,
}

const PARTY: u32 = 2;

/// A free, as its client saw it: the freed reservation and when its request was sent (the
/// server offers the freed time before it answers, so the offer's frame may come first).
struct Free {
    reservation: String,
    sent: Instant,
}

/// An offer, as its entry saw it: the offered reservation and when the frame arrived.
struct Seen {
    reservation: String,
    received: Instant,
}

#[derive(Default)]
struct Shared {
    frees: Vec<Free>,
    offers: Vec<Seen>,
    /// Distinct offered reservations each entry's frames showed.
    offered_ids: HashMap<String, HashSet<String>>,
    confirmed: usize,
    passed: usize,
    /// Offers seen but not answered yet.
    answering: usize,
    errors: Vec<String>,
}

type State = Arc<Mutex<Shared>>;

fn lock(s: &State) -> std::sync::MutexGuard<'_, Shared> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

pub async fn run(o: Opts) -> anyhow::Result<Report> {
    wsclient::raise_fd_limit();
    let tables = o.frees + 2;
    let ctx = Ctx::setup(o.common.clone(), tables, PARTY).await?;
    let mut report = Report::new(
        "waitlist",
        format!(
            "{} entries wait for a full {} ({} tables); {} clients free {} at random; {}% of \
             offers confirmed, the rest passed",
            o.entries,
            o.time,
            tables,
            o.clients,
            o.frees,
            o.confirm_percent.min(100)
        ),
    );
    let filling = fill(&ctx, &o).await?;
    if filling.len() < o.frees {
        bail!(
            "only {} tables seat a party of {PARTY} at {}: fewer than --frees {}",
            filling.len(),
            o.time,
            o.frees
        );
    }
    let entries = join(&ctx, &o).await?;
    let state: State = Arc::default();
    let done = Arc::new(tokio::sync::Notify::new());
    let pb = ctx.progress(entries.len() as u64, "watchers");
    let mut watchers = Vec::new();
    for (i, (id, token)) in entries.iter().enumerate() {
        let addr = wsclient::resolve(ctx.url(i)).await?;
        let mut ws = wsclient::connect(addr, i).await?;
        wsclient::send(
            &mut ws,
            &json!({"op": "subscribe", "sub": "w", "view": "waitlist", "entry_id": id,
                    "token": token}),
        )
        .await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let snap = wsclient::next_json(&mut ws, deadline).await;
        if snap.as_ref().map(|f| f["type"].clone()) != Some(json!("snapshot")) {
            bail!("entry {id}'s subscription answered {snap:?}");
        }
        watchers.push(tokio::spawn(watch(
            ws,
            id.clone(),
            token.clone(),
            ctx.url(i).to_owned(),
            ctx.http.clone(),
            o.confirm_percent,
            state.clone(),
            done.clone(),
        )));
        pb.inc(1);
    }
    pb.finish_and_clear();

    // The frees: M filling reservations at random, shared out over K clients.
    let mut chosen = filling.clone();
    chosen.shuffle(&mut rand::thread_rng());
    chosen.truncate(o.frees);
    let clients = o.clients.max(1);
    let started = Instant::now();
    let work = (0..clients).map(|c| {
        let mine: Vec<(String, String)> = chosen.iter().skip(c).step_by(clients).cloned().collect();
        let (ctx, state) = (&ctx, state.clone());
        async move {
            let http = reqwest::Client::new();
            for (id, token) in mine {
                // A little jitter, so frees from different clients interleave.
                let pause = rand::thread_rng().gen_range(0..20);
                tokio::time::sleep(Duration::from_millis(pause)).await;
                let sent = Instant::now();
                let res = http
                    .delete(format!("{}/v1/reservations/{id}", ctx.url(c)))
                    .bearer_auth(&token)
                    .send()
                    .await;
                let mut s = lock(&state);
                match res {
                    Ok(r) if r.status() == 204 => s.frees.push(Free {
                        reservation: id,
                        sent,
                    }),
                    Ok(r) => s
                        .errors
                        .push(format!("free of {id} answered {}", r.status())),
                    Err(e) => s.errors.push(format!("free of {id}: {e}")),
                }
            }
        }
    });
    join_all(work).await;
    let frees_wall = started.elapsed();

    // Settled: every free (passes included) has its offer, or the queue ran dry, and every
    // offer seen is answered. Bounded by a deadline.
    let settle_by = Instant::now() + Duration::from_secs(30);
    let settled = loop {
        let (offers, frees, answering) = {
            let s = lock(&state);
            (s.offers.len(), s.frees.len(), s.answering)
        };
        if offers >= frees.min(entries.len()) && answering == 0 {
            break true;
        }
        if Instant::now() > settle_by {
            break false;
        }
        tokio::select! {
            _ = done.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
    };
    for w in &watchers {
        w.abort();
    }

    let reservations = ctx.reservations().await?;
    let queue = waitlist(&ctx).await?;
    let s = lock(&state);
    let table_of: HashMap<&str, &str> = reservations
        .iter()
        .filter_map(|r| Some((r["id"].as_str()?, *tables_of(r).first()?)))
        .collect();

    // Latency: per table, the k-th offer on it follows its k-th free (a table is offered again
    // only after its previous offer was passed, which is its next free).
    let mut frees_of: BTreeMap<&str, Vec<Instant>> = BTreeMap::new();
    for f in &s.frees {
        if let Some(t) = table_of.get(f.reservation.as_str()) {
            frees_of.entry(t).or_default().push(f.sent);
        }
    }
    let mut offers_of: BTreeMap<&str, Vec<Instant>> = BTreeMap::new();
    for seen in &s.offers {
        if let Some(t) = table_of.get(seen.reservation.as_str()) {
            offers_of.entry(t).or_default().push(seen.received);
        }
    }
    let mut latencies = Vec::new();
    let mut more_offers_than_frees = Vec::new();
    for (t, offers) in &mut offers_of {
        let frees = frees_of.get_mut(t).map(std::mem::take).unwrap_or_default();
        let mut frees = frees;
        frees.sort();
        offers.sort();
        if offers.len() > frees.len() {
            more_offers_than_frees.push(format!(
                "{t}: {} offers, {} frees",
                offers.len(),
                frees.len()
            ));
        }
        for (f, got) in frees.iter().zip(offers.iter()) {
            latencies.push(got.saturating_duration_since(*f));
        }
    }
    report.latencies(
        "free sent → offer frame",
        &latencies,
        Some(s.frees.len() as f64 / frees_wall.as_secs_f64().max(0.001)),
    );
    report.fact("entries", entries.len());
    report.fact("frees", o.frees);
    report.fact("frees incl. passes", s.frees.len());
    report.fact("offers", s.offers.len());
    report.fact("confirmed", s.confirmed);
    report.fact("passed", s.passed);

    report.check(
        "every free answered 204",
        s.errors.is_empty(),
        if s.errors.is_empty() {
            format!("{} frees", s.frees.len())
        } else {
            s.errors[..s.errors.len().min(3)].join("; ")
        },
    );
    report.check(
        "every free offered before the deadline",
        settled,
        format!(
            "{} offers for {} frees and {} entries",
            s.offers.len(),
            s.frees.len(),
            entries.len()
        ),
    );
    // One offer per freed capacity: no table offered more often than it was freed, and as many
    // offers as frees (while entries were left).
    let offered: HashSet<&str> = queue
        .iter()
        .filter_map(|e| e["offer"]["reservation_id"].as_str())
        .collect();
    let want = s.frees.len().min(entries.len());
    report.check(
        "exactly one offer per freed capacity",
        more_offers_than_frees.is_empty() && offered.len() == want,
        format!(
            "{} offers read back, {want} expected; {}",
            offered.len(),
            if more_offers_than_frees.is_empty() {
                "no table offered more than it was freed".to_owned()
            } else {
                more_offers_than_frees.join(", ")
            }
        ),
    );
    // No entry offered twice: each entry saw one offer at most, and every reservation made
    // during the run is the one offer of exactly one entry (a second offer would be orphaned).
    let twice: Vec<&String> = s
        .offered_ids
        .iter()
        .filter(|(_, ids)| ids.len() > 1)
        .map(|(e, _)| e)
        .collect();
    let fill_ids: HashSet<&str> = filling.iter().map(|(id, _)| id.as_str()).collect();
    let orphans = reservations
        .iter()
        .filter_map(|r| r["id"].as_str())
        .filter(|id| !fill_ids.contains(id) && !offered.contains(id))
        .count();
    report.check(
        "no entry offered twice",
        twice.is_empty() && orphans == 0,
        format!(
            "{} entries saw two offers; {orphans} reservations outside the fill and the offers",
            twice.len()
        ),
    );
    report.check("queue order (FIFO)", fifo(&queue, &reservations).is_ok(), {
        fifo(&queue, &reservations).err().unwrap_or_else(|| {
            "offered entries are the head of the queue, offered in its order".into()
        })
    });
    let doubles = double_bookings(&reservations);
    report.check(
        "no double booking",
        doubles.is_empty(),
        format!("{} overlapping pairs", doubles.len()),
    );
    let booked = queue.iter().filter(|e| e["status"] == "booked").count();
    let lapsed = queue.iter().filter(|e| e["status"] == "lapsed").count();
    report.check(
        "every answer took",
        booked == s.confirmed && lapsed == s.passed,
        format!(
            "{booked} booked ({} confirmed), {lapsed} lapsed ({} passed)",
            s.confirmed, s.passed
        ),
    );
    Ok(report)
}

/// Fills every table seating the party at the time: half held, half booked. Their ids and
/// tokens.
async fn fill(ctx: &Ctx, o: &Opts) -> anyhow::Result<Vec<(String, String)>> {
    let doc = ctx.restaurant_doc().await?;
    let tables: Vec<String> = doc["tables"]
        .as_array()
        .context("the restaurant has no tables")?
        .iter()
        .filter(|t| {
            t["min_party"].as_u64().unwrap_or(1) <= u64::from(PARTY)
                && t["max_party"].as_u64().unwrap_or(0) >= u64::from(PARTY)
        })
        .filter_map(|t| t["id"].as_str().map(str::to_owned))
        .collect();
    let calls = tables.iter().enumerate().map(|(i, t)| async move {
        let res = ctx
            .http
            .post(format!(
                "{}/v1/restaurants/{}/holds",
                ctx.url(i),
                ctx.restaurant
            ))
            .json(
                &json!({"date": ctx.date, "time": o.time, "party_size": PARTY,
                          "table_id": t}),
            )
            .send()
            .await?;
        if res.status() != 201 {
            bail!(
                "filling {t} answered {}: {}",
                res.status(),
                res.text().await?
            );
        }
        let h: Value = res.json().await?;
        let (id, token) = (
            h["id"].as_str().unwrap_or_default().to_owned(),
            h["token"].as_str().unwrap_or_default().to_owned(),
        );
        if i % 2 == 1 {
            let res = ctx
                .http
                .post(format!("{}/v1/reservations/{id}/confirm", ctx.url(i)))
                .bearer_auth(&token)
                .json(&json!({"guest": {"name": format!("filler {i}")}}))
                .send()
                .await?;
            if res.status() != 200 {
                bail!("confirming {id} answered {}", res.status());
            }
        }
        Ok((id, token))
    });
    join_all(calls).await.into_iter().collect()
}

/// N entries for exactly the full time, joined one after the other (their queue order).
async fn join(ctx: &Ctx, o: &Opts) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::with_capacity(o.entries);
    let pb = ctx.progress(o.entries as u64, "joins");
    for i in 0..o.entries {
        let res = ctx
            .http
            .post(format!(
                "{}/v1/restaurants/{}/waitlist",
                ctx.url(i),
                ctx.restaurant
            ))
            .json(
                &json!({"date": ctx.date, "party_size": PARTY, "from": o.time, "to": o.time,
                          "guest": {"name": format!("waiting {i}")}}),
            )
            .send()
            .await?;
        if res.status() != 201 {
            bail!("join {i} answered {}: {}", res.status(), res.text().await?);
        }
        let e: Value = res.json().await?;
        out.push((
            e["id"].as_str().unwrap_or_default().to_owned(),
            e["token"].as_str().unwrap_or_default().to_owned(),
        ));
        pb.inc(1);
    }
    pb.finish_and_clear();
    Ok(out)
}

/// The date's queue as staff read it, in queue order.
async fn waitlist(ctx: &Ctx) -> anyhow::Result<Vec<Value>> {
    let v: Value = ctx
        .http
        .get(format!(
            "{}/v1/restaurants/{}/waitlist?date={}",
            ctx.url(0),
            ctx.restaurant,
            ctx.date
        ))
        .bearer_auth(&ctx.staff)
        .send()
        .await?
        .json()
        .await?;
    Ok(v["entries"].as_array().cloned().unwrap_or_default())
}

/// One entry's watcher: on the frame that shows its offer, records it and answers it (confirm
/// or pass); ends when the entry is booked or lapsed.
#[allow(clippy::too_many_arguments)]
async fn watch(
    mut ws: wsclient::Socket,
    id: String,
    token: String,
    base: String,
    http: reqwest::Client,
    confirm_percent: u32,
    state: State,
    done: Arc<tokio::sync::Notify>,
) {
    let end = tokio::time::Instant::now() + Duration::from_secs(600);
    while let Some(f) = wsclient::next_json(&mut ws, end).await {
        let received = Instant::now();
        let data = &f["data"];
        let Some(rid) = data["offer"]["reservation_id"].as_str() else {
            continue;
        };
        if data["status"] != "offered" {
            continue;
        }
        {
            let mut s = lock(&state);
            if !s
                .offered_ids
                .entry(id.clone())
                .or_default()
                .insert(rid.to_owned())
            {
                continue; // the same offer again (another update of the entry)
            }
            s.offers.push(Seen {
                reservation: rid.to_owned(),
                received,
            });
            s.answering += 1;
        }
        let confirm = rand::thread_rng().gen_range(0..100) < confirm_percent;
        let req = if confirm {
            http.post(format!("{base}/v1/reservations/{rid}/confirm"))
                .json(&json!({"guest": {"name": format!("entry {id}")}}))
        } else {
            http.delete(format!("{base}/v1/reservations/{rid}"))
        };
        let sent = Instant::now();
        let res = req.bearer_auth(&token).send().await;
        {
            let mut s = lock(&state);
            s.answering -= 1;
            match res.map(|r| r.status().as_u16()) {
                Ok(200) if confirm => s.confirmed += 1,
                Ok(204) if !confirm => {
                    s.passed += 1;
                    s.frees.push(Free {
                        reservation: rid.to_owned(),
                        sent,
                    });
                }
                other => s
                    .errors
                    .push(format!("entry {id} answering its offer: {other:?}")),
            }
        }
        done.notify_one();
    }
}

/// FIFO, from what was read back: the entries that were offered are the head of the queue
/// (every entry fits every freed table, so none may wait ahead of an offered one), and their
/// offers were made in queue order (the offered reservations' `created_at`).
fn fifo(queue: &[Value], reservations: &[Value]) -> Result<(), String> {
    let created: HashMap<&str, &str> = reservations
        .iter()
        .filter_map(|r| Some((r["id"].as_str()?, r["created_at"].as_str()?)))
        .collect();
    let mut waiting_seen: Option<&str> = None;
    let mut last: Option<(&str, &str)> = None;
    for e in queue {
        let id = e["id"].as_str().unwrap_or_default();
        match e["offer"]["reservation_id"].as_str() {
            None => {
                if e["status"] == "waiting" {
                    waiting_seen.get_or_insert(id);
                }
            }
            Some(rid) => {
                if let Some(w) = waiting_seen {
                    return Err(format!(
                        "entry {id} was offered while {w}, ahead of it, waits"
                    ));
                }
                let at = created.get(rid).copied().unwrap_or_default();
                if let Some((prev, prev_at)) = last {
                    if at < prev_at {
                        return Err(format!(
                            "entry {id} was offered ({at}) before {prev} ({prev_at}), ahead of it"
                        ));
                    }
                }
                last = Some((id, at));
            }
        }
    }
    Ok(())
}
