// The staff dashboard: sign in with a staff token, then a live timeline of the floor.
import { api, clock, Problem } from "./api.js";
import { Live, bindLiveStatus } from "./live.js";
import { $, h, addDays, countdown, guests, isDate, keepingFocus, longDate, say, successor, tablesLabel, todayIn, wallTime, reference, STATUS_LABEL } from "./ui.js";
import { pacingRow } from "./pacing.js";
import { settingsForm } from "./settings.js";
import { renderQueue } from "./staff-waitlist.js";
import { walkInForm } from "./walkin.js";

const TOKEN_KEY = "tablecast.staff";
const DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
const el = {
  login: $("#login"), loginForm: $("#login-form"), token: $("#staff-token"), loginBtn: $("#staff-login"),
  loginError: $("#login-error"), signout: $("#signout"),
  floor: $("#floor"), floorTitle: $("#floor-title"), floorSub: $("#floor-sub"),
  restaurant: $("#restaurant"), date: $("#date"), prev: $("#prev-day"), next: $("#next-day"), today: $("#today"),
  settings: $("#settings"),
  stats: $("#stats"), status: $("#status"), timeline: $("#timeline"), queue: $("#queue"),
  panel: $("#panel"), panelTitle: $("#panel-title"), panelBody: $("#panel-body"), panelClose: $("#panel-close"),
};

const live = new Live();
bindLiveStatus(live, $("[data-testid=live-status]"), { connectingText: "Connecting…" });

const state = {
  token: "",
  restaurants: [], // those this token may staff
  restaurant: null,
  date: "",
  sub: null,
  version: -1,
  tables: [], // from the floor subscription: [{id, label, min_party, max_party, reservations}]
  pacing: [], // from the floor subscription: [{window, covers, max_covers, parties, max_parties}]
  waitlist: [], // from the floor subscription: the date's entries in queue order
  synced: false,
  notLive: "", // why the day is shown without live updates
  selected: null, // { kind: "reservation", id } | { kind: "walk-in", table } | { kind: "settings" }
  returnFocus: null,
};

const tz = () => state.restaurant?.timezone || "UTC";
const today = () => todayIn(tz(), clock.now());

// ---------- sign-in ----------

async function probe(token, rid, date) {
  try {
    await api("GET", `/v1/restaurants/${rid}/reservations?date=${date}`, { token });
    return { ok: true };
  } catch (e) {
    return { ok: false, problem: e };
  }
}

async function signIn(token, { silent = false } = {}) {
  el.loginBtn.disabled = true;
  el.loginBtn.classList.add("pending");
  el.loginError.textContent = "";
  try {
    const { body } = await api("GET", "/v1/restaurants");
    const all = body.restaurants || [];
    const wanted = new URLSearchParams(location.search).get("restaurant");
    const ok = [];
    // The token's own refusal (401, 403) and any other failure (network, 5xx) are told apart:
    // only a refusal means the token is wrong.
    let refused = null;
    let failed = null;
    const isRefusal = (res) => !res.ok && (res.problem.status === 401 || res.problem.status === 403);
    const note = (res, r) => {
      if (res.ok) ok.push(r);
      else if (isRefusal(res)) refused = refused || res.problem;
      else failed = failed || res.problem;
    };
    // Opened for one restaurant: ask about that one alone, so a staff token is never tried on
    // the others (each would answer 403) before its own floor shows.
    const named = all.find((r) => r.id === wanted);
    if (named) note(await probe(token, named.id, todayIn(named.timezone, clock.now())), named);
    // Otherwise every restaurant, 8 at a time. A staff token is staff of one restaurant: once
    // one answered and another refused, that one is it. The admin token is answered by all.
    // A server that cannot answer (5xx, network) is not asked about every other restaurant.
    const ordered = ok.length || failed || refused?.status === 401 ? [] : all.filter((r) => r.id !== wanted);
    for (let i = 0; i < ordered.length; i += 8) {
      const batch = ordered.slice(i, i + 8);
      const results = await Promise.all(batch.map((r) => probe(token, r.id, todayIn(r.timezone, clock.now()))));
      results.forEach((res, j) => note(res, batch[j]));
      if (refused?.status === 401) break; // an unknown token is unknown everywhere
      if (ok.length && refused) break;
      // A whole batch without an answer about the token (5xx, network): the server is down.
      if (results.every((res) => !res.ok && !isRefusal(res))) break;
    }
    if (!ok.length) {
      const why = failed ? `Could not sign in (${failed.describe()}). Try again in a moment.`
        : refused?.status === 401 ? `${refused.title}: that token is not recognised.`
          : refused ? `${refused.title}: this token is not staff of any restaurant here.`
            : "No restaurants yet.";
      const error = new Error(why);
      error.refused = !failed && !!refused;
      throw error;
    }
    state.token = token;
    state.restaurants = ok;
    sessionStorage.setItem(TOKEN_KEY, token);
    el.token.value = "";
    showFloor(wanted);
  } catch (e) {
    // A saved token is forgotten only when it was refused, not when the server could not say.
    if (silent && e.refused) sessionStorage.removeItem(TOKEN_KEY);
    el.loginError.textContent = e instanceof Problem ? e.describe() : e.message;
    el.token.setAttribute("aria-invalid", "true");
    el.token.focus();
  } finally {
    el.loginBtn.disabled = false;
    el.loginBtn.classList.remove("pending");
  }
}

