//! A restaurant as the API shows it: its settings and tables, never a token.
use crate::domain::restaurant::{HoursPeriod, TurnRule};
use crate::domain::Table;
use crate::domain::{Combination, Pacing, Restaurant};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TurnRuleDoc {
    /// The largest party this rule covers; `null` for the catch-all.
    #[schema(minimum = 1)]
    pub max_party: Option<u32>,
    #[schema(minimum = 1, maximum = 720)]
    pub minutes: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DayName {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct HoursDoc {
    pub days: Vec<DayName>,
    #[schema(example = "18:00", pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub open: String,
    #[schema(
        example = "23:00",
        pattern = r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"
    )]
    pub close: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TableDoc {
    #[schema(example = "t1", pattern = r"^[A-Za-z0-9_-]{1,32}$")]
    pub id: String,
    #[schema(example = "T1")]
    pub label: String,
    #[schema(minimum = 1, maximum = 100)]
    pub min_party: u32,
    #[schema(minimum = 1, maximum = 100)]
    pub max_party: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "window")]
    pub area: Option<String>,
}

/// Tables that may be joined for one party.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CombinationDoc {
    #[schema(example = "c34", pattern = r"^[A-Za-z0-9_-]{1,32}$")]
    pub id: String,
    /// 2–6 distinct tables of the restaurant, sorted.
    #[schema(example = json!(["t3", "t4"]), min_items = 2, max_items = 6,
        pattern = r"^[A-Za-z0-9_-]{1,32}$")]
    pub tables: Vec<String>,
    #[schema(minimum = 1, maximum = 100)]
    pub min_party: u32,
    #[schema(minimum = 1, maximum = 100)]
    pub max_party: u32,
}

impl From<&Combination> for CombinationDoc {
    fn from(c: &Combination) -> Self {
        CombinationDoc {
            id: c.id.to_string(),
            tables: c.tables.iter().map(ToString::to_string).collect(),
            min_party: c.min_party,
            max_party: c.max_party,
        }
    }
}

/// How many covers and parties may start in one window of the day.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PacingDoc {
    /// Divides 60 and is a multiple of `slot_minutes`; windows start at local midnight.
    #[schema(minimum = 5, maximum = 60, example = 15)]
    pub window_minutes: u32,
    /// Covers (party sizes summed) per window; `null` for no limit.
    #[schema(minimum = 1, maximum = 100000, example = 12)]
    pub max_covers: Option<u32>,
    /// Reservations per window; `null` for no limit.
    #[schema(minimum = 1, maximum = 100000, example = 4)]
    pub max_parties: Option<u32>,
}

impl From<&Pacing> for PacingDoc {
    fn from(p: &Pacing) -> Self {
        PacingDoc {
            window_minutes: p.window_minutes,
            max_covers: p.max_covers,
            max_parties: p.max_parties,
        }
    }
}

/// The restaurant document: `GET`, `PATCH` and the `restaurant` of a creation.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RestaurantDoc {
    pub id: Uuid,
    #[schema(example = "Chez Rust")]
    pub name: String,
    /// An IANA timezone.
    #[schema(example = "Europe/Paris")]
    pub timezone: String,
    #[schema(minimum = 5, maximum = 60)]
    pub slot_minutes: u32,
    #[schema(minimum = 1, maximum = 3600)]
    pub hold_seconds: u32,
    #[schema(minimum = 1, maximum = 730)]
    pub booking_horizon_days: u32,
    /// Sorted by `max_party`, the catch-all (`null`) last.
    pub turn_minutes: Vec<TurnRuleDoc>,
    pub hours: Vec<HoursDoc>,
    /// Sorted, without repeats.
    #[schema(value_type = Vec<String>, format = Date, pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]
    pub closed_dates: Vec<String>,
    /// Sorted by id.
    pub tables: Vec<TableDoc>,
    /// Sorted by id.
    pub combinations: Vec<CombinationDoc>,
    /// `null`: no pacing.
    #[schema(required = true)]
    pub pacing: Option<PacingDoc>,
    /// Seconds a waitlist offer is held for its entry.
    #[schema(minimum = 15, maximum = 3600)]
    pub offer_seconds: u32,
}

