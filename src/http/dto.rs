//! Wire DTOs and their conversion into domain types. Shape errors are `400`; broken rules `422`.
use crate::booking::RestaurantPatch;
use crate::domain::reservation::Guest;
use crate::domain::restaurant::{default_turns, Day, HoursPeriod, TurnRule};
use crate::domain::Table;
use crate::domain::{Combination, FieldError, LocalDate, Pacing, Restaurant, TableId, WallTime};
use crate::wire::int;
use crate::wire::restaurant::DayName;
use serde::Deserialize;
use utoipa::ToSchema;

fn num(field: &str, v: i64, errs: &mut Vec<FieldError>) -> u32 {
    u32::try_from(v).unwrap_or_else(|_| {
        errs.push(FieldError::new(field, "is out of range"));
        0
    })
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct TurnRuleInput {
    /// The largest party this rule covers; `null` (or absent) for the catch-all.
    #[serde(default, deserialize_with = "int::option")]
    #[schema(minimum = 1, maximum = 4294967295_i64)]
    pub max_party: Option<i64>,
    #[schema(minimum = 1, maximum = 720)]
    #[serde(deserialize_with = "int::exact")]
    pub minutes: i64,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct HoursInput {
    /// Weekdays: `mon` … `sun`.
    #[schema(value_type = Vec<DayName>, min_items = 1)]
    pub days: Vec<Day>,
    /// `HH:MM` on the slot grid, before `close` (`24:00` is no start: `400`).
    #[schema(value_type = String, example = "18:00",
        pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    #[serde(deserialize_with = "crate::domain::time::deserialize_start")]
    pub open: WallTime,
    /// `HH:MM` on the slot grid, `24:00` allowed.
    #[schema(value_type = String, example = "23:00",
        pattern = r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$")]
    pub close: WallTime,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct TableInput {
    /// `[A-Za-z0-9_-]{1,32}`; assigned by the server when absent at creation; ignored by
    /// `PUT …/tables/{tid}`, which takes the id from the path.
    #[serde(default)]
    #[schema(value_type = Option<String>, pattern = r"^[A-Za-z0-9_-]{1,32}$")]
    pub id: Option<TableId>,
    /// Defaults to the id; 1–100 bytes.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 100)]
    pub label: Option<String>,
    /// Defaults to 1; at most `max_party`.
    #[serde(default, deserialize_with = "int::option")]
    #[schema(minimum = 1, maximum = 100)]
    pub min_party: Option<i64>,
    #[schema(minimum = 1, maximum = 100)]
    #[serde(deserialize_with = "int::exact")]
    pub max_party: i64,
    /// Free text, at most 100 bytes, no control characters.
    #[serde(default)]
    #[schema(max_length = 100)]
    pub area: Option<String>,
}

impl TableInput {
    pub fn into_table(self, id: TableId, errs: &mut Vec<FieldError>) -> Table {
        Table {
            label: self.label.unwrap_or_else(|| id.to_string()),
            id,
            min_party: num("min_party", self.min_party.unwrap_or(1), errs),
            max_party: num("max_party", self.max_party, errs),
            area: self.area,
        }
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct CombinationInput {
    /// `[A-Za-z0-9_-]{1,32}`, unique among the restaurant's combinations.
    #[schema(value_type = String, example = "c34", pattern = r"^[A-Za-z0-9_-]{1,32}$")]
    pub id: TableId,
    /// 2–6 distinct tables of the restaurant.
    #[schema(value_type = Vec<String>, example = json!(["t3", "t4"]), min_items = 2, max_items = 6,
        pattern = r"^[A-Za-z0-9_-]{1,32}$")]
    pub tables: Vec<TableId>,
    /// Defaults to 1; at most `max_party`.
    #[serde(default, deserialize_with = "int::option")]
    #[schema(minimum = 1, maximum = 100)]
    pub min_party: Option<i64>,
    #[schema(minimum = 1, maximum = 100)]
    #[serde(deserialize_with = "int::exact")]
    pub max_party: i64,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct PacingInput {
    /// Divides 60 and is a multiple of `slot_minutes`.
    #[schema(minimum = 5, maximum = 60, example = 15)]
    #[serde(deserialize_with = "int::exact")]
    pub window_minutes: i64,
    /// Covers per window; `null` (or absent) for no limit.
    #[serde(default, deserialize_with = "int::option")]
    #[schema(minimum = 1, maximum = 100000)]
    pub max_covers: Option<i64>,
    /// Reservations per window; `null` (or absent) for no limit.
    #[serde(default, deserialize_with = "int::option")]
    #[schema(minimum = 1, maximum = 100000)]
    pub max_parties: Option<i64>,
}

fn combinations(v: Vec<CombinationInput>, errs: &mut Vec<FieldError>) -> Vec<Combination> {
    v.into_iter()
        .enumerate()
        .map(|(i, c)| Combination {
            id: c.id,
            tables: c.tables,
            min_party: num(
                &format!("combinations[{i}].min_party"),
                c.min_party.unwrap_or(1),
                errs,
            ),
            max_party: num(&format!("combinations[{i}].max_party"), c.max_party, errs),
        })
        .collect()
}

fn pacing(p: PacingInput, errs: &mut Vec<FieldError>) -> Pacing {
    Pacing {
        window_minutes: num("pacing.window_minutes", p.window_minutes, errs),
        max_covers: p.max_covers.map(|v| num("pacing.max_covers", v, errs)),
        max_parties: p.max_parties.map(|v| num("pacing.max_parties", v, errs)),
    }
}

fn turns(v: Vec<TurnRuleInput>, errs: &mut Vec<FieldError>) -> Vec<TurnRule> {
    v.into_iter()
        .enumerate()
        .map(|(i, r)| TurnRule {
            max_party: r
                .max_party
                .map(|m| num(&format!("turn_minutes[{i}].max_party"), m, errs)),
            minutes: num(&format!("turn_minutes[{i}].minutes"), r.minutes, errs),
        })
        .collect()
}

fn hours(v: Vec<HoursInput>) -> Vec<HoursPeriod> {
    v.into_iter()
        .map(|h| HoursPeriod {
            days: h.days,
            open: h.open,
            close: h.close,
        })
        .collect()
}

/// The top-level member a field error names: `tables` for `tables[2].max_party`.
fn member(field: &str) -> &str {
    field.split(['[', '.']).next().unwrap_or(field)
}

fn timezone(s: &str, errs: &mut Vec<FieldError>) -> chrono_tz::Tz {
    s.parse().unwrap_or_else(|_| {
        errs.push(FieldError::new(
            "timezone",
            format!("`{s}` is not an IANA timezone"),
        ));
        chrono_tz::UTC
    })
}

/// `POST /v1/restaurants` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct RestaurantInput {
    /// Not blank; at most 200 bytes.
    #[schema(min_length = 1, max_length = 200, example = "Chez Rust")]
    pub name: String,
    /// An IANA timezone.
    #[schema(example = "Europe/Paris")]
    pub timezone: String,
    #[serde(default, deserialize_with = "int::option")]
    #[schema(minimum = 5, maximum = 60)]
    pub slot_minutes: Option<i64>,
    #[serde(default, deserialize_with = "int::option")]
    #[schema(minimum = 1, maximum = 3600)]
    pub hold_seconds: Option<i64>,
    #[serde(default, deserialize_with = "int::option")]
    #[schema(minimum = 1, maximum = 730)]
    pub booking_horizon_days: Option<i64>,
    /// Seconds a waitlist offer is held for its entry (default 120).
    #[serde(default, deserialize_with = "int::option")]
    #[schema(minimum = 15, maximum = 3600)]
    pub offer_seconds: Option<i64>,
    #[serde(default)]
    pub turn_minutes: Option<Vec<TurnRuleInput>>,
    #[serde(default)]
    pub hours: Option<Vec<HoursInput>>,
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>, format = Date,
        pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]
    pub closed_dates: Option<Vec<LocalDate>>,
    #[serde(default)]
    #[schema(max_items = 200)]
    pub tables: Option<Vec<TableInput>>,
    /// Tables that may be joined for one party; none when absent.
    #[serde(default)]
    #[schema(max_items = 100)]
    pub combinations: Option<Vec<CombinationInput>>,
    /// `null` or absent: no pacing.
    #[serde(default)]
    pub pacing: Option<PacingInput>,
}

impl RestaurantInput {
    pub fn into_restaurant(self) -> Result<Restaurant, Vec<FieldError>> {
        let mut errs = Vec::new();
        let tz = timezone(&self.timezone, &mut errs);
        let inputs = self.tables.unwrap_or_default();
        let taken: Vec<TableId> = inputs.iter().filter_map(|t| t.id.clone()).collect();
        let mut next = 1;
        let mut tables = Vec::new();
        for t in inputs {
            let id = match t.id.clone() {
                Some(id) => id,
                None => loop {
                    let id = TableId::parse(&format!("t{next}")).expect("valid id");
                    next += 1;
                    if !taken.contains(&id) {
                        break id;
                    }
                },
            };
            // Named by its place, as the whole restaurant's checks name it.
            let mut own = Vec::new();
            tables.push(t.into_table(id, &mut own));
            let i = tables.len() - 1;
            errs.extend(
                own.into_iter()
                    .map(|e| FieldError::new(format!("tables[{i}].{}", e.field), e.message)),
            );
        }
        let r = Restaurant {
            id: crate::domain::ids::new_id(),
            name: self.name,
            timezone: tz,
            slot_minutes: num("slot_minutes", self.slot_minutes.unwrap_or(15), &mut errs),
            hold_seconds: num("hold_seconds", self.hold_seconds.unwrap_or(300), &mut errs),
            booking_horizon_days: num(
                "booking_horizon_days",
                self.booking_horizon_days.unwrap_or(60),
                &mut errs,
            ),
            turn_minutes: self
                .turn_minutes
                .map(|v| turns(v, &mut errs))
                .unwrap_or_else(default_turns),
            hours: self.hours.map(hours).unwrap_or_default(),
            closed_dates: self.closed_dates.unwrap_or_default(),
            tables,
            combinations: self
                .combinations
                .map(|v| combinations(v, &mut errs))
                .unwrap_or_default(),
            pacing: self.pacing.map(|p| pacing(p, &mut errs)),
            offer_seconds: num(
                "offer_seconds",
                self.offer_seconds
                    .unwrap_or(i64::from(crate::domain::restaurant::DEFAULT_OFFER_SECONDS)),
                &mut errs,
            ),
        };
        if errs.is_empty() {
            return Ok(r);
        }
        // What could not be read is listed with every rule the other members break: not with
        // what the placeholders of an unread one would break (any rule on a member with an
        // unread part is left out), so one answer names them all.
        let unread: Vec<String> = errs.iter().map(|e| member(&e.field).to_owned()).collect();
        let mut r = r;
        let rest = r.validate().err().unwrap_or_default();
        errs.extend(
            rest.into_iter()
                .chain(r.area_errors())
                .filter(|e| !unread.iter().any(|m| m == member(&e.field))),
        );
        Err(errs)
    }
}

/// `PATCH /v1/restaurants/{rid}` body: each member named replaces the current one.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct RestaurantPatchInput {
    /// Not blank; at most 200 bytes.
    #[serde(default, deserialize_with = "not_null")]
    #[schema(nullable = false, min_length = 1, max_length = 200)]
    pub name: Option<String>,
    /// An IANA timezone.
    #[serde(default, deserialize_with = "not_null")]
    #[schema(nullable = false)]
    pub timezone: Option<String>,
    #[serde(default, deserialize_with = "int::some")]
    #[schema(nullable = false, minimum = 5, maximum = 60)]
    pub slot_minutes: Option<i64>,
    #[serde(default, deserialize_with = "int::some")]
    #[schema(nullable = false, minimum = 1, maximum = 3600)]
    pub hold_seconds: Option<i64>,
    #[serde(default, deserialize_with = "int::some")]
    #[schema(nullable = false, minimum = 1, maximum = 730)]
    pub booking_horizon_days: Option<i64>,
    /// Seconds a waitlist offer is held for its entry (default 120).
    #[serde(default, deserialize_with = "int::some")]
    #[schema(nullable = false, minimum = 15, maximum = 3600)]
    pub offer_seconds: Option<i64>,
    #[serde(default, deserialize_with = "not_null")]
    #[schema(nullable = false)]
    pub turn_minutes: Option<Vec<TurnRuleInput>>,
    #[serde(default, deserialize_with = "not_null")]
    #[schema(nullable = false)]
    pub hours: Option<Vec<HoursInput>>,
    #[serde(default, deserialize_with = "not_null")]
    #[schema(nullable = false, value_type = Option<Vec<String>>, format = Date,
        pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]
    pub closed_dates: Option<Vec<LocalDate>>,
    /// Not patchable: use the table endpoints. Present at all (`null` too), it is `422`.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Object>)]
    pub tables: Option<Option<serde_json::Value>>,
    /// Replaces every combination.
    #[serde(default, deserialize_with = "not_null")]
    #[schema(nullable = false, max_items = 100)]
    pub combinations: Option<Vec<CombinationInput>>,
    /// Replaces the pacing; `null` turns pacing off.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<PacingInput>)]
    pub pacing: Option<Option<PacingInput>>,
}