el.loginForm.addEventListener("submit", (ev) => {
  ev.preventDefault();
  const token = el.token.value.trim();
  if (!token) {
    el.loginError.textContent = "Please enter your staff token.";
    el.token.setAttribute("aria-invalid", "true");
    el.token.focus();
    return;
  }
  el.token.removeAttribute("aria-invalid");
  signIn(token);
});

/** Back to the sign-in form, the token forgotten; `why` (if any) is said under the field. */
function signOut(why = "") {
  sessionStorage.removeItem(TOKEN_KEY);
  live.unsubscribe(state.sub);
  state.sub = null;
  state.token = "";
  closePanel({ refocus: false });
  el.floor.hidden = true;
  el.signout.hidden = true;
  $("[data-testid=live-status]").hidden = true;
  el.login.hidden = false;
  el.loginError.textContent = why;
  history.replaceState(null, "", "/staff");
  el.token.focus();
}

el.signout.addEventListener("click", () => signOut());

function showFloor(wanted) {
  el.login.hidden = true;
  el.floor.hidden = false;
  el.signout.hidden = false;
  $("[data-testid=live-status]").hidden = false;
  el.restaurant.replaceChildren(...state.restaurants.map((r) => h("option", { value: r.id }, r.name)));
  const q = new URLSearchParams(location.search);
  const rid = state.restaurants.some((r) => r.id === wanted) ? wanted : state.restaurants[0].id;
  openRestaurant(rid, q.get("date"));
}

// ---------- restaurant, date, subscription ----------

async function openRestaurant(rid, date) {
  try {
    const { body } = await api("GET", `/v1/restaurants/${rid}`);
    state.restaurant = body;
  } catch (e) {
    say(el.status, `Could not open the restaurant: ${e.describe()}`, "error");
    return;
  }
  el.restaurant.value = rid;
  el.floorTitle.textContent = state.restaurant.name;
  openDate(isDate(date) ? date : today());
}

function openDate(date) {
  state.date = date;
  el.date.value = date;
  const q = new URLSearchParams({ restaurant: state.restaurant.id, date });
  history.replaceState(null, "", `/staff?${q}`);
  live.unsubscribe(state.sub);
  state.sub = null;
  state.tables = [];
  state.pacing = [];
  state.waitlist = [];
  state.version = -1;
  state.synced = false;
  state.notLive = "";
  state.scrolled = false;
  closePanel({ refocus: false });
  render();
  state.sub = live.subscribe(
    { restaurant_id: state.restaurant.id, date, view: "floor", token: state.token },
    onFrame,
  );
}

