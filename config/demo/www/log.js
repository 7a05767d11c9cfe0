// The exchange panel: renders each HTTP exchange of a flow (method, path, status, the headers
// that matter, the bodies) into a list, as it happens.

import { el } from './dom.js';

function headerList(direction, headers) {
  if (headers.length === 0) return undefined;
  return el('dl', { class: `headers ${direction}` },
    ...headers.flatMap(([name, value]) => [el('dt', {}, name), el('dd', {}, el('code', {}, shown(name, value)))]));
}

// A bearer token is some 600 characters: the panel shows its start, enough to tell which it is.
function shown(name, value) {
  return name === 'Authorization' && value.length > 40 ? `${value.slice(0, 40)}…` : value;
}

function bodyBlock(body) {
  if (body === undefined || body === '') return undefined;
  return el('pre', { class: 'body' }, typeof body === 'string' ? body : JSON.stringify(body, null, 2));
}

function statusClass(status) {
  return status < 300 ? (status === 202 ? 'accepted' : 'ok') : status < 500 ? 'client-error' : 'server-error';
}

// Returns a log writing into list (an <ol>), newest last.
export function createLog(list) {
  function add(method, path) {
    const status = el('span', { class: 'status pending' }, '…');
    const item = el('li', { class: 'exchange' },
      el('p', { class: 'line' }, el('span', { class: 'method' }, method), ' ', el('code', { class: 'path' }, path), ' ', status));
    list.append(item);
    list.scrollTop = list.scrollHeight; // the panel scrolls, not the page
    return { item, status };
  }

  return {
    // One request; returns {response(status, headers, body), failed(message)}.
    request(method, path, headers, body) {
      const { item, status } = add(method, path);
      item.append(el('div', { class: 'half request' }, headerList('sent', Object.entries(headers)), bodyBlock(body)));
      return {
        response(code, shownHeaders, responseBody) {
          status.textContent = String(code);
          status.className = `status ${statusClass(code)}`;
          item.append(el('div', { class: 'half response' }, headerList('received', shownHeaders), bodyBlock(responseBody)));
          // The panel shows this exchange from its request line down, however long the answer.
          list.scrollTop = item.offsetTop - list.offsetTop;
        },
        failed(message) {
          status.textContent = 'failed';
          status.className = 'status server-error';
          item.append(el('p', { class: 'note' }, message));
        },
      };
    },

    // One event stream; returns {opened(), event(type, id, data), note(text)}.
    stream(path) {
      const { item, status } = add('GET', path);
      const events = el('ol', { class: 'events', 'aria-label': 'Events' });
      item.append(el('div', { class: 'half request' }, headerList('sent', [['Accept', 'text/event-stream']]),
        el('p', { class: 'note' }, 'EventSource')), events);
      return {
        opened() {
          status.textContent = '200';
          status.className = 'status ok';
        },
        event(type, id, data) {
          events.append(el('li', { class: `event ${type}` },
            el('span', { class: 'event-type' }, `event: ${type}`),
            id ? el('span', { class: 'event-id' }, ` id: ${id}`) : undefined,
            bodyBlock(data)));
          list.scrollTop = list.scrollHeight;
        },
        note(text) {
          events.append(el('li', { class: 'note' }, text));
        },
      };
    },
  };
}
