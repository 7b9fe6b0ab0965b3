// Small DOM and formatting helpers shared by both pages.

/** `h("button", {class: "x", dataset: {testid: "slot"}, onclick}, "text", child)` */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "dataset") {
      for (const [dk, dv] of Object.entries(v)) if (dv !== undefined && dv !== null) el.dataset[dk] = dv;
    }
    else if (k === "style") Object.assign(el.style, v);
    else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export const $ = (sel, root = document) => root.querySelector(sel);

/**
 * Runs `render`, which rebuilds what `container` holds, and gives the focus back to the new
 * element that stands for the one focused before (same `data-testid` and, where present, the
 * same reservation, entry, table or time): a keyboard user keeps their place across live
 * updates. With none such (the action it was is gone), to the first match of `fallback`.
 */
export function keepingFocus(container, render, fallback = null) {
  const a = document.activeElement;
  const was = a && a !== container && container.contains(a) && a.dataset.testid ? a : null;
  render();
  if (!was || was.isConnected) return;
  (successor(was, container) || (fallback && container.querySelector(fallback)))?.focus();
}

/**
 * The element in `root` that stands for `was`, drawn again since: the same `data-testid` and,
 * where present, the same reservation, entry, table or time; of a booking drawn on several rows,
 * its first copy (the others carry `data-copy`).
 */
export function successor(was, root = document) {
  if (!was?.dataset.testid) return null;
  let sel = `[data-testid="${CSS.escape(was.dataset.testid)}"]:not([data-copy])`;
  for (const k of ["reservationId", "entryId", "tableId", "time"]) {
    const v = was.dataset[k];
    if (v) sel += `[data-${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}="${CSS.escape(v)}"]`;
  }
  return root.querySelector(sel);
}

/** Today's date (`YYYY-MM-DD`) in an IANA timezone, at the server's `nowMs`. */
/** One formatter per kind and zone: building one costs far more than formatting with it. */
const formatters = new Map();
function formatter(kind, tz, options) {
  const k = `${kind} ${tz} ${JSON.stringify(options)}`;
  let f = formatters.get(k);
  if (!f) {
    f = new Intl.DateTimeFormat(kind === "date" ? "en-CA" : "en-GB", { timeZone: tz, ...options });
    formatters.set(k, f);
  }
  return f;
}

export function todayIn(tz, nowMs = Date.now()) {
  try {
    return formatter("date", tz, { year: "numeric", month: "2-digit", day: "2-digit" })
      .format(new Date(nowMs));
  } catch {
    return new Date(nowMs).toISOString().slice(0, 10);
  }
}

export function addDays(date, n) {
  const [y, m, d] = date.split("-").map(Number);
  return new Date(Date.UTC(y, m - 1, d + n)).toISOString().slice(0, 10);
}

export function isDate(s) {
  if (typeof s !== "string" || !/^\d{4}-\d{2}-\d{2}$/.test(s)) return false;
  // A date that does not exist (30 February) would be read as another (2 March): not a date.
  const ms = Date.parse(`${s}T00:00:00Z`);
  return !Number.isNaN(ms) && new Date(ms).toISOString().slice(0, 10) === s;
}

/** "Friday 5 December" for a `YYYY-MM-DD`. */
export function longDate(date) {
  const [y, m, d] = date.split("-").map(Number);
  return new Intl.DateTimeFormat("en-GB", { weekday: "long", day: "numeric", month: "long", timeZone: "UTC" })
    .format(new Date(Date.UTC(y, m - 1, d)));
}

export function shortDate(date) {
  const [y, m, d] = date.split("-").map(Number);
  return new Intl.DateTimeFormat("en-GB", { weekday: "short", day: "numeric", month: "short", timeZone: "UTC" })
    .format(new Date(Date.UTC(y, m - 1, d)));
}

/** Local wall time `HH:MM` of an instant in a timezone. */
export function wallTime(iso, tz) {
  try {
    return formatter("time", tz, { hour: "2-digit", minute: "2-digit", hourCycle: "h23" })
      .format(new Date(iso));
  } catch {
    return iso.slice(11, 16);
  }
}

/** `m:ss` for a number of milliseconds (never negative). */
export function countdown(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/** "T3 + T4": a reservation's tables (every member of a combination), by the labels in `tables`. */
export function tablesLabel(r, tables) {
  const labels = new Map((tables || []).map((t) => [t.id, t.label]));
  const ids = r.table_ids?.length ? r.table_ids : [r.table_id];
  return ids.map((id) => labels.get(id) || id).join(" + ");
}

/** The ticket's table row: "Tables" with the joined tables of a combination, else "Table". */
export function tableRow(r, tables) {
  return [r.table_ids?.length > 1 ? "Tables" : "Table", tablesLabel(r, tables)];
}

export const guests = (n) => `${n} ${n === 1 ? "guest" : "guests"}`;

/** Sets the aria-live status line; `tone` is info, success, warn or error. */
export function say(el, text, tone = "info") {
  el.dataset.tone = tone;
  el.textContent = "";
  if (!text) {
    el.classList.remove("shown");
    return;
  }
  el.classList.add("shown");
  // A fresh text node makes screen readers announce a repeat of the same words too.
  el.append(document.createTextNode(text));
}

/**
 * The short reference a diner quotes on the phone, as the confirmation mail prints it: 8 hex
 * digits, upper case, from the random part of the reservation id. A version 7 id begins with
 * its creation time (bookings made in the same minute share those digits), so it is the last
 * 8; a version 4 id, made before, keeps its first 8, the reference its diner was sent.
 */
export function reference(id) {
  const hex = id.replaceAll("-", "");
  return (hex[12] === "7" ? hex.slice(-8) : hex.slice(0, 8)).toUpperCase();
}

export const STATUS_LABEL = {
  held: "Held", confirmed: "Confirmed", seated: "Seated", completed: "Completed",
  no_show: "No-show", cancelled: "Cancelled", released: "Released", expired: "Expired",
};