el.restaurant.addEventListener("change", () => openRestaurant(el.restaurant.value, state.date));
el.date.addEventListener("change", () => isDate(el.date.value) && openDate(el.date.value));
el.prev.addEventListener("click", () => openDate(addDays(state.date, -1)));
el.next.addEventListener("click", () => openDate(addDays(state.date, 1)));
el.today.addEventListener("click", () => openDate(today()));
el.settings.addEventListener("click", (ev) => openSettings(ev.currentTarget));
$("#floor-form").addEventListener("submit", (e) => e.preventDefault());

function onFrame(frame) {
  if (frame.type === "snapshot") {
    const first = !state.synced;
    state.version = frame.version;
    state.tables = frame.data.tables || [];
    state.pacing = frame.data.pacing || [];
    state.waitlist = frame.data.waitlist || [];
    state.synced = true;
    state.notLive = "";
    render();
    // A fresh snapshot may follow a change of settings (combinations, pacing, tables).
    if (!first) refreshRestaurant();
  } else if (frame.type === "update") {
    if (frame.version <= state.version) return;
    state.version = frame.version;
    if (Array.isArray(frame.pacing)) state.pacing = frame.pacing;
    if (Array.isArray(frame.waitlist)) state.waitlist = frame.waitlist;
    const changed = new Map((frame.tables || []).map((t) => [t.id, t]));
    const before = new Map(state.tables.flatMap((t) => t.reservations.map((r) => [r.id, r.status])));
    state.tables = state.tables.map((t) => changed.get(t.id) || t);
    for (const t of changed.values()) if (!state.tables.some((x) => x.id === t.id)) state.tables.push(t);
    state.tables.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const moved = new Set();
    for (const t of changed.values()) {
      for (const r of t.reservations) if (before.get(r.id) !== r.status) moved.add(r.id);
    }
    render(moved);
  } else if (frame.type === "error") {
    // The token no longer opens this floor (unknown now, or not this restaurant's): the
    // dashboard cannot show anything, so it signs out and says why.
    if (frame.status === 401 || frame.status === 403) {
      signOut(`${frame.title}: ${frame.detail || "this token no longer opens this floor"}. Sign in again.`);
      return;
    }
    loadStatic(frame);
  }
}

/** Reads the restaurant document again (its settings), keeping the floor as it is. */
async function refreshRestaurant() {
  const rid = state.restaurant?.id;
  try {
    const { body } = await api("GET", `/v1/restaurants/${rid}`);
    if (state.restaurant?.id !== rid) return;
    state.restaurant = body;
    render();
  } catch {
    // The next snapshot tries again; the floor itself stays live.
  }
}

/** The tables a reservation occupies: all of a combination's, or its one table. */
const tablesOf = (r) => (r.table_ids?.length ? r.table_ids : [r.table_id]);
const isCombined = (r) => tablesOf(r).length > 1;

/** "T3 + T4" for a reservation's tables, by label. */
function tableLabels(r) {
  return tablesLabel(r, state.tables);
}

/** Every reservation on the floor once (a combined one is listed under each of its tables). */
function uniqueReservations() {
  const seen = new Map();
  for (const t of state.tables) for (const r of t.reservations) if (!seen.has(r.id)) seen.set(r.id, r);
  return [...seen.values()];
}

/**
 * A day the live view refuses (a past date): the staff list, not live. Read when the refusal
 * comes (`frame`), and again after each action on it, which no frame reports.
 */
async function loadStatic(frame) {
  const { date } = state;
  const rid = state.restaurant.id;
  try {
    const { body } = await api("GET", `/v1/restaurants/${rid}/reservations?date=${date}`, { token: state.token });
    if (state.date !== date || state.restaurant?.id !== rid) return; // another floor opened meanwhile
    const list = (body.reservations || []).filter((r) => r.status !== "released" && r.status !== "expired");
    state.tables = (state.restaurant.tables || []).map((t) => ({
      ...t, reservations: list.filter((r) => tablesOf(r).includes(t.id)),
    }));
    state.pacing = [];
    state.synced = true;
    if (frame) state.notLive = `Not live: ${frame.detail || frame.title}.`;
    render();
  } catch (e) {
    say(el.status, `Could not load the day: ${e.describe()}`, "error");
  }
}

