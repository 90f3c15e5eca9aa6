// Connected clients per Socket.IO namespace and the desktop print agents of the caller's
// branches. Refreshed every few seconds while the page is open.

import { h, setText, toast } from '../lib/dom.js';

const LABELS = {
  '/orders': ['Orders', 'POS, tablets and kitchen screens following orders'],
  '/availability': ['Availability', 'Clients following stock and availability'],
  '/printing-ws': ['Printing', 'Print agents and screens following printers'],
};
const EVERY_MS = 5000;

export function connectionsPage(ctx, section) {
  const { api, live } = ctx;
  let timer = null;

  section.append(h('div', { class: 'page-head' }, h('h1', { id: 'page-connections-title' }, 'Connections'),
    h('div', { class: 'toolbar' }, h('span', { class: 'stat', id: 'conn-transport' }, ''))));

  const counts = {};
  const grid = h('div', { class: 'stat-grid' });
  for (const [ns, [label, help]] of Object.entries(LABELS)) {
    const value = h('p', { class: 'stat-value', dataset: { ns } }, '–');
    counts[ns] = value;
    grid.append(h('section', { class: 'card stat-card', 'aria-label': `${label} clients` },
      h('h2', {}, label, ' ', h('code', { class: 'muted small' }, ns)), value, h('p', { class: 'muted small' }, help)));
  }
  section.append(grid);

  const tbody = h('tbody', {});
  const empty = h('p', { class: 'empty-note' }, 'No desktop print agent is connected.');
  const tableWrap = h('div', { class: 'table-wrap' });
  section.append(h('div', { class: 'card' }, h('h2', { id: 'desktops-title' }, 'Desktop print agents'),
    tableWrap, empty));
  tableWrap.append(h('table', { class: 'table', 'aria-labelledby': 'desktops-title' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Device'), h('th', { scope: 'col' }, 'Branch'))), tbody));

  async function refresh() {
    try {
      const r = await api.get('/api/connections');
      for (const [ns, el] of Object.entries(counts)) setText(el, r.namespaces && ns in r.namespaces ? r.namespaces[ns] : '–');
      const apps = r.desktopApps || [];
      tbody.replaceChildren(...apps.map((d) => h('tr', {}, h('td', {}, h('code', {}, d.deviceId)), h('td', {}, d.branchName || d.branchId))));
      empty.hidden = apps.length > 0;
      tableWrap.hidden = apps.length === 0;
      const t = live.transport();
      setText(document.getElementById('conn-transport'), t ? `This screen: ${t === 'websocket' ? 'WebSocket' : 'long-polling'}` : '');
      section.dataset.loaded = 'true';
    } catch (e) {
      toast(`Could not load connections: ${e.message}`, { kind: 'error' });
    }
  }

  return {
    enter() {
      refresh();
      timer = window.setInterval(refresh, EVERY_MS);
    },
    leave() {
      window.clearInterval(timer);
      timer = null;
    },
  };
}
