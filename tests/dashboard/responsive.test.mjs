// Every page of the dashboard at the four screen sizes staff use (desktop, tablet landscape,
// tablet portrait, phone): no sideways page scroll, no control cut off (by the viewport, by a
// scrolling or clipping ancestor, or by its own ellipsis) or covered by another, touch targets of 44 px on the
// tablet-portrait and phone sizes; then the Users page end to end. Run by tests/it/dashboard.rs
// (`dashboard_fits_every_screen`) against its own server: company co-1 (br-1, br-2) with its
// owner, and an HQ-managed user at br-1.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { fixtures, api, ok, orderBody, launch, newPage, shot, login, until, startEmulator } from './helpers.mjs';

const { users, tokens } = fixtures;

export const SIZES = [
  { width: 1280, height: 800 },
  { width: 1024, height: 768 },
  { width: 768, height: 1024 },
  { width: 390, height: 844 },
];
const SMALL = (size) => size.width <= 768;

/** Each page, and what shows it has its data. */
const PAGES = [
  { name: 'orders', ready: '#page-orders[data-loaded] .order-card' },
  { name: 'availability', ready: '#page-availability tbody tr' },
  { name: 'printers', ready: '#page-printers tr[data-printer-id]' },
  { name: 'connections', ready: '#page-connections h1' },
  { name: 'sync', ready: '#page-sync h1' },
  { name: 'system', ready: '#page-system #sys-version:not(:empty)' },
  { name: 'connect', ready: '#page-connect #qr-box svg' },
  { name: 'users', ready: '#page-users tr[data-user-id]' },
];

/**
 * Runs in the page: every layout problem a person would meet on this screen, in words.
 * A control is a visible button, link, input, select, textarea or summary.
 */
