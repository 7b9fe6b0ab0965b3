//! A reservation as the API shows it.
use crate::domain::reservation::{Guest, Reservation, Status};
use crate::domain::time::{fmt_instant, fmt_slot_instant};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GuestBody {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

impl From<&Guest> for GuestBody {
    fn from(g: &Guest) -> Self {
        GuestBody {
            name: g.name.clone(),
            email: g.email.clone(),
            phone: g.phone.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReservationView {
    pub id: Uuid,
    pub restaurant_id: Uuid,
    /// The first of `table_ids`, kept for v1 clients.
    #[schema(example = "t3")]
    pub table_id: String,
    /// Every table it occupies, sorted; one element for a single table.
    #[schema(example = json!(["t3", "t4"]), min_items = 1, max_items = 6)]
    pub table_ids: Vec<String>,
    /// The combination it is seated on; `null` for a single table.
    #[schema(example = "c34", required = true)]
    pub combination_id: Option<String>,
    #[schema(example = "2026-12-05", format = Date)]
    pub date: String,
    #[schema(example = "19:00")]
    pub time: String,
    #[schema(example = "2026-12-05T18:00:00Z", format = DateTime)]
    pub start: String,
    #[schema(example = "2026-12-05T20:00:00Z", format = DateTime)]
    pub end: String,
    #[schema(minimum = 1, maximum = 100)]
    pub party_size: u32,
    pub status: Status,
    /// Present only while `held`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    /// Shown only to the reservation's token holder and to staff.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest: Option<GuestBody>,
    pub notes: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl ReservationView {
    /// The reservation as read at `now` (a held one past `expires_at` reads as expired).
    pub fn of(r: &Reservation, now: DateTime<Utc>, with_guest: bool) -> Self {
        let status = r.status_at(now);
        ReservationView {
            id: r.id,
            restaurant_id: r.restaurant_id,
            table_id: r.table_id.to_string(),
            table_ids: r.table_ids.iter().map(ToString::to_string).collect(),
            combination_id: r.combination_id.as_ref().map(ToString::to_string),
            date: r.date.to_string(),
            time: r.time.to_string(),
            start: fmt_slot_instant(r.start),
            end: fmt_slot_instant(r.end),
            party_size: r.party_size,
            status,
            expires_at: (status == Status::Held)
                .then(|| r.expires_at.map(fmt_instant))
                .flatten(),
            guest: if with_guest {
                r.guest.as_ref().map(GuestBody::from)
            } else {
                None
            },
            notes: r.notes.clone(),
            created_at: fmt_instant(r.created_at),
            // An expired hold changed when it expired, whenever the sweeper recorded it.
            updated_at: fmt_instant(match (status, r.expires_at) {
                (Status::Expired, Some(x)) => x,
                _ => r.updated_at,
            }),
        }
    }
}

/// A new hold: the reservation and, shown only now, the token that owns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HeldReservation {
    #[serde(flatten)]
    pub reservation: ReservationView,
    pub token: String,
}

/// `GET /v1/restaurants/{rid}/reservations`: every reservation of the date, with guests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReservationList {
    pub reservations: Vec<ReservationView>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expired_hold_reads_as_changed_at_its_expiry_whether_swept_or_not() {
        let now = Utc::now();
        let expiry = now - chrono::Duration::seconds(3);
        let mut r = crate::domain::reservation::sample(Status::Held, Some(expiry), now);
        r.created_at = now - chrono::Duration::minutes(5);
        r.updated_at = r.created_at;
        let unswept = ReservationView::of(&r, now, false);
        // The sweeper records it a little later.
        r.status = Status::Expired;
        r.updated_at = expiry + chrono::Duration::milliseconds(140);
        let swept = ReservationView::of(&r, now, false);
        assert_eq!(unswept.status, Status::Expired);
        assert_eq!(unswept.updated_at, fmt_instant(expiry));
        assert_eq!(swept.updated_at, unswept.updated_at);
    }
}
