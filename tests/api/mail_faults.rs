//! Mail across faults: an instance killed mid-send, and two instances sharing one outbox.
use crate::kit::api::*;
use crate::kit::app::*;
use crate::kit::process::Tablecast;
use crate::kit::smtp::SmtpSink;
use crate::mail::{book, drained, link_token, metric};
use reqwest::StatusCode;
use std::process::Stdio;
use std::time::Duration;

/// The binary on `db`, mailing through `relay` with a 2 s lease.
fn start(db: &str, relay: &str) -> Tablecast {
    Tablecast::start(
        &["serve", "--listen", "127.0.0.1:0", "--store", db],
        &[
            ("TABLECAST_ADMIN_TOKEN", ADMIN),
            ("TABLECAST_SMTP_URL", relay),
            ("TABLECAST_MAIL_FROM", "bookings@tablecast.test"),
            ("TABLECAST_MAIL_LEASE_SECS", "2"),
            ("TABLECAST_MAIL_RETRY_MAX_SECS", "0.5"),
            ("TABLECAST_MAX_LIVE_HOLDS_PER_CLIENT", "0"),
            ("TABLECAST_HOLD_RATE", "off"),
        ],
        Stdio::null(),
    )
}

/// A relay that accepts connections and never answers: its `smtp://` URL, and each connection
/// it holds (kept open for as long as the receiver keeps them).
async fn black_hole() -> (String, tokio::sync::mpsc::Receiver<tokio::net::TcpStream>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("smtp://{}", listener.local_addr().unwrap());
    let (held_tx, held_rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            let _ = held_tx.send(conn).await;
        }
    });
    (url, held_rx)
}

/// A booking confirmed (Ada's, with her address) on an instance whose relay accepts
/// connections and never answers, once that instance's sender is stuck on the relay.
struct StuckMail {
    _dir: tempfile::TempDir,
    /// The database, for the next instance.
    db: String,
    first: Tablecast,
    api: Api,
    id: String,
    token: String,
    /// The relay's later connections.
    held: tokio::sync::mpsc::Receiver<tokio::net::TcpStream>,
    _conn: tokio::net::TcpStream,
}

async fn confirmed_while_the_relay_hangs() -> StuckMail {
    let (hole, mut held) = black_hole().await;
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("m.db").display());
    let first = start(&db, &hole);
    let api = Api::new(&first.base, ADMIN);
    let f = api.standard_restaurant().await;
    let res = api.hold(&f.id, &date_in(4), "19:00", 2).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let h: serde_json::Value = res.json().await.unwrap();
    let (id, token) = (h["id"].as_str().unwrap(), h["token"].as_str().unwrap());
    assert_eq!(api.confirm(id, token).await.status(), StatusCode::OK);
    let conn = tokio::time::timeout(Duration::from_secs(20), held.recv())
        .await
        .expect("the sender connects to the relay")
        .unwrap();
    StuckMail {
        _dir: dir,
        db,
        first,
        api,
        id: id.to_owned(),
        token: token.to_owned(),
        held,
        _conn: conn,
    }
}

