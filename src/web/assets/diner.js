// The diner app: pick a restaurant, date and party; times update live; tap to hold, confirm.
import { api, clock, holdSpan, isOver, keyFor, Problem, spendsKey } from "./api.js";
import { Live, bindLiveStatus } from "./live.js";
import { renderLinks } from "./links.js";
import { dinerWaitlist } from "./diner-waitlist.js";
import { mealOf, paintSlot, slotCell, slotNote } from "./slots.js";
import { clearErrors, readGuest, showServerErrors } from "./guest.js";
import { $, h, addDays, countdown, guests, isDate, longDate, say, tableRow, todayIn, reference, STATUS_LABEL } from "./ui.js";

const STORE_KEY = "tablecast.booking";
const el = {
  picker: $("#picker"), restaurant: $("#restaurant"), date: $("#date"), party: $("#party"),
  status: $("#status"), alternatives: $("#alternatives"),
  browse: $("#browse"), browseTitle: $("#browse-title"), browseSub: $("#browse-sub"), slots: $("#slots"),
  hold: $("#hold-stage"), holdTitle: $("#hold-title"), holdMeta: $("#hold-meta"),
  countdown: $("#hold-countdown"), progress: $("#hold-progress"),
  form: $("#guest-form"), name: $("#guest-name"), email: $("#guest-email"), phone: $("#guest-phone"),
  confirm: $("#confirm"), release: $("#release"),
  done: $("#done-stage"), doneTitle: $("#done-title"), ticket: $("#ticket"),
  cancel: $("#cancel"), again: $("#again"),
};

const live = new Live();
bindLiveStatus(live, $("[data-testid=live-status]"));

/**
 * How long after a hold's lost answer a tap on the same time is the same request. The browser
 * tests shorten it with a script run before the page's own; no page sets it.
 */
const HOLD_RETRY_MS = globalThis.tablecastHoldRetryMs || 30000;

const state = {
  restaurants: [],
  restaurant: null, // the full restaurant document
  date: "",
  party: 2,
  sub: null,
  version: -1,
  slots: new Map(), // time -> slot, from the latest snapshot and updates
  synced: false,
  loadError: "",
  pending: null, // the time a hold is being taken for
  holdKey: null, // { key, body, at }: the Idempotency-Key of a hold whose answer was lost
  booking: null, // { id, token, rid, r, restaurantName, tz, confirmKey }
  stage: "browse",
  warnedMinute: false,
};

// ---------- the picker and the URL ----------

function tz() { return state.restaurant?.timezone || "UTC"; }

/** The largest party any seating option takes: a table, or tables joined as a combination. */
function maxParty(r) {
  return Math.max(1, ...(r?.tables || []).map((t) => t.max_party), ...(r?.combinations || []).map((c) => c.max_party));
}

function writeUrl() {
  if (!state.restaurant) return;
  const q = new URLSearchParams({ restaurant: state.restaurant.id, date: state.date, party: String(state.party) });
  history.replaceState(null, "", `/?${q}`);
}

async function loadRestaurants() {
  try {
    const { body } = await api("GET", "/v1/restaurants");
    state.restaurants = body.restaurants || [];
  } catch (e) {
    say(el.status, `Could not load restaurants: ${e.describe ? e.describe() : e}`, "error");
    return;
  }
  el.restaurant.replaceChildren(
    ...state.restaurants.map((r) => h("option", { value: r.id }, r.name)),
  );
  if (!state.restaurants.length) {
    el.restaurant.append(h("option", { value: "" }, "No restaurants yet"));
    el.browseSub.textContent = "No restaurant takes bookings here yet.";
  }
}

