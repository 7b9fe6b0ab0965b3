//! Diner email through the outbox, against a real SMTP server (aiosmtpd): what each decision
//! sends, the manage link it carries, and that a relay that is down only delays mail.
use crate::kit::api::*;
use crate::kit::app::*;
use crate::kit::smtp::{Mail, SmtpSink};
use crate::kit::wait::eventually;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;

const FROM: &str = "Reservations <bookings@tablecast.test>";
const WITHIN: Duration = Duration::from_secs(20);

/// The app mailing through `relay`, retrying at least every half second.
pub async fn mailing_app(relay: &str, backend: Backend) -> TestApp {
    let relay = relay.to_owned();
    TestApp::spawn_on_with(backend, move |a| {
        a.mail.smtp_url = Some(relay);
        a.mail.mail_from = Some(FROM.into());
        a.mail.mail_retry_max_secs = 0.5;
        a.mail.mail_lease_secs = 5.0;
    })
    .await
}

/// Holds and confirms a table at `time` for a guest with `email`: the id and the hold's token.
pub async fn book(
    app: &TestApp,
    rid: &str,
    date: &str,
    time: &str,
    email: &str,
) -> (String, String) {
    let h = app.held(rid, date, time, 2).await;
    let (id, token) = (
        h["id"].as_str().unwrap().to_owned(),
        h["token"].as_str().unwrap().to_owned(),
    );
    let res = app
        .send(
            Method::POST,
            &format!("/v1/reservations/{id}/confirm"),
            Some(&token),
            Some(json!({"guest": {"name": "Ada Lovelace", "email": email}, "notes": "window, please"})),
        )
        .await;
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "{}",
        res.text().await.unwrap()
    );
    (id, token)
}

/// A metric's value summed over its label sets (0 when absent).
pub async fn metric(app: &Api, name: &str) -> f64 {
    crate::kit::metrics::sum(&crate::kit::metrics::scrape(&app.base).await, name, &[])
}

/// Waits until the outbox is empty (a metric that is not exported at all fails: absent would
/// read as 0, an outbox drained).
pub async fn drained(app: &Api) {
    eventually(WITHIN, "the outbox drains", || async {
        let text = crate::kit::metrics::scrape(&app.base).await;
        assert!(
            text.contains("tablecast_mail_outbox_depth"),
            "the outbox depth is exported"
        );
        crate::kit::metrics::sum(&text, "tablecast_mail_outbox_depth", &[]) == 0.0
    })
    .await;
}

