// The diner's waitlist: "Notify me" on a full time joins the queue with a window around it; the
// entry is then followed live (its place in line, an offer with its countdown, one-tap confirm
// or pass). The entry's id and token survive a reload, in this tab's session storage.
import { api, clock, holdSpan, newKey } from "./api.js";
import { clearErrors, readGuest, showServerErrors } from "./guest.js";
import { $, h, countdown, guests, longDate, say } from "./ui.js";

const STORE_KEY = "tablecast.waitlist";
const WINDOW_MINUTES = 30;

const el = {
  status: $("#status"),
  join: $("#join-stage"), joinTitle: $("#join-title"), joinMeta: $("#join-meta"),
  joinForm: $("#join-form"), from: $("#wait-from"), to: $("#wait-to"), joinHint: $("#join-hint"),
  joinFree: $("#join-free"), waitFree: $("#wait-free"),
  name: $("#wait-name"), email: $("#wait-email"), phone: $("#wait-phone"),
  joinBtn: $("#wait-join"), back: $("#wait-back"),
  wait: $("#wait-stage"), title: $("#wait-title"), meta: $("#wait-meta"), hint: $("#wait-hint"),
  offer: $("#offer"), offerTitle: $("#offer-title"), offerMeta: $("#offer-meta"),
  offerCountdown: $("#offer-countdown"), offerProgress: $("#offer-progress"),
  confirm: $("#offer-confirm"), pass: $("#offer-pass"),
  leave: $("#wait-leave"), rejoin: $("#wait-rejoin"), done: $("#wait-done"),
};
const inputs = { name: el.name, email: el.email, phone: el.phone };

const minutes = (t) => Number(t.slice(0, 2)) * 60 + Number(t.slice(3, 5));

/** "1st", "2nd", "3rd", "4th", "11th", "22nd". */
export function ordinal(n) {
  const teen = n % 100 >= 11 && n % 100 <= 13;
  const suffix = teen ? "th" : { 1: "st", 2: "nd", 3: "rd" }[n % 10] || "th";
  return `${n}${suffix}`;
}

/**
 * Wires the waitlist into the diner app. `app` gives what the page knows and does:
 * `restaurant()`, `restaurantName(rid)`, `date()`, `party()`, `times()` (the day's bookable
 * starts for the party, in order), `free()` (those of them with a table free now, live), `live`,
 * `setStage(name)`, `booked(reservation, token, restaurantName)`, `browse()` and `hold(time)`.
 * `availabilityChanged()` is to be called on every availability frame.
 */
