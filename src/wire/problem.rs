//! RFC 9457 problem documents: every error body the server sends, on HTTP and in `hold_result`.
use crate::domain::availability::SlotCount;
use crate::domain::time::fmt_slot_instant;
use crate::domain::FieldError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldErrorBody {
    pub field: String,
    pub message: String,
}

impl From<&FieldError> for FieldErrorBody {
    fn from(e: &FieldError) -> Self {
        FieldErrorBody {
            field: e.field.clone(),
            message: bounded(&e.message),
        }
    }
}

/// The most characters a problem's `detail` (or a field error's message) keeps.
pub const MAX_DETAIL: usize = 480;

/// `text` cut to [`MAX_DETAIL`] characters: its start and its end (where serde says what it
/// expected), joined by `…`. A detail may repeat the value it refuses, which can be a 64 KiB
/// body: repeated whole, and JSON-escaped, the answer grew to 224 KB (too big to record on
/// DynamoDB).
pub fn bounded(text: &str) -> String {
    let n = text.chars().count();
    if n <= MAX_DETAIL {
        return text.to_owned();
    }
    const TAIL: usize = 80;
    let head: String = text.chars().take(MAX_DETAIL - TAIL - 1).collect();
    let tail: String = text.chars().skip(n - TAIL).collect();
    format!("{head}…{tail}")
}

/// A free start offered instead of the one that was just taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Alternative {
    #[schema(example = "19:15")]
    pub time: String,
    #[schema(example = "2026-12-05T18:15:00Z", format = DateTime)]
    pub start: String,
    #[schema(minimum = 1)]
    pub available_tables: u32,
}

impl From<&SlotCount> for Alternative {
    fn from(a: &SlotCount) -> Self {
        Alternative {
            time: a.slot.time.to_string(),
            start: fmt_slot_instant(a.slot.start),
            available_tables: a.available_tables,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// `/problems/<name>`, e.g. `/problems/slot-unavailable`.
    #[serde(rename = "type")]
    #[schema(example = "/problems/validation")]
    pub kind: String,
    pub title: String,
    #[schema(minimum = 400, maximum = 599)]
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// `validation`: each broken rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldErrorBody>>,
    /// `slot-unavailable`: up to 3 nearest free starts that day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alternatives: Option<Vec<Alternative>>,
    /// `slot-unavailable`: `table` when no fitting seating option was free, `pacing` when one
    /// was but the time's pacing window is full.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "table", pattern = "^(table|pacing)$")]
    pub reason: Option<String>,
    /// `rate-limited`: which per-client limit: `live-holds`, `hold-rate` or `connections`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "live-holds")]
    pub limit: Option<String>,
}

impl Problem {
    pub fn new(name: &str, title: &str, status: u16) -> Self {
        Problem {
            kind: format!("/problems/{name}"),
            title: title.to_owned(),
            status,
            detail: None,
            errors: None,
            alternatives: None,
            reason: None,
            limit: None,
        }
    }

    /// The detail, [`bounded`].
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(bounded(&detail.into()));
        self
    }

    /// The problem's name: its `type` without the `/problems/` prefix.
    pub fn name(&self) -> &str {
        self.kind.strip_prefix("/problems/").unwrap_or(&self.kind)
    }
}

#[cfg(test)]
mod bounded_tests {
    use super::{bounded, MAX_DETAIL};

    #[test]
    fn a_long_detail_keeps_its_start_and_end_within_the_bound() {
        assert_eq!(bounded("short"), "short");
        let exact = "é".repeat(MAX_DETAIL);
        assert_eq!(bounded(&exact), exact);
        let long = format!(
            "invalid type: string \"{}\", expected u8",
            "\u{85}".repeat(32_000)
        );
        let cut = bounded(&long);
        assert_eq!(cut.chars().count(), MAX_DETAIL);
        assert!(cut.starts_with("invalid type: string \""), "{cut}");
        assert!(cut.ends_with("\", expected u8"), "{cut}");
        assert!(cut.contains('…'));
    }
}