function layoutProblems({ minTarget, hitTest }) {
  const out = [];
  const vw = window.innerWidth;
  const docWidth = document.documentElement.scrollWidth;
  if (docWidth > vw) out.push(`the page is ${docWidth}px wide in a ${vw}px window (sideways scroll)`);
  const describe = (el) => {
    const name = (el.getAttribute('aria-label') || el.textContent || el.getAttribute('placeholder') || el.name || el.id || '').trim().replace(/\s+/g, ' ').slice(0, 40);
    return `${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ''} "${name}"`;
  };
  for (const el of document.querySelectorAll('button, a[href], input, select, textarea, summary')) {
    if (!el.checkVisibility({ opacityProperty: true, visibilityProperty: true })) continue;
    if (el.closest('.sr-only')) continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    // The skip link waits above the page until it gets focus.
    if (r.bottom + window.scrollY <= 0) continue;
    if (r.left < -0.5 || r.right > vw + 0.5) out.push(`${describe(el)} sticks out of the window (${Math.round(r.left)}..${Math.round(r.right)} of ${vw})`);
    for (let a = el.parentElement; a && a !== document.documentElement; a = a.parentElement) {
      const cs = getComputedStyle(a);
      const clipsX = cs.overflowX !== 'visible';
      const clipsY = cs.overflowY === 'hidden' || cs.overflowY === 'clip';
      if (!clipsX && !clipsY) continue;
      const ar = a.getBoundingClientRect();
      if (clipsX && (r.left < ar.left - 0.5 || r.right > ar.right + 0.5)) {
        out.push(`${describe(el)} is cut by ${a.tagName.toLowerCase()}.${[...a.classList].join('.')} (overflow-x ${cs.overflowX}: ${Math.round(r.left)}..${Math.round(r.right)} outside ${Math.round(ar.left)}..${Math.round(ar.right)})`);
        break;
      }
      if (clipsY && (r.top < ar.top - 0.5 || r.bottom > ar.bottom + 0.5)) {
        out.push(`${describe(el)} is cut vertically by ${a.tagName.toLowerCase()}.${[...a.classList].join('.')}`);
        break;
      }
    }
    // Nothing lies on top of it (a control partly under another one is hard to use): its
    // centre and the four points halfway to its corners, where they are in sight (in the
    // window and in every scrolling box around it).
    const inSight = (x, y) => {
      if (x < 0 || x >= vw || y < 0 || y >= window.innerHeight) return false;
      for (let a = el.parentElement; a && a !== document.documentElement; a = a.parentElement) {
        if (getComputedStyle(a).overflowY === 'visible') continue;
        const ar = a.getBoundingClientRect();
        if (x < ar.left || x > ar.right || y < ar.top || y > ar.bottom) return false;
      }
      return true;
    };
    const cx = (r.left + r.right) / 2;
    const cy = (r.top + r.bottom) / 2;
    const points = [[cx, cy], [cx - r.width / 4, cy - r.height / 4], [cx + r.width / 4, cy - r.height / 4],
      [cx - r.width / 4, cy + r.height / 4], [cx + r.width / 4, cy + r.height / 4]];
    for (const [x, y] of hitTest ? points : []) {
      if (!inSight(x, y)) continue;
      const top = document.elementFromPoint(x, y);
      const own = top && (top === el || el.contains(top) || (el.labels && [...el.labels].some((l) => l.contains(top))));
      if (top && !own) {
        out.push(`${describe(el)} is covered by ${top.tagName.toLowerCase()}.${[...top.classList].join('.')} "${(top.textContent || '').trim().slice(0, 30)}"`);
        break;
      }
    }
    if ((el.tagName === 'BUTTON' || el.tagName === 'A') && el.scrollWidth > el.clientWidth + 1) {
      out.push(`${describe(el)} does not fit its text (${el.scrollWidth}px of text in ${el.clientWidth}px)`);
    }
    if (minTarget) {
      // A checkbox or radio is touched through its label as well: measure the row holding both.
      let target = r.height;
      if (el.type === 'checkbox' || el.type === 'radio') {
        const holder = el.closest('label') || (el.labels && el.labels[0] && el.labels[0].parentElement === el.parentElement ? el.parentElement : null);
        if (holder) target = Math.max(target, holder.getBoundingClientRect().height);
      }
      const inlineLink = el.tagName === 'A' && getComputedStyle(el).display === 'inline';
      if (!inlineLink && target < minTarget - 0.5) out.push(`${describe(el)} is ${Math.round(target)}px tall (a touch target needs ${minTarget})`);
    }
  }
  // Text cut short with an ellipsis ("Confirm…" for "Confirmed"), on any element.
  for (const el of document.querySelectorAll('body *')) {
    if (getComputedStyle(el).textOverflow !== 'ellipsis' || !el.checkVisibility()) continue;
    if (el.scrollWidth > el.clientWidth + 1) out.push(`${describe(el)} is cut short with an ellipsis (${el.scrollWidth}px of text in ${el.clientWidth}px)`);
  }
  return out;
}

/** `overlay`: a menu, panel or dialog is open on purpose, covering the page under it. */
async function check(page, label, size, { overlay = false } = {}) {
  await page.evaluate(() => document.querySelectorAll('.toast').forEach((t) => t.remove()));
  const problems = await page.evaluate(layoutProblems, { minTarget: SMALL(size) ? 44 : 0, hitTest: !overlay });
  return problems.map((p) => `${label} at ${size.width}×${size.height}: ${p}`);
}

/** Shows a page by its address; false when there is no such page. */
async function show(page, name) {
  await page.evaluate((n) => { window.location.hash = `#/${n}`; }, name);
  return page.locator(`#page-${name}`).waitFor({ state: 'visible', timeout: 5000 }).then(() => true, () => false);
}

