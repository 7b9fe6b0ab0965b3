//! Waitlist mail against a real SMTP server (aiosmtpd): an offer mails its deadline and a
//! one-tap link whose fragment token reads and confirms the held table; a lapsed offer (expiry
//! or a pass) mails one "lost" mail; an entry without an address is never mailed. Each on
//! SQLite and on DynamoDB (DynamoDB Local).
use crate::kit::api::*;
use crate::kit::app::*;
use crate::kit::smtp::{Mail, SmtpSink};
use crate::kit::wait::until;
use crate::mail::{drained, link_token, mailing_app};
use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

const WITHIN: Duration = Duration::from_secs(20);

/// One table t1 for parties of 1–2, offers held `offer_seconds`.
async fn one_table(app: &TestApp, offer_seconds: u32) -> Fixture {
    let mut body = restaurant_body(json!([{"id": "t1", "max_party": 2}]));
    body["offer_seconds"] = json!(offer_seconds);
    app.create_restaurant(body).await
}

/// A hold on t1 at 19:00 (id, token), then an entry for 19:00 (id, token) with `email`.
async fn full_and_waiting(
    app: &TestApp,
    rid: &str,
    date: &str,
    email: Option<&str>,
) -> ((String, String), (String, String)) {
    let h = app.held(rid, date, "19:00", 2).await;
    let mut guest = json!({"name": "Grace Hopper"});
    if let Some(e) = email {
        guest["email"] = json!(e);
    }
    let res = app
        .send(
            Method::POST,
            &format!("/v1/restaurants/{rid}/waitlist"),
            None,
            Some(
                json!({"date": date, "party_size": 2, "from": "18:30", "to": "19:30",
                        "guest": guest}),
            ),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let e: Value = res.json().await.unwrap();
    let s = |v: &Value, k: &str| v[k].as_str().unwrap().to_owned();
    ((s(&h, "id"), s(&h, "token")), (s(&e, "id"), s(&e, "token")))
}

/// Waits until the entry reads `status`; returns it.
async fn entry_becomes(app: &TestApp, id: &str, token: &str, status: &str) -> Value {
    until(WITHIN, &format!("the entry becomes {status}"), || async {
        let e = app.waitlist_entry(id, token).await;
        (e["status"] == status).then_some(e)
    })
    .await
}

/// The offer's deadline as the mail prints it: the restaurant's (Paris) wall clock.
fn paris_clock(expires_at: &str) -> String {
    let at: DateTime<Utc> = expires_at.parse().unwrap();
    at.with_timezone(&chrono_tz::Europe::Paris)
        .format("%H:%M:%S")
        .to_string()
}

fn html(m: &Mail) -> &str {
    m.html.as_deref().unwrap_or_default()
}

#[tokio::test]
async fn an_offer_mails_its_deadline_and_a_link_whose_fragment_token_confirms_it() {
    an_offer_mails_its_deadline_and_a_link_whose_fragment_token_confirms_it_on(
        Some(Backend::Sqlite),
        "waitlist_mail::offer",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_dynamodb_an_offer_mails_its_deadline_and_a_link_whose_fragment_token_confirms_it() {
    let name = "waitlist_mail::offer_dynamo";
    an_offer_mails_its_deadline_and_a_link_whose_fragment_token_confirms_it_on(
        Backend::dynamo(name),
        name,
    )
    .await
}

async fn an_offer_mails_its_deadline_and_a_link_whose_fragment_token_confirms_it_on(
    backend: Option<Backend>,
    name: &str,
) {
    let Some(backend) = backend else {
        return;
    };
    let Some(sink) = SmtpSink::start(name) else {
        return;
    };
    let app = mailing_app(&sink.url(), backend).await;
    let r = one_table(&app, 120).await;
    let date = date_in(4);
    let ((hid, htok), (eid, etok)) =
        full_and_waiting(&app, &r.id, &date, Some("grace@example.com")).await;
    assert_eq!(
        app.delete_reservation(&hid, &htok).await.status(),
        StatusCode::NO_CONTENT
    );
    let e = entry_becomes(&app, &eid, &etok, "offered").await;
    let rid = e["offer"]["reservation_id"].as_str().unwrap().to_owned();

    let mails = sink.wait_for(1, WITHIN).await;
    drained(&app).await;
    assert_eq!(sink.mails().len(), 1, "one mail: {:#?}", sink.mails());
    let m = &mails[0];
    assert_eq!(m.rcpt_tos, ["grace@example.com"]);
    assert!(m.to.contains("Grace Hopper"), "{}", m.to);
    assert!(
        m.subject.contains("Chez Test") && m.subject.contains("19:00"),
        "{}",
        m.subject
    );
    let deadline = paris_clock(e["offer"]["expires_at"].as_str().unwrap());
    for part in [m.text(), html(m)] {
        assert!(part.contains("Chez Test"), "{part}");
        assert!(
            part.contains("19:00") && part.contains("2 people"),
            "{part}"
        );
        assert!(part.contains(&deadline), "deadline {deadline} in: {part}");
        assert!(
            part.contains(&format!("{}/reservation/{rid}#t=", app.base)),
            "{part}"
        );
    }
    assert!(m.ics().is_none(), "an offer is not a booking yet");
    // The token is only in the fragment: the path names the reservation, no query string.
    let token = link_token(&app, m, &rid);
    assert!(!token.contains('?') && !token.is_empty());
    assert!(!m.text().contains(&format!("/reservation/{rid}?")));

    // The link's token reads the held reservation and confirms it: the entry is booked.
    let got = app.get_reservation(&rid, &token).await;
    assert_eq!(got.status(), StatusCode::OK);
    let got: Value = got.json().await.unwrap();
    assert_eq!(got["status"], "held");
    assert_eq!(got["time"], "19:00");
    let res = app
        .send(
            Method::POST,
            &format!("/v1/reservations/{rid}/confirm"),
            Some(&token),
            Some(json!({"guest": {"name": "Grace Hopper"}})),
        )
        .await;
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "{}",
        res.text().await.unwrap()
    );
    assert_eq!(app.waitlist_entry(&eid, &etok).await["status"], "booked");
    // Only a name was asked for: the address the entry gave at the join stays on the booking,
    // and the confirmation (with its manage link) is mailed there.
    let booked: Value = res.json().await.unwrap();
    assert_eq!(booked["guest"]["email"], "grace@example.com");
    let mails = sink.wait_for(2, WITHIN).await;
    drained(&app).await;
    assert_eq!(
        sink.mails().len(),
        2,
        "the offer and the confirmation, no loss mail: {:#?}",
        sink.mails()
    );
    let confirmation = &mails[1];
    assert_eq!(confirmation.rcpt_tos, ["grace@example.com"]);
    assert!(
        confirmation.ics().is_some(),
        "a booking carries its calendar file"
    );
    let manage = link_token(&app, confirmation, &rid);
    assert_eq!(
        app.get_reservation(&rid, &manage).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn an_offer_that_expires_mails_one_lost_mail() {
    an_offer_that_expires_mails_one_lost_mail_on(Some(Backend::Sqlite), "waitlist_mail::expiry")
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_dynamodb_an_offer_that_expires_mails_one_lost_mail() {
    let name = "waitlist_mail::expiry_dynamo";
    an_offer_that_expires_mails_one_lost_mail_on(Backend::dynamo(name), name).await
}

async fn an_offer_that_expires_mails_one_lost_mail_on(backend: Option<Backend>, name: &str) {
    let Some(backend) = backend else {
        return;
    };
    let Some(sink) = SmtpSink::start(name) else {
        return;
    };
    let app = mailing_app(&sink.url(), backend).await;
    let r = one_table(&app, 15).await;
    let date = date_in(4);
    let ((hid, htok), (eid, etok)) =
        full_and_waiting(&app, &r.id, &date, Some("grace@example.com")).await;
    app.delete_reservation(&hid, &htok).await;
    let e = entry_becomes(&app, &eid, &etok, "offered").await;
    let deadline = paris_clock(e["offer"]["expires_at"].as_str().unwrap());
    sink.wait_for(1, WITHIN).await;
    // Nobody answers: after 15 s the sweeper expires the hold and lapses the entry.
    entry_becomes(&app, &eid, &etok, "lapsed").await;
    let mails = sink.wait_for(2, WITHIN).await;
    drained(&app).await;
    assert_eq!(sink.mails().len(), 2, "offer + lost: {:#?}", sink.mails());
    let lost = &mails[1];
    assert_eq!(lost.rcpt_tos, ["grace@example.com"]);
    assert!(
        lost.subject.contains("ended") && lost.subject.contains("Chez Test"),
        "{}",
        lost.subject
    );
    for part in [lost.text(), html(lost)] {
        assert!(
            part.contains("not confirmed by") && part.contains(&deadline),
            "{part}"
        );
        assert!(
            !part.contains("#t="),
            "a lost offer carries no token: {part}"
        );
    }
}

#[tokio::test]
async fn passing_an_offer_mails_one_lost_mail_and_leaving_mails_nothing() {
    passing_an_offer_mails_one_lost_mail_and_leaving_mails_nothing_on(
        Some(Backend::Sqlite),
        "waitlist_mail::pass",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_dynamodb_passing_an_offer_mails_one_lost_mail_and_leaving_mails_nothing() {
    let name = "waitlist_mail::pass_dynamo";
    passing_an_offer_mails_one_lost_mail_and_leaving_mails_nothing_on(Backend::dynamo(name), name)
        .await
}

async fn passing_an_offer_mails_one_lost_mail_and_leaving_mails_nothing_on(
    backend: Option<Backend>,
    name: &str,
) {
    let Some(backend) = backend else {
        return;
    };
    let Some(sink) = SmtpSink::start(name) else {
        return;
    };
    let app = mailing_app(&sink.url(), backend).await;
    let r = one_table(&app, 120).await;
    let date = date_in(4);
    let ((hid, htok), (eid, etok)) =
        full_and_waiting(&app, &r.id, &date, Some("grace@example.com")).await;
    app.delete_reservation(&hid, &htok).await;
    let e = entry_becomes(&app, &eid, &etok, "offered").await;
    let rid = e["offer"]["reservation_id"].as_str().unwrap().to_owned();
    // Her offer mail is out (one still unsent when the offer is answered is not sent).
    sink.wait_for(1, WITHIN).await;
    // A second entry, joined after the offer, takes the passed table.
    let res = app
        .send(
            Method::POST,
            &format!("/v1/restaurants/{}/waitlist", r.id),
            None,
            Some(
                json!({"date": date, "party_size": 2, "from": "19:00", "to": "19:00",
                        "guest": {"name": "Alan", "email": "alan@example.com"}}),
            ),
        )
        .await;
    let second: Value = res.json().await.unwrap();
    let (sid, stok) = (
        second["id"].as_str().unwrap(),
        second["token"].as_str().unwrap(),
    );
    assert_eq!(
        app.delete_reservation(&rid, &etok).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.waitlist_entry(&eid, &etok).await["status"], "lapsed");
    entry_becomes(&app, sid, stok, "offered").await;
    sink.wait_for(3, WITHIN).await;
    // The second entry leaves: its offer is declined, which mails it nothing more.
    let res = app
        .send(
            Method::DELETE,
            &format!("/v1/waitlist/{sid}"),
            Some(stok),
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    sink.wait_for(3, WITHIN).await;
    drained(&app).await;
    let mails = sink.mails();
    let to = |a: &str| -> Vec<&Mail> { mails.iter().filter(|m| m.rcpt_tos == [a]).collect() };
    let grace = to("grace@example.com");
    assert_eq!(grace.len(), 2, "offer + lost: {mails:#?}");
    assert!(grace.iter().any(|m| m.text().contains("has been released")));
    assert_eq!(
        to("alan@example.com").len(),
        1,
        "only its offer: {mails:#?}"
    );
}

#[tokio::test]
async fn an_entry_without_an_email_is_never_mailed() {
    an_entry_without_an_email_is_never_mailed_on(Some(Backend::Sqlite), "waitlist_mail::none").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_dynamodb_an_entry_without_an_email_is_never_mailed() {
    let name = "waitlist_mail::none_dynamo";
    an_entry_without_an_email_is_never_mailed_on(Backend::dynamo(name), name).await
}

async fn an_entry_without_an_email_is_never_mailed_on(backend: Option<Backend>, name: &str) {
    let Some(backend) = backend else {
        return;
    };
    let Some(sink) = SmtpSink::start(name) else {
        return;
    };
    let app = mailing_app(&sink.url(), backend).await;
    let r = one_table(&app, 120).await;
    let date = date_in(4);
    let ((hid, htok), (eid, etok)) = full_and_waiting(&app, &r.id, &date, None).await;
    app.delete_reservation(&hid, &htok).await;
    let e = entry_becomes(&app, &eid, &etok, "offered").await;
    drained(&app).await;
    let rid = e["offer"]["reservation_id"].as_str().unwrap();
    app.delete_reservation(rid, &etok).await;
    entry_becomes(&app, &eid, &etok, "lapsed").await;
    drained(&app).await;
    assert!(sink.mails().is_empty(), "{:#?}", sink.mails());
}

#[tokio::test]
async fn a_diner_who_cancels_with_the_entry_token_is_told_it_was_as_they_asked() {
    let Some(sink) = SmtpSink::start("waitlist_mail::entrant_cancels") else {
        return;
    };
    let app = mailing_app(&sink.url(), Backend::Sqlite).await;
    let r = one_table(&app, 120).await;
    let date = date_in(4);
    let ((hid, htok), (eid, etok)) = full_and_waiting(&app, &r.id, &date, None).await;
    assert_eq!(
        app.delete_reservation(&hid, &htok).await.status(),
        StatusCode::NO_CONTENT
    );
    let e = entry_becomes(&app, &eid, &etok, "offered").await;
    let rid = e["offer"]["reservation_id"].as_str().unwrap().to_owned();
    let res = app
        .send(
            Method::POST,
            &format!("/v1/reservations/{rid}/confirm"),
            Some(&etok),
            Some(json!({"guest": {"name": "Grace Hopper", "email": "grace@example.com"}})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    sink.wait_for(1, WITHIN).await;
    // The entry's token is the booking's own: its cancellation is the diner's, not the
    // restaurant's.
    assert_eq!(
        app.delete_reservation(&rid, &etok).await.status(),
        StatusCode::NO_CONTENT
    );
    let mails = sink.wait_for(2, WITHIN).await;
    drained(&app).await;
    let cancel = &mails[1];
    assert!(cancel.text().contains("As you asked"), "{}", cancel.text());
    assert!(
        !cancel.subject.contains("has cancelled"),
        "{}",
        cancel.subject
    );
}

#[tokio::test]
async fn an_offer_mail_held_back_until_after_the_offer_was_released_is_never_sent() {
    let name = "waitlist_mail::held_back_offer";
    let Some(mut sink) = SmtpSink::unstarted(name, crate::kit::process::free_port()) else {
        return;
    };
    // The relay is down: the offer mail waits to be retried.
    let app = mailing_app(&sink.url(), Backend::Sqlite).await;
    let r = one_table(&app, 120).await;
    let date = date_in(4);
    let ((hid, htok), (eid, etok)) =
        full_and_waiting(&app, &r.id, &date, Some("grace@example.com")).await;
    app.delete_reservation(&hid, &htok).await;
    let e = entry_becomes(&app, &eid, &etok, "offered").await;
    let rid = e["offer"]["reservation_id"].as_str().unwrap().to_owned();
    until(WITHIN, "an attempt at the offer mail failed", || async {
        (crate::mail::metric(&app, "tablecast_mail_send_failures_total").await >= 1.0).then_some(())
    })
    .await;
    // The diner passes in the app before the mail could go.
    assert_eq!(
        app.delete_reservation(&rid, &etok).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.waitlist_entry(&eid, &etok).await["status"], "lapsed");

    // The relay is back: "your offer has ended" goes; the offer it ended never does.
    sink.run();
    until(WITHIN, "both mails settled, sent or dropped", || async {
        let metrics = crate::kit::metrics::scrape(&app.base).await;
        let settled = crate::kit::metrics::sum(&metrics, "tablecast_mail_sent_total", &[])
            + crate::kit::metrics::sum(&metrics, "tablecast_mail_dropped_total", &[]);
        (settled >= 2.0).then_some(())
    })
    .await;
    let mails = sink.wait_for(1, WITHIN).await;
    assert_eq!(sink.mails().len(), 1, "{:#?}", sink.mails());
    assert!(
        mails[0].text().contains("has been released"),
        "{}",
        mails[0].text()
    );
    let metrics = crate::kit::metrics::scrape(&app.base).await;
    assert_eq!(
        crate::kit::metrics::sum(
            &metrics,
            "tablecast_mail_dropped_total",
            &[("kind", "waitlist_offer"), ("why", "offer_ended")],
        ),
        1.0,
        "{metrics}"
    );
}