impl From<&TurnRule> for TurnRuleDoc {
    fn from(r: &TurnRule) -> Self {
        TurnRuleDoc {
            max_party: r.max_party,
            minutes: r.minutes,
        }
    }
}

impl DayName {
    fn of(d: chrono::Weekday) -> Self {
        use chrono::Weekday::*;
        match d {
            Mon => DayName::Mon,
            Tue => DayName::Tue,
            Wed => DayName::Wed,
            Thu => DayName::Thu,
            Fri => DayName::Fri,
            Sat => DayName::Sat,
            Sun => DayName::Sun,
        }
    }
}

impl From<&HoursPeriod> for HoursDoc {
    fn from(h: &HoursPeriod) -> Self {
        HoursDoc {
            days: h.days.iter().map(|d| DayName::of(d.0)).collect(),
            open: h.open.to_string(),
            close: h.close.to_string(),
        }
    }
}

impl From<&Table> for TableDoc {
    fn from(t: &Table) -> Self {
        TableDoc {
            id: t.id.to_string(),
            label: t.label.clone(),
            min_party: t.min_party,
            max_party: t.max_party,
            area: t.area.clone(),
        }
    }
}

impl From<&Restaurant> for RestaurantDoc {
    fn from(r: &Restaurant) -> Self {
        RestaurantDoc {
            id: r.id,
            name: r.name.clone(),
            timezone: r.timezone.name().to_owned(),
            slot_minutes: r.slot_minutes,
            hold_seconds: r.hold_seconds,
            booking_horizon_days: r.booking_horizon_days,
            turn_minutes: r.turn_minutes.iter().map(TurnRuleDoc::from).collect(),
            hours: r.hours.iter().map(HoursDoc::from).collect(),
            closed_dates: r.closed_dates.iter().map(|d| d.to_string()).collect(),
            tables: r.tables.iter().map(TableDoc::from).collect(),
            combinations: r.combinations.iter().map(CombinationDoc::from).collect(),
            pacing: r.pacing.as_ref().map(PacingDoc::from),
            offer_seconds: r.offer_seconds,
        }
    }
}

/// One entry of `GET /v1/restaurants`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RestaurantSummary {
    pub id: Uuid,
    pub name: String,
    #[schema(example = "Europe/Paris")]
    pub timezone: String,
}

/// `GET /v1/restaurants`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RestaurantList {
    pub restaurants: Vec<RestaurantSummary>,
}

/// `POST /v1/restaurants`: the new restaurant and, shown only now, its staff token.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CreatedRestaurant {
    pub restaurant: RestaurantDoc,
    pub staff_token: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_document_serialises_exactly_as_the_restaurant() {
        let r: Restaurant = serde_json::from_value(json!({
            "id": Uuid::nil(), "name": "Chez Rust", "timezone": "Europe/Paris",
            "slot_minutes": 15, "hold_seconds": 300, "booking_horizon_days": 60,
            "turn_minutes": [{"max_party": 2, "minutes": 90}, {"max_party": null, "minutes": 150}],
            "hours": [{"days": ["mon", "sun"], "open": "18:00", "close": "24:00"}],
            "closed_dates": ["2026-12-25"],
            "tables": [{"id": "t1", "label": "T1", "min_party": 1, "max_party": 2, "area": "window"},
                       {"id": "t2", "label": "T2", "min_party": 1, "max_party": 4}],
            "combinations": [{"id": "c12", "tables": ["t1", "t2"], "min_party": 3, "max_party": 6}],
            "pacing": {"window_minutes": 30, "max_covers": 12, "max_parties": null}
        }))
        .unwrap();
        assert_eq!(
            serde_json::to_string(&RestaurantDoc::from(&r)).unwrap(),
            serde_json::to_string(&r).unwrap()
        );
    }
}
