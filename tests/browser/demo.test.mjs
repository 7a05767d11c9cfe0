// Drives the demo page (config/demo/www) in Debian's headless Chromium through playwright-core
// and checks what a user sees in each flow. tests/browser/run starts the gateway, the demo worker
// and a static server, then runs this with:
//   SG_PAGE_URL          the page, served by the gateway itself (same origin)
//   SG_CROSS_ORIGIN_URL  the page from another origin, with ?api= pointing at the gateway (CORS)
//   SG_BOOTSTRAP  the embedded cluster's bootstrap address (for kcat, the outside producer)
//   SG_SHOTS      where the screenshots of each step go
// Every wait is bounded; the first failed check ends the run with exit code 1.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { chromium } from 'playwright-core';

const pageUrl = need('SG_PAGE_URL');
const crossOriginUrl = need('SG_CROSS_ORIGIN_URL');
const bootstrap = need('SG_BOOTSTRAP');
const shots = need('SG_SHOTS');
const WAIT_MS = 15000; // any one thing the page should show, at most
const nonce = Date.now().toString(36);

function need(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (run tests/browser/run BUILD_DIR)`);
  return value;
}

// Polls read() until check(value) holds; fails naming what it waited for and what it last saw.
async function until(what, read, check, timeoutMs = WAIT_MS) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await read();
    if (check(last)) return last;
    if (Date.now() > deadline) throw new Error(`waited ${timeoutMs} ms for ${what}; last saw: ${JSON.stringify(last)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const text = (locator) => () => locator.innerText();
const matching = (pattern) => (value) => pattern.test(value);

// kcat as the producer outside the page. A null value is a tombstone: kcat skips empty lines,
// but "key:" with -K: is an empty value, and -Z sends that as null.
function kcatProduce(key, value) {
  const args = ['-P', '-b', bootstrap, '-t', 'profiles'];
  if (value === null) {
    execFileSync('kcat', [...args, '-K:', '-Z'], { input: `${key}:\n`, timeout: 10000 });
  } else {
    execFileSync('kcat', [...args, '-k', key], { input: `${value}\n`, timeout: 10000 });
  }
}

// The records of a topic so far, as "key headers value" lines (kcat as a consumer outside the page).
function kcatRecords(topic) {
  return execFileSync('kcat', ['-C', '-b', bootstrap, '-t', topic, '-f', '%k %h %s\n', '-e', '-q'], { timeout: 10000 }).toString();
}

const userDataDir = mkdtempSync(join(tmpdir(), 'sg-chromium-'));
mkdirSync(shots, { recursive: true });
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: process.env.SG_CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
  viewport: { width: 1280, height: 900 },
  timeout: 30000,
});
const page = context.pages()[0] ?? (await context.newPage());
page.setDefaultTimeout(WAIT_MS);
const problems = [];
page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
// Chromium logs every 4xx/5xx response as "Failed to load resource": those are the point of some
// flows. Anything else logged as an error is a problem.
page.on('console', (msg) => {
  if (msg.type() === 'error' && !/^Failed to load resource: the server responded with a status of [45]\d\d /.test(msg.text())) {
    problems.push(`console error: ${msg.text()}`);
  }
});

let failed = false;
let step = 0;
async function check(name, body) {
  step += 1;
  try {
    await body();
    console.log(`ok ${step} - ${name}`);
  } catch (err) {
    failed = true;
    console.log(`not ok ${step} - ${name}\n  ${String(err.stack ?? err).replaceAll('\n', '\n  ')}`);
    await page.screenshot({ path: join(shots, `failed-${step}.png`), fullPage: true }).catch(() => {});
  }
}
const shot = (locator, file) => locator.screenshot({ path: join(shots, file) });

// The last exchange in a flow's panel, and all of the panel's text.
const exchanges = (region) => region.getByRole('list', { name: 'HTTP exchanges' });
const lastExchange = (region) => exchanges(region).locator(':scope > li').last();

