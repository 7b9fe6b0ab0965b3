// The staff floor's waitlist: the date's queue, live from the floor view's `waitlist` list —
// place in line, party, window, guest, status, and the offer each entry holds (its reservation
// and countdown).
import { clock } from "./api.js";
import { h, countdown, guests, wallTime } from "./ui.js";

const STATUS = { waiting: "Waiting", offered: "Offered", booked: "Booked", lapsed: "Lapsed", left: "Left" };

/** The tables a reservation of the floor sits on, by label ("T3 + T4"), if it is on the floor. */
function tablesOf(tables, reservationId) {
  const labels = tables.filter((t) => t.reservations.some((r) => r.id === reservationId)).map((t) => t.label);
  return labels.join(" + ");
}

function statusCell(e, tables, onOpen) {
  const badge = h("span", { class: `badge w-${e.status}` }, STATUS[e.status] || e.status);
  const o = e.offer;
  if (!o || e.status === "waiting") return h("td", { dataset: { field: "status" } }, badge);
  const where = tablesOf(tables, o.reservation_id);
  const link = h("button", {
    type: "button", class: "linkish", dataset: { testid: "queue-offer", reservationId: o.reservation_id },
    title: "Open the offered reservation",
    onclick: (ev) => onOpen(o.reservation_id, ev.currentTarget),
  }, `${o.time}${where ? ` · ${where}` : ""}`);
  const extra = e.status === "offered"
    ? h("span", { class: "queue-countdown", dataset: { expires: o.expires_at }, role: "timer" },
      countdown(Date.parse(o.expires_at) - clock.now()))
    : null;
  return h("td", { dataset: { field: "status" } }, badge, " ", link, extra ? " " : null, extra);
}

/**
 * Draws the queue into `box`: `entries` in queue order (the floor view's `waitlist`), `tables`
 * the floor (to name an offer's table), `tz` the restaurant's zone, `onOpen(reservationId, from)`
 * opens an offered reservation's panel.
 */
export function renderQueue(box, { entries, tables, tz, onOpen }) {
  const active = entries.filter((e) => e.status === "waiting" || e.status === "offered");
  const waiting = entries.filter((e) => e.status === "waiting").length;
  const offered = entries.filter((e) => e.status === "offered").length;
  const head = h("div", { class: "queue-head" },
    h("h2", { id: "queue-title" }, "Waitlist"),
    h("p", { class: "stage-sub", dataset: { testid: "queue-summary" } },
      entries.length ? `${waiting} waiting · ${offered} offered · ${entries.length - active.length} done` : "Nobody is waiting for this day."));
  if (!entries.length) {
    box.replaceChildren(head);
    return;
  }
  const rows = entries.map((e) => h("tr", {
    class: `queue-entry${active.includes(e) ? "" : " done"}`,
    dataset: { testid: "queue-entry", entryId: e.id, status: e.status },
  },
  h("td", { class: "queue-pos", dataset: { field: "position" } }, e.position ? `#${e.position}` : "—"),
  h("td", { dataset: { field: "party" } }, guests(e.party_size)),
  h("td", { dataset: { field: "window" } }, e.from === e.to ? e.from : `${e.from}–${e.to}`),
  h("td", { dataset: { field: "guest" } },
    h("span", { class: "queue-name" }, e.guest?.name || "—"),
    e.guest?.email || e.guest?.phone ? h("small", { class: "muted" }, ` ${e.guest.email || e.guest.phone}`) : null),
  statusCell(e, tables, onOpen),
  h("td", { class: "muted", dataset: { field: "joined" } }, wallTime(e.created_at, tz))));
  box.replaceChildren(head, h("div", { class: "queue-scroll" }, h("table", { class: "queue", "aria-labelledby": "queue-title" },
    h("thead", {}, h("tr", {}, ["#", "Party", "Window", "Guest", "Status", "Joined"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows))));
}

// Offer countdowns tick by the server's clock.
setInterval(() => {
  for (const c of document.querySelectorAll(".queue-countdown")) {
    const left = Date.parse(c.dataset.expires) - clock.now();
    c.textContent = left > 0 ? countdown(left) : "lapsing";
  }
}, 500);
