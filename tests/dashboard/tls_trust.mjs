// One page load in Debian's Chromium for tests/it/tls.rs: does the browser trust the
// appliance's HTTPS? The browser's certificate store is the NSS database under $HOME (the
// Rust test makes a fresh HOME, with or without the appliance CA imported by certutil).
// With PROBE_FROM (a plain-http page of the appliance), first runs the dashboard's "Switch to
// HTTPS" check from that page: a no-cors fetch of the https address, which fails unless the
// certificate is trusted. Prints one JSON line: {probe, ok, status, title, secure, error}.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const url = process.env.PAGE_URL;
const rules = process.env.HOST_RULES || '';
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'branchd-chromium-tls-'));
const args = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
if (rules) args.push(`--host-resolver-rules=${rules}`);
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, args,
});
let result;
let probe = null;
try {
  const page = await context.newPage();
  if (process.env.PROBE_FROM) {
    await page.goto(process.env.PROBE_FROM, { waitUntil: 'load', timeout: 15000 });
    probe = await page.evaluate(async (u) => {
      try { await fetch(u, { mode: 'no-cors', cache: 'no-store' }); return true; } catch { return false; }
    }, process.env.PROBE_URL);
  }
  const res = await page.goto(url, { waitUntil: 'load', timeout: 15000 });
  result = { ok: true, status: res ? res.status() : 0, title: await page.title(), secure: await page.evaluate(() => window.isSecureContext) };
} catch (e) {
  result = { ok: false, error: String(e && e.message || e).split('\n')[0] };
} finally {
  await context.close().catch(() => {});
  fs.rmSync(profile, { recursive: true, force: true });
}
console.log(JSON.stringify({ probe, ...result }));
