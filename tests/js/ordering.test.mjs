// SPEC §6: events from one client socket (one namespace of one connection) are applied in
// the order it sent them — their effects on state and rooms, and the acks that answer at
// once. A request that waits on another party takes its place when registered, then waits
// without holding the client's later events; other namespaces and other clients go on.
//
// Each client sends bursts without waiting for anything in between; handlers take very
// different times (a cached join, an unknown branch that reads the database, catchUp and
// requestLiveOrders that read, desktop:status that writes, printer:test that waits on a
// desktop app), so on a server that runs each event's handler as its own task the effects
// and the acks come out of order. Many clients do it at once (ORDERING_CLIENTS, default 50).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Manager } from 'socket.io-client';
import { URL, TRANSPORT, CA, FX, closeAll, connect, web, desktop, waitFor, api, createOrder } from './helpers.mjs';

after(closeAll);
const T = FX.tokens;
const CLIENTS = Number(process.env.ORDERING_CLIENTS || 50);
// Generous: 100+ clients of a debug build on a shared 2-core machine. A server that held a
// client's later events behind its waiting printer:test still fails (wrong order, timeout).
const ACK_TIMEOUT = 20000;

/** Emits with an ack; a missing ack fails with the event's name. */
function ask(s, event, data) {
  return s
    .timeout(ACK_TIMEOUT)
    .emitWithAck(event, data)
    .catch((e) => {
      throw new Error(`no ack for ${event} within ${ACK_TIMEOUT} ms (${s.nsp}): ${e.message}`);
    });
}
const managers = [];
after(() => managers.forEach((m) => m.engine?.close()));

/** One connection (Manager) with a socket per namespace, like a real web app. */
function sockets(namespaces, auth) {
  const m = new Manager(URL, { transports: [TRANSPORT], reconnection: false, timeout: ACK_TIMEOUT, ...(CA ? { ca: CA } : {}) });
  managers.push(m);
  return Promise.all(
    namespaces.map(
      (ns) =>
        new Promise((resolve, reject) => {
          const s = m.socket(ns, { auth });
          s.once('connect', () => resolve(s));
          s.once('connect_error', reject);
        }),
    ),
  );
}

/**
 * Sends `script` in one go. Steps: [event, data, {ack}] (ack: default true). Returns the log
 * of what came back, in arrival order: `ack:<index>` for acks and `<event>` for the listed
 * server events, plus the acks themselves by index.
 */
async function burst(s, script, logged = ['exception']) {
  const log = [];
  const acks = [];
  const listeners = logged.map((ev) => {
    const on = (d) => log.push(ev === 'exception' ? `exception:${d.event}:${d.code}` : ev);
    s.on(ev, on);
    return [ev, on];
  });
  const pending = [];
  script.forEach(([event, data, opts = {}], i) => {
    if (opts.ack === false) {
      s.emit(event, data);
      return;
    }
    // A plain callback (not emitWithAck's promise) logs the ack when its packet is read,
    // in the same turn as the events around it.
    pending.push(
      new Promise((resolve, reject) =>
        s.timeout(ACK_TIMEOUT).emit(event, data, (err, a) => {
          if (err) return reject(new Error(`no ack for ${event} (#${i}): ${err.message}`));
          log.push(`ack:${i}`);
          acks[i] = a;
          resolve();
        }),
      ),
    );
  });
  await Promise.all(pending);
  for (const [ev, on] of listeners) s.off(ev, on);
  return { log, acks };
}

/** What an in-order server answers to `script`: acks and exceptions in script order. */
function expectedLog(script, extra = {}) {
  const out = [];
  script.forEach(([event, , opts = {}], i) => {
    for (const e of extra[i] || []) out.push(e);
    if (opts.ack === false) {
      if (opts.exception) out.push(`exception:${opts.exception}`);
    } else out.push(`ack:${i}`);
  });
  return out;
}

const branchesOf = (ack) =>
  [...new Set(ack.events.filter((e) => ['newOrder', 'availabilityUpdate'].includes(e.name)).map((e) => e.data.branchId))].sort();

