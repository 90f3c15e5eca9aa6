// Soak (issue #8): thousands of Socket.IO clients connecting, reconnecting, joining and
// leaving, and a steady order stream, against a running branchd (run-soak.sh starts it).
// Every SAMPLE seconds it records the server's RSS, open files, threads, connection count,
// /health latency and POST -> newOrder latency; at the end it fits a line to RSS and fds over
// the second half (the slope should be ~0) and writes CSV + SVG.
//
//   node soak.mjs BASE PID SECRET OUTDIR
// env: SOAK_SECONDS (3600), SOAK_CLIENTS (2000), SOAK_RATE (orders/s, 5), SOAK_CHURN (reconnects/s, 20)
import { io } from 'socket.io-client';
import crypto from 'node:crypto';
import fs from 'node:fs';

const [base, pidArg, secret, outDir] = process.argv.slice(2);
const pid = Number(pidArg);
const seconds = Number(process.env.SOAK_SECONDS || 3600);
const clients = Number(process.env.SOAK_CLIENTS || 2000);
const rate = Number(process.env.SOAK_RATE || 5);
const churn = Number(process.env.SOAK_CHURN || 20);
const SAMPLE = Number(process.env.SOAK_SAMPLE || Math.max(5, Math.round(seconds / 120)));
const branches = ['br-1', 'br-2', 'br-3', 'br-4'];

function jwt(claims) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ ...claims, exp: Math.floor(Date.now() / 1000) + 86400 })}`;
  return `${body}.${crypto.createHmac('sha256', secret).update(body).digest('base64url')}`;
}
const owner = jwt({ sub: 'soak-owner', role: 'company_owner', companyId: 'co-1' });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const proc = (f) => fs.readFileSync(`/proc/${pid}/${f}`, 'utf8');
const status = (k) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(proc('status'))[1]);

// Clients: a mix of branch staff (/orders) and company screens (/availability, joining branches).
const sockets = new Array(clients).fill(null);
let connects = 0, connectErrors = 0, newOrders = 0;
const pending = new Map(); // order id -> sent at
const lat = [];
function open(i) {
  const branch = branches[i % branches.length];
  const onOrders = i % 3 !== 2;
  const token = onOrders ? jwt({ sub: `staff-${i}`, role: 'cashier', companyId: 'co-1', branchId: branch }) : owner;
  const s = io(`${base}${onOrders ? '/orders' : '/availability'}`, {
    auth: { token }, transports: i % 10 === 0 ? ['polling'] : ['websocket'], reconnection: false, forceNew: true,
  });
  s.on('connect', () => { connects++; if (!onOrders) s.emit('joinBranch', { branchId: branch }); });
  s.on('connect_error', () => { connectErrors++; });
  if (i === 0) s.on('newOrder', (o) => {
    newOrders++;
    const t = pending.get(o.id);
    if (t !== undefined) { lat.push(performance.now() - t); pending.delete(o.id); }
  });
  sockets[i] = s;
}
for (let i = 0; i < clients; i++) { open(i); if (i % 200 === 199) await sleep(100); }

let stop = false;
// Churn: close random clients and open them again; company screens leave and join branches.
(async () => {
  while (!stop) {
    for (let k = 0; k < churn; k++) {
      const i = 1 + Math.floor(Math.random() * (clients - 1));
      const s = sockets[i];
      if (i % 3 === 2 && s?.connected && Math.random() < 0.5) {
        const b = branches[Math.floor(Math.random() * branches.length)];
        s.emit('leaveBranch', { branchId: b }); s.emit('joinBranch', { branchId: b });
      } else { s?.close(); open(i); }
    }
    await sleep(1000);
  }
})();
// Orders to br-1, watched by client 0.
let posted = 0, postErrors = 0;
(async () => {
  while (!stop) {
    const id = crypto.randomUUID();
    const t = performance.now();
    pending.set(id, t);
    try {
      const res = await fetch(`${base}/api/orders`, {
        method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${owner}` },
        body: JSON.stringify({ id, branchId: 'br-1', type: 'takeaway', items: [{ name: 'Soup', quantity: 1, unitPrice: 450 }] }),
      });
      await res.arrayBuffer();
      if (res.status === 201) posted++; else { postErrors++; pending.delete(id); }
    } catch { postErrors++; pending.delete(id); }
    await sleep(1000 / rate);
  }
})();

