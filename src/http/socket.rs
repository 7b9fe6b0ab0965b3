//! One WebSocket connection: a task with a `select!` over client frames, the heartbeat,
//! eviction and drain. What the connection sends (the hub's frames, replies, pings, the close)
//! goes through its bounded queue straight to the response body (`socket_writer`), which
//! actix-http's dispatcher polls: the hub's frames never pass through this task.
use super::auth::resolve;
use super::error::ApiError;
use super::limits::Requester;
use super::restaurants::{take_hold, HoldCommand};
use super::socket_writer::Writer;
use super::AppState;
use crate::booking::BookingError;
use crate::domain::time::local_date_of;
use crate::domain::PartySize;
use crate::live::hub::{Conn, Key, Out, Queue, View};
use crate::wire::frames::{self, ClientFrame, HoldFrame, SubscribeFrame, ViewName};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use actix_ws::{AggregatedMessage, ProtocolError};
use rand::Rng;
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::{sleep_until, Instant};

pub const MAX_MESSAGE: usize = 64 * 1024;
pub const MAX_SUBSCRIPTIONS: usize = 32;
/// Frames a connection may have queued before it counts as falling behind.
pub const QUEUE: usize = 64;
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a closing connection waits for room to send its close frame: a client that stopped
/// reading gets `4008` after the frames already on their way, if it reads again within this.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(30);

/// Heartbeat and drain timing (docs/live-protocol.md: ping every 20 s, idle close after 60 s).
#[derive(Debug, Clone, Copy)]
pub struct LiveSettings {
    pub ping_every: Duration,
    pub idle_after: Duration,
    pub drain_window: Duration,
}

impl Default for LiveSettings {
    fn default() -> Self {
        Self {
            ping_every: Duration::from_secs(20),
            idle_after: Duration::from_secs(60),
            drain_window: Duration::from_secs(5),
        }
    }
}

pub async fn endpoint(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    let origin = req
        .headers()
        .get(actix_web::http::header::ORIGIN)
        .and_then(|o| o.to_str().ok());
    if !state.limits.origin_allowed(origin) {
        return Err(ApiError::OriginNotAllowed.into());
    }
    let who = Requester::of(&req, &state).await?;
    let guard = if who.staff() {
        None
    } else {
        Some(state.limits.connect(&who.client)?)
    };
    // actix-ws checks the handshake and reads the client's frames; the writing side is our
    // queue and its body, in place of actix-ws's session channel and its own body.
    let (res, session, stream) = actix_ws::handle(&req, body)?;
    drop(session);
    let queue = Queue::new(QUEUE);
    let res = res
        .map_body(|_, _| Writer::new(queue.clone(), state.metrics.clone()))
        .map_into_boxed_body();
    let stream = stream
        .max_frame_size(MAX_MESSAGE)
        .aggregate_continuations()
        .max_continuation_size(MAX_MESSAGE);
    actix_web::rt::spawn(async move {
        run(state.into_inner(), who, queue, stream).await;
        drop(guard);
    });
    Ok(res)
}

struct Conversation {
    state: Arc<AppState>,
    who: Requester,
    conn: Conn,
    subs: HashMap<String, (Key, Arc<str>)>,
}

type Reply = Option<String>;

fn err(sub: Option<&str>, req: Option<&str>, status: u16, title: &str, detail: &str) -> Reply {
    Some(frames::error(sub, req, status, title, detail))
}

/// Close codes (docs/live-protocol.md).
const NORMAL_AWAY: u16 = 1001;
const PROTOCOL: u16 = 1002;
const TOO_BIG: u16 = 1009;
const IDLE: u16 = 4000;
const TOO_SLOW: u16 = 4008;

fn close(code: u16, why: &str) -> Option<(u16, String)> {
    Some((code, why.to_owned()))
}

/// Whether a frame found room in the queue within the write timeout. Boxed, like every await
/// of the session but its wait: an idle connection's task keeps only what it waits on.
fn write(queue: &Queue, out: Out) -> Pin<Box<dyn Future<Output = bool> + Send + '_>> {
    Box::pin(async move {
        matches!(
            tokio::time::timeout(WRITE_TIMEOUT, queue.send(out)).await,
            Ok(true)
        )
    })
}

/// Closes the queue however the session ends, so that the body ends and the hub lets go.
struct CloseOnDrop(Queue);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

