// Browser end-to-end tests of the Vitals web UI against a running `vitals demo`
// (VITALS_URL), in Debian's chromium through playwright-core. A tiny runner: tests run in
// order in one browser, each in a fresh page; screenshots go to out/. Prints
// "N passed, N failed" last and exits 1 on any failure.
import { chromium } from 'playwright-core';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const base = process.env.VITALS_URL ?? 'http://127.0.0.1:8080';
const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, 'out');
mkdirSync(out, { recursive: true });

const tests = [];
const test = (name, fn) => tests.push({ name, fn });

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

/** Retries `fn` (reloading the page between tries) until it returns a truthy value: the demo
 *  is alive, so some things show only after its first probes and polls. Bounded. */
async function eventually(page, what, fn, tries = 30) {
  let last;
  for (let i = 0; i < tries; i++) {
    try {
      const v = await fn();
      if (v) return v;
      last = 'not yet';
    } catch (e) {
      last = e.message;
    }
    await page.waitForTimeout(1000);
    await page.reload();
  }
  throw new Error(`${what}: not seen after ${tries} tries (${last})`);
}

async function api(path, init) {
  const r = await fetch(base + path, init);
  const body = await r.text();
  return { status: r.status, json: body ? JSON.parse(body) : null };
}

async function shot(page, name) {
  await page.screenshot({ path: join(out, `${name}.png`), fullPage: true });
}

const rows = (page) => page.locator('#assets tbody tr');

// ---------------------------------------------------------------------------------------------

test('overview lists the estate worst first with counts', async (page) => {
  await page.goto(base + '/');
  assert((await page.locator('h1').textContent()).includes('Overview'), 'h1 is not Overview');
  // 12 fleet nodes + the broker + services + clinics + vitals itself.
  await eventually(page, '≥ 20 assets and a crit one', async () =>
    (await rows(page).count()) >= 20 &&
    Number(await page.locator('[data-count="crit"]').textContent()) >= 1);
  const statuses = await rows(page).evaluateAll((trs) => trs.map((t) => t.dataset.status));
  const rank = { crit: 5, warn: 4, unknown: 3, pending: 2, ok: 1 };
  for (let i = 1; i < statuses.length; i++) {
    assert(rank[statuses[i - 1]] >= rank[statuses[i]], `not worst first: ${statuses.join(',')}`);
  }
  const all = Number(await page.locator('[data-count="all"]').textContent());
  assert(all === (await rows(page).count()), `"All: ${all}" but ${await rows(page).count()} rows`);
  await shot(page, '01-overview');
});

test('filter by status and search', async (page) => {
  await page.goto(base + '/');
  await page.selectOption('#filter-status', 'crit');
  await Promise.all([page.waitForURL(/status=crit/), page.click('#filters button[type="submit"]')]);
  const n = await rows(page).count();
  assert(n >= 1, 'no crit rows');
  const statuses = await rows(page).evaluateAll((trs) => trs.map((t) => t.dataset.status));
  assert(statuses.every((s) => s === 'crit'), `non-crit rows under the crit filter: ${statuses}`);
  assert((await page.locator('#shown').textContent()).startsWith(`${n} of `), 'the "shown" line disagrees');
  await shot(page, '02-filter-crit');

  await page.goto(base + '/');
  await page.fill('#filter-q', 'clinic-');
  await Promise.all([page.waitForURL(/q=clinic-/), page.press('#filter-q', 'Enter')]);
  const ids = await rows(page).evaluateAll((trs) => trs.map((t) => t.dataset.asset));
  assert(ids.length === 5, `want the 5 clinics, got ${ids}`);
  assert(ids.every((id) => id.startsWith('clinic-')), `search let through ${ids}`);
  await shot(page, '03-search-clinic');
});

test('open an asset: MinLog2 with its components', async (page) => {
  await page.goto(base + '/?q=minlog2');
  await Promise.all([page.waitForURL(/\/assets\/minlog2/), page.click('#assets tbody tr[data-asset="minlog2"] a')]);
  await eventually(page, 'the Stamdata database component', async () =>
    (await page.content()).includes('Stamdata database'));
  assert((await page.locator('h1').textContent()).includes('MinLog2'), 'h1 does not name MinLog2');
  await shot(page, '04-asset-minlog2');
});

test('change the time range of an asset', async (page) => {
  await page.goto(base + '/assets/minlog2');
  await Promise.all([page.waitForURL(/range=24h/), page.click('#range-24h')]);
  assert((await page.getAttribute('#range-24h', 'aria-current')) === 'true', '24h is not marked current');
  assert((await page.getAttribute('#range-1h', 'aria-current')) !== 'true', '1h is still marked current');
  const history = await page.locator('#check-monitor').textContent();
  const seen = Number((history.match(/(\d+) observations/) ?? [])[1]);
  assert(seen >= 1, `the 24 h history of the monitor check shows no observations: ${history}`);
  assert((await page.locator('#check-monitor svg').count()) >= 1, 'no chart in the 24 h history');
  await shot(page, '05-asset-range-24h');
  await Promise.all([page.waitForURL(/range=7d/), page.click('#range-7d')]);
  assert((await page.getAttribute('#range-7d', 'aria-current')) === 'true', '7d is not marked current');
  await shot(page, '06-asset-range-7d');
});

