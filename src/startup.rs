//! Builds the application: opens the store, binds the listener first (so tests can use port 0),
//! starts the expiry sweeper, and drains gracefully on SIGTERM.
use crate::booking::Booking;
use crate::booking::Publish;
use crate::config::ServeArgs;
use crate::http::limits::Limits;
use crate::http::{self, AppState};
use crate::live::bus::{Bus, LocalBus, RedisBus};
use crate::live::hub::Hub;
use crate::live::Fanout;
use crate::mail::Sender;
use crate::metrics::Metrics;
use crate::store::{self, DynStore};
use actix_web::dev::{Server, ServerHandle, Service};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{web, App, HttpMessage, HttpServer};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing_actix_web::{RequestId, TracingLogger};

/// How often the sweeper looks for expired holds besides the expiries this instance planned
/// (docs/architecture.md: broadcast within 2 s of `expires_at`).
const SWEEP_EVERY: Duration = Duration::from_millis(250);
/// The least time between two sweeps at planned expiries.
const PLANNED_GAP: Duration = Duration::from_millis(20);
const HOUSEKEEP_EVERY: Duration = Duration::from_secs(60);
/// After the grace period (at most 5 s), how long in-flight requests may take: what is left of
/// the drain's 15 s after the longest grace, the exit's tail and a second to spare. (It was
/// 10 s, and a request that never finished made a drain with a 5 s grace exit after 15 s.)
const STOP_WITHIN: Duration = Duration::from_secs(7);
/// What the process takes to exit once `run_until_stopped` returns (the runtime and the store's
/// threads shutting down; 1.2–1.6 s measured), kept out of the wait for background work.
const EXIT_TAIL: Duration = Duration::from_secs(2);

pub struct Application {
    addr: std::net::SocketAddr,
    server: Server,
    state: AppState,
    drain_grace: Duration,
    retention: chrono::Duration,
    waitlist_reconcile: Duration,
    /// The admin token when it was generated here (to be printed).
    pub generated_admin_token: Option<String>,
    /// The mail sender, when diner email is on.
    mail: Option<Arc<Sender>>,
    /// SIGTERM and SIGINT, caught from the moment the listener is bound: a signal that arrives
    /// before `run_until_stopped` (during the demo's seeding, or just after the address line is
    /// printed) still drains instead of killing the process.
    stop_signals: Option<StopSignals>,
}

type StopSignals = (tokio::signal::unix::Signal, tokio::signal::unix::Signal);

fn stop_signals() -> Option<StopSignals> {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(term), Ok(int)) => Some((term, int)),
        _ => {
            tracing::error!("cannot install signal handlers");
            None
        }
    }
}

/// The listener on `--listen`, or an error that names the flag and the address (a bad
/// setting when the address does not parse; the port in use is not one).
fn bind(listen: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(listen).map_err(|e| {
        let why = format!("cannot listen on `{listen}` (--listen): {e}");
        if e.kind() == std::io::ErrorKind::InvalidInput {
            crate::setting::bad(why)
        } else {
            anyhow::anyhow!(why)
        }
    })
}

/// `--bus` read: `None` for `local`, or the Redis URL, checked by parsing it (not connecting:
/// a Redis that is down at start is waited for).
fn redis_bus(bus: &str) -> anyhow::Result<Option<&str>> {
    if bus == "local" {
        return Ok(None);
    }
    let shown = crate::live::bus::redacted(bus);
    if !(bus.starts_with("redis://") || bus.starts_with("rediss://")) {
        return Err(crate::setting::bad(format!(
            "unsupported bus `{shown}` (--bus: expected local, redis://HOST:PORT or rediss://HOST:PORT)"
        )));
    }
    redis::Client::open(bus)
        .map_err(|e| crate::setting::bad(format!("cannot use the bus {shown} (--bus): {e}")))?;
    Ok(Some(bus))
}

/// The settings checked before the store is opened (created, migrated): a bad one left a new
/// database file, or a new DynamoDB table, behind. Each is read once, here.
struct Checked {
    limits: crate::http::limits::LimitSettings,
    /// `None` for the local bus.
    redis: Option<String>,
    /// Bound before the store too: a port already in use left a store behind.
    listener: TcpListener,
    mail: Option<crate::mail::MailSettings>,
}