async fn run(
    state: Arc<AppState>,
    who: Requester,
    queue: Queue,
    mut stream: actix_ws::AggregatedMessageStream,
) {
    let metrics = state.metrics.clone();
    metrics.ws_connections().inc();
    let _closer = CloseOnDrop(queue.clone());
    let evict = Arc::new(Notify::new());
    let mut conv = Conversation {
        conn: Conn {
            id: state.hub.next_conn_id(),
            tx: queue.clone(),
            evict: evict.clone(),
        },
        state: state.clone(),
        who,
        subs: HashMap::new(),
    };
    let settings = state.live;
    let mut drain = state.drain.clone();
    let mut last_seen = Instant::now();
    let mut next_ping = last_seen + settings.ping_every;
    let mut drain_at: Option<Instant> = None;
    // One timer for the heartbeat, the idle close and the drain: whichever comes first.
    let timer = sleep_until(next_ping);
    tokio::pin!(timer);
    let reason = loop {
        let idle_at = last_seen + settings.idle_after;
        let wake = drain_at.map_or(next_ping.min(idle_at), |d| d.min(next_ping).min(idle_at));
        if timer.deadline() != wake {
            timer.as_mut().reset(wake);
        }
        tokio::select! {
            msg = stream.recv() => {
                last_seen = Instant::now();
                let reply = match msg {
                    None => break None,
                    Some(Err(ProtocolError::Overflow)) => break close(TOO_BIG, "message over 64 KiB"),
                    Some(Err(e)) => break close(PROTOCOL, &e.to_string()),
                    // Boxed: the task of an idle connection stays small.
                    Some(Ok(AggregatedMessage::Text(t))) => Box::pin(conv.handle(&t)).await,
                    Some(Ok(AggregatedMessage::Binary(_))) => err(None, None, 400, "Bad request", "binary frames are not supported"),
                    Some(Ok(AggregatedMessage::Ping(b))) => {
                        // Under the write timeout like any frame: a pinger that never reads
                        // cannot pin this session.
                        if !write(&queue, Out::Pong(b.to_vec())).await { break close(TOO_SLOW, "too slow to keep up"); }
                        None
                    }
                    Some(Ok(AggregatedMessage::Pong(_))) => None,
                    Some(Ok(AggregatedMessage::Close(_))) => break None,
                };
                if let Some(text) = reply {
                    if !write(&queue, Out::Own(text)).await { break close(TOO_SLOW, "too slow to keep up"); }
                }
            }
            () = &mut timer => {
                let now = Instant::now();
                if drain_at.is_some_and(|d| d <= now) {
                    break close(NORMAL_AWAY, "instance draining; reconnect");
                }
                if idle_at <= now {
                    break close(IDLE, "idle");
                }
                if next_ping <= now {
                    next_ping = now + settings.ping_every;
                    if !write(&queue, Out::Ping).await { break close(TOO_SLOW, "too slow to keep up"); }
                }
            }
            _ = evict.notified() => {
                metrics.live_eviction();
                break close(TOO_SLOW, "too slow to keep up");
            }
            Ok(()) = drain.changed(), if drain_at.is_none() => {
                if *drain.borrow() {
                    let window = settings.drain_window.as_millis().max(1) as u64;
                    let jitter = rand::thread_rng().gen_range(0..window);
                    drain_at = Some(Instant::now() + Duration::from_millis(jitter));
                }
            }
        }
    };
    Box::pin(async {
        for (_, (key, sub)) in conv.subs.drain() {
            state.hub.unsubscribe(key, conv.conn.id, sub).await;
        }
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, queue.finish(Out::Close(reason))).await;
    })
    .await;
    metrics.ws_connections().dec();
}

/// Over a per-client limit on the socket: an `error` frame with the op's `req`, 429 and `limit`.
fn limited(req: Option<&str>, e: &ApiError) -> String {
    let p = e.problem();
    frames::limited_error(
        req,
        &p.title,
        p.detail.as_deref().unwrap_or(""),
        p.limit.as_deref().unwrap_or(""),
    )
}

fn str_member<'a>(v: &'a Value, name: &str) -> Option<&'a str> {
    v.get(name).and_then(Value::as_str)
}