try {
  await check('the page loads and finds the gateway ready', async () => {
    await page.goto(pageUrl);
    const state = page.getByRole('status', { name: 'Gateway state' });
    await until('the gateway state', text(state), matching(/^ready$/));
    await page.screenshot({ path: join(shots, '00-page.png'), fullPage: true });
  });

  const orders = page.getByRole('region', { name: 'Place an order' });
  const orderOutcome = orders.getByRole('status', { name: 'Outcome' });
  const placeOrder = orders.getByRole('button', { name: 'Place order' });

  await check('an order is answered by the worker in the response', async () => {
    await orders.getByLabel('Customer').fill('c-1');
    await orders.getByLabel('Item').selectOption('book');
    await orders.getByLabel('Quantity').fill('2');
    await placeOrder.click();
    await until('the confirmation', text(orderOutcome),
      matching(/^201: order ord-\d+-\d+ confirmed, total 25\.00 EUR \(in the response\)\.$/));
    const exchange = await lastExchange(orders).innerText();
    assert.match(exchange, /POST\s+\/orders\s+201/);
    assert.match(exchange, /Consistency-Token:?\s+\S{20,}/);
    assert.match(exchange, /"total": "25\.00"/);
    await shot(orders, '01-order-answered.png');
  });

  await check("an order the worker refuses shows the worker's 422", async () => {
    await orders.getByLabel('Item').selectOption('lamp');
    await placeOrder.click();
    await until('the refusal', text(orderOutcome),
      matching(/^422: Invalid order: not in the catalogue .* \(\/items\/0\/sku\) \(in the response\)\.$/));
  });

  await check('a slow order shows the 202, then the outcome pushed over the event stream', async () => {
    await orders.getByLabel('Item').selectOption('pen');
    await orders.getByLabel('Quantity').fill('3');
    await orders.getByLabel(/Slow worker/).check();
    const started = Date.now();
    await placeOrder.click();
    await until('the 202', text(orderOutcome), matching(/^202 Accepted: no answer yet\. Waiting for it on \/requests\/\S+…$/));
    assert.ok(Date.now() - started >= 2500, 'the 202 came before the route timeout (3 s)');
    const post = await exchanges(orders).locator(':scope > li').nth(-2).innerText();
    assert.match(post, /POST\s+\/orders\s+202/);
    assert.match(post, /Location:?\s+\/requests\/\S+/);
    await until('the event stream', text(lastExchange(orders)), matching(/GET\s+\/requests\/\S+\s+200[\s\S]*event: pending/));
    await shot(orders, '02-order-accepted.png');
    await until('the pushed outcome', text(orderOutcome),
      matching(/^201: order ord-\d+-\d+ confirmed, total 3\.60 EUR \(pushed over the event stream\)\.$/));
    const stream = await lastExchange(orders).innerText();
    assert.match(stream, /event: done[\s\S]*"total": "3\.60"[\s\S]*closed by the page/);
    await shot(orders, '03-order-pushed.png');
    await orders.getByLabel(/Slow worker/).uncheck();
  });

  await check('Prefer: respond-async answers 202 at once with Preference-Applied', async () => {
    await orders.getByLabel(/Don't wait/).check();
    await placeOrder.click();
    await until('the pushed outcome', text(orderOutcome), matching(/^201: order .* \(pushed over the event stream\)\.$/));
    const post = await exchanges(orders).locator(':scope > li').nth(-2).innerText();
    assert.match(post, /Prefer:?\s+respond-async/);
    assert.match(post, /POST\s+\/orders\s+202/);
    assert.match(post, /Preference-Applied:?\s+respond-async/);
    await orders.getByLabel(/Don't wait/).uncheck();
  });

  const name = `Ada ${nonce}`;
  await check('a profile written is read back with its token', async () => {
    const profiles = page.getByRole('region', { name: 'Read your own writes' });
    await profiles.getByLabel('Customer').fill('c-1');
    await profiles.getByLabel('Name').fill(name);
    await profiles.getByRole('button', { name: 'Save and read back' }).click();
    const withToken = profiles.getByRole('status', { name: 'Read with the token' });
    await until('the read with the token', text(withToken), (value) => value === `200: {"name":"${name}","email":"ada@example.com"}`);
    const token = await profiles.getByRole('status', { name: 'Token from the PUT' }).innerText();
    assert.match(token, /^[A-Za-z0-9_-]{20,}$/);
    // The read without the token is answered from the table as it is: the write, or no row yet.
    const without = await profiles.getByRole('status', { name: 'Read without the token' }).innerText();
    assert.match(without, /^(200: \{.*\}|404: .*)$/);
    const log = exchanges(profiles).locator(':scope > li');
    assert.equal(await log.count(), 3);
    assert.match(await log.nth(0).innerText(), /PUT\s+\/profiles\/c-1\s+202[\s\S]*Consistency-Token:?\s+\S+/);
    const read = await log.nth(1).innerText();
    assert.match(read, /GET\s+\/profiles\/c-1\s+200/);
    assert.ok(read.includes(token), 'the read sends the PUT\'s token');
    assert.match(await log.nth(2).innerText(), /GET\s+\/profiles\/c-1\s+(200|404)/);
    await shot(profiles, '04-read-your-writes.png');
  });

  await check('the live view of a row follows writes from outside the page', async () => {
    const live = page.getByRole('region', { name: 'Live view of a row' });
    const row = live.getByRole('status', { name: 'Current value' });
    await live.getByLabel('Key').fill('c-1');
    await live.getByRole('button', { name: 'Watch' }).click();
    await until('the current row', text(row), (value) => value.includes(name));
    const outside = `Grace ${nonce}`;
    kcatProduce('c-1', JSON.stringify({ name: outside }));
    await until("kcat's update", text(row), (value) => value === JSON.stringify({ name: outside }));
    const stream = await lastExchange(live).innerText();
    assert.match(stream, /GET\s+\/tables\/profiles\/c-1\s+200/);
    assert.equal((stream.match(/event: update/g) ?? []).length, 2, stream);
    await shot(live, '05-live-update.png');
    kcatProduce('c-1', null);
    await until("kcat's tombstone", text(row), (value) => value === '(no such row)');
    assert.match(await lastExchange(live).innerText(), /event: delete/);
    await live.getByRole('button', { name: 'Stop watching' }).click();
    await until('the stream closed', text(lastExchange(live)), matching(/closed by the page/));
  });

  const payments = page.getByRole('region', { name: 'Pay (Avro schema)' });
  const payOutcome = payments.getByRole('status', { name: 'Outcome' });
  const errorOf = async (label) => {
    const id = await payments.getByLabel(label, { exact: true }).getAttribute('aria-describedby');
    return payments.locator(`#${id}`);
  };

  await check("a payment the schema refuses shows the 422's field next to that field", async () => {
    await payments.getByLabel('Payment id').fill(`p-${nonce}`);
    await payments.getByLabel('Amount').fill('12,50');
    await payments.getByRole('button', { name: 'Pay' }).click();
    const amountError = await errorOf('Amount');
    await until('the amount error', text(amountError), matching(/^\/amount: expected a decimal number/));
    assert.equal(await payments.getByLabel('Amount').getAttribute('aria-invalid'), 'true');
    for (const other of ['Payment id', 'Customer', 'Currency', 'Note (optional)']) {
      assert.equal(await (await errorOf(other)).innerText(), '', `no error next to ${other}`);
      assert.equal(await payments.getByLabel(other, { exact: true }).getAttribute('aria-invalid'), null);
    }
    assert.match(await payOutcome.innerText(), /^422: Schema Violation/);
    assert.match(await lastExchange(payments).innerText(), /POST\s+\/payments\s+422[\s\S]*"field": "\/amount"/);
    await shot(payments, '06-payment-422.png');
  });

  await check('a currency outside the enum is pointed at the currency field', async () => {
    await payments.getByLabel('Amount').fill('12.50');
    await payments.getByLabel('Currency').selectOption('JPY');
    await payments.getByRole('button', { name: 'Pay' }).click();
    await until('the currency error', text(await errorOf('Currency')), matching(/^\/currency: /));
    assert.equal(await (await errorOf('Amount')).innerText(), '');
  });

  await check('a valid payment is accepted and read back from the table', async () => {
    await payments.getByLabel('Currency').selectOption('EUR');
    await payments.getByRole('button', { name: 'Pay' }).click();
    await until('the stored payment', text(payOutcome), matching(/^Stored, read back from the table: \{.*"amount":"12\.50".*\}$/));
    assert.equal(await (await errorOf('Currency')).innerText(), '');
    await shot(payments, '07-payment-stored.png');
  });

  const auth = page.getByRole('region', { name: 'Sign in, and a scoped action' });
  const authOutcome = auth.getByRole('status', { name: 'Outcome' });
  const signedInAs = auth.getByRole('status', { name: 'Signed in as' });
  const scopes = auth.getByRole('status', { name: 'Scopes' });
  const cancelOrder = auth.getByRole('button', { name: 'Cancel order' });
  const orderId = `ord-${nonce}`;
  const signInAs = async (identity) => {
    await auth.getByLabel('Demo identity').selectOption(identity);
    await auth.getByRole('button', { name: 'Sign in' }).click();
    await until(`signed in as ${identity}`, text(signedInAs), (value) => value.startsWith(`${identity} (`));
  };

  await check('signed out, the scoped action is a 401 missing-credential with WWW-Authenticate: Bearer', async () => {
    assert.equal(await signedInAs.innerText(), 'nobody');
    assert.equal(await scopes.innerText(), '(none)');
    await auth.getByLabel('Order id', { exact: true }).fill(orderId);
    await cancelOrder.click();
    await until('the 401', text(authOutcome),
      matching(/^401 missing-credential: this endpoint needs a credential: Authorization: Bearer TOKEN or X-API-Key$/));
    const exchange = await lastExchange(auth).innerText();
    assert.match(exchange, new RegExp(`POST\\s+/orders/${orderId}/cancel\\s+401`));
    assert.doesNotMatch(exchange, /Authorization:?\s+Bearer eyJ/, 'nothing sent as a credential');
    assert.match(exchange, /WWW-Authenticate:?\s+Bearer\s/);
    assert.match(exchange, /"type": "urn:streamgate:problem:missing-credential"/);
    await shot(auth, '08-auth-401.png');
  });

  await check('signed in as the viewer (no orders:cancel), it is a 403 insufficient-scope', async () => {
    await signInAs('viewer');
    assert.equal(await signedInAs.innerText(), 'viewer (Vera Viewer)');
    assert.equal(await scopes.innerText(), 'orders:read');
    const claims = JSON.parse(await auth.getByLabel('Token claims').innerText());
    assert.equal(claims.iss, 'https://demo.streamgate.invalid');
    assert.equal(claims.sub, 'viewer');
    await cancelOrder.click();
    await until('the 403', text(authOutcome), matching(/^403 insufficient-scope: this endpoint needs the scope orders:cancel$/));
    const exchange = await lastExchange(auth).innerText();
    assert.match(exchange, new RegExp(`POST\\s+/orders/${orderId}/cancel\\s+403`));
    assert.match(exchange, /Authorization:?\s+Bearer eyJ\S+…/);
    assert.match(exchange, /WWW-Authenticate:?\s+Bearer error="insufficient_scope".*scope="orders:cancel"/);
    assert.match(exchange, /"type": "urn:streamgate:problem:insufficient-scope"/);
    await shot(auth, '09-auth-403.png');
  });

  await check('signed in as the admin, it is a 202 and the event carries the principal', async () => {
    await signInAs('admin');
    assert.equal(await scopes.innerText(), 'orders:read orders:cancel registry:read metrics:read');
    await cancelOrder.click();
    await until('the 202', text(authOutcome),
      matching(new RegExp(`^202: the cancellation of ${orderId} is in orders\\.cancellations partition \\d+ at offset \\d+, sent as admin\\.$`)));
    const exchange = await lastExchange(auth).innerText();
    assert.match(exchange, new RegExp(`POST\\s+/orders/${orderId}/cancel\\s+202[\\s\\S]*Consistency-Token:?\\s+\\S{20,}`));
    const records = kcatRecords('orders.cancellations').split('\n').filter((line) => line.startsWith(`${orderId} `));
    assert.equal(records.length, 1, 'one record: the refused attempts produced nothing');
    assert.match(records[0], /streamgate-principal=admin/);
    assert.match(records[0], /\{"reason":"changed my mind"\}$/);
    await shot(auth, '10-auth-202.png');
  });

  await check('signed out again, the page sends no credential', async () => {
    await auth.getByRole('button', { name: 'Sign out' }).click();
    await until('signed out', text(signedInAs), (value) => value === 'nobody');
    await cancelOrder.click();
    await until('the 401', text(authOutcome), matching(/^401 missing-credential: /));
    assert.doesNotMatch(await lastExchange(auth).innerText(), /Authorization:?\s+Bearer eyJ/);
  });

  await check('the page from another origin talks to the gateway through CORS', async () => {
    const other = await context.newPage();
    other.setDefaultTimeout(WAIT_MS);
    other.on('pageerror', (err) => problems.push(`page error (cross-origin): ${err.message}`));
    try {
      await other.goto(crossOriginUrl);
      assert.notEqual(new URL(crossOriginUrl).origin, new URL(pageUrl).origin);
      await until('the gateway state', text(other.getByRole('status', { name: 'Gateway state' })), matching(/^ready$/));
      const region = other.getByRole('region', { name: 'Place an order' });
      await region.getByLabel('Customer').fill('c-2');
      await region.getByLabel('Item').selectOption('book');
      await region.getByLabel('Quantity').fill('1');
      await region.getByRole('button', { name: 'Place order' }).click();
      await until('the confirmation', text(region.getByRole('status', { name: 'Outcome' })), matching(/^201: order /));
      // Consistency-Token is shown only when the gateway exposes it to the other origin.
      assert.match(await lastExchange(region).innerText(), /POST\s+\/orders\s+201[\s\S]*Consistency-Token:?\s+\S{20,}/);
    } finally {
      await other.close();
    }
  });

  await check('no script errors on the page', async () => {
    assert.deepEqual(problems, []);
  });
  await page.screenshot({ path: join(shots, '11-page-after.png'), fullPage: true });
} finally {
  await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
}
console.log(failed ? `FAILED (screenshots in ${shots})` : `all ${step} checks passed (screenshots in ${shots})`);
process.exit(failed ? 1 : 0);
