// The embedded dashboard, end to end in headless Chromium against a real branchd (started
// by tests/it/dashboard.rs with fixtures: company co-1 with branches br-1 and br-2, company co-2
// with br-3). Tests run in order and share one browser.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import {
  BASE, fixtures, api, ok, orderBody, launch, newPage, shot, login, until, unnamedControls, startEmulator,
} from './helpers.mjs';

const { users, tokens } = fixtures;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('dashboard in headless Chromium', () => {
  let browser;
  let page;

  before(async () => {
    browser = await launch();
    page = await newPage(browser.context);
  });

  after(async () => {
    await browser?.close();
  });

  test('the page ships no secrets and loads nothing from outside', async () => {
    const res = await fetch(`${BASE}/`);
    const html = await res.text();
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-security-policy') || '', /default-src 'self'/);
    for (const secret of [fixtures.jwtSecret, tokens.owner1, users.owner1.password]) {
      assert.ok(!html.includes(secret), 'the HTML must not contain secrets');
    }
    assert.ok(!/https?:\/\/(?!www\.w3\.org)/.test(html), 'no absolute URLs in the HTML');
  });

  test('refuses a wrong password, then logs in and shows the first-run view with a QR code', async () => {
    await page.goto(`${BASE}/`);
    await page.getByRole('heading', { name: 'Log in to this branch' }).waitFor();
    await shot(page, 'dashboard-login');
    await page.getByLabel('Email').fill(users.owner1.email);
    await page.getByLabel('Password').fill('not-the-password');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByText('Wrong email or password.').waitFor();

    await login(page, users.owner1);
    const token = await page.evaluate(() => JSON.parse(sessionStorage.getItem('branchd.session')).token);
    assert.ok(token && token.split('.').length === 3, 'the JWT is kept in sessionStorage');
    assert.equal(await page.evaluate(() => localStorage.getItem('branchd.session')), null, 'never in localStorage');

    await page.getByRole('heading', { name: 'Welcome: connect your tablets' }).waitFor();
    const qr = page.locator('#qr-box svg[role="img"]');
    await qr.waitFor();
    const qrText = await qr.getAttribute('data-qr-text');
    // HTTPS is on (the default): the QR opens the https address and carries the CA fingerprint.
    const health = await api(null, 'GET', '/health');
    const fp = health.body.tls.caFingerprint;
    assert.match(fp, /^[0-9a-f]{64}$/);
    assert.match(qrText, new RegExp(`^https://[0-9.]+:\\d+/\\?tlsfp=${fp}$`), 'the QR code encodes the https URL and the CA fingerprint');
    assert.match(await qr.getAttribute('aria-label'), /QR code to open https:/);
    const shown = await page.locator('#connect-url').textContent();
    assert.equal(`${shown}?tlsfp=${fp}`, qrText);
    const system = await ok(tokens.owner1, 'GET', '/api/system');
    const port = new URL(BASE).port;
    const expected = system.lanAddresses.length ? system.lanAddresses.map((a) => `https://${a}:${port}/`) : [`${BASE.replace('http:', 'https:')}/`];
    assert.ok(expected.includes(shown), `URL ${shown} is one of ${expected}`);
    // The CA in three formats, its fingerprint, and the switch to HTTPS, which this browser
    // (the CA not imported) must refuse.
    assert.equal((await page.locator('#tls-fingerprint').textContent()).replaceAll(' ', '').toLowerCase(), fp);
    for (const [id, href] of [['#ca-pem', '/ca.crt'], ['#ca-der', '/ca.crt?format=der'], ['#ca-mobileconfig', '/ca.crt?format=mobileconfig']]) {
      assert.equal(await page.locator(id).getAttribute('href'), href);
    }
    await page.getByRole('button', { name: 'Switch to HTTPS' }).click();
    await page.getByText('This device does not trust the appliance yet').waitFor();
    assert.equal(new URL(page.url()).protocol, 'http:', 'no switch to a page the browser would refuse');
    assert.deepEqual(await unnamedControls(page), []);
    await shot(page, 'dashboard-connect');

    await page.getByRole('button', { name: 'Continue to orders' }).click();
    await page.getByRole('heading', { name: 'Live orders' }).waitFor();
    assert.equal(await page.evaluate(() => location.hash), '#/orders');
  });

  test('a new order appears live, moves when its status changes, and can be cancelled', async () => {
    const board = page.locator('#page-orders');
    await until('orders loaded', () => board.getAttribute('data-loaded'));
    const readyColumn = page.locator('.column[data-status="ready"]');
    const before = await readyColumn.boundingBox();
    const pageHeight = await page.evaluate(() => document.querySelector('#main').scrollHeight);

    const order = await ok(tokens.owner1, 'POST', '/api/orders', orderBody('br-1', { customer: { name: 'Rana K.' } }));
    const card = page.locator(`.column[data-status="pending"] .order-card[data-order-id="${order.id}"]`);
    await card.waitFor();
    assert.match(await card.textContent(), /Chicken shawarma/);
    assert.match(await card.textContent(), /16\.00/, 'the total (2 × 650 + 300 minor units)');
    assert.match(await card.textContent(), /One North/, 'the branch name (the owner sees two branches)');
    assert.deepEqual(await readyColumn.boundingBox(), before, 'a new order does not move the other columns');
    assert.equal(await page.evaluate(() => document.querySelector('#main').scrollHeight), pageHeight, 'nor the page height');

    await card.getByRole('button', { name: `Confirm: order #${order.number}` }).click();
    const confirmed = page.locator(`.column[data-status="confirmed"] .order-card[data-order-id="${order.id}"]`);
    await confirmed.waitFor();
    assert.equal((await ok(tokens.owner1, 'GET', `/api/orders/${order.id}`)).status, 'confirmed');
    // The moved card keeps keyboard focus on its next action.
    assert.equal(await page.evaluate(() => document.activeElement?.dataset.next), 'preparing');
    await page.keyboard.press('Enter');
    await page.locator(`.column[data-status="preparing"] .order-card[data-order-id="${order.id}"]`).waitFor();

    // A change made elsewhere (another tablet, the POS) shows up live too.
    await ok(tokens.owner1, 'PATCH', `/api/orders/${order.id}/status`, { status: 'ready' });
    await page.locator(`.column[data-status="ready"] .order-card[data-order-id="${order.id}"]`).waitFor();

    const delivery = await ok(tokens.owner1, 'POST', '/api/orders', orderBody('br-2', { type: 'delivery', customer: { name: 'Sami', phone: '+961 1 234 567' } }));
    await page.locator(`.order-card[data-order-id="${delivery.id}"]`).waitFor();
    await ok(tokens.owner1, 'PUT', `/api/orders/${delivery.id}/driver`, { driverId: 'd-1', name: 'Karim', etaMinutes: 12 });
    await until('driver shown', async () => /Karim/.test(await page.locator(`.order-card[data-order-id="${delivery.id}"]`).textContent()));
    await ok(tokens.owner1, 'POST', '/api/orders', orderBody('br-1', { type: 'takeaway' }));
    await shot(page, 'dashboard-orders');

    // Cancel from the UI, with a reason.
    const doomed = await ok(tokens.owner1, 'POST', '/api/orders', orderBody('br-1'));
    const doomedCard = page.locator(`.order-card[data-order-id="${doomed.id}"]`);
    await doomedCard.getByRole('button', { name: `Cancel order #${doomed.number}` }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Reason (optional)').fill('customer left');
    await dialog.getByRole('button', { name: 'Cancel order' }).click();
    await doomedCard.waitFor({ state: 'detached' });
    const stored = await ok(tokens.owner1, 'GET', `/api/orders/${doomed.id}`);
    assert.equal(stored.status, 'cancelled');

    // Completing an order takes it off the board.
    await page.locator(`.order-card[data-order-id="${order.id}"]`).getByRole('button', { name: /^Complete/ }).click();
    await page.locator(`.order-card[data-order-id="${order.id}"]`).waitFor({ state: 'detached' });
    assert.equal((await ok(tokens.owner1, 'GET', `/api/orders/${order.id}`)).status, 'completed');
    assert.deepEqual(await unnamedControls(page), []);
  });

  test('keyboard navigation moves focus to the page heading', async () => {
    await page.getByRole('link', { name: 'Availability' }).focus();
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Availability' }).waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Availability');
    assert.equal(await page.getByRole('link', { name: 'Availability' }).getAttribute('aria-current'), 'page');
  });

  test('availability: toggle, edit stock, live updates and stock alerts', async () => {
    await ok(tokens.owner1, 'PUT', '/api/availability/br-1/product/falafel', { available: true, stock: 12, lowStockThreshold: 3 });
    await page.goto(`${BASE}/#/availability`);
    await page.getByRole('heading', { name: 'Availability' }).waitFor();
    await page.locator('#page-availability').getByLabel('Branch', { exact: true }).selectOption('br-1');
    const row = page.locator('tr[data-item-id="falafel"]');
    await row.waitFor();
    const toggle = row.getByRole('switch', { name: 'Available: falafel' });
    assert.equal(await toggle.isChecked(), true);

    await toggle.click();
    await until('stored as unavailable', async () => (await ok(tokens.owner1, 'GET', '/api/availability/br-1')).items.find((i) => i.itemId === 'falafel').available === false);
    // The row follows (from the PUT's answer or the live event), without a reload.
    await page.locator('tr[data-item-id="falafel"][data-available="false"]').waitFor();
    await toggle.press('Space');
    await until('available again', async () => (await ok(tokens.owner1, 'GET', '/api/availability/br-1')).items.find((i) => i.itemId === 'falafel').available === true);

    await row.getByLabel('Stock of falafel', { exact: true }).fill('2');
    await row.getByRole('button', { name: 'Save stock of falafel' }).click();
    await until('stock stored', async () => (await ok(tokens.owner1, 'GET', '/api/availability/br-1')).items.find((i) => i.itemId === 'falafel').stock === 2);
    await page.locator('#alerts .toast', { hasText: 'falafel is running low' }).waitFor();
    // It stays listed behind the Alerts button after the toast is gone.
    await page.locator('#alerts-btn').click();
    await page.locator('#alerts-list li', { hasText: 'falafel is running low: 2 left' }).waitFor();
    await shot(page, 'dashboard-alerts', { keepToasts: true });
    await page.keyboard.press('Escape');
    assert.equal(await page.locator('#alerts-panel').isHidden(), true);

    // Another device changes an item: the row appears without a reload.
    await ok(tokens.owner1, 'PUT', '/api/availability/br-1/modifier/extra-garlic', { available: false, stock: 0 });
    await page.locator('tr[data-item-id="extra-garlic"][data-available="false"]').waitFor();
    await ok(tokens.owner1, 'PUT', '/api/availability/br-1/product/hummus', { available: true, stock: 40 });
    await page.locator('tr[data-item-id="hummus"]').waitFor();
    // Another branch's change does not land in this branch's table.
    await ok(tokens.owner1, 'PUT', '/api/availability/br-2/product/only-in-br2', { available: true });

    // Add an item from the form.
    const add = page.getByRole('form', { name: 'Set an item' });
    await add.getByLabel('Item id').fill('tabbouleh');
    await add.getByLabel('Stock', { exact: true }).fill('8');
    await add.getByRole('button', { name: 'Save item' }).click();
    await page.locator('tr[data-item-id="tabbouleh"][data-stock="8"]').waitFor();
    assert.equal(await page.locator('tr[data-item-id="only-in-br2"]').count(), 0);
    assert.deepEqual(await unnamedControls(page), []);
    await shot(page, 'dashboard-availability');
  });

  test('printers: add a virtual printer, test print, queue and reprint', async () => {
    await page.goto(`${BASE}/#/printers`);
    await page.getByRole('heading', { name: 'Printers', exact: true }).waitFor();
    const form = page.getByRole('form', { name: 'Add a printer' });
    await form.getByLabel('Name').fill('Counter receipt');
    await form.getByLabel('Branch', { exact: true }).selectOption('br-1');
    await form.getByLabel('Connection').selectOption('virtual');
    await page.getByRole('button', { name: 'Add printer' }).click();
    const row = page.locator('.printers-table tr', { has: page.getByText('Counter receipt', { exact: true }) });
    await row.waitFor();
    const printerId = await row.getAttribute('data-printer-id');

    await page.getByRole('button', { name: 'Test print on Counter receipt' }).click();
    const result = row.locator('.test-cell [data-result]');
    await result.waitFor({ timeout: 20000 });
    assert.equal(await result.getAttribute('data-result'), 'success', await row.textContent());
    const correlationId = (await row.locator('.correlation-id').textContent()).trim();
    assert.match(correlationId, UUID, 'the correlation id is shown');
    const testJob = page.locator(`#page-printers tr[data-job-id="${correlationId}"]`);
    await testJob.waitFor();
    await until('test job printed', async () => (await testJob.getAttribute('data-status')) === 'printed');

    // A job from elsewhere shows up live and can be reprinted from the queue.
    const job = await ok(tokens.owner1, 'POST', '/api/print-jobs', { printerId, kind: 'raw', data: Buffer.from('hello kitchen\n').toString('base64') });
    const jobRow = page.locator(`tr[data-job-id="${job.id}"]`);
    await jobRow.waitFor();
    await until('raw job printed', async () => (await jobRow.getAttribute('data-status')) === 'printed');
    const rowsBefore = await page.locator('.queue-table tbody tr').count();
    await jobRow.getByRole('button', { name: /^Reprint/ }).click();
    await page.locator('#toasts .toast', { hasText: 'Reprint queued' }).waitFor();
    await until('reprint row', async () => (await page.locator('.queue-table tbody tr').count()) === rowsBefore + 1);
    const jobs = (await ok(tokens.owner1, 'GET', `/api/print-jobs?printerId=${printerId}`)).items;
    assert.ok(jobs.some((j) => j.reprintOf === job.id), 'the reprint is stored');

    // Discovery: the lead adds POST /api/printers/discover; either way the page says something useful.
    await page.getByRole('button', { name: 'Discover printers' }).click();
    const note = page.locator('#disc-title + p');
    await until('discovery answered', async () => /not available|found|No printers/.test(await note.textContent()), 60000);
    assert.doesNotMatch(await note.textContent(), /Discovery failed/);
  });

  test('a network printer goes offline when its emulator stops', async () => {
    const emu = await startEmulator();
    try {
      const printer = await ok(tokens.owner1, 'POST', '/api/printers', {
        branchId: 'br-1', name: 'Grill kitchen', role: 'kitchen', stations: ['grill'],
        connection: { type: 'network', host: '127.0.0.1', port: emu.port },
      });
      const row = page.locator(`tr[data-printer-id="${printer.id}"]`);
      await row.waitFor();
      await page.locator(`tr[data-printer-id="${printer.id}"][data-status="online"]`).waitFor({ timeout: 20000 });
      assert.match(await row.locator('.badge').textContent(), /Online/);
      assert.deepEqual(await unnamedControls(page), []);
      await shot(page, 'dashboard-printers');
      await emu.stop();
      await page.locator(`tr[data-printer-id="${printer.id}"][data-status="offline"]`).waitFor({ timeout: 20000 });
      assert.match(await row.locator('.badge').textContent(), /Offline/);
      await page.evaluate(() => { const m = document.getElementById('main'); m.scrollTop = m.scrollHeight; });
      await shot(page, 'dashboard-print-queue');
    } finally {
      await emu.stop().catch(() => {});
    }
  });

  test('a stalled printer: banner on every page, card print state, ack, move tickets, chime toggle', async () => {
    // The chime is opt-in per device and remembered.
    const chime = page.locator('#chime-btn');
    assert.equal(await chime.getAttribute('aria-pressed'), 'false');
    await chime.click();
    assert.equal(await chime.getAttribute('aria-pressed'), 'true');
    assert.equal(await page.evaluate(() => localStorage.getItem('branchd.chime')), 'on');
    await page.reload();
    await page.locator('#live-pill[data-state="live"]').waitFor();
    assert.equal(await page.locator('#chime-btn').getAttribute('aria-pressed'), 'true', 'remembered after a reload');

    const spareEmu = await startEmulator();
    const barEmu = await startEmulator();
    await barEmu.stop(); // the Bar printer is off from the start
    try {
      const bar = await ok(tokens.owner1, 'POST', '/api/printers', {
        branchId: 'br-1', name: 'Bar', role: 'kitchen', stations: ['bar'],
        connection: { type: 'network', host: '127.0.0.1', port: barEmu.port },
      });
      const spare = await ok(tokens.owner1, 'POST', '/api/printers', {
        branchId: 'br-1', name: 'Spare', role: 'label',
        connection: { type: 'network', host: '127.0.0.1', port: spareEmu.port },
      });
      await page.goto(`${BASE}/#/orders`);
      await until('orders loaded', () => page.locator('#page-orders').getAttribute('data-loaded'));
      const chimesBefore = Number(await page.locator('#chime-btn').getAttribute('data-chimes') || 0);
      const order = await ok(tokens.owner1, 'POST', '/api/orders', {
        branchId: 'br-1', type: 'dine_in', items: [{ name: 'Mint lemonade', quantity: 2, unitPrice: 450, station: 'bar' }],
      });
      const card = page.locator(`.order-card[data-order-id="${order.id}"]`);
      await card.waitFor();
      const banner = page.locator(`#print-banner .print-banner-row[data-printer-id="${bar.id}"]`);
      await banner.waitFor({ timeout: 20000 });
      assert.match(await banner.textContent(), /Bar is offline/);
      assert.match(await banner.textContent(), /1 ticket waits/);
      await page.locator(`.order-card[data-order-id="${order.id}"][data-print="attention"]`).waitFor();
      assert.match(await card.locator('.print-state').textContent(), /Needs attention/);
      assert.ok(Number(await page.locator('#chime-btn').getAttribute('data-chimes')) >= chimesBefore + 2,
        'chimed for the new order and for the print alert');
      assert.deepEqual(await unnamedControls(page), []);
      await shot(page, 'dashboard-print-banner');
      // The banner is on every page.
      await page.goto(`${BASE}/#/availability`);
      await banner.waitFor();
      await page.goto(`${BASE}/#/orders`);

      // Ack: seen, not resolved.
      await banner.getByRole('button', { name: 'Ack' }).click();
      await banner.getByRole('button', { name: 'Seen' }).waitFor();
      const open = await ok(tokens.owner1, 'GET', '/api/alerts?branchId=br-1&open=true');
      const alert = open.items.find((a) => a.type === 'printer_stalled' && a.printerId === bar.id);
      assert.ok(alert && alert.ackedAt, 'acked and still open');

      // Send its tickets to the spare printer: printed there with where they came from.
      await banner.getByLabel("Printer to send Bar's tickets to").selectOption(spare.id);
      await banner.getByRole('button', { name: 'Send to another printer' }).click();
      await page.locator(`.order-card[data-order-id="${order.id}"][data-print="printed"]`).waitFor({ timeout: 20000 });
      assert.match(await card.locator('.print-state').textContent(), /Printed ✓/);
      await banner.waitFor({ state: 'detached' });
      await until('moved ticket printed', () => Buffer.concat(spareEmu.received).toString('latin1').includes('MOVED FROM Bar'));
      assert.ok(Buffer.concat(spareEmu.received).toString('latin1').includes('Mint lemonade'));
      await card.getByRole('button', { name: `Reprint the tickets of order #${order.number}` }).waitFor();
      await shot(page, 'dashboard-orders-print-state');
      await ok(tokens.owner1, 'DELETE', `/api/printers/${bar.id}`);
      await ok(tokens.owner1, 'DELETE', `/api/printers/${spare.id}`);
      await page.locator('#chime-btn').click();
      assert.equal(await page.evaluate(() => localStorage.getItem('branchd.chime')), 'off');
    } finally {
      await spareEmu.stop().catch(() => {});
    }
  });

  test('connections, sync and system pages', async () => {
    await page.goto(`${BASE}/#/connections`);
    await page.getByRole('heading', { name: 'Connections' }).waitFor();
    for (const ns of ['/orders', '/availability', '/printing-ws']) {
      await until(`clients on ${ns}`, async () => Number(await page.locator(`.stat-value[data-ns="${ns}"]`).textContent()) >= 1);
    }
    await shot(page, 'dashboard-connections');

    await page.goto(`${BASE}/#/sync`);
    await page.getByText('Sync disabled', { exact: true }).waitFor();
    await shot(page, 'dashboard-sync');

    await page.goto(`${BASE}/#/system`);
    await until('system loaded', () => page.locator('#page-system').getAttribute('data-loaded'));
    const health = await ok(null, 'GET', '/health');
    assert.equal(await page.locator('#sys-version').textContent(), health.version);
    assert.match(await page.locator('#sys-datadir').textContent(), /\//);
    const branches = await page.locator('#page-system tbody tr').allTextContents();
    assert.deepEqual(branches.map((t) => t.includes('One')), [true, true], 'co-1 sees its own two branches');
    // This appliance also holds co-2: a company owner may not take the whole database.
    await page.locator('#backup-msg', { hasText: /other companies' data, so only a super admin/ }).waitFor();
    assert.equal(await page.getByRole('button', { name: 'Download backup' }).count(), 0);
    await shot(page, 'dashboard-system');
  });

  test('works on a tablet screen', async () => {
    await page.setViewportSize({ width: 800, height: 1280 });
    await page.goto(`${BASE}/#/orders`);
    await page.getByRole('heading', { name: 'Live orders' }).waitFor();
    await until('orders loaded', () => page.locator('#page-orders').getAttribute('data-loaded'));
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `no horizontal page scroll (${overflow}px)`);
    await shot(page, 'dashboard-orders-tablet');
    await page.goto(`${BASE}/#/printers`);
    await page.getByRole('heading', { name: 'Printers', exact: true }).waitFor();
    assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth));
    await shot(page, 'dashboard-printers-tablet');
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  test('logging out forgets the token', async () => {
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByRole('heading', { name: 'Log in to this branch' }).waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem('branchd.session')), null);
    assert.deepEqual(page.problems, [], 'no script errors, CSP violations or external requests');
  });

  test('a user of co-2 never sees co-1 data', async () => {
    const p2 = await newPage(browser.context);
    const secret = `co1-secret-${Date.now()}`;
    const co1Before = await ok(tokens.owner1, 'POST', '/api/orders', orderBody('br-1', { notes: secret }));
    await login(p2, users.owner2);
    await p2.goto(`${BASE}/#/orders`);
    await until('orders loaded', () => p2.locator('#page-orders').getAttribute('data-loaded'));

    const co1After = await ok(tokens.owner1, 'POST', '/api/orders', orderBody('br-1', { notes: secret }));
    await ok(tokens.owner1, 'PUT', '/api/availability/br-1/product/secret-dish', { available: false });
    const mine = await ok(tokens.owner2, 'POST', '/api/orders', orderBody('br-3', { notes: 'co2 order' }));
    // The co-2 order arrives live; the co-1 orders before and after it never do.
    await p2.locator(`.order-card[data-order-id="${mine.id}"]`).waitFor();
    for (const o of [co1Before, co1After]) assert.equal(await p2.locator(`[data-order-id="${o.id}"]`).count(), 0);
    assert.ok(!(await p2.content()).includes(secret));
    assert.equal(await p2.locator('.order-card[data-branch-id="br-1"], .order-card[data-branch-id="br-2"]').count(), 0);

    await p2.goto(`${BASE}/#/availability`);
    assert.deepEqual(await p2.locator('#page-availability').getByLabel('Branch', { exact: true }).locator('option').allTextContents(), ['Two Central']);
    await until('availability loaded', () => p2.locator('#page-availability').getAttribute('data-loaded'));
    assert.equal(await p2.locator('tr[data-item-id="falafel"], tr[data-item-id="secret-dish"]').count(), 0);

    await p2.goto(`${BASE}/#/printers`);
    await until('printers loaded', () => p2.locator('#page-printers').getAttribute('data-loaded'));
    const html = await p2.content();
    for (const name of ['Counter receipt', 'Grill kitchen', 'hello kitchen']) assert.ok(!html.includes(name), `${name} is co-1's`);
    assert.equal(await p2.locator('.queue-table tbody tr').count(), 0, 'no co-1 print jobs');

    await p2.goto(`${BASE}/#/system`);
    await until('system loaded', () => p2.locator('#page-system').getAttribute('data-loaded'));
    assert.deepEqual(await p2.locator('#page-system tbody tr td:first-child').allTextContents(), ['Two Central']);

    // Connected clients are counted per company: co-1's own dashboard is not counted for co-2.
    await login(page, users.owner1);
    await page.goto(`${BASE}/#/orders`);
    await until('co-1 orders loaded', () => page.locator('#page-orders').getAttribute('data-loaded'));
    const co1 = (await ok(tokens.owner1, 'GET', '/api/connections')).namespaces;
    const co2 = (await ok(tokens.owner2, 'GET', '/api/connections')).namespaces;
    assert.equal(co2['/orders'], 1, `only co-2's own dashboard: ${JSON.stringify(co2)}`);
    assert.ok(co1['/orders'] >= 1, JSON.stringify(co1));
    assert.deepEqual(p2.problems, []);
    await p2.close();
  });

  test('the sync page of a branch whose HQ is unreachable', async () => {
    // A second appliance, configured with an HQ address where nothing listens.
    const p4 = await newPage(browser.context);
    await login(p4, users.owner1, fixtures.syncUrl);
    await p4.goto(`${fixtures.syncUrl}/#/sync`);
    await p4.locator('#sync-badge', { hasText: 'HQ unreachable' }).waitFor({ timeout: 20000 });
    await until('last error shown', async () => (await p4.locator('[data-field="lastError"]').count()) === 1, 20000);
    assert.match(await p4.locator('[data-field="lastError"]').textContent(), /\S/);
    assert.match(await p4.locator('.sync-card').textContent(), /Last successful exchange\s*never/);
    await shot(p4, 'dashboard-sync-offline');
    assert.deepEqual(p4.problems, []);
    await p4.close();
  });

  test('a super admin downloads a consistent backup', async () => {
    const p3 = await newPage(browser.context);
    await login(p3, users.admin);
    await p3.goto(`${BASE}/#/system`);
    await until('system loaded', () => p3.locator('#page-system').getAttribute('data-loaded'));
    const [download] = await Promise.all([
      p3.waitForEvent('download'),
      p3.getByRole('button', { name: 'Download backup' }).click(),
    ]);
    assert.match(download.suggestedFilename(), /^branchd-backup-\d{8}T\d{6}Z\.db$/);
    const file = await download.path();
    const head = fs.readFileSync(file).subarray(0, 16).toString('latin1');
    assert.equal(head, 'SQLite format 3\u0000');
    await p3.locator('#backup-msg', { hasText: /Backup branchd-backup-.* downloaded/ }).waitFor();
    assert.deepEqual(p3.problems, []);
    await p3.close();
  });
});
