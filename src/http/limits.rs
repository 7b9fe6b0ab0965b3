//! Per-client limits against abuse: live holds (decided by the store in the hold's own write;
//! this only carries the cap), the hold rate (a token bucket per client kept by the store, so
//! shared by every instance on it: `store::rate`), open live sockets per client per instance,
//! and the `Origin`s allowed on the socket. The admin token, and a staff token on its own
//! restaurant, are exempt.
use super::auth::{bearer, resolve, Caller};
use super::client::{ClientKey, TrustedProxies};
use super::error::ApiError;
use super::AppState;
use crate::store::rate::Bucket;
use crate::store::{DynStore, HoldCap};
use actix_web::HttpRequest;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

/// A rate as `N/min`, `N/s` or `N/h` (the bucket holds its per-minute figure), or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate(Option<(NonZeroU32, Duration)>);

impl std::str::FromStr for Rate {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.trim() == "off" {
            return Ok(Rate(None));
        }
        let bad = || format!("`{s}` is not a rate like 30/min, 5/s, 100/h or off");
        let (n, unit) = s.trim().split_once('/').ok_or_else(bad)?;
        let n: NonZeroU32 = n.trim().parse().map_err(|_| bad())?;
        let per = match unit.trim() {
            "s" | "sec" => Duration::from_secs(1),
            "min" | "m" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            _ => return Err(bad()),
        };
        Ok(Rate(Some((n, per))))
    }
}

/// The limits as configured.
#[derive(Debug, Clone)]
pub struct LimitSettings {
    /// Live holds per client over all restaurants; 0 = off.
    pub max_live_holds: u32,
    pub hold_rate: Rate,
    /// Open sockets per client on this instance; 0 = off.
    pub max_connections: usize,
    pub trusted_proxies: TrustedProxies,
    /// `None` = any origin.
    pub allowed_origins: Option<Vec<String>>,
}

impl Default for LimitSettings {
    fn default() -> Self {
        LimitSettings {
            max_live_holds: 4,
            hold_rate: "30/min".parse().expect("valid"),
            max_connections: 20,
            trusted_proxies: TrustedProxies::default(),
            allowed_origins: None,
        }
    }
}

/// The bucket's size: the rate's per-minute figure (at least one), whatever its unit.
fn per_minute(n: NonZeroU32, per: Duration) -> NonZeroU32 {
    let figure = u64::from(n.get()) * 60 / per.as_secs().max(1);
    NonZeroU32::new(u32::try_from(figure).unwrap_or(u32::MAX)).unwrap_or(NonZeroU32::MIN)
}

/// The hold rate's bucket: one token every `per / n`, the per-minute figure saved up at most.
fn bucket(n: NonZeroU32, per: Duration) -> Bucket {
    let every = (per.as_micros() / u128::from(n.get())).max(1);
    Bucket {
        every_us: i64::try_from(every).unwrap_or(i64::MAX),
        burst: per_minute(n, per).get(),
    }
}

pub struct Limits {
    settings: LimitSettings,
    /// The hold rate's bucket shape, kept per client by `store`.
    rate: Option<Bucket>,
    store: DynStore,
    metrics: crate::metrics::Metrics,
    connections: Arc<Mutex<HashMap<ClientKey, usize>>>,
    /// The warnings of requests let through unchecked, at most one per interval.
    unchecked_warnings: Arc<Sparse>,
}

/// At most one log line per interval for a fault that may hit every request: the first one
/// says how many were held back since the last.
#[derive(Debug, Default)]
struct Sparse {
    /// Milliseconds since `epoch` before which nothing is logged.
    quiet_until_ms: std::sync::atomic::AtomicU64,
    held_back: std::sync::atomic::AtomicU64,
}

impl Sparse {
    const INTERVAL_MS: u64 = 10_000;

    /// `Some(held back since the last line)` when a line is due at `now_ms`.
    fn due(&self, now_ms: u64) -> Option<u64> {
        use std::sync::atomic::Ordering::Relaxed;
        let until = self.quiet_until_ms.load(Relaxed);
        if now_ms >= until
            && self
                .quiet_until_ms
                .compare_exchange(until, now_ms + Self::INTERVAL_MS, Relaxed, Relaxed)
                .is_ok()
        {
            return Some(self.held_back.swap(0, Relaxed));
        }
        self.held_back.fetch_add(1, Relaxed);
        None
    }
}

impl Limits {
    pub fn new(settings: LimitSettings, store: DynStore, metrics: crate::metrics::Metrics) -> Self {
        let rate = settings.hold_rate.0.map(|(n, per)| bucket(n, per));
        Limits {
            settings,
            rate,
            store,
            metrics,
            connections: Arc::default(),
            unchecked_warnings: Arc::default(),
        }
    }

