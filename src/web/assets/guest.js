// The diner's details (name, and an email or a phone), checked the way the server checks them,
// for the booking form and the waitlist form alike.
import { $ } from "./ui.js";

/** Shows (or clears) the message under an input; its error element is `#<id>-error`. */
export function fieldError(input, message) {
  const out = $(`#${input.id}-error`);
  if (out) out.textContent = message || "";
  if (message) input.setAttribute("aria-invalid", "true");
  else input.removeAttribute("aria-invalid");
}

/** Clears every field's error in `form`. */
export function clearErrors(form, inputs) {
  for (const f of inputs) f.removeAttribute("aria-invalid");
  for (const e of form.querySelectorAll(".field-error")) e.textContent = "";
}

/**
 * The guest body from the three inputs, or null after marking what is wrong (the first bad
 * field gets focus).
 */
export function readGuest(form, { name: nameIn, email: emailIn, phone: phoneIn }) {
  const name = nameIn.value.trim();
  const email = emailIn.value.trim();
  const phone = phoneIn.value.trim();
  fieldError(nameIn, name ? "" : "Please enter your name.");
  const contact = email || phone ? "" : "Please give an email or a phone number.";
  fieldError(emailIn, contact || (email && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email) ? "That email address looks incomplete." : ""));
  fieldError(phoneIn, contact && !email ? contact : "");
  if (contact) $(`#${phoneIn.id}-error`).textContent = "";
  const bad = form.querySelector("[aria-invalid=true]");
  if (bad) {
    bad.focus();
    return null;
  }
  const guest = { name };
  if (email) guest.email = email;
  if (phone) guest.phone = phone;
  return guest;
}

/** Marks the fields a `422` names (`guest.name`, …); true if it named any. */
export function showServerErrors(problem, inputs) {
  let any = false;
  for (const fe of problem.body?.errors || []) {
    const input = inputs[fe.field.replace("guest.", "")];
    if (input) {
      fieldError(input, `This ${fe.field.replace("guest.", "")} ${fe.message}.`);
      any = true;
    }
  }
  return any;
}