async function chooseRestaurant(rid, { date, party } = {}) {
  let doc;
  try {
    ({ body: doc } = await api("GET", `/v1/restaurants/${encodeURIComponent(rid)}`));
  } catch (e) {
    say(el.status, `That restaurant could not be opened: ${e.describe()}`, "error");
    return false;
  }
  state.restaurant = doc;
  if (![...el.restaurant.options].some((o) => o.value === doc.id)) {
    el.restaurant.append(h("option", { value: doc.id }, doc.name));
  }
  el.restaurant.value = doc.id;
  const top = maxParty(doc);
  el.party.replaceChildren(...Array.from({ length: top }, (_, i) => h("option", { value: i + 1 }, guests(i + 1))));
  const wanted = Number(party ?? state.party) || 2;
  state.party = Math.min(Math.max(1, wanted), top);
  el.party.value = String(state.party);
  const today = todayIn(doc.timezone, clock.now());
  el.date.min = today;
  el.date.max = addDays(today, doc.booking_horizon_days ?? 60);
  const d = isDate(date) ? date : isDate(state.date) && state.date >= today ? state.date : today;
  state.date = d;
  el.date.value = d;
  resubscribe();
  return true;
}

/** Reads the restaurant's document again and brings the party and date pickers up to it. */
async function refreshRestaurant() {
  const rid = state.restaurant?.id;
  if (!rid) return;
  let doc;
  try {
    ({ body: doc } = await api("GET", `/v1/restaurants/${encodeURIComponent(rid)}`));
  } catch {
    return; // the next snapshot tries again
  }
  if (state.restaurant?.id !== doc.id) return;
  state.restaurant = doc;
  const top = maxParty(doc);
  if (el.party.options.length !== top) {
    el.party.replaceChildren(...Array.from({ length: top }, (_, i) => h("option", { value: i + 1 }, guests(i + 1))));
  }
  el.date.max = addDays(todayIn(doc.timezone, clock.now()), doc.booking_horizon_days ?? 60);
  if (state.party > top) {
    // The party no longer fits anywhere: show the largest that does.
    state.party = top;
    el.party.value = String(top);
    resubscribe();
    return;
  }
  el.party.value = String(state.party);
  renderSlots();
}

function resubscribe() {
  live.unsubscribe(state.sub);
  state.sub = null;
  state.slots = new Map();
  state.version = -1;
  state.synced = false;
  state.loadError = "";
  clearAlternatives();
  if (!state.restaurant || !isDate(state.date)) return renderSlots();
  writeUrl();
  state.sub = live.subscribe(
    { restaurant_id: state.restaurant.id, date: state.date, party_size: state.party },
    onFrame,
  );
  renderSlots();
}

el.restaurant.addEventListener("change", () => {
  say(el.status, "");
  if (el.restaurant.value) chooseRestaurant(el.restaurant.value);
});
el.date.addEventListener("change", () => {
  if (!isDate(el.date.value)) return;
  state.date = el.date.value;
  say(el.status, "");
  resubscribe();
});
el.party.addEventListener("change", () => {
  state.party = Number(el.party.value);
  say(el.status, "");
  resubscribe();
});
el.picker.addEventListener("submit", (e) => e.preventDefault());

// ---------- live availability ----------

function onFrame(frame) {
  if (frame.type === "snapshot") {
    // A later snapshot comes after a settings or table change, or a reconnect: the
    // restaurant's document (party sizes, horizon, hold length) may have changed too.
    if (state.version >= 0) refreshRestaurant();
    state.version = frame.version;
    state.slots = new Map((frame.data.slots || []).map((s) => [s.time, s]));
    state.synced = true;
    state.loadError = "";
    renderSlots();
    patchAlternatives();
    refreshBookingSoon();
    waitlist.availabilityChanged();
  } else if (frame.type === "update") {
    if (frame.version <= state.version) return;
    state.version = frame.version;
    const changed = [];
    for (const s of frame.slots || []) {
      const before = state.slots.get(s.time);
      state.slots.set(s.time, s);
      if (!before || before.available_tables !== s.available_tables) changed.push(s.time);
    }
    patchSlots(changed);
    refreshBookingSoon();
    waitlist.availabilityChanged();
  } else if (frame.type === "error") {
    state.synced = true;
    state.loadError = frame.detail || frame.title;
    state.slots = new Map();
    renderSlots();
  }
}

function visibleSlots() {
  const now = clock.now();
  return [...state.slots.values()]
    .filter((s) => Date.parse(s.start) > now)
    .sort((a, b) => a.start.localeCompare(b.start));
}

