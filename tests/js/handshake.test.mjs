// SPEC §4 handshake: authentication before the namespace connection is accepted, with
// connect_error messages that are exactly the codes.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, refusedWith, web, desktop, FX, closeAll, ask } from './helpers.mjs';

after(closeAll);

test('web clients need a valid, unexpired HS256 token', async () => {
  for (const ns of ['/orders', '/availability', '/printing-ws']) {
    assert.equal(await refusedWith(ns, {}), 'AUTH_REQUIRED', ns);
    assert.equal(await refusedWith(ns, web('garbage')), 'TOKEN_INVALID', ns);
    assert.equal(await refusedWith(ns, web(FX.tokens.expired)), 'TOKEN_EXPIRED', ns);
    assert.equal(await refusedWith(ns, web(FX.tokens.wrongSecret)), 'TOKEN_INVALID', ns);
    assert.equal(await refusedWith(ns, web(FX.tokens.algNone)), 'TOKEN_INVALID', ns);
  }
  assert.equal(await refusedWith('/orders', web(FX.tokens.unknownRole)), 'FORBIDDEN');
});

test('a token is accepted and hints that contradict it are ignored', async () => {
  const s = await connect('/orders', web(FX.tokens.cashier1, { branchId: 'br-3', companyId: 'co-2' }));
  const r = await ask(s, 'requestLiveOrders', {});
  assert.equal(r.success, true);
  // The hint named br-3: the client is not in its room.
  const denied = await ask(s, 'requestLiveOrders', { branchId: 'br-3' });
  assert.equal(denied.success, false);
  assert.equal(denied.error.code, 'FORBIDDEN');
  s.close();
});

test('desktop apps authenticate by license, on /printing-ws only', async () => {
  assert.equal(await refusedWith('/printing-ws', desktop('bdl_not_a_key')), 'LICENSE_INVALID');
  assert.equal(await refusedWith('/printing-ws', desktop(undefined)), 'AUTH_REQUIRED');
  assert.equal(await refusedWith('/printing-ws', desktop(FX.licenses.br1, { branchId: 'br-2' })), 'LICENSE_INVALID', 'license used for another branch');
  assert.equal(await refusedWith('/printing-ws', desktop(FX.licenses.br1, { companyId: 'co-2' })), 'LICENSE_INVALID', 'license used for another company');
  assert.equal(await refusedWith('/orders', desktop(FX.licenses.br1)), 'FORBIDDEN');
  assert.equal(await refusedWith('/availability', desktop(FX.licenses.br1)), 'FORBIDDEN');
  const s = await connect('/printing-ws', desktop(FX.licenses.br1, { deviceId: 'dev-handshake' }));
  assert.ok(s.connected);
  s.close();
});
