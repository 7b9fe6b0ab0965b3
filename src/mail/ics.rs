//! iCalendar (RFC 5545) files for a reservation: one event, in UTC, that a calendar adds on
//! `PUBLISH` and removes on `CANCEL` (same `UID`, higher `SEQUENCE`).
use crate::domain::reservation::Status;
use crate::domain::{Reservation, Restaurant};
use chrono::{DateTime, Utc};

fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// TEXT values escape backslash, semicolon, comma and newlines.
fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// Content lines fold at 75 octets (never inside a UTF-8 character) and end with CRLF.
fn fold(line: &str, out: &mut String) {
    let mut width = 0;
    for c in line.chars() {
        let len = c.len_utf8();
        if width + len > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += len;
    }
    out.push_str("\r\n");
}

/// Who a mailed event is from and for: the address mail is sent from, and the diner's.
#[derive(Debug, Clone, Copy)]
pub struct People<'a> {
    pub organizer: &'a str,
    pub attendee: &'a str,
}

/// Whether `r`, as of `now`, will not take place (cancelled, or a hold released or expired).
fn cancelled(r: &Reservation, now: DateTime<Utc>) -> bool {
    matches!(
        r.status_at(now),
        Status::Cancelled | Status::Released | Status::Expired
    )
}

/// The iTIP method of `r`'s event as of `now`: `CANCEL` or `PUBLISH`.
pub fn method(r: &Reservation, now: DateTime<Utc>) -> &'static str {
    if cancelled(r, now) {
        "CANCEL"
    } else {
        "PUBLISH"
    }
}

/// A parameter value (a `CN`): quoted, without the double quotes and control characters a
/// quoted value cannot hold.
fn param(s: &str) -> String {
    let kept: String = s.chars().filter(|c| *c != '"' && !c.is_control()).collect();
    format!("\"{kept}\"")
}

/// The event of `r` at `restaurant`, as of `now`. A reservation that will not take place
/// (cancelled, or a hold released or expired) gives a `CANCEL`; a hold still to be confirmed is
/// `TENTATIVE`.
pub fn event(r: &Reservation, restaurant: &Restaurant, now: DateTime<Utc>) -> String {
    event_with(r, restaurant, now, None)
}

/// [`event`], mailed: with `who`, the event names its organizer (the restaurant, at the
/// sending address), as RFC 5546 asks of a `PUBLISH` and a `CANCEL`, and a `CANCEL` its
/// attendee, so that a calendar removes the event it added.
pub fn event_with(
    r: &Reservation,
    restaurant: &Restaurant,
    now: DateTime<Utc>,
    who: Option<People<'_>>,
) -> String {
    let status = r.status_at(now);
    let cancelled = cancelled(r, now);
    let people = if r.party_size == 1 {
        "1 person".to_owned()
    } else {
        format!("{} people", r.party_size)
    };
    let summary = format!("Table at {} ({people})", restaurant.name);
    let description = format!(
        "Your reservation at {} for {people}. Reference {}.",
        restaurant.name,
        reference(r)
    );
    let mut lines = vec![
        "BEGIN:VCALENDAR".to_owned(),
        "VERSION:2.0".to_owned(),
        "PRODID:-//tablecast//reservations//EN".to_owned(),
        "CALSCALE:GREGORIAN".to_owned(),
        format!("METHOD:{}", method(r, now)),
        "BEGIN:VEVENT".to_owned(),
        format!("UID:{}@tablecast", r.id),
        format!("DTSTAMP:{}", stamp(now)),
    ];
    if let Some(p) = who {
        lines.push(format!(
            "ORGANIZER;CN={}:mailto:{}",
            param(&restaurant.name),
            p.organizer
        ));
        if cancelled {
            let guest = r.guest.as_ref().map_or("", |g| g.name.as_str());
            lines.push(format!(
                "ATTENDEE;CN={};ROLE=REQ-PARTICIPANT:mailto:{}",
                param(guest),
                p.attendee
            ));
        }
    }
    lines.extend([
        format!("DTSTART:{}", stamp(r.start)),
        format!("DTEND:{}", stamp(r.end)),
        format!("SUMMARY:{}", text(&summary)),
        format!("DESCRIPTION:{}", text(&description)),
        format!("LOCATION:{}", text(&restaurant.name)),
        format!(
            "STATUS:{}",
            match status {
                _ if cancelled => "CANCELLED",
                Status::Held => "TENTATIVE",
                _ => "CONFIRMED",
            }
        ),
        format!("SEQUENCE:{}", u8::from(cancelled)),
        "TRANSP:OPAQUE".to_owned(),
        "END:VEVENT".to_owned(),
        "END:VCALENDAR".to_owned(),
    ]);
    let mut out = String::new();
    for l in &lines {
        fold(l, &mut out);
    }
    out
}

