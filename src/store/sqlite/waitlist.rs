//! The waitlist on SQLite: joins, reads, offers and leaves, each one write transaction. An
//! offer is a hold decided by the same code as any hold (`decide::insert_in`), with the entry's
//! `waiting → offered` change in the same transaction.
use super::batch::{close_savepoint, savepoint};
use super::decide::insert_in;
use super::rows::{db, guest_json, ms, row_to_reservation};
use super::versions::bump_dates;
use super::waitlist_mail::{mail_lost, mail_offer};
use super::SqliteStore;
use crate::domain::reservation::{Guest, Status};
use crate::domain::waitlist::{Offer, WaitStatus, WaitlistEntry};
use crate::domain::{LocalDate, Reservation, WallTime};
use crate::store::{
    InsertOutcome, JoinOutcome, LeaveOutcome, NewEntry, NewOffer, OfferOutcome, StoreError,
    StoreResult, Versions, WaitingDay,
};
use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, Transaction};
use uuid::Uuid;

/// A date's queue, in order (`waitlist_queue`).
pub(super) const QUEUE_SQL: &str = "SELECT * FROM waitlist WHERE restaurant_id = ? AND date = ?
     ORDER BY created_ms, id";
/// The entry of a token (its unique index).
pub(super) const BY_TOKEN_SQL: &str = "SELECT * FROM waitlist WHERE token_hash = ?";
/// Offers due to lapse, run in a hold's transaction (`waitlist_offered`).
pub(super) const LAPSE_DUE_SQL: &str = "UPDATE waitlist SET status = 'lapsed', updated_ms = ?1
     WHERE status = 'offered' AND offer_expires_ms <= ?1
     RETURNING restaurant_id, date, offer_reservation_id, mail_to, guest";
/// The entry of an offered reservation follows its change (`waitlist_by_offer`).
pub(super) const FOLLOW_SQL: &str = "UPDATE waitlist SET status = ?2, updated_ms = ?3
     WHERE offer_reservation_id = ?1 AND status = 'offered'
     RETURNING *";
/// Dates with waiting entries, for the reconcile loop (`waitlist_waiting`).
pub(super) const WAITING_DAYS_SQL: &str =
    "SELECT restaurant_id, date, MIN(created_ms) FROM waitlist
     WHERE status = 'waiting' AND date >= ?1
     GROUP BY date, restaurant_id ORDER BY date, restaurant_id LIMIT ?2";

/// The waitlist's statements, by name, for the plan tests.
pub(super) fn statements() -> Vec<(&'static str, String)> {
    [
        ("waitlist of a date", QUEUE_SQL),
        ("entry of a token", BY_TOKEN_SQL),
        ("lapse due offers", LAPSE_DUE_SQL),
        ("entry of an offer", FOLLOW_SQL),
        ("dates with waiting entries", WAITING_DAYS_SQL),
    ]
    .into_iter()
    .map(|(n, s)| (n, s.to_owned()))
    .collect()
}

fn from_ms(v: i64) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp_millis(v)
        .ok_or_else(|| StoreError::corrupt("instant", format!("{v} ms is out of range")))
}

fn row_to_entry(row: &SqliteRow) -> StoreResult<WaitlistEntry> {
    const READ: &str = "read a waitlist row";
    let s = |c: &str| row.try_get::<String, _>(c).map_err(db(READ));
    let uuid = |v: String| Uuid::parse_str(&v).map_err(|e| StoreError::corrupt("id", e));
    let time = |v: String| WallTime::parse(&v).map_err(|e| StoreError::corrupt("time", e));
    let offer = match (
        row.try_get::<Option<String>, _>("offer_reservation_id")
            .map_err(db(READ))?,
        row.try_get::<Option<String>, _>("offer_time")
            .map_err(db(READ))?,
        row.try_get::<Option<i64>, _>("offer_expires_ms")
            .map_err(db(READ))?,
    ) {
        (Some(r), Some(t), Some(x)) => Some(Offer {
            reservation_id: uuid(r)?,
            time: time(t)?,
            expires_at: from_ms(x)?,
        }),
        _ => None,
    };
    let status = s("status")?;
    Ok(WaitlistEntry {
        id: uuid(s("id")?)?,
        restaurant_id: uuid(s("restaurant_id")?)?,
        date: LocalDate::parse(&s("date")?).map_err(|e| StoreError::corrupt("date", e))?,
        party_size: row.try_get::<i64, _>("party_size").map_err(db(READ))? as u32,
        from: time(s("from_time")?)?,
        to: time(s("to_time")?)?,
        status: WaitStatus::parse(&status)
            .ok_or_else(|| StoreError::corrupt("waitlist status", status.clone()))?,
        offer,
        guest: serde_json::from_str::<Guest>(&s("guest")?)
            .map_err(|e| StoreError::corrupt("guest", e))?,
        created_at: from_ms(row.try_get("created_ms").map_err(db(READ))?)?,
        updated_at: from_ms(row.try_get("updated_ms").map_err(db(READ))?)?,
    })
}

