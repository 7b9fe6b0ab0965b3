//! One WebSocket connection, run by its response body (`Live`), which actix-http's dispatcher
//! polls: it reads the client's frames, keeps the heartbeat, idle close, eviction and drain, and
//! writes what the connection's bounded queue holds (the hub's frames, replies, pings, the
//! close; `socket_writer`). An idle connection has no task of its own.
use super::auth::resolve;
use super::error::{from_body, ApiError};
use super::limits::ConnectionGuard;
use super::limits::Requester;
use super::restaurants::{take_hold, HoldCommand};
use super::socket_frames::{is_overflow, Checked, Messages};
use super::socket_writer::Writer;
use super::AppState;
use crate::booking::BookingError;
use crate::domain::time::local_date_of;
use crate::domain::PartySize;
use crate::live::hub::{Conn, Key, Out, Queue, View};
use crate::wire::frames::{self, ClientFrame, HoldInput, SubscribeFrame, ViewName};
use actix_web::body::{BodySize, MessageBody};
use actix_web::web::Bytes;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse, ResponseError};
use actix_ws::{AggregatedMessage, ProtocolError};
use futures_util::Stream;
use rand::Rng;
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::time::{sleep_until, Instant, Sleep};
use uuid::Uuid;

pub const MAX_MESSAGE: usize = 64 * 1024;
pub const MAX_SUBSCRIPTIONS: usize = 32;
/// Frames a connection may have queued before it counts as falling behind.
pub const QUEUE: usize = 64;

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

/// Every open socket's waker, so that a drain reaches the idle ones at once.
#[derive(Default)]
pub struct Sockets {
    draining: AtomicBool,
    /// By the connection's queue (`Queue::key`).
    wakers: Mutex<HashMap<usize, Waker>>,
}

impl Sockets {
    fn wakers(&self) -> std::sync::MutexGuard<'_, HashMap<usize, Waker>> {
        self.wakers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// WebSockets close with 1001, each within the drain window.
    pub fn drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
        let wakers = std::mem::take(&mut *self.wakers());
        for w in wakers.into_values() {
            w.wake();
        }
    }

    fn draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    fn register(&self, id: usize, waker: &Waker) {
        self.wakers().insert(id, waker.clone());
    }

    fn remove(&self, id: usize) {
        self.wakers().remove(&id);
    }
}

/// `GET /v1/live`: the upgrade to the live protocol's WebSocket. The document declares the
/// upgrade and its refusals; the frames are in `/asyncapi.json`.
#[utoipa::path(get, path = "/v1/live", operation_id = "live",
    description = "Opens the live protocol's WebSocket (its frames: `/asyncapi.json`). An \
        `Authorization` with the admin token or a staff token exempts the socket from the \
        per-client connection limit; an unknown token is read as none.",
    params(
        ("Upgrade" = String, Header, description = "`websocket`"),
        ("Connection" = String, Header, description = "`Upgrade`"),
        ("Sec-WebSocket-Version" = String, Header, description = "`13`"),
        ("Sec-WebSocket-Key" = String, Header, description = "16 random bytes in base64"),
        ("Origin" = Option<String>, Header, description = "a browser's page; without one (not a browser) the upgrade is accepted"),
    ),
    responses((status = 101, description = "Switching Protocols: the socket is open")))]
pub async fn endpoint(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    // An `Origin` that is not visible ASCII is sent, but is no origin a list can name: it is
    // read as the empty origin, which no list holds, not as none.
    let origin = req
        .headers()
        .get(actix_web::http::header::ORIGIN)
        .map(|o| o.to_str().unwrap_or(""));
    if !state.limits.origin_allowed(origin) {
        return Err(ApiError::OriginNotAllowed.into());
    }
    let who = Requester::of(&req, &state).await?;
    let guard = if who.staff() {
        None
    } else {
        Some(state.limits.connect(&who.client)?)
    };
    // actix-ws checks the handshake and decodes the client's frames; everything else is the
    // response body below, which actix-http's dispatcher polls: no task of its own.
    // A bad handshake is answered as a problem, as every other error is.
    // Frames declared over the limit end the connection at their header (`socket_frames`).
    let checked: actix_http::BoxedPayloadStream =
        Box::pin(Checked::new(body.into_inner(), MAX_MESSAGE));
    let mut checked = actix_web::dev::Payload::Stream { payload: checked };
    let body = web::Payload::from_request(&req, &mut checked).await?;
    let (res, session, stream) = match actix_ws::handle(&req, body) {
        Ok(upgraded) => upgraded,
        Err(e) => return Ok(not_an_upgrade(&e)),
    };
    drop(session);
    let stream = stream.max_frame_size(MAX_MESSAGE);
    let stream = Messages::new(stream, MAX_MESSAGE);
    let live = Live::new(state.into_inner(), who, stream, guard);
    Ok(res.map_body(|_, _| live).map_into_boxed_body())
}

