// Flow 5: sign in with a demo identity, then try a scoped action. POST /orders/{id}/cancel needs
// a token with the scope orders:cancel: signed out it is a 401 (WWW-Authenticate: Bearer), with
// the viewer's token a 403 insufficient-scope, with the admin's a 202.
//
// The demo's tokens come from demo-tokens.json beside this page (DEMO ONLY: public tokens signed
// by a throwaway key, see config/demo/mint-tokens). A real page gets its token from an identity
// provider; what it does with it is the same: keep it (session.js) and send it as a bearer token.

import { send } from './api.js';
import { el, onSubmit } from './dom.js';
import { createLog } from './log.js';
import { authHeaders, claimsOf, signIn, signOut, signedIn } from './session.js';

export function setupAuth(section) {
  const log = createLog(section.querySelector('.exchanges'));
  const signInForm = section.querySelector('form.sign-in');
  const signOutButton = section.querySelector('button.sign-out');
  const out = (name) => section.querySelector(`output[data-out="${name}"]`);
  const claims = section.querySelector('pre.claims');

  function show() {
    const session = signedIn();
    out('who').value = session === null ? 'nobody' : `${session.claims.sub} (${session.claims.name})`;
    out('scopes').value = session === null ? '(none)' : session.claims.scope;
    claims.textContent = session === null ? '' : JSON.stringify(session.claims, null, 2);
    signOutButton.disabled = session === null;
  }

  const identities = loadIdentities(signInForm.elements.identity);
  identities.catch((err) => signInForm.append(el('p', { class: 'note' }, `No demo identities: ${err.message}`)));
  onSubmit(signInForm, async (fields) => {
    signIn((await identities).get(fields.identity.value));
    show();
  });
  signOutButton.addEventListener('click', () => {
    signOut();
    show();
  });
  show();

  onSubmit(section.querySelector('form.action'), async (fields) => {
    out('outcome').value = 'Sending…';
    const path = `/orders/${encodeURIComponent(fields.id.value)}/cancel`;
    const sender = signedIn()?.claims.sub; // who sent it, even if the page signs out meanwhile
    const res = await send(log, 'POST', path, { json: { reason: fields.reason.value }, headers: authHeaders() });
    out('outcome').value = describe(res, fields.id.value, sender);
  });
}

// Fills the identity <select> from demo-tokens.json (fetched from this page's own origin, not
// the gateway's); returns a Map of identity name to token.
async function loadIdentities(select) {
  const res = await fetch(new URL('demo-tokens.json', import.meta.url));
  if (!res.ok) throw new Error(`demo-tokens.json: ${res.status}`);
  const tokens = new Map();
  for (const { name, token } of (await res.json()).identities) {
    const claims = claimsOf(token);
    tokens.set(name, token);
    select.append(el('option', { value: name }, `${name}: ${claims.name}, scopes ${claims.scope}`));
  }
  return tokens;
}

function describe(res, id, sender) {
  if (res === null) return 'No response from the gateway.';
  if (res.status === 202) {
    return `202: the cancellation of ${id} is in ${res.body.topic} partition ${res.body.partition} at offset ${res.body.offset}, sent as ${sender}.`;
  }
  // A problem: its type's last part names it (missing-credential, insufficient-scope, ...).
  const name = res.body?.type?.split(':').pop() ?? '';
  return `${res.status} ${name}: ${res.body?.detail ?? res.body}`;
}