impl Checked {
    fn of(args: &ServeArgs) -> anyhow::Result<Self> {
        let limits = args.limit_settings()?;
        let redis = redis_bus(&args.bus)?.map(str::to_owned);
        let listener = bind(&args.listen)?;
        let mail = args
            .mail
            .settings(args.demo, listener.local_addr()?)
            .map_err(|e| crate::setting::bad(format!("{e:#}")))?;
        Ok(Checked {
            limits,
            redis,
            listener,
            mail,
        })
    }
}

impl Application {
    pub async fn build(args: ServeArgs) -> anyhow::Result<Self> {
        let checked = Checked::of(&args)?;
        let store = store::open_keeping(&args.store.store, args.retention_days).await?;
        Self::build_on(args, store, checked).await
    }

    pub async fn build_with_store(args: ServeArgs, store: DynStore) -> anyhow::Result<Self> {
        let checked = Checked::of(&args)?;
        Self::build_on(args, store, checked).await
    }

    async fn build_on(args: ServeArgs, store: DynStore, checked: Checked) -> anyhow::Result<Self> {
        let Checked {
            limits,
            redis,
            listener,
            mail,
        } = checked;
        let metrics = Metrics::new();
        let hub = Hub::new(store.clone(), metrics.clone(), args.reconcile_every());
        let bus: Arc<dyn Bus> = match &redis {
            None => Arc::new(LocalBus),
            Some(url) => Arc::new(RedisBus::start(url, hub.remote_handler())?),
        };
        hub.plug(bus.clone());
        let publisher: Arc<dyn Publish> = Arc::new(Fanout {
            hub: hub.clone(),
            bus: bus.clone(),
        });
        let mut booking = Booking::new(store.clone(), publisher, metrics.clone())
            .with_test_only_offer_delay(Duration::from_secs_f64(
                args.test_only_offer_delay_secs.max(0.0),
            ));
        if args.mail.enabled(args.demo) {
            booking = booking.with_mail();
        }
        let (admin_token, generated) = match args.admin_token.clone() {
            // Read from a secret file, a token often ends in a line break: it is not part of it.
            Some(t) if !t.trim().is_empty() => (t.trim().to_owned(), None),
            _ => {
                if redis.is_some() {
                    // Every instance behind one load balancer should accept the same token.
                    tracing::warn!(
                        bus = %crate::live::bus::redacted(&args.bus),
                        "no admin token set: this instance generated its own, which the other \
                         instances on this bus do not accept; give every instance the same one \
                         (--admin-token or TABLECAST_ADMIN_TOKEN)"
                    );
                }
                let t = crate::token::generate();
                (t.clone(), Some(t))
            }
        };
        let limits = Limits::new(limits, store.clone(), metrics.clone());
        let state = AppState {
            booking,
            admin_token_hash: crate::token::hash(&admin_token),
            metrics,
            draining: Arc::new(AtomicBool::new(false)),
            hub,
            bus,
            live: args.live_settings(),
            limits: Arc::new(limits),
            sockets: Arc::new(crate::http::socket::Sockets::default()),
        };
        // A peer that stops reading: once what it was sent has waited this long in the send
        // queue (or for a window to open), the kernel ends the connection. A WebSocket's body
        // runs only when the connection can be written, so this is what ends one whose client
        // went silent with frames pending. Accepted sockets inherit it.
        #[cfg(target_os = "linux")]
        socket2::SockRef::from(&listener).set_tcp_user_timeout(Some(STALLED_WRITE))?;
        if let Some(bytes) = args.socket_send_buffer {
            // Accepted sockets inherit the listener's send buffer.
            socket2::SockRef::from(&listener).set_send_buffer_size(bytes)?;
        }
        let addr = listener.local_addr()?;
        let mail = match mail {
            Some(settings) => {
                tracing::info!(public_url = %settings.public_url, relay = ?settings.transport_name(), "diner email on");
                Some(Arc::new(Sender::new(store, settings, &state.metrics)?))
            }
            None => None,
        };
        let data = web::Data::new(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .wrap_fn(|req, srv| {
                    let started = Instant::now();
                    let method = req.method().clone();
                    let metrics = req
                        .app_data::<web::Data<AppState>>()
                        .map(|s| s.metrics.clone());
                    let fut = srv.call(req);
                    async move {
                        let res = fut.await?;
                        if let Some(m) = metrics {
                            // The routed resource's pattern (`http::resource`).
                            let route = res.request().app_data::<http::RoutePattern>();
                            m.observe_request(
                                method.as_str(),
                                route.map_or("unmatched", |r| r.0),
                                res.status().as_u16(),
                                started.elapsed().as_secs_f64(),
                            );
                        }
                        Ok(res)
                    }
                })
                .configure(http::configure)
                .wrap_fn(|req, srv| {
                    // Every answer names the request id its log lines carry.
                    let id = req.extensions().get::<RequestId>().map(|id| id.to_string());
                    let fut = srv.call(req);
                    async move {
                        let mut res = fut.await?;
                        if let Some(id) = id.and_then(|id| HeaderValue::from_str(&id).ok()) {
                            res.headers_mut()
                                .insert(HeaderName::from_static("x-request-id"), id);
                        }
                        Ok(res)
                    }
                })
                .wrap(TracingLogger::<http::span::RequestSpan>::new())
        })
        .disable_signals()
        .shutdown_timeout(STOP_WITHIN.as_secs())
        .listen(listener)?
        .run();
        Ok(Self {
            addr,
            server,
            state,
            drain_grace: Duration::from_secs_f64(args.drain_grace_secs.max(0.0)),
            retention: chrono::Duration::days(i64::from(args.retention_days)),
            waitlist_reconcile: Duration::from_secs_f64(args.waitlist_reconcile_secs.max(0.05)),
            generated_admin_token: generated,
            mail,
            stop_signals: stop_signals(),
        })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until SIGTERM or SIGINT, then drains: `/readyz` 503 at once, keep serving for the
    /// grace period, stop accepting, finish in-flight requests.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let handle = self.server.handle();
        let sweeper = tokio::spawn(sweep_forever(self.state.booking.clone()));
        let reconciler = tokio::spawn(reconcile_waitlist_forever(
            self.state.booking.clone(),
            self.waitlist_reconcile,
        ));
        let housekeeper = tokio::spawn(housekeep_forever(
            self.state.booking.clone(),
            self.state.limits.clone(),
            self.retention,
        ));
        let mailer = self
            .mail
            .clone()
            .map(|m| tokio::spawn(crate::mail::run(m, self.state.booking.mail_ready())));
        let stopping = Arc::new(std::sync::OnceLock::new());
        let drainer = tokio::spawn(drain_on_signal(
            self.stop_signals,
            handle,
            self.state.draining.clone(),
            self.drain_grace,
            self.state.sockets.clone(),
            stopping.clone(),
        ));
        let out = self.server.await;
        sweeper.abort();
        reconciler.abort();
        housekeeper.abort();
        drainer.abort();
        // What commits left running (offers of what they freed, publishes of expiries) ends
        // before the process does, within the drain's bound: the grace plus `STOP_WITHIN` from
        // the signal, less the exit's own tail, as much as the in-flight requests left of it.
        let deadline = stopping
            .get()
            .map(|at: &tokio::time::Instant| *at + self.drain_grace + STOP_WITHIN)
            .unwrap_or_else(|| tokio::time::Instant::now() + STOP_WITHIN);
        let deadline = deadline.checked_sub(EXIT_TAIL).unwrap_or(deadline);
        let within = deadline.saturating_duration_since(tokio::time::Instant::now());
        if !self.state.booking.settle(within).await {
            tracing::warn!(
                "stopping with offers or publishes still under way; other instances' reconcile \
                 loops repair them"
            );
        }
        // Then what that work and the last requests published leaves for the other instances
        // (on Redis, a queue that may still hold changes), within what is left of the bound.
        let within = deadline.saturating_duration_since(tokio::time::Instant::now());
        if !matches!(
            tokio::time::timeout(within, self.state.bus.flush()).await,
            Ok(true)
        ) {
            tracing::warn!(
                "stopping with changes not yet sent to the bus; other instances' reconcile \
                 loops repair them"
            );
        }
        if let Some(m) = mailer {
            m.abort();
        }
        Ok(out?)
    }
}