/// A handshake actix-ws refused: `400`, and for a version other than 13 the version this
/// server speaks, as RFC 6455 (4.2.2) asks of a refusal for that reason.
fn not_an_upgrade(e: &actix_web::Error) -> HttpResponse {
    use actix_http::ws::HandshakeError;
    let mut res = actix_web::ResponseError::error_response(&ApiError::BadRequest(format!(
        "not a WebSocket upgrade: {e}"
    )));
    if matches!(
        e.as_error::<HandshakeError>(),
        Some(HandshakeError::UnsupportedVersion)
    ) {
        res.headers_mut().insert(
            actix_web::http::header::SEC_WEBSOCKET_VERSION,
            actix_web::http::header::HeaderValue::from_static("13"),
        );
    }
    res
}

struct Conversation {
    state: Arc<AppState>,
    who: Requester,
    conn: Conn,
    /// Each subscription's `sub`, channel and `sub` as JSON (at most `MAX_SUBSCRIPTIONS`).
    subs: Vec<(String, Key, Arc<str>)>,
}

type Reply = Option<String>;

fn err(sub: Option<&str>, req: Option<&str>, status: u16, title: &str, detail: &str) -> Reply {
    Some(frames::error(sub, req, status, title, detail))
}

/// Whether the error says a text message was not UTF-8: it carries the `Utf8Error` (actix-ws's
/// for one frame, `Messages`'s for fragments).
fn not_utf8(e: &std::io::Error) -> bool {
    e.get_ref().is_some_and(|i| i.is::<std::str::Utf8Error>())
}

/// Close codes (docs/live-protocol.md).
const NORMAL_AWAY: u16 = 1001;
const PROTOCOL: u16 = 1002;
/// A text message that is not UTF-8 (RFC 6455 7.4.1).
const NOT_UTF8: u16 = 1007;
const TOO_BIG: u16 = 1009;
const IDLE: u16 = 4000;
const TOO_SLOW: u16 = 4008;

type Close = Option<(u16, String)>;

fn close(code: u16, why: &str) -> Close {
    Some((code, why.to_owned()))
}

/// A client frame being handled; it has the conversation until it is done.
type Handling = Pin<Box<dyn Future<Output = (Conversation, Reply)> + Send>>;

/// One WebSocket connection, as the response body that actix-http's dispatcher polls: it
/// writes what the connection's queue holds (`socket_writer`), reads the client's frames and
/// keeps the heartbeat, idle close, eviction and drain. An idle connection has no task and no
/// future: a client frame that needs the hub or the store is handled by a future that lives
/// only while it runs, polled here, one frame at a time in the order they came.
pub struct Live {
    state: Arc<AppState>,
    writer: Writer,
    stream: Messages,
    conv: Option<Conversation>,
    handling: Option<Handling>,
    /// One timer for the heartbeat, the idle close and the drain: whichever comes first.
    timer: Pin<Box<Sleep>>,
    last_seen: Instant,
    /// The next ping; once draining, the moment to close (no ping is due before it).
    next_ping: Instant,
    draining: bool,
    registered: bool,
    /// A close decided while a frame is being handled: it waits for that frame's answer.
    closing: Option<Box<Close>>,
    /// The close frame is queued: only writing is left.
    closed: bool,
    _guard: Option<ConnectionGuard>,
}

impl Live {
    fn new(
        state: Arc<AppState>,
        who: Requester,
        stream: Messages,
        guard: Option<ConnectionGuard>,
    ) -> Self {
        state.metrics.ws_connections().inc();
        let queue = Queue::new(QUEUE);
        let now = Instant::now();
        let next_ping = now + state.live.ping_every;
        let id = state.hub.next_conn_id();
        Live {
            writer: Writer::new(queue.clone()),
            stream,
            conv: Some(Conversation {
                conn: Conn { id, tx: queue },
                state: state.clone(),
                who,
                // Most connections hold one subscription: room for one, not four.
                subs: Vec::with_capacity(1),
            }),
            state,
            handling: None,
            timer: Box::pin(sleep_until(next_ping)),
            last_seen: now,
            next_ping,
            draining: false,
            registered: false,
            closing: None,
            closed: false,
            _guard: guard,
        }
    }