function renderSlots() {
  const focused = document.activeElement?.dataset?.time;
  const focusedKind = document.activeElement?.dataset?.testid;
  const r = state.restaurant;
  el.slots.classList.toggle("stale", live.state !== "live");
  el.slots.setAttribute("aria-busy", String(!state.synced));
  if (r) {
    el.browseSub.textContent = `${r.name} · ${longDate(state.date)} · ${guests(state.party)}`;
  }
  if (!state.synced) {
    el.slots.replaceChildren(h("div", { class: "skeleton", "aria-hidden": "true" },
      Array.from({ length: 12 }, () => h("span"))));
    return;
  }
  const slots = visibleSlots();
  if (!slots.length) {
    const why = state.loadError
      ? `No times can be booked: ${state.loadError}.`
      : `No tables for ${guests(state.party)} on ${longDate(state.date)}. Try another date or party size.`;
    el.slots.replaceChildren(h("p", { class: "empty" }, why));
    return;
  }
  const groups = new Map();
  for (const s of slots) {
    const meal = mealOf(s.time);
    if (!groups.has(meal)) groups.set(meal, []);
    groups.get(meal).push(s);
  }
  el.slots.replaceChildren(...[...groups].map(([meal, list]) => {
    const id = `meal-${meal.toLowerCase()}`;
    const free = list.filter((s) => s.available_tables > 0).length;
    return h("div", { class: "meal", role: "group", "aria-labelledby": id },
      h("h3", { id }, meal, h("span", { class: "meal-count" }, ` ${free} of ${list.length} free`)),
      h("div", { class: "slot-grid" }, list.map((x) => slotCell(x, { hold: takeHold, notify: (t) => waitlist.open(t) }))));
  }));
  if (focused) el.slots.querySelector(`[data-testid="${focusedKind}"][data-time="${focused}"]`)?.focus();
}

/**
 * The alternatives a lost race offered follow the live availability too: a time taken since
 * says so and cannot be tapped (an enabled button for a taken time only led to another loss).
 */
function patchAlternatives() {
  for (const btn of el.alternatives.querySelectorAll("[data-testid=alternative]")) {
    const s = state.slots.get(btn.dataset.time);
    if (!s) continue;
    const taken = s.available_tables === 0;
    // A focused time that goes hands the focus on, as the grid's own times do.
    const handOn = taken && document.activeElement === btn;
    btn.disabled = taken;
    btn.querySelector(".slot-note").textContent = slotNote(s.available_tables);
    if (handOn) el.alternatives.querySelector("[data-testid=alt-notify]")?.focus();
  }
}

function patchSlots(times) {
  patchAlternatives();
  for (const time of times) {
    const btn = el.slots.querySelector(`[data-testid=slot][data-time="${time}"]`);
    const s = state.slots.get(time);
    if (!btn || !s) return renderSlots();
    paintSlot(btn, s);
    btn.classList.remove("flash");
    void btn.offsetWidth; // restart the animation
    btn.classList.add("flash");
  }
  if (times.length) {
    for (const g of el.slots.querySelectorAll(".meal")) {
      const all = g.querySelectorAll("[data-testid=slot]");
      const free = [...all].filter((b) => b.dataset.available !== "0").length;
      g.querySelector(".meal-count").textContent = ` ${free} of ${all.length} free`;
    }
  }
}

// Starts that pass drop out, as the server's own availability drops them (from the waitlist's
// free-now notices too).
setInterval(() => {
  if (state.synced && [...el.slots.querySelectorAll("[data-testid=slot]")].some((b) => {
    const s = state.slots.get(b.dataset.time);
    return !s || Date.parse(s.start) <= clock.now();
  })) renderSlots();
  waitlist.availabilityChanged();
}, 10000);

live.addEventListener("state", (ev) => {
  el.slots.classList.toggle("stale", ev.detail.state !== "live");
  if (ev.detail.state === "live" && state.booking) refreshBookingSoon();
});

// ---------- holds ----------

function clearAlternatives() {
  el.alternatives.hidden = true;
  el.alternatives.replaceChildren();
}

