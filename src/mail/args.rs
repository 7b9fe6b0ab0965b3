//! The mail flags of `serve`, each with its `TABLECAST_*` twin.
use super::{MailSettings, Transport};
use clap::Args;

/// Diner email: off unless an SMTP relay is configured (or `--mail-to-log`).
#[derive(Debug, Clone, Default, Args)]
pub struct MailArgs {
    /// SMTP relay for diner email: smtp://[USER:PASS@]HOST[:PORT][?tls=required] or
    /// smtps://USER:PASS@HOST[:PORT]. Unset: no mail is sent.
    #[arg(long, env = "TABLECAST_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// The sender address of diner email, `Name <address>` or `address` (required with an
    /// SMTP relay; the restaurant's name is shown as the sender's name).
    #[arg(long, env = "TABLECAST_MAIL_FROM")]
    pub mail_from: Option<String>,
    /// Print diner email to the log instead of sending it (on by default with `--demo` when
    /// no SMTP relay is set).
    #[arg(long, env = "TABLECAST_MAIL_TO_LOG", value_parser = clap::builder::BoolishValueParser::new())]
    pub mail_to_log: bool,
    /// The address diners reach this service at, for links in email
    /// (default: http:// and the listen address, `localhost` for an unspecified host).
    #[arg(long, env = "TABLECAST_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Seconds a claimed mail stays with the instance sending it before another may take it.
    #[arg(
        long,
        env = "TABLECAST_MAIL_LEASE_SECS",
        default_value_t = 60.0,
        hide = true
    )]
    pub mail_lease_secs: f64,
    /// The longest wait, in seconds, between two attempts to send one mail.
    #[arg(
        long,
        env = "TABLECAST_MAIL_RETRY_MAX_SECS",
        default_value_t = 300.0,
        hide = true
    )]
    pub mail_retry_max_secs: f64,
}

impl MailArgs {
    /// The mail settings, or `None` when nothing will deliver mail. `demo` prints to the log
    /// when no relay is set.
    pub fn settings(
        &self,
        demo: bool,
        bound: std::net::SocketAddr,
    ) -> anyhow::Result<Option<MailSettings>> {
        use std::time::Duration;
        let transport = match self.smtp_url.as_deref().map(str::trim) {
            Some(u) if !u.is_empty() => {
                if !(u.starts_with("smtp://") || u.starts_with("smtps://")) {
                    anyhow::bail!("--smtp-url must start with smtp:// or smtps://");
                }
                // Read as the sender will read it, so that a URL it cannot use stops the
                // start with the other settings, before the store is opened.
                lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(u)
                    .map_err(|e| anyhow::anyhow!("--smtp-url: {e}"))?;
                Transport::Smtp(u.to_owned())
            }
            _ if self.mail_to_log || demo => Transport::Log,
            _ => return Ok(None),
        };
        let from = match (&self.mail_from, &transport) {
            (Some(f), _) => f
                .parse()
                .map_err(|e| anyhow::anyhow!("--mail-from `{f}`: {e}"))?,
            (None, Transport::Log) => "tablecast <noreply@localhost>".parse()?,
            (None, Transport::Smtp(_)) => {
                anyhow::bail!("--smtp-url needs --mail-from (the sender address of diner email)")
            }
        };
        // Every manage link starts with it: a host without its scheme makes links no mail
        // client opens.
        if let Some(u) = self
            .public_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
        {
            let lower = u.to_ascii_lowercase();
            let host = ["https://", "http://"]
                .iter()
                .find_map(|scheme| lower.strip_prefix(scheme));
            if !host.is_some_and(|h| !h.is_empty() && !h.starts_with('/')) {
                anyhow::bail!(
                    "--public-url `{u}`: give the absolute address diners reach, with its scheme \
                     (e.g. https://book.example.com)"
                );
            }
        }
        let lease = Duration::from_secs_f64(self.mail_lease_secs.max(0.5));
        Ok(Some(MailSettings {
            transport,
            from,
            public_url: super::public_url(self.public_url.as_deref(), bound),
            lease,
            retry_max: Duration::from_secs_f64(self.mail_retry_max_secs.max(0.1)),
            // An attempt ends well inside its lease, so no other instance takes the mail over
            // while it is still being sent.
            send_timeout: (lease / 2).min(Duration::from_secs(30)),
        }))
    }

    /// Whether decisions write mail to the outbox.
    pub fn enabled(&self, demo: bool) -> bool {
        self.smtp_url
            .as_deref()
            .is_some_and(|u| !u.trim().is_empty())
            || self.mail_to_log
            || demo
    }
}

#[cfg(test)]
mod tests {
    use super::{MailArgs, Transport};

    fn bound() -> std::net::SocketAddr {
        "0.0.0.0:8080".parse().unwrap()
    }

    #[test]
    fn without_a_relay_no_mail_unless_printed_to_the_log() {
        let off = MailArgs::default();
        assert!(!off.enabled(false));
        assert!(off.settings(false, bound()).unwrap().is_none());
        // The demo prints mail to the log; so does --mail-to-log.
        assert!(off.enabled(true));
        let demo = off.settings(true, bound()).unwrap().unwrap();
        assert!(matches!(demo.transport, Transport::Log));
        assert_eq!(demo.public_url, "http://localhost:8080");
    }

    #[test]
    fn a_public_url_needs_its_scheme_and_a_host() {
        let with = |u: &str| MailArgs {
            public_url: Some(u.into()),
            ..MailArgs::default()
        };
        for bad in [
            "book.example.com",
            "ftp://book.example.com",
            "https://",
            "http:///x",
        ] {
            assert!(with(bad).settings(true, bound()).is_err(), "{bad}");
        }
        let s = with("HTTPS://book.example.com/").settings(true, bound());
        assert_eq!(s.unwrap().unwrap().public_url, "HTTPS://book.example.com");
    }

    #[test]
    fn a_relay_needs_a_sender_and_an_smtp_scheme_and_hides_its_password_in_the_log() {
        let relay = |url: &str, from: Option<&str>| MailArgs {
            smtp_url: Some(url.into()),
            mail_from: from.map(Into::into),
            mail_lease_secs: 60.0,
            mail_retry_max_secs: 300.0,
            ..MailArgs::default()
        };
        assert!(relay("smtps://u:p@mail.example.com", None)
            .settings(false, bound())
            .is_err());
        assert!(relay("http://mail.example.com", Some("a@example.com"))
            .settings(false, bound())
            .is_err());
        assert!(
            relay("smtps://u:p@mail.example.com", Some("not an address"))
                .settings(false, bound())
                .is_err()
        );
        let s = relay(
            "smtps://user:secret@mail.example.com:465",
            Some("Bookings <b@example.com>"),
        )
        .settings(false, bound())
        .unwrap()
        .unwrap();
        assert_eq!(s.transport_name(), "smtps://mail.example.com:465");
        assert!(s.send_timeout < s.lease);
        // A relay URL lettre accepts builds a sender.
        assert!(s.from.email.to_string() == "b@example.com");
    }
}
