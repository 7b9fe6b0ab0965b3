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
    #[arg(
        long,
        env = "TABLECAST_BUS",
        default_value = "local",
        hide_env_values = true
    )]
    pub bus: String,
    /// Generated and printed at start-up when unset.
    #[arg(long, env = "TABLECAST_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Seed a demo restaurant when the store has none.
    #[arg(long, env = "TABLECAST_DEMO", value_parser = clap::builder::BoolishValueParser::new())]
    pub demo: bool,
    /// Seconds `/readyz` answers 503 before the server stops accepting on SIGTERM: 0 to 5 (the
    /// rest of the drain takes at most 10 s, and the whole of it at most 15 s).
    #[arg(long, env = "TABLECAST_DRAIN_GRACE_SECS", default_value_t = 3.0,
          value_parser = seconds_in(0.0, 5.0))]
    pub drain_grace_secs: f64,
    /// Seconds between WebSocket pings.
    #[arg(
        long,
        env = "TABLECAST_WS_PING_SECS",
        default_value_t = 20.0,
        value_parser = seconds_in(0.05, 3600.0),
        hide = true
    )]
    pub ws_ping_secs: f64,
    /// Seconds of client silence before a WebSocket is closed with 4000.
    #[arg(
        long,
        env = "TABLECAST_WS_IDLE_SECS",
        default_value_t = 60.0,
        value_parser = seconds_in(0.1, 86400.0),
        hide = true
    )]
    pub ws_idle_secs: f64,
    /// Seconds between reconcile passes that repair live channels behind the store: 0.05 to
    /// 3600.
    #[arg(long, env = "TABLECAST_RECONCILE_SECS", default_value_t = 5.0,
          value_parser = seconds_in(0.05, 3600.0))]
    pub reconcile_secs: f64,
    /// Live (held, unexpired) holds one client may have at once, all restaurants; 0 = off.
    #[arg(long, env = "TABLECAST_MAX_LIVE_HOLDS_PER_CLIENT", default_value_t = 4)]
    pub max_live_holds_per_client: u32,
    /// Holds and waitlist joins one client may start (token bucket, burst = the per-minute
    /// figure): `30/min`, `5/s`, `100/h` or `off`. One bucket per client, kept by the store and
    /// shared by every instance on it.
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
    /// Comma list of `Origin`s accepted on `/v1/live` (default, and when empty: any).
    #[arg(long, env = "TABLECAST_ALLOWED_ORIGINS")]
    pub allowed_origins: Option<String>,
    /// Days released/expired holds, their tokens and idempotency records are kept: 1 to 36500
    /// (at least a day, so an idempotency record outlives its 24-hour replay window).
    #[arg(long, env = "TABLECAST_RETENTION_DAYS", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub retention_days: u32,
    /// Seconds between waitlist reconciles, which repair an offer lost to a crash between a
    /// freeing commit and its offer: 0.05 to 3600.
    #[arg(
        long,
        env = "TABLECAST_WAITLIST_RECONCILE_SECS",
        default_value_t = 10.0,
        value_parser = seconds_in(0.05, 3600.0)
    )]
    pub waitlist_reconcile_secs: f64,
    /// TEST ONLY, hidden, off (0) by default: seconds the background waitlist offer that
    /// follows a freeing commit (release, expiry, early end) waits before it runs. A crash test
    /// sets it on one instance so that killing that instance right after a commit's answer
    /// deterministically loses the offer, which the other instances' waitlist reconcile must
    /// then make. Never set it in production.
    #[arg(
        long,
        env = "TABLECAST_TEST_ONLY_OFFER_DELAY_SECS",
        default_value_t = 0.0,
        value_parser = seconds_in(0.0, 3600.0),
        hide = true
    )]
    pub test_only_offer_delay_secs: f64,
    /// Kernel send buffer per accepted connection, in bytes (default: the system's).
    #[arg(long, env = "TABLECAST_SOCKET_SEND_BUFFER", hide = true)]
    pub socket_send_buffer: Option<usize>,
    #[command(flatten)]
    pub mail: crate::mail::MailArgs,
}

/// A clap parser of a number of seconds in `lo..=hi`: a finite decimal. A value out of range (or
/// `inf`, `nan`, `1e300`) is refused at start with the flag's name, instead of turning into a
/// duration that panics or overflows an instant later.
fn seconds_in(lo: f64, hi: f64) -> impl Fn(&str) -> Result<f64, String> + Clone + Send + Sync {
    move |s: &str| {
        let v: f64 = s
            .trim()
            .parse()
            .map_err(|_| format!("`{s}` is not a number of seconds"))?;
        if v.is_finite() && (lo..=hi).contains(&v) {
            Ok(v)
        } else {
            Err(format!("`{s}` is not between {lo} and {hi} seconds"))
        }
    }
}

