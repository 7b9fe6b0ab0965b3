//! The live protocol's frames. Client frames parse into one tagged enum; server frames are typed
//! structs. A frame shared by every subscriber of a channel is encoded once without its `sub`,
//! and each subscriber's copy only appends `,"sub":"…"}` to the same bytes.
use super::availability::{AvailabilityBody, SlotBody};
use super::floor::{FloorBody, FloorTable, PacingWindow};
use super::waitlist::WaitlistEntryView;
use crate::domain::time::fmt_instant;
use crate::domain::{Cause, LocalDate, TableId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;
use uuid::Uuid;

/// The body of a hold, over HTTP (`POST …/holds`) and in the live `hold` op.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct HoldInput {
    /// The restaurant's local date.
    #[schema(value_type = String, format = Date, example = "2026-12-05",
        pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]
    pub date: LocalDate,
    /// A start on the slot grid, `HH:MM`.
    #[schema(example = "19:00", pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub time: String,
    #[schema(minimum = 1, maximum = 100)]
    #[serde(deserialize_with = "super::int::exact")]
    pub party_size: i64,
    /// A table to hold; not with `combination_id`.
    #[serde(default)]
    #[schema(value_type = Option<String>, pattern = r"^[A-Za-z0-9_-]{1,32}$")]
    pub table_id: Option<TableId>,
    /// A combination to hold (all its tables); not with `table_id`.
    #[serde(default)]
    #[schema(value_type = Option<String>, pattern = r"^[A-Za-z0-9_-]{1,32}$")]
    pub combination_id: Option<TableId>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ViewName {
    #[default]
    Availability,
    Floor,
    /// One waitlist entry (`entry_id`, with the entry's token or staff's).
    Waitlist,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct SubscribeFrame {
    /// The client's name for this subscription, 1–64 characters, unique per connection.
    pub sub: String,
    /// Required for the availability and floor views.
    #[serde(default)]
    pub restaurant_id: Option<Uuid>,
    /// Required for the availability and floor views.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Date)]
    pub date: Option<LocalDate>,
    #[serde(default)]
    pub view: ViewName,
    /// Required for the waitlist view: the entry to watch.
    #[serde(default)]
    pub entry_id: Option<Uuid>,
    /// Required for the availability view.
    #[serde(default, deserialize_with = "super::int::option")]
    #[schema(minimum = 1, maximum = 100)]
    pub party_size: Option<i64>,
    /// Staff (or admin) token, required for the floor view; the entry's token (or staff's) for
    /// the waitlist view.
    #[serde(default)]
    pub token: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct UnsubscribeFrame {
    pub sub: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct HoldFrame {
    /// Echoed in the `hold_result`.
    #[serde(default)]
    pub req: Option<String>,
    pub restaurant_id: Uuid,
    #[serde(flatten)]
    pub hold: HoldInput,
}

/// Every message a client may send on `/v1/live`, tagged by `op`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ClientFrame {
    Subscribe(SubscribeFrame),
    Unsubscribe(UnsubscribeFrame),
    Hold(HoldFrame),
    Ping,
}

/// A snapshot's `data`: the availability body or the floor.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(untagged)]
pub enum SnapshotData {
    Availability(AvailabilityBody),
    Floor(FloorBody),
    /// The waitlist view: the entry (`null` once it no longer exists).
    Entry(Option<WaitlistEntryView>),
}

/// A string schema whose only values are `values`: a frame's `type`, an update's `cause`.
fn one_of<'a>(values: impl IntoIterator<Item = &'a str>) -> utoipa::openapi::schema::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(values))
        .build()
}

fn type_snapshot() -> utoipa::openapi::schema::Object {
    one_of(["snapshot"])
}

fn type_update() -> utoipa::openapi::schema::Object {
    one_of(["update"])
}

fn type_hold_result() -> utoipa::openapi::schema::Object {
    one_of(["hold_result"])
}

fn type_error() -> utoipa::openapi::schema::Object {
    one_of(["error"])
}

fn type_pong() -> utoipa::openapi::schema::Object {
    one_of(["pong"])
}

