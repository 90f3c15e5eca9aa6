// Support for the dashboard suite: the fixtures the Rust test passes in, REST calls,
// Debian's Chromium through playwright-core (never a downloaded browser), screenshots, and
// a tiny ESC/POS printer emulator on 127.0.0.1.

import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

export const fixtures = JSON.parse(process.env.BRANCHD_FIXTURES || '{}');
export const BASE = process.env.BRANCHD_URL;
if (!BASE) throw new Error('BRANCHD_URL is not set: run this suite through `cargo test --test it dashboard::`');

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = process.env.DASHBOARD_ARTIFACTS || path.resolve('../../target/dashboard-artifacts');
const SCREENSHOTS = process.env.DASHBOARD_SCREENSHOTS || '';

/** A REST call with a bearer token; returns {status, body}. */
export async function api(token, method, p, body) {
  const res = await fetch(`${BASE}${p}`, {
    method,
    headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed = text;
  try { parsed = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, body: parsed };
}

/** Like api() but fails unless the status is 2xx. */
export async function ok(token, method, p, body) {
  const r = await api(token, method, p, body);
  if (r.status < 200 || r.status > 299) throw new Error(`${method} ${p} → ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

export function orderBody(branchId, extra = {}) {
  return {
    branchId,
    type: 'dine_in',
    items: [
      { name: 'Chicken shawarma', quantity: 2, unitPrice: 650, station: 'grill' },
      { name: 'Fresh lemonade', quantity: 1, unitPrice: 300, station: 'bar', notes: 'no ice' },
    ],
    notes: 'table 4',
    ...extra,
  };
}

/** Debian's Chromium, headless, in a fresh profile directory. */
export async function launch() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'branchd-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 800 },
    acceptDownloads: true,
    locale: 'en-GB',
    timezoneId: 'UTC',
  });
  const close = async () => {
    await context.close().catch(() => {});
    fs.rmSync(profile, { recursive: true, force: true });
  };
  return { context, close };
}

/**
 * A new tab that records uncaught errors and CSP violations (the suite asserts there are
 * none). Failed HTTP calls the UI handles (403/404) are not errors.
 */
export async function newPage(context) {
  const page = await context.newPage();
  page.problems = [];
  page.on('pageerror', (e) => page.problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const t = m.text();
    if (t.startsWith('Failed to load resource')) return;
    page.problems.push(`console: ${t}`);
  });
  // Anything outside the appliance would be a bug: the dashboard loads nothing from the internet.
  // The appliance's own https address on the same port counts as the appliance.
  const local = [BASE, BASE.replace(/^http:/, 'https:'), fixtures.syncUrl, 'blob:', 'data:'].filter(Boolean);
  page.on('request', (r) => {
    const u = r.url();
    if (!local.some((p) => u.startsWith(p))) page.problems.push(`external request: ${u}`);
  });
  return page;
}

/** Saves a screenshot as a test artefact and, when asked, into docs/screenshots. */
export async function shot(page, name, { keepToasts = false } = {}) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name}.png`);
  // Passing toasts would hide part of the page in the picture.
  if (!keepToasts) await page.evaluate(() => document.querySelectorAll('.toast').forEach((t) => t.remove()));
  // Let transitions (new-order highlight) settle so the picture is what a person sees.
  await page.waitForTimeout(300);
  await page.screenshot({ path: file });
  if (SCREENSHOTS) {
    fs.mkdirSync(SCREENSHOTS, { recursive: true });
    fs.copyFileSync(file, path.join(SCREENSHOTS, `${name}.png`));
  }
  return file;
}

export async function login(page, who, base = BASE) {
  await page.goto(`${base}/`);
  await page.getByLabel('Email').fill(who.email);
  await page.getByLabel('Password').fill(who.password);
  // Keyboard, as a person at a till would.
  await page.getByLabel('Password').press('Enter');
  await page.locator('#app-view').waitFor({ state: 'visible' });
  await page.locator('#live-pill[data-state="live"]').waitFor();
}

/** Waits until fn() is truthy (polling), or fails with `what`. */
export async function until(what, fn, timeoutMs = 15000) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
}

/** Every visible control has an accessible name (label, aria-label or text). */
export async function unnamedControls(page) {
  return page.evaluate(() => {
    const out = [];
    for (const el of document.querySelectorAll('button, input, select, textarea, a[href]')) {
      if (!el.checkVisibility()) continue;
      const labelled = (el.labels && [...el.labels].some((l) => l.textContent.trim()))
        || (el.getAttribute('aria-label') || '').trim()
        || (el.getAttribute('aria-labelledby') || '').split(' ').some((id) => document.getElementById(id)?.textContent.trim())
        || (el.tagName === 'BUTTON' || el.tagName === 'A' ? el.textContent.trim() : '')
        || (el.type === 'radio' && el.labels && el.labels.length);
      if (!labelled) out.push(el.outerHTML.slice(0, 120));
    }
    return out;
  });
}

/**
 * An ESC/POS network printer on 127.0.0.1:PORT: answers DLE EOT n (real-time status) with
 * 0x12 (online, no error) and GS r 1 (paper status, the job confirmation) with 0x00 (paper
 * present). stop() closes the port and every open connection: the printer is "off".
 */
export async function startEmulator() {
  const sockets = new Set();
  const received = [];
  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => {});
    let tail = [];
    sock.on('data', (buf) => {
      received.push(buf);
      for (const b of buf) {
        tail.push(b);
        if (tail.length > 3) tail.shift();
        if (tail.length < 3) continue;
        if (tail[0] === 0x10 && tail[1] === 0x04) {
          sock.write(Buffer.from([0x12]));
          tail = [];
        } else if (tail[0] === 0x1d && tail[1] === 0x72 && tail[2] === 0x01) {
          sock.write(Buffer.from([0x00]));
          tail = [];
        }
      }
    });
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return {
    port: server.address().port,
    received,
    async stop() {
      const closed = new Promise((r) => server.close(r));
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}