function showAlternatives(time, alternatives) {
  clearAlternatives();
  el.alternatives.hidden = false;
  if (alternatives.length) el.alternatives.append(
    h("p", { class: "alt-title", id: "alt-title" }, "Nearby times, one tap to hold:"),
    h("div", { class: "alt-list", role: "group", "aria-labelledby": "alt-title" }, alternatives.map((a) => {
      // A live frame may have come before the answer that named them: the page's view wins.
      const n = state.slots.get(a.time)?.available_tables ?? a.available_tables;
      return h("button", {
        type: "button", class: "slot alt", dataset: { testid: "alternative", time: a.time },
        "aria-label": `Hold ${a.time} instead`, onclick: () => takeHold(a.time), disabled: n === 0,
      }, h("span", { class: "slot-time" }, a.time), h("span", { class: "slot-note" }, slotNote(n)));
    })),
  );
  el.alternatives.append(h("button", {
    type: "button", class: "btn btn-small btn-ghost alt-notify", dataset: { testid: "alt-notify", time },
    onclick: () => waitlist.open(time),
  }, `Notify me if ${time} frees up`));
}

async function takeHold(time) {
  if (state.pending || !state.restaurant || state.stage !== "browse") return;
  state.pending = time;
  const buttons = [...document.querySelectorAll(`.slot[data-time="${time}"]`)];
  buttons.forEach((b) => { b.classList.add("pending"); b.setAttribute("aria-busy", "true"); });
  say(el.status, `Holding ${time}…`);
  const r = state.restaurant;
  // The same key for the same hold asked again soon after no answer (a network failure, or a
  // 5xx that does not say what happened): if the first request did reach the server, the retry
  // gets its answer (the hold it made) instead of a second hold. Any other answer ends the key's
  // use, and so does time: a hold asked again later is a new one (a replay of an old answer
  // would hand back a hold that has since expired).
  const ask = { restaurant: r.id, date: state.date, time, party_size: state.party };
  if (state.holdKey && Date.now() - state.holdKey.at > HOLD_RETRY_MS) state.holdKey = null;
  state.holdKey = { at: Date.now(), ...keyFor(state.holdKey, ask) };
  try {
    const { body, sent, received, replayed } = await api("POST", `/v1/restaurants/${r.id}/holds`, {
      body: { date: state.date, time, party_size: state.party }, key: state.holdKey.key,
    });
    state.holdKey = null;
    if (!replayed) clock.observe(Date.parse(body.created_at), sent, received, 0);
    if (Date.parse(body.expires_at) <= clock.now()) {
      // The first request's hold, handed back, already over: the time is free to ask again.
      say(el.status, `Your hold on ${time} expired before it reached you. Pick a time again.`, "warn");
      return;
    }
    clearAlternatives();
    state.booking = {
      id: body.id, token: body.token, rid: r.id, r: body, restaurantName: r.name,
      tz: r.timezone, confirmKey: null,
    };
    saveBooking();
    showHold();
    say(el.status, `${time} is yours for ${countdown(Date.parse(body.expires_at) - clock.now())}. Add your details to confirm.`, "success");
  } catch (e) {
    if (!(e instanceof Problem)) throw e;
    if (spendsKey(e)) state.holdKey = null;
    if (e.name === "slot-unavailable") {
      const alts = e.body.alternatives || [];
      const next = alts.length
        ? ` Nearby: ${alts.map((a) => a.time).join(", ")}.`
        : ` Nothing else is free for ${guests(state.party)} that day.`;
      // Pacing: tables are free, but the kitchen takes no more parties starting then.
      const why = e.body.reason === "pacing"
        ? `The kitchen is full at ${time}: the restaurant takes no more bookings starting then.`
        : `${time} was just taken.`;
      say(el.status, `${why}${next}`, "warn");
      showAlternatives(time, alts);
    } else {
      say(el.status, `Could not hold ${time}: ${e.describe()}`, "error");
    }
  } finally {
    state.pending = null;
    buttons.forEach((b) => { b.classList.remove("pending"); b.removeAttribute("aria-busy"); });
  }
}

function saveBooking() {
  const b = state.booking;
  if (b) sessionStorage.setItem(STORE_KEY, JSON.stringify({ id: b.id, token: b.token, rid: b.rid }));
  else sessionStorage.removeItem(STORE_KEY);
}

