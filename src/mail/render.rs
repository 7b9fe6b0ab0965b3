//! The words of each mail: a subject, a plain-text part and an HTML part saying the same, in
//! the restaurant's own local time, and the calendar file where it helps.
use super::ics;
use crate::domain::{Reservation, Restaurant};
use crate::store::MailKind;
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
    /// An `.ics` file to attach.
    pub ics: Option<Calendar>,
}

/// A calendar file and its iTIP method (`PUBLISH` or `CANCEL`), which its part repeats.
#[derive(Debug, Clone, PartialEq)]
pub struct Calendar {
    pub text: String,
    pub method: &'static str,
}

/// What a mail needs besides its record.
pub struct Context<'a> {
    pub restaurant: &'a Restaurant,
    /// The diner app's address (no trailing slash).
    pub public_url: &'a str,
    /// The manage link's token, for kinds that carry one.
    pub token: Option<&'a str>,
    pub now: DateTime<Utc>,
    /// The calendar file's organizer and attendee (a mail sent through a relay).
    pub people: Option<ics::People<'a>>,
}

impl Context<'_> {
    pub fn manage_link(&self, r: &Reservation) -> Option<String> {
        self.token
            .map(|t| format!("{}/reservation/{}#t={t}", self.public_url, r.id))
    }

    fn book_again(&self) -> String {
        format!("{}/?restaurant={}", self.public_url, self.restaurant.id)
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// "Saturday 5 December 2026, 19:00–21:00", local to the restaurant.
pub fn when(r: &Reservation, restaurant: &Restaurant) -> String {
    let day = r.date.naive().format("%A %-d %B %Y");
    let end = r.end.with_timezone(&restaurant.tz()).format("%H:%M");
    format!("{day}, {}–{end}", r.time)
}

fn people(n: u32) -> String {
    if n == 1 {
        "1 person".into()
    } else {
        format!("{n} people")
    }
}

/// An offer's deadline, on the restaurant's clock: "19:02:30, Saturday 5 December".
pub fn deadline(r: &Reservation, restaurant: &Restaurant) -> Option<String> {
    r.expires_at.map(|x| {
        x.with_timezone(&restaurant.tz())
            .format("%H:%M:%S, %A %-d %B")
            .to_string()
    })
}

/// The reservation's tables by their labels, every member of a combination: "T3 + T4".
fn tables(r: &Reservation, restaurant: &Restaurant) -> String {
    let ids = match r.table_ids.is_empty() {
        true => std::slice::from_ref(&r.table_id),
        false => r.table_ids.as_slice(),
    };
    let labels: Vec<String> = ids
        .iter()
        .map(|id| {
            restaurant
                .table(id)
                .map_or_else(|| id.to_string(), |t| t.label.clone())
        })
        .collect();
    labels.join(" + ")
}

/// Label–value lines shown in both parts.
fn details(r: &Reservation, restaurant: &Restaurant) -> Vec<(&'static str, String)> {
    let mut v = vec![
        ("When", when(r, restaurant)),
        ("Party", people(r.party_size)),
        (
            if r.table_ids.len() > 1 {
                "Tables"
            } else {
                "Table"
            },
            tables(r, restaurant),
        ),
        ("Reference", ics::reference(r)),
    ];
    let note: String = r.notes.chars().filter(|c| kept_in_note(*c)).collect();
    if !note.trim().is_empty() {
        v.push(("Your note", note.trim().to_owned()));
    }
    v
}

/// Whether the mail shows `c` of a note as typed: not what no mail body should carry (a NUL,
/// terminal escapes, a bell, a text-reversing override); line breaks and tabs stay.
fn kept_in_note(c: char) -> bool {
    !crate::domain::text::control(c) || matches!(c, '\n' | '\r' | '\t')
}

struct Parts {
    subject: String,
    intro: String,
    link: Option<(String, String)>,
    after: Vec<String>,
    ics: bool,
}

pub fn render(kind: MailKind, r: &Reservation, cx: &Context<'_>) -> Rendered {
    let name = &cx.restaurant.name;
    let short = format!("{} at {}", r.date.naive().format("%a %-d %b"), r.time);
    let parts = match kind {
        MailKind::Confirmation => Parts {
            subject: format!("Your table at {name} is confirmed — {short}"),
            intro: format!(
                "Your reservation at {name} is confirmed. We look forward to seeing you."
            ),
            link: cx
                .manage_link(r)
                .map(|l| ("View or cancel your booking".to_owned(), l)),
            after: vec![
                "The attached calendar file adds the booking to your calendar.".into(),
                "Keep the link to yourself: anyone who has it can cancel the booking.".into(),
            ],
            ics: true,
        },
        MailKind::CancelledByGuest => Parts {
            subject: format!("Your reservation at {name} is cancelled — {short}"),
            intro: format!(
                "As you asked, your reservation at {name} is cancelled. Nothing more to do."
            ),
            link: Some(("Book another time".to_owned(), cx.book_again())),
            after: vec!["The attached calendar file removes it from your calendar.".into()],
            ics: true,
        },
        MailKind::CancelledByRestaurant => Parts {
            subject: format!("{name} has cancelled your reservation — {short}"),
            intro: format!(
                "We are sorry: {name} has had to cancel your reservation. Please contact the \
                 restaurant if you have any question."
            ),
            link: Some(("Book another time".to_owned(), cx.book_again())),
            after: vec!["The attached calendar file removes it from your calendar.".into()],
            ics: true,
        },
        MailKind::WaitlistOffer => {
            let until = deadline(r, cx.restaurant).unwrap_or_default();
            Parts {
                subject: format!("A table is free for you at {name} — {short}"),
                intro: format!(
                    "Good news from the waitlist: a table for {} at {name} is held for you. \
                     Confirm it before {until} (the restaurant's local time); after that it \
                     goes to the next diner on the waitlist.",
                    people(r.party_size)
                ),
                link: cx
                    .manage_link(r)
                    .map(|l| ("Confirm this table".to_owned(), l)),
                after: vec![
                    "Not coming? The same link lets you release the table for the next diner."
                        .into(),
                    "Keep the link to yourself: anyone who has it can confirm or release the \
                     table."
                        .into(),
                ],
                ics: false,
            }
        }
        MailKind::OfferLost => {
            let why = if r.status == crate::domain::reservation::Status::Expired {
                let until = deadline(r, cx.restaurant).unwrap_or_default();
                format!("The table held for you at {name} was not confirmed by {until}")
            } else {
                format!("The table held for you at {name} has been released")
            };
            Parts {
                subject: format!("Your waitlist offer at {name} has ended — {short}"),
                intro: format!(
                    "{why}, so it is no longer yours: it goes to the next diner on the \
                     waitlist. You are no longer on the waitlist for this time."
                ),
                link: Some(("Book another time".to_owned(), cx.book_again())),
                after: Vec::new(),
                ics: false,
            }
        }
    };
    let guest = r.guest.as_ref().map_or("", |g| g.name.as_str());
    let hello = if guest.is_empty() {
        "Hello,".to_owned()
    } else {
        format!("Hello {guest},")
    };
    let mut details = details(r, cx.restaurant);
    if kind == MailKind::WaitlistOffer {
        if let Some(until) = deadline(r, cx.restaurant) {
            details.insert(2, ("Confirm by", until));
        }
    }

    let mut text = format!("{hello}\n\n{}\n\n", parts.intro);
    for (k, v) in &details {
        // A note's later lines stay under its first, in the value column.
        let v = v.replace('\r', "").replace('\n', &format!("\n{:13}", ""));
        text.push_str(&format!("  {:<10} {v}\n", format!("{k}:")));
    }
    if let Some((label, url)) = &parts.link {
        text.push_str(&format!("\n{label}:\n{url}\n"));
    }
    for p in &parts.after {
        text.push_str(&format!("\n{p}\n"));
    }
    text.push_str(&format!("\n— {name}\n"));

    let mut html = String::from(
        "<!doctype html><html><body style=\"font-family:sans-serif;line-height:1.5;color:#222\">",
    );
    html.push_str(&format!(
        "<p>{}</p><p>{}</p><table>",
        escape(&hello),
        escape(&parts.intro)
    ));
    for (k, v) in &details {
        html.push_str(&format!(
            "<tr><th align=\"left\" style=\"padding-right:1em\">{}</th><td>{}</td></tr>",
            escape(k),
            escape(&v.replace('\r', "")).replace('\n', "<br>")
        ));
    }
    html.push_str("</table>");
    if let Some((label, url)) = &parts.link {
        html.push_str(&format!(
            "<p><a href=\"{}\">{}</a></p>",
            escape(url),
            escape(label)
        ));
    }
    for p in &parts.after {
        html.push_str(&format!("<p>{}</p>", escape(p)));
    }
    html.push_str(&format!("<p>— {}</p></body></html>", escape(name)));

    Rendered {
        subject: parts.subject,
        text,
        html,
        ics: parts.ics.then(|| Calendar {
            text: ics::event_with(r, cx.restaurant, cx.now, cx.people),
            method: ics::method(r, cx.now),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::reservation::{Guest, Status};
    use crate::domain::restaurant::tests::paris;
    use crate::domain::time::{LocalDate, WallTime};
    use crate::domain::TableId;
    use chrono::TimeZone;

    fn booking(status: Status) -> Reservation {
        let at = |h, m| Utc.with_ymd_and_hms(2026, 7, 4, h, m, 0).unwrap();
        Reservation {
            id: uuid::Uuid::parse_str("0a1b2c3d-0000-4000-8000-000000000001").unwrap(),
            restaurant_id: paris().id,
            table_id: TableId::parse("t1").unwrap(),
            table_ids: vec![TableId::parse("t1").unwrap()],
            combination_id: None,
            date: LocalDate::parse("2026-07-04").unwrap(),
            time: WallTime::parse("19:30").unwrap(),
            // Paris is UTC+2 in July.
            start: at(17, 30),
            end: at(19, 0),
            party_size: 2,
            status,
            expires_at: None,
            guest: Some(Guest {
                name: "Ada <b>".into(),
                email: Some("ada@example.com".into()),
                phone: None,
            }),
            notes: "nuts & \"shellfish\"".into(),
            created_at: at(9, 0),
            updated_at: at(9, 0),
        }
    }

    fn cx<'a>(r: &'a Restaurant, token: Option<&'a str>) -> Context<'a> {
        Context {
            restaurant: r,
            public_url: "https://book.example.com",
            token,
            now: Utc.with_ymd_and_hms(2026, 7, 1, 9, 0, 0).unwrap(),
            people: None,
        }
    }

    #[test]
    fn a_confirmation_gives_local_times_the_link_and_a_calendar_file() {
        let r = paris();
        let b = booking(Status::Confirmed);
        let m = render(MailKind::Confirmation, &b, &cx(&r, Some("tc_abc")));
        assert!(m.subject.contains("Chez Rust") && m.subject.contains("Sat 4 Jul at 19:30"));
        assert!(
            m.text.contains("Saturday 4 July 2026, 19:30–21:00"),
            "{}",
            m.text
        );
        assert!(m.text.contains("Table:     T1") && m.text.contains("0A1B2C3D"));
        let link = format!("https://book.example.com/reservation/{}#t=tc_abc", b.id);
        assert!(m.text.contains(&link) && m.html.contains(&link));
        let ics = m.ics.unwrap();
        assert_eq!(ics.method, "PUBLISH");
        let ics = ics.text;
        assert!(ics.contains("DTSTART:20260704T173000Z") && ics.contains("METHOD:PUBLISH"));
    }

    #[test]
    fn a_booking_on_a_combination_names_every_table() {
        let r = paris();
        let mut b = booking(Status::Confirmed);
        b.table_ids = vec![TableId::parse("t1").unwrap(), TableId::parse("t2").unwrap()];
        let m = render(MailKind::Confirmation, &b, &cx(&r, None));
        assert!(m.text.contains("T1 + T2"), "{}", m.text);
        assert!(m.text.contains("Tables:"), "{}", m.text);
        assert!(m.html.contains("T1 + T2"), "{}", m.html);
    }

    #[test]
    fn a_note_of_several_lines_keeps_its_lines_in_both_parts() {
        let r = paris();
        let mut b = booking(Status::Confirmed);
        b.notes = "window seat\r\nno <nuts>".into();
        let m = render(MailKind::Confirmation, &b, &cx(&r, None));
        assert!(
            m.text
                .contains("  Your note: window seat\n             no <nuts>\n"),
            "{}",
            m.text
        );
        assert!(
            m.html.contains("window seat<br>no &lt;nuts&gt;"),
            "{}",
            m.html
        );
    }

    /// Notes are stored as typed; what reaches the mail has no control characters but its line
    /// breaks and tabs.
    #[test]
    fn a_note_reaches_the_mail_without_control_characters() {
        let r = paris();
        let mut b = booking(Status::Confirmed);
        b.notes = "steal\0\u{1b}[2J\u{1b}[31mred\u{7}\u{8}\u{202e}\ttab".into();
        let m = render(MailKind::Confirmation, &b, &cx(&r, None));
        for part in [&m.text, &m.html] {
            assert!(part.contains("steal[2J[31mred\ttab"), "{part}");
            let bad = part.chars().find(|c| !kept_in_note(*c));
            assert_eq!(bad, None, "{part:?}");
        }
    }

    #[test]
    fn html_escapes_what_guests_typed() {
        let r = paris();
        let m = render(
            MailKind::Confirmation,
            &booking(Status::Confirmed),
            &cx(&r, None),
        );
        assert!(m.html.contains("Hello Ada &lt;b&gt;,"), "{}", m.html);
        assert!(m.html.contains("nuts &amp; &quot;shellfish&quot;"));
        assert!(!m.html.contains("<b>"));
        assert!(m.text.contains("Hello Ada <b>,"));
    }

    #[test]
    fn cancellations_say_who_cancelled_and_remove_the_event() {
        let r = paris();
        let b = booking(Status::Cancelled);
        let by_guest = render(MailKind::CancelledByGuest, &b, &cx(&r, None));
        let by_staff = render(MailKind::CancelledByRestaurant, &b, &cx(&r, None));
        assert!(by_guest.text.contains("As you asked"));
        assert!(by_staff.subject.starts_with("Chez Rust has cancelled"));
        for m in [by_guest, by_staff] {
            assert!(
                !m.text.contains("#t="),
                "no manage link after a cancellation"
            );
            assert!(m
                .text
                .contains(&format!("https://book.example.com/?restaurant={}", r.id)));
            let ics = m.ics.unwrap();
            assert!(ics.text.contains("METHOD:CANCEL") && ics.method == "CANCEL");
        }
    }

    #[test]
    fn an_offer_gives_the_deadline_on_the_restaurants_clock_and_a_confirm_link() {
        let r = paris();
        let mut b = booking(Status::Held);
        // 17:02:30 UTC is 19:02:30 in Paris in July.
        b.expires_at = Some(Utc.with_ymd_and_hms(2026, 7, 4, 17, 2, 30).unwrap());
        let m = render(MailKind::WaitlistOffer, &b, &cx(&r, Some("tc_offer")));
        assert!(m.subject.contains("Chez Rust") && m.subject.contains("19:30"));
        let link = format!("https://book.example.com/reservation/{}#t=tc_offer", b.id);
        for part in [&m.text, &m.html] {
            assert!(part.contains("19:02:30, Saturday 4 July"), "{part}");
            assert!(part.contains("2 people") && part.contains(&link), "{part}");
        }
        assert!(m.text.contains("Confirm by:"), "{}", m.text);
        assert!(m.ics.is_none());
    }

    #[test]
    fn a_lost_offer_says_why_without_a_token() {
        let r = paris();
        let mut b = booking(Status::Expired);
        b.expires_at = Some(Utc.with_ymd_and_hms(2026, 7, 4, 17, 2, 30).unwrap());
        let expired = render(MailKind::OfferLost, &b, &cx(&r, None));
        assert!(
            expired.text.contains("not confirmed by 19:02:30"),
            "{}",
            expired.text
        );
        let released = render(
            MailKind::OfferLost,
            &booking(Status::Released),
            &cx(&r, None),
        );
        assert!(
            released.text.contains("has been released"),
            "{}",
            released.text
        );
        for m in [expired, released] {
            assert!(m.subject.contains("has ended") && !m.text.contains("#t="));
            assert!(m.ics.is_none());
        }
    }
}