/// A member that may be absent but, when present, not `null` (the wrong JSON type: `400`).
fn not_null<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// A member that may be `null`: absent is `None`, `null` is `Some(None)`.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

impl RestaurantPatchInput {
    pub fn into_patch(self) -> Result<RestaurantPatch, Vec<FieldError>> {
        let mut errs = Vec::new();
        if self.tables.is_some() {
            errs.push(FieldError::new(
                "tables",
                "tables are changed through /v1/restaurants/{rid}/tables/{tid}",
            ));
        }
        let patch = RestaurantPatch {
            name: self.name,
            timezone: self.timezone.map(|s| timezone(&s, &mut errs)),
            slot_minutes: self.slot_minutes.map(|v| num("slot_minutes", v, &mut errs)),
            hold_seconds: self.hold_seconds.map(|v| num("hold_seconds", v, &mut errs)),
            booking_horizon_days: self
                .booking_horizon_days
                .map(|v| num("booking_horizon_days", v, &mut errs)),
            turn_minutes: self.turn_minutes.map(|v| turns(v, &mut errs)),
            hours: self.hours.map(hours),
            closed_dates: self.closed_dates,
            combinations: self.combinations.map(|v| combinations(v, &mut errs)),
            pacing: self.pacing.map(|p| p.map(|p| pacing(p, &mut errs))),
            offer_seconds: self
                .offer_seconds
                .map(|v| num("offer_seconds", v, &mut errs)),
        };
        if errs.is_empty() {
            Ok(patch)
        } else {
            Err(errs)
        }
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct GuestInput {
    /// Not blank; at most 200 bytes.
    #[schema(min_length = 1, max_length = 200, example = "Ada")]
    pub name: String,
    /// At most 254 bytes: something, `@`, a domain with a dot.
    #[serde(default)]
    #[schema(max_length = 254, example = "ada@example.com")]
    pub email: Option<String>,
    /// 5–20 digits; digits, spaces and `+ - ( ) .` only; at most 40 characters.
    #[serde(default)]
    #[schema(max_length = 40, example = "+33 1 23 45 67 89")]
    pub phone: Option<String>,
}

impl From<GuestInput> for Guest {
    fn from(g: GuestInput) -> Self {
        Guest {
            name: g.name,
            email: g.email,
            phone: g.phone,
        }
    }
}

/// `POST /v1/restaurants/{rid}/waitlist`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct JoinInput {
    /// The restaurant's local date.
    #[schema(value_type = String, format = Date, example = "2026-12-05",
        pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]
    pub date: LocalDate,
    #[schema(minimum = 1, maximum = 100)]
    #[serde(deserialize_with = "int::exact")]
    pub party_size: i64,
    /// First acceptable start on the slot grid, `HH:MM`.
    #[schema(example = "18:30", pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub from: String,
    /// Last acceptable start on the slot grid, `HH:MM`, not before `from`.
    #[schema(example = "21:00", pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub to: String,
    pub guest: GuestInput,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ConfirmInput {
    pub guest: GuestInput,
    /// At most 2000 bytes.
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub notes: Option<String>,
}

/// The statuses staff may set by `PATCH /v1/reservations/{id}`.
#[derive(Debug, Clone, Copy, ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum SettableStatus {
    Seated,
    Completed,
    NoShow,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct StatusInput {
    /// `seated`, `completed` or `no_show`.
    #[schema(value_type = SettableStatus)]
    pub status: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct WalkInInput {
    #[schema(minimum = 1, maximum = 100)]
    #[serde(deserialize_with = "int::exact")]
    pub party_size: i64,
    /// A table to seat them at; not with `combination_id`.
    #[serde(default)]
    #[schema(value_type = Option<String>, pattern = r"^[A-Za-z0-9_-]{1,32}$")]
    pub table_id: Option<TableId>,
    /// A combination to seat them at (all its tables); not with `table_id`.
    #[serde(default)]
    #[schema(value_type = Option<String>, pattern = r"^[A-Za-z0-9_-]{1,32}$")]
    pub combination_id: Option<TableId>,
    #[serde(default)]
    pub guest: Option<GuestInput>,
}

/// The `Idempotency-Key` header, as the OpenAPI document describes it.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct IdempotencyKey {
    /// Replays the first answer to the same key and body for 24 h; 1–255 characters. Visible
    /// ASCII as here is what clients should send; the server also takes UTF-8 beyond ASCII
    /// (no control characters).
    #[param(
        rename = "Idempotency-Key",
        value_type = String,
        required = false,
        min_length = 1,
        max_length = 255,
        pattern = r"^[\x21-\x7E]([\x20-\x7E]*[\x21-\x7E])?$"
    )]
    key: Option<String>,
}