describe('every page fits every screen', () => {
  let browser;
  let page;
  const created = {};

  before(async () => {
    // Something on every page: a live order in each column (one a delivery with an address),
    // items, a printer with a queued job.
    const deliver = await ok(tokens.owner1, 'POST', '/api/orders', orderBody('br-1', {
      type: 'delivery',
      customer: { name: 'Sami Haddad', phone: '+961 1 234 567', address: 'Rue Hamra 12, 3rd floor, Beirut' },
    }));
    created.delivery = deliver;
    for (const [st, type] of [['confirmed', 'dine_in'], ['preparing', 'takeaway'], ['ready', 'dine_in']]) {
      const o = await ok(tokens.owner1, 'POST', '/api/orders', orderBody('br-2', { type, customer: { name: 'Rana K.' } }));
      const path = { confirmed: ['confirmed'], preparing: ['confirmed', 'preparing'], ready: ['confirmed', 'preparing', 'ready'] }[st];
      for (const s of path) await ok(tokens.owner1, 'PATCH', `/api/orders/${o.id}/status`, { status: s });
    }
    const out = await ok(tokens.owner1, 'POST', '/api/orders', orderBody('br-1', { type: 'delivery', customer: { name: 'Lina', address: { street: 'Mar Mikhael 4', city: 'Beirut' } } }));
    for (const s of ['confirmed', 'preparing', 'ready', 'out_for_delivery']) await ok(tokens.owner1, 'PATCH', `/api/orders/${out.id}/status`, { status: s });
    await ok(tokens.owner1, 'POST', '/api/orders', orderBody('br-1'));
    await ok(tokens.owner1, 'PUT', '/api/availability/br-1/product/falafel-wrap', { available: true, stock: 12, lowStockThreshold: 3 });
    await ok(tokens.owner1, 'PUT', '/api/availability/br-1/modifier/extra-garlic', { available: false, stock: 0 });
    const printer = await ok(tokens.owner1, 'POST', '/api/printers', {
      branchId: 'br-1', name: 'Kitchen grill and bar printer', role: 'kitchen', paperWidth: 80, stations: ['grill', 'bar'], connection: { type: 'virtual' },
    });
    await ok(tokens.owner1, 'POST', '/api/print-jobs', { printerId: printer.id, kind: 'raw', data: Buffer.from('hello\n').toString('base64') });
    // A printer that is off, holding a ticket: the stalled-printer banner shows on every page.
    const off = await startEmulator();
    await off.stop();
    const bar = await ok(tokens.owner1, 'POST', '/api/printers', {
      branchId: 'br-1', name: 'Bar', role: 'kitchen', connection: { type: 'network', host: '127.0.0.1', port: off.port },
    });
    await ok(tokens.owner1, 'POST', '/api/print-jobs', { printerId: bar.id, kind: 'raw', data: Buffer.from('mint lemonade\n').toString('base64') });

    browser = await launch();
    page = await newPage(browser.context);
    await login(page, users.owner1);
    await page.locator('#print-banner .print-banner-row').first().waitFor({ timeout: 20000 });
  });

  after(async () => {
    await browser?.close();
  });

  for (const size of SIZES) {
    test(`${size.width}×${size.height}`, async () => {
      await page.setViewportSize(size);
      const problems = [];
      for (const p of PAGES) {
        if (!await show(page, p.name)) { problems.push(`${p.name}: no such page`); continue; }
        await page.locator(p.ready).first().waitFor({ state: 'attached' });
        problems.push(...await check(page, p.name, size));
        await shot(page, `${p.name}-${size.width}x${size.height}`);
      }
      // The alerts panel, open.
      await page.locator('#alerts-btn').click();
      await page.locator('#alerts-panel').waitFor({ state: 'visible' });
      problems.push(...await check(page, 'the open alerts panel', size, { overlay: true }));
      await page.locator('#alerts-btn').click();
      // The phone's menu, open.
      const menu = page.locator('#menu-btn');
      if (await menu.isVisible()) {
        await menu.click();
        await page.locator('#nav-list a[data-page="users"]').waitFor({ state: 'visible' });
        problems.push(...await check(page, 'the open menu', size, { overlay: true }));
        await shot(page, `menu-${size.width}x${size.height}`);
        await page.locator('#nav-list a[data-page="orders"]').click();
        if (await page.locator('#nav-list a[data-page="users"]').isVisible()) problems.push('choosing a page leaves the menu open');
      } else {
        if (!await page.locator('#nav-list a[data-page="users"]').isVisible()) problems.push(`${size.width}×${size.height}: no menu button, and the Users section is not in sight`);
        if (!await page.getByRole('button', { name: 'Log out' }).isVisible()) problems.push(`${size.width}×${size.height}: Log out is not in sight`);
      }
      assert.deepEqual(problems, []);
      assert.deepEqual(page.problems, []);
    });
  }

  test('the board shows one status at a time on a phone, with the delivery address and prices in the currency', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await show(page, 'orders');
    const tabs = page.getByRole('tab');
    assert.equal(await tabs.count(), 5);
    const visibleColumns = () => page.locator('.column').evaluateAll((cols) => cols.filter((c) => c.checkVisibility()).map((c) => c.dataset.status));
    assert.deepEqual(await visibleColumns(), ['pending']);
    await page.getByRole('tab', { name: /^Ready/ }).click();
    assert.deepEqual(await visibleColumns(), ['ready']);
    assert.equal(await page.getByRole('tab', { name: /^Ready/ }).getAttribute('aria-selected'), 'true');
    await page.getByRole('tab', { name: /^Pending/ }).click();
    // A sideways swipe moves to the next status.
    const swipe = (from, to) => page.locator('.board').evaluate((b, [x0, x1]) => {
      const touch = (x) => new Touch({ identifier: 1, target: b, clientX: x, clientY: 400 });
      b.dispatchEvent(new TouchEvent('touchstart', { touches: [touch(x0)], changedTouches: [touch(x0)], bubbles: true }));
      b.dispatchEvent(new TouchEvent('touchend', { touches: [], changedTouches: [touch(x1)], bubbles: true }));
    }, [from, to]);
    await swipe(300, 120);
    assert.deepEqual(await visibleColumns(), ['confirmed']);
    await swipe(120, 300);
    assert.deepEqual(await visibleColumns(), ['pending']);
    const card = page.locator(`.order-card[data-order-id="${created.delivery.id}"]`);
    assert.match(await card.textContent(), /Rue Hamra 12, 3rd floor, Beirut/, 'a delivery card shows the address');
    const branches = (await ok(tokens.owner1, 'GET', '/api/branches')).items;
    const currency = branches.find((b) => b.id === 'br-1').currency || 'USD';
    const expected = await page.evaluate(({ c }) => {
      const digits = new Intl.NumberFormat('en', { style: 'currency', currency: c }).resolvedOptions().maximumFractionDigits;
      return new Intl.NumberFormat(undefined, { style: 'currency', currency: c }).format(1600 / 10 ** digits);
    }, { c: currency });
    assert.equal((await card.locator('.order-total').textContent()).trim(), expected);
    await page.setViewportSize({ width: 1280, height: 800 });
    assert.equal((await visibleColumns()).length, 5, 'all five columns on a wide screen');
  });

  test('users: list, add, change role, reset password, disable; HQ users read-only; errors in words', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await show(page, 'users');
    const section = page.locator('#page-users');
    const hqRow = section.locator('tr[data-user-id="u-hq-manager"]');
    await hqRow.waitFor();
    assert.match(await hqRow.textContent(), /HQ/);
    assert.equal(await hqRow.getByRole('button').count(), 0, 'a user from HQ is read-only here');

    const email = `cashier-${Date.now()}@co1.test`;
    await section.getByRole('button', { name: 'Add a user' }).click();
    const dialog = page.locator('#user-dialog');
    await dialog.getByLabel('Email').fill(email);
    await dialog.getByLabel('Name').fill('Nour Cashier');
    await dialog.getByLabel('Role').selectOption('cashier');
    await dialog.getByLabel('Branch').selectOption('br-1');
    await dialog.getByLabel('Password', { exact: true }).fill('short');
    await dialog.getByRole('button', { name: 'Add user' }).click();
    // The server's own words (too short a password).
    await until('error shown', async () => (await dialog.locator('.form-error').textContent()).length > 10);
    problemsFree(await check(page, 'the add-user dialog', { width: 390, height: 844 }, { overlay: true }));
    await dialog.getByLabel('Password', { exact: true }).fill('first-password-1');
    await dialog.getByRole('button', { name: 'Add user' }).click();
    const row = () => section.locator('tr[data-user-id]', { hasText: email });
    await row().waitFor();
    const list = async () => (await ok(tokens.owner1, 'GET', '/api/users')).items.find((u) => u.email === email);
    let u = await list();
    assert.equal(u.role, 'cashier');
    assert.equal(u.branchId, 'br-1');
    assert.equal(u.name, 'Nour Cashier');
    assert.equal((await api(null, 'POST', '/auth/login', { email, password: 'first-password-1' })).status, 200);

    // Adding the same email again: the API's conflict, in words.
    await section.getByRole('button', { name: 'Add a user' }).click();
    await dialog.getByLabel('Email').fill(email);
    await dialog.getByLabel('Role').selectOption('cashier');
    await dialog.getByLabel('Branch').selectOption('br-1');
    await dialog.getByLabel('Password', { exact: true }).fill('another-password-2');
    await dialog.getByRole('button', { name: 'Add user' }).click();
    await until('conflict shown', async () => /already exists/.test(await dialog.locator('.form-error').textContent()));
    await dialog.getByRole('button', { name: 'Cancel' }).click();

    // Change role and branch.
    await row().getByRole('button', { name: `Edit ${email}` }).click();
    await dialog.getByLabel('Role').selectOption('kitchen');
    await dialog.getByLabel('Branch').selectOption('br-2');
    await dialog.getByRole('button', { name: 'Save' }).click();
    await until('role changed', async () => { u = await list(); return u.role === 'kitchen' && u.branchId === 'br-2'; });
    await until('row updated', async () => /Kitchen/.test(await row().textContent()));

    // Reset its password.
    const before = u.passwordChangedAt;
    await row().getByRole('button', { name: `Reset the password of ${email}` }).click();
    const pwDialog = page.locator('#password-dialog');
    await pwDialog.getByLabel('New password').fill('second-password-2');
    await pwDialog.getByRole('button', { name: 'Set password' }).click();
    await until('password changed', async () => { u = await list(); return u.passwordChangedAt && u.passwordChangedAt !== before; });
    assert.equal((await api(null, 'POST', '/auth/login', { email, password: 'first-password-1' })).status, 401, 'the old password is refused');
    assert.equal((await api(null, 'POST', '/auth/login', { email, password: 'second-password-2' })).status, 200, 'the new one works');

    // Disable it, then enable it again.
    await row().getByRole('button', { name: `Disable ${email}` }).click();
    await until('disabled', async () => (await list()).disabled === true);
    await until('row says disabled', async () => /Disabled/.test(await row().textContent()));
    assert.notEqual((await api(null, 'POST', '/auth/login', { email, password: 'second-password-2' })).status, 200, 'a disabled user cannot log in');
    problemsFree(await check(page, 'users after the walk', { width: 390, height: 844 }));
    await shot(page, 'users-walk-390x844');
    await row().getByRole('button', { name: `Enable ${email}` }).click();
    await until('enabled', async () => (await list()).disabled === false);

    // Oneself: no role, branch or disable controls (the API refuses them too).
    const me = section.locator('tr[data-user-id="u-owner"]');
    assert.equal(await me.getByRole('button', { name: /Disable/ }).count(), 0);
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  test('anyone changes their own password from the header', async () => {
    const email = 'kitchen-self@co1.test';
    await ok(tokens.owner1, 'POST', '/api/users', { email, password: 'kitchen-password-1', role: 'kitchen', branchId: 'br-1' });
    const ctx2 = await launch();
    try {
      const p2 = await newPage(ctx2.context);
      await p2.setViewportSize({ width: 390, height: 844 });
      await login(p2, { email, password: 'kitchen-password-1' });
      assert.equal(await p2.locator('#nav-list a[data-page="users"]').count() === 0
        || !(await p2.locator('#nav-list a[data-page="users"]').evaluate((a) => a.parentElement.checkVisibility() && !a.parentElement.hidden)), true,
      'no Users page for a kitchen user');
      await p2.locator('#menu-btn').click();
      await p2.getByRole('button', { name: 'Change my password' }).click();
      const d = p2.locator('#own-password-dialog');
      await d.getByLabel('Current password').fill('wrong-password');
      await d.getByLabel('New password').fill('kitchen-password-2');
      await d.getByRole('button', { name: 'Change password' }).click();
      await until('wrong current password in words', async () => (await d.locator('.form-error').textContent()).trim().length > 5);
      problemsFree(await check(p2, 'the change-password dialog', { width: 390, height: 844 }, { overlay: true }));
      await shot(p2, 'change-password-390x844');
      await d.getByLabel('Current password').fill('kitchen-password-1');
      await d.getByRole('button', { name: 'Change password' }).click();
      await until('password changed', async () => (await api(null, 'POST', '/auth/login', { email, password: 'kitchen-password-2' })).status === 200);
      assert.equal((await api(null, 'POST', '/auth/login', { email, password: 'kitchen-password-1' })).status, 401);
      assert.deepEqual(p2.problems, []);
    } finally {
      await ctx2.close();
    }
  });
});

