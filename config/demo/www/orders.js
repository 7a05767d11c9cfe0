// Flow 1: place an order on the request-reply route POST /orders. The worker's answer comes in
// the response when it is in time; otherwise the 202's Location (/requests/{id}) is watched with
// EventSource until the outcome is pushed.

import { send, watch } from './api.js';
import { onSubmit } from './dom.js';
import { createLog } from './log.js';

const SLOW_MS = 5000; // longer than the route's reply timeout (3 s in config/demo.yaml)

export function setupOrders(section) {
  const log = createLog(section.querySelector('.exchanges'));
  const outcome = section.querySelector('output');

  onSubmit(section.querySelector('form'), async (fields) => {
    const order = { customerId: fields.customerId.value, items: [{ sku: fields.sku.value, qty: Number(fields.qty.value) }] };
    if (fields.slow.checked) order.delayMs = SLOW_MS; // read by the demo worker, to answer late
    const headers = fields.async.checked ? { Prefer: 'respond-async' } : {};
    outcome.value = 'Sending…';
    const res = await send(log, 'POST', '/orders', { json: order, headers });
    if (res === null) {
      outcome.value = 'No response from the gateway.';
    } else if (res.status === 202) {
      awaitOutcome(log, outcome, res.headers.get('Location'));
    } else {
      outcome.value = describe(res.status, res.body, 'in the response');
    }
  });
}

// The request goes on after a 202: its status resource pushes "done" when the reply is recorded.
function awaitOutcome(log, outcome, location) {
  outcome.value = `202 Accepted: no answer yet. Waiting for it on ${location}…`;
  const stream = watch(log, location, ['pending', 'done', 'expired'], (state, status) => {
    if (state === 'done') {
      stream.close();
      outcome.value = describe(status.response.status, status.response.body, 'pushed over the event stream');
    } else if (state === 'expired') {
      stream.close();
      outcome.value = 'The request expired without an answer.';
    }
  });
}

function describe(status, body, how) {
  if (status === 201) return `${status}: order ${body.orderId} confirmed, total ${body.total} ${body.currency} (${how}).`;
  if (body?.detail) return `${status}: ${body.title}: ${body.detail}${body.field ? ` (${body.field})` : ''} (${how}).`;
  return `${status} (${how}).`;
}