test('rooms, catchUp and acks follow the order each client sent them, on two namespaces of one connection', async () => {
  // Something to catch up on in both branches, on both namespaces.
  await createOrder(T.manager1, 'br-1');
  await createOrder(T.owner1, 'br-2');
  for (const [b, tok] of [['br-1', T.manager1], ['br-2', T.owner1]]) {
    const r = await api('PUT', `/api/availability/${b}/product/ordering-${Date.now()}`, tok, { available: true, stock: 5 });
    assert.equal(r.status, 200, JSON.stringify(r.body));
  }
  // super_admin has no rooms of its own: what it is in is what it joined.
  const script = (ns) => [
    ['joinBranch', { branchId: 'br-1' }],
    ['catchUp', { since: '0' }], // 1: br-1
    ['leaveBranch', { branchId: 'br-1' }],
    ['joinBranch', { branchId: 'br-nowhere' }], // 3: NOT_FOUND after a database read
    ['catchUp', { since: '0' }], // 4: nothing
    ['joinBranch', { branchId: 'br-2' }, { ack: false }],
    ['catchUp', { since: '0' }], // 6: br-2
    ['joinBranch', 42, { ack: false, exception: 'joinBranch:VALIDATION_ERROR' }],
    ['no-such-event', {}, { ack: false, exception: 'no-such-event:UNKNOWN_EVENT' }],
    ns === '/orders' ? ['requestLiveOrders', { branchId: 'br-1' }] : ['ping', {}], // 9
    ['join:branch', { branchId: 'br-1' }],
    ['leave:branch', { branchId: 'br-2' }, { ack: false }],
    ['catchUp', { since: '0' }], // 12: br-1
    ['leaveBranch', { branchId: 'br-1' }, { ack: false }],
    ['catchUp', { since: '0' }], // 14: nothing
    ['no-such-event', {}], // 15: UNKNOWN_EVENT through the ack
    ['joinBranch', { branchId: 'br-2' }],
    ['catchUp', { since: '0' }], // 17: br-2
  ];
  const expectedRooms = { 1: ['br-1'], 4: [], 6: ['br-2'], 12: ['br-1'], 14: [], 17: ['br-2'] };
  const clients = await Promise.all(Array.from({ length: CLIENTS }, () => sockets(['/orders', '/availability'], web(T.admin))));
  const runs = await Promise.all(
    clients.flatMap(([orders, avail]) => [
      burst(orders, script('/orders')).then((r) => ({ ns: '/orders', ...r })),
      burst(avail, script('/availability'), ['exception', 'pong']).then((r) => ({ ns: '/availability', ...r })),
    ]),
  );
  let misordered = 0;
  for (const { ns, log, acks } of runs) {
    const s = script(ns);
    const want = expectedLog(s, ns === '/availability' ? { 9: ['pong'] } : {});
    const rooms = Object.fromEntries(Object.keys(expectedRooms).map((i) => [i, branchesOf(acks[i])]));
    if (JSON.stringify(log) !== JSON.stringify(want) || JSON.stringify(rooms) !== JSON.stringify(expectedRooms)) {
      misordered += 1;
      if (misordered === 1) {
        assert.deepEqual({ ns, log, rooms }, { ns, log: want, rooms: expectedRooms }, `${ns}: effects or acks out of order`);
      }
    }
    assert.equal(acks[3].error?.code, 'NOT_FOUND');
    assert.equal(acks[15].error?.code, 'UNKNOWN_EVENT');
    assert.equal(acks[9].success, true);
  }
  assert.equal(misordered, 0, `${misordered} of ${runs.length} bursts out of order`);
});