test('acknowledge a firing alert', async (page) => {
  await page.goto(base + '/alerts');
  const form = await eventually(page, 'a firing alert with an acknowledge form', async () => {
    const f = page.locator('form.ack').first();
    return (await f.count()) ? f : null;
  });
  const id = (await form.getAttribute('id')).replace('ack-', '');
  await page.fill(`#ack-comment-${id}`, 'looking into it (e2e)');
  await Promise.all([page.waitForURL(/\/alerts/), page.click(`#ack-${id} button[type="submit"]`)]);
  await page.waitForLoadState('load');
  const row = page.locator(`#alert-${id}`);
  assert((await row.getAttribute('data-state')) === 'acknowledged', `alert ${id} is ${await row.getAttribute('data-state')}`);
  assert((await row.textContent()).includes('looking into it (e2e)'), 'the comment is not shown');
  const { json } = await api(`/api/v1/alerts/${id}`);
  assert(json.alert.state === 'acknowledged', `the API says ${json.alert.state}`);
  await shot(page, '07-alert-acknowledged');
});

test('create a silence', async (page) => {
  await page.goto(base + '/alerts');
  const before = (await api('/api/v1/silences')).json.silences.length;
  await page.fill('#silence-assets', 'patient-api');
  await page.fill('#silence-duration', '1h');
  await page.fill('#silence-comment', 'cache migration (e2e)');
  await Promise.all([page.waitForURL(/\/alerts/), page.click('#silence-new button[type="submit"]')]);
  await page.waitForLoadState('load');
  const silences = (await api('/api/v1/silences')).json.silences;
  assert(silences.length === before + 1, `silences ${before} → ${silences.length}`);
  const made = silences.find((s) => s.comment === 'cache migration (e2e)');
  assert(made && made.matchers.assets.includes('patient-api'), 'the new silence does not match patient-api');
  const row = page.locator(`#silence-${made.id}`);
  assert((await row.count()) === 1, `silence ${made.id} is not listed`);
  const text = await row.textContent();
  assert(text.includes('patient-api') && text.includes('cache migration (e2e)'), `the row says ${text}`);
  // The demo's own silence of the drifting clinic is listed too, and its alert shows as silenced.
  assert((await page.locator('#silences-list').textContent()).includes('clinic-4'), 'the demo silence is not listed');
  assert((await page.content()).includes('silenced by silence'), 'no alert shows as silenced');
  await shot(page, '08-silence-created');
});

test('fleet: a dozen nodes, the offline one explained', async (page) => {
  await page.goto(base + '/fleet');
  await eventually(page, '12 nodes', async () => (await page.locator('#fleet-nodes tbody tr').count()) === 12);
  assert((await page.locator('#fleet-nodes tbody tr[data-node="8"]').textContent()).includes('OFFLINE'), 'node 8 is not OFFLINE');
  await shot(page, '09-fleet');
  await Promise.all([page.waitForURL(/\/fleet\/8/), page.click('#fleet-nodes tbody tr[data-node="8"] a')]);
  assert((await page.content()).includes('OFFLINE'), 'the node page does not say OFFLINE');
  await shot(page, '10-fleet-node-8');
});

test('notifications were delivered', async (page) => {
  await page.goto(base + '/notifications');
  const sent = await eventually(page, 'sent notifications', async () =>
    page.locator('tr[data-notification][data-state="sent"]').count());
  assert(sent >= 2, `only ${sent} sent`);
  const text = await page.locator('main').textContent();
  assert(text.includes('hook') && text.includes('alert-log'), 'not both notifiers listed');
  await shot(page, '11-notifications');
});

// ---------------------------------------------------------------------------------------------

const userDataDir = mkdtempSync(join(tmpdir(), 'vitals-e2e-chromium-'));
// A fresh profile each run; playwright takes it as the persistent context's directory.
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
  viewport: { width: 1280, height: 900 },
});
let passed = 0;
let failed = 0;
try {
  context.setDefaultTimeout(10000);
  for (const t of tests) {
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    try {
      await t.fn(page);
      assert(errors.length === 0, `JavaScript errors: ${errors.join('; ')}`);
      passed++;
      console.log(`ok   ${t.name}`);
    } catch (e) {
      failed++;
      console.log(`FAIL ${t.name}: ${e.message.split('\n')[0]}`);
      await shot(page, `fail-${t.name.replace(/[^a-z0-9]+/gi, '-')}`).catch(() => {});
    }
    await page.close();
  }
} finally {
  await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
