//! Command line and environment: each flag has a `TABLECAST_*` twin; flags win.
use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "tablecast",
    version,
    about = "Real-time restaurant reservations"
)]
pub struct Cli {
    /// Log lines as `text` (default) or `json` (one object a line, with span fields).
    #[arg(
        long,
        env = "TABLECAST_LOG_FORMAT",
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API and live updates.
    Serve(ServeArgs),
    /// Create or upgrade the store's schema, then exit.
    Migrate(StoreArgs),
    /// Simulate crowds against running instances and report what they measured.
    Loadgen(crate::loadgen::LoadgenArgs),
}

#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// sqlite://PATH, sqlite::memory: or dynamodb://TABLE
    #[arg(long, env = "TABLECAST_STORE", default_value = "sqlite://tablecast.db")]
    pub store: String,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[arg(long, env = "TABLECAST_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    #[command(flatten)]
    pub store: StoreArgs,
    /// `local` (one process) or redis://HOST:PORT.
    #[arg(long, env = "TABLECAST_BUS", default_value = "local")]
    pub bus: String,
    /// Generated and printed at start-up when unset.
    #[arg(long, env = "TABLECAST_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Seed a demo restaurant when the store has none.
    #[arg(long, env = "TABLECAST_DEMO")]
    pub demo: bool,
    /// Seconds `/readyz` answers 503 before the server stops accepting on SIGTERM.
    #[arg(long, env = "TABLECAST_DRAIN_GRACE_SECS", default_value_t = 3.0)]
    pub drain_grace_secs: f64,
    /// Seconds between WebSocket pings.
    #[arg(
        long,
        env = "TABLECAST_WS_PING_SECS",
        default_value_t = 20.0,
        hide = true
    )]
    pub ws_ping_secs: f64,
    /// Seconds of client silence before a WebSocket is closed with 4000.
    #[arg(
        long,
        env = "TABLECAST_WS_IDLE_SECS",
        default_value_t = 60.0,
        hide = true
    )]
    pub ws_idle_secs: f64,
    /// Seconds between reconcile passes that repair live channels behind the store.
    #[arg(long, env = "TABLECAST_RECONCILE_SECS", default_value_t = 5.0)]
    pub reconcile_secs: f64,
    /// Live (held, unexpired) holds one client may have at once, all restaurants; 0 = off.
    #[arg(long, env = "TABLECAST_MAX_LIVE_HOLDS_PER_CLIENT", default_value_t = 4)]
    pub max_live_holds_per_client: u32,
    /// Holds one client may start (token bucket, burst = the figure):
    /// `30/min`, `5/s`, `100/h` or `off`. Counted per instance.
    #[arg(long, env = "TABLECAST_HOLD_RATE", default_value = "30/min")]
    pub hold_rate: crate::http::limits::Rate,
    /// Open `/v1/live` sockets per client on this instance; 0 = off.
    #[arg(
        long,
        env = "TABLECAST_MAX_CONNECTIONS_PER_CLIENT",
        default_value_t = 20
    )]
    pub max_connections_per_client: usize,
    /// Comma list of CIDRs whose `X-Forwarded-For` is believed (the load balancer's subnet).
    #[arg(long, env = "TABLECAST_TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: String,
    /// Comma list of `Origin`s accepted on `/v1/live` (default: any).
    #[arg(long, env = "TABLECAST_ALLOWED_ORIGINS")]
    pub allowed_origins: Option<String>,
    /// Days released/expired holds, their tokens and idempotency records are kept.
    #[arg(long, env = "TABLECAST_RETENTION_DAYS", default_value_t = 30)]
    pub retention_days: u32,
    /// Kernel send buffer per accepted connection, in bytes (default: the system's).
    #[arg(long, env = "TABLECAST_SOCKET_SEND_BUFFER", hide = true)]
    pub socket_send_buffer: Option<usize>,
    #[command(flatten)]
    pub mail: MailArgs,
}

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
    #[arg(long, env = "TABLECAST_MAIL_TO_LOG")]
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
    ) -> anyhow::Result<Option<crate::mail::MailSettings>> {
        use crate::mail::{MailSettings, Transport};
        use std::time::Duration;
        let transport = match self.smtp_url.as_deref().map(str::trim) {
            Some(u) if !u.is_empty() => {
                if !(u.starts_with("smtp://") || u.starts_with("smtps://")) {
                    anyhow::bail!("--smtp-url must start with smtp:// or smtps://");
                }
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
        let lease = Duration::from_secs_f64(self.mail_lease_secs.max(0.5));
        Ok(Some(MailSettings {
            transport,
            from,
            public_url: crate::mail::public_url(self.public_url.as_deref(), bound),
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

impl ServeArgs {
    /// The per-client limits these flags set.
    pub fn limit_settings(&self) -> anyhow::Result<crate::http::limits::LimitSettings> {
        use crate::http::client::TrustedProxies;
        Ok(crate::http::limits::LimitSettings {
            max_live_holds: self.max_live_holds_per_client,
            hold_rate: self.hold_rate,
            max_connections: self.max_connections_per_client,
            trusted_proxies: TrustedProxies::parse(&self.trusted_proxies)
                .map_err(|e| anyhow::anyhow!("--trusted-proxies: {e}"))?,
            allowed_origins: self.allowed_origins.as_ref().map(|s| {
                s.split(',')
                    .map(|o| o.trim().to_owned())
                    .filter(|o| !o.is_empty())
                    .collect()
            }),
        })
    }

    pub fn reconcile_every(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.reconcile_secs.max(0.05))
    }

    pub fn live_settings(&self) -> crate::http::socket::LiveSettings {
        use std::time::Duration;
        crate::http::socket::LiveSettings {
            ping_every: Duration::from_secs_f64(self.ws_ping_secs.max(0.05)),
            idle_after: Duration::from_secs_f64(self.ws_idle_secs.max(0.1)),
            drain_window: Duration::from_secs(5),
        }
    }
}

impl ServeArgs {
    /// Settings for tests: port 0 on loopback, the given store, a fixed admin token.
    pub fn for_tests(store: &str, admin_token: &str) -> Self {
        Self {
            listen: "127.0.0.1:0".into(),
            store: StoreArgs {
                store: store.into(),
            },
            bus: "local".into(),
            admin_token: Some(admin_token.into()),
            demo: false,
            drain_grace_secs: 0.2,
            ws_ping_secs: 20.0,
            ws_idle_secs: 60.0,
            socket_send_buffer: None,
            reconcile_secs: 5.0,
            // Tests race from loopback, which is one client: they turn the per-client limits
            // on where they test them.
            max_live_holds_per_client: 0,
            hold_rate: "off".parse().expect("valid"),
            max_connections_per_client: 0,
            trusted_proxies: String::new(),
            allowed_origins: None,
            retention_days: 30,
            mail: MailArgs {
                mail_lease_secs: 60.0,
                mail_retry_max_secs: 300.0,
                ..MailArgs::default()
            },
        }
    }
}

#[cfg(test)]
mod mail_tests {
    use super::MailArgs;

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
        assert!(matches!(demo.transport, crate::mail::Transport::Log));
        assert_eq!(demo.public_url, "http://localhost:8080");
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
