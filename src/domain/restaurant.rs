use super::pacing::Pacing;
use super::seating::{validate_combinations, Combination, Seating};
use super::table::{Table, TableId};
use super::time::{LocalDate, WallTime};
use super::{FieldError, PartySize};
use chrono::Weekday;
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TurnRule {
    pub max_party: Option<u32>,
    pub minutes: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Day(pub Weekday);

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl Serialize for Day {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(DAY_NAMES[self.0.num_days_from_monday() as usize])
    }
}

impl<'de> Deserialize<'de> for Day {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        DAY_NAMES
            .iter()
            .position(|n| *n == s)
            .map(|i| Day(Weekday::try_from(i as u8).expect("0..7")))
            .ok_or_else(|| serde::de::Error::custom(format!("`{s}` is not one of mon…sun")))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoursPeriod {
    pub days: Vec<Day>,
    pub open: WallTime,
    pub close: WallTime,
}

mod tz_serde {
    use chrono_tz::Tz;
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(tz: &Tz, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(tz.name())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Tz, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A restaurant and its settings, in its wire form (docs/http-api.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Restaurant {
    pub id: Uuid,
    pub name: String,
    #[serde(with = "tz_serde")]
    pub timezone: Tz,
    pub slot_minutes: u32,
    pub hold_seconds: u32,
    pub booking_horizon_days: u32,
    pub turn_minutes: Vec<TurnRule>,
    pub hours: Vec<HoursPeriod>,
    pub closed_dates: Vec<LocalDate>,
    pub tables: Vec<Table>,
    /// Tables that may be joined for one party (absent in documents written before v2).
    #[serde(default)]
    pub combinations: Vec<Combination>,
    /// `None`: no pacing.
    #[serde(default)]
    pub pacing: Option<Pacing>,
    /// How long a waitlist offer is held for its entry (absent in documents before v2).
    #[serde(default = "default_offer_seconds")]
    pub offer_seconds: u32,
}

fn default_offer_seconds() -> u32 {
    DEFAULT_OFFER_SECONDS
}

/// Seconds an offer is held for its entry unless the restaurant says otherwise.
pub const DEFAULT_OFFER_SECONDS: u32 = 120;
/// Bounds of a restaurant's `offer_seconds`.
pub const OFFER_SECONDS: std::ops::RangeInclusive<u32> = 15..=3600;

pub const MAX_TURN_MINUTES: u32 = 720;
pub const MAX_TABLES: usize = 200;

pub fn default_turns() -> Vec<TurnRule> {
    vec![
        TurnRule {
            max_party: Some(2),
            minutes: 90,
        },
        TurnRule {
            max_party: Some(4),
            minutes: 120,
        },
        TurnRule {
            max_party: None,
            minutes: 150,
        },
    ]
}

impl Restaurant {
    /// Turn time for a party; the rules are sorted and end in the catch-all.
    pub fn turn(&self, p: PartySize) -> chrono::Duration {
        let rule = self
            .turn_minutes
            .iter()
            .find(|r| r.max_party.is_none_or(|m| p.get() <= m))
            .expect("validated: one catch-all rule");
        chrono::Duration::minutes(i64::from(rule.minutes))
    }

    pub fn table(&self, id: &TableId) -> Option<&Table> {
        self.tables.iter().find(|t| &t.id == id)
    }

    /// Tables that fit a party, best fit first: smallest `max_party`, then smallest id.
    pub fn fitting_tables(&self, p: PartySize) -> Vec<&Table> {
        let mut v: Vec<&Table> = self.tables.iter().filter(|t| t.fits(p)).collect();
        v.sort_by(|a, b| a.max_party.cmp(&b.max_party).then(a.id.cmp(&b.id)));
        v
    }

    pub fn is_closed(&self, d: LocalDate) -> bool {
        self.closed_dates.contains(&d)
    }

    pub fn tz(&self) -> Tz {
        self.timezone
    }

    /// Checks the settings rules of docs/http-api.md and normalises the order of rules and
    /// tables. Returns every broken rule.
    pub fn validate(&mut self) -> Result<(), Vec<FieldError>> {
        let mut errs = Vec::new();
        if self.name.trim().is_empty() || self.name.len() > 200 {
            errs.push(FieldError::new("name", "must be 1 to 200 bytes"));
        } else if self.name.chars().any(char::is_control) {
            // It is the sender's name on every mail: a line break there would split a header.
            errs.push(FieldError::new("name", "must not hold control characters"));
        }
        if !(5..=60).contains(&self.slot_minutes) || 60 % self.slot_minutes != 0 {
            errs.push(FieldError::new(
                "slot_minutes",
                "must be between 5 and 60 and divide 60",
            ));
        }
        if !(1..=3600).contains(&self.hold_seconds) {
            errs.push(FieldError::new(
                "hold_seconds",
                "must be between 1 and 3600",
            ));
        }
        if !OFFER_SECONDS.contains(&self.offer_seconds) {
            errs.push(FieldError::new(
                "offer_seconds",
                "must be between 15 and 3600",
            ));
        }
        if !(1..=730).contains(&self.booking_horizon_days) {
            errs.push(FieldError::new(
                "booking_horizon_days",
                "must be between 1 and 730",
            ));
        }
        self.turn_minutes
            .sort_by_key(|r| r.max_party.map_or(u64::MAX, u64::from));
        let catch_alls = self
            .turn_minutes
            .iter()
            .filter(|r| r.max_party.is_none())
            .count();
        if catch_alls != 1 {
            errs.push(FieldError::new(
                "turn_minutes",
                "exactly one rule must have max_party null (the catch-all)",
            ));
        }
        if self
            .turn_minutes
            .windows(2)
            .any(|w| w[0].max_party.is_some() && w[0].max_party == w[1].max_party)
        {
            errs.push(FieldError::new(
                "turn_minutes",
                "duplicate max_party values",
            ));
        }
        for (i, r) in self.turn_minutes.iter().enumerate() {
            if !(1..=MAX_TURN_MINUTES).contains(&r.minutes) {
                errs.push(FieldError::new(
                    format!("turn_minutes[{i}].minutes"),
                    format!("must be between 1 and {MAX_TURN_MINUTES}"),
                ));
            }
            if r.max_party == Some(0) {
                errs.push(FieldError::new(
                    format!("turn_minutes[{i}].max_party"),
                    "must be at least 1",
                ));
            }
        }
        // A slot that is out of range is reported above; the grid check then has no grid.
        let slot = u16::try_from(self.slot_minutes).ok().filter(|s| *s > 0);
        for (i, h) in self.hours.iter().enumerate() {
            if h.days.is_empty() {
                errs.push(FieldError::new(
                    format!("hours[{i}].days"),
                    "must name at least one day",
                ));
            }
            if slot.is_some_and(|s| h.open.minutes() % s != 0 || h.close.minutes() % s != 0) {
                errs.push(FieldError::new(
                    format!("hours[{i}]"),
                    "open and close must lie on the slot grid",
                ));
            }
            if h.open >= h.close {
                errs.push(FieldError::new(
                    format!("hours[{i}]"),
                    "open must be before close",
                ));
            }
        }
        self.closed_dates.sort();
        self.closed_dates.dedup();
        if self.tables.len() > MAX_TABLES {
            errs.push(FieldError::new(
                "tables",
                format!("at most {MAX_TABLES} tables"),
            ));
        }
        for (i, t) in self.tables.iter().enumerate() {
            if let Err(e) = validate_table(t) {
                errs.push(FieldError::new(
                    format!("tables[{i}].{}", e.field),
                    e.message,
                ));
            }
        }
        self.tables.sort_by(|a, b| a.id.cmp(&b.id));
        if self.tables.windows(2).any(|w| w[0].id == w[1].id) {
            errs.push(FieldError::new("tables", "table ids must be unique"));
        }
        validate_combinations(&self.tables, &mut self.combinations, &mut errs);
        if let Some(p) = &self.pacing {
            let slot = if (5..=60).contains(&self.slot_minutes) {
                self.slot_minutes
            } else {
                0
            };
            p.validate(slot, &mut errs);
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(errs)
        }
    }
}

pub fn validate_table(t: &Table) -> Result<(), FieldError> {
    if !(1..=PartySize::MAX).contains(&t.max_party) {
        return Err(FieldError::new("max_party", "must be between 1 and 100"));
    }
    if t.min_party < 1 || t.min_party > t.max_party {
        return Err(FieldError::new(
            "min_party",
            "must be between 1 and max_party",
        ));
    }
    if t.label.is_empty() || t.label.len() > 100 {
        return Err(FieldError::new("label", "must be 1 to 100 bytes"));
    }
    if t.label.chars().any(char::is_control) {
        return Err(FieldError::new("label", "must not hold control characters"));
    }
    Ok(())
}

/// A table's `area` as it comes in (at creation, or in a `PUT` of that table): at most 100
/// bytes, no control characters. Not part of `validate`, which every settings change runs on the
/// whole restaurant: a table stored before the rule keeps its area, and its restaurant its
/// other changes, until that table is put again.
pub fn validate_area(t: &Table) -> Result<(), FieldError> {
    let Some(area) = &t.area else { return Ok(()) };
    if area.len() > 100 {
        return Err(FieldError::new("area", "must be at most 100 bytes"));
    }
    if area.chars().any(char::is_control) {
        return Err(FieldError::new("area", "must not hold control characters"));
    }
    Ok(())
}

impl Restaurant {
    /// The name's rules beyond `validate`'s (the rules of a guest's name, see `domain::text`),
    /// checked when a name is given, at creation or in a change: a restaurant stored with a
    /// name from before them keeps taking its other changes.
    pub fn name_errors(&self) -> Vec<FieldError> {
        super::text::name_problem(&self.name)
            .map(|problem| FieldError::new("name", problem))
            .into_iter()
            .collect()
    }

    /// `validate_area` of every table, each error named by its table's place.
    pub fn area_errors(&self) -> Vec<FieldError> {
        self.tables
            .iter()
            .enumerate()
            .filter_map(|(i, t)| {
                validate_area(t)
                    .err()
                    .map(|e| FieldError::new(format!("tables[{i}].{}", e.field), e.message))
            })
            .collect()
    }
}

impl Restaurant {
    pub fn combination(&self, id: &TableId) -> Option<&Combination> {
        self.combinations.iter().find(|c| &c.id == id)
    }

    /// Every seating option that fits a party, best fit first: single tables by smallest
    /// `max_party` then id, then combinations by smallest `max_party`, fewest tables, then id.
    pub fn fitting_options(&self, p: PartySize) -> Vec<Seating> {
        let mut combos: Vec<&Combination> =
            self.combinations.iter().filter(|c| c.fits(p)).collect();
        combos.sort_by(|a, b| {
            (a.max_party, a.tables.len(), &a.id).cmp(&(b.max_party, b.tables.len(), &b.id))
        });
        self.fitting_tables(p)
            .into_iter()
            .map(|t: &Table| Seating::single(&t.id))
            .chain(combos.into_iter().map(Seating::of_combination))
            .collect()
    }

    /// Whether any table or combination seats a party of `p`.
    pub fn seats(&self, p: PartySize) -> bool {
        self.tables.iter().any(|t| t.fits(p)) || self.combinations.iter().any(|c| c.fits(p))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn paris() -> Restaurant {
        serde_json::from_value(serde_json::json!({
            "id": "7c0b3c3e-3a43-4a53-9d0f-6f1f0d2d8a11", "name": "Chez Rust",
            "timezone": "Europe/Paris", "slot_minutes": 15, "hold_seconds": 300,
            "booking_horizon_days": 730,
            "turn_minutes": [{"max_party": 4, "minutes": 120}, {"max_party": null, "minutes": 150},
                              {"max_party": 2, "minutes": 90}],
            "hours": [{"days": ["mon","tue","wed","thu","fri","sat","sun"], "open": "18:00", "close": "23:00"}],
            "closed_dates": ["2026-12-25"],
            "tables": [{"id": "t2", "label": "T2", "min_party": 1, "max_party": 4},
                       {"id": "t1", "label": "T1", "min_party": 1, "max_party": 2}]
        }))
        .unwrap()
    }

    #[test]
    fn validation_sorts_turn_rules_and_picks_turns_by_party() {
        let mut r = paris();
        r.validate().unwrap();
        assert_eq!(r.turn_minutes[0].max_party, Some(2));
        assert_eq!(r.turn(PartySize::new(2).unwrap()).num_minutes(), 90);
        assert_eq!(r.turn(PartySize::new(3).unwrap()).num_minutes(), 120);
        assert_eq!(r.turn(PartySize::new(9).unwrap()).num_minutes(), 150);
    }

    #[test]
    fn best_fit_prefers_the_smallest_table() {
        let mut r = paris();
        r.validate().unwrap();
        let ids: Vec<_> = r
            .fitting_tables(PartySize::new(2).unwrap())
            .iter()
            .map(|t| t.id.as_str().to_owned())
            .collect();
        assert_eq!(ids, ["t1", "t2"]);
    }

    #[test]
    fn names_and_labels_with_control_characters_are_refused() {
        let mut r = paris();
        r.name = "Chez Rust\r\nBcc: evil@attacker.test".into();
        let errs = r.validate().unwrap_err();
        assert!(errs.iter().any(|e| e.field == "name"), "{errs:?}");
        let mut r = paris();
        r.tables[0].label = "T\n2".into();
        let errs = r.validate().unwrap_err();
        assert!(errs.iter().any(|e| e.field.ends_with("label")), "{errs:?}");
        let mut r = paris();
        r.name = "Zoë's \"Bistro\" — 2ᵉ".into();
        assert!(r.validate().is_ok());
    }

    #[test]
    fn validation_reports_every_broken_rule() {
        let mut r = paris();
        r.slot_minutes = 7;
        r.turn_minutes.push(TurnRule {
            max_party: None,
            minutes: 10,
        });
        r.hours[0].open = WallTime::parse("19:00").unwrap();
        r.hours[0].close = WallTime::parse("18:00").unwrap();
        let errs = r.validate().unwrap_err();
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        assert!(fields.contains(&"slot_minutes"));
        assert!(fields.contains(&"turn_minutes"));
        assert!(fields.contains(&"hours[0]"));
    }
}
