// SPEC §4/§6 bad input: unknown events, wrong payloads, oversized and malformed packets get
// a clear error; the server keeps serving everyone else.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, web, FX, closeAll, ask, waitFor, URL, api, request } from './helpers.mjs';

after(closeAll);
const T = FX.tokens;

test('unknown events are answered with UNKNOWN_EVENT', async () => {
  for (const ns of ['/orders', '/availability', '/printing-ws']) {
    const s = await connect(ns, web(T.owner1));
    const r = await ask(s, 'launchMissiles', { now: true });
    assert.deepEqual(r, { success: false, error: { code: 'UNKNOWN_EVENT', message: 'unknown event launchMissiles' } });
    s.emit('alsoUnknown', 1);
    const ex = await waitFor(s, 'exception', (e) => e.event === 'alsoUnknown');
    assert.equal(ex.status, 'error');
    assert.equal(ex.code, 'UNKNOWN_EVENT');
  }
});

test('wrong payload shapes get VALIDATION_ERROR, through the ack or as exception', async () => {
  const s = await connect('/orders', web(T.owner1));
  for (const bad of [42, 'br-1', null, { branchId: 5 }, {}, { branchId: 'x'.repeat(10000) }, [1, 2]]) {
    const r = await ask(s, 'joinBranch', bad);
    assert.equal(r.success, false, JSON.stringify(bad));
    assert.equal(r.error.code, 'VALIDATION_ERROR', JSON.stringify(bad));
  }
  s.emit('joinBranch', 'not-an-object');
  const ex = await waitFor(s, 'exception', (e) => e.event === 'joinBranch');
  assert.equal(ex.code, 'VALIDATION_ERROR');
  s.emit('joinBranch', { branchId: 'br-3' });
  const forb = await waitFor(s, 'exception', (e) => e.event === 'joinBranch' && e.code === 'FORBIDDEN');
  assert.equal(forb.status, 'error');
  const nf = await ask(s, 'join:branch', { branchId: 'br-does-not-exist' });
  assert.equal(nf.error.code, 'NOT_FOUND');
});

test('an oversized payload disconnects only its sender', async () => {
  const big = await connect('/availability', web(T.owner1));
  const other = await connect('/availability', web(T.owner1));
  const gone = new Promise((resolve) => big.once('disconnect', resolve));
  big.emit('ping', { blob: 'x'.repeat(FX.maxPayload + 1024) });
  await gone;
  const r = await ask(other, 'ping', {});
  assert.equal(r.success, true, 'other clients are still served');
});

test('malformed Engine.IO/Socket.IO packets do not hurt the server', async () => {
  const hs = await request(`${URL}/socket.io/?EIO=4&transport=polling`);
  const text = await hs.text();
  const sid = JSON.parse(text.slice(1)).sid;
  for (const body of ['4garbage{', '40/orders,{"token":', '42/nope,["x"]', '\u0000\u0001\u0002', '9', '4' + '['.repeat(5000)]) {
    await request(`${URL}/socket.io/?EIO=4&transport=polling&sid=${sid}`, { method: 'POST', body }).catch(() => null);
  }
  const fake = await request(`${URL}/socket.io/?EIO=4&transport=polling&sid=not-a-session`, { method: 'POST', body: '40' });
  assert.equal(fake.status, 400);
  const health = await api('GET', '/health');
  assert.equal(health.status, 200);
  const s = await connect('/orders', web(T.owner1));
  assert.equal((await ask(s, 'requestLiveOrders', {})).success, true);
});
