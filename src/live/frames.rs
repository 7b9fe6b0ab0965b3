//! Server frames. Shared frames are encoded once without their `sub`; each subscriber's copy
//! only appends `,"sub":"…"}` to the same bytes.
use crate::http::dto::SlotBody;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::sync::Arc;

/// One item of a connection's outgoing queue.
#[derive(Debug, Clone)]
pub enum Out {
    /// A frame shared by every subscriber of a channel, closed with this subscription's `sub`.
    Shared {
        body: Arc<str>,
        sub: Arc<str>,
        at: Option<DateTime<Utc>>,
    },
    /// A frame for this connection alone.
    Own(String),
}

impl Out {
    pub fn text(&self) -> String {
        match self {
            Out::Shared { body, sub, .. } => {
                let mut s = String::with_capacity(body.len() + sub.len() + 8);
                s.push_str(body);
                s.push_str(",\"sub\":");
                s.push_str(sub);
                s.push('}');
                s
            }
            Out::Own(s) => s.clone(),
        }
    }
}

/// `sub` as a JSON string, encoded once per subscription.
pub fn sub_json(sub: &str) -> Arc<str> {
    Value::String(sub.to_owned()).to_string().into()
}

fn open(v: Value) -> Arc<str> {
    let mut s = v.to_string();
    s.pop(); // the closing brace: `,"sub":…}` follows
    s.into()
}

pub fn snapshot(version: u64, data: &Value) -> Arc<str> {
    open(json!({"type": "snapshot", "version": version, "data": data}))
}

pub fn slots_update(version: u64, cause: &str, at: DateTime<Utc>, slots: &[SlotBody]) -> Arc<str> {
    open(json!({"type": "update", "version": version, "cause": cause,
                "at": crate::domain::time::fmt_instant(at), "slots": slots}))
}

pub fn tables_update(version: u64, cause: &str, at: DateTime<Utc>, tables: &[Value]) -> Arc<str> {
    open(json!({"type": "update", "version": version, "cause": cause,
                "at": crate::domain::time::fmt_instant(at), "tables": tables}))
}

pub fn error(
    sub: Option<&str>,
    req: Option<&str>,
    status: u16,
    title: &str,
    detail: &str,
) -> String {
    let mut v = json!({"type": "error", "status": status, "title": title, "detail": detail});
    if let Some(s) = sub {
        v["sub"] = Value::String(s.to_owned());
    }
    if let Some(r) = req {
        v["req"] = Value::String(r.to_owned());
    }
    v.to_string()
}

pub fn hold_result(req: Option<&str>, status: u16, body: Value) -> String {
    let mut v = json!({"type": "hold_result", "status": status, "body": body});
    if let Some(r) = req {
        v["req"] = Value::String(r.to_owned());
    }
    v.to_string()
}

pub const PONG: &str = r#"{"type":"pong"}"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_frames_close_with_the_subscription_id() {
        let body = snapshot(7, &json!({"slots": []}));
        let out = Out::Shared {
            body,
            sub: sub_json("a\"b"),
            at: None,
        };
        let v: Value = serde_json::from_str(&out.text()).unwrap();
        assert_eq!(
            v,
            json!({"type": "snapshot", "version": 7, "data": {"slots": []}, "sub": "a\"b"})
        );
    }
}
