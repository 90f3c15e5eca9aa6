// Minimal dashboard: health and live orders over REST. The full dashboard grows here.
'use strict';
const $ = (id) => document.getElementById(id);
async function refreshHealth() {
  try {
    const h = await (await fetch('/health')).json();
    $('version').textContent = `v${h.version} · ${h.role}`;
    const rows = { Status: h.status, Database: h.db, Uplink: h.upstream, 'Up for': `${h.uptimeSeconds} s`,
      'Print agents': h.desktopApps, ...Object.fromEntries(Object.entries(h.connections).map(([k, v]) => [`Clients ${k}`, v])) };
    $('status').replaceChildren(...Object.entries(rows).flatMap(([k, v]) => {
      const dt = document.createElement('dt'); dt.textContent = k;
      const dd = document.createElement('dd'); dd.textContent = String(v);
      return [dt, dd];
    }));
  } catch (e) { $('status').textContent = 'branchd is not answering'; }
}
let token = sessionStorage.getItem('branchd.token');
async function loadOrders() {
  if (!token) return;
  const r = await fetch('/api/orders?status=live', { headers: { authorization: `Bearer ${token}` } });
  if (!r.ok) { token = null; sessionStorage.removeItem('branchd.token'); return; }
  const { items } = await r.json();
  $('orders-sec').hidden = false;
  $('orders').replaceChildren(...items.map((o) => {
    const li = document.createElement('li');
    li.textContent = `#${o.number} ${o.type} · ${o.status} · ${(o.total / 100).toFixed(2)}`;
    return li;
  }));
}
$('login').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  const r = await fetch('/auth/login', { method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: f.get('email'), password: f.get('password') }) });
  const body = await r.json();
  if (!r.ok) { $('login-msg').textContent = body.error.message; return; }
  token = body.accessToken; sessionStorage.setItem('branchd.token', token);
  $('login-msg').textContent = `Logged in as ${body.user.email}`;
  loadOrders();
});
refreshHealth(); loadOrders();
setInterval(() => { refreshHealth(); loadOrders(); }, 5000);
