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
    pub ics: Option<String>,
}

/// What a mail needs besides its record.
pub struct Context<'a> {
    pub restaurant: &'a Restaurant,
    /// The diner app's address (no trailing slash).
    pub public_url: &'a str,
    /// The manage link's token, for kinds that carry one.
    pub token: Option<&'a str>,
    pub now: DateTime<Utc>,
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

/// Label–value lines shown in both parts.
fn details(r: &Reservation, restaurant: &Restaurant) -> Vec<(&'static str, String)> {
    let mut v = vec![
        ("When", when(r, restaurant)),
        ("Party", people(r.party_size)),
        (
            "Table",
            restaurant
                .table(&r.table_id)
                .map_or_else(|| r.table_id.to_string(), |t| t.label.clone()),
        ),
        ("Reference", ics::reference(r)),
    ];
    if !r.notes.trim().is_empty() {
        v.push(("Your note", r.notes.trim().to_owned()));
    }
    v
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
    };
    let guest = r.guest.as_ref().map_or("", |g| g.name.as_str());
    let hello = if guest.is_empty() {
        "Hello,".to_owned()
    } else {
        format!("Hello {guest},")
    };
    let details = details(r, cx.restaurant);

    let mut text = format!("{hello}\n\n{}\n\n", parts.intro);
    for (k, v) in &details {
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
            escape(v)
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
        ics: parts.ics.then(|| ics::event(r, cx.restaurant, cx.now)),
    }
}
