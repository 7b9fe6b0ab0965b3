// The staff panel's walk-in form: seat a party at a table now (a larger party takes the
// smallest free combination that joins the table and fits it).
import { api, keyFor, Problem, spendsKey } from "./api.js";
import { h, guests, longDate } from "./ui.js";

/**
 * The form for a walk-in at table `t` (as the floor lists it). `ctx`: `restaurant`, `token`,
 * `date` (the day shown), `tableLabels(reservation)`, `report(text, tone)`, `done()`.
 */
export function walkInForm(t, { restaurant, token, date, tableLabels, report, done }) {
  const combos = (restaurant?.combinations || []).filter((c) => c.tables.includes(t.id));
  // The combinations with this table that fit `n`, smallest first.
  const combosFor = (n) => combos.filter((c) => c.min_party <= n && n <= c.max_party)
    .sort((x, y) => x.max_party - y.max_party || x.tables.length - y.tables.length || (x.id < y.id ? -1 : 1));
  const comboFor = (n) => combosFor(n)[0];
  const sizes = [];
  const top = Math.max(t.max_party, ...combos.map((c) => c.max_party));
  for (let n = t.min_party; n <= top; n++) if (n <= t.max_party || comboFor(n)) sizes.push(n);
  const party = h("select", { id: "walk-in-party", name: "party" }, sizes.map((n) => h("option", { value: n }, guests(n))));
  const name = h("input", { id: "walk-in-name", name: "name", autocomplete: "off", maxlength: "200" });
  const submit = h("button", { type: "submit", class: "btn btn-primary", dataset: { testid: "walk-in-submit" } }, "Seat now");
  // Each body keeps its `Idempotency-Key` while the form is open, so pressing Seat now again
  // after an answer lost on the way (a network error, a 5xx, a 429) is answered once: the party
  // is not seated twice, nor told the table it just took is busy. A final refusal drops the key.
  const keys = new Map();
  return h("form", {
    class: "walk-in-form",
    onsubmit: async (ev) => {
      ev.preventDefault();
      submit.disabled = true;
      submit.classList.add("pending");
      const n = Number(party.value);
      const bodies = (n > t.max_party ? combosFor(n) : [null])
        .map((combo) => (combo ? { party_size: n, combination_id: combo.id } : { party_size: n, table_id: t.id }));
      if (name.value.trim()) bodies.forEach((b) => { b.guest = { name: name.value.trim() }; });
      // A combination that is busy now does not stop the walk-in: the next that fits is tried.
      const seat = async () => {
        for (const [i, body] of bodies.entries()) {
          const keyed = keyFor(keys.get(i), body);
          keys.set(i, keyed);
          try {
            return await api("POST", `/v1/restaurants/${restaurant.id}/walk-ins`, { token, body, key: keyed.key });
          } catch (e) {
            if (spendsKey(e)) keys.delete(i);
            const busy = e instanceof Problem && e.status === 409 && e.name === "slot-unavailable";
            if (!busy || i === bodies.length - 1) throw e;
          }
        }
        throw new Error("no seating option fits this party");
      };
      try {
        const { body: r } = await seat();
        const elsewhere = r.date !== date ? ` (on ${longDate(r.date)})` : "";
        const where = r.table_ids?.length > 1 ? tableLabels(r) : t.label;
        report(`Walk-in seated at ${where}, ${r.time}, ${guests(r.party_size)}${elsewhere}.`, "success");
        done();
      } catch (e) {
        report(`Walk-in at ${t.label}: ${e.describe()}`, "error");
      } finally {
        submit.disabled = false;
        submit.classList.remove("pending");
      }
    },
  },
  h("div", { class: "field" }, h("label", { for: "walk-in-party" }, "Party size"), party),
  h("div", { class: "field" }, h("label", { for: "walk-in-name" }, "Name (optional)"), name),
  h("p", { class: "hint" }, combos.length
    ? `Walk-ins are seated now, for the table's usual turn. Parties over ${t.max_party} take a combination with ${t.label}.`
    : "Walk-ins are seated now, for the table's usual turn."),
  h("div", { class: "actions" }, submit));
}
