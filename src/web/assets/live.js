// The live connection (docs/live-protocol.md): one WebSocket, many subscriptions, reconnection with
// jittered exponential backoff, and a fresh snapshot after every (re)subscribe.

const BASE_DELAY_MS = 400;
const MAX_DELAY_MS = 8000;
// A connection that kept its snapshot this long worked: its loss starts the backoff again.
const SETTLED_MS = 30000;
// Closes by which the server says this client is the problem (too slow to keep up; policy):
// reconnecting at once would repeat them, each with a fresh snapshot.
const BACK_OFF_CODES = new Set([4008, 1008]);
// A ping every 15 s, answered within 10 s. The browser tests shorten both with a script run
// before the page's own (`globalThis.tablecastHeartbeat = { pingEveryMs, pongWithinMs }`);
// no page sets it.
const HEARTBEAT = globalThis.tablecastHeartbeat || {};
const PING_EVERY_MS = HEARTBEAT.pingEveryMs || 15000;
const PONG_WITHIN_MS = HEARTBEAT.pongWithinMs || 10000;

export class Live extends EventTarget {
  constructor(path = "/v1/live") {
    super();
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    this.url = `${proto}//${location.host}${path}`;
    this.subs = new Map(); // sub -> { msg, onFrame, synced }
    this.ws = null;
    this.state = "reconnecting";
    this.attempt = 0;
    this.penalized = false; // closed as too slow soon after a snapshot (see `closed`)
    this.syncedAt = null; // when the current connection served its first snapshot
    this.retryTimer = null;
    this.pingTimer = null;
    this.pongTimer = null;
    this.counter = 0;
    addEventListener("online", () => this.reconnectNow());
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") this.reconnectNow();
    });
    this.connect();
  }

  /** Subscribes with `msg` (without `op`/`sub`); `onFrame` gets its snapshots, updates and errors. */
  subscribe(msg, onFrame) {
    const sub = `s${++this.counter}`;
    this.subs.set(sub, { msg: { op: "subscribe", sub, ...msg }, onFrame, synced: false });
    this.send(this.subs.get(sub).msg);
    this.updateState();
    return sub;
  }

  unsubscribe(sub) {
    clearTimeout(this.subs.get(sub)?.retry);
    if (!sub || !this.subs.delete(sub)) return;
    this.send({ op: "unsubscribe", sub });
    this.updateState();
  }

  send(msg) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(msg));
      return true;
    }
    return false;
  }

  connect() {
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    this.syncedAt = null;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      for (const s of this.subs.values()) {
        s.synced = false;
        clearTimeout(s.retry); // sent now: a pending retry would ask twice
        ws.send(JSON.stringify(s.msg));
      }
      this.startHeartbeat();
      this.updateState();
    };
    ws.onmessage = (ev) => {
      if (this.ws !== ws || typeof ev.data !== "string") return;
      this.alive();
      let frame;
      try { frame = JSON.parse(ev.data); } catch { return; }
      this.route(frame);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.stopHeartbeat();
      this.closed(ev.code);
      this.scheduleReconnect();
    };
    // An error is always followed by close; the browser already logs the cause.
    ws.onerror = () => {};
  }

  /**
   * Gives up on a socket that stopped answering: no more of its events reach the page, the page
   * is told at once that it is not live, and a new connection is scheduled. Its close goes out,
   * but a silent network may take a minute to finish that handshake, and nothing waits for it.
   */
  abandon(code, reason) {
    const ws = this.ws;
    if (!ws) return;
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    this.ws = null;
    this.stopHeartbeat();
    this.closed(code);
    try { ws.close(code, reason); } catch { /* already closing */ }
    this.scheduleReconnect();
  }

  /**
   * Notes how the current connection ended. One that kept its snapshot `SETTLED_MS` worked: the
   * backoff starts again. One closed for being slow (or for policy) sooner keeps the backoff
   * growing across the snapshots that follow, until a connection lasts.
   */
  closed(code) {
    if (this.syncedAt !== null && Date.now() - this.syncedAt >= SETTLED_MS) {
      this.attempt = 0;
      this.penalized = false;
    } else if (BACK_OFF_CODES.has(code)) {
      this.penalized = true;
    }
  }

  route(frame) {
    if (frame.type === "pong") return;
    const s = frame.sub ? this.subs.get(frame.sub) : null;
    if (!s) return; // a frame for a subscription we already left
    // A connection that serves a snapshot works: the next loss starts the backoff again. (An
    // open alone does not: a server that opens and drops at once is retried ever more slowly.
    // Nor does a snapshot after a close for being too slow: see `closed`.)
    if (frame.type === "snapshot") {
      this.syncedAt ??= Date.now();
      if (!this.penalized) this.attempt = 0;
    }
    // The server could not load the subscription just now (`503`: its store did not answer);
    // the `sub` is free again. Ask again after a pause, and stay "reconnecting" meanwhile: the
    // page keeps what it shows rather than an error that would not clear by itself.
    if (frame.type === "error" && frame.status === 503 && !s.synced) {
      this.resubscribeLater(frame.sub, s);
      return;
    }
    if (frame.type === "snapshot") s.refused = 0;
    if (frame.type === "snapshot" || frame.type === "error") {
      if (!s.synced) {
        s.synced = true;
        this.updateState();
      }
    }
    s.onFrame(frame);
  }

  /** Sends `s`'s subscribe again after a jittered, growing pause, if it is still wanted. */
  resubscribeLater(sub, s) {
    s.refused = Math.min((s.refused || 0) + 1, 10);
    const cap = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** s.refused);
    clearTimeout(s.retry);
    s.retry = setTimeout(() => {
      if (this.subs.get(sub) === s && !s.synced) this.send(s.msg);
    }, Math.max(150, Math.random() * cap));
  }

  /** Full jitter: a random delay up to an exponentially growing cap. */
  scheduleReconnect() {
    for (const s of this.subs.values()) s.synced = false;
    this.updateState();
    if (this.retryTimer) return;
    const cap = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** this.attempt);
    const delay = Math.max(150, Math.random() * cap);
    this.attempt = Math.min(this.attempt + 1, 10);
    this.nextRetryAt = Date.now() + delay;
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  reconnectNow() {
    if (this.ws || !this.retryTimer) return;
    this.connect();
  }

  startHeartbeat() {
    this.stopHeartbeat();
    this.pingTimer = setInterval(() => {
      if (!this.send({ op: "ping" })) return;
      // The answer is due within PONG_WITHIN_MS of the first ping not answered (any frame
      // answers): a later ping does not move that deadline.
      this.pongTimer ??= setTimeout(() => this.abandon(4000, "no pong"), PONG_WITHIN_MS);
    }, PING_EVERY_MS);
  }

  alive() {
    clearTimeout(this.pongTimer);
    this.pongTimer = null;
  }

  stopHeartbeat() {
    clearInterval(this.pingTimer);
    clearTimeout(this.pongTimer);
    this.pingTimer = this.pongTimer = null;
  }

  /** `live` once the socket is open and every subscription has its snapshot again. */
  updateState() {
    const open = this.ws && this.ws.readyState === WebSocket.OPEN;
    const synced = [...this.subs.values()].every((s) => s.synced);
    const state = open && synced ? "live" : "reconnecting";
    if (state === this.state) return;
    const was = this.state;
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: { state, was } }));
  }
}

/** Renders the connection pill: `data-state` is `live` or `reconnecting`. */
export function bindLiveStatus(live, el, { connectingText = "Connecting…" } = {}) {
  const text = el.querySelector(".live-text");
  let everLive = false;
  const paint = () => {
    el.dataset.state = live.state;
    if (live.state === "live") everLive = true;
    text.textContent = live.state === "live" ? "Live"
      : everLive ? "Reconnecting…" : connectingText;
    el.title = live.state === "live" ? "Changes appear here as they happen"
      : "Connection lost; retrying. What you see may be out of date.";
  };
  live.addEventListener("state", paint);
  paint();
}