#[tokio::test]
async fn a_mail_claimed_by_an_instance_killed_mid_send_still_goes_out_once_after_restart() {
    let Some(sink) = SmtpSink::start("mail_faults::kill_9") else {
        return;
    };
    // The first instance's sender claims the mail and hangs in its SMTP greeting until the
    // process is killed.
    let mut stuck = confirmed_while_the_relay_hangs().await;
    stuck.first.proc.kill();

    let second = start(&stuck.db, &sink.url());
    let mails = sink.wait_for(1, Duration::from_secs(30)).await;
    let app = Api::new(&second.base, ADMIN);
    drained(&app).await;
    assert_eq!(sink.mails().len(), 1, "{mails:#?}");
    assert_eq!(mails[0].rcpt_tos, ["ada@example.com"]);
    // Its link names the second instance's public address and opens the booking.
    let token = link_token(&app, &mails[0], &stuck.id);
    assert_eq!(
        app.get_reservation(&stuck.id, &token).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn an_exchange_the_relay_never_answers_times_out_inside_the_lease_and_is_tried_again() {
    // The lease is 2 s, so an exchange may last 1 s: the sender gives up on the silent relay
    // (lettre bounds only the connect) and connects again for the retry.
    let mut stuck = confirmed_while_the_relay_hangs().await;
    let _again = tokio::time::timeout(Duration::from_secs(10), stuck.held.recv())
        .await
        .expect("a new attempt after the silent one timed out")
        .unwrap();
    crate::kit::wait::eventually(
        Duration::from_secs(10),
        "the silent attempt counted as a failure",
        || async { metric(&stuck.api, "tablecast_mail_send_failures_total").await >= 1.0 },
    )
    .await;
}

#[tokio::test]
async fn a_confirmation_held_back_until_after_its_cancellation_is_never_sent() {
    let Some(sink) = SmtpSink::start("mail_faults::held_back") else {
        return;
    };
    // The confirmation's attempts time out on the relay and it waits to retry; the diner
    // cancels meanwhile.
    let mut stuck = confirmed_while_the_relay_hangs().await;
    assert_eq!(
        stuck
            .api
            .delete_reservation(&stuck.id, &stuck.token)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    stuck.first.proc.kill();

    // The relay is back: the cancellation goes out; the stale confirmation does not, before
    // or after it.
    let second = start(&stuck.db, &sink.url());
    let mails = sink.wait_for(1, Duration::from_secs(30)).await;
    let app = Api::new(&second.base, ADMIN);
    drained(&app).await;
    assert_eq!(sink.mails().len(), 1, "{:#?}", sink.mails());
    assert!(
        mails[0].subject.to_lowercase().contains("cancel"),
        "{}",
        mails[0].subject
    );
    // Counted as dropped (by the second instance, which gave it up), not as sent.
    let metrics = crate::kit::metrics::scrape(&app.base).await;
    let dropped = |why| {
        crate::kit::metrics::sum(
            &metrics,
            "tablecast_mail_dropped_total",
            &[("kind", "confirmation"), ("why", why)],
        )
    };
    assert_eq!(dropped("cancelled_since"), 1.0, "{metrics}");
    assert_eq!(
        crate::kit::metrics::sum(&metrics, "tablecast_mail_sent_total", &[]),
        1.0
    );
}

#[tokio::test]
async fn two_instances_on_dynamodb_share_the_outbox_and_send_each_mail_once() {
    let Some(backend) = Backend::dynamo("mail_faults::two_instances") else {
        return;
    };
    let Some(sink) = SmtpSink::start("mail_faults::two_instances") else {
        return;
    };
    let table = format!("dynamodb://{}", unique_table("mail"));
    let (t1, t2) = (table.clone(), table.clone());
    let relay = sink.url();
    let a = mailing_app_on(&relay, backend, t1).await;
    let b = mailing_app_on(&relay, backend, t2).await;
    let f = a.create_restaurant(restaurant_body(many_tables(20))).await;
    let date = date_in(7);
    let mut ids = Vec::new();
    for i in 0..20 {
        let app = if i % 2 == 0 { &a } else { &b };
        let (id, _) = book(app, &f.id, &date, "19:30", &format!("g{i}@example.com")).await;
        ids.push(id);
    }
    sink.wait_for(20, Duration::from_secs(60)).await;
    drained(&a).await;
    drained(&b).await;
    let mails = sink.mails();
    assert_eq!(mails.len(), 20, "each mail once");
    let mut to: Vec<&str> = mails.iter().map(|m| m.rcpt_tos[0].as_str()).collect();
    to.sort_unstable();
    to.dedup();
    assert_eq!(to.len(), 20);
    let sent = metric(&a, "tablecast_mail_sent_total").await
        + metric(&b, "tablecast_mail_sent_total").await;
    assert_eq!(sent, 20.0, "the two senders together sent 20");
    eprintln!(
        "instance a sent {}, b sent {}",
        metric(&a, "tablecast_mail_sent_total").await,
        metric(&b, "tablecast_mail_sent_total").await
    );
    assert_eq!(ids.len(), 20);
}

async fn mailing_app_on(relay: &str, backend: Backend, store: String) -> TestApp {
    let relay = relay.to_owned();
    TestApp::spawn_on_with(backend, move |a| {
        a.store.store = store;
        a.mail.smtp_url = Some(relay);
        a.mail.mail_from = Some("bookings@tablecast.test".into());
        a.mail.mail_retry_max_secs = 0.5;
        a.mail.mail_lease_secs = 5.0;
    })
    .await
}

#[tokio::test]
async fn a_relay_that_never_answers_does_not_slow_a_booking() {
    let Some(_sink) = SmtpSink::start("mail_faults::slow_relay") else {
        return;
    };
    // Accepts connections, never says a word: every send hangs until its timeout.
    let black_hole = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hole = format!("smtp://{}", black_hole.local_addr().unwrap());
    let (held_tx, mut held_rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        while let Ok((conn, _)) = black_hole.accept().await {
            let _ = held_tx.send(conn).await;
        }
    });
    // A long lease: a send gives up on the relay only after 30 s, so a booking that waited on
    // it would take that long.
    let app = TestApp::spawn_on_with(Backend::Sqlite, move |a| {
        a.mail.smtp_url = Some(hole);
        a.mail.mail_from = Some("bookings@tablecast.test".into());
        a.mail.mail_retry_max_secs = 0.5;
        a.mail.mail_lease_secs = 60.0;
    })
    .await;
    let f = app
        .create_restaurant(restaurant_body(many_tables(12)))
        .await;
    let date = date_in(4);
    book(&app, &f.id, &date, "19:00", "first@example.com").await;
    let _stuck = tokio::time::timeout(Duration::from_secs(20), held_rx.recv())
        .await
        .expect("the sender is inside an SMTP exchange")
        .unwrap();
    // Each well within the 30 s the first send may still hang for.
    for i in 0..10 {
        tokio::time::timeout(
            Duration::from_secs(10),
            book(&app, &f.id, &date, "20:00", &format!("g{i}@example.com")),
        )
        .await
        .expect("a booking waited for the relay");
    }
    crate::kit::wait::eventually(
        Duration::from_secs(10),
        "the depth to show all 11",
        || async { metric(&app, "tablecast_mail_outbox_depth").await == 11.0 },
    )
    .await;
}

#[tokio::test]
async fn a_mail_the_relay_refuses_for_good_is_given_up_and_the_next_one_still_goes() {
    let Some(sink) = SmtpSink::start("mail_faults::refused") else {
        return;
    };
    let app = crate::mail::mailing_app(&sink.url(), Backend::Sqlite).await;
    let f = app.standard_restaurant().await;
    let date = date_in(4);
    book(&app, &f.id, &date, "19:00", "nobody@reject.test").await;
    book(&app, &f.id, &date, "20:00", "ada@example.com").await;
    let mails = sink.wait_for(1, Duration::from_secs(20)).await;
    drained(&app).await;
    assert_eq!(mails[0].rcpt_tos, ["ada@example.com"]);
    assert_eq!(sink.mails().len(), 1);
    assert_eq!(
        metric(&app, "tablecast_mail_send_failures_total").await,
        1.0,
        "one attempt, not retried"
    );
    assert_eq!(metric(&app, "tablecast_mail_sent_total").await, 1.0);
}
