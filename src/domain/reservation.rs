use super::table::TableId;
use super::time::{LocalDate, WallTime};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Derives its schema too: the wire shows statuses by these names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Held,
    Confirmed,
    Released,
    Expired,
    Seated,
    Completed,
    Cancelled,
    NoShow,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Held => "held",
            Status::Confirmed => "confirmed",
            Status::Released => "released",
            Status::Expired => "expired",
            Status::Seated => "seated",
            Status::Completed => "completed",
            Status::Cancelled => "cancelled",
            Status::NoShow => "no_show",
        }
    }

    pub const ALL: [Status; 8] = [
        Status::Held,
        Status::Confirmed,
        Status::Released,
        Status::Expired,
        Status::Seated,
        Status::Completed,
        Status::Cancelled,
        Status::NoShow,
    ];

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

impl std::str::FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Status::parse(s).ok_or_else(|| format!("unknown status `{s}`"))
    }
}

impl Status {
    /// Whether the status machine of docs/http-api.md allows `self → to`.
    pub fn can_become(self, to: Status) -> bool {
        use Status::*;
        matches!(
            (self, to),
            (Held, Confirmed | Released | Expired)
                | (Confirmed, Seated | Cancelled | NoShow)
                | (Seated, Completed)
        )
    }

    /// Statuses that may occupy a table (a held one only until it expires).
    pub const OCCUPYING: [Status; 5] = [
        Status::Held,
        Status::Confirmed,
        Status::Seated,
        Status::Completed,
        Status::NoShow,
    ];
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Guest {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

/// A reservation as stored. Read it through [`Reservation::status_at`]: a held reservation past
/// `expires_at` is expired whether or not the sweeper has run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reservation {
    pub id: Uuid,
    pub restaurant_id: Uuid,
    /// The first of `table_ids`, kept for v1 clients.
    pub table_id: TableId,
    /// Every table the reservation occupies, sorted; one element for a single table.
    /// (Defaulted so records serialized before combinations still read.)
    #[serde(default)]
    pub table_ids: Vec<TableId>,
    /// The combination it was seated on; `None` for a single table.
    #[serde(default)]
    pub combination_id: Option<TableId>,
    pub date: LocalDate,
    pub time: WallTime,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub party_size: u32,
    pub status: Status,
    pub expires_at: Option<DateTime<Utc>>,
    pub guest: Option<Guest>,
    pub notes: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Reservation {
    pub fn status_at(&self, now: DateTime<Utc>) -> Status {
        match (self.status, self.expires_at) {
            (Status::Held, Some(exp)) if exp <= now => Status::Expired,
            (s, _) => s,
        }
    }

    /// Whether it occupies `table` (as a single table or as a member of its combination).
    pub fn uses(&self, table: &TableId) -> bool {
        self.table_ids.contains(table)
    }

    /// Seats it on a seating option: every member table, the first as `table_id`.
    pub fn seat(&mut self, s: &crate::domain::Seating) {
        self.table_id = s.first().clone();
        self.table_ids = s.tables.clone();
        self.combination_id = s.combination.clone();
    }

    pub fn occupies_at(&self, now: DateTime<Utc>) -> bool {
        Status::OCCUPYING.contains(&self.status_at(now))
    }

    /// The local dates whose availability this reservation can move: its own, and the next one
    /// when it may run past local midnight (a late walk-in). An hour of slack covers a DST
    /// change that night; raising one version too many is harmless.
    pub fn dates_spanned(&self) -> Vec<LocalDate> {
        let to_midnight = 1440 - i64::from(self.time.minutes());
        if (self.end - self.start).num_minutes() + 60 > to_midnight {
            vec![self.date, self.date.succ()]
        } else {
            vec![self.date]
        }
    }

    /// Half-open intervals; an empty one (a no-show ended at its start) overlaps nothing.
    pub fn overlaps(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> bool {
        self.start < self.end && start < end && self.start < end && start < self.end
    }
}

/// A reservation of t1 for two, 17 days after `now`, in `status` (tests of its views).
#[cfg(test)]
pub(crate) fn sample(
    status: Status,
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Reservation {
    let t = super::TableId::parse("t1").unwrap();
    let start = now + chrono::Duration::days(17);
    Reservation {
        id: uuid::Uuid::new_v4(),
        restaurant_id: uuid::Uuid::new_v4(),
        table_id: t.clone(),
        table_ids: vec![t],
        combination_id: None,
        date: super::LocalDate::from_naive(start.date_naive()),
        time: super::WallTime::parse("19:00").unwrap(),
        start,
        end: start + chrono::Duration::hours(2),
        party_size: 2,
        status,
        expires_at,
        guest: None,
        notes: String::new(),
        created_at: now,
        updated_at: now,
    }
}

#[cfg(test)]
mod tests {
    use super::Status::*;

    #[test]
    fn the_status_machine_allows_only_the_spec_transitions() {
        let all = [
            Held, Confirmed, Released, Expired, Seated, Completed, Cancelled, NoShow,
        ];
        let allowed = [
            (Held, Confirmed),
            (Held, Released),
            (Held, Expired),
            (Confirmed, Seated),
            (Confirmed, Cancelled),
            (Confirmed, NoShow),
            (Seated, Completed),
        ];
        for a in all {
            for b in all {
                assert_eq!(a.can_become(b), allowed.contains(&(a, b)), "{a:?} -> {b:?}");
            }
        }
    }

    #[test]
    fn a_reservation_running_past_midnight_spans_the_next_date() {
        use crate::domain::{LocalDate, TableId, WallTime};
        use chrono::{Duration, TimeZone, Utc};
        let date = LocalDate::parse("2026-12-05").unwrap();
        let at = |hhmm: &str, minutes: i64| {
            let time = WallTime::parse(hhmm).unwrap();
            let start = Utc.with_ymd_and_hms(2026, 12, 5, 0, 0, 0).unwrap()
                + Duration::minutes(i64::from(time.minutes()));
            super::Reservation {
                id: uuid::Uuid::nil(),
                restaurant_id: uuid::Uuid::nil(),
                table_id: TableId::parse("t1").unwrap(),
                table_ids: vec![TableId::parse("t1").unwrap()],
                combination_id: None,
                date,
                time,
                start,
                end: start + Duration::minutes(minutes),
                party_size: 2,
                status: Seated,
                expires_at: None,
                guest: None,
                notes: String::new(),
                created_at: start,
                updated_at: start,
            }
        };
        assert_eq!(at("19:00", 120).dates_spanned(), vec![date]);
        assert_eq!(at("23:10", 120).dates_spanned(), vec![date, date.succ()]);
        // Within an hour of midnight counts too: a DST night may be an hour longer.
        assert_eq!(at("21:30", 120).dates_spanned(), vec![date, date.succ()]);
    }

    #[test]
    fn statuses_round_trip_through_their_names() {
        for s in [
            Held, Confirmed, Released, Expired, Seated, Completed, Cancelled, NoShow,
        ] {
            assert_eq!(super::Status::parse(s.as_str()), Some(s));
        }
        assert_eq!(super::Status::parse("gone"), None);
    }
}