/// The manage link's token in a mail for reservation `id` of `app`.
pub fn link_token(app: &Api, mail: &Mail, id: &str) -> String {
    let prefix = format!("{}/reservation/{id}#t=", app.base);
    let at = mail
        .text()
        .find(&prefix)
        .unwrap_or_else(|| panic!("no manage link {prefix} in: {}", mail.text()));
    mail.text()[at + prefix.len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

/// How many mails name each reservation id by its reference (the last 8 hex digits of a
/// time-ordered id).
fn per_reservation(mails: &[Mail], ids: &[String]) -> HashMap<String, usize> {
    ids.iter()
        .map(|id| {
            // The random part: the last 8 digits of a time-ordered (version 7) id.
            let hex = id.replace('-', "");
            assert_eq!(&hex[12..13], "7", "{id}");
            let reference = hex[24..].to_uppercase();
            let n = mails
                .iter()
                .filter(|m| m.text().contains(&reference))
                .count();
            (id.clone(), n)
        })
        .collect()
}

#[tokio::test]
async fn confirm_mails_the_guest_once_with_a_manage_link_that_works_and_a_calendar_file() {
    let Some(sink) = SmtpSink::start("mail::confirm") else {
        return;
    };
    let app = mailing_app(&sink.url(), Backend::Sqlite).await;
    let f = app.standard_restaurant().await;
    let date = date_in(5);
    let (id, _) = book(&app, &f.id, &date, "19:00", "ada@example.com").await;

    let mails = sink.wait_for(1, WITHIN).await;
    drained(&app).await;
    let mails_after = sink.mails();
    assert_eq!(mails_after.len(), 1, "exactly one mail: {mails_after:#?}");
    let m = &mails[0];
    assert_eq!(m.rcpt_tos, ["ada@example.com"]);
    assert_eq!(m.mail_from, "bookings@tablecast.test");
    assert!(
        m.to.contains("Ada Lovelace") && m.to.contains("ada@example.com"),
        "{}",
        m.to
    );
    assert!(
        m.from.contains("Chez Test"),
        "the restaurant names the sender: {}",
        m.from
    );
    assert!(
        m.subject.contains("Chez Test") && m.subject.contains("19:00"),
        "{}",
        m.subject
    );
    assert!(m.message_id.is_some() && m.date.is_some());
    let text = m.text();
    assert!(
        text.contains("19:00") && text.contains("2 people"),
        "{text}"
    );
    assert!(text.contains("window, please"), "{text}");
    let html = m.html.as_deref().expect("an HTML part");
    assert!(html.contains(&format!("/reservation/{id}#t=")), "{html}");

    // The link's token is the reservation's, read back through the API; the page is served.
    let token = link_token(&app, m, &id);
    let res = app.get_reservation(&id, &token).await;
    assert_eq!(res.status(), StatusCode::OK);
    let r: Value = res.json().await.unwrap();
    assert_eq!(r["status"], "confirmed");
    assert_eq!(r["guest"]["email"], "ada@example.com");
    assert_eq!(app.status(&format!("/reservation/{id}")).await, 200);

    // The calendar file, parsed back: one event at the reservation's own instants.
    let ics = m.ics().expect("an .ics attachment");
    assert!(ics.contains("\r\n"), "CRLF line ends");
    assert_eq!(m.ics_method(), Some("PUBLISH"));
    assert!(ics.contains("ORGANIZER;CN=\"Chez Test\":mailto:"), "{ics}");
    assert!(
        !ics.contains("ATTENDEE"),
        "a PUBLISH names no attendee: {ics}"
    );
    let cal: icalendar::Calendar = ics.parse().expect("a valid calendar");
    let events: Vec<_> = cal.components.iter().filter_map(|c| c.as_event()).collect();
    assert_eq!(events.len(), 1);
    use icalendar::Component;
    let e = events[0];
    assert_eq!(e.get_uid(), Some(format!("{id}@tablecast").as_str()));
    assert!(e.get_summary().unwrap().contains("Chez Test"));
    let utc = |v: Option<icalendar::DatePerhapsTime>| match v {
        Some(icalendar::DatePerhapsTime::DateTime(icalendar::CalendarDateTime::Utc(t))) => t,
        other => panic!("not a UTC date-time: {other:?}"),
    };
    let start = utc(e.get_start()).format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let end = utc(e.get_end()).format("%Y-%m-%dT%H:%M:%SZ").to_string();
    assert_eq!(
        (start.as_str(), end.as_str()),
        (r["start"].as_str().unwrap(), r["end"].as_str().unwrap())
    );
    assert_eq!(e.property_value("STATUS"), Some("CONFIRMED"));
    assert_eq!(metric(&app, "tablecast_mail_sent_total").await, 1.0);
}

#[tokio::test]
async fn a_cancellation_mails_the_guest_once_saying_who_cancelled() {
    let Some(sink) = SmtpSink::start("mail::cancel") else {
        return;
    };
    let app = mailing_app(&sink.url(), Backend::Sqlite).await;
    let f = app.standard_restaurant().await;
    let date = date_in(5);
    let (mine, token) = book(&app, &f.id, &date, "19:00", "ada@example.com").await;
    let (theirs, _) = book(&app, &f.id, &date, "20:00", "grace@example.com").await;
    sink.wait_for(2, WITHIN).await;

    assert_eq!(app.delete_reservation(&mine, &token).await.status(), 204);
    let mails = sink.wait_for(3, WITHIN).await;
    let m = &mails[2];
    assert_eq!(m.rcpt_tos, ["ada@example.com"]);
    assert!(m.subject.contains("cancelled"), "{}", m.subject);
    assert!(m.text().contains("As you asked"), "{}", m.text());
    let ics = m.ics().expect("a calendar file that removes the event");
    assert!(
        ics.contains("METHOD:CANCEL") && ics.contains("STATUS:CANCELLED"),
        "{ics}"
    );
    assert!(ics.contains(&format!("UID:{mine}@tablecast")));
    // As iTIP asks of a cancel: the organizer (the sending address) and the attendee, and the
    // method on the part too, so that the diner's calendar removes the event it added.
    assert!(ics.contains("ORGANIZER;CN=\"Chez Test\":mailto:"), "{ics}");
    assert!(ics.contains("ATTENDEE;CN=\"Ada Lovelace\""), "{ics}");
    assert!(ics.contains("mailto:ada@example.com"), "{ics}");
    assert_eq!(m.ics_method(), Some("CANCEL"));

    // A repeat cancels nothing and mails nothing; staff cancelling says so.
    assert_eq!(app.delete_reservation(&mine, &token).await.status(), 204);
    assert_eq!(
        app.delete_reservation(&theirs, &f.staff).await.status(),
        204
    );
    let mails = sink.wait_for(4, WITHIN).await;
    let m = &mails[3];
    assert_eq!(m.rcpt_tos, ["grace@example.com"]);
    assert!(
        m.subject.contains("Chez Test has cancelled"),
        "{}",
        m.subject
    );
    drained(&app).await;
    assert_eq!(sink.mails().len(), 4, "one mail per decision");
}

#[tokio::test]
async fn no_email_no_mail_and_a_hold_released_mails_nothing() {
    let Some(sink) = SmtpSink::start("mail::no_email") else {
        return;
    };
    let app = mailing_app(&sink.url(), Backend::Sqlite).await;
    let f = app.standard_restaurant().await;
    let date = date_in(5);
    let h: Value = app
        .hold(&f.id, &date, "19:00", 2)
        .await
        .json()
        .await
        .unwrap();
    let (id, token) = (h["id"].as_str().unwrap(), h["token"].as_str().unwrap());
    assert_eq!(app.confirm_as(id, token, json!({"name": "Ada"})).await, 200);
    let h: Value = app
        .hold(&f.id, &date, "20:00", 2)
        .await
        .json()
        .await
        .unwrap();
    let (id2, token2) = (h["id"].as_str().unwrap(), h["token"].as_str().unwrap());
    assert_eq!(app.delete_reservation(id2, token2).await.status(), 204);
    // A marker mail, written after the others, arrives after them.
    book(&app, &f.id, &date, "21:00", "marker@example.com").await;
    let mails = sink.wait_for(1, WITHIN).await;
    drained(&app).await;
    assert_eq!(sink.mails().len(), 1, "{mails:#?}");
    assert_eq!(mails[0].rcpt_tos, ["marker@example.com"]);
}

trait ConfirmAs {
    async fn confirm_as(&self, id: &str, token: &str, guest: Value) -> u16;
}

impl ConfirmAs for TestApp {
    async fn confirm_as(&self, id: &str, token: &str, guest: Value) -> u16 {
        self.send(
            Method::POST,
            &format!("/v1/reservations/{id}/confirm"),
            Some(token),
            Some(json!({ "guest": guest })),
        )
        .await
        .status()
        .as_u16()
    }
}

#[tokio::test]
async fn a_relay_down_during_50_bookings_delays_their_mail_and_loses_none_and_sends_none_twice() {
    let port = crate::kit::process::free_port();
    let Some(mut sink) = SmtpSink::unstarted("mail::relay_down", port) else {
        return;
    };
    let app = mailing_app(&sink.url(), Backend::Sqlite).await;
    let f = app
        .create_restaurant(restaurant_body(many_tables(50)))
        .await;
    let date = date_in(6);
    let started = std::time::Instant::now();
    let mut ids = Vec::new();
    for i in 0..50 {
        let (id, _) = book(
            &app,
            &f.id,
            &date,
            "19:00",
            &format!("guest{i}@example.com"),
        )
        .await;
        ids.push(id);
    }
    let booking_took = started.elapsed();
    eventually(WITHIN, "send failures show in /metrics", || async {
        metric(&app, "tablecast_mail_send_failures_total").await > 0.0
    })
    .await;
    eventually(WITHIN, "the outbox holds all 50", || async {
        metric(&app, "tablecast_mail_outbox_depth").await == 50.0
    })
    .await;
    assert!(sink.mails().is_empty());

    sink.run();
    let mails = sink.wait_for(50, Duration::from_secs(60)).await;
    drained(&app).await;
    let mails = if mails.len() == 50 {
        sink.mails()
    } else {
        mails
    };
    assert_eq!(mails.len(), 50, "none twice");
    let counts = per_reservation(&mails, &ids);
    assert!(
        counts.values().all(|n| *n == 1),
        "each booking once: {counts:?}"
    );
    let mut to: Vec<String> = mails.iter().map(|m| m.rcpt_tos[0].clone()).collect();
    to.sort();
    to.dedup();
    assert_eq!(to.len(), 50);
    eprintln!("50 bookings with the relay down took {booking_took:?}");
}
