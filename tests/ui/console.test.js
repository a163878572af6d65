/*
 * console.test.js — the web console (/ui/) in headless Chromium, run by
 * tests/ui/test_ui.sh (which starts the cluster, loads the people and
 * builds the NSS database the browser takes its certificates from).
 *
 * One browser per role, each with its own profile: the profile's
 * Preferences auto-select the certificate whose subject OU is that role for
 * the console's origin, so Chromium presents it itself in the TLS
 * handshake. In order:
 *   terminal    the console loads (CSP and no-cache headers, Japanese by
 *               default); a kana search finds the known person; the record
 *               opens; the face photo is not fetched until a purpose is
 *               chosen, then it shows; English and back; the cluster map
 *               refused to this role shows the API's code and request_id
 *   caseworker  a shelter's summary counts the person
 *   auditor     the audit view lists the photo view with its purpose
 *   operator    the cluster map shows the three regions and the leader;
 *               sapporo's node is killed (deploy/local-cluster kill-region)
 *               and the map turns sapporo red within a deadline (polled)
 * Every page must make no request outside its node and log no CSP
 * violation. Screenshots: $KZ_UI_SHOTS/*.png.
 */
'use strict';

const fs = require('fs');
const path = require('path');
const https = require('https');
const { execFileSync } = require('child_process');

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error('missing environment ' + k);
  return v;
};
const URL_BASE = env('KZ_UI_URL');
const TMP = env('KZ_UI_TMP');
const HOME = env('KZ_UI_HOME');
const SHOTS = env('KZ_UI_SHOTS');
const PKI = env('KZ_UI_PKI');
const VICTIM = env('KZ_UI_VICTIM');
const CLUSTER = env('KZ_UI_CLUSTER');
const LC = env('KZ_UI_LC');
const { chromium } = require(env('KZ_UI_PLAYWRIGHT'));

const DEADLINE_MS = 30000; /* for anything the cluster must do */
let failed = 0;
function ok(what) { console.log('ok    ' + what); }
function check(cond, what) {
  if (cond) ok(what);
  else { failed++; console.log('FAIL  ' + what); }
}

async function shot(page, name) {
  const file = path.join(SHOTS, name + '.png');
  await page.screenshot({ path: file, fullPage: true });
  console.log('      screenshot ' + file);
}

/* A browser whose profile selects the certificate of `role` for the
 * console's origin (content setting auto_select_certificate, the store of
 * Chromium's AutoSelectCertificateForUrls). */
async function browserFor(role) {
  const profile = path.join(TMP, 'profile-' + role);
  fs.mkdirSync(path.join(profile, 'Default'), { recursive: true });
  const prefs = {
    profile: { content_settings: { exceptions: { auto_select_certificate: {
      [URL_BASE + ',*']: { setting: { filters: [{ SUBJECT: { OU: role } }] } }
    } } } }
  };
  fs.writeFileSync(path.join(profile, 'Default', 'Preferences'), JSON.stringify(prefs));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.KZ_UI_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    env: { ...process.env, HOME },
    viewport: { width: 1280, height: 800 },
    locale: 'ja-JP'
  });
  const page = ctx.pages()[0] || (await ctx.newPage());
  const problems = [];
  page.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith(URL_BASE + '/') && !u.startsWith('data:') && !u.startsWith('blob:') && u !== 'about:blank')
      problems.push('request outside the node: ' + u);
  });
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content.Security.Policy|Refused to/i.test(m.text()))
      problems.push('CSP: ' + m.text());
  });
  return { ctx, page, problems, role };
}

async function done(b) {
  check(b.problems.length === 0, b.role + ': no request outside the node, no CSP violation' +
    (b.problems.length ? ' (' + b.problems.join('; ') + ')' : ''));
  await b.ctx.close();
}

