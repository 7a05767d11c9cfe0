// The demo page: one module per flow, each given its <section>.

import { apiBase } from './api.js';
import { setupAuth } from './auth.js';
import { setupLive } from './live.js';
import { setupOrders } from './orders.js';
import { setupPayments } from './payments.js';
import { setupProfiles } from './profiles.js';

setupOrders(document.getElementById('orders'));
setupProfiles(document.getElementById('profiles'));
setupLive(document.getElementById('live'));
setupPayments(document.getElementById('payments'));
setupAuth(document.getElementById('auth'));

// Whether the gateway answers, and is ready (Kafka reachable, tables caught up).
document.getElementById('gateway-url').textContent = apiBase;
const state = document.getElementById('gateway-state');
fetch(`${apiBase}/readyz`)
  .then((res) => {
    state.value = res.ok ? 'ready' : `not ready yet (${res.status}): reload in a moment`;
  })
  .catch(() => {
    state.value = 'not reachable: is it running, and does its cors.origins list this page?';
  });
