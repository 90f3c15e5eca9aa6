// SPEC §4 /printing-ws: desktop apps, discovered printers, status, and the correlation-id
// flow of test prints (first answer wins, duplicates ignored, timeout, disconnect).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { connect, web, desktop, FX, closeAll, ask, waitFor, api, refusedWith } from './helpers.mjs';

after(closeAll);
const T = FX.tokens;

async function desktopWithPrinter(deviceId, localId) {
  const d = await connect('/printing-ws', desktop(FX.licenses.br1, { deviceId }));
  const hello = await waitFor(d, 'desktop:connected');
  assert.equal(hello.deviceId, deviceId);
  assert.equal(hello.branchId, 'br-1');
  assert.ok(!Number.isNaN(Date.parse(hello.serverTime)));
  const r = await ask(d, 'printer:discovered', { printers: [{ localId, name: `Printer ${localId}`, type: 'usb' }] });
  assert.equal(r.success, true, JSON.stringify(r));
  return { d, printerId: r.added[0] };
}

test('discovered printers and desktop status become broadcasts', async () => {
  const w = await connect('/printing-ws', web(T.manager1));
  const { d, printerId } = await desktopWithPrinter('dev-disc', 'EPSON-1');
  const added = await waitFor(w, 'printer:added', (p) => p.id === printerId);
  assert.equal(added.deviceId, 'dev-disc');
  assert.equal(added.localId, 'EPSON-1');
  assert.deepEqual(added.connection, { type: 'desktop', deviceId: 'dev-disc', localId: 'EPSON-1' });
  assert.equal(added.status, 'unknown');
  assert.equal(added.role, 'label', 'no automatic tickets until someone gives it a role');
  const kitchen = await ask(d, 'printer:discovered', { printers: [{ localId: 'EPSON-K', name: 'Kitchen', role: 'kitchen' }] });
  assert.equal((await waitFor(w, 'printer:added', (p) => p.id === kitchen.added[0])).role, 'kitchen', 'unless the app says');
  const badRole = await ask(d, 'printer:discovered', { printers: [{ localId: 'X', role: 'toaster' }] });
  assert.equal(badRole.error.code, 'VALIDATION_ERROR');
  const again = await ask(d, 'printer:discovered', { printers: [{ localId: 'EPSON-1', name: 'Renamed' }] });
  assert.deepEqual(again.added, []);
  assert.deepEqual(again.updated, [printerId]);
  await waitFor(w, 'printerUpdate', (p) => p.id === printerId && p.name === 'Renamed');

  d.emit('desktop:status', { status: 'online', printers: [{ localId: 'EPSON-1', status: 'paper_out' }] });
  const st = await waitFor(w, 'printerStatusUpdate', (p) => p.printerId === printerId);
  assert.equal(st.status, 'paper_out');
  assert.equal(st.localId, 'EPSON-1');
  const rest = await api('GET', `/api/printers/${printerId}/status`, T.manager1);
  assert.equal(rest.body.status, 'paper_out');
  const bad = await ask(d, 'desktop:status', { printers: [{ localId: 'EPSON-1', status: 'on_fire' }] });
  assert.equal(bad.error.code, 'VALIDATION_ERROR');
  assert.equal((await ask(w, 'printer:discovered', { printers: [] })).error.code, 'FORBIDDEN', 'web clients cannot report printers');
});