// ---------- the timeline ----------

function minutesOf(hhmm) {
  const [hh, mm] = hhmm.split(":").map(Number);
  return hh * 60 + mm;
}

/**
 * Where a reservation stands on the day's wall clock, in minutes from its midnight: its start
 * time to its end's wall time in the restaurant's zone (a turn across a DST change is not its
 * length in wall minutes: 01:00 for 90 minutes ends at 03:30 on a spring-forward night).
 */
function spanOf(r) {
  const start = minutesOf(r.time);
  const endsOn = todayIn(tz(), Date.parse(r.end));
  let end = minutesOf(wallTime(r.end, tz()));
  if (endsOn > r.date) end += 24 * 60;
  // A turn ending in the second pass of a repeated hour (autumn) can end before it starts on
  // the wall clock: drawn for its real length instead.
  if (end <= start) end = start + Math.max(1, (Date.parse(r.end) - Date.parse(r.start)) / 60000);
  return [start, Math.min(24 * 60, end)];
}

function dayRange() {
  const [y, m, d] = state.date.split("-").map(Number);
  const weekday = DAYS[new Date(Date.UTC(y, m - 1, d)).getUTCDay()];
  let lo = Infinity;
  let hi = -Infinity;
  for (const p of state.restaurant?.hours || []) {
    if (!p.days.includes(weekday)) continue;
    lo = Math.min(lo, minutesOf(p.open));
    hi = Math.max(hi, minutesOf(p.close));
  }
  for (const t of state.tables) {
    for (const r of t.reservations) {
      const [a, b] = spanOf(r);
      lo = Math.min(lo, a);
      hi = Math.max(hi, b);
    }
  }
  if (!Number.isFinite(lo)) [lo, hi] = [11 * 60, 23 * 60];
  lo = Math.max(0, Math.floor(lo / 60) * 60);
  hi = Math.min(24 * 60, Math.max(lo + 60, Math.ceil(hi / 60) * 60));
  return [lo, hi];
}

const pct = (x, [lo, hi]) => `${((x - lo) / (hi - lo)) * 100}%`;
const hhmm = (m) => `${String(Math.floor(m / 60) % 24).padStart(2, "0")}:${String(m % 60).padStart(2, "0")}`;
/** A reservation's end as the restaurant's clock reads it (in a repeated autumn hour the block
 * is drawn for its real length, but the time said is the clock's). */
const endsAt = (r) => wallTime(r.end, tz());
const ACTIVE = new Set(["held", "confirmed", "seated"]);

/** The waitlist entry a held reservation is offered to, if it is an offer. */
const offerTo = (r) => r.status === "held" && state.waitlist.find((e) => e.status === "offered" && e.offer?.reservation_id === r.id);
const offerName = (r) => offerTo(r) && `Offer: ${offerTo(r).guest?.name || "waitlist"}`;

function blockLabel(t, r) {
  const [a, b] = spanOf(r);
  const who = r.guest?.name || offerName(r) || (r.status === "held" ? "hold" : "guest");
  const where = isCombined(r) ? `${tableLabels(r)} combined` : t.label;
  return `${where}, ${hhmm(a)} to ${endsAt(r)}, ${who}, ${guests(r.party_size)}, ${STATUS_LABEL[r.status] || r.status}`;
}

/**
 * One reservation on one table's row. A combined reservation is drawn on each of its tables'
 * rows as one booking: the same block, marked with the joined tables, joined to the rows next
 * to it that it also spans, highlighted together; only the first table's copy is focusable and
 * read out, so lists and screen readers count it once.
 */