const rows = [];
const t0 = Date.now();
const pct = (xs, p) => { if (!xs.length) return 0; const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(p * s.length))]; };
while ((Date.now() - t0) / 1000 < seconds) {
  await sleep(SAMPLE * 1000);
  const h0 = performance.now();
  const health = await (await fetch(`${base}/health`)).json();
  const healthMs = performance.now() - h0;
  const window = lat.splice(0);
  const row = {
    t: Math.round((Date.now() - t0) / 1000), rssMb: +(status('VmRSS') / 1024).toFixed(1), fds: fs.readdirSync(`/proc/${pid}/fd`).length,
    threads: status('Threads'), connected: Object.values(health.connections).reduce((a, b) => a + b, 0),
    healthMs: +healthMs.toFixed(1), p50: +pct(window, 0.5).toFixed(2), p99: +pct(window, 0.99).toFixed(2),
    posted, postErrors, newOrders, connects, connectErrors,
  };
  rows.push(row);
  console.log(JSON.stringify(row));
}
stop = true;
for (const s of sockets) s?.close();

fs.mkdirSync(outDir, { recursive: true });
const cols = Object.keys(rows[0]);
fs.writeFileSync(`${outDir}/soak.csv`, [cols.join(','), ...rows.map((r) => cols.map((c) => r[c]).join(','))].join('\n') + '\n');
function slope(key) { // least squares over the second half, per hour
  const half = rows.slice(Math.floor(rows.length / 2));
  const n = half.length; if (n < 2) return 0;
  const mx = half.reduce((a, r) => a + r.t, 0) / n, my = half.reduce((a, r) => a + r[key], 0) / n;
  const num = half.reduce((a, r) => a + (r.t - mx) * (r[key] - my), 0), den = half.reduce((a, r) => a + (r.t - mx) ** 2, 0);
  return den ? (num / den) * 3600 : 0;
}
function svg() {
  const W = 720, H = 260, P = 40, tmax = rows.at(-1).t;
  const series = [['rssMb', '#c0392b', 'RSS MB'], ['fds', '#2c7fb8', 'open files / 10', 0.1], ['p99', '#27ae60', 'POST→newOrder p99 ms']];
  const ymax = Math.max(...rows.flatMap((r) => series.map(([k, , , f]) => r[k] * (f || 1)))) * 1.1 || 1;
  const x = (t) => P + (t / tmax) * (W - 2 * P), y = (v) => H - P - (v / ymax) * (H - 2 * P);
  const lines = series.map(([k, c, , f]) => `<polyline fill="none" stroke="${c}" stroke-width="1.5" points="${rows.map((r) => `${x(r.t).toFixed(1)},${y(r[k] * (f || 1)).toFixed(1)}`).join(' ')}"/>`);
  const legend = series.map(([, c, l], i) => `<text x="${P + 10 + i * 200}" y="18" fill="${c}" font-size="12">${l}</text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>` +
    `<line x1="${P}" y1="${H - P}" x2="${W - P}" y2="${H - P}" stroke="#999"/><line x1="${P}" y1="${P}" x2="${P}" y2="${H - P}" stroke="#999"/>` +
    `<text x="${W / 2}" y="${H - 8}" font-size="11" text-anchor="middle">seconds (0–${tmax}); ${clients} clients, ${churn} reconnects/s, ${rate} orders/s</text>` +
    `<text x="${P - 4}" y="${P}" font-size="10" text-anchor="end">${ymax.toFixed(0)}</text>` + lines.join('') + legend.join('') + '</svg>';
}
fs.writeFileSync(`${outDir}/soak.svg`, svg());
const summary = {
  seconds, clients, churnPerSecond: churn, ordersPerSecond: rate, samples: rows.length,
  rssMbFirst: rows[0].rssMb, rssMbLast: rows.at(-1).rssMb, rssSlopeMbPerHour: +slope('rssMb').toFixed(2),
  fdsFirst: rows[0].fds, fdsLast: rows.at(-1).fds, fdsSlopePerHour: +slope('fds').toFixed(1),
  threadsLast: rows.at(-1).threads, p99First: rows[0].p99, p99Last: rows.at(-1).p99,
  posted, postErrors, newOrdersSeenByOneClient: newOrders, connects, connectErrors,
};
console.log(JSON.stringify({ summary }));
// Nothing failed, clients are all there, and (on runs long enough to tell a trend from
// warm-up: 10 minutes or more) memory and open files do not climb.
const flat = seconds < 600 || (summary.rssSlopeMbPerHour < 20 && summary.fdsSlopePerHour < 200);
const ok = postErrors === 0 && connectErrors === 0 && rows.at(-1).connected >= clients * 0.9 && flat;
if (!ok) console.error(`soak: FAILED (postErrors ${postErrors}, connectErrors ${connectErrors}, connected ${rows.at(-1).connected}, flat ${flat})`);
process.exit(ok ? 0 : 1);
