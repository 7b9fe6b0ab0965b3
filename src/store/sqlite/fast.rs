//! A hold or walk-in decided with no round trip per statement: one script of statements, run
//! by the group commit on the writer connection's own handle (`raw.rs`), opens the job's
//! savepoint, claims the
//! first free candidate with one `INSERT … SELECT` whose `WHERE` is the whole decision (the
//! restaurant's revision, the client's cap, the pacing window, the idempotency marker, no
//! occupied member table), writes the token and raises the date versions only if that row was
//! written, says what was decided, and releases the savepoint. Every statement runs inside the
//! group commit's transaction, after the jobs before it: the decision is as atomic as the
//! statement-by-statement one in `decide.rs`, which stays for what this script leaves to it
//! (`Verdict::Slow`): a winner that must first mark expired holds on its tables or in its
//! pacing window (their dates, their lapsed offers), and an idempotency marker that is gone.
use super::decide::{member_tables, MAX_SPAN_MS};
use super::raw::{Script, Value};
use super::rows::{dates_json, guest_json, ms, tables_json, PACING_SQL};
use crate::domain::{LocalDate, Reservation, Seating};
use crate::store::{NewReservation, StoreError, StoreResult, Versions};
use std::sync::OnceLock;

/// What the script decided.
pub(super) enum Verdict {
    /// Written (the savepoint still open when the job records an idempotent answer).
    Won(Seating, Versions),
    /// Every candidate taken, as of the date's version it carries.
    Lost(Option<u64>),
    /// The pacing window full, as of that version.
    Paced(Option<u64>),
    OverCap,
    Stale,
    /// Nothing written: decide it statement by statement (`decide::insert_in`).
    Slow,
}

/// The candidates as `[{"t": [tables…], "c": combination or null}, …]`, in best-fit order.
fn candidates_json(candidates: &[Seating]) -> String {
    let v: Vec<serde_json::Value> = candidates
        .iter()
        .map(|s| {
            serde_json::json!({
                "t": s.tables.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
                "c": s.combination.as_ref().map(|c| c.as_str()),
            })
        })
        .collect();
    serde_json::Value::from(v).to_string()
}

/// The conditions the script decides with, over numbered parameters: ?1 restaurant, ?2 candidates, ?3 start, ?4 end, ?5 now, ?6 expected
/// revision, ?7 client key of a capped client, ?8 its cap, ?9 date of an enforced pacing window
/// (null when none), ?10 and ?11 its local bounds, ?12 max covers, ?13 max parties,
/// ?14 party size.
struct Conditions {
    /// The candidate `c` has a table occupied over [start, end) by any row, live or not.
    busy: String,
    /// … by a row that is live at `now` (a hold past its expiry is free).
    busy_live: String,
    cap_ok: &'static str,
    pacing_ok: String,
    /// The enforced pacing window's rows, as `FROM … WHERE …`.
    window: String,
}

fn conditions() -> Conditions {
    let occupied = |live: &str| {
        format!(
            "EXISTS (SELECT 1 FROM json_each(c.value, '$.t') AS m CROSS JOIN reservation_tables AS r
                WHERE r.restaurant_id = ?1 AND r.table_id = m.value
                  AND r.start_ms > ?3 - {MAX_SPAN_MS} AND r.start_ms < ?4 AND r.end_ms > ?3
                  AND r.end_ms > r.start_ms{live})"
        )
    };
    let window = format!(
        "FROM reservations WHERE restaurant_id = ?1 AND date = ?9 AND time >= ?10 AND time < ?11
           AND status IN {PACING_SQL}"
    );
    Conditions {
        busy: occupied(""),
        busy_live: occupied(" AND (r.expires_ms IS NULL OR r.expires_ms > ?5)"),
        cap_ok: "(?7 IS NULL OR (SELECT COUNT(*) FROM reservations
             WHERE client_key = ?7 AND status = 'held' AND expires_ms > ?5) < ?8)",
        pacing_ok: format!(
            "(?9 IS NULL OR (SELECT (?12 IS NULL OR COALESCE(SUM(party_size), 0) + ?14 <= ?12)
                                AND (?13 IS NULL OR COUNT(*) + 1 <= ?13)
                             {window} AND (status <> 'held' OR expires_ms > ?5)))"
        ),
        window,
    }
}

/// The restaurant is still at the revision the decision was computed from.
const REVISION_OK: &str = "(SELECT revision FROM restaurants WHERE id = ?1) IS ?6";

/// The version of the reservation's date (?17), as the day view reads it.
const DATE_VERSION: &str =
    "(SELECT MAX(o.wide_version, COALESCE(d.version, 0)) FROM restaurants AS o
     LEFT JOIN day_versions AS d ON d.restaurant_id = o.id AND d.date = ?17 WHERE o.id = ?1)";