function block(t, r, range, fresh, join = {}) {
  const [a, b] = spanOf(r);
  const name = r.guest?.name || offerName(r) || (r.status === "held" ? "Holding…" : "Walk-in");
  const combined = isCombined(r);
  const copy = combined && tablesOf(r)[0] !== t.id;
  const btn = h("button", {
    type: "button",
    class: `block s-${r.status}${ACTIVE.has(r.status) ? "" : " inactive"}${fresh ? " flash" : ""}${state.selected?.id === r.id ? " selected" : ""}${combined ? " combined" : ""}${join.up ? " join-up" : ""}${join.down ? " join-down" : ""}`,
    dataset: {
      testid: "reservation", reservationId: r.id, status: r.status, tableId: t.id,
      combinationId: r.combination_id || undefined, copy: copy ? "true" : undefined,
    },
    "aria-label": blockLabel(t, r),
    "aria-hidden": copy ? "true" : undefined,
    tabindex: copy ? "-1" : undefined,
    style: { left: pct(a, range), width: `calc(${pct(b, range)} - ${pct(a, range)})` },
    onclick: (ev) => openReservation(r.id, ev.currentTarget),
    onmouseenter: combined ? () => linkCopies(r.id, true) : undefined,
    onmouseleave: combined ? () => linkCopies(r.id, false) : undefined,
  },
  h("span", { class: "block-line" },
    h("span", { class: "block-time" }, r.time),
    h("span", { class: "block-party", "aria-hidden": "true" }, `×${r.party_size}`),
    combined ? h("span", { class: "block-combo", dataset: { testid: "combined-marker" }, title: `One booking across ${tableLabels(r)}` },
      tableLabels(r)) : null,
    r.status === "held" ? h("span", { class: "block-countdown", dataset: { expires: r.expires_at } }, countdown(Date.parse(r.expires_at) - clock.now())) : null),
  h("span", { class: "block-name" }, name));
  return btn;
}

/** Highlights every row's copy of a combined reservation together. */
function linkCopies(id, on) {
  for (const b of el.timeline.querySelectorAll(`[data-testid=reservation][data-reservation-id="${id}"]`)) b.classList.toggle("linked", on);
}

