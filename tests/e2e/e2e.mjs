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


test('overview: uptime over 24 h, 7 d, 30 d and the last 50 results per asset', async (page) => {
  await page.goto(base + '/');
  const heads = await page.locator('#assets thead th').allTextContents();
  for (const h of ['Last 50 results', '24 h', '7 d', '30 d']) {
    assert(heads.includes(h), `no "${h}" column: ${heads}`);
  }
  // The clinics push every 5 s: after a few pushes their bars have several results.
  const row = page.locator('#assets tr[data-asset="clinic-1"]');
  await eventually(page, 'clinic-1 with 3+ results in its bar', async () => {
    const label = await row.locator('.beats').getAttribute('aria-label');
    const n = Number((label.match(/^Last (\d+) results/) ?? [])[1]);
    return n >= 3;
  });
  const cells = (await row.locator('td').allTextContents()).slice(2, 5);
  assert(cells.length === 3 && cells.every((c) => /^\d+(\.\d\d)? %$/.test(c)), `uptime cells: ${cells}`);
  // The drifting clinic goes crit: its bar has red cells and its uptime is below 100 %.
  const drifting = page.locator('#assets tr[data-asset="clinic-4"]');
  await eventually(page, 'a red cell in clinic-4\'s bar', async () =>
    (await drifting.locator('.beats hr[class^="c"]').count()) >= 1);
  const up24 = (await drifting.locator('td').nth(2).textContent()).trim();
  assert(up24 !== '100 %', `clinic-4 is crit yet 100 % up: ${up24}`);
  // The bars are drawn: a cell has a real size on screen.
  const box = await row.locator('.beats').boundingBox();
  assert(box && box.width >= 100 && box.height >= 10, `bar box ${JSON.stringify(box)}`);
  await shot(page, '12-overview-uptime-bars');
});

test('asset page: uptime, last 50 per check and a chart of a pushed value', async (page) => {
  await page.goto(base + '/assets/clinic-1?range=1h');
  await eventually(page, 'the heartrate chart', async () =>
    (await page.locator('.value-chart[data-value="heartrate"] svg.lines polyline').count()) === 1);
  const legend = await page.locator('.value-chart[data-value="heartrate"] .legend').textContent();
  assert(/heartrate: last \d+/.test(legend), `legend: ${legend}`);
  assert((await page.locator('#asset-uptime').textContent()).includes('24 h'), 'no asset uptime line');
  assert((await page.locator('#checks tr[data-check="heart"] .beats hr[title]').count()) >= 1, 'no per-result tooltips');
  await shot(page, '13-asset-values-chart');
  await page.goto(base + '/assets/clinic-1?range=7d');
  assert((await page.locator('.value-chart[data-value="heartrate"]').count()) === 1, 'no hourly heartrate chart over 7 d');
  assert((await page.locator('h4.values').textContent()).includes('hourly means'), 'the 7 d chart does not say it is hourly');
});

test('alerts name their assets', async (page) => {
  await page.goto(base + '/alerts');
  const links = await eventually(page, 'an alert row', async () => {
    const l = page.locator('tr[data-alert] a[href^="/assets/"]');
    return (await l.count()) ? l : null;
  });
  const texts = await links.allTextContents();
  const ids = await links.evaluateAll((as) => as.map((a) => a.getAttribute('href').replace('/assets/', '')));
  assert(texts.some((t, i) => t !== decodeURIComponent(ids[i])), `alerts show ids, not names: ${texts}`);
  assert(texts.some((t) => t.includes('ED') || t.includes('Patient') || t.includes('MinLog2')), `no known name among ${texts}`);
});

