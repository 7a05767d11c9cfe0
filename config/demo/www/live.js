// Flow 3: a live view of one table row. EventSource on GET /tables/profiles/{key} gets the row,
// then an "update" (the new value) or "delete" event whenever a record for the key reaches the
// table, from this page or any other producer.

import { watch } from './api.js';
import { createLog } from './log.js';

export function setupLive(section) {
  const log = createLog(section.querySelector('.exchanges'));
  const form = section.querySelector('form');
  const button = form.querySelector('button');
  const row = section.querySelector('output');
  let stream = null;

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (stream !== null) {
      stream.close();
      stream = null;
      button.textContent = 'Watch';
      form.elements.key.disabled = false;
      return;
    }
    const path = `/tables/profiles/${encodeURIComponent(form.elements.key.value)}`;
    row.value = 'Waiting for the row…';
    stream = watch(log, path, ['update', 'delete'], (type, value) => {
      row.value = type === 'update' ? JSON.stringify(value) : '(no such row)';
      row.classList.remove('changed');
      void row.offsetWidth; // restart the highlight animation
      row.classList.add('changed');
    });
    button.textContent = 'Stop watching';
    form.elements.key.disabled = true;
  });
}