function setStage(stage) {
  state.stage = stage;
  for (const section of document.querySelectorAll("[data-stage]")) section.hidden = section.dataset.stage !== stage;
  if (stage !== "browse") clearAlternatives();
  for (const c of el.picker.elements) c.disabled = stage !== "browse";
  if (stage !== "hold") stopCountdown();
  if (stage === "browse") renderSlots();
}

function describeBooking(r, name) {
  return `${name} · ${longDate(r.date)} at ${r.time} · ${guests(r.party_size)}`;
}

function showHold() {
  const b = state.booking;
  setStage("hold");
  el.holdTitle.textContent = `${b.r.time} is held for you`;
  el.holdMeta.textContent = describeBooking(b.r, b.restaurantName);
  clearErrors(el.form, [el.name, el.email, el.phone]);
  state.warnedMinute = false;
  startCountdown();
  el.name.focus();
}

let timer = null;
function startCountdown() {
  stopCountdown();
  const tick = () => {
    const b = state.booking;
    if (!b || !b.r.expires_at) return stopCountdown();
    const left = Date.parse(b.r.expires_at) - clock.now();
    el.countdown.textContent = countdown(left);
    el.progress.style.width = `${Math.max(0, Math.min(100, (left / holdSpan(b.r)) * 100))}%`;
    el.hold.classList.toggle("urgent", left <= 60000);
    if (left <= 60000 && left > 0 && !state.warnedMinute) {
      state.warnedMinute = true;
      say(el.status, `Less than a minute left to confirm ${b.r.time}.`, "warn");
    }
    if (left <= 0) {
      // Over by the clock: ask the server how (expired, released by the restaurant first, or
      // confirmed by a confirm whose answer is still on its way). Still held there with time
      // left by its answer's clock (this device's clock had moved): count on. Still held
      // otherwise, or no answer: it ended by the clock.
      stopCountdown();
      refreshBooking().catch(() => {}).finally(() => {
        if (state.booking !== b || b.r.status !== "held") return;
        if (Date.parse(b.r.expires_at) > clock.now()) startCountdown();
        else holdEnded();
      });
    }
  };
  tick();
  timer = setInterval(tick, 250);
}

function stopCountdown() {
  clearInterval(timer);
  timer = null;
}

/** The hold is over without the diner letting it go: it `expired`, or the restaurant `released` it. */
function holdEnded(how = "expired") {
  const time = state.booking?.r.time;
  state.booking = null;
  saveBooking();
  setStage("browse");
  say(el.status, how === "released"
    ? `The restaurant released your hold on ${time}, so the table is no longer held for you. Pick a time again.`
    : `Your hold on ${time} expired, so the table went back to others. Pick a time again.`, "warn");
  el.browseTitle.focus();
}

// Confirm and "Let it go" each answer the hold: while one is on its way, neither can be sent
// (a release sent behind a confirm undid the booking the page then showed as made).
let answering = false;
function setAnswering(on, button) {
  answering = on;
  el.confirm.disabled = on;
  el.release.disabled = on;
  button.classList.toggle("pending", on);
}

el.release.addEventListener("click", async () => {
  const b = state.booking;
  if (!b || answering) return;
  setAnswering(true, el.release);
  try {
    await api("DELETE", `/v1/reservations/${b.id}`, { token: b.token });
    state.booking = null;
    saveBooking();
    setStage("browse");
    say(el.status, `You let ${b.r.time} go.`);
    el.browseTitle.focus();
  } catch (e) {
    say(el.status, `Could not release the hold: ${e.describe()}`, "error");
  } finally {
    setAnswering(false, el.release);
  }
});

// ---------- confirm ----------

const guestInputs = { name: el.name, email: el.email, phone: el.phone };
const validate = () => readGuest(el.form, guestInputs);