test('printer:test round trip: first answer wins, duplicates are ignored', async () => {
  const w = await connect('/printing-ws', web(T.manager1));
  const { d, printerId } = await desktopWithPrinter('dev-rt', 'STAR-1');
  d.on('printer:test', async (req) => {
    assert.equal(req.printerId, printerId);
    assert.equal(req.localId, 'STAR-1');
    const first = await d.emitWithAck('printer:test:result', { correlationId: req.correlationId, printerId, success: true, message: 'printed' });
    const dup = await d.emitWithAck('printer:test:result', { correlationId: req.correlationId, printerId, success: false, message: 'late' });
    d.emit('answers', { first, dup });
    d.answers = { first, dup };
  });
  const ack = await ask(w, 'printer:test', { printerId });
  assert.equal(ack.success, true, JSON.stringify(ack));
  assert.equal(ack.message, 'printed');
  const res = await waitFor(w, 'printer:test:result', (r) => r.correlationId === ack.correlationId);
  assert.equal(res.printerId, printerId);
  assert.equal(res.success, true);
  const deadline = Date.now() + 3000;
  while (!d.answers && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.equal(d.answers.first.accepted, true);
  assert.equal(d.answers.dup.accepted, false, 'a duplicate answer is ignored');

  // Socket ids are never sent to other clients.
  const everything = JSON.stringify(w.received);
  assert.ok(!everything.includes(d.id), 'the desktop socket id leaked to a web client');
  const forged = await ask(w, 'printer:test:result', { correlationId: ack.correlationId, success: true });
  assert.equal(forged.error.code, 'FORBIDDEN');
});

test('REST test print through a desktop app, failure, timeout and disconnect', async () => {
  const { d, printerId } = await desktopWithPrinter('dev-rest', 'ZEBRA-1');
  let mode = 'fail';
  d.on('printer:test', (req) => {
    if (mode === 'fail') d.emit('printer:test:result', { correlationId: req.correlationId, success: false, message: 'paper jam' });
    if (mode === 'drop') d.close();
  });
  let r = await api('POST', `/api/printers/${printerId}/test`, T.manager1);
  assert.equal(r.status, 200);
  assert.equal(r.body.success, false);
  assert.equal(r.body.error.code, 'PRINTER_ERROR');
  assert.equal(r.body.message, 'paper jam');

  mode = 'silent';
  r = await api('POST', `/api/printers/${printerId}/test`, T.manager1);
  assert.equal(r.status, 504);
  assert.equal(r.body.error.code, 'PRINT_TIMEOUT');
  assert.equal(r.body.message, 'timeout');
  assert.ok(r.body.durationMs >= FX.printTimeoutMs - 50, `waited ${r.body.durationMs} ms`);

  mode = 'drop';
  r = await api('POST', `/api/printers/${printerId}/test`, T.manager1);
  assert.equal(r.status, 200);
  assert.equal(r.body.error.code, 'DESKTOP_OFFLINE');
  assert.ok(r.body.durationMs < FX.printTimeoutMs, 'a disconnect fails the request at once');
  r = await api('POST', `/api/printers/${printerId}/test`, T.manager1);
  assert.equal(r.body.error.code, 'DESKTOP_OFFLINE');
});

test('a desktop app of another company cannot answer for or touch this branch', async () => {
  const w = await connect('/printing-ws', web(T.manager1));
  const { d, printerId } = await desktopWithPrinter('dev-shared-id', 'P-1');
  const intruder = await connect('/printing-ws', desktop(FX.licenses.br3, { deviceId: 'dev-shared-id', branchId: 'br-3', companyId: 'co-2' }));
  await waitFor(intruder, 'desktop:connected');
  assert.ok(d.connected, 'a device id claimed in another branch does not displace this app');
  await ask(intruder, 'desktop:status', { printers: [{ localId: 'P-1', status: 'error' }] });
  const st = await api('GET', `/api/printers/${printerId}/status`, T.manager1);
  assert.equal(st.body.status, 'unknown');
  d.on('printer:test', (req) => {
    intruder.emit('printer:test:result', { correlationId: req.correlationId, success: false, message: 'forged' });
    d.emit('printer:test:result', { correlationId: req.correlationId, success: true, message: 'real' });
  });
  const ack = await ask(w, 'printer:test', { printerId });
  assert.equal(ack.message, 'real');
  const missing = await ask(w, 'printer:test', { printerId: 'no-such-printer' });
  assert.equal(missing.error.code, 'NOT_FOUND');
});

test('print jobs through a desktop app: a drop mid-job gives a marked copy; its printers go offline while it is away', async () => {
  const w = await connect('/printing-ws', web(T.manager1));
  const { d, printerId } = await desktopWithPrinter('dev-jobs', 'EPSON-J');
  d.emit('desktop:status', { status: 'online', printers: [{ localId: 'EPSON-J', status: 'online' }] });
  await waitFor(w, 'printerStatusUpdate', (p) => p.printerId === printerId && p.status === 'online');

  // The app receives the job and vanishes without answering: it may have printed it.
  const first = new Promise((resolve) => d.once('print:job', (job) => { d.close(); resolve(job); }));
  const data = Buffer.from('TICKET 7\n').toString('base64');
  const r = await api('POST', '/api/print-jobs', T.manager1, { printerId, kind: 'raw', data });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  const job = await first;
  assert.equal(job.jobId, r.body.id);
  assert.equal(job.localId, 'EPSON-J');
  assert.equal(Buffer.from(job.data, 'base64').toString(), 'TICKET 7\n', 'a first copy is sent as given');
  const off = await waitFor(w, 'printerStatusUpdate', (p) => p.printerId === printerId && p.status === 'offline');
  assert.match(off.detail, /desktop app disconnected/);
  await waitFor(w, 'printJobUpdate', (j) => j.id === r.body.id && j.status === 'queued' && j.uncertain === true);

  // Back again: the copy carries the banner, and once answered the job is printed, once.
  const d2 = await connect('/printing-ws', desktop(FX.licenses.br1, { deviceId: 'dev-jobs' }));
  const copies = [];
  d2.on('print:job', (j) => {
    copies.push(j);
    d2.emit('printer:test:result', { correlationId: j.correlationId, printerId, success: true, message: 'printed' });
  });
  await waitFor(w, 'printJobUpdate', (j) => j.id === r.body.id && j.status === 'printed');
  assert.equal(copies.length, 1);
  const bytes = Buffer.from(copies[0].data, 'base64');
  assert.ok(bytes.includes('POSSIBLE DUPLICATE'), 'the uncertain copy is marked');
  assert.ok(bytes.subarray(bytes.length - 9).equals(Buffer.from('TICKET 7\n')), 'then the job exactly as given');
});

test('revoking a license disconnects the desktop app using it, and it cannot come back', async () => {
  const key = FX.licenses.revocable;
  const d = await connect('/printing-ws', desktop(key, { deviceId: 'dev-revoked' }));
  await waitFor(d, 'desktop:connected');
  const gone = new Promise((resolve) => d.once('disconnect', resolve));
  execFileSync(FX.cli.bin, ['--data-dir', FX.cli.dataDir, 'license', 'revoke', key], { stdio: 'pipe' });
  const reason = await Promise.race([gone, new Promise((r) => setTimeout(() => r('still connected after 5 s'), 5000))]);
  assert.equal(reason, 'io server disconnect');
  assert.equal(await refusedWith('/printing-ws', desktop(key, { deviceId: 'dev-revoked' })), 'LICENSE_INVALID');
  const other = await connect('/printing-ws', desktop(FX.licenses.br1, { deviceId: 'dev-still-licensed' }));
  assert.ok(other.connected, 'other licenses are untouched');
});