describe('a branch manager created at HQ', () => {
  test('manages only its branch and roles below its own; its own password is HQ\'s, said in words', async () => {
    const b = await launch();
    try {
      const p = await newPage(b.context);
      await p.setViewportSize({ width: 768, height: 1024 });
      await login(p, { email: 'hq-manager@co1.test', password: 'hq-password-1' });
      await show(p, 'users');
      const section = p.locator('#page-users');
      await section.locator('tr[data-user-id="u-hq-manager"]').waitFor();
      const branches = await section.locator('tr[data-user-id] td[data-label="Branch"]').allTextContents();
      assert.ok(branches.length > 0 && branches.every((t) => /One North/.test(t)), `only One North's users: ${branches}`);
      await section.getByRole('button', { name: 'Add a user' }).click();
      const dialog = p.locator('#user-dialog');
      assert.deepEqual(await dialog.getByLabel('Role').locator('option').evaluateAll((os) => os.map((o) => o.value)), ['cashier', 'call_center', 'kitchen']);
      assert.deepEqual(await dialog.getByLabel('Branch').locator('option').evaluateAll((os) => os.map((o) => o.value)), ['br-1']);
      await dialog.getByRole('button', { name: 'Cancel' }).click();
      await p.getByRole('button', { name: /my password/i }).click();
      const d = p.locator('#own-password-dialog');
      await d.getByLabel('Current password').fill('hq-password-1');
      await d.getByLabel('New password').fill('hq-password-2');
      await d.getByRole('button', { name: 'Change password' }).click();
      await until('HQ refusal in words', async () => /HQ/.test(await d.locator('.form-error').textContent()));
      assert.equal((await api(null, 'POST', '/auth/login', { email: 'hq-manager@co1.test', password: 'hq-password-1' })).status, 200, 'unchanged');
      assert.deepEqual(p.problems, []);
    } finally {
      await b.close();
    }
  });
});

function problemsFree(problems) {
  assert.deepEqual(problems, []);
}
