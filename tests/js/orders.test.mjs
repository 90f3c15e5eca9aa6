// SPEC §4 /orders: rooms, broadcasts (each once), isolation between companies, replies.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, web, FX, closeAll, ask, waitFor, count, api, createOrder } from './helpers.mjs';

after(closeAll);
const T = FX.tokens;

test('newOrder reaches the branch and company rooms, once each, with the REST shape', async () => {
  const cashier = await connect('/orders', web(T.cashier1));
  const owner = await connect('/orders', web(T.owner1));
  const joined = await ask(owner, 'joinBranch', { branchId: 'br-1' }); // now in company:co-1 and branch:br-1
  assert.deepEqual(joined, { success: true, branchId: 'br-1', room: 'branch:br-1' });
  const cashier2 = await connect('/orders', web(T.cashier2)); // br-2: must not see br-1

  const o1 = await createOrder(T.cashier1, 'br-1');
  const got = await waitFor(cashier, 'newOrder', (d) => d.id === o1.id);
  const { eventId, ...payload } = got;
  assert.equal(typeof eventId, 'string');
  assert.deepEqual(payload, o1, 'newOrder is the order as REST returns it');
  await waitFor(owner, 'newOrder', (d) => d.id === o1.id);

  // Barrier: an order of br-2 is emitted after o1; once owner and cashier2 have it, o1 has
  // either arrived everywhere it will or not at all.
  const o2 = await createOrder(T.owner1, 'br-2');
  await waitFor(owner, 'newOrder', (d) => d.id === o2.id);
  await waitFor(cashier2, 'newOrder', (d) => d.id === o2.id);
  assert.equal(count(owner, 'newOrder', (d) => d.id === o1.id), 1, 'a client in both rooms gets the event once');
  assert.equal(count(cashier2, 'newOrder', (d) => d.id === o1.id), 0, 'br-2 cashier does not see br-1');
  assert.equal(count(cashier, 'newOrder', (d) => d.id === o2.id), 0, 'br-1 cashier does not see br-2');
});

test('status, cancel and driver updates carry their payloads', async () => {
  const s = await connect('/orders', web(T.manager1));
  const o = await createOrder(T.cashier1, 'br-1', { type: 'delivery' });
  const r = await api('PATCH', `/api/orders/${o.id}/status`, T.cashier1, { status: 'confirmed' });
  assert.equal(r.status, 200);
  const upd = await waitFor(s, 'orderStatusUpdate', (d) => d.orderId === o.id);
  assert.equal(upd.status, 'confirmed');
  assert.equal(upd.previousStatus, 'pending');
  assert.equal(upd.updatedAt, r.body.updatedAt);
  assert.equal(typeof upd.eventId, 'string');

  await api('PUT', `/api/orders/${o.id}/driver`, T.cashier1, { driverId: 'd-7', name: 'Rana', phone: '+100', etaMinutes: 9 });
  const drv = await waitFor(s, 'driverUpdate', (d) => d.orderId === o.id);
  assert.deepEqual(drv.driver, { driverId: 'd-7', name: 'Rana', phone: '+100', etaMinutes: 9 });

  await api('POST', `/api/orders/${o.id}/cancel`, T.cashier1, { reason: 'duplicate' });
  const c = await waitFor(s, 'orderCancelled', (d) => d.orderId === o.id);
  assert.equal(c.reason, 'duplicate');
});

test('company B never sees anything of company A', async () => {
  const b = await connect('/orders', web(T.owner2));
  const admin = await connect('/orders', web(T.admin));
  await ask(admin, 'joinBranch', { branchId: 'br-3' });
  const denied = await ask(b, 'joinBranch', { branchId: 'br-1' });
  assert.equal(denied.success, false);
  assert.equal(denied.error.code, 'FORBIDDEN');
  const a = await createOrder(T.cashier1, 'br-1');
  const mine = await createOrder(T.owner2, 'br-3');
  await waitFor(b, 'newOrder', (d) => d.id === mine.id);
  await waitFor(admin, 'newOrder', (d) => d.id === mine.id);
  assert.equal(count(b, 'newOrder', (d) => d.id === a.id), 0);
  const live = await ask(b, 'requestLiveOrders', {});
  assert.equal(live.success, true);
  assert.ok(live.orders.every((o) => o.companyId === 'co-2'), 'live orders of co-2 only');
  assert.ok(live.orders.some((o) => o.id === mine.id));
});

