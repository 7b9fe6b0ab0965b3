// The staff settings panel: the restaurant's table combinations and pacing, saved with one
// PATCH of the restaurant. The server validates; its problem+json errors are shown per field.
import { api, Problem } from "./api.js";
import { h } from "./ui.js";

/**
 * The pacing windows the form offers on a grid of `slot` minutes: the divisors of 60 that are
 * multiples of the slot length (what the server accepts), with `current` kept whatever it is.
 */
function windowChoices(slot, current) {
  const list = [];
  for (let w = slot; w <= 60; w += slot) if (60 % w === 0) list.push(w);
  if (current && !list.includes(current)) list.push(current);
  return list.sort((a, b) => a - b);
}

/** The window preset when pacing is first turned on: a quarter-hour if the grid has one, else the slot. */
const defaultWindow = (choices, slot) => (choices.includes(15) ? 15 : slot);

const intOrNull = (input) => (input.value.trim() === "" ? null : Number(input.value));

function numberInput(field, value, label, extra = {}) {
  return h("input", {
    type: "number", min: "1", max: "100", step: "1", inputmode: "numeric", value: value ?? "",
    dataset: { field, testid: extra.testid }, "aria-label": label, placeholder: extra.placeholder,
  });
}

/** One combination's editable row: id, member tables, party range, remove. */
function comboRow(restaurant, combo, i, onRemove) {
  const members = new Set(combo.tables || []);
  const row = h("fieldset", { class: "combo", dataset: { testid: "combo-row", field: `combinations[${i}]` } },
    h("legend", {}, `Combination ${i + 1}`),
    h("div", { class: "combo-line" },
      h("label", { class: "mini" }, "Id",
        h("input", {
          value: combo.id || "", maxlength: "32", spellcheck: "false", autocomplete: "off", placeholder: "from its tables",
          pattern: "[A-Za-z0-9_\\-]{1,32}", dataset: { field: `combinations[${i}].id`, testid: "combo-id" },
        })),
      h("label", { class: "mini" }, "Min party", numberInput(`combinations[${i}].min_party`, combo.min_party, "Smallest party", { testid: "combo-min" })),
      h("label", { class: "mini" }, "Max party", numberInput(`combinations[${i}].max_party`, combo.max_party, "Largest party", { testid: "combo-max" }))),
    h("div", { class: "combo-tables", role: "group", "aria-label": "Tables joined", dataset: { field: `combinations[${i}].tables` } },
      (restaurant.tables || []).map((t) => h("label", { class: "chip" },
        h("input", { type: "checkbox", value: t.id, checked: members.has(t.id), dataset: { testid: "combo-table" } }),
        h("span", {}, `${t.label} (${t.max_party})`)))),
    h("button", { type: "button", class: "btn btn-tiny btn-danger-ghost", dataset: { testid: "combo-remove" }, onclick: onRemove }, "Remove"));
  return row;
}

/** A combination as the form holds it; an empty id is made from its tables' ids. */
function readCombo(row) {
  const tables = [...row.querySelectorAll("[data-testid=combo-table]:checked")].map((x) => x.value);
  const id = row.querySelector("[data-testid=combo-id]").value.trim()
    || `c-${tables.join("-")}`.slice(0, 32).replace(/-$/, "");
  const c = { id, tables, max_party: intOrNull(row.querySelector("[data-testid=combo-max]")) };
  const min = intOrNull(row.querySelector("[data-testid=combo-min]"));
  return min === null ? c : { ...c, min_party: min };
}

/**
 * What the server would refuse as malformed (400) rather than explain per field, or could not
 * see at all, said here: a number box the browser cannot read (`12e`, `-`) reads as empty, which
 * for a limit means "none" — so an unreadable or fractional number is an error, never a value.
 */
function localErrors(form, body) {
  const out = [];
  for (const input of form.querySelectorAll("input[type=number]:not(:disabled)")) {
    const text = input.value.trim();
    if (input.validity.badInput || (text !== "" && !Number.isInteger(Number(text)))) {
      out.push({ field: input.dataset.field, message: "must be a whole number" });
    }
  }
  for (const input of form.querySelectorAll("[data-testid=combo-id]")) {
    // The input's own `pattern` (the server's table id rule), on the trimmed id that is sent.
    const text = input.value.trim();
    if (text !== "" && !new RegExp(`^(?:${input.pattern})$`).test(text)) {
      out.push({ field: input.dataset.field, message: "may hold only letters, digits, - and _ (at most 32)" });
    }
  }
  body.combinations.forEach((c, i) => {
    const field = `combinations[${i}].max_party`;
    if (c.max_party === null && !out.some((e) => e.field === field)) out.push({ field, message: "is required" });
  });
  return out;
}

/** "combinations[0].tables" → "Combination 1, tables". */
function fieldName(field) {
  return String(field || "")
    .replace(/^combinations\[(\d+)\]\.?/, (_, i) => `Combination ${Number(i) + 1}${field.includes("].") ? ", " : ""}`)
    .replace(/^pacing\.?/, (m) => (m.endsWith(".") ? "Pacing, " : "Pacing"))
    .replace(/_/g, " ");
}

/**
 * The settings form for `restaurant`. `onSaved(doc)` gets the restaurant the server answered;
 * `report(text, tone)` speaks in the page's status line.
 */
