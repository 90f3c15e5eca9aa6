// The first-run setup screen in headless Chromium, against an appliance with its demo data
// (started by `cargo test --test it setup::setup_screen_in_headless_chromium`, which passes the
// demo admin's password). Not named *.test.mjs: the main dashboard suite runs on a server
// without demo data and must not pick it up.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, api, fixtures, launch, newPage, shot, until } from './helpers.mjs';

describe('first-run setup in headless Chromium', () => {
  let browser;
  let page;

  before(async () => {
    browser = await launch();
    page = await newPage(browser.context);
  });

  after(async () => {
    await browser?.close();
  });

  test('the demo admin sets up a standalone branch and lands on the dashboard', async () => {
    await page.goto(`${BASE}/`);
    await page.getByLabel('Email').fill(fixtures.demo.email);
    await page.getByLabel('Password').fill(fixtures.demo.password);
    await page.getByLabel('Password').press('Enter');

    await page.getByRole('heading', { name: 'Set up this appliance' }).waitFor();
    assert.equal(await page.locator('#app-view').isHidden(), true, 'the dashboard waits until setup is done');
    const demoToken = await page.evaluate(() => JSON.parse(sessionStorage.getItem('branchd.session')).token);

    // Both paths; each shows its own fields.
    await page.getByLabel('Join your HQ').check();
    await page.getByLabel('HQ hub address').waitFor();
    assert.equal(await page.getByLabel('Company name').isVisible(), false);
    await page.getByLabel('HQ hub address').fill('http://127.0.0.1:9');
    await page.getByLabel('Uplink credential').fill('bdu_not-a-real-credential');
    await page.getByLabel('Admin email').fill('owner@trattoria.test');
    await page.getByLabel('Admin password').fill('verde-owner-2026');
    await page.getByLabel('Repeat the password').fill('verde-owner-2026');
    await page.getByRole('button', { name: 'Finish setup' }).click();
    // Nothing answers there: the server's message is shown, nothing changed.
    await until('the unreachable-hub message', async () => /cannot reach the hub/i.test(await page.locator('#setup-error').textContent()));
    const still = await api(demoToken, 'GET', '/api/setup');
    assert.equal(still.status, 200, 'setup is still needed after a failed join');

    await page.getByLabel('On its own').check();
    await page.getByLabel('Company name').waitFor();
    assert.equal(await page.getByLabel('HQ hub address').isVisible(), false);

    // Client-side checks before anything is sent.
    await page.getByLabel('Repeat the password').fill('something-else');
    await page.getByRole('button', { name: 'Finish setup' }).click();
    await until('a missing-field message', async () => /Company name/.test(await page.locator('#setup-error').textContent()));
    await page.getByLabel('Company name').fill('Trattoria Verde');
    await page.getByLabel('Branch name').fill('Navigli');
    await page.getByLabel('Currency').selectOption('EUR');

    // Fits a phone and a laptop without sideways scrolling.
    for (const [width, height] of [[390, 844], [1280, 800]]) {
      await page.setViewportSize({ width, height });
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `no horizontal scroll at ${width}px (${overflow}px)`);
    }
    await page.evaluate(() => window.scrollTo(0, 0));
    await shot(page, 'setup');

    await page.getByRole('button', { name: 'Finish setup' }).click();
    await until('a password mismatch message', async () => /passwords differ/.test(await page.locator('#setup-error').textContent()));
    await page.getByLabel('Repeat the password').fill('verde-owner-2026');

    await page.getByRole('button', { name: 'Finish setup' }).click();
    await page.locator('#app-view').waitFor({ state: 'visible' });
    await until('the new company name in the header', async () => /Trattoria Verde/.test(await page.locator('#scope').textContent()));
    await page.locator('#live-pill[data-state="live"]').waitFor();
    const session = await page.evaluate(() => JSON.parse(sessionStorage.getItem('branchd.session')));
    assert.equal(session.user.email, 'owner@trattoria.test');
    assert.notEqual(session.token, demoToken);
    assert.equal((await api(session.token, 'GET', '/api/setup')).status, 404, 'setup runs once');
    assert.equal((await api(demoToken, 'GET', '/api/branches')).status, 401, 'the demo token is refused');
    const branches = await api(session.token, 'GET', '/api/branches');
    assert.equal(branches.body.items[0].currency, 'EUR');
    await shot(page, 'setup-done');
    assert.deepEqual(page.problems, [], 'no script errors, CSP violations or external requests');
  });
});