/// Offered entries whose offer reached `expires_at` by `now` become `lapsed`, in the caller's
/// transaction: the hold they name is expired by then (offers are never extended). Each one
/// whose offer was mailed gets its "lost" mail in the same transaction. Returns the
/// restaurant/dates they are on.
pub(super) async fn lapse_due_offers(
    tx: &mut Transaction<'_, Sqlite>,
    now: i64,
) -> StoreResult<Vec<(String, LocalDate)>> {
    type Lapsed = (String, String, Option<String>, Option<String>, String);
    let rows: Vec<Lapsed> = sqlx::query_as(LAPSE_DUE_SQL)
        .bind(now)
        .fetch_all(&mut **tx)
        .await
        .map_err(db("lapse due offers"))?;
    let mut out = Vec::with_capacity(rows.len());
    for (r, d, offered, mail_to, guest) in rows {
        if let (Some(offered), Some(to)) = (offered, mail_to) {
            mail_lost(tx, &to, &guest, None, &offered, now).await?;
        }
        out.push((
            r,
            LocalDate::parse(&d).map_err(|e| StoreError::corrupt("date", e))?,
        ));
    }
    Ok(out)
}

/// The entry offered `reservation` follows its change (the reservation as changed), in the
/// caller's transaction: a confirm books it, a release or expiry lapses it — with its "lost"
/// mail when the offer was mailed.
pub(super) async fn follow_offer(
    tx: &mut Transaction<'_, Sqlite>,
    reservation: &Reservation,
    now: i64,
) -> StoreResult<Option<WaitlistEntry>> {
    let status = match reservation.status {
        Status::Confirmed => "booked",
        Status::Released | Status::Expired => "lapsed",
        _ => return Ok(None),
    };
    let id = reservation.id.to_string();
    let Some(row) = sqlx::query(FOLLOW_SQL)
        .bind(&id)
        .bind(status)
        .bind(now)
        .fetch_optional(&mut **tx)
        .await
        .map_err(db("move the entry of an offer"))?
    else {
        return Ok(None);
    };
    let entry = row_to_entry(&row)?;
    let to: Option<String> = row.try_get("mail_to").map_err(db("read mail_to"))?;
    let guest: String = row.try_get("guest").map_err(db("read guest"))?;
    if let (Some(to), "lapsed") = (to, status) {
        mail_lost(tx, &to, &guest, Some(reservation.clone()), &id, now).await?;
    }
    Ok(Some(entry))
}

async fn entry_in(
    tx: &mut Transaction<'_, Sqlite>,
    id: &str,
) -> StoreResult<Option<WaitlistEntry>> {
    sqlx::query("SELECT * FROM waitlist WHERE id = ?")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(db("read a waitlist entry"))?
        .as_ref()
        .map(row_to_entry)
        .transpose()
}