impl Conversation {
    async fn handle(&mut self, text: &str) -> Reply {
        let v: Value = match serde_json::from_str(text) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                return err(
                    None,
                    None,
                    400,
                    "Bad request",
                    "a message must be a JSON object",
                )
            }
        };
        // Echoed in an error even when the rest of the message does not parse.
        let (sub, req) = (str_member(&v, "sub"), str_member(&v, "req"));
        let frame = match ClientFrame::deserialize(&v) {
            Ok(f) => f,
            Err(e) => {
                let detail = match str_member(&v, "op") {
                    None => "`op` is required".to_owned(),
                    Some(_) => e.to_string(),
                };
                return err(sub, req, 400, "Bad request", &detail);
            }
        };
        match frame {
            ClientFrame::Subscribe(s) => self.subscribe(s).await,
            ClientFrame::Unsubscribe(u) => self.unsubscribe(&u.sub).await,
            ClientFrame::Hold(h) => Some(self.hold(h).await),
            ClientFrame::Ping => Some(frames::pong()),
        }
    }

    async fn hold(&self, h: HoldFrame) -> String {
        let req = h.req.as_deref();
        let outcome = match HoldCommand::parse(h.hold) {
            Ok(cmd) => take_hold(&self.state, &self.who, h.restaurant_id, cmd, None).await,
            Err(e) => Err(e),
        };
        match outcome {
            Err(e @ ApiError::RateLimited { .. }) => limited(req, &e),
            Ok((status, body)) => frames::hold_result(req, status.as_u16(), body),
            Err(e) => frames::hold_result(
                req,
                e.status_code().as_u16(),
                serde_json::to_value(e.problem()).unwrap_or_default(),
            ),
        }
    }

    async fn unsubscribe(&mut self, sub: &str) -> Reply {
        match self.subs.remove(sub) {
            None => err(Some(sub), None, 404, "Not found", "no such subscription"),
            Some((key, s)) => {
                self.state.hub.unsubscribe(key, self.conn.id, s).await;
                None
            }
        }
    }

    async fn subscribe(&mut self, f: SubscribeFrame) -> Reply {
        let sub = f.sub.as_str();
        if !(1..=64).contains(&sub.chars().count()) {
            return err(
                Some(sub),
                None,
                400,
                "Bad request",
                "`sub` must be 1 to 64 characters",
            );
        }
        if self.subs.contains_key(sub) {
            return err(
                Some(sub),
                None,
                409,
                "Conflict",
                "this `sub` is already in use",
            );
        }
        if self.subs.len() >= MAX_SUBSCRIPTIONS {
            return err(
                Some(sub),
                None,
                429,
                "Too many subscriptions",
                "at most 32 subscriptions per connection",
            );
        }
        if f.view == ViewName::Waitlist {
            let found = super::waitlist::watched(&self.state, f.token.as_deref(), f.entry_id).await;
            return match found {
                Ok((key, view)) => {
                    let s = frames::sub_json(sub);
                    self.subs.insert(sub.to_owned(), (key, s.clone()));
                    self.state
                        .hub
                        .subscribe(key, view, self.conn.clone(), s)
                        .await;
                    None
                }
                Err((status, title, detail)) => err(Some(sub), None, status, title, &detail),
            };
        }
        let (Some(rid), Some(date)) = (f.restaurant_id, f.date) else {
            return err(
                Some(sub),
                None,
                400,
                "Bad request",
                "`restaurant_id` and `date` are required",
            );
        };
        let unavailable = || {
            err(
                Some(sub),
                None,
                503,
                "Service unavailable",
                "the store is unreachable",
            )
        };
        let floor = match f.view {
            ViewName::Floor => {
                let Some(token) = f.token.as_deref() else {
                    return err(
                        Some(sub),
                        None,
                        401,
                        "Unauthorized",
                        "a floor subscription needs a staff token",
                    );
                };
                match resolve(token, &self.state).await {
                    Ok(Some(who)) => Some(who),
                    Ok(None) => return err(Some(sub), None, 401, "Unauthorized", "unknown token"),
                    Err(_) => return unavailable(),
                }
            }
            ViewName::Availability | ViewName::Waitlist => None,
        };
        let restaurant = match self.state.booking.restaurant(rid).await {
            Ok(r) => r,
            Err(BookingError::NotFound(_)) => {
                return err(Some(sub), None, 404, "Not found", "restaurant not found")
            }
            Err(_) => return unavailable(),
        };
        let view = match floor {
            Some(who) if who.may_staff(rid) => View::Floor,
            Some(_) => {
                return err(
                    Some(sub),
                    None,
                    403,
                    "Forbidden",
                    "this token is not staff of this restaurant",
                )
            }
            None => {
                let Some(n) = f.party_size else {
                    return err(
                        Some(sub),
                        None,
                        400,
                        "Bad request",
                        "`party_size` must be an integer",
                    );
                };
                match PartySize::new(n) {
                    Ok(p) => View::Party(p),
                    Err(e) => {
                        return err(
                            Some(sub),
                            None,
                            422,
                            "Validation failed",
                            &format!("party_size {}", e.message),
                        )
                    }
                }
            }
        };
        let today = local_date_of(restaurant.tz(), chrono::Utc::now());
        let horizon = today.naive() + chrono::Days::new(u64::from(restaurant.booking_horizon_days));
        if date < today || date.naive() > horizon {
            return err(
                Some(sub),
                None,
                422,
                "Validation failed",
                "date is in the past or beyond the booking horizon",
            );
        }
        let s = frames::sub_json(sub);
        self.subs.insert(sub.to_owned(), ((rid, date), s.clone()));
        self.state
            .hub
            .subscribe((rid, date), view, self.conn.clone(), s)
            .await;
        None
    }
}
