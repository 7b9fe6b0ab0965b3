//! The sender: claims due outbox records (a lease, so one instance sends each), renders and
//! sends them in order of writing, and settles each with a conditional write. Failures retry
//! with jittered exponential backoff; a permanent refusal, or a mail three days old, is given up.
use super::metrics::MailMetrics;
use super::render::{render, Context, Rendered};
use super::{MailSettings, Transport};
use crate::domain::reservation::Status;
use crate::domain::Restaurant;
use crate::store::{DynStore, MailKind, OutboxRecord, Settle};
use chrono::{DateTime, Utc};
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use rand::Rng;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Records claimed at once.
const BATCH: u32 = 16;
/// How often the outbox is polled when nothing wakes the sender (another instance's mail, a
/// retry falling due).
const POLL: Duration = Duration::from_millis(500);
/// How often the depth gauge is refreshed.
const GAUGE_EVERY: Duration = Duration::from_secs(2);
/// A mail still unsent after this long is given up.
const GIVE_UP_AFTER: chrono::Duration = chrono::Duration::days(3);

/// Whether the record's lease (until `lease_ms`) outlasts an attempt started `now` that takes
/// up to `send_timeout`.
fn lease_covers(record: &OutboxRecord, now: DateTime<Utc>, send_timeout: Duration) -> bool {
    let end = now + chrono::Duration::from_std(send_timeout).unwrap_or(chrono::Duration::MAX);
    end.timestamp_millis() < record.lease_ms
}

/// A waitlist offer mail whose deadline has passed (the relay was down, say): sending it would
/// only offer what is gone, so it is given up unsent.
fn offer_ended(record: &OutboxRecord, now: DateTime<Utc>) -> bool {
    record.kind == MailKind::WaitlistOffer
        && record.reservation.expires_at.is_some_and(|x| x <= now)
}

/// A relay's answer as it may stand in the log: relays quote the recipient (`550 5.1.1
/// <ada@example.com>: Recipient address rejected`), and a guest's address is not the log's to
/// keep. Every address's local part becomes `***`; the domain stays (it tells which relay).
fn unaddressed(e: &impl std::fmt::Display) -> String {
    let text = e.to_string();
    // Anything but a delimiter: a local part may hold any character in UTF-8 (SMTPUTF8).
    let local = |c: char| !c.is_whitespace() && !c.is_control() && !"<>()[]\\,;:\"@".contains(c);
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(at) = rest.find('@') {
        let (before, after) = rest.split_at(at);
        // A quoted local part (`"ada lovelace"@…`) runs back to its opening quote.
        let quoted = before.strip_suffix('"').and_then(|inner| inner.rfind('"'));
        let start = quoted.unwrap_or_else(|| {
            before
                .char_indices()
                .rev()
                .take_while(|&(_, c)| local(c))
                .last()
                .map_or(before.len(), |(i, _)| i)
        });
        out.push_str(&before[..start]);
        if start < before.len() {
            out.push_str("***");
        }
        out.push('@');
        rest = &after[1..];
    }
    out.push_str(rest);
    out
}

