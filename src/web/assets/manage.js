// The manage page, /reservation/{id}#t=TOKEN: one booking, kept live. The token stays in the
// URL fragment, which browsers never send to a server. The page refetches the booking whenever
// its date's availability changes (a cancel, a confirm, an expiry all move it), on a slow
// timer for the rest, and when the tab comes back.
import { api, clock, isOver, keyFor } from "./api.js";
import { Live, bindLiveStatus } from "./live.js";
import { renderLinks } from "./links.js";
import { clearErrors, fieldError, showServerErrors } from "./guest.js";
import { $, h, countdown, guests, keepingFocus, longDate, say, tableRow, reference, STATUS_LABEL } from "./ui.js";

const el = {
  status: $("#status"), title: $("#manage-title"), ticket: $("#ticket"), manage: $("#manage"),
  form: $("#guest-form"), name: $("#guest-name"), email: $("#guest-email"), phone: $("#guest-phone"),
  confirm: $("#confirm"), links: $("#links"), cancel: $("#cancel"),
};
const id = decodeURIComponent(location.pathname.split("/").filter(Boolean)[1] || "");
const token = new URLSearchParams(location.hash.slice(1)).get("t") || "";
const live = new Live();
bindLiveStatus(live, $("[data-testid=live-status]"));

const state = { r: null, restaurant: null, sub: null, confirmKey: null };
const TITLES = {
  held: "Held for you", confirmed: "You're booked", seated: "Enjoy your meal",
  completed: "Thanks for coming", cancelled: "Reservation cancelled", no_show: "Marked as a no-show",
  released: "Hold let go", expired: "Hold expired",
};

function paint() {
  const r = state.r;
  el.manage.dataset.status = r.status;
  el.manage.classList.toggle("is-cancelled", ["cancelled", "released", "expired", "no_show"].includes(r.status));
  el.title.textContent = TITLES[r.status] || STATUS_LABEL[r.status] || r.status;
  const rows = [
    ["Restaurant", state.restaurant?.name], ["Date", longDate(r.date)], ["Time", r.time],
    ["Guests", guests(r.party_size)], tableRow(r, state.restaurant?.tables),
    ["Name", r.guest?.name], ["Contact", r.guest?.email || r.guest?.phone],
    ["Status", STATUS_LABEL[r.status] || r.status],
    // A hold (a waitlist offer too) counts down on the server's clock.
    r.status === "held" && r.expires_at ? ["Left to confirm", countdown(Date.parse(r.expires_at) - clock.now())] : [],
    ["Reference", reference(r.id)],
  ].filter(([, v]) => v);
  el.ticket.replaceChildren(...rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", { dataset: { field: k.toLowerCase() } }, v)]));
  el.form.hidden = r.status !== "held";
  // A booking that is over is the restaurant's to record (seated, a no-show): not to cancel.
  el.cancel.hidden = !["held", "confirmed"].includes(r.status) || isOver(r);
  keepingFocus(el.links, () => renderLinks(el.links, { id: r.id, token, status: r.status }, (e) => say(el.status, `Could not get the calendar file: ${e.describe()}`, "error")));
}

async function refresh() {
  let r;
  try {
    ({ body: r } = await api("GET", `/v1/reservations/${encodeURIComponent(id)}`, { token }));
  } catch (e) {
    const gone = [401, 403, 404].includes(e.status);
    say(el.status, gone ? "This link does not open a reservation. Check that you copied all of it." : `Could not load your reservation: ${e.describe()}`, "error");
    el.title.textContent = gone ? "Reservation not found" : "Your reservation";
    return;
  }
  const before = state.r?.status;
  state.r = r;
  if (!state.restaurant || state.restaurant.id !== r.restaurant_id) {
    state.restaurant = await api("GET", `/v1/restaurants/${r.restaurant_id}`).then((x) => x.body).catch(() => null);
  }
  paint();
  if (before && before !== r.status && r.status === "cancelled") say(el.status, "This reservation has been cancelled.", "warn");
  if (!state.sub) {
    state.sub = live.subscribe({ restaurant_id: r.restaurant_id, date: r.date, party_size: r.party_size }, onFrame);
  }
}

let soon = null;
function refreshSoon() {
  if (soon) return;
  soon = setTimeout(() => { soon = null; refresh(); }, 200);
}

function onFrame(frame) {
  if (frame.type === "snapshot" || frame.type === "update") refreshSoon();
}

let cancelArmed = null;
function resetCancel() {
  clearTimeout(cancelArmed);
  cancelArmed = null;
  el.cancel.textContent = "Cancel reservation";
  el.cancel.classList.remove("armed");
}

el.cancel.addEventListener("click", async () => {
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
    await api("DELETE", `/v1/reservations/${encodeURIComponent(id)}`, { token });
    await refresh();
    say(el.status, "Your reservation is cancelled.", "success");
  } catch (e) {
    say(el.status, `Could not cancel: ${e.describe()}`, "error");
  } finally {
    el.cancel.disabled = false;
  }
});

const guestInputs = { name: el.name, email: el.email, phone: el.phone };

el.form.addEventListener("submit", async (e) => {
  e.preventDefault();
  if (el.confirm.disabled) return;
  // Only a name is asked for here (a waitlist offer's entry already has the contact); the
  // server checks the rest, and its 422 marks the fields it names, as on the diner page.
  clearErrors(el.form, Object.values(guestInputs));
  const guest = { name: el.name.value.trim() };
  if (el.email.value.trim()) guest.email = el.email.value.trim();
  if (el.phone.value.trim()) guest.phone = el.phone.value.trim();
  if (!guest.name) {
    fieldError(el.name, "Please enter your name.");
    say(el.status, "Please add your name.", "error");
    el.name.focus();
    return;
  }
  el.confirm.disabled = true;
  try {
    const request = { guest };
    state.confirmKey = keyFor(state.confirmKey, request);
    await api("POST", `/v1/reservations/${encodeURIComponent(id)}/confirm`, { token, body: request, key: state.confirmKey.key });
    await refresh();
    say(el.status, "Confirmed. See you soon!", "success");
  } catch (err) {
    if (err.name === "validation" && showServerErrors(err, guestInputs)) {
      el.form.querySelector("[aria-invalid=true]")?.focus();
    }
    say(el.status, `Could not confirm: ${err.describe()}`, "error");
  } finally {
    el.confirm.disabled = false;
  }
});

let askedAt = 0;
setInterval(() => {
  const out = el.ticket.querySelector('dd[data-field="left to confirm"]');
  if (!out || state.r?.status !== "held") return;
  const left = Date.parse(state.r.expires_at) - clock.now();
  out.textContent = countdown(left);
  if (left <= 0 && Date.now() - askedAt > 1000) {
    askedAt = Date.now();
    refreshSoon();
  }
}, 250);

document.addEventListener("visibilitychange", () => { if (!document.hidden) refreshSoon(); });
setInterval(refreshSoon, 30_000);

if (!id || !token) {
  say(el.status, "This link is incomplete: open the full link from your confirmation.", "error");
} else {
  refresh();
}
