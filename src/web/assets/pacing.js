// The staff floor's pacing meter: one cell per pacing window along the timeline, filled by the
// window's covers and parties against the restaurant's limits, live from the floor view.
import { h } from "./ui.js";

const DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

export function minutesOf(hhmm) {
  const [hh, mm] = hhmm.split(":").map(Number);
  return hh * 60 + mm;
}

export const hhmm = (m) => `${String(Math.floor(m / 60) % 24).padStart(2, "0")}:${String(m % 60).padStart(2, "0")}`;

/** "12 covers · 4 parties per 15 min" for a restaurant's `pacing` (null: no pacing). */
export function pacingSummary(p) {
  if (!p) return "No pacing";
  const limits = [
    p.max_covers != null ? `${p.max_covers} covers` : null,
    p.max_parties != null ? `${p.max_parties} ${p.max_parties === 1 ? "party" : "parties"}` : null,
  ].filter(Boolean);
  return limits.length ? `${limits.join(" · ")} per ${p.window_minutes} min` : `Counted per ${p.window_minutes} min, no limit`;
}

/** The windows (start minute) of the opening hours of `date`, every `w` minutes. */
function openWindows(restaurant, date, w) {
  const [y, m, d] = date.split("-").map(Number);
  const weekday = DAYS[new Date(Date.UTC(y, m - 1, d)).getUTCDay()];
  const out = new Set();
  for (const p of restaurant.hours || []) {
    if (!p.days.includes(weekday)) continue;
    const open = minutesOf(p.open);
    const close = minutesOf(p.close);
    for (let t = Math.floor(open / w) * w; t < close; t += w) out.add(t);
  }
  return out;
}

/** How full a window is, 0–1: the fuller of its two limits. */
function fill(c) {
  const parts = [];
  if (c.max_covers) parts.push(c.covers / c.max_covers);
  if (c.max_parties) parts.push(c.parties / c.max_parties);
  return parts.length ? Math.min(1, Math.max(...parts)) : 0;
}

function cellLabel(c) {
  const covers = c.max_covers != null ? `${c.covers} of ${c.max_covers} covers` : `${c.covers} covers`;
  const parties = c.max_parties != null ? `${c.parties} of ${c.max_parties} parties` : `${c.parties} ${c.parties === 1 ? "party" : "parties"}`;
  const full = (c.max_covers != null && c.covers >= c.max_covers) || (c.max_parties != null && c.parties >= c.max_parties);
  return `${c.window}: ${covers}, ${parties}${full ? " — full" : ""}`;
}

/**
 * The pacing row of the timeline, or null when the restaurant has no pacing and no window has a
 * count. `counts` is the floor view's `pacing` list; `range` the timeline's [lo, hi) minutes.
 */
export function pacingRow(restaurant, date, counts, range, pct) {
  const p = restaurant?.pacing || null;
  if (!p && !counts.length) return null;
  const w = p?.window_minutes || restaurant?.slot_minutes || 15;
  const byWindow = new Map(counts.map((c) => [minutesOf(c.window), c]));
  const starts = new Set([...openWindows(restaurant, date, w), ...byWindow.keys()]);
  const cells = [...starts].sort((a, b) => a - b).filter((t) => t >= range[0] && t < range[1]).map((t) => {
    const c = byWindow.get(t) || {
      window: hhmm(t), covers: 0, parties: 0, max_covers: p?.max_covers ?? null, max_parties: p?.max_parties ?? null,
    };
    const f = fill(c);
    const tone = f >= 1 ? "full" : f >= 0.75 ? "near" : f > 0 ? "some" : "empty";
    return h("span", {
      class: `pace pace-${tone}`, role: "meter",
      "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": String(Math.round(f * 100)),
      "aria-label": cellLabel(c), title: cellLabel(c),
      dataset: { testid: "pacing-window", window: c.window, covers: String(c.covers), parties: String(c.parties) },
      style: { left: pct(t, range), width: `calc(${pct(Math.min(t + w, range[1]), range)} - ${pct(t, range)})` },
    },
    h("span", { class: "pace-fill", style: { height: `${f * 100}%` } }),
    // An empty window shows only its fill (none); its numbers are in its label and title.
    // Narrow cells drop the parties line, then the limit (container queries in app.css).
    c.parties ? h("span", { class: "pace-text", "aria-hidden": "true" },
      h("span", {}, h("span", { class: "pace-covers" }, c.covers), c.max_covers != null ? h("span", { class: "pace-limit" }, `/${c.max_covers}`) : null),
      h("small", {}, `${c.parties}${c.max_parties != null ? `/${c.max_parties}` : ""} ${c.parties === 1 && c.max_parties == null ? "party" : "parties"}`)) : null);
  });
  return h("div", { class: "row pacing-row", role: "listitem", dataset: { testid: "pacing" }, "aria-label": `Pacing: ${pacingSummary(p)}` },
    h("div", { class: "row-head" },
      h("div", { class: "table-id" },
        h("span", { class: "table-label" }, "Pacing"),
        h("span", { class: "table-meta", title: pacingSummary(p), dataset: { testid: "pacing-summary" } }, pacingSummary(p)))),
    h("div", { class: "track" }, cells));
}