/// A name as it may stand in a mail header: control characters (a line break would split the
/// header; settings and guests saved before they were refused may still hold one) become spaces.
fn display_name(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

enum Relay {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Log,
}

/// An attempt's failure: worth retrying, or not; or no attempt at all.
enum Failure {
    Transient(String),
    Permanent(String),
    /// Not sent: the lease would lapse during the exchange (another instance may claim it).
    Unleased,
}

pub struct Sender {
    store: DynStore,
    settings: MailSettings,
    relay: Relay,
    metrics: MailMetrics,
}

impl Sender {
    pub fn new(
        store: DynStore,
        settings: MailSettings,
        metrics: &crate::metrics::Metrics,
    ) -> anyhow::Result<Self> {
        let relay = match &settings.transport {
            Transport::Log => Relay::Log,
            Transport::Smtp(url) => Relay::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| anyhow::anyhow!("--smtp-url: {e}"))?
                    .timeout(Some(settings.send_timeout))
                    .build(),
            ),
        };
        Ok(Self {
            store,
            settings,
            relay,
            metrics: MailMetrics::register(metrics.registry())?,
        })
    }

    /// Sends every due record, batch after batch, until none is due. Returns how many settled.
    pub async fn drain(&self) -> usize {
        let mut settled = 0;
        loop {
            let now = Utc::now();
            let lease = now
                + chrono::Duration::from_std(self.settings.lease).unwrap_or(chrono::Duration::MAX);
            let batch = match self.store.outbox_claim(now, lease, BATCH).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = format!("{e:#}"), "mail: cannot claim the outbox");
                    return settled;
                }
            };
            if batch.is_empty() {
                return settled;
            }
            // In order of writing: a confirmation goes before the cancellation that follows it.
            for record in batch {
                match self.attempt(record).await {
                    Some(done) => settled += usize::from(done),
                    // The rest of the batch has the same lease: claimed again once it lapses.
                    None => return settled,
                }
            }
        }
    }

    /// Sends one claimed record and settles it. `None`: not attempted, because the lease would
    /// lapse during the attempt (another instance could then send it too); the record is left
    /// to be claimed again once its lease has passed.
    async fn attempt(&self, record: OutboxRecord) -> Option<bool> {
        if !lease_covers(&record, Utc::now(), self.settings.send_timeout) {
            tracing::info!(mail = %record.id, "mail: its lease would lapse during the attempt; left for the next claim");
            return None;
        }
        Some(self.attempt_leased(record).await)
    }

    async fn attempt_leased(&self, record: OutboxRecord) -> bool {
        if let Some(why) = self.overtaken(&record).await {
            // Written before a later decision and held back (the relay was down, say): what
            // it says is no longer true, and the later decision's own mail (if any) says what is.
            tracing::info!(mail = %record.id, why, "mail: overtaken by a later decision before it could be sent; not sent");
            self.metrics.mail_dropped(record.kind.as_str(), why);
            return self.settle(&record, Settle::Failed, Utc::now()).await;
        }
        let outcome = match self.send(&record).await {
            Ok(()) => Ok(()),
            Err(Failure::Permanent(why)) => Err((why, true)),
            Err(Failure::Transient(why)) => Err((why, false)),
            Err(Failure::Unleased) => {
                // Left for the next claim, unsettled.
                tracing::info!(mail = %record.id, "mail: its lease would lapse during the exchange; left for the next claim");
                return false;
            }
        };
        let now = Utc::now();
        let settle = match outcome {
            Ok(()) => {
                self.metrics.mail_sent(record.kind.as_str());
                Settle::Sent
            }
            Err((why, permanent)) => {
                self.metrics.mail_failed(record.kind.as_str());
                if permanent || now - record.created_at > GIVE_UP_AFTER {
                    tracing::error!(mail = %record.id, kind = record.kind.as_str(), attempts = record.attempts, error = %why, "mail: giving up");
                    Settle::Failed
                } else {
                    let at = now + self.backoff(record.attempts);
                    tracing::warn!(mail = %record.id, kind = record.kind.as_str(), attempts = record.attempts, retry_at = %at, error = %why, "mail: send failed; will retry");
                    Settle::RetryAt(at)
                }
            }
        };
        self.settle(&record, settle, now).await
    }

    async fn settle(&self, record: &OutboxRecord, settle: Settle, now: DateTime<Utc>) -> bool {
        match self.store.outbox_settle(record, settle, now).await {
            Ok(true) => true,
            Ok(false) => {
                tracing::warn!(mail = %record.id, "mail: the lease lapsed before the attempt settled");
                false
            }
            Err(e) => {
                tracing::warn!(mail = %record.id, error = format!("{e:#}"), "mail: cannot settle; the lease will lapse");
                false
            }
        }
    }

    /// Why a mail no longer says what is true, if it does not: a confirmation whose reservation
    /// was cancelled since (`cancelled_since`), or an offer no longer open (`offer_ended`: past
    /// its deadline, or its held reservation released, confirmed or expired since; its link
    /// could only say "too late", and a lost-offer mail follows when it lapsed). On a failed
    /// read, none: the mail goes out as written.
    async fn overtaken(&self, record: &OutboxRecord) -> Option<&'static str> {
        let now = Utc::now();
        match record.kind {
            MailKind::WaitlistOffer if offer_ended(record, now) => return Some("offer_ended"),
            MailKind::Confirmation | MailKind::WaitlistOffer => {}
            _ => return None,
        }
        let Ok(Some(current)) = self.store.reservation(record.reservation.id).await else {
            return None;
        };
        match record.kind {
            MailKind::Confirmation => {
                (current.status == Status::Cancelled).then_some("cancelled_since")
            }
            _ => (current.status_at(now) != Status::Held).then_some("offer_ended"),
        }
    }

    /// 1 s, 2 s, 4 s … up to `retry_max`, each with up to 25% jitter.
    fn backoff(&self, attempts: u32) -> chrono::Duration {
        let base = Duration::from_secs(1u64 << attempts.saturating_sub(1).min(20));
        let wait = base.min(self.settings.retry_max);
        let jitter = rand::thread_rng().gen_range(0.0..0.25);
        chrono::Duration::from_std(wait.mul_f64(1.0 + jitter)).unwrap_or(chrono::Duration::MAX)
    }

    async fn send(&self, record: &OutboxRecord) -> Result<(), Failure> {
        let r = &record.reservation;
        let restaurant = match self.store.restaurant(r.restaurant_id).await {
            Ok(Some(s)) => s.restaurant,
            Ok(None) => return Err(Failure::Permanent("the restaurant is gone".into())),
            Err(e) => return Err(Failure::Transient(format!("{e:#}"))),
        };
        // A link token is minted as the mail is written, and only its hash is stored.
        let token = if record.kind.has_manage_link() {
            let t = crate::token::generate();
            self.store
                .add_reservation_token(&crate::token::hash(&t), r.restaurant_id, r.id)
                .await
                .map_err(|e| Failure::Transient(format!("{e:#}")))?;
            Some(t)
        } else {
            None
        };
        let organizer = self.settings.from.email.to_string();
        let cx = Context {
            restaurant: &restaurant,
            public_url: &self.settings.public_url,
            token: token.as_deref(),
            now: Utc::now(),
            people: Some(super::ics::People {
                organizer: &organizer,
                attendee: &record.to,
            }),
        };
        let rendered = render(record.kind, r, &cx);
        match &self.relay {
            Relay::Log => {
                tracing::info!(
                    mail = %record.id,
                    "mail printed, not sent (no SMTP relay)\nTo: {}\nSubject: {}\n\n{}",
                    record.to,
                    rendered.subject,
                    rendered.text
                );
                Ok(())
            }
            Relay::Smtp(smtp) => {
                // A message that cannot be built is this mail's failure, never the sender's.
                let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    self.message(record, &restaurant, &rendered)
                }));
                let msg = built
                    .map_err(|_| "the message could not be built".to_owned())
                    .and_then(|m| m)
                    .map_err(Failure::Permanent)?;
                // Checked again here, after the reads and the token: the whole exchange must end
                // inside the lease, and the timeout holds it to that (lettre's own bounds only
                // the connect: a relay that accepts and never answers would hold it forever).
                let timeout = self.settings.send_timeout;
                if !lease_covers(record, Utc::now(), timeout) {
                    return Err(Failure::Unleased);
                }
                match tokio::time::timeout(timeout, smtp.send(msg)).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) if e.is_permanent() => Err(Failure::Permanent(unaddressed(&e))),
                    Ok(Err(e)) => Err(Failure::Transient(unaddressed(&e))),
                    Err(_) => Err(Failure::Transient(format!(
                        "the relay did not finish the exchange within {timeout:?}"
                    ))),
                }
            }
        }
    }

    fn message(
        &self,
        record: &OutboxRecord,
        restaurant: &Restaurant,
        m: &Rendered,
    ) -> Result<Message, String> {
        let guest = record
            .reservation
            .guest
            .as_ref()
            .map(|g| display_name(&g.name));
        let to = Mailbox::new(
            guest,
            record
                .to
                .parse()
                .map_err(|e| format!("bad recipient address: {e}"))?,
        );
        // The restaurant's name shows as the sender; the address stays the configured one.
        let from = Mailbox::new(
            Some(display_name(&restaurant.name)),
            self.settings.from.email.clone(),
        );
        let alternative = MultiPart::alternative()
            .singlepart(SinglePart::plain(m.text.clone()))
            .singlepart(SinglePart::html(m.html.clone()));
        let body = match &m.ics {
            Some(ics) => {
                // The method again on the part, as RFC 6047 asks: calendars act on it.
                let ct = ContentType::parse(&format!(
                    "text/calendar; charset=utf-8; method={}",
                    ics.method
                ))
                .map_err(|e| e.to_string())?;
                MultiPart::mixed().multipart(alternative).singlepart(
                    Attachment::new("reservation.ics".into()).body(ics.text.clone(), ct),
                )
            }
            None => alternative,
        };
        // One id per outbox record: a resent attempt is recognisably the same message.
        let message_id = format!("<{}@{}>", record.id, self.settings.from.email.domain());
        Message::builder()
            .message_id(Some(message_id))
            .date_now()
            .from(from)
            .reply_to(self.settings.from.clone())
            .to(to)
            .subject(&m.subject)
            .multipart(body)
            .map_err(|e| e.to_string())
    }
}