export function dinerWaitlist(app) {
  // { id, token, rid, name, entry, sub, confirmKey, passed, offerSeconds, offerSpan }
  let w = null;
  let joining = null; // { rid, name, date, party, time, offerSeconds } while the form is open
  let timer = null;

  function save() {
    if (w) sessionStorage.setItem(STORE_KEY, JSON.stringify({ id: w.id, token: w.token, rid: w.rid }));
    else sessionStorage.removeItem(STORE_KEY);
  }

  // ---------- joining ----------

  function option(t) { return h("option", { value: t }, t); }

  /**
   * Opens the form to wait for `time` (a full start), with a window of ±30 min around it, or
   * `window` ({from, to}) when given and still offered.
   */
  function open(time, window = null) {
    const r = app.restaurant();
    if (!r) return;
    const times = app.times();
    const near = times.filter((t) => Math.abs(minutes(t) - minutes(time)) <= WINDOW_MINUTES);
    const list = times.length ? times : [time];
    joining = { rid: r.id, name: r.name, date: app.date(), party: app.party(), time, offerSeconds: r.offer_seconds || 120 };
    el.from.replaceChildren(...list.map(option));
    el.to.replaceChildren(...list.map(option));
    el.from.value = window && list.includes(window.from) ? window.from : near[0] || time;
    el.to.value = window && list.includes(window.to) ? window.to : near[near.length - 1] || time;
    el.joinTitle.textContent = `Wait for a table around ${time}`;
    el.joinMeta.textContent = `${r.name} · ${longDate(joining.date)} · ${guests(joining.party)}`;
    paintJoinHint();
    clearErrors(el.joinForm, [el.from, el.to, el.name, el.email, el.phone]);
    app.setStage("join");
    say(el.status, `${time} is full. Join the waitlist and a table that frees up can be held for you.`);
    el.from.focus();
  }

  /**
   * A time of the window that is free right now: it is public, so no offer will come for it
   * (only capacity freed after the join is offered). Said while joining, with a button to book
   * it instead, and while waiting (for the date and party the page shows).
   */
  function paintFree() {
    const free = app.free();
    const within = (from, to) => free.filter((t) => minutes(t) >= minutes(from) && minutes(t) <= minutes(to));
    // Only for what the form is for: the page may have moved on (another party size, after a
    // settings change) while it stayed open.
    const forThis = joining && joining.rid === app.restaurant()?.id
      && joining.date === app.date() && joining.party === app.party();
    const j = forThis ? within(el.from.value, el.to.value) : [];
    // The time asked for if it is free, else the window's first free one.
    const pick = j.includes(joining?.time) ? joining.time : j[0];
    el.joinFree.hidden = !j.length;
    // Drawn again only when it says something else: a redraw would take the focus off Book,
    // and the live region would be read out again.
    const key = String(pick ?? "");
    if (el.joinFree.dataset.pick !== key) {
      el.joinFree.dataset.pick = key;
      el.joinFree.replaceChildren(...(j.length ? [
        h("span", {}, `${pick} is free now: no need to wait.`),
        h("button", {
          type: "button", class: "btn btn-small btn-primary", dataset: { testid: "join-free-book" },
          onclick: () => { joining = null; app.browse(); app.hold(pick); },
        }, `Book ${pick}`),
      ] : []));
    }
    const e = w?.entry;
    const shown = e?.status === "waiting" && w.rid === app.restaurant()?.id
      && e.date === app.date() && e.party_size === app.party();
    const f = shown ? within(e.from, e.to) : [];
    el.waitFree.hidden = !f.length;
    const said = f.length
      ? `${f.join(", ")} ${f.length === 1 ? "is" : "are"} free right now for anyone to book, so no offer will come for ${f.length === 1 ? "it" : "them"}: leave the waitlist and book, or keep waiting for another time.`
      : "";
    if (el.waitFree.textContent !== said) el.waitFree.textContent = said;
  }

  function paintJoinHint() {
    if (!joining) return;
    paintFree();
    const secs = joining.offerSeconds;
    // Never rounded up: 150 s is 2 minutes 30 seconds, not 3 minutes.
    const [m, rest] = [Math.floor(secs / 60), secs % 60];
    const secondsText = `${rest} ${rest === 1 ? "second" : "seconds"}`;
    const span = secs < 120 ? `${secs} seconds` : rest ? `${m} minutes ${secondsText}` : `${m} minutes`;
    const bad = minutes(el.from.value) > minutes(el.to.value);
    el.to.setAttribute("aria-invalid", String(bad));
    el.joinHint.textContent = bad
      ? "The latest time must not be before the earliest."
      : `If a table for ${guests(joining.party)} frees up at any start from ${el.from.value} to ${el.to.value}, it is held for you alone for ${span}: confirm it with one tap.`;
  }
  el.from.addEventListener("change", paintJoinHint);
  el.to.addEventListener("change", paintJoinHint);

  el.back.addEventListener("click", () => {
    joining = null;
    say(el.status, "");
    app.browse();
  });

  el.joinForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const j = joining;
    if (!j || el.joinBtn.disabled) return;
    if (minutes(el.from.value) > minutes(el.to.value)) {
      el.to.focus();
      return say(el.status, "The latest time must not be before the earliest.", "error");
    }
    const guest = readGuest(el.joinForm, inputs);
    if (!guest) return say(el.status, "Please check the highlighted fields.", "error");
    el.joinBtn.disabled = true;
    el.joinBtn.classList.add("pending");
    try {
      const { body, sent, received } = await api("POST", `/v1/restaurants/${j.rid}/waitlist`, {
        body: { date: j.date, party_size: j.party, from: el.from.value, to: el.to.value, guest },
      });
      clock.observe(Date.parse(body.created_at), sent, received, 0);
      const { token, ...entry } = body;
      joining = null;
      follow({ id: entry.id, token, rid: j.rid, name: j.name, entry, offerSeconds: j.offerSeconds });
      say(el.status, `You're on the waitlist for ${entry.from}–${entry.to}.`, "success");
    } catch (e) {
      if (e.name === "validation") showServerErrors(e, inputs);
      say(el.status, `Could not join the waitlist: ${e.describe()}`, "error");
    } finally {
      el.joinBtn.disabled = false;
      el.joinBtn.classList.remove("pending");
    }
  });

  // ---------- following an entry ----------

  function follow(next) {
    stop();
    w = { confirmKey: newKey(), passed: false, sub: null, ...next };
    save();
    w.sub = app.live.subscribe({ view: "waitlist", entry_id: w.id, token: w.token }, (f) => onFrame(w, f));
    paint();
  }

  function stop() {
    if (w?.sub) app.live.unsubscribe(w.sub);
    clearInterval(timer);
    timer = null;
  }

  function forget() {
    stop();
    w = null;
    save();
  }

  function onFrame(mine, frame) {
    if (w !== mine) return;
    if (frame.type === "snapshot" || frame.type === "update") {
      if (!frame.data) return gone();
      w.entry = frame.data;
      paint();
    } else if (frame.type === "error" && [401, 403, 404].includes(frame.status)) {
      gone();
    }
  }

  function gone() {
    forget();
    app.browse();
    say(el.status, "That waitlist entry no longer exists.", "warn");
  }

  async function refresh() {
    const mine = w;
    if (!mine) return;
    try {
      const { body } = await api("GET", `/v1/waitlist/${mine.id}`, { token: mine.token });
      if (w !== mine) return;
      w.entry = body;
      paint();
    } catch (e) {
      if (w === mine && [401, 403, 404].includes(e.status)) gone();
    }
  }

  async function toBooked() {
    const mine = w;
    if (mine.fetchingBooking) return;
    mine.fetchingBooking = true;
    const id = mine.entry.offer?.reservation_id;
    try {
      const { body } = await api("GET", `/v1/reservations/${id}`, { token: mine.token });
      if (w !== mine) return;
      forget();
      app.booked(body, mine.token, mine.name);
    } catch (e) {
      mine.fetchingBooking = false;
      say(el.status, `Could not load your booking: ${e.describe()}`, "error");
    }
  }

  function paint() {
    const e = w?.entry;
    if (!e) return;
    if (e.status === "booked") return toBooked();
    app.setStage("wait");
    el.wait.dataset.status = e.status;
    const offered = e.status === "offered" && e.offer;
    if (offered && w.announced !== e.offer.reservation_id) {
      w.announced = e.offer.reservation_id;
      w.offerSpan = null;
      measureOffer(w, e.offer.reservation_id);
      const left = countdown(Date.parse(e.offer.expires_at) - clock.now());
      say(el.status, `A table freed up: ${e.offer.time} is held for you for ${left}. Confirm it or pass.`, "success");
    }
    el.offer.hidden = !offered;
    el.meta.textContent = `${w.name} · ${longDate(e.date)} · ${guests(e.party_size)} · any start ${e.from}–${e.to}`;
    el.leave.hidden = !["waiting", "offered"].includes(e.status);
    el.rejoin.hidden = el.done.hidden = ["waiting", "offered"].includes(e.status);
    if (e.status === "waiting") {
      el.title.textContent = `You're ${ordinal(e.position || 1)} in line`;
      el.hint.textContent = `When a table for ${guests(e.party_size)} frees up from ${e.from} to ${e.to}, it is held for you and shows here at once. Keep this page open.`;
    } else if (offered) {
      el.title.textContent = "A table freed up for you";
      el.hint.textContent = "Confirm it before the time runs out, or pass to give it to the next in line.";
      el.offerTitle.textContent = `${e.offer.time} is yours if you want it`;
      el.offerMeta.textContent = `${w.name} · ${longDate(e.date)} at ${e.offer.time} · ${guests(e.party_size)}`;
      el.confirm.textContent = `Confirm ${e.offer.time}`;
      startCountdown();
    } else if (e.status === "lapsed") {
      if (w.seen === "offered" && !w.passed) {
        say(el.status, `The offer for ${e.offer?.time || "your table"} ran out and went to the next in line.`, "warn");
      }
      el.title.textContent = w.passed ? `You passed on ${e.offer?.time || "the offer"}` : `The offer for ${e.offer?.time || "your table"} lapsed`;
      el.hint.textContent = w.passed
        ? "The table went to the next in line, and your place in the queue ended."
        : "It was not confirmed in time, so it went to the next in line and your place in the queue ended. You can join again.";
    } else if (e.status === "left") {
      el.title.textContent = "You left the waitlist";
      el.hint.textContent = "Nothing is held for you. You can join again or pick another time.";
    }
    w.seen = e.status;
    paintFree();
    if (!offered) {
      clearInterval(timer);
      timer = null;
    }
  }

  /**
   * The offer's whole length, from its held reservation (`created_at` to `expires_at`), for the
   * bar: `offer_seconds` as the page read it may be stale (changed since the join) or a guess
   * (after a reload on another restaurant's page). Until it is read, that guess serves.
   */
  async function measureOffer(mine, id) {
    try {
      const { body } = await api("GET", `/v1/reservations/${id}`, { token: mine.token });
      if (w === mine && mine.announced === id) mine.offerSpan = holdSpan(body);
    } catch {
      // The guess stays; the countdown itself runs on expires_at.
    }
  }

  function startCountdown() {
    if (timer) return;
    let asked = false;
    const tick = () => {
      const o = w?.entry?.offer;
      if (!o || w.entry.status !== "offered") return;
      const left = Date.parse(o.expires_at) - clock.now();
      el.offerCountdown.textContent = countdown(left);
      // Whole percents: the bar moves in steps, not in a transition that never ends.
      el.offerProgress.style.width = `${Math.max(0, Math.min(100, Math.ceil((left / (w.offerSpan || w.offerSeconds * 1000)) * 100)))}%`;
      el.offer.classList.toggle("urgent", left <= 30000);
      // The server reads the entry as lapsed from expires_at on: ask it once the time is up.
      if (left <= 0 && !asked) {
        asked = true;
        setTimeout(refresh, 500);
      }
    };
    tick();
    timer = setInterval(tick, 250);
  }

  // Confirm, Pass and Leave each answer the offer: while one is on its way, none can be sent
  // (a Pass sent behind a Confirm cancelled the booking the page then showed as made).
  const answers = [el.confirm, el.pass, el.leave];
  let answering = false;
  const answer = async (button, run) => {
    if (answering) return;
    answering = true;
    for (const b of answers) b.disabled = true;
    button.classList.add("pending");
    try {
      await run();
    } finally {
      answering = false;
      for (const b of answers) b.disabled = false;
      button.classList.remove("pending");
    }
  };

  el.confirm.addEventListener("click", () => answer(el.confirm, async () => {
    const mine = w;
    const o = mine?.entry?.offer;
    if (!o) return;
    say(el.status, `Confirming ${o.time}…`);
    try {
      const guest = { ...(mine.entry.guest || {}) };
      for (const k of Object.keys(guest)) if (guest[k] == null || guest[k] === "") delete guest[k];
      const { body } = await api("POST", `/v1/reservations/${o.reservation_id}/confirm`, {
        token: mine.token, body: { guest }, key: mine.confirmKey,
      });
      if (w !== mine) return;
      forget();
      app.booked(body, mine.token, mine.name);
      say(el.status, `Booked from the waitlist: ${longDate(body.date)} at ${body.time} for ${guests(body.party_size)}.`, "success");
    } catch (e) {
      say(el.status, `Could not confirm ${o.time}: ${e.describe()}`, "error");
      refresh();
    }
  }));

  el.pass.addEventListener("click", () => answer(el.pass, async () => {
    const mine = w;
    const o = mine?.entry?.offer;
    if (!o) return;
    try {
      await api("DELETE", `/v1/reservations/${o.reservation_id}`, { token: mine.token });
      mine.passed = true;
      say(el.status, `You passed on ${o.time}; it goes to the next in line.`);
      await refresh();
    } catch (e) {
      say(el.status, `Could not pass: ${e.describe()}`, "error");
    }
  }));

  el.leave.addEventListener("click", () => answer(el.leave, async () => {
    const mine = w;
    if (!mine) return;
    try {
      await api("DELETE", `/v1/waitlist/${mine.id}`, { token: mine.token });
      forget();
      app.browse();
      say(el.status, `You left the waitlist for ${mine.entry.from}–${mine.entry.to}.`);
    } catch (e) {
      say(el.status, `Could not leave the waitlist: ${e.describe()}`, "error");
    }
  }));

  el.rejoin.addEventListener("click", () => {
    const e = w?.entry;
    forget();
    app.browse();
    if (e) open(e.offer?.time || e.from, { from: e.from, to: e.to });
  });

  el.done.addEventListener("click", () => {
    forget();
    app.browse();
    say(el.status, "");
  });

  /** Picks up the entry this tab followed before a reload; true if there was one. */
  async function restore() {
    let saved;
    try { saved = JSON.parse(sessionStorage.getItem(STORE_KEY) || "null"); } catch { saved = null; }
    if (!saved?.id || !saved?.token) return false;
    let entry;
    try {
      ({ body: entry } = await api("GET", `/v1/waitlist/${saved.id}`, { token: saved.token }));
    } catch (e) {
      if ([401, 403, 404].includes(e.status)) sessionStorage.removeItem(STORE_KEY);
      return false;
    }
    const r = app.restaurant();
    const offerSeconds = r?.id === saved.rid ? r.offer_seconds || 120 : 120;
    follow({ ...saved, name: app.restaurantName(saved.rid), entry, offerSeconds });
    return true;
  }

  return { open, restore, active: () => !!w, availabilityChanged: paintFree };
}