/// ?1 to ?14 of the conditions for `new`.
fn condition_values(new: &NewReservation) -> Vec<Value> {
    let r = &new.reservation;
    let pacing = new.pacing.as_ref().filter(|c| c.enforce);
    vec![
        r.restaurant_id.to_string().into(),
        candidates_json(&new.candidates).into(),
        ms(r.start).into(),
        ms(r.end).into(),
        ms(new.now).into(),
        (new.restaurant_revision as i64).into(),
        new.cap.as_ref().map(|c| c.client.clone()).into(),
        new.cap.as_ref().map(|c| i64::from(c.max)).into(),
        pacing.map(|_| r.date.to_string()).into(),
        pacing.map(|p| p.window.start.to_string()).into(),
        pacing.map(|p| p.window.end.to_string()).into(),
        pacing.and_then(|p| p.max_covers).map(i64::from).into(),
        pacing.and_then(|p| p.max_parties).map(i64::from).into(),
        i64::from(r.party_size).into(),
    ]
}

/// The script. Parameters past the conditions': ?15 idempotency key, ?16 id, ?17 date,
/// ?18 time, ?19 status, ?20 expires, ?21 guest, ?22 notes, ?23 created, ?24 updated, ?25 token
/// hash, ?26 dates to raise, ?27 member tables.
///
/// No statement needs a temporary b-tree, which SQLite makes and frees (with a page cache of its
/// own) on every run: the candidates are taken in `json_each`'s own order (`ORDER BY c.rowid`,
/// which the scan answers; `c.key` needed a sort), and what was written is read back by key
/// instead of through `RETURNING` (which buffers its rows in one).
fn script(release: bool) -> String {
    let Conditions {
        busy,
        busy_live,
        cap_ok,
        pacing_ok,
        window,
    } = conditions();
    let revision_ok = REVISION_OK;
    // What `decide::insert_in` would have to mark expired before it writes.
    let nothing_to_expire = format!(
        "NOT EXISTS (SELECT 1 FROM json_each(?27) AS m CROSS JOIN reservation_tables AS r
            WHERE r.restaurant_id = ?1 AND r.table_id = m.value
              AND r.start_ms > ?3 - {MAX_SPAN_MS} AND r.start_ms < ?4 AND r.end_ms > ?3
              AND r.expires_ms <= ?5)
         AND (?9 IS NULL OR NOT EXISTS (SELECT 1 {window} AND status = 'held'
                                          AND expires_ms <= ?5))"
    );
    let idem_ok =
        "(?15 IS NULL OR EXISTS (SELECT 1 FROM idempotency WHERE key = ?15 AND state = 'in_flight'))";
    let written = "EXISTS (SELECT 1 FROM reservations WHERE id = ?16)";
    let release = if release { "RELEASE job;" } else { "" };
    format!(
        "SAVEPOINT job;
         INSERT INTO reservations (id, restaurant_id, table_id, date, time, start_ms, end_ms,
           party_size, status, expires_ms, guest, notes, created_ms, updated_ms, client_key,
           table_ids, combination_id)
         SELECT ?16, ?1, json_extract(c.value, '$.t[0]'), ?17, ?18, ?3, ?4, ?14, ?19, ?20, ?21,
           ?22, ?23, ?24, ?7, json_extract(c.value, '$.t'), json_extract(c.value, '$.c')
         FROM json_each(?2) AS c
         WHERE {revision_ok} AND {cap_ok} AND {idem_ok} AND {nothing_to_expire} AND {pacing_ok}
           AND NOT {busy}
         ORDER BY c.rowid LIMIT 1;
         SELECT 'won', table_ids, combination_id FROM reservations WHERE id = ?16;
         INSERT INTO tokens (hash, restaurant_id, reservation_id)
           SELECT ?25, ?1, ?16 WHERE ?25 IS NOT NULL AND {written};
         INSERT INTO day_versions (restaurant_id, date, version)
           SELECT ?1, d.value, (SELECT wide_version FROM restaurants WHERE id = ?1) + 1
           FROM json_each(?26) AS d WHERE {written}
           ON CONFLICT (restaurant_id, date) DO UPDATE SET version =
             MAX(version, (SELECT wide_version FROM restaurants WHERE id = ?1)) + 1;
         SELECT 'version', v.date, v.version FROM json_each(?26) AS d
           JOIN day_versions AS v ON v.restaurant_id = ?1 AND v.date = d.value WHERE {written};
         SELECT 'verdict', CASE
           WHEN {written} THEN 'won'
           WHEN NOT {revision_ok} THEN 'stale'
           WHEN NOT {cap_ok} THEN 'over_cap'
           WHEN NOT EXISTS (SELECT 1 FROM json_each(?2) AS c WHERE NOT {busy_live}) THEN 'lost'
           WHEN NOT {pacing_ok} THEN 'paced'
           ELSE 'slow' END, {DATE_VERSION};
         {release}"
    )
}

