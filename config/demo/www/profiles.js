// Flow 2: read your own writes. PUT a profile, then read it back twice at once: with the
// Consistency-Token the PUT returned (answered only once the table has applied the write) and
// without it (answered from the table as it is, which may not have the write yet).

import { send } from './api.js';
import { onSubmit } from './dom.js';
import { createLog } from './log.js';

export function setupProfiles(section) {
  const log = createLog(section.querySelector('.exchanges'));
  const out = (name) => section.querySelector(`output[data-out="${name}"]`);

  onSubmit(section.querySelector('form'), async (fields) => {
    for (const name of ['token', 'with-token', 'without-token']) out(name).value = '';
    const path = `/profiles/${encodeURIComponent(fields.id.value)}`;
    const profile = { name: fields.name.value };
    if (fields.email.value) profile.email = fields.email.value;

    const put = await send(log, 'PUT', path, { json: profile });
    if (put === null || put.status !== 202) {
      out('token').value = put === null ? 'no response' : `${put.status}: ${put.body?.detail ?? 'not written'}`;
      return;
    }
    const token = put.headers.get('Consistency-Token');
    out('token').value = token;
    const [withToken, withoutToken] = await Promise.all([
      send(log, 'GET', path, { headers: { 'Consistency-Token': token } }),
      send(log, 'GET', path),
    ]);
    out('with-token').value = describe(withToken);
    out('without-token').value = describe(withoutToken);
  });
}

function describe(res) {
  if (res === null) return 'no response';
  if (res.status === 200) return `200: ${JSON.stringify(res.body)}`;
  return `${res.status}: ${res.body?.title ?? ''}`;
}