test('requestLiveOrders lists live orders the client may see', async () => {
  const s = await connect('/orders', web(T.owner1));
  const o = await createOrder(T.cashier1, 'br-1');
  const done = await createOrder(T.cashier1, 'br-1');
  await api('POST', `/api/orders/${done.id}/cancel`, T.cashier1, { reason: 'x' });
  const all = await ask(s, 'requestLiveOrders', undefined);
  assert.equal(all.success, true);
  assert.ok(all.orders.some((x) => x.id === o.id));
  assert.ok(!all.orders.some((x) => x.id === done.id), 'cancelled orders are not live');
  const one = await ask(s, 'requestLiveOrders', { branchId: 'br-2' });
  assert.ok(one.orders.every((x) => x.branchId === 'br-2'));
  const unknown = await ask(s, 'requestLiveOrders', { branchId: 'br-nowhere' });
  assert.equal(unknown.error.code, 'NOT_FOUND');
  const bad = await ask(s, 'requestLiveOrders', { branchId: 12 });
  assert.equal(bad.error.code, 'VALIDATION_ERROR');
});

test('join/leave aliases; leaving stops delivery', async () => {
  const admin = await connect('/orders', web(T.admin)); // super_admin without company: no rooms yet
  const j = await ask(admin, 'join:branch', { branchId: 'br-1' });
  assert.equal(j.success, true);
  await ask(admin, 'joinBranch', { branchId: 'br-3' });
  const first = await createOrder(T.cashier1, 'br-1');
  await waitFor(admin, 'newOrder', (d) => d.id === first.id);
  const left = await ask(admin, 'leave:branch', { branchId: 'br-1' });
  assert.deepEqual(left, { success: true, branchId: 'br-1' });
  const second = await createOrder(T.cashier1, 'br-1');
  const barrier = await createOrder(T.owner2, 'br-3');
  await waitFor(admin, 'newOrder', (d) => d.id === barrier.id);
  assert.equal(count(admin, 'newOrder', (d) => d.id === second.id), 0);
  const l2 = await ask(admin, 'leaveBranch', { branchId: 'br-never-joined' });
  assert.equal(l2.success, true, 'leaving is always allowed');
});

test('catchUp returns what a client missed, in order', async () => {
  const early = await connect('/orders', web(T.cashier1));
  const o1 = await createOrder(T.cashier1, 'br-1');
  const e1 = (await waitFor(early, 'newOrder', (d) => d.id === o1.id)).eventId;
  early.close();
  const o2 = await createOrder(T.cashier1, 'br-1');
  await api('PATCH', `/api/orders/${o2.id}/status`, T.cashier1, { status: 'confirmed' });
  const other = await createOrder(T.owner2, 'br-3');

  const back = await connect('/orders', web(T.cashier1));
  const r = await ask(back, 'catchUp', { since: e1 });
  assert.equal(r.success, true);
  assert.equal(r.truncated, false);
  const names = r.events.map((e) => `${e.name}:${e.data.id || e.data.orderId}`);
  assert.deepEqual(names.filter((n) => n.endsWith(o2.id)), [`newOrder:${o2.id}`, `orderStatusUpdate:${o2.id}`]);
  assert.ok(!names.some((n) => n.endsWith(o1.id)), 'nothing at or before `since`');
  assert.ok(!names.some((n) => n.endsWith(other.id)), 'nothing from rooms the client is not in');
  const ids = r.events.map((e) => Number(e.data.eventId));
  assert.deepEqual([...ids].sort((a, b) => a - b), ids, 'in order');

  const unknown = await ask(back, 'catchUp', { since: 'no-such-event' });
  assert.equal(unknown.truncated, true);
  assert.ok(unknown.events.some((e) => e.data.id === o1.id));
  const bad = await ask(back, 'catchUp', {});
  assert.equal(bad.error.code, 'VALIDATION_ERROR');
});

test('the default client (long-polling, then upgrade to WebSocket) keeps its rooms across the upgrade', async () => {
  const s = await connect('/orders', web(T.cashier1), { transports: ['polling', 'websocket'], upgrade: true });
  const engine = s.io.engine;
  if (engine.transport.name !== 'websocket') {
    await new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no upgrade to websocket within 5 s')), 5000);
      engine.once('upgrade', () => { clearTimeout(t); resolve(); });
    });
  }
  assert.equal(engine.transport.name, 'websocket');
  const o = await createOrder(T.cashier1, 'br-1');
  const got = await waitFor(s, 'newOrder', (d) => d.id === o.id);
  assert.equal(got.branchId, 'br-1');
  const r = await ask(s, 'requestLiveOrders', {});
  assert.ok(r.orders.some((x) => x.id === o.id), 'acks work after the upgrade');
});