export function settingsForm(restaurant, { token, onSaved, report }) {
  const p = restaurant.pacing || null;
  const slot = restaurant.slot_minutes || 15;
  const paced = h("input", { type: "checkbox", id: "pacing-on", checked: !!p, dataset: { testid: "pacing-on" } });
  const choices = windowChoices(slot, p?.window_minutes);
  const chosen = p?.window_minutes ?? defaultWindow(choices, slot);
  const windowSel = h("select", { id: "pacing-window", dataset: { field: "pacing.window_minutes", testid: "pacing-window-minutes" } },
    choices.map((w) => h("option", { value: w, selected: w === chosen }, `${w} min`)));
  const covers = numberInput("pacing.max_covers", p?.max_covers, "Covers per window", { testid: "pacing-max-covers", placeholder: "no limit" });
  covers.max = "100000";
  const parties = numberInput("pacing.max_parties", p?.max_parties, "Parties per window", { testid: "pacing-max-parties", placeholder: "no limit" });
  parties.max = "100000";
  const pacingFields = h("div", { class: "pacing-fields" },
    h("label", { class: "mini" }, "Window", windowSel),
    h("label", { class: "mini" }, "Covers", covers),
    h("label", { class: "mini" }, "Parties", parties));
  const syncPaced = () => { for (const c of pacingFields.querySelectorAll("select, input")) c.disabled = !paced.checked; };
  paced.addEventListener("change", syncPaced);
  syncPaced();

  const list = h("div", { class: "combo-list" });
  let combos = (restaurant.combinations || []).map((c) => ({ ...c }));
  const draw = () => {
    list.replaceChildren(...combos.map((c, i) => comboRow(restaurant, c, i, () => {
      combos = [...list.querySelectorAll("[data-testid=combo-row]")].map(readCombo);
      combos.splice(i, 1);
      draw();
    })));
    if (!combos.length) list.append(h("p", { class: "muted" }, "No combinations: every booking takes one table."));
  };
  draw();
  const add = h("button", {
    type: "button", class: "btn btn-small btn-ghost", dataset: { testid: "combo-add" },
    onclick: () => {
      combos = [...list.querySelectorAll("[data-testid=combo-row]")].map(readCombo);
      combos.push({ tables: [], min_party: null, max_party: null });
      draw();
      list.querySelector("[data-testid=combo-row]:last-of-type input")?.focus();
    },
  }, "+ Add combination");

  const errors = h("ul", { class: "form-errors", role: "alert", dataset: { testid: "settings-errors" }, hidden: true });
  const save = h("button", { type: "submit", class: "btn btn-primary", dataset: { testid: "settings-save" } }, "Save settings");
  const form = h("form", {
    class: "settings-form", novalidate: true,
    onsubmit: async (ev) => {
      ev.preventDefault();
      for (const x of form.querySelectorAll("[aria-invalid]")) x.removeAttribute("aria-invalid");
      errors.hidden = true;
      errors.replaceChildren();
      const body = {
        pacing: paced.checked ? { window_minutes: Number(windowSel.value), max_covers: intOrNull(covers), max_parties: intOrNull(parties) } : null,
        combinations: [...list.querySelectorAll("[data-testid=combo-row]")].map(readCombo),
      };
      save.disabled = true;
      save.classList.add("pending");
      try {
        const local = localErrors(form, body);
        if (local.length) throw new Problem(422, { type: "/problems/validation", title: "Validation failed", errors: local });
        const { body: doc } = await api("PATCH", `/v1/restaurants/${restaurant.id}`, { token, body });
        report("Settings saved: combinations and pacing apply to new bookings.", "success");
        onSaved(doc);
      } catch (e) {
        if (!(e instanceof Problem)) throw e;
        const items = (e.body.errors || []).map((fe) => {
          const target = form.querySelector(`[data-field="${CSS.escape(fe.field)}"]`)
            || [...form.querySelectorAll("[data-field]")].find((x) => fe.field.startsWith(x.dataset.field));
          target?.setAttribute("aria-invalid", "true");
          return h("li", {}, `${fieldName(fe.field)}: ${fe.message}`);
        });
        errors.replaceChildren(...(items.length ? items : [h("li", {}, e.describe())]));
        errors.hidden = false;
        report(items.length ? `Settings not saved: ${items.length === 1 ? "one field needs" : `${items.length} fields need`} a change (see the form).` : `Settings not saved: ${e.describe()}`, "error");
        form.querySelector("[aria-invalid=true]")?.focus();
      } finally {
        save.disabled = false;
        save.classList.remove("pending");
      }
    },
  },
  h("fieldset", { class: "settings-group" },
    h("legend", {}, "Pacing"),
    h("label", { class: "check" }, paced, h("span", {}, "Limit bookings per window of start times")),
    pacingFields,
    h("p", { class: "hint" }, "A window counts held, confirmed, seated, completed and no-show bookings starting in it. Walk-ins count but are never refused. Leave a limit empty for none.")),
  h("fieldset", { class: "settings-group" },
    h("legend", {}, "Table combinations"),
    h("p", { class: "hint" }, "Tables pushed together for larger parties: a combination is free only when all its tables are."),
    list, add),
  errors,
  h("div", { class: "actions" }, save));
  return form;
}
