use super::restaurant::TableId;
use super::time::{self, LocalDate, WallTime};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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

    pub fn parse(s: &str) -> Option<Status> {
        serde_json::from_value(serde_json::Value::String(s.to_owned())).ok()
    }

    /// Whether the status machine of SPEC section 2 allows `self → to`.
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
    pub table_id: TableId,
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

    pub fn occupies_at(&self, now: DateTime<Utc>) -> bool {
        Status::OCCUPYING.contains(&self.status_at(now))
    }

    /// Half-open intervals; an empty one (a no-show ended at its start) overlaps nothing.
    pub fn overlaps(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> bool {
        self.start < self.end && start < end && self.start < end && start < self.end
    }

    /// The wire form; `guest` only for the token holder and staff.
    pub fn view(&self, now: DateTime<Utc>, with_guest: bool) -> ReservationView {
        let status = self.status_at(now);
        ReservationView {
            id: self.id,
            restaurant_id: self.restaurant_id,
            table_id: self.table_id.to_string(),
            date: self.date.to_string(),
            time: self.time.to_string(),
            start: time::fmt_slot_instant(self.start),
            end: time::fmt_slot_instant(self.end),
            party_size: self.party_size,
            status,
            expires_at: (status == Status::Held)
                .then(|| self.expires_at.map(time::fmt_instant))
                .flatten(),
            guest: if with_guest { self.guest.clone() } else { None },
            notes: self.notes.clone(),
            created_at: time::fmt_instant(self.created_at),
            updated_at: time::fmt_instant(self.updated_at),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReservationView {
    pub id: Uuid,
    pub restaurant_id: Uuid,
    pub table_id: String,
    pub date: String,
    pub time: String,
    pub start: String,
    pub end: String,
    pub party_size: u32,
    #[schema(value_type = String)]
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub guest: Option<Guest>,
    pub notes: String,
    pub created_at: String,
    pub updated_at: String,
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
    fn statuses_round_trip_through_their_names() {
        for s in [
            Held, Confirmed, Released, Expired, Seated, Completed, Cancelled, NoShow,
        ] {
            assert_eq!(super::Status::parse(s.as_str()), Some(s));
        }
        assert_eq!(super::Status::parse("gone"), None);
    }
}
