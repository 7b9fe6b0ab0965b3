// The diner app's start times: one cell per start, painted from its availability slot. A full
// start stays a disabled slot and carries a "Notify me" chip (the waitlist).
import { h } from "./ui.js";

export function slotNote(n) {
  return n === 0 ? "Taken" : n === 1 ? "Last table" : `${n} tables`;
}

function slotLabel(s) {
  const n = s.available_tables;
  return n === 0 ? `${s.time}, fully booked` : `${s.time}, ${n} ${n === 1 ? "table" : "tables"} free`;
}

/** Repaints a slot button (and its cell's "Notify me") for the slot `s`. */
export function paintSlot(btn, s) {
  const n = s.available_tables;
  const focused = document.activeElement === btn;
  btn.dataset.available = String(n);
  btn.disabled = n === 0;
  btn.classList.toggle("last", n === 1);
  btn.setAttribute("aria-label", slotLabel(s));
  btn.querySelector(".slot-note").textContent = slotNote(n);
  // A full time offers the waitlist instead.
  const cell = btn.parentElement;
  cell?.classList.toggle("full", n === 0);
  const notify = cell?.querySelector(".notify");
  if (notify) notify.hidden = n !== 0;
  // A focused time just taken keeps the keyboard user in its cell, on "Notify me".
  if (n === 0 && focused) notify?.focus();
}

/** The cell of slot `s`: `hold(time)` when the slot is tapped, `notify(time)` for the chip. */
export function slotCell(s, { hold, notify }) {
  const btn = h("button", {
    type: "button", class: "slot", dataset: { testid: "slot", time: s.time },
    onclick: () => hold(s.time),
  }, h("span", { class: "slot-time" }, s.time), h("span", { class: "slot-note" }));
  const chip = h("button", {
    type: "button", class: "notify", dataset: { testid: "notify", time: s.time },
    "aria-label": `${s.time} is full: notify me if a table frees up`, title: "Join the waitlist",
    onclick: () => notify(s.time),
  }, "Notify me");
  const cell = h("div", { class: "slot-cell" }, btn, chip);
  paintSlot(btn, s);
  return cell;
}

export function mealOf(time) {
  const hour = Number(time.slice(0, 2));
  return hour < 11 ? "Morning" : hour < 16 ? "Lunch" : "Dinner";
}