/// Every cause an update can carry.
fn cause() -> utoipa::openapi::schema::Object {
    one_of(Cause::ALL.map(Cause::as_str))
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SnapshotFrame {
    #[serde(rename = "type")]
    #[schema(schema_with = type_snapshot)]
    pub kind: &'static str,
    pub version: u64,
    pub data: SnapshotData,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UpdateFrame {
    #[serde(rename = "type")]
    #[schema(schema_with = type_update)]
    pub kind: &'static str,
    pub version: u64,
    #[schema(schema_with = cause)]
    pub cause: Cause,
    /// The commit time in the store.
    #[schema(format = DateTime)]
    pub at: String,
    /// Availability view: exactly the slots that changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slots: Option<Vec<SlotBody>>,
    /// Floor view: each changed table, whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tables: Option<Vec<FloorTable>>,
    /// Floor view: every pacing window of the date with a count.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pacing: Option<Vec<PacingWindow>>,
    /// Floor view: every waitlist entry of the date, in queue order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waitlist: Option<Vec<WaitlistEntryView>>,
    /// Waitlist view: the entry, whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<WaitlistEntryView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HoldResultFrame {
    #[serde(rename = "type")]
    #[schema(schema_with = type_hold_result)]
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub req: Option<String>,
    pub status: u16,
    /// The HTTP answer's body: the held reservation with its token, or a problem.
    #[schema(value_type = Object)]
    pub body: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorFrame {
    #[serde(rename = "type")]
    #[schema(schema_with = type_error)]
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub req: Option<String>,
    pub status: u16,
    pub title: String,
    pub detail: String,
    /// With status 429: the per-client limit that refused the op.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PongFrame {
    #[serde(rename = "type")]
    #[schema(schema_with = type_pong)]
    pub kind: &'static str,
}

fn encode<T: Serialize>(frame: &T) -> String {
    serde_json::to_string(frame).expect("frames are plain data")
}

/// A frame without its closing brace, so that `,"sub":…}` can follow.
fn open<T: Serialize>(frame: &T) -> Arc<str> {
    let mut s = encode(frame);
    s.pop();
    s.into()
}

/// `sub` as a JSON string, encoded once per subscription.
pub fn sub_json(sub: &str) -> Arc<str> {
    encode(&sub).into()
}

/// Closes a shared frame with one subscriber's `sub`.
pub fn close_shared(body: &str, sub: &str) -> String {
    shared_parts(body, sub).concat()
}

/// The pieces of `close_shared(body, sub)` in order, for a writer that copies them straight
/// into its buffer.
pub fn shared_parts<'a>(body: &'a str, sub: &'a str) -> [&'a str; 4] {
    [body, ",\"sub\":", sub, "}"]
}

pub fn snapshot(version: u64, data: SnapshotData) -> Arc<str> {
    open(&SnapshotFrame {
        kind: "snapshot",
        version,
        data,
        sub: None,
    })
}

pub fn slots_update(
    version: u64,
    cause: Cause,
    at: DateTime<Utc>,
    slots: Vec<SlotBody>,
) -> Arc<str> {
    open(&UpdateFrame {
        kind: "update",
        version,
        cause,
        at: fmt_instant(at),
        slots: Some(slots),
        tables: None,
        pacing: None,
        waitlist: None,
        data: None,
        sub: None,
    })
}

pub fn tables_update(
    version: u64,
    cause: Cause,
    at: DateTime<Utc>,
    tables: Vec<FloorTable>,
    pacing: Vec<PacingWindow>,
    waitlist: Vec<WaitlistEntryView>,
) -> Arc<str> {
    open(&UpdateFrame {
        kind: "update",
        version,
        cause,
        at: fmt_instant(at),
        slots: None,
        tables: Some(tables),
        pacing: Some(pacing),
        waitlist: Some(waitlist),
        data: None,
        sub: None,
    })
}

/// A waitlist view's update: the entry, whole.
pub fn entry_update(
    version: u64,
    cause: Cause,
    at: DateTime<Utc>,
    entry: WaitlistEntryView,
) -> Arc<str> {
    open(&UpdateFrame {
        kind: "update",
        version,
        cause,
        at: fmt_instant(at),
        slots: None,
        tables: None,
        pacing: None,
        waitlist: None,
        data: Some(entry),
        sub: None,
    })
}

pub fn error(
    sub: Option<&str>,
    req: Option<&str>,
    status: u16,
    title: &str,
    detail: &str,
) -> String {
    encode(&ErrorFrame {
        kind: "error",
        sub: sub.map(str::to_owned),
        req: req.map(str::to_owned),
        status,
        title: title.to_owned(),
        detail: super::problem::bounded(detail),
        limit: None,
    })
}

/// An op refused by a per-client limit: status 429 and the `limit`.
pub fn limited_error(req: Option<&str>, title: &str, detail: &str, limit: &str) -> String {
    encode(&ErrorFrame {
        kind: "error",
        sub: None,
        req: req.map(str::to_owned),
        status: 429,
        title: title.to_owned(),
        detail: super::problem::bounded(detail),
        limit: Some(limit.to_owned()),
    })
}

pub fn hold_result(req: Option<&str>, status: u16, body: serde_json::Value) -> String {
    encode(&HoldResultFrame {
        kind: "hold_result",
        req: req.map(str::to_owned),
        status,
        body,
    })
}

pub fn pong() -> String {
    encode(&PongFrame { kind: "pong" })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn shared_frames_close_with_the_subscription_id() {
        let body = snapshot(
            7,
            SnapshotData::Floor(FloorBody {
                tables: vec![],
                pacing: vec![],
                waitlist: vec![],
            }),
        );
        let text = close_shared(&body, &sub_json("a\"b"));
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v,
            json!({"type": "snapshot", "version": 7, "data": {"tables": [], "pacing": [], "waitlist": []},
                   "sub": "a\"b"})
        );
    }

    #[test]
    fn client_frames_parse_by_op() {
        let f: ClientFrame = serde_json::from_value(json!({"op": "subscribe", "sub": "a",
            "restaurant_id": Uuid::nil(), "date": "2026-12-05", "party_size": 2}))
        .unwrap();
        assert!(
            matches!(f, ClientFrame::Subscribe(s) if s.view == ViewName::Availability && s.party_size == Some(2))
        );
        let f: ClientFrame = serde_json::from_value(json!({"op": "ping"})).unwrap();
        assert!(matches!(f, ClientFrame::Ping));
        let f: ClientFrame = serde_json::from_value(json!({"op": "hold", "req": "r",
            "restaurant_id": Uuid::nil(), "date": "2026-12-05", "time": "19:00", "party_size": 4}))
        .unwrap();
        assert!(
            matches!(f, ClientFrame::Hold(h) if h.req.as_deref() == Some("r") && h.hold.party_size == 4)
        );
        assert!(serde_json::from_value::<ClientFrame>(json!({"op": "dance"})).is_err());
    }

    #[test]
    fn updates_carry_only_the_members_of_their_view() {
        let at = DateTime::from_timestamp(0, 0).unwrap();
        let body = slots_update(3, Cause::Held, at, vec![]);
        let v: Value = serde_json::from_str(&close_shared(&body, "\"s\"")).unwrap();
        assert_eq!(
            v,
            json!({"type": "update", "version": 3, "cause": "held",
                   "at": "1970-01-01T00:00:00.000Z", "slots": [], "sub": "s"})
        );
    }
}