test('send a test message from the notifiers page', async (page) => {
  await page.goto(base + '/notifiers');
  assert((await page.locator('#notifiers tr[data-notifier="hook"]').count()) === 1, 'hook is not listed');
  await Promise.all([page.waitForURL(/\/notifiers\/hook\/test/), page.click('#test-hook button[type="submit"]')]);
  const result = page.locator('#test-result');
  assert((await result.getAttribute('data-delivered')) === 'true', `not delivered: ${await result.textContent()}`);
  assert((await result.textContent()).includes('HTTP 200'), 'no receiver answer shown');
  const { json } = await api('/api/v1/audit?limit=20');
  assert(json.audit.some((e) => e.action === 'POST /notifiers/hook/test'), 'the test is not in the audit log');
  await shot(page, '14-notifier-tested');
});

test('post a notice; the public status page shows it, with nothing else of the estate', async (page) => {
  await page.goto(base + '/status-pages');
  await page.selectOption('#notice-kind-clinics', 'incident');
  await page.fill('#notice-title-clinics', 'Imports from the clinics are delayed (e2e)');
  await page.fill('#notice-body-clinics', 'We are on it.');
  await Promise.all([page.waitForURL(/\/status-pages/), page.click('#notice-new-clinics button[type="submit"]')]);
  await page.waitForLoadState('load');
  assert((await page.content()).includes('Imports from the clinics are delayed (e2e)'), 'the notice is not listed');
  await shot(page, '15-status-pages-admin');

  await page.goto(base + '/status/clinics');
  const text = await page.locator('main').textContent();
  assert(text.includes('Imports from the clinics are delayed (e2e)'), 'the public page lacks the notice');
  assert(text.includes('Patient portal maintenance'), 'the demo\'s maintenance notice is missing');
  assert(text.includes('Patient API') && text.includes('Klinikum Nordstadt ED'), 'a listed service is missing');
  for (const hidden of ['MinLog2', 'Lab gateway', 'clinic-1', 'heart rate']) {
    assert(!text.includes(hidden), `the public page shows ${hidden}`);
  }
  assert((await page.locator('script').count()) === 0, 'the public page has a script');
  assert((await page.locator('a').count()) === 0, 'the public page links somewhere');
  assert((await page.locator('#services tbody tr').count()) === 7, 'not 7 services (2 listed + 5 clinics)');
  await shot(page, '16-status-page-public');
});

// ---------------------------------------------------------------------------------------------

test('sources: three hospitals, the changed field named, probe patients shown', async (page) => {
  await page.goto(base + '/sources');
  assert((await page.locator('h1').textContent()).includes('Sources'), 'h1 is not Sources');
  const row = (id) => page.locator(`#sources-table tr[data-source="${id}"]`);
  await eventually(page, 'three sources with results, hsm naming the family field', async () =>
    (await page.locator('#sources-table tbody tr').count()) === 3 &&
    (await row('hsm').locator('.reason').textContent()).includes('fields differ: family') &&
    (await row('hsj').locator('.reason').textContent()).includes('all fields agree'));
  // The value itself is never shown, only the field's name.
  const text = await row('hsm').textContent();
  assert(!text.includes('Diaz') && !text.includes('DIAZ'), `a value leaked: ${text}`);
  assert((await row('hsj').locator('.probe-patient').count()) === 2, 'hsj has two probe patients');
  assert((await row('hsm').locator('.status').textContent()) === 'WARN', 'hsm is WARN');
  assert((await page.locator('#source-events li').count()) >= 3, 'the sources appeared in the change list');
  const api1 = await api('/api/v1/engine/sources');
  assert(api1.status === 200 && api1.json.source_sets[0].sources.length === 3, 'the API lists three sources');
  await shot(page, 'sources');
});

