// SPEC §4 /availability: rooms, updates, stock alerts, ping/pong.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, web, FX, closeAll, ask, waitFor, count, api } from './helpers.mjs';

after(closeAll);
const T = FX.tokens;

test('ping answers with an ack and a pong event', async () => {
  const s = await connect('/availability', web(T.owner1));
  const r = await ask(s, 'ping', {});
  assert.equal(r.success, true);
  assert.ok(!Number.isNaN(Date.parse(r.timestamp)) && r.timestamp.endsWith('Z'));
  const pong = await waitFor(s, 'pong');
  assert.equal(typeof pong.timestamp, 'string');
});

test('updates and stock alerts reach branch-scoped and company clients', async () => {
  const kitchen = await connect('/availability', web(T.kitchen1)); // auto-joined to branch:br-1
  const owner = await connect('/availability', web(T.owner1)); // company:co-1
  const item = `falafel-${Date.now()}`;
  let r = await api('PUT', `/api/availability/br-1/product/${item}`, T.manager1, { available: true, stock: 10, lowStockThreshold: 3 });
  assert.equal(r.status, 200);
  const upd = await waitFor(kitchen, 'availabilityUpdate', (d) => d.itemId === item);
  for (const k of ['branchId', 'itemType', 'itemId', 'available', 'stock', 'lowStockThreshold', 'updatedAt', 'eventId']) assert.ok(k in upd, k);
  await waitFor(owner, 'availabilityUpdate', (d) => d.itemId === item);

  await api('PUT', `/api/availability/br-1/product/${item}`, T.manager1, { available: true, stock: 2 });
  const low = await waitFor(kitchen, 'stockAlert', (d) => d.itemId === item);
  assert.equal(low.type, 'low_stock');
  await api('PUT', `/api/availability/br-1/product/${item}`, T.manager1, { available: true, stock: 1 });
  await api('PUT', `/api/availability/br-1/product/${item}`, T.manager1, { available: false, stock: 0 });
  const out = await waitFor(kitchen, 'stockAlert', (d) => d.itemId === item && d.type === 'out_of_stock');
  assert.equal(out.stock, 0);
  const critical = await waitFor(owner, 'newAlert', (d) => d.itemId === item);
  assert.equal(critical.severity, 'critical');
  assert.equal(count(kitchen, 'stockAlert', (d) => d.itemId === item && d.type === 'low_stock'), 1, 'no alert while stock stays low');

  r = await api('POST', '/api/availability/br-1/bulk', T.manager1, { items: [{ itemType: 'modifier', itemId: `${item}-m`, available: false }] });
  assert.equal(r.status, 200);
  const bulk = await waitFor(owner, 'bulkAvailabilityUpdate', (d) => d.items.some((i) => i.itemId === `${item}-m`));
  assert.equal(bulk.branchId, 'br-1');
});

test('company clients join branches explicitly; foreign branches are refused', async () => {
  const s = await connect('/availability', web(T.callcenter1));
  assert.equal((await ask(s, 'joinBranch', { branchId: 'br-2' })).success, true);
  const r = await ask(s, 'joinBranch', { branchId: 'br-3' });
  assert.equal(r.error.code, 'FORBIDDEN');
  const k = await connect('/availability', web(T.kitchen1));
  const r2 = await ask(k, 'joinBranch', { branchId: 'br-2' });
  assert.equal(r2.error.code, 'FORBIDDEN', 'kitchen staff see their own branch only');
});
