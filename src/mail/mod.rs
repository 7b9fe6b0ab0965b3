//! Diner email. Decisions put mail in the store's outbox in their own atomic write; the sender
//! here claims due records, renders them and hands them to an SMTP relay (or the log), then
//! marks them sent. A dead or slow relay only delays mail: bookings never wait for it.
mod args;
pub mod ics;
mod metrics;
pub mod render;
mod sender;

pub use args::MailArgs;
pub use sender::{run, Sender};

use lettre::message::Mailbox;
use std::time::Duration;

/// Where rendered mail goes.
#[derive(Debug, Clone)]
pub enum Transport {
    /// An SMTP relay: `smtp://[user:pass@]host[:port][?tls=required]` (STARTTLS when asked) or
    /// `smtps://user:pass@host[:port]` (TLS from the start).
    Smtp(String),
    /// Printed to the log (the demo), and marked sent.
    Log,
}

#[derive(Debug, Clone)]
pub struct MailSettings {
    pub transport: Transport,
    pub from: Mailbox,
    /// The diner app's public address, without a trailing slash.
    pub public_url: String,
    /// How long a claimed record is the claimer's before another instance may take it.
    pub lease: Duration,
    /// The longest wait between two attempts of one mail.
    pub retry_max: Duration,
    /// How long one SMTP exchange may take.
    pub send_timeout: Duration,
}

impl MailSettings {
    /// The relay for the log: its host only, never its credentials.
    pub fn transport_name(&self) -> String {
        match &self.transport {
            Transport::Log => "log".into(),
            Transport::Smtp(u) => {
                let (scheme, rest) = u.split_once("://").unwrap_or(("smtp", u));
                let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
                let host = host.split(['?', '/']).next().unwrap_or(host);
                format!("{scheme}://{host}")
            }
        }
    }
}

/// The public address to put in links: `--public-url` if given, else the bound address, with an
/// unspecified host (`0.0.0.0`, `::`) replaced by `localhost`.
pub fn public_url(given: Option<&str>, bound: std::net::SocketAddr) -> String {
    if let Some(u) = given.map(str::trim).filter(|u| !u.is_empty()) {
        return u.trim_end_matches('/').to_owned();
    }
    let host = match bound.ip() {
        ip if ip.is_unspecified() => "localhost".to_owned(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    format!("http://{host}:{}", bound.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_sender_builds_for_each_relay_form_tls_included() {
        let store: crate::store::DynStore = std::sync::Arc::new(
            crate::store::sqlite::SqliteStore::open("sqlite::memory:")
                .await
                .unwrap(),
        );
        for url in [
            "smtp://127.0.0.1:2525",
            "smtp://user:pass@mail.example.com:587?tls=required",
            "smtps://user:pass@email-smtp.eu-west-1.amazonaws.com:465",
        ] {
            let settings = MailSettings {
                transport: Transport::Smtp(url.into()),
                from: "b@example.com".parse().unwrap(),
                public_url: "https://book.example.com".into(),
                lease: Duration::from_secs(60),
                retry_max: Duration::from_secs(300),
                send_timeout: Duration::from_secs(30),
            };
            let metrics = crate::metrics::Metrics::new();
            assert!(
                Sender::new(store.clone(), settings, &metrics).is_ok(),
                "{url}"
            );
        }
    }

    #[test]
    fn the_public_url_defaults_to_the_bound_address_and_drops_a_trailing_slash() {
        let a: std::net::SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert_eq!(public_url(None, a), "http://localhost:8080");
        let b: std::net::SocketAddr = "127.0.0.1:9000".parse().unwrap();
        assert_eq!(public_url(None, b), "http://127.0.0.1:9000");
        let c: std::net::SocketAddr = "[::1]:80".parse().unwrap();
        assert_eq!(public_url(None, c), "http://[::1]:80");
        assert_eq!(
            public_url(Some("https://book.example.com/"), a),
            "https://book.example.com"
        );
    }
}