async fn sweep_forever(booking: Booking) {
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_planned = tokio::time::Instant::now();
    loop {
        // Just past the earliest planned expiry (a hold is expired once `expires_at <= now`),
        // and not sooner than `PLANNED_GAP` after the last planned sweep: holds that run out one
        // after the other share a sweep rather than each taking the writer for one. (A sweep on
        // the tick or on request does not push the next planned one back.)
        let planned = booking.next_planned_expiry().map(|at| {
            let due =
                (at - chrono::Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(1);
            due.max(
                (last_planned + PLANNED_GAP).saturating_duration_since(tokio::time::Instant::now()),
            )
        });
        let due = async {
            match planned {
                Some(wait) => tokio::time::sleep(wait).await,
                None => std::future::pending().await,
            }
        };
        // On the tick, at a planned expiry, or at once when a read saw a hold past its expiry
        // not yet swept; a hold that runs out sooner than the plan's first is planned anew.
        let by_plan = tokio::select! {
            _ = tick.tick() => false,
            _ = booking.sweep_requested() => false,
            _ = due => true,
            _ = booking.expiry_planned() => continue,
        };
        booking.take_due_expiries(chrono::Utc::now());
        if by_plan {
            last_planned = tokio::time::Instant::now();
        }
        if let Err(e) = booking.sweep().await {
            tracing::warn!(error = format!("{e:#}"), "expiry sweep failed; retrying");
        }
    }
}

/// Repairs waitlist offers lost between a freeing commit and its offer (a crash).
async fn reconcile_waitlist_forever(booking: Booking, every: Duration) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match booking.reconcile_waitlist().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(offers = n, "waitlist reconcile made offers"),
            Err(e) => tracing::warn!(
                error = format!("{e:#}"),
                "waitlist reconcile failed; retrying"
            ),
        }
    }
}