impl SqliteStore {
    pub(super) async fn join_waitlist_(&self, new: NewEntry) -> StoreResult<JoinOutcome> {
        let e = new.entry;
        let rid = e.restaurant_id.to_string();
        let mut tx = self.begin_write().await?;
        if Self::revision(&mut tx, &rid).await?.is_none() {
            return Ok(JoinOutcome::Gone);
        }
        sqlx::query(
            "INSERT INTO waitlist (id, restaurant_id, date, party_size, from_time, to_time,
               status, guest, token_hash, created_ms, updated_ms)
             VALUES (?, ?, ?, ?, ?, ?, 'waiting', ?, ?, ?, ?)",
        )
        .bind(e.id.to_string())
        .bind(&rid)
        .bind(e.date.to_string())
        .bind(i64::from(e.party_size))
        .bind(e.from.to_string())
        .bind(e.to.to_string())
        .bind(guest_json(&e.guest)?)
        .bind(&new.token_hash)
        .bind(ms(e.created_at))
        .bind(ms(e.updated_at))
        .execute(&mut *tx)
        .await
        .map_err(db("insert a waitlist entry"))?;
        let versions = bump_dates(&mut tx, &rid, [e.date]).await?;
        tx.commit().await.map_err(db("commit a join"))?;
        let entry = WaitlistEntry {
            status: WaitStatus::Waiting,
            offer: None,
            ..e
        };
        Ok(JoinOutcome::Joined { entry, versions })
    }

    pub(super) async fn waitlist_entry_(&self, id: Uuid) -> StoreResult<Option<WaitlistEntry>> {
        sqlx::query("SELECT * FROM waitlist WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await
            .map_err(db("read a waitlist entry"))?
            .as_ref()
            .map(row_to_entry)
            .transpose()
    }

    pub(super) async fn waitlist_entry_by_token_(
        &self,
        hash: &str,
    ) -> StoreResult<Option<WaitlistEntry>> {
        sqlx::query(BY_TOKEN_SQL)
            .bind(hash)
            .fetch_optional(&self.reader)
            .await
            .map_err(db("read a waitlist entry by token"))?
            .as_ref()
            .map(row_to_entry)
            .transpose()
    }

    pub(super) async fn waitlist_on_(
        &self,
        restaurant_id: Uuid,
        date: LocalDate,
    ) -> StoreResult<Vec<WaitlistEntry>> {
        sqlx::query(QUEUE_SQL)
            .bind(restaurant_id.to_string())
            .bind(date.to_string())
            .fetch_all(&self.reader)
            .await
            .map_err(db("read a waitlist"))?
            .iter()
            .map(row_to_entry)
            .collect()
    }

    pub(super) async fn waiting_days_(
        &self,
        from: LocalDate,
        limit: u32,
    ) -> StoreResult<Vec<WaitingDay>> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(WAITING_DAYS_SQL)
            .bind(from.to_string())
            .bind(i64::from(limit))
            .fetch_all(&self.reader)
            .await
            .map_err(db("read the days with waiting entries"))?;
        rows.into_iter()
            .map(|(r, d, c)| {
                Ok(WaitingDay {
                    restaurant_id: Uuid::parse_str(&r).map_err(|e| StoreError::corrupt("id", e))?,
                    date: LocalDate::parse(&d).map_err(|e| StoreError::corrupt("date", e))?,
                    oldest: from_ms(c)?,
                })
            })
            .collect()
    }

    /// Queued to the group-commit writer like any hold: offers made at once share its commit.
    pub(super) async fn offer_(&self, o: NewOffer) -> StoreResult<OfferOutcome> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.batch(super::batch::Job::Offer(Box::new(o), reply))
            .await?;
        answer
            .await
            .map_err(|_| StoreError::Internal("the writer dropped an offer".into()))?
    }
}

/// An offer decided inside the writer's transaction (the caller commits, or rolls back what
/// this wrote unless it answers `Offered`).
pub(super) async fn offer_in(
    tx: &mut Transaction<'_, Sqlite>,
    o: NewOffer,
) -> StoreResult<OfferOutcome> {
    let NewOffer {
        entry_id,
        mut hold,
        mail,
    } = o;
    let now = hold.now;
    let rid = hold.reservation.restaurant_id.to_string();
    // An offer is always decided as a plain hold: no cap, no token, no idempotent answer.
    (hold.cap, hold.idem, hold.token_hash) = (None, None, None);
    if let Some(p) = hold.pacing.as_mut() {
        p.enforce = true;
    }
    if SqliteStore::revision(tx, &rid).await? != Some(hold.restaurant_revision) {
        return Ok(OfferOutcome::Stale);
    }
    let id = entry_id.to_string();
    let waiting = match entry_in(tx, &id).await? {
        Some(e) if e.status == WaitStatus::Waiting => e,
        other => return Ok(OfferOutcome::NotWaiting(other)),
    };
    let (reservation, mut versions) = match insert_in(tx, hold).await? {
        InsertOutcome::Won {
            reservation,
            versions,
        } => (reservation, versions),
        InsertOutcome::Lost { .. } | InsertOutcome::OverCap => return Ok(OfferOutcome::Lost),
        InsertOutcome::Paced { .. } => return Ok(OfferOutcome::Paced),
        InsertOutcome::Stale => return Ok(OfferOutcome::Stale),
    };
    let expires = reservation
        .expires_at
        .ok_or(StoreError::Internal("an offer without expires_at".into()))?;
    let row = sqlx::query(
        "UPDATE waitlist SET status = 'offered', offer_reservation_id = ?2, offer_time = ?3,
               offer_expires_ms = ?4, updated_ms = ?5, mail_to = ?6
             WHERE id = ?1 AND status = 'waiting' RETURNING *",
    )
    .bind(&id)
    .bind(reservation.id.to_string())
    .bind(reservation.time.to_string())
    .bind(ms(expires))
    .bind(ms(now))
    .bind(mail.as_ref().map(|m| m.to.as_str()))
    .fetch_one(&mut **tx)
    .await
    .map_err(db("mark an entry offered"))?;
    let entry = row_to_entry(&row)?;
    if let Some(mail) = &mail {
        mail_offer(tx, mail, &reservation, &waiting.guest, ms(now)).await?;
    }
    let more = bump_dates(tx, &rid, [entry.date]).await?;
    merge(&mut versions, more);
    Ok(OfferOutcome::Offered {
        entry,
        reservation,
        versions,
    })
}