test('pipelines: three stages in order; the stalled transform is named', async (page) => {
  await page.goto(base + '/pipelines');
  assert((await page.locator('h1').textContent()).includes('Pipelines'), 'h1 is not Pipelines');
  const stages = page.locator('#pipeline-catalogue-update tbody tr');
  // Right after start the stages may not have reported yet (UNKNOWN, "waiting for the first
  // report"); the pipeline evaluates every 15 s.
  await eventually(page, 'three stages with a status', async () =>
    (await stages.count()) === 3 &&
    !['PENDING', 'UNKNOWN'].includes(
      (await page.locator('#pipeline-status-catalogue-update .status').textContent()).trim()), 60);
  const names = await stages.locator('th').allTextContents();
  assert(names.join(',') === 'extract,transform,load', `stages in order: ${names}`);
  // The demo's transform stalls for 90 s of every 5 minutes; whatever the moment, the status
  // is either all flowing or names the transform.
  const reason = await page.locator('#pipeline-status-catalogue-update .reason').textContent();
  assert(reason === 'all 3 stages flowing' || reason.startsWith('stuck at transform') || reason.startsWith('failing at transform'),
    `pipeline reason: ${reason}`);
  await eventually(page, 'throughput sparklines', async () =>
    (await page.locator('#pipeline-catalogue-update svg.spark').count()) >= 3, 40);
  await shot(page, 'pipelines');
});

test('jobs: override the schedule, see it differ from the file, remove it; run now', async (page) => {
  await page.goto(base + '/jobs');
  const job = page.locator('#job-rebuild-source-list');
  await job.locator('#job-rebuild-source-list-schedule-input').fill('*/30 * * * * *');
  await job.locator('#job-rebuild-source-list-schedule').click();
  await page.waitForURL(/\/jobs/);
  const sched = await page.locator('#job-rebuild-source-list .schedule').textContent();
  assert(sched.includes('overridden') && sched.includes('0 * * * * *'), `schedule shows the override: ${sched}`);
  await page.locator('#job-rebuild-source-list-pause').click();
  await page.waitForURL(/\/jobs/);
  assert((await page.locator('#job-rebuild-source-list .state').textContent()).includes('paused'), 'paused is shown');
  await page.locator('#job-rebuild-source-list-override-remove').click();
  await page.waitForURL(/\/jobs/);
  const after = await page.locator('#job-rebuild-source-list .schedule').textContent();
  assert(after.includes('as in the file'), `override removed: ${after}`);
  await page.locator('#job-rebuild-source-list-run').click();
  await page.waitForURL(/\/jobs/);
  await eventually(page, 'a run by the web UI in the history', async () =>
    (await page.locator('#job-rebuild-source-list table.runs').textContent()).includes('(web UI)'));
  const audit = await api('/api/v1/audit');
  assert(audit.status === 200 && JSON.stringify(audit.json).includes('/jobs/rebuild-source-list/schedule'), 'the override is audited');
  await shot(page, 'jobs');
});

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

// Readable with JavaScript off: the overview's bars and uptime and the public status page are
// server-rendered, so a browser without JavaScript sees them all.
const noJsDir = mkdtempSync(join(tmpdir(), 'vitals-e2e-chromium-nojs-'));
const noJs = await chromium.launchPersistentContext(noJsDir, {
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  javaScriptEnabled: false,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
  viewport: { width: 1280, height: 900 },
});
try {
  const page = await noJs.newPage();
  await page.goto(base + '/');
  const bars = await page.locator('#assets .beats').count();
  const cells = await page.locator('#assets td:nth-child(4)').count();
  assert(bars >= 20 && cells >= 20, `without JavaScript: ${bars} bars, ${cells} rows with uptime`);
  await shot(page, '17-overview-no-javascript');
  await page.goto(base + '/status/clinics');
  assert((await page.locator('#services .beats').count()) === 7, 'status page bars without JavaScript');
  await shot(page, '18-status-page-no-javascript');
  passed++;
  console.log('ok   readable with JavaScript off (overview, status page)');
} catch (e) {
  failed++;
  console.log(`FAIL readable with JavaScript off: ${e.message.split('\n')[0]}`);
} finally {
  await noJs.close();
  rmSync(noJsDir, { recursive: true, force: true });
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