/// Every minute: deletes history past the retention period, and forgets idle rate buckets.
async fn housekeep_forever(booking: Booking, limits: Arc<Limits>, retention: chrono::Duration) {
    // Not at start-up: a rolling deploy would have every new instance purge at once.
    let first = tokio::time::Instant::now() + HOUSEKEEP_EVERY;
    let mut tick = tokio::time::interval_at(first, HOUSEKEEP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        limits.tidy().await;
        match booking.retain(chrono::Utc::now() - retention, 200).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "retention: deleted expired history"),
            Err(e) => tracing::warn!(error = format!("{e:#}"), "retention failed; retrying"),
        }
    }
}

/// How long data may wait unacknowledged or unsent before the kernel drops the connection
/// (`TCP_USER_TIMEOUT`, Linux).
#[cfg(target_os = "linux")]
const STALLED_WRITE: Duration = Duration::from_secs(30);

async fn drain_on_signal(
    signals: Option<StopSignals>,
    handle: ServerHandle,
    draining: Arc<AtomicBool>,
    grace: Duration,
    websockets: Arc<crate::http::socket::Sockets>,
    stopping: Arc<std::sync::OnceLock<tokio::time::Instant>>,
) {
    let Some((mut term, mut int)) = signals else {
        return;
    };
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
    // Ctrl-C pressed again at a terminal stops at once, as a kill would: every acknowledged
    // write is already durable, and other instances' reconcile repairs what a drain would
    // have finished. (Every SIGINT used to wait out the whole drain.)
    tokio::spawn(async move {
        if int.recv().await.is_some() {
            tracing::warn!("interrupted again: stopping now, without finishing the drain");
            std::process::exit(130);
        }
    });
    let _ = stopping.set(tokio::time::Instant::now());
    tracing::info!("draining: /readyz answers 503; stopping after the grace period");
    draining.store(true, Ordering::SeqCst);
    tokio::time::sleep(grace).await;
    // Stop accepting, close WebSockets with 1001 in jittered batches, finish in-flight requests.
    websockets.drain();
    handle.stop(true).await;
}