impl SqliteStore {
    /// The entry leaves; when that releases its offer, `offer` (planned for the released
    /// capacity) is decided next in the same transaction, in a savepoint of its own: refused,
    /// only it is rolled back.
    pub(super) async fn leave_waitlist_(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
        offer: Option<NewOffer>,
    ) -> StoreResult<(LeaveOutcome, Option<OfferOutcome>)> {
        let now_ms = ms(now);
        let mut tx = self.begin_write().await?;
        let Some(cur) = entry_in(&mut tx, &id.to_string()).await? else {
            return Ok((LeaveOutcome::NotFound, None));
        };
        let offered = match cur.status {
            WaitStatus::Waiting => None,
            WaitStatus::Offered => cur.offer.as_ref().map(|o| o.reservation_id),
            _ => return Ok((LeaveOutcome::Unchanged(cur), None)),
        };
        let row = sqlx::query(
            "UPDATE waitlist SET status = 'left', updated_ms = ?2 WHERE id = ?1 RETURNING *",
        )
        .bind(id.to_string())
        .bind(now_ms)
        .fetch_one(&mut *tx)
        .await
        .map_err(db("leave the waitlist"))?;
        let entry = row_to_entry(&row)?;
        let rid = entry.restaurant_id.to_string();
        let mut dates = vec![entry.date];
        let mut released = None;
        if let Some(res) = offered {
            let row = sqlx::query(
                "UPDATE reservations SET status = 'released', expires_ms = NULL, updated_ms = ?2
                 WHERE id = ?1 AND status = 'held' AND expires_ms > ?2 RETURNING *",
            )
            .bind(res.to_string())
            .bind(now_ms)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db("decline an offer"))?;
            if let Some(row) = row {
                let r = row_to_reservation(&row)?;
                dates.extend(r.dates_spanned());
                released = Some(r);
            }
        }
        let versions = bump_dates(&mut tx, &rid, dates).await?;
        let next = match offer.filter(|_| released.is_some()) {
            Some(o) => {
                savepoint(&mut tx)
                    .await
                    .map_err(db("open the offer's savepoint"))?;
                // Refused or failed, only the offer is undone: the leave stands, and the
                // caller offers the declined capacity the usual way.
                let out = crate::store::planned_offer(offer_in(&mut tx, o).await);
                let keep = matches!(out, Some(OfferOutcome::Offered { .. }));
                close_savepoint(&mut tx, keep)
                    .await
                    .map_err(db("close the offer's savepoint"))?;
                out
            }
            None => None,
        };
        tx.commit().await.map_err(db("commit a leave"))?;
        let left = LeaveOutcome::Left {
            entry,
            released,
            versions,
        };
        Ok((left, next))
    }
}

/// Adds the dates of `more`, raised later in the same transaction, to `v` (the later version
/// of a date wins; a date raised twice moved by two in this one commit, from the first step's
/// `from` to the second's `to`).
fn merge(v: &mut Versions, more: Versions) {
    for (d, n) in more.dates {
        match v.dates.iter_mut().find(|(x, _)| *x == d) {
            Some(slot) => slot.1 = slot.1.max(n),
            None => v.dates.push((d, n)),
        }
    }
    v.dates.sort();
    for s in more.steps {
        match v
            .steps
            .iter_mut()
            .find(|x| x.date == s.date && x.part == s.part)
        {
            Some(x) => {
                x.from = x.from.min(s.from);
                x.to = x.to.max(s.to);
            }
            None => v.steps.push(s),
        }
    }
}