el.form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const b = state.booking;
  if (!b || answering) return;
  const guest = validate();
  if (!guest) {
    say(el.status, "Please check the highlighted fields.", "error");
    return;
  }
  setAnswering(true, el.confirm);
  say(el.status, `Confirming ${b.r.time}…`);
  try {
    const request = { guest };
    b.confirmKey = keyFor(b.confirmKey, request);
    const { body } = await api("POST", `/v1/reservations/${b.id}/confirm`, {
      token: b.token, body: request, key: b.confirmKey.key,
    });
    b.r = body;
    // Booked, even if the page meanwhile took the hold for over (its clock ran ahead, or the
    // answer was slow): the server's answer is what is true.
    if (state.booking !== b) {
      stopCountdown();
      state.booking = b;
      saveBooking();
    }
    showDone();
    say(el.status, `Booked: ${longDate(body.date)} at ${body.time} for ${guests(body.party_size)}.`, "success");
  } catch (e) {
    if (e.name === "hold-expired") return holdEnded();
    if (e.name === "validation" && showServerErrors(e, guestInputs)) {
      el.form.querySelector("[aria-invalid=true]")?.focus();
    }
    say(el.status, `Could not confirm: ${e.describe()}`, "error");
    if (e.status === 409 || e.status === 404) refreshBookingSoon();
  } finally {
    setAnswering(false, el.confirm);
  }
});

// ---------- confirmation ----------

