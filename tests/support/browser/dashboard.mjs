// The Ray dashboard in a real browser (Debian's headless Chromium, driven by playwright-core),
// for tests/cluster/test_dashboard.py and bench/dashboard_screenshots.py.
//
// One browser for the whole run; the caller decides when each page is looked at or captured,
// so commands arrive as JSON lines on stdin and each gets one JSON line back on stdout:
//
//   RAY_DASHBOARD_TOKEN=… node tests/support/browser/dashboard.mjs http://127.0.0.1:8265
//   ← {"ready":true,"tokenDialog":true}     the dashboard asked for the token and took it
//   → {"page":"serve","until":["catalog-report","RUNNING"]}     (optional: seconds, width, height, zoom)
//   ← {"page":"serve","found":true,"rows":["catalog-report RUNNING …", …]}
//   → {"screenshot":"/tmp/serve.png"}
//   ← {"screenshot":"/tmp/serve.png","bytes":123456}
//
// The token comes from the environment, never the command line (which `ps` shows to everyone).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { chromium } from 'playwright-core';

const url = process.argv[2].replace(/\/$/, '');
const token = process.env.RAY_DASHBOARD_TOKEN || '';
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'crchrome-'));  // a fresh profile: no old cookie

let context, page;
const say = (answer) => process.stdout.write(JSON.stringify(answer) + '\n');

async function logIn() {
  // Without the token every API call answers 401 and the dashboard opens this dialog.
  await page.goto(url, { timeout: 120000 });
  const dialog = page.getByRole('dialog', { name: 'Authentication Token Required' });
  try {
    await dialog.waitFor({ timeout: 30000 });
  } catch {
    return false;  // no token authentication on this cluster
  }
  await dialog.getByLabel('Authentication Token').first().fill(token);
  const reloaded = page.waitForEvent('load', { timeout: 60000 });  // once the dashboard accepts it
  await dialog.getByRole('button', { name: 'Submit' }).click();
  await reloaded;
  return true;
}

async function rows(whole) {
  // A table's rows, or (`whole`) the page's text as one row: a detail page has no table.
  const texts = whole ? [await page.locator('body').innerText()] : await page.locator('tr').allInnerTexts();
  return texts.map((r) => r.replace(/\s+/g, ' ').trim());
}

async function open({ page: name, until = [], seconds = 60, width = 1400, height = 900, zoom = 1, whole = false }) {
  // Each page polls the dashboard's API every few seconds, so a page already open is not reloaded;
  // wait until one table row holds every string of `until`. A zoom below 1 fits a wide table
  // (the Actors page's CPU and memory columns are far right) into one capture.
  await page.setViewportSize({ width, height });
  if (!page.url().includes(`#/${name}`)) await page.goto(`${url}/#/${name}`);
  await page.evaluate((z) => { document.body.style.zoom = String(z); }, zoom);
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const seen = await rows(whole);
    const found = seen.some((r) => until.every((s) => r.includes(s)));
    if (found || Date.now() > deadline) return { page: name, found, rows: seen };
    await page.waitForTimeout(1000);
  }
}

try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1400, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  page = context.pages()[0] || await context.newPage();
  say({ ready: true, tokenDialog: await logIn() });
  for await (const line of readline.createInterface({ input: process.stdin })) {
    const cmd = JSON.parse(line);
    if (cmd.page) {
      say(await open(cmd));
    } else if (cmd.screenshot) {
      await page.screenshot({ path: cmd.screenshot });
      say({ screenshot: cmd.screenshot, bytes: fs.statSync(cmd.screenshot).size });
    }
  }
} catch (error) {
  say({ error: String(error) });
  process.exitCode = 1;
} finally {
  await context?.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