function render(moved = new Set()) {
  // The timeline is drawn anew below: what had the focus in it hands it on (`successor`).
  const focused = el.timeline.contains(document.activeElement) ? document.activeElement : null;
  const r = state.restaurant;
  const range = dayRange();
  const hours = (range[1] - range[0]) / 60;
  el.timeline.style.setProperty("--hours", String(hours));
  el.timeline.classList.toggle("stale", live.state !== "live" && !state.notLive);
  el.timeline.setAttribute("aria-busy", String(!state.synced));
  el.floorSub.textContent = r ? `${longDate(state.date)} · ${r.timezone}${state.notLive ? ` · ${state.notLive}` : ""}` : "";

  const axis = h("div", { class: "axis", "aria-hidden": "true" },
    h("div", { class: "row-head" }),
    h("div", { class: "track" }, Array.from({ length: hours + 1 }, (_, i) =>
      h("span", { class: "tick", style: { left: pct(range[0] + i * 60, range) } }, hhmm(range[0] + i * 60)))));

  const areas = new Map((r?.tables || []).map((t) => [t.id, t.area]));
  const on = state.tables.map((t) => new Set(t.reservations.map((x) => x.id)));
  const rows = state.tables.map((t, i) => {
    const list = [...t.reservations].sort((x, y) => Number(ACTIVE.has(x.status)) - Number(ACTIVE.has(y.status)));
    const join = (x) => (isCombined(x) ? { up: !!on[i - 1]?.has(x.id), down: !!on[i + 1]?.has(x.id) } : {});
    return h("div", { class: "row", role: "listitem", dataset: { testid: "table", tableId: t.id }, "aria-label": `Table ${t.label}` },
      h("div", { class: "row-head" },
        h("div", { class: "table-id" },
          h("span", { class: "table-label" }, t.label),
          h("span", { class: "table-meta" }, `${t.min_party === t.max_party ? t.max_party : `${t.min_party}–${t.max_party}`}${areas.get(t.id) ? ` · ${areas.get(t.id)}` : " seats"}`)),
        h("button", {
          type: "button", class: "btn btn-tiny walk-in", dataset: { testid: "walk-in", tableId: t.id },
          "aria-label": `Seat a walk-in at ${t.label}`, title: `Seat a walk-in at ${t.label}`,
          onclick: (ev) => openWalkIn(t.id, ev.currentTarget),
        }, h("span", { "aria-hidden": "true" }, "+"), h("span", { class: "walk-in-text", "aria-hidden": "true" }, "Walk-in"))),
      h("div", { class: "track" }, list.map((x) => block(t, x, range, moved.has(x.id), join(x)))));
  });
  // A day shown without the live view has no pacing counts or waitlist to show.
  const pacing = state.synced && !state.notLive ? pacingRow(r, state.date, state.pacing, range, pct) : null;

  const nowLine = [];
  if (state.date === today()) {
    const now = minutesOf(wallTime(new Date(clock.now()).toISOString(), tz()));
    if (now >= range[0] && now <= range[1]) {
      nowLine.push(h("div", { class: "now-layer", "aria-hidden": "true" },
        h("div", { class: "row-head" }), h("div", { class: "track" }, h("span", { class: "now", style: { left: pct(now, range) } }))));
    }
  }

  if (!state.synced) {
    el.timeline.replaceChildren(axis, h("div", { class: "skeleton rows", "aria-hidden": "true" }, Array.from({ length: 5 }, () => h("span"))));
  } else if (!rows.length) {
    el.timeline.replaceChildren(axis, h("p", { class: "empty" }, "This restaurant has no tables yet."));
  } else {
    el.timeline.replaceChildren(axis, ...(pacing ? [pacing] : []), ...rows, ...nowLine);
  }
  renderStats();
  el.queue.hidden = !state.synced || !!state.notLive;
  keepingFocus(el.queue, () => renderQueue(el.queue, { entries: state.waitlist, tables: state.tables, tz: tz(), onOpen: openReservation }));
  keepingFocus(el.panelBody, renderPanel, "button");
  if (state.synced && !state.scrolled) {
    state.scrolled = true;
    scrollToNow(range);
  }
  if (focused && !focused.isConnected) successor(focused, el.timeline)?.focus();
}

/** Brings the current time (or the day's first booking) into view once per day opened. */
function scrollToNow(range) {
  const wrap = el.timeline.parentElement;
  if (wrap.scrollWidth <= wrap.clientWidth) return;
  const starts = uniqueReservations().map((r) => spanOf(r)[0]);
  const focus = state.date === today()
    ? minutesOf(wallTime(new Date(clock.now()).toISOString(), tz()))
    : starts.length ? Math.min(...starts) : range[0];
  const labelW = el.timeline.querySelector(".row-head")?.offsetWidth || 0;
  const track = el.timeline.offsetWidth - labelW;
  const x = ((focus - range[0]) / (range[1] - range[0])) * track;
  wrap.scrollLeft = Math.max(0, x - (wrap.clientWidth - labelW) / 4);
}

function renderStats() {
  const all = uniqueReservations();
  const count = (s) => all.filter((r) => r.status === s).length;
  const covers = all.filter((r) => ACTIVE.has(r.status) || r.status === "completed").reduce((n, r) => n + r.party_size, 0);
  const items = [
    ["Covers", covers], ["Held", count("held")], ["Confirmed", count("confirmed")],
    ["Seated", count("seated")], ["Completed", count("completed")], ["No-shows", count("no_show")],
  ];
  el.stats.replaceChildren(...items.map(([k, v]) => h("div", { class: `stat stat-${k.toLowerCase()}` }, h("span", { class: "stat-value" }, v), h("span", { class: "stat-label" }, k))));
}