    fn queue(&self) -> &Queue {
        self.writer.queue()
    }

    /// Queues the close frame and lets go of the hub; what is queued before it still goes out.
    fn close(&mut self, reason: Close) {
        self.closed = true;
        if let Some(conv) = &mut self.conv {
            unsubscribe_all(conv);
        }
        self.queue().finish_now(Out::Close(reason));
    }

    /// Polls the frame being handled, if any; when it is done, takes the conversation back and
    /// queues the answer. True when no frame is being handled any more.
    fn finish_handling(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(h) = &mut self.handling else {
            return true;
        };
        let Poll::Ready((conv, reply)) = h.as_mut().poll(cx) else {
            return false;
        };
        self.handling = None;
        self.conv = Some(conv);
        if let Some(text) = reply {
            self.queue().push_own(Out::Own(text));
        }
        true
    }

    /// Starts handling a client frame; `Some` when it answered at once.
    fn handle(&mut self, msg: Result<AggregatedMessage, ProtocolError>) -> Result<Reply, Close> {
        match msg {
            Err(ProtocolError::Overflow) => Err(close(TOO_BIG, "message over 64 KiB")),
            Err(ProtocolError::Io(e)) if is_overflow(&e) => {
                Err(close(TOO_BIG, "message over 64 KiB"))
            }
            // Bad reserved bits are an `InvalidData` I/O error too, but broken framing: 1002.
            Err(ProtocolError::Io(e)) if not_utf8(&e) => {
                Err(close(NOT_UTF8, "a text message must be UTF-8"))
            }
            Err(e) => Err(close(PROTOCOL, &e.to_string())),
            Ok(AggregatedMessage::Text(t)) => {
                let mut conv = self.conv.take().expect("no frame is being handled");
                self.handling = Some(Box::pin(async move {
                    let reply = conv.handle(&t).await;
                    (conv, reply)
                }));
                Ok(None)
            }
            Ok(AggregatedMessage::Binary(_)) => Ok(err(
                None,
                None,
                400,
                "Bad request",
                "binary frames are not supported",
            )),
            Ok(AggregatedMessage::Ping(b)) => {
                self.queue().push_own(Out::Pong(b.to_vec()));
                Ok(None)
            }
            Ok(AggregatedMessage::Pong(_)) => Ok(None),
            // The reply echoes the client's code (RFC 6455 5.5.1), so a browser's
            // `close(1000)` reads 1000 and not 1005. actix-http refuses a code no endpoint may
            // send (1002) before it gets here; the filter keeps the echo to the codes that may
            // be sent whatever the parser lets through.
            Ok(AggregatedMessage::Close(reason)) => Err(reason
                .map(|r| u16::from(r.code))
                .filter(|c| matches!(c, 1000..=1003 | 1007..=1014 | 3000..=4999))
                .map(|c| (c, String::new()))),
        }
    }

    /// Everything but writing: the frame being handled, the client's next frames, the timer,
    /// eviction and drain. `Err` with the close frame's reason when the connection must end.
    fn step(&mut self, cx: &mut Context<'_>) -> Result<(), Close> {
        if !self.registered {
            // The dispatcher's task polls this body for the connection's whole life.
            self.state.sockets.register(self.queue().key(), cx.waker());
            self.registered = true;
        }
        if self.queue().is_evicted() {
            self.state.metrics.live_eviction();
            return Err(close(TOO_SLOW, "too slow to keep up"));
        }
        let settings = self.state.live;
        loop {
            if !self.finish_handling(cx) {
                break;
            }
            // The next client frame only once the queue has room for its answer: a client
            // that does not read is not read either.
            if !self.queue().has_room() {
                break;
            }
            match Pin::new(&mut self.stream).poll_next(cx) {
                Poll::Pending => break,
                Poll::Ready(None) => return Err(None),
                Poll::Ready(Some(msg)) => {
                    self.last_seen = Instant::now();
                    if let Some(text) = self.handle(msg)? {
                        self.queue().push_own(Out::Own(text));
                    }
                }
            }
        }
        if !self.draining && self.state.sockets.draining() {
            let window = settings.drain_window.as_millis().max(1) as u64;
            let jitter = rand::thread_rng().gen_range(0..window);
            self.draining = true;
            self.next_ping = self
                .next_ping
                .min(Instant::now() + Duration::from_millis(jitter));
        }
        loop {
            let idle_at = self.last_seen + settings.idle_after;
            let wake = self.next_ping.min(idle_at);
            if self.timer.deadline() != wake {
                self.timer.as_mut().reset(wake);
            }
            if self.timer.as_mut().poll(cx).is_pending() {
                return Ok(());
            }
            let now = Instant::now();
            if self.draining && self.next_ping <= now {
                return Err(close(NORMAL_AWAY, "instance draining; reconnect"));
            }
            if idle_at <= now {
                return Err(close(IDLE, "idle"));
            }
            if self.next_ping <= now {
                self.next_ping = now + settings.ping_every;
                self.queue().push_own(Out::Ping);
            }
        }
    }
}

