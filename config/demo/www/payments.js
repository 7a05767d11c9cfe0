// Flow 4: a form against the Avro route POST /payments. A 422 names the offending value with a
// JSON pointer in its "field" member; the page shows the problem next to the input for that
// pointer. An accepted payment is read back from the payments table with the returned token.

import { send } from './api.js';
import { el, onSubmit } from './dom.js';
import { createLog } from './log.js';

export function setupPayments(section) {
  const log = createLog(section.querySelector('.exchanges'));
  const form = section.querySelector('form');
  const outcome = section.querySelector('output');

  onSubmit(form, async (fields) => {
    clearErrors(form);
    outcome.value = 'Sending…';
    const payment = {
      id: fields.id.value,
      customerId: fields.customerId.value,
      amount: fields.amount.value, // a decimal in the schema: a numeric string keeps every digit
      currency: fields.currency.value,
    };
    if (fields.note.value) payment.note = fields.note.value;

    const res = await send(log, 'POST', '/payments', { json: payment });
    if (res === null) {
      outcome.value = 'No response from the gateway.';
    } else if (res.status === 202) {
      outcome.value = `202: in ${res.body.topic} partition ${res.body.partition} at offset ${res.body.offset}. Reading it back…`;
      const path = `/payments/${encodeURIComponent(payment.id)}`;
      const read = await send(log, 'GET', path, { headers: { 'Consistency-Token': res.headers.get('Consistency-Token') } });
      if (read?.status === 200) outcome.value = `Stored, read back from the table: ${JSON.stringify(read.body)}`;
    } else if (res.body?.field !== undefined && showFieldError(form, res.body)) {
      outcome.value = `${res.status}: ${res.body.title}, see the field marked.`;
    } else {
      outcome.value = `${res.status}: ${res.body?.detail ?? res.body}`;
    }
  });
}

// Marks the input whose data-pointer is the problem's field (or the nearest enclosing one, for
// a pointer into a nested value). Returns whether one was found.
function showFieldError(form, problem) {
  let pointer = problem.field;
  let input = null;
  while (input === null && pointer !== '') {
    input = form.querySelector(`[data-pointer="${CSS.escape(pointer)}"]`);
    pointer = pointer.slice(0, pointer.lastIndexOf('/'));
  }
  if (input === null) return false;
  const message = document.getElementById(input.getAttribute('aria-describedby'));
  const detail = problem.detail.startsWith(`${problem.field}: `) ? problem.detail.slice(problem.field.length + 2) : problem.detail;
  message.replaceChildren(el('code', {}, problem.field), `: ${detail}`);
  input.setAttribute('aria-invalid', 'true');
  input.focus();
  return true;
}

function clearErrors(form) {
  for (const input of form.querySelectorAll('[aria-invalid]')) input.removeAttribute('aria-invalid');
  for (const message of form.querySelectorAll('.field-error')) message.replaceChildren();
}