test('a test print waiting on the desktop app holds none of the requester\'s later events; the first answer wins; desktop reports apply in order', async () => {
  const pairs = await Promise.all(
    Array.from({ length: CLIENTS }, async (_, i) => {
      const deviceId = `ord-dev-${i}`;
      const d = await connect('/printing-ws', desktop(FX.licenses.br1, { deviceId }));
      await waitFor(d, 'desktop:connected');
      const r = await ask(d, 'printer:discovered', { printers: [{ localId: `ORD-${i}`, name: `Ordered ${i}` }] });
      assert.equal(r.success, true, JSON.stringify(r));
      const w = await connect('/printing-ws', web(T.manager1));
      return { d, w, printerId: r.added[0], localId: `ORD-${i}` };
    }),
  );
  const statuses = ['paper_out', 'online', 'offline', 'cover_open', 'error', 'online'];
  const results = await Promise.all(
    pairs.map(async ({ d, w, printerId, localId }) => {
      // The app answers only once the requester has had the acks of the events it sent
      // after printer:test: a server that held later events behind the wait would time out.
      let movedOn;
      const requesterMovedOn = new Promise((r) => (movedOn = r));
      const answers = [];
      const answered = new Promise((resolve) => {
        d.once('printer:test', async (req) => {
          await requesterMovedOn;
          const say = (message, i) =>
            d.emit('printer:test:result', { correlationId: req.correlationId, printerId, success: i === 0, message }, (a) =>
              answers.push([i, a.accepted]),
            );
          say('first', 0);
          say('second', 1);
          say('third', 2);
          resolve();
        });
      });
      const order = [];
      const tested = ask(w, 'printer:test', { printerId }).then((a) => {
        order.push('printer:test');
        return a;
      });
      const join = ask(w, 'joinBranch', { branchId: 'br-1' }).then((a) => {
        order.push('joinBranch');
        return a;
      });
      const live = ask(w, 'catchUp', { since: '0' }).then(() => order.push('catchUp'));
      Promise.all([join, live]).then(movedOn, movedOn);
      const [testAck, joinAck] = await Promise.all([tested, join, live]);
      await answered;

      // The desktop app reports one printer's status six times in a row, half unacked.
      const seen = [];
      const onStatus = (p) => p.printerId === printerId && seen.push(p.status);
      w.on('printerStatusUpdate', onStatus);
      const script = statuses.map((st, i) => ['desktop:status', { status: 'online', printers: [{ localId, status: st }] }, { ack: i % 2 === 1 }]);
      const { log } = await burst(d, script);
      const deadline = Date.now() + ACK_TIMEOUT; // ends as soon as all arrived; long only for an overloaded machine
      while (seen.length < statuses.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      w.off('printerStatusUpdate', onStatus);
      const rest = await api('GET', `/api/printers/${printerId}/status`, T.manager1);
      while (answers.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      return { testAck, joinAck, order, answers, log, want: expectedLog(script), seen, final: rest.body.status };
    }),
  );
  let bad = 0;
  for (const r of results) {
    const ok =
      r.testAck.success === true &&
      r.testAck.message === 'first' &&
      r.joinAck.success === true &&
      JSON.stringify(r.order) === JSON.stringify(['joinBranch', 'catchUp', 'printer:test']) &&
      JSON.stringify(r.answers) === JSON.stringify([[0, true], [1, false], [2, false]]) &&
      JSON.stringify(r.log) === JSON.stringify(r.want) &&
      JSON.stringify(r.seen) === JSON.stringify(statuses) &&
      r.final === statuses.at(-1);
    if (!ok && ++bad === 1) {
      assert.deepEqual(
        { message: r.testAck.message, order: r.order, answers: r.answers, log: r.log, seen: r.seen, final: r.final },
        {
          message: 'first',
          order: ['joinBranch', 'catchUp', 'printer:test'],
          answers: [[0, true], [1, false], [2, false]],
          log: r.want,
          seen: statuses,
          final: statuses.at(-1),
        },
      );
    }
  }
  assert.equal(bad, 0, `${bad} of ${results.length} clients saw their events out of order`);
});

test('a desktop app\'s disconnect takes its place after the events it sent before it', async () => {
  const w = await connect('/printing-ws', web(T.manager1));
  const apps = await Promise.all(
    Array.from({ length: CLIENTS }, async (_, i) => {
      const localId = `BYE-${i}`;
      const d = await connect('/printing-ws', desktop(FX.licenses.br1, { deviceId: `bye-dev-${i}` }));
      await waitFor(d, 'desktop:connected');
      const r = await ask(d, 'printer:discovered', { printers: [{ localId, name: `Bye ${i}` }] });
      assert.equal(r.success, true, JSON.stringify(r));
      return { d, printerId: r.added[0], localId };
    }),
  );
  const seen = new Map(apps.map((a) => [a.printerId, []]));
  w.on('printerStatusUpdate', (p) => seen.get(p.printerId)?.push(p.status));
  for (const { d, localId } of apps) {
    // A write, its last report, then goodbye: the app is gone, so its printers must end
    // offline (a disconnect handled at once would be undone by the report behind the write).
    d.emit('printer:discovered', { printers: [{ localId: `${localId}-2`, name: 'second' }] });
    d.emit('desktop:status', { status: 'online', printers: [{ localId, status: 'online' }] });
    d.disconnect();
  }
  const deadline = Date.now() + ACK_TIMEOUT;
  const done = () => [...seen.values()].every((s) => s.length >= 2);
  while (!done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  let bad = 0;
  for (const { printerId } of apps) {
    const rest = await api('GET', `/api/printers/${printerId}/status`, T.manager1);
    const got = { seen: seen.get(printerId), final: rest.body.status };
    if (JSON.stringify(got) !== JSON.stringify({ seen: ['online', 'offline'], final: 'offline' }) && ++bad === 1) {
      assert.deepEqual(got, { seen: ['online', 'offline'], final: 'offline' }, `printer ${printerId}`);
    }
  }
  assert.equal(bad, 0);
});