// Countdowns on held blocks and the "now" line.
setInterval(() => {
  for (const c of document.querySelectorAll(".block-countdown, .panel-countdown")) {
    const left = Date.parse(c.dataset.expires) - clock.now();
    c.textContent = left > 0 ? countdown(left) : "expiring";
  }
}, 500);
setInterval(() => state.synced && render(), 30000);
live.addEventListener("state", (ev) => {
  el.timeline.classList.toggle("stale", ev.detail.state !== "live" && !state.notLive);
});

// ---------- the side panel: one reservation, or a walk-in ----------

function openSettings(from) {
  state.selected = { kind: "settings" };
  state.returnFocus = from;
  el.panel.hidden = false;
  delete el.panelBody.dataset.walkIn;
  el.panelTitle.textContent = "Combinations and pacing";
  el.panelBody.replaceChildren(settingsForm(state.restaurant, {
    token: state.token,
    report: (text, tone) => say(el.status, text, tone),
    onSaved: (doc) => {
      state.restaurant = doc;
      closePanel();
      render();
    },
  }));
  el.panelTitle.focus();
}

function findReservation(id) {
  for (const t of state.tables) {
    const r = t.reservations.find((x) => x.id === id);
    if (r) return [t, r];
  }
  return [null, null];
}

function openReservation(id, from) {
  state.selected = { kind: "reservation", id };
  const copies = [...el.timeline.querySelectorAll(`[data-testid=reservation][data-reservation-id="${id}"]`)];
  state.returnFocus = from?.dataset.copy ? copies.find((b) => !b.dataset.copy) || from : from;
  el.panel.hidden = false;
  for (const b of el.timeline.querySelectorAll(".block.selected")) b.classList.remove("selected");
  for (const b of copies) b.classList.add("selected");
  renderPanel();
  el.panelTitle.focus();
}

function openWalkIn(tableId, from) {
  state.selected = { kind: "walk-in", table: tableId };
  state.returnFocus = from;
  el.panel.hidden = false;
  renderPanel();
  el.panel.querySelector("select, input")?.focus();
}

/** Closes the panel; `refocus`: back to what opened it (not when the floor is leaving). */
function closePanel({ refocus = true } = {}) {
  const back = state.returnFocus;
  state.selected = null;
  state.returnFocus = null;
  el.panel.hidden = true;
  delete el.panelBody.dataset.walkIn;
  for (const b of el.timeline.querySelectorAll(".block.selected")) b.classList.remove("selected");
  if (!refocus) return;
  // What opened the panel (a block, a queue entry's offer) may have been drawn again since:
  // its successor, then.
  (back?.isConnected ? back : successor(back))?.focus();
}

el.panelClose.addEventListener("click", () => closePanel());
document.addEventListener("keydown", (ev) => {
  if (ev.key === "Escape" && !el.panel.hidden) closePanel();
});

const ACTIONS = {
  held: [["cancel", "Release hold"]],
  confirmed: [["seat", "Seat"], ["no-show", "No-show"], ["cancel", "Cancel"]],
  seated: [["complete", "Complete"]],
};