/// A short reference a diner can quote on the phone: 8 hex digits of the id, upper case, from its
/// random part. A version 7 id begins with its creation time, shared by the bookings of the same
/// minute, so its reference is its last 8 digits; a version 4 id (made before ids were
/// time-ordered) keeps its first 8, the reference its diner was already sent. The pages
/// (`ui.js`, `reference`) show the same.
pub fn reference(r: &Reservation) -> String {
    id_reference(r.id)
}

fn id_reference(id: uuid::Uuid) -> String {
    let hex = id.simple().to_string();
    let part = if id.get_version_num() == 7 {
        &hex[hex.len() - 8..]
    } else {
        &hex[..8]
    };
    part.to_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_differ_between_bookings_made_together_and_old_ones_stay_as_sent() {
        let refs: std::collections::HashSet<String> = (0..2_000)
            .map(|_| id_reference(crate::domain::ids::new_id()))
            .collect();
        // 32 random bits each: among two thousand, one collision has odds of about 1 in 2,000,
        // two of about 1 in 10 million.
        assert!(refs.len() >= 1_999, "{} distinct of 2,000", refs.len());
        assert!(refs.iter().all(|r| r.len() == 8 && r == &r.to_uppercase()));
        let old = uuid::Uuid::parse_str("5d1e0f7a-93b2-4c61-8e0a-2b4c6d8e0f12").unwrap();
        assert_eq!(id_reference(old), "5D1E0F7A");
        let new = uuid::Uuid::parse_str("01a236d5-cfb6-7792-aa50-540a8e1c4f28").unwrap();
        assert_eq!(id_reference(new), "8E1C4F28");
    }

    #[test]
    fn long_lines_fold_at_75_octets_without_splitting_characters() {
        let mut out = String::new();
        fold(&format!("SUMMARY:{}", "é".repeat(60)), &mut out);
        for l in out.split("\r\n").filter(|l| !l.is_empty()) {
            assert!(l.len() <= 75, "{l}");
        }
        let unfolded = out.replace("\r\n ", "");
        assert_eq!(unfolded, format!("SUMMARY:{}\r\n", "é".repeat(60)));
    }

    #[test]
    fn a_held_event_is_tentative_and_one_that_will_not_happen_is_a_cancel() {
        let mut restaurant = crate::domain::restaurant::tests::paris();
        restaurant.validate().unwrap();
        let now = chrono::Utc::now();
        let r = |status: Status, expires: Option<DateTime<Utc>>| {
            crate::domain::reservation::sample(status, expires, now)
        };
        let soon = Some(now + chrono::Duration::minutes(5));
        let past = Some(now - chrono::Duration::seconds(1));
        for (res, method, status) in [
            (r(Status::Held, soon), "PUBLISH", "TENTATIVE"),
            (r(Status::Held, past), "CANCEL", "CANCELLED"),
            (r(Status::Released, None), "CANCEL", "CANCELLED"),
            (r(Status::Cancelled, None), "CANCEL", "CANCELLED"),
            (r(Status::Confirmed, None), "PUBLISH", "CONFIRMED"),
            (r(Status::Seated, None), "PUBLISH", "CONFIRMED"),
        ] {
            let ics = event(&res, &restaurant, now);
            assert!(
                ics.contains(&format!("METHOD:{method}\r\n")),
                "{:?}: {ics}",
                res.status
            );
            assert!(
                ics.contains(&format!("STATUS:{status}\r\n")),
                "{:?}: {ics}",
                res.status
            );
        }
    }

    #[test]
    fn a_mailed_event_names_its_organizer_and_a_cancel_its_attendee() {
        let mut restaurant = crate::domain::restaurant::tests::paris();
        restaurant.name = "Chez \"Rust\"; Paris".into();
        let now = chrono::Utc::now();
        let who = Some(People {
            organizer: "book@example.com",
            attendee: "ada@example.com",
        });
        let confirmed = crate::domain::reservation::sample(Status::Confirmed, None, now);
        let ics = event_with(&confirmed, &restaurant, now, who);
        assert!(
            ics.contains("ORGANIZER;CN=\"Chez Rust; Paris\":mailto:book@example.com\r\n"),
            "{ics}"
        );
        assert!(!ics.contains("ATTENDEE"), "{ics}");
        assert_eq!(method(&confirmed, now), "PUBLISH");
        let cancelled = crate::domain::reservation::sample(Status::Cancelled, None, now);
        let ics = event_with(&cancelled, &restaurant, now, who);
        assert!(ics.contains("mailto:ada@example.com\r\n"), "{ics}");
        assert!(ics.contains("ATTENDEE;CN="), "{ics}");
        assert_eq!(method(&cancelled, now), "CANCEL");
        // The download names nobody.
        assert!(!event(&cancelled, &restaurant, now).contains("ORGANIZER"));
    }

    #[test]
    fn text_values_escape_separators() {
        assert_eq!(text("a,b;c\\d\ne"), "a\\,b\\;c\\\\d\\ne");
    }
}