/// An origin of `--allowed-origins` as a browser sends it in `Origin`: `scheme://host[:port]`
/// in lower case, without a trailing `/` or, for http and https, the default port; any scheme
/// (an app's web view sends `capacitor://localhost`, an extension `chrome-extension://…`), and
/// `null`. Anything else would silently refuse every browser (`https://a.example/app`,
/// `a.example` never equal what a browser sends), so it is refused at start.
fn origin(entry: &str) -> Result<String, String> {
    if entry.eq_ignore_ascii_case("null") {
        return Ok("null".to_owned());
    }
    let bad = |why: &str| {
        Err(format!(
            "`{entry}` is not an origin ({why}): write scheme://host[:port], e.g. https://book.example.com"
        ))
    };
    let Some((scheme, rest)) = entry.split_once("://") else {
        return bad("no scheme");
    };
    let scheme = scheme.to_ascii_lowercase();
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if !scheme_ok {
        return bad("not a scheme");
    }
    let default_port = match scheme.as_str() {
        "https" => "443",
        "http" => "80",
        _ => "",
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest).to_ascii_lowercase();
    if authority.contains(['/', '?', '#', '@']) || authority.chars().any(char::is_whitespace) {
        return bad("only a scheme, a host and a port");
    }
    let (host, port) = match authority.rsplit_once(':') {
        // An IPv6 host's colons are inside its brackets.
        Some((h, p)) if !p.contains(']') => (h, Some(p)),
        _ => (authority.as_str(), None),
    };
    if host.is_empty() {
        return bad("no host");
    }
    match port {
        Some(p) if p.parse::<u16>().map_or(true, |n| n == 0) => bad("the port is not 1 to 65535"),
        Some(p) if p != default_port => Ok(format!("{scheme}://{host}:{p}")),
        _ => Ok(format!("{scheme}://{host}")),
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
                .map_err(|e| crate::setting::bad(format!("--trusted-proxies: {e}")))?,
            // An empty list (`TABLECAST_ALLOWED_ORIGINS=` left blank in a deployment file) is
            // no list, as an empty admin token or proxy list is: it would refuse every browser.
            allowed_origins: self
                .allowed_origins
                .as_ref()
                .map(|s| {
                    s.split(',')
                        .map(str::trim)
                        .filter(|o| !o.is_empty())
                        .map(origin)
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()
                .map_err(|e| crate::setting::bad(format!("--allowed-origins: {e}")))?
                .filter(|list| !list.is_empty()),
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
            mail: crate::mail::MailArgs {
                mail_lease_secs: 60.0,
                mail_retry_max_secs: 300.0,
                ..Default::default()
            },
            waitlist_reconcile_secs: 10.0,
            test_only_offer_delay_secs: 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve(args: &[&str]) -> ServeArgs {
        let argv = ["tablecast", "serve"].iter().chain(args).copied();
        match Cli::try_parse_from(argv).expect("valid arguments").command {
            Command::Serve(a) => a,
            _ => unreachable!(),
        }
    }

    #[test]
    fn an_empty_origin_list_is_no_list_and_a_list_is_trimmed() {
        for blank in ["", " ", ",", " , "] {
            let s = serve(&["--allowed-origins", blank])
                .limit_settings()
                .unwrap();
            assert_eq!(s.allowed_origins, None, "{blank:?}");
        }
        let s = serve(&[
            "--allowed-origins",
            " https://a.example , https://b.example",
        ])
        .limit_settings()
        .unwrap();
        assert_eq!(
            s.allowed_origins,
            Some(vec![
                "https://a.example".to_owned(),
                "https://b.example".to_owned()
            ])
        );
    }

    /// An allowed origin is written as a browser sends it; one that no browser sends is refused
    /// at start (`https://a.example/` refused every browser, silently).
    #[test]
    fn allowed_origins_are_origins_as_browsers_send_them() {
        let list = |s: &str| serve(&["--allowed-origins", s]).limit_settings();
        let s = list(
            "HTTPS://A.example/, https://b.example:443, http://c.example:8080, http://[::1]:80, \
             capacitor://localhost, null",
        )
        .unwrap();
        assert_eq!(
            s.allowed_origins.unwrap(),
            [
                "https://a.example",
                "https://b.example",
                "http://c.example:8080",
                "http://[::1]",
                "capacitor://localhost",
                "null"
            ]
        );
        for bad in [
            "a.example",
            "1ab://a.example",
            "https://a.example/app",
            "https://",
            "https://a.example:99999",
            "https://a.example:0",
            "https://user@a.example",
            "https://a.example?x",
        ] {
            let e = list(&format!("https://ok.example,{bad}")).unwrap_err();
            assert!(
                e.to_string().contains("--allowed-origins") && e.to_string().contains(bad),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn seconds_are_finite_and_in_range() {
        let p = seconds_in(0.0, 5.0);
        assert_eq!(p("3"), Ok(3.0));
        assert_eq!(p(" 0.5 "), Ok(0.5));
        assert_eq!(p("5"), Ok(5.0));
        for bad in ["inf", "-inf", "nan", "-0.1", "5.01", "1e300", "three", ""] {
            assert!(p(bad).is_err(), "{bad}");
        }
    }
}
