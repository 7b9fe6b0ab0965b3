// HTTP helpers: JSON in and out, problem+json errors, and the server's clock.

/** An RFC 9457 problem (or a network failure dressed as one). */
export class Problem extends Error {
  constructor(status, body = {}) {
    super(body.title || `HTTP ${status}`);
    this.status = status;
    this.type = body.type || "";
    this.title = body.title || (status ? `HTTP ${status}` : "Network error");
    this.detail = body.detail || "";
    this.body = body;
  }
  get name() { return this.type.replace("/problems/", ""); }
  /**
   * "Title: detail" for people; a validation problem names what was wrong with each field
   * ("Validation failed: time has already passed"), where its detail alone says nothing.
   */
  describe() {
    const fields = (Array.isArray(this.body.errors) ? this.body.errors : [])
      .filter((e) => e && typeof e.message === "string")
      .map((e) => (e.field ? `${e.field} ${e.message}` : e.message));
    if (fields.length) return `${this.title}: ${fields.join("; ")}`;
    return this.detail && this.detail !== this.title ? `${this.title}: ${this.detail}` : this.title;
  }
}

/**
 * The server's clock as seen from here. Each answer narrows the offset: the server's time lies
 * between the moment we sent and the moment we received, so the tightest round trip wins —
 * unless the answer cannot be squared with the offset kept (the two ranges do not meet, with
 * a second and a half to spare: a `Date` header may be up to half a second old besides its
 * whole-second truncation, and instances' clocks differ a little): then this device's clock
 * moved (a correction, a wake from sleep), and the offset starts over from that answer.
 */
export const clock = {
  offset: 0,
  error: Infinity,
  now() { return Date.now() + this.offset; },
  /** A server instant `serverMs` observed during [sentMs, receivedMs] (local). */
  observe(serverMs, sentMs, receivedMs, resolutionMs = 0) {
    if (!Number.isFinite(serverMs)) return;
    const rtt = Math.max(0, receivedMs - sentMs) + resolutionMs;
    const offset = serverMs + resolutionMs / 2 - (sentMs + receivedMs) / 2;
    const moved = Math.abs(offset - this.offset) > (rtt + this.error) / 2 + 1500;
    if (rtt > this.error && !moved) return;
    this.error = rtt;
    this.offset = offset;
  },
};

/** A reservation whose end has come by the server's clock: over, nothing left to cancel. */
export const isOver = (r) => Date.parse(r.end) <= clock.now();

/**
 * How long a hold runs from its taking to its `expires_at`, in ms (at least 1): `hold_seconds`,
 * or less when its start comes first; a waitlist offer's `offer_seconds`.
 */
export const holdSpan = (r) => Math.max(1, Date.parse(r.expires_at) - Date.parse(r.created_at));

/**
 * Whether `e` is a final answer to a keyed request, one after which its `Idempotency-Key` is
 * spent: not no answer, a 5xx or a 429 (none is recorded), nor the `409 conflict` that says the
 * first request with the key is still running.
 */
export const spendsKey = (e) => e instanceof Problem && e.status !== 0 && e.status < 500
  && e.status !== 429 && !(e.status === 409 && e.name === "conflict");

/**
 * A fresh `Idempotency-Key`: 128 random bits. A key is all that tells two anonymous callers
 * apart, so it must not be guessable (`crypto.randomUUID` is missing on plain-HTTP origins other
 * than localhost; `getRandomValues` is not).
 */
export function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The `Idempotency-Key` for sending `body` after `last` (what this returned before, or null):
 * the same key while the body is the same, so a retry after a network failure is answered once;
 * a new one for a different body (the server replays a key's first answer, a 422 too, and refuses
 * the key with another body). `{ key, body }`: keep it, send `.key`.
 */
export function keyFor(last, body) {
  const text = JSON.stringify(body);
  return last?.body === text ? last : { key: newKey(), body: text };
}

/** `fetch` with JSON, a bearer token and an idempotency key; throws `Problem` unless 2xx. */
export async function api(method, path, { token, body, key } = {}) {
  const headers = { accept: "application/json, application/problem+json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (token) headers.authorization = `Bearer ${token}`;
  if (key) headers["idempotency-key"] = key;
  const sent = Date.now();
  let res;
  try {
    res = await fetch(path, {
      method, headers, cache: "no-store",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new Problem(0, { title: "Network error", detail: "the server cannot be reached; check your connection" });
  }
  const received = Date.now();
  const date = Date.parse(res.headers.get("date") || "");
  clock.observe(date, sent, received, 1000);
  const text = res.status === 204 ? "" : await res.text();
  let json = null;
  if (text) {
    try { json = JSON.parse(text); } catch { json = null; }
  }
  if (!res.ok) throw new Problem(res.status, json || {});
  // A replay is the first answer to the key, as it was then: not a reading of the clock now.
  const replayed = res.headers.get("idempotent-replayed") === "true";
  return { status: res.status, body: json, sent, received, replayed };
}
