// Helpers for the socket.io-client conformance suite. The Rust harness (tests/it/js_client.rs)
// starts a real branchd and passes its URL and fixtures in the environment.
import { io } from 'socket.io-client';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';

export const URL = process.env.BRANCHD_URL;
export const FX = JSON.parse(process.env.BRANCHD_FIXTURES || '{}');
export const TRANSPORT = process.env.TRANSPORT || 'websocket';
// Over HTTPS (tests/it/tls.rs): the appliance's CA, given to every client as `ca` (nothing else
// trusts it: no NODE_EXTRA_CA_CERTS, no rejectUnauthorized: false).
export const CA = process.env.BRANCHD_CA ? fs.readFileSync(process.env.BRANCHD_CA) : undefined;
const TIMEOUT = 5000;

/** fetch()-like over node:http(s), so an https URL is verified against `CA`. */
export function request(url, { method = 'GET', headers = {}, body } = {}) {
  const u = new globalThis.URL(url);
  const mod = u.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request(u, { method, headers, ...(CA ? { ca: CA } : {}) }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode, text: async () => text, json: async () => JSON.parse(text) });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}
if (!URL) throw new Error('BRANCHD_URL is not set: run this suite through `cargo test --test it js_client::`');

const open = new Set();
export function closeAll() { for (const s of open) s.close(); open.clear(); }

/** Connects to `ns`; resolves with the socket once connected, rejects with connect_error's message. */
export function connect(ns, auth, extra = {}) {
  const tls = CA ? { ca: CA } : {};
  const s = io(URL + ns, { transports: [TRANSPORT], auth, forceNew: true, reconnection: false, timeout: TIMEOUT, ...tls, ...extra });
  open.add(s);
  s.received = [];
  s.onAny((event, ...args) => s.received.push({ event, data: args[0] }));
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`connect to ${ns} timed out`)), TIMEOUT);
    s.once('connect', () => { clearTimeout(t); resolve(s); });
    s.once('connect_error', (e) => { clearTimeout(t); s.close(); reject(e); });
  });
}

export async function refusedWith(ns, auth) {
  const err = await connect(ns, auth).then(() => null, (e) => e);
  assert.ok(err, `connection to ${ns} should have been refused`);
  return err.message;
}

export const web = (token, extra = {}) => ({ token, userRole: 'web_client', ...extra });
export const desktop = (licenseKey, extra = {}) => ({
  userRole: 'desktop_app', deviceId: 'dev-1', branchId: 'br-1', companyId: 'co-1', licenseKey, appVersion: '2.3.0', instanceId: 'i-1', ...extra,
});

/** Emits with an ack callback; resolves with the ack. */
export function ask(s, event, data) {
  return s.timeout(TIMEOUT).emitWithAck(event, data);
}

/** Resolves with the first `event` (already received or future) whose payload passes `pred`. */
export function waitFor(s, event, pred = () => true) {
  const seen = s.received.find((r) => r.event === event && pred(r.data));
  if (seen) return Promise.resolve(seen.data);
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => { s.off(event, on); reject(new Error(`no ${event} within ${TIMEOUT} ms`)); }, TIMEOUT);
    function on(data) { if (pred(data)) { clearTimeout(t); s.off(event, on); resolve(data); } }
    s.on(event, on);
  });
}

export const count = (s, event, pred = () => true) => s.received.filter((r) => r.event === event && pred(r.data)).length;

export async function api(method, path, token, body) {
  const res = await request(URL + path, {
    method, headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { json = text; }
  return { status: res.status, body: json };
}

export function orderBody(branchId, extra = {}) {
  return { branchId, type: 'dine_in', items: [{ name: 'Kebab', quantity: 1, unitPrice: 900, station: 'grill' }], ...extra };
}

export async function createOrder(token, branchId, extra) {
  const r = await api('POST', '/api/orders', token, orderBody(branchId, extra));
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body;
}