    pub fn proxies(&self) -> &TrustedProxies {
        &self.settings.trusted_proxies
    }

    /// The live-hold cap a hold by this client carries into the store.
    pub fn hold_cap(&self, client: &ClientKey) -> Option<HoldCap> {
        (self.settings.max_live_holds > 0).then(|| HoldCap {
            client: client.stored(),
            max: self.settings.max_live_holds,
        })
    }

    /// Takes a token for a hold or join of `who` on restaurant `rid`, its body checked or not;
    /// the admin and that restaurant's staff are exempt.
    pub async fn charge(&self, who: &Requester, rid: Uuid) -> Result<(), ApiError> {
        if who.exempt_for(rid) {
            return Ok(());
        }
        self.take_hold_token(&who.client).await
    }

    /// Takes one token of the client's hold-and-join bucket, shared by every instance on the
    /// store, or says when to retry.
    pub async fn take_hold_token(&self, client: &ClientKey) -> Result<(), ApiError> {
        let Some(bucket) = self.rate else {
            return Ok(());
        };
        let wait = self
            .store
            .take_rate_token(&client.stored(), bucket, chrono::Utc::now())
            .await;
        match wait {
            Ok(None) => Ok(()),
            // The bucket is abuse protection, not inventory: when the store cannot say, the
            // request goes on (and meets the store again in its own decision).
            // A store that cannot say may say so for every request: one line per interval,
            // the metric counts them all.
            Err(e) => {
                self.metrics.rate_unchecked();
                let now_ms = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0);
                if let Some(held_back) = self.unchecked_warnings.due(now_ms) {
                    tracing::warn!(
                        error = format!("{e:#}"),
                        held_back,
                        "the hold-rate bucket could not be read; the request is let through \
                         (held_back: like requests since the last such line)"
                    );
                }
                Ok(())
            }
            Ok(Some(us)) => Err(ApiError::RateLimited {
                limit: "hold-rate",
                // Rounded up: a retry after this many seconds finds a token.
                retry_after: u64::try_from(us.max(1)).unwrap_or(1).div_ceil(1_000_000),
                detail: "too many holds from this client; slow down".into(),
            }),
        }
    }

    /// Counts an open socket for the client until the guard drops, or refuses it.
    pub fn connect(&self, client: &ClientKey) -> Result<ConnectionGuard, ApiError> {
        let mut open = self.connections.lock().expect("connections lock");
        let n = open.entry(client.clone()).or_insert(0);
        if self.settings.max_connections > 0 && *n >= self.settings.max_connections {
            return Err(ApiError::RateLimited {
                limit: "connections",
                retry_after: 5,
                detail: format!(
                    "at most {} open live connections per client",
                    self.settings.max_connections
                ),
            });
        }
        *n += 1;
        Ok(ConnectionGuard {
            client: client.clone(),
            connections: self.connections.clone(),
        })
    }

    /// A socket upgrade is allowed from no `Origin` (not a browser) or from a listed one.
    pub fn origin_allowed(&self, origin: Option<&str>) -> bool {
        match (&self.settings.allowed_origins, origin) {
            (None, _) | (_, None) => true,
            (Some(list), Some(o)) => list.iter().any(|a| a.eq_ignore_ascii_case(o.trim())),
        }
    }

    /// Forgets buckets full again, so what the store keeps follows active clients only.
    pub async fn tidy(&self) {
        if self.rate.is_none() {
            return;
        }
        if let Err(e) = self
            .store
            .forget_full_buckets(chrono::Utc::now(), 1000)
            .await
        {
            tracing::warn!(
                error = format!("{e:#}"),
                "forgetting full rate buckets failed"
            );
        }
    }
}

/// Who is asking, as the limits see it: the client, and the caller its `Authorization` names.
pub struct Requester {
    pub client: ClientKey,
    caller: Option<Caller>,
}

impl Requester {
    /// Resolves the request's client and, when it sends one, its bearer token. An unknown token
    /// is simply not exempt: the endpoint itself answers `401` where a token is required.
    pub async fn of(req: &HttpRequest, state: &AppState) -> Result<Self, ApiError> {
        let peer = req
            .peer_addr()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip());
        let client = state.limits.proxies().client(peer, req.headers());
        let caller = match bearer(req) {
            Some(token) => resolve(token, state).await?,
            None => None,
        };
        Ok(Requester { client, caller })
    }

    /// The admin, or staff of this restaurant: no per-client limit applies.
    pub fn exempt_for(&self, restaurant_id: Uuid) -> bool {
        self.caller
            .as_ref()
            .is_some_and(|c| c.may_staff(restaurant_id))
    }

    /// The admin, or staff of any restaurant (a socket is not tied to one restaurant).
    pub fn staff(&self) -> bool {
        matches!(self.caller, Some(Caller::Admin | Caller::Staff { .. }))
    }
}

