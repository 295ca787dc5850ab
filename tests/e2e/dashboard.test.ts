/**
 * The dashboard in a real browser (Debian's Chromium through playwright-core) against the real
 * service process: load it, build a test mesh and crash a primary through its buttons, see the
 * region go failing-over and come back with a new primary and a higher epoch, acknowledge the
 * alert, at 1280x800 and at phone width, with no console error; the screenshot must not be blank.
 * With an admin token set, an admin button asks for the token and then works.
 */
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { chromiumSkip, launchChromium, requireChromium } from './chromium.ts';
import { decodePng, pixelStats } from './png.ts';
import { call, killAll, startService, stopService, waitFor } from './service-process.ts';

after(killAll);

// The page's globals, for the functions that run in it; this file is not type-checked against the DOM.
declare const document: any;
declare const window: any;
declare const MutationObserver: any;

/** Console errors and uncaught exceptions of a page. */
function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (message) => { if (message.type() === 'error') errors.push(message.text()); });
  page.on('pageerror', (error) => errors.push(String(error)));
  return errors;
}

/** Records every state region-1's cell shows, including the short ones between two refreshes. */
async function recordStates(page: Page, region: string): Promise<void> {
  // Functions, not strings (the page's CSP forbids eval), and no named inner function (tsx would
  // wrap it in a helper the page lacks).
  await page.evaluate((id) => {
    const seen: string[] = [];
    window.seenStates = seen;
    new MutationObserver(() => {
      const state = document.querySelector(`[data-region="${id}"]`)?.getAttribute('data-state');
      if (state && seen.at(-1) !== state) seen.push(state);
    }).observe(document.getElementById('regions'), { subtree: true, childList: true, attributes: true });
    seen.push(document.querySelector(`[data-region="${id}"]`)?.getAttribute('data-state'));
  }, region);
}

describe('the dashboard in Chromium', { skip: chromiumSkip(), timeout: 180_000 }, () => {
  test('fails over a region through the page, acknowledges the alert, renders at 1280x800 and phone width', async (t) => {
    if (process.env.CI === 'true') requireChromium();
    const service = await startService(['--port', '0', '--store', 'memory']);
    const browser = await launchChromium({ width: 1280, height: 800 });
    t.after(() => browser.close());
    const page = await browser.context.newPage();
    const errors = watchErrors(page);
    await page.goto(service.url, { waitUntil: 'load' });
    await page.waitForSelector('[data-testid="stream"]:text("live")', { timeout: 15_000 });

    await page.click('#setup-test');
    await page.waitForFunction(() => document.querySelectorAll('[data-region]').length === 24, undefined, { timeout: 15_000 });
    await page.waitForFunction(() => [...document.querySelectorAll('[data-region]')]
      .every((c: any) => c.getAttribute('data-state') === 'active' && c.getAttribute('data-primary') !== '—'), undefined, { timeout: 15_000 });
    const cell = page.locator('[data-region="region-1"]');
    const before = { primary: await cell.getAttribute('data-primary'), epoch: Number(await cell.getAttribute('data-epoch')) };
    await recordStates(page, 'region-1');

    await page.selectOption('#target-region', 'region-1');
    await page.click('#inject button[data-mode="crash"]:not([data-target])');
    await page.waitForFunction(({ primary, epoch }) => {
      const c = document.querySelector('[data-region="region-1"]');
      return c?.getAttribute('data-state') === 'active' && c.getAttribute('data-primary') !== primary
        && c.getAttribute('data-primary') !== '—' && Number(c.getAttribute('data-epoch')) > epoch;
    }, before, { timeout: 30_000 });
    const seen = await page.evaluate(() => window.seenStates as string[]);
    assert.ok(seen.includes('failing_over'), `region-1 showed failing_over on its way back: ${seen.join(' -> ')}`);
    assert.equal(seen.at(-1), 'active');
    assert.match(await page.textContent('#message') ?? '', new RegExp(`Injected crash .* on ${before.primary}`));

    const alert = page.locator(`li[data-alert]:has-text("Server ${before.primary} failed")`);
    await alert.locator('button[data-ack]').click();
    await alert.locator('.acked').waitFor({ timeout: 10_000 });
    const alerts = await call(service.url, 'GET', '/mesh/alerts');
    const acked = alerts.body.alerts.find((a: { dedup_key: string }) => a.dedup_key === `server-failed:${before.primary}`);
    assert.ok(acked?.acknowledged_at !== null && acked?.acknowledged_by === 'loopback', JSON.stringify(acked));
    await page.waitForFunction(() => document.querySelectorAll('#chart [data-failover] rect').length >= 2);

    await page.evaluate(() => window.scrollTo(0, 0));
    const shot = await page.screenshot({ fullPage: false });
    const dir = process.env.DASHBOARD_SCREENSHOT_DIR ?? await mkdtemp(join(tmpdir(), 'mesh-dashboard-'));
    await writeFile(join(dir, 'dashboard-1280.png'), shot);
    t.diagnostic(`screenshot: ${join(dir, 'dashboard-1280.png')}`);
    const pixels = decodePng(shot);
    assert.deepEqual([pixels.width, pixels.height], [1280, 800]);
    const stats = pixelStats(pixels);
    assert.ok(stats.variance > 200 && stats.colours > 20, `the screenshot is not blank: ${JSON.stringify(stats)}`);

    await page.setViewportSize({ width: 390, height: 844 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth as number);
    assert.ok(overflow <= 0, `no sideways scrolling at phone width (overflow ${overflow}px)`);
    const grid = await page.locator('#regions').boundingBox();
    assert.ok(grid !== null && grid.width > 300 && grid.width <= 390, `the grid fills the phone's width: ${JSON.stringify(grid)}`);
    const phone = await page.screenshot();
    await writeFile(join(dir, 'dashboard-390.png'), phone);
    assert.ok(pixelStats(decodePng(phone)).variance > 200);

    assert.deepEqual(errors, [], 'no console error');
    await stopService(service, 'SIGTERM');
  });

  test('with MESH_ADMIN_TOKEN set, an admin button asks for the token, then works', async (t) => {
    if (process.env.CI === 'true') requireChromium();
    const token = 'dashboard-test-token-'.padEnd(40, '4');
    const service = await startService(['--port', '0', '--store', 'memory'], { env: { MESH_ADMIN_TOKEN: token } });
    const browser = await launchChromium({ width: 1280, height: 800 });
    t.after(() => browser.close());
    const page = await browser.context.newPage();
    const errors = watchErrors(page);
    await page.goto(service.url, { waitUntil: 'load' });
    await page.click('#setup-test');
    await page.waitForSelector('#token-form:not([hidden])', { timeout: 10_000 });
    await page.fill('#token', token);
    await page.click('#token-form button[type="submit"]');
    await page.waitForFunction(() => document.querySelectorAll('[data-region]').length === 24, undefined, { timeout: 15_000 });
    const status = await waitFor('the test mesh', async () => {
      const res = await call(service.url, 'GET', '/mesh/status');
      return res.body.regions.total === 24 ? res.body : undefined;
    });
    assert.equal(status.regions.total, 24);
    // The browser's refused attempt is an expected 401, which Chromium reports as a failed resource.
    assert.deepEqual(errors.filter((e) => !/status of 401/.test(e)), []);
    await stopService(service, 'SIGTERM');
  });
});
