// Abuse benchmark (issue #8): what a guest phone on the restaurant Wi-Fi can do with curl,
// measured against a real branchd (release build) started by run-abuse.sh.
//
//   node abuse.mjs login  BASE PID   20,000 failed logins, 64 at a time, distinct emails, one
//                                    source address; a staff login from another address during
//                                    the flood; a locked account stays locked. RSS sampled.
//   node abuse.mjs bodies BASE PID   40 unauthenticated 16 MiB sync bodies to a hub, sent slowly.
//   node abuse.mjs loris  BASE PID   a half-sent request: how long until the server closes it.
//
// Prints one JSON object of figures; exits 1 when a target of the issue is missed.
import net from 'node:net';
import fs from 'node:fs';

const [mode, base, pidArg] = process.argv.slice(2);
const pid = Number(pidArg);
const url = new URL(base);

function rssMb() {
  const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(s)[1]) / 1024;
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function sampler() {
  let peak = rssMb();
  const t = setInterval(() => { peak = Math.max(peak, rssMb()); }, 25);
  return { stop: () => { clearInterval(t); return Math.max(peak, rssMb()); } };
}
async function login(email, password, forwardedFor) {
  const headers = { 'content-type': 'application/json' };
  if (forwardedFor) headers['x-forwarded-for'] = forwardedFor;
  const t0 = performance.now();
  const res = await fetch(`${base}/auth/login`, { method: 'POST', headers, body: JSON.stringify({ email, password }) });
  await res.arrayBuffer();
  return { status: res.status, ms: performance.now() - t0 };
}

async function loginFlood() {
  const total = Number(process.env.FLOOD_TOTAL || 20000);
  const conc = 64;
  // Lock the owner's account from some device first.
  for (let i = 0; i < 6; i++) await login('owner@bench.local', 'guess', '192.0.2.50');
  const lockedBefore = (await login('owner@bench.local', 'owner-password-1', '192.0.2.51')).status;
  await sleep(1000);
  const idle = rssMb();
  const s = sampler();
  const codes = {};
  let next = 0;
  const t0 = performance.now();
  const workers = Array.from({ length: conc }, async (_, w) => {
    while (next < total) {
      const i = next++;
      const r = await login(`guess-${w}-${i}@bench.local`, 'wrong');
      codes[r.status] = (codes[r.status] || 0) + 1;
    }
  });
  const staff = (async () => {
    const out = [];
    for (let i = 0; i < 5; i++) {
      await sleep(300);
      out.push(await login('staff@bench.local', 'staff-password-1', '192.0.2.20'));
    }
    return out;
  })();
  await Promise.all(workers);
  const secs = (performance.now() - t0) / 1000;
  const staffResults = await staff;
  const peak = s.stop();
  const lockedAfter = (await login('owner@bench.local', 'owner-password-1', '192.0.2.52')).status;
  await sleep(3000);
  const after = rssMb();
  const fig = {
    mode: 'login', requests: total, concurrency: conc, seconds: +secs.toFixed(2), perSecond: Math.round(total / secs),
    codes, rssIdleMb: +idle.toFixed(1), rssPeakMb: +peak.toFixed(1), rssGrowthMb: +(peak - idle).toFixed(1),
    rssAfter3sMb: +after.toFixed(1), staff: staffResults.map((r) => `${r.status} in ${r.ms.toFixed(0)} ms`),
    ownerLockedBefore: lockedBefore, ownerLockedAfter: lockedAfter,
  };
  const ok = fig.perSecond >= 500 && fig.rssGrowthMb < 64 && staffResults.every((r) => r.status === 200)
    && lockedBefore === 429 && lockedAfter === 429 && (codes[401] || 0) + (codes[429] || 0) === total;
  return { fig, ok };
}

function slowBody(token) {
  return new Promise((resolve) => {
    const sock = net.connect(Number(url.port), url.hostname);
    const t0 = performance.now();
    let answered = null;
    let buf = '';
    sock.on('data', (d) => {
      buf += d.toString();
      if (!answered && buf.includes('\r\n')) answered = { status: Number(buf.split(' ')[1]), ms: performance.now() - t0 };
    });
    sock.on('error', () => {});
    sock.on('close', () => resolve(answered || { status: 0, ms: performance.now() - t0 }));
    sock.write(`POST /sync/v1/events HTTP/1.1\r\nHost: ${url.host}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${16 << 20}\r\n${token ? `Authorization: Bearer ${token}\r\n` : ''}\r\n`);
    // Trickle the body: 64 KiB every 50 ms, until answered (or 2 s).
    const chunk = Buffer.alloc(64 << 10, 0x20);
    const t = setInterval(() => {
      if (answered || performance.now() - t0 > 2000) { clearInterval(t); sock.end(); return; }
      sock.write(chunk);
    }, 50);
  });
}

async function hubBodies() {
  await sleep(500);
  const idle = rssMb();
  const s = sampler();
  const results = await Promise.all(Array.from({ length: 40 }, (_, i) => slowBody(i % 2 ? 'not-a-credential' : null)));
  const peak = s.stop();
  const fig = {
    mode: 'bodies', requests: 40, statuses: [...new Set(results.map((r) => r.status))],
    answeredWithinMsMax: Math.round(Math.max(...results.map((r) => r.ms))),
    rssIdleMb: +idle.toFixed(1), rssPeakMb: +peak.toFixed(1), rssGrowthMb: +(peak - idle).toFixed(1),
  };
  return { fig, ok: fig.statuses.length === 1 && fig.statuses[0] === 401 && fig.rssGrowthMb < 16 };
}

async function loris() {
  const t0 = performance.now();
  const closedAfter = await new Promise((resolve) => {
    const sock = net.connect(Number(url.port), url.hostname, () => sock.write(`GET /health HTTP/1.1\r\nHost: ${url.host}\r\nX-Slow: `));
    sock.on('error', () => {});
    sock.on('close', () => resolve((performance.now() - t0) / 1000));
    setTimeout(() => { sock.destroy(); resolve(Infinity); }, 45000);
  });
  return { fig: { mode: 'loris', closedAfterSeconds: +closedAfter.toFixed(2) }, ok: closedAfter <= 31 }; // a 30 s deadline, plus scheduling
}

const run = { login: loginFlood, bodies: hubBodies, loris }[mode];
if (!run) { console.error('usage: abuse.mjs login|bodies|loris BASE PID'); process.exit(2); }
const { fig, ok } = await run();
console.log(JSON.stringify({ ...fig, ok }));
process.exit(ok ? 0 : 1);
