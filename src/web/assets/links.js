// A booking's own links: the private manage link (/reservation/{id}#t=…, the token in the
// fragment so it never reaches a server log or a Referer) and "Add to calendar" (.ics).
import { Problem } from "./api.js";
import { h, reference } from "./ui.js";

/** The manage link of a reservation for its token holder. */
export function manageLink(id, token) {
  return `${location.origin}/reservation/${encodeURIComponent(id)}#t=${encodeURIComponent(token)}`;
}

/** Downloads the reservation's calendar file (fetched with the token, saved from a blob). */
export async function downloadCalendar(id, token) {
  const res = await fetch(`/v1/reservations/${encodeURIComponent(id)}/calendar`, {
    headers: { authorization: `Bearer ${token}`, accept: "text/calendar, application/problem+json" },
    cache: "no-store",
  }).catch(() => null);
  if (!res) throw new Problem(0, { title: "Network error", detail: "the server cannot be reached" });
  if (!res.ok) throw new Problem(res.status, await res.json().catch(() => ({})));
  const url = URL.createObjectURL(await res.blob());
  const a = h("a", { href: url, download: `reservation-${reference(id).toLowerCase()}.ics`, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/**
 * Fills `box` with the manage link (copyable) and the calendar button for a live booking;
 * empties it otherwise. `onError(problem)` hears a failed download.
 */
export function renderLinks(box, { id, token, status }, onError = () => {}) {
  if (!box) return;
  if (!id || !token || !["confirmed", "seated"].includes(status)) {
    box.replaceChildren();
    box.hidden = true;
    return;
  }
  const link = manageLink(id, token);
  const input = h("input", {
    class: "manage-link", readonly: true, value: link, "aria-label": "Your private link to this booking",
    dataset: { testid: "manage-link" }, onfocus: (e) => e.target.select(),
  });
  const copy = h("button", {
    type: "button", class: "btn btn-ghost", dataset: { testid: "copy-link" },
    onclick: async () => {
      try { await navigator.clipboard.writeText(link); copy.textContent = "Copied"; }
      catch { input.focus(); input.select(); }
    },
  }, "Copy link");
  const cal = h("button", {
    type: "button", class: "btn btn-ghost", dataset: { testid: "add-to-calendar" },
    onclick: () => downloadCalendar(id, token).catch((e) => onError(e)),
  }, "Add to calendar");
  box.replaceChildren(
    h("p", { class: "hint" }, "Keep this private link to see, confirm or cancel your booking later:"),
    h("div", { class: "link-row" }, input, copy),
    h("div", { class: "actions" }, cal),
  );
  box.hidden = false;
}