/// Sends mail until the task is aborted: woken by each commit that wrote mail, and polling
/// for the rest. Beside it, keeps the outbox depth gauge current, even while a send hangs.
pub async fn run(sender: Arc<Sender>, wake: Arc<Notify>) {
    let send = async {
        loop {
            sender.drain().await;
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    };
    let gauge = async {
        let mut tick = tokio::time::interval(GAUGE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match sender.store.outbox_pending().await {
                Ok(n) => sender.metrics.outbox_depth(n),
                Err(e) => {
                    tracing::debug!(error = format!("{e:#}"), "mail: cannot count the outbox")
                }
            }
        }
    };
    tokio::join!(send, gauge);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::reservation::{Reservation, Status};
    use crate::domain::time::{LocalDate, WallTime};
    use crate::domain::TableId;
    use chrono::TimeZone;

    #[test]
    fn a_relays_answer_is_logged_without_the_local_part_of_any_address() {
        assert_eq!(
            unaddressed(&"permanent error (550): 5.1.1 <grace.private+x@example.com>: Recipient address rejected"),
            "permanent error (550): 5.1.1 <***@example.com>: Recipient address rejected"
        );
        assert_eq!(
            unaddressed(&"a@b.c and bob@x.org, then @ alone"),
            "***@b.c and ***@x.org, then @ alone"
        );
        assert_eq!(unaddressed(&"no address here"), "no address here");
        assert_eq!(
            unaddressed(&"<adä@example.com>, (zoë.smith@example.com)"),
            "<***@example.com>, (***@example.com)"
        );
        assert_eq!(
            unaddressed(&"<\"ada lovelace\"@example.com> and \"x\"@y.z"),
            "<***@example.com> and ***@y.z"
        );
    }

    fn record(kind: MailKind, expires_at: Option<DateTime<Utc>>) -> OutboxRecord {
        let at = |h, m| Utc.with_ymd_and_hms(2026, 7, 4, h, m, 0).unwrap();
        OutboxRecord {
            id: uuid::Uuid::new_v4(),
            kind,
            to: "ada@example.com".into(),
            reservation: Reservation {
                id: uuid::Uuid::new_v4(),
                restaurant_id: uuid::Uuid::new_v4(),
                table_id: TableId::parse("t1").unwrap(),
                table_ids: vec![TableId::parse("t1").unwrap()],
                combination_id: None,
                date: LocalDate::parse("2026-07-04").unwrap(),
                time: WallTime::parse("19:30").unwrap(),
                start: at(17, 30),
                end: at(19, 0),
                party_size: 2,
                status: Status::Held,
                expires_at,
                guest: None,
                notes: String::new(),
                created_at: at(9, 0),
                updated_at: at(9, 0),
            },
            created_at: at(9, 0),
            attempts: 1,
            lease_ms: 0,
        }
    }

    #[test]
    fn a_record_is_attempted_only_while_its_lease_outlasts_the_attempt() {
        let now = Utc.with_ymd_and_hms(2026, 7, 4, 9, 0, 0).unwrap();
        let timeout = Duration::from_secs(30);
        let mut r = record(MailKind::Confirmation, None);
        r.lease_ms = (now + chrono::Duration::seconds(60)).timestamp_millis();
        assert!(lease_covers(&r, now, timeout));
        // Late in a batch behind a slow relay: another instance may claim it during the send.
        assert!(!lease_covers(
            &r,
            now + chrono::Duration::seconds(31),
            timeout
        ));
        assert!(!lease_covers(
            &r,
            now + chrono::Duration::seconds(30),
            timeout
        ));
        assert!(!lease_covers(
            &r,
            now + chrono::Duration::seconds(90),
            timeout
        ));
    }

    #[test]
    fn a_name_in_a_header_loses_its_control_characters() {
        assert_eq!(
            display_name("Chez Rust\r\nBcc: evil@attacker.test"),
            "Chez Rust  Bcc: evil@attacker.test"
        );
        assert_eq!(display_name("Zoë's \"Bistro\""), "Zoë's \"Bistro\"");
        // Such a name builds a message instead of panicking in the mail library.
        let from: lettre::Address = "book@example.com".parse().unwrap();
        let mailbox = Mailbox::new(Some(display_name("A\r\nB")), from);
        Message::builder()
            .from(mailbox)
            .to("ada@example.com".parse().unwrap())
            .subject("s")
            .body(String::from("b"))
            .expect("a message");
    }

    #[test]
    fn an_offer_mail_past_its_deadline_is_not_sent_and_other_mail_is() {
        let deadline = Utc.with_ymd_and_hms(2026, 7, 4, 9, 2, 0).unwrap();
        let before = deadline - chrono::Duration::seconds(1);
        let offer = record(MailKind::WaitlistOffer, Some(deadline));
        assert!(!offer_ended(&offer, before));
        assert!(offer_ended(&offer, deadline));
        assert!(offer_ended(&offer, deadline + chrono::Duration::minutes(5)));
        // The lost-offer notice and a confirmation go out whatever the hold's deadline said.
        let lost = record(MailKind::OfferLost, Some(deadline));
        assert!(!offer_ended(&lost, deadline + chrono::Duration::minutes(5)));
        let confirmed = record(MailKind::Confirmation, None);
        assert!(!offer_ended(&confirmed, deadline));
    }
}
