// Talking to the gateway: fetch and EventSource wrappers that record every exchange in a log
// (see log.js), so the page shows the HTTP behind each action.
//
// The gateway is this page's own origin, or the one given as ?api=http://127.0.0.1:8080 when the
// page is served from elsewhere (that origin must then be listed in the gateway's cors.origins).

export const apiBase = gatewayOrigin(new URLSearchParams(location.search).get('api'));

function gatewayOrigin(given) {
  if (!given) return location.origin;
  const url = new URL(given);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`?api= wants an http(s) URL, not ${given}`);
  return url.origin;
}

// The response headers worth showing. A cross-origin page sees only those the gateway lists in
// Access-Control-Expose-Headers (and Content-Type).
const SHOWN_HEADERS = ['Content-Type', 'Consistency-Token', 'Location', 'Preference-Applied', 'Retry-After',
  'Idempotent-Replayed', 'Stream-Time', 'ETag', 'WWW-Authenticate'];

// Sends one request and records it in log. json: a body to send as application/json.
// Returns {status, headers, body} (body: parsed JSON when the response is JSON, else text), or
// null when no response came (the log says why).
export async function send(log, method, path, { json, headers = {} } = {}) {
  const init = { method, headers: { ...headers } };
  if (json !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(json);
  }
  const entry = log.request(method, path, init.headers, json);
  let res;
  try {
    res = await fetch(apiBase + path, init);
  } catch (err) {
    // A network error, or a response the browser hid for lack of CORS headers.
    entry.failed(`no response (${err.message}): is the gateway running, and is this page's origin in its cors.origins?`);
    return null;
  }
  const text = await res.text();
  const type = res.headers.get('Content-Type') ?? '';
  const body = type.includes('json') && text !== '' ? parseJson(text) : text;
  const shown = SHOWN_HEADERS.filter((name) => res.headers.has(name)).map((name) => [name, res.headers.get(name)]);
  entry.response(res.status, shown, body);
  return { status: res.status, headers: res.headers, body };
}

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

// Opens an event stream (EventSource: GET with Accept: text/event-stream) and records it in log.
// onEvent(type, data, lastEventId) is called for each event of the given types, with data parsed
// as JSON. Returns {close()}: call it when done, or EventSource reconnects whenever the gateway
// ends the stream.
export function watch(log, path, types, onEvent) {
  const entry = log.stream(path);
  const source = new EventSource(apiBase + path);
  source.onopen = () => entry.opened();
  source.onerror = () => entry.note(source.readyState === EventSource.CLOSED ? 'closed' : 'stream ended, reconnecting…');
  for (const type of types) {
    source.addEventListener(type, (event) => {
      const data = JSON.parse(event.data);
      entry.event(type, event.lastEventId, data);
      onEvent(type, data, event.lastEventId);
    });
  }
  return {
    close() {
      source.close();
      entry.note('closed by the page');
    },
  };
}