/// Lets go of the hub's channels (in a task: the hub's queue may make it wait).
fn unsubscribe_all(conv: &mut Conversation) {
    let subs = std::mem::take(&mut conv.subs);
    if subs.is_empty() {
        return;
    }
    let (hub, id) = (conv.state.hub.clone(), conv.conn.id);
    // Outside a runtime (the server is gone) there is no hub left to tell.
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        rt.spawn(async move {
            for (_, key, sub) in subs {
                hub.unsubscribe(key, id, sub).await;
            }
        });
    }
}

impl MessageBody for Live {
    type Error = Infallible;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Infallible>>> {
        let this = self.get_mut();
        if !this.closed && this.closing.is_none() {
            if let Err(reason) = this.step(cx) {
                this.closing = Some(Box::new(reason));
            }
        }
        // A frame being handled (a hold the store is deciding) finishes and is answered
        // before the close frame: nothing decided goes unannounced.
        if this.closing.is_some() && this.finish_handling(cx) {
            let reason = this.closing.take().and_then(|r| *r);
            this.close(reason);
        }
        this.writer
            .poll_chunk(cx, &this.state.metrics)
            .map(|chunk| chunk.map(Ok))
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.state.sockets.remove(self.queue().key());
        if !self.closed {
            if let Some(conv) = &mut self.conv {
                unsubscribe_all(conv);
            }
            // The client left while a frame was being handled: it still runs to its end (a
            // hold is decided and announced to the others) and then lets go of the hub.
            if let (Some(h), Ok(rt)) = (self.handling.take(), tokio::runtime::Handle::try_current())
            {
                rt.spawn(async move {
                    let (mut conv, _) = h.await;
                    unsubscribe_all(&mut conv);
                });
            }
            // The writer's own drop closes the queue: the hub's next offer lets go.
        }
        self.state.metrics.ws_connections().dec();
    }
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
        // A hold is read from the message as the HTTP hold reads its body, so that a member of
        // the wrong type or form is answered as there: a `hold_result` with its `400`.
        if str_member(&v, "op") == Some("hold") && v.get("req").is_none_or(Value::is_string) {
            return Some(self.hold(&v, req).await);
        }
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
            ClientFrame::Subscribe(s) => self.subscribe(s, req).await,
            ClientFrame::Unsubscribe(u) => self.unsubscribe(&u.sub, req).await,
            // Taken above (with a `req` that is not a string, it does not parse).
            ClientFrame::Hold(_) => Some(self.hold(&v, req).await),
            ClientFrame::Ping => Some(frames::pong()),
        }
    }

    /// The `hold` op (`v`, a [`frames::HoldFrame`]), in the HTTP hold's order: a rate token (for
    /// no restaurant when its id is not one, as for a bad path), the restaurant's id (as in the
    /// path, `400`), the body (`400`, `422`), the hold.
    async fn hold(&self, v: &Value, req: Option<&str>) -> String {
        let rid = str_member(v, "restaurant_id").and_then(|s| Uuid::parse_str(s).ok());
        let charged =
            super::restaurants::charge_hold(&self.state, &self.who, rid.unwrap_or_default()).await;
        let cmd = match (charged, rid) {
            (Err(e), _) => Err(e),
            (Ok(()), None) => Err(ApiError::BadRequest(
                "`restaurant_id` must be a UUID".into(),
            )),
            (Ok(()), Some(rid)) => from_body::<HoldInput>(v)
                .and_then(HoldCommand::parse)
                .map(|cmd| (rid, cmd)),
        };
        let outcome = match cmd {
            Ok((rid, cmd)) => take_hold(&self.state, &self.who, rid, cmd, None).await,
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

    async fn unsubscribe(&mut self, sub: &str, req: Option<&str>) -> Reply {
        match self.subs.iter().position(|(s, ..)| s == sub) {
            None => err(Some(sub), req, 404, "Not found", "no such subscription"),
            Some(i) => {
                let (_, key, s) = self.subs.swap_remove(i);
                self.state.hub.unsubscribe(key, self.conn.id, s).await;
                None
            }
        }
    }

    async fn subscribe(&mut self, f: SubscribeFrame, req: Option<&str>) -> Reply {
        let sub = f.sub.as_str();
        if !(1..=64).contains(&sub.chars().count()) {
            return err(
                Some(sub),
                req,
                400,
                "Bad request",
                "`sub` must be 1 to 64 characters",
            );
        }
        if self.subs.iter().any(|(s, ..)| s == sub) {
            return err(
                Some(sub),
                req,
                409,
                "Conflict",
                "this `sub` is already in use",
            );
        }
        if self.subs.len() >= MAX_SUBSCRIPTIONS {
            return err(
                Some(sub),
                req,
                429,
                "Too many subscriptions",
                "at most 32 subscriptions per connection",
            );
        }
        if f.view == ViewName::Waitlist {
            let found = super::waitlist::watched(&self.state, f.token.as_deref(), f.entry_id).await;
            return match found {
                Ok((key, view)) => self.join(sub, key, view, req).await,
                Err((status, title, detail)) => err(Some(sub), req, status, title, &detail),
            };
        }
        let (Some(rid), Some(date)) = (f.restaurant_id, f.date) else {
            return err(
                Some(sub),
                req,
                400,
                "Bad request",
                "`restaurant_id` and `date` are required",
            );
        };
        let unavailable = || {
            err(
                Some(sub),
                req,
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
                        req,
                        401,
                        "Unauthorized",
                        "a floor subscription needs a staff token",
                    );
                };
                match resolve(token, &self.state).await {
                    Ok(Some(who)) => Some(who),
                    Ok(None) => return err(Some(sub), req, 401, "Unauthorized", "unknown token"),
                    Err(_) => return unavailable(),
                }
            }
            ViewName::Availability | ViewName::Waitlist => None,
        };
        let restaurant = match self.state.booking.restaurant(rid).await {
            Ok(r) => r,
            Err(BookingError::NotFound(_)) => {
                return err(Some(sub), req, 404, "Not found", "restaurant not found")
            }
            Err(_) => return unavailable(),
        };
        let view = match floor {
            Some(who) if who.may_staff(rid) => View::Floor,
            Some(_) => {
                return err(
                    Some(sub),
                    req,
                    403,
                    "Forbidden",
                    "this token is not staff of this restaurant",
                )
            }
            None => {
                let Some(n) = f.party_size else {
                    return err(
                        Some(sub),
                        req,
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
                            req,
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
                req,
                422,
                "Validation failed",
                "date is in the past or beyond the booking horizon",
            );
        }
        self.join(sub, (rid, date), view, req).await
    }

    /// Subscribes `sub` to `view` of the channel `key`; a `503` error frame, with `sub` free
    /// again, when the channel cannot load its restaurant/date.
    async fn join(&mut self, sub: &str, key: Key, view: View, req: Option<&str>) -> Reply {
        let s = frames::sub_json(sub);
        self.subs.push((sub.to_owned(), key, s.clone()));
        if self
            .state
            .hub
            .subscribe(key, view, self.conn.clone(), s)
            .await
        {
            return None;
        }
        self.subs.retain(|(x, ..)| x != sub);
        err(
            Some(sub),
            req,
            503,
            "Service unavailable",
            "cannot load this restaurant/date; subscribe again shortly",
        )
    }
}

#[cfg(test)]
mod tests {
    /// Every idle connection keeps one `Live`, boxed by actix-web with one byte more: up to
    /// 440 bytes it is in jemalloc's 448-byte class, past that in the 512 one (+64 bytes per
    /// connection).
    #[test]
    fn an_idle_connection_body_stays_in_the_448_byte_class() {
        let size = std::mem::size_of::<super::Live>();
        assert!(size <= 440, "Live is {size} bytes");
    }
}