/// The script, with (`true`) or without its closing `RELEASE job`.
pub(super) fn script_sql(release: bool) -> &'static str {
    static WITH: OnceLock<String> = OnceLock::new();
    static WITHOUT: OnceLock<String> = OnceLock::new();
    if release {
        WITH.get_or_init(|| script(true))
    } else {
        WITHOUT.get_or_init(|| script(false))
    }
}

/// The script's parameters for `new`.
fn script_values(new: &NewReservation) -> StoreResult<Vec<Value>> {
    let r = &new.reservation;
    let mut values = condition_values(new);
    values.extend([
        new.idem.as_ref().map(|i| i.key.clone()).into(),
        r.id.to_string().into(),
        r.date.to_string().into(),
        r.time.to_string().into(),
        r.status.as_str().into(),
        r.expires_at.map(ms).into(),
        r.guest.as_ref().map(guest_json).transpose()?.into(),
        r.notes.clone().into(),
        ms(r.created_at).into(),
        ms(r.updated_at).into(),
        new.token_hash.clone().into(),
        dates_json(&r.dates_spanned()).into(),
        tables_json(&member_tables(&new.candidates)).into(),
    ]);
    Ok(values)
}

/// Runs the script (`script_sql`, prepared on the writer's connection) for `new`, with no round
/// trip: the group commit has the connection's handle. The savepoint is released by the script
/// when it was prepared with `release`; otherwise it is left open for the caller (which then
/// records the idempotent answer and closes it). On an error the savepoint may be open: the
/// caller rolls it back.
pub(super) fn decide(script: &mut Script, new: &NewReservation) -> StoreResult<Verdict> {
    let rows = script
        .run(&script_values(new)?)
        .map_err(|e| StoreError::internal("decide a hold", e))?;
    verdict(rows, &new.candidates)
}

const READ: &str = "read what a hold decided";

/// The script's rows: `('won', table_ids, combination_id)`, `('version', date, version)` per
/// raised date, and last `('verdict', what, the date's version)`.
fn verdict(rows: Vec<Vec<Value>>, candidates: &[Seating]) -> StoreResult<Verdict> {
    let bad = |what: &str| StoreError::corrupt("hold script row", format!("{READ}: {what}"));
    let text = |v: Option<&Value>| match v {
        Some(Value::Text(t)) => Ok(Some(t.clone())),
        Some(Value::Null) => Ok(None),
        other => Err(bad(&format!("{other:?} is not text"))),
    };
    let mut seating = None;
    let mut versions = Versions::default();
    let (mut said, mut seen) = (None, None);
    for row in &rows {
        let kind = text(row.first())?.ok_or_else(|| bad("no kind"))?;
        match kind.as_str() {
            "won" => {
                let tables = text(row.get(1))?.ok_or_else(|| bad("no tables"))?;
                let tables: Vec<String> = serde_json::from_str(&tables)
                    .map_err(|e| StoreError::corrupt("table ids", e))?;
                let combination = text(row.get(2))?;
                seating = candidates
                    .iter()
                    .find(|s| {
                        s.tables
                            .iter()
                            .map(|t| t.as_str())
                            .eq(tables.iter().map(String::as_str))
                            && s.combination.as_ref().map(|c| c.as_str()) == combination.as_deref()
                    })
                    .cloned();
            }
            "version" => {
                let date = text(row.get(1))?.ok_or_else(|| bad("no date"))?;
                let Some(Value::Int(v)) = row.get(2) else {
                    return Err(bad("no version"));
                };
                let v = *v as u64;
                let date = LocalDate::parse(&date).map_err(|e| StoreError::corrupt("date", e))?;
                versions.dates.push((date, v));
                // Raised by exactly one in this transaction, as `versions::bump_dates` does.
                versions.steps.push(crate::store::Step {
                    date,
                    part: String::new(),
                    from: v - 1,
                    to: v,
                });
            }
            _ => {
                said = text(row.get(1))?;
                seen = match row.get(2) {
                    Some(Value::Int(v)) => Some(*v as u64),
                    _ => None,
                };
            }
        }
    }
    versions.dates.sort();
    versions.steps.sort_by_key(|s| s.date);
    Ok(match said.as_deref() {
        Some("won") => Verdict::Won(
            seating.ok_or_else(|| {
                StoreError::corrupt("seating", "the hold took no candidate it was given")
            })?,
            versions,
        ),
        Some("lost") => Verdict::Lost(seen),
        Some("paced") => Verdict::Paced(seen),
        Some("over_cap") => Verdict::OverCap,
        Some("stale") => Verdict::Stale,
        Some("slow") => Verdict::Slow,
        other => {
            return Err(StoreError::corrupt(
                "verdict",
                format!("the hold script said {other:?}"),
            ))
        }
    })
}

/// The reservation as written by a won script.
pub(super) fn seated(mut r: Reservation, seating: &Seating) -> Reservation {
    r.seat(seating);
    r
}