function renderPanel() {
  const sel = state.selected;
  if (!sel) return;
  if (sel.kind === "settings") return; // the form keeps what staff are typing
  if (sel.kind === "walk-in") {
    if (el.panelBody.dataset.walkIn !== sel.table) renderWalkIn(sel.table);
    return;
  }
  delete el.panelBody.dataset.walkIn;
  const [t, r] = findReservation(sel.id);
  if (!r) {
    el.panelTitle.textContent = "No longer on the floor";
    el.panelBody.replaceChildren(h("p", { class: "muted" }, "This hold was released or expired."));
    return;
  }
  const [a, b] = spanOf(r);
  el.panelTitle.textContent = `${isCombined(r) ? tableLabels(r) : t.label} · ${hhmm(a)}–${endsAt(r)}`;
  const rows = [
    ["Status", h("span", { class: `badge s-${r.status}` }, STATUS_LABEL[r.status] || r.status)],
    isCombined(r) ? ["Tables", `${tableLabels(r)}${r.combination_id ? ` (combination ${r.combination_id})` : ""}`] : null,
    ["Guests", guests(r.party_size)],
    ["Name", r.guest?.name || "—"],
    offerTo(r) ? ["Waitlist", `Offered to ${offerTo(r).guest?.name || "an entry"} (${offerTo(r).from}–${offerTo(r).to})`] : null,
    ["Email", r.guest?.email], ["Phone", r.guest?.phone], ["Notes", r.notes],
    r.status === "held" ? ["Expires in", h("span", { class: "panel-countdown", dataset: { expires: r.expires_at } }, countdown(Date.parse(r.expires_at) - clock.now()))] : null,
    ["Reference", reference(r.id)],
  ].filter((x) => x && x[1]);
  const actions = (ACTIONS[r.status] || []).map(([name, label]) => h("button", {
    type: "button", class: `btn ${name === "cancel" || name === "no-show" ? "btn-danger-ghost" : "btn-primary"}`,
    dataset: { testid: `action-${name}` }, onclick: (ev) => act(name, t, r, ev.currentTarget),
    "aria-disabled": acting.has(r.id) ? "true" : null,
  }, label));
  el.panelBody.replaceChildren(
    h("dl", { class: "ticket compact" }, rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
    actions.length ? h("div", { class: "actions" }, actions)
      : h("p", { class: "muted" }, `No more actions for a ${(STATUS_LABEL[r.status] || r.status).toLowerCase()} reservation.`),
  );
}

const PAST = { seat: "seated", complete: "completed", "no-show": "marked as a no-show", cancel: "cancelled" };

// While an action on a booking is on its way no other is sent for it (others' panels work as
// ever). Its buttons are marked, not disabled: a disabled button loses the keyboard focus (to
// the page), which the redraw could not hand on; a redraw meanwhile marks them again.
const acting = new Set();
const marked = () => el.panelBody.querySelectorAll("[data-testid^=action-]");
async function act(name, t, r, btn) {
  if (acting.has(r.id)) return;
  acting.add(r.id);
  for (const b of marked()) b.setAttribute("aria-disabled", "true");
  btn.classList.add("pending");
  const what = `${isCombined(r) ? tableLabels(r) : t.label} · ${r.time}${r.guest?.name ? ` (${r.guest.name})` : ""}`;
  try {
    if (name === "cancel") {
      await api("DELETE", `/v1/reservations/${r.id}`, { token: state.token });
    } else {
      const status = { seat: "seated", complete: "completed", "no-show": "no_show" }[name];
      await api("PATCH", `/v1/reservations/${r.id}`, { token: state.token, body: { status } });
    }
    const verb = name === "cancel" && r.status === "held" ? "released" : PAST[name];
    say(el.status, `${what} ${verb}.`, "success");
  } catch (e) {
    say(el.status, `${what}: ${e.describe()}`, "error");
  } finally {
    acting.delete(r.id);
    if (state.selected?.id === r.id) for (const b of marked()) b.removeAttribute("aria-disabled");
    btn.classList.remove("pending");
  }
  // A day not live learns of the action (or of why it failed) only by reading the list again.
  if (state.notLive) await loadStatic();
}

function renderWalkIn(tableId) {
  const t = state.tables.find((x) => x.id === tableId);
  if (!t) return closePanel({ refocus: false });
  el.panelTitle.textContent = `Walk-in at ${t.label}`;
  el.panelBody.replaceChildren(walkInForm(t, {
    restaurant: state.restaurant, token: state.token, date: state.date, tableLabels,
    report: (text, tone) => say(el.status, text, tone), done: () => closePanel(),
  }));
  el.panelBody.dataset.walkIn = t.id;
}

// ---------- start ----------

const saved = sessionStorage.getItem(TOKEN_KEY);
if (saved) signIn(saved, { silent: true });
else el.token.focus();