/// An open socket of a client, counted until dropped.
pub struct ConnectionGuard {
    client: ClientKey,
    connections: Arc<Mutex<HashMap<ClientKey, usize>>>,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let mut open = self.connections.lock().expect("connections lock");
        if let Some(n) = open.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderMap;

    #[test]
    fn a_fault_on_every_request_is_logged_once_per_interval_with_the_count_held_back() {
        let sparse = Sparse::default();
        assert_eq!(sparse.due(5_000), Some(0));
        assert_eq!(sparse.due(5_001), None);
        assert_eq!(sparse.due(14_999), None);
        assert_eq!(sparse.due(15_000), Some(2));
        assert_eq!(sparse.due(15_000), None);
        assert_eq!(sparse.due(40_000), Some(1));
    }

    fn client(ip: &str) -> ClientKey {
        TrustedProxies::default().client(ip.parse().unwrap(), &HeaderMap::new())
    }

    /// Limits over a store of their own, in memory.
    async fn limits(settings: LimitSettings) -> Limits {
        let store = crate::store::sqlite::SqliteStore::open("sqlite::memory:")
            .await
            .unwrap();
        Limits::new(
            settings,
            std::sync::Arc::new(store),
            crate::metrics::Metrics::new(),
        )
    }

    #[test]
    fn rates_parse() {
        assert_eq!("off".parse::<Rate>().unwrap(), Rate(None));
        assert!("30/min".parse::<Rate>().unwrap().0.is_some());
        assert!("0/min".parse::<Rate>().is_err());
        assert!("30/week".parse::<Rate>().is_err());
        assert!("lots".parse::<Rate>().is_err());
    }

    #[tokio::test]
    async fn the_bucket_holds_the_per_minute_figure_then_refuses_with_a_retry_after() {
        let l = limits(LimitSettings {
            hold_rate: "3/min".parse().unwrap(),
            ..LimitSettings::default()
        })
        .await;
        let a = client("192.0.2.1");
        for _ in 0..3 {
            l.take_hold_token(&a).await.unwrap();
        }
        match l.take_hold_token(&a).await {
            Err(ApiError::RateLimited {
                limit, retry_after, ..
            }) => {
                assert_eq!(limit, "hold-rate");
                // The next token is due in just under 20 s: rounded up, not down.
                assert_eq!(retry_after, 20);
            }
            other => panic!("expected hold-rate, got {other:?}"),
        }
        // Another client has its own bucket.
        l.take_hold_token(&client("192.0.2.2")).await.unwrap();
    }

    #[test]
    fn the_bucket_holds_the_per_minute_figure_whatever_the_unit() {
        // Decided at one instant, so the refill of a fast rate cannot slip in between takes.
        for (rate, every_us, burst) in [
            ("5/s", 200_000, 300),
            ("30/min", 2_000_000, 30),
            ("120/h", 30_000_000, 2),
            ("30/h", 120_000_000, 1),
        ] {
            let Rate(Some((n, per))) = rate.parse::<Rate>().unwrap() else {
                panic!("{rate} is a rate");
            };
            let b = bucket(n, per);
            assert_eq!((b.every_us, b.burst), (every_us, burst), "{rate}");
            let (mut full_at, now) = (None, 1_000_000_000);
            for i in 0..burst {
                full_at = Some(
                    b.take(full_at, now)
                        .unwrap_or_else(|_| panic!("{rate}: token {i} of {burst}")),
                );
            }
            assert_eq!(
                b.take(full_at, now),
                Err(every_us),
                "{rate}: a burst of {burst}"
            );
        }
    }

    #[tokio::test]
    async fn connections_are_counted_until_their_guard_drops() {
        let l = limits(LimitSettings {
            max_connections: 2,
            ..LimitSettings::default()
        })
        .await;
        let a = client("192.0.2.1");
        let g1 = l.connect(&a).unwrap();
        let _g2 = l.connect(&a).unwrap();
        assert!(l.connect(&a).is_err());
        assert!(l.connect(&client("192.0.2.2")).is_ok());
        drop(g1);
        assert!(l.connect(&a).is_ok());
    }

    #[tokio::test]
    async fn origins_are_checked_only_when_listed_and_sent() {
        let any = limits(LimitSettings::default()).await;
        assert!(any.origin_allowed(Some("https://evil.example")));
        let l = limits(LimitSettings {
            allowed_origins: Some(vec!["https://book.example".into()]),
            ..LimitSettings::default()
        })
        .await;
        assert!(l.origin_allowed(None));
        assert!(l.origin_allowed(Some("https://book.example")));
        assert!(!l.origin_allowed(Some("https://evil.example")));
        // An unreadable `Origin` reaches here as the empty one: sent, and never listed.
        assert!(!l.origin_allowed(Some("")));
    }
}