function showDone() {
  const b = state.booking;
  const r = b.r;
  setStage("done");
  const cancelled = r.status === "cancelled" || r.status === "no_show";
  el.done.dataset.status = r.status;
  el.done.classList.toggle("is-cancelled", cancelled);
  el.doneTitle.textContent = {
    confirmed: "You're booked", seated: "Enjoy your meal", completed: "Thanks for coming",
    cancelled: "Reservation cancelled", no_show: "Marked as a no-show",
  }[r.status] || STATUS_LABEL[r.status] || r.status;
  const rows = [
    ["Restaurant", b.restaurantName], ["Date", longDate(r.date)], ["Time", r.time],
    ["Guests", guests(r.party_size)],
    tableRow(r, state.restaurant?.tables),
    ["Name", r.guest?.name], ["Contact", r.guest?.email || r.guest?.phone],
    ["Status", STATUS_LABEL[r.status] || r.status], ["Reference", reference(r.id)],
  ].filter(([, v]) => v);
  el.ticket.replaceChildren(...rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", { dataset: { field: k.toLowerCase() } }, v)]));
  paintCancel(r);
  renderLinks($("#links"), { id: r.id, token: b.token, status: r.status },
    (e) => say(el.status, `Could not get the calendar file: ${e.describe()}`, "error"));
  resetCancel();
  el.doneTitle.focus();
}

/**
 * Cancel is offered for a confirmed booking until its end: one that is over is the
 * restaurant's to record (seated, a no-show), not the diner's to cancel.
 */
function paintCancel(r) {
  const hide = r.status !== "confirmed" || isOver(r);
  if (hide && !el.cancel.hidden) resetCancel();
  el.cancel.hidden = hide;
}

let cancelArmed = null;
function resetCancel() {
  clearTimeout(cancelArmed);
  cancelArmed = null;
  el.cancel.textContent = "Cancel reservation";
  el.cancel.classList.remove("armed");
}

el.cancel.addEventListener("click", async () => {
  const b = state.booking;
  if (!b) return;
  if (!cancelArmed) {
    el.cancel.textContent = "Yes, cancel it";
    el.cancel.classList.add("armed");
    say(el.status, "Press again to cancel your reservation.");
    cancelArmed = setTimeout(resetCancel, 6000);
    return;
  }
  resetCancel();
  el.cancel.disabled = true;
  try {
    await api("DELETE", `/v1/reservations/${b.id}`, { token: b.token });
    await refreshBooking();
    say(el.status, `Your reservation at ${b.r.time} is cancelled.`, "success");
  } catch (e) {
    say(el.status, `Could not cancel: ${e.describe()}`, "error");
  } finally {
    el.cancel.disabled = false;
  }
});

el.again.addEventListener("click", () => {
  state.booking = null;
  saveBooking();
  setStage("browse");
  say(el.status, "");
  el.browseTitle.focus();
});

// ---------- keeping the booking true to the server ----------

let refreshTimer = null;
function refreshBookingSoon() {
  if (!state.booking || refreshTimer) return;
  refreshTimer = setTimeout(() => { refreshTimer = null; refreshBooking().catch(() => {}); }, 250);
}

// A change to the diner's own booking reaches the page with the availability frame it causes;
// one that moves no count sends none (the restaurant releases or cancels it and the freed table
// goes straight to a waitlist offer). So the booking shown is read again every 15 s while the
// page is in view, and when it comes back into view.
// The browser tests shorten it with a script run before the page's own; no page sets it.
const BOOKING_RECHECK_MS = globalThis.tablecastBookingRecheckMs || 15000;
setInterval(() => { if (!document.hidden) refreshBookingSoon(); }, BOOKING_RECHECK_MS);
document.addEventListener("visibilitychange", () => { if (!document.hidden) refreshBookingSoon(); });

async function refreshBooking() {
  const b = state.booking;
  if (!b) return;
  let r;
  try {
    ({ body: r } = await api("GET", `/v1/reservations/${b.id}`, { token: b.token }));
  } catch (e) {
    if (e.status === 401 || e.status === 403 || e.status === 404) {
      state.booking = null;
      saveBooking();
      setStage("browse");
      say(el.status, "That reservation is no longer available.", "warn");
    }
    return;
  }
  if (state.booking !== b) return;
  const before = b.r;
  // An answer older than what the page has (a confirm's answer came meanwhile) is dropped.
  if (before && Date.parse(r.updated_at) < Date.parse(before.updated_at)) return;
  b.r = r;
  if (r.status === "held") {
    if (state.stage !== "hold") showHold();
  } else if (r.status === "expired" || r.status === "released") {
    if (state.stage === "hold") holdEnded(r.status);
    else { state.booking = null; saveBooking(); setStage("browse"); }
  } else if (state.stage === "done") {
    // Unchanged: the page stays as it is (a re-render would move the focus and disarm Cancel),
    // but for Cancel once the booking's end has come.
    if (before && before.status === r.status && before.updated_at === r.updated_at) return paintCancel(r);
    const was = el.done.dataset.status;
    showDone();
    if (was !== r.status && r.status === "cancelled") say(el.status, "This reservation has been cancelled.", "warn");
  } else {
    showDone();
  }
}

async function restoreBooking() {
  let saved;
  try { saved = JSON.parse(sessionStorage.getItem(STORE_KEY) || "null"); } catch { saved = null; }
  if (!saved?.id || !saved?.token) return;
  const doc = state.restaurant?.id === saved.rid ? state.restaurant
    : state.restaurants.find((x) => x.id === saved.rid);
  state.booking = {
    id: saved.id, token: saved.token, rid: saved.rid, r: null, restaurantName: doc?.name || "",
    tz: doc?.timezone || "UTC", confirmKey: null,
  };
  await refreshBooking();
}

// ---------- the waitlist ----------

const waitlist = dinerWaitlist({
  live,
  restaurant: () => state.restaurant,
  restaurantName: (rid) => (state.restaurant?.id === rid ? state.restaurant.name : state.restaurants.find((x) => x.id === rid)?.name || ""),
  date: () => state.date,
  party: () => state.party,
  times: () => visibleSlots().map((s) => s.time),
  free: () => visibleSlots().filter((s) => s.available_tables > 0).map((s) => s.time),
  hold: (time) => takeHold(time),
  setStage: (stage) => { if (state.stage !== stage) setStage(stage); },
  browse: () => { setStage("browse"); el.browseTitle.focus(); },
  booked: (r, token, restaurantName) => {
    const doc = state.restaurant?.id === r.restaurant_id ? state.restaurant : null;
    state.booking = {
      id: r.id, token, rid: r.restaurant_id, r, restaurantName, tz: doc?.timezone || "UTC",
      confirmKey: null,
    };
    saveBooking();
    showDone();
  },
});

// ---------- start ----------

async function start() {
  const q = new URLSearchParams(location.search);
  setStage("browse");
  await loadRestaurants();
  const rid = q.get("restaurant") || state.restaurants[0]?.id;
  if (rid) {
    const ok = await chooseRestaurant(rid, { date: q.get("date"), party: q.get("party") });
    if (!ok && state.restaurants[0] && state.restaurants[0].id !== rid) await chooseRestaurant(state.restaurants[0].id);
  } else {
    state.synced = true;
    renderSlots();
  }
  if (!(await waitlist.restore())) await restoreBooking();
}

start();