/* PUT /v1/photos/{id} as the registrar (Node's TLS, not the browser). */
function putPhoto(id, jpeg) {
  return new Promise((resolve, reject) => {
    const u = new URL(URL_BASE + '/v1/photos/' + id);
    const req = https.request({
      hostname: u.hostname, port: u.port, path: u.pathname, method: 'PUT',
      ca: fs.readFileSync(path.join(PKI, 'ca.pem')),
      cert: fs.readFileSync(path.join(PKI, 'registrar.pem')),
      key: fs.readFileSync(path.join(PKI, 'registrar.key')),
      headers: { 'Content-Type': 'image/jpeg', 'Content-Length': jpeg.length }
    }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', reject);
    req.end(jpeg);
  });
}

async function terminal() {
  const b = await browserFor('terminal');
  const { page } = b;
  /* A real JPEG for the person's photo: a screenshot of a plain page. */
  await page.setContent('<body style="margin:0"><div style="width:120px;height:160px;background:#3a6ea5"></div></body>');
  const jpeg = await page.screenshot({ type: 'jpeg', clip: { x: 0, y: 0, width: 120, height: 160 } });
  const put = await putPhoto(VICTIM, jpeg);
  check(put === 200 || put === 201, 'registrar PUT /v1/photos/{id}: ' + put);

  const resp = await page.goto(URL_BASE + '/ui/');
  check(resp.status() === 200, 'GET /ui/ through the browser\'s certificate: ' + resp.status());
  const h = resp.headers();
  check(/default-src 'self'/.test(h['content-security-policy'] || '') &&
        !/unsafe-inline/.test(h['content-security-policy'] || ''), 'strict CSP on /ui/');
  check(h['cache-control'] === 'no-cache' && /text\/html/.test(h['content-type'] || ''), '/ui/ Content-Type and Cache-Control');
  check((await page.getAttribute('html', 'lang')) === 'ja' &&
        (await page.textContent('#tab-search')) === '被災者検索', 'Japanese by default');

  await page.click('#tab-search');
  await page.selectOption('#search-purpose', 'safety confirmation');
  await page.fill('#search-q', 'きずな');
  await page.click('#search-go');
  const row = page.locator('#search-results tbody tr', { hasText: '絆 花子' });
  await row.first().waitFor({ timeout: DEADLINE_MS });
  check((await row.count()) >= 1, 'kana search きずな finds 絆 花子');
  await shot(page, '01-search-kana');

  await row.first().locator('a.victim-link').click();
  await page.waitForSelector('#victim-name:text("絆 花子")', { timeout: DEADLINE_MS });
  check((await page.textContent('dd[data-field="id"]')) === VICTIM, 'record view opens the person');
  check(await page.isHidden('#photo-img'), 'no photo before a purpose is chosen');
  let photoCalls = 0;
  page.on('request', (r) => { if (r.url().includes('/v1/photos/')) photoCalls++; });
  await page.click('#photo-show'); /* without a purpose: the form refuses */
  check(photoCalls === 0 && (await page.isHidden('#photo-img')) &&
        (await page.$eval('#photo-purpose', (e) => !e.checkValidity())),
    'the photo is not fetched without a purpose');
  await shot(page, '02-record');
  await page.selectOption('#photo-purpose', 'disaster identification');
  await page.click('#photo-show');
  await page.waitForFunction(() => {
    const i = document.getElementById('photo-img');
    return !i.hidden && i.complete && i.naturalWidth > 0;
  }, null, { timeout: DEADLINE_MS });
  check(photoCalls === 1, 'the photo is fetched once, after the purpose');
  await shot(page, '03-record-photo');

  await page.click('#lang');
  check((await page.textContent('#tab-search')) === 'Victim search' &&
        (await page.getAttribute('html', 'lang')) === 'en', 'language toggle to English');
  await shot(page, '04-record-english');
  await page.click('#lang');
  check((await page.textContent('#tab-search')) === '被災者検索', 'and back to Japanese');

  /* The cluster map is the operator's: the API refuses, the page says so. */
  await page.click('#tab-cluster');
  await page.waitForSelector('#error[data-code="forbidden"]', { timeout: DEADLINE_MS });
  const rid = (await page.textContent('#error .request-id')) || '';
  check(/^[0-9a-f]{8,}$/.test(rid) && (await page.textContent('#error')).includes('403'),
    'a refused call shows its status, code (forbidden) and request_id (' + rid + ')');
  await shot(page, '05-error-forbidden');
  await done(b);
}

async function caseworker() {
  const b = await browserFor('caseworker');
  await b.page.goto(URL_BASE + '/ui/#shelters/ishinomaki-01');
  await b.page.waitForSelector('#shelter-summary [data-count="total"]', { timeout: DEADLINE_MS });
  const total = await b.page.textContent('#shelter-summary [data-count="total"]');
  check(/\d+/.test(total) && Number(total.match(/\d+/)[0]) >= 1, 'shelter summary of ishinomaki-01: ' + total);
  await shot(b.page, '06-shelter');
  await done(b);
}

async function auditor() {
  const b = await browserFor('auditor');
  await b.page.goto(URL_BASE + '/ui/#audit');
  await b.page.fill('#audit-subject', VICTIM);
  await b.page.click('#audit-go');
  const row = b.page.locator('#audit-results tbody tr', { hasText: 'photo.read' });
  await row.first().waitFor({ timeout: DEADLINE_MS });
  check((await row.first().textContent()).includes('disaster identification'),
    'the audit view lists the photo view with its purpose');
  await b.page.click('#audit-verify');
  await b.page.waitForFunction(() => /検証成功|Verified/.test(document.getElementById('audit-meta').textContent),
    null, { timeout: DEADLINE_MS });
  ok('audit hash chain verified from the page');
  await shot(b.page, '07-audit');
  await done(b);
}

async function operator() {
  const b = await browserFor('operator');
  const { page } = b;
  await page.goto(URL_BASE + '/ui/#cluster');
  await page.waitForFunction(() => document.querySelectorAll('#regions .region[data-state="ok"]').length === 3 &&
    document.querySelector('#regions tr.leader') !== null, null, { timeout: DEADLINE_MS });
  const regions = await page.$$eval('#regions .region', (rs) => rs.map((r) => r.getAttribute('data-region')));
  check(regions.join(',') === 'tokyo,osaka,sapporo', 'cluster map shows tokyo, osaka, sapporo with a leader');
  await shot(page, '08-cluster');

  execFileSync(LC, ['kill-region', 'sapporo', '--dir', CLUSTER], { stdio: 'inherit' });
  const t0 = Date.now();
  await page.waitForSelector('#regions .region[data-region="sapporo"][data-state="down"]', { timeout: DEADLINE_MS });
  ok('sapporo turned red ' + (Date.now() - t0) + ' ms after its node was killed');
  const bg = await page.$eval('#regions .region[data-region="sapporo"]', (e) => getComputedStyle(e).borderTopColor);
  check(bg === 'rgb(179, 38, 30)', 'sapporo\'s card is drawn red (' + bg + ')');
  const others = await page.$$eval('#regions .region', (rs) =>
    rs.filter((r) => r.getAttribute('data-region') !== 'sapporo').map((r) => r.getAttribute('data-state')));
  check(others.every((s) => s === 'ok'), 'tokyo and osaka stay up');
  await shot(page, '09-cluster-sapporo-down');
  await done(b);
}

(async () => {
  try {
    await terminal();
    await caseworker();
    await auditor();
    await operator();
  } catch (e) {
    failed++;
    console.log('FAIL  ' + (e && e.stack ? e.stack : e));
  }
  console.log(failed ? failed + ' check(s) failed' : 'all checks passed');
  process.exit(failed ? 1 : 0);
})();
