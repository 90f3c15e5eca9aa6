// Availability of one branch's products and modifiers: an available switch and stock per
// item, live over `/availability`. Rows are keyed by item and updated in place.

import { h, setText, toast, announce, busy, fmtTime, words, uid } from '../lib/dom.js';
import { path } from '../lib/api.js';
import { raiseAlert } from '../lib/alerts.js';

const NS = '/availability';
const COMPANY_ROLES = new Set(['company_owner', 'call_center', 'super_admin']);

const keyOf = (it) => `${it.itemType}\u0000${it.itemId}`;

export function availabilityPage(ctx, section) {
  const { api, live } = ctx;
  const rows = new Map();
  let branch = ctx.user.branchId && ctx.branches.some((b) => b.id === ctx.user.branchId)
    ? ctx.user.branchId : (ctx.branches[0] || {}).id || '';
  let joined = null;

  const selectId = uid('avail-branch');
  const select = h('select', { id: selectId, disabled: ctx.branches.length < 2 },
    ctx.branches.map((b) => h('option', { value: b.id, selected: b.id === branch }, b.name)));
  select.addEventListener('change', () => { branch = select.value; joinAndLoad(); });
  const summary = h('span', { class: 'stat' }, '');
  section.append(h('div', { class: 'page-head' },
    h('h1', { id: 'page-availability-title' }, 'Availability'),
    h('div', { class: 'toolbar' }, h('label', { for: selectId }, 'Branch'), select, summary)));

  const tbody = h('tbody', {});
  const empty = h('p', { class: 'empty-note' }, 'No items yet. Items appear here once the POS or this page sets their availability.');
  const table = h('table', { class: 'table availability-table' },
    h('caption', { class: 'sr-only' }, 'Items and their availability'),
    h('colgroup', {}, h('col', { class: 'c-item' }), h('col', { class: 'c-type' }), h('col', { class: 'c-avail' }),
      h('col', { class: 'c-stock' }), h('col', { class: 'c-thr' }), h('col', { class: 'c-time' })),
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, 'Item'), h('th', { scope: 'col' }, 'Type'), h('th', { scope: 'col' }, 'Available'),
      h('th', { scope: 'col' }, 'Stock'), h('th', { scope: 'col' }, 'Low at'), h('th', { scope: 'col' }, 'Updated'))),
    tbody);
  section.append(h('div', { class: 'card' }, h('div', { class: 'table-wrap' }, table), empty));

  // Add or update any item (there is no menu on the appliance: items are ids).
  const f = {
    type: h('select', { id: uid('add-type'), name: 'itemType' }, h('option', { value: 'product' }, 'Product'), h('option', { value: 'modifier' }, 'Modifier')),
    id: h('input', { id: uid('add-id'), name: 'itemId', required: true, maxlength: 128, autocomplete: 'off', placeholder: 'e.g. falafel-wrap' }),
    available: h('input', { id: uid('add-avail'), name: 'available', type: 'checkbox', checked: true }),
    stock: h('input', { id: uid('add-stock'), name: 'stock', type: 'number', min: 0, step: 1, inputmode: 'numeric', placeholder: 'no limit' }),
    thr: h('input', { id: uid('add-thr'), name: 'lowStockThreshold', type: 'number', min: 0, step: 1, inputmode: 'numeric', placeholder: 'none' }),
  };
  const addForm = h('form', { class: 'inline-form', 'aria-labelledby': 'avail-add-title' },
    h('div', { class: 'field' }, h('label', { for: f.type.id }, 'Type'), f.type),
    h('div', { class: 'field field-grow' }, h('label', { for: f.id.id }, 'Item id'), f.id),
    h('div', { class: 'field field-check' }, f.available, h('label', { for: f.available.id }, 'Available')),
    h('div', { class: 'field field-num' }, h('label', { for: f.stock.id }, 'Stock'), f.stock),
    h('div', { class: 'field field-num' }, h('label', { for: f.thr.id }, 'Low-stock alert at'), f.thr),
    h('button', { type: 'submit', class: 'btn btn-primary' }, 'Save item'));
  addForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const itemId = f.id.value.trim();
    if (!itemId) { toast('Enter an item id.', { kind: 'error' }); f.id.focus(); return; }
    const body = { available: f.available.checked };
    if (f.stock.value !== '') body.stock = Number(f.stock.value);
    if (f.thr.value !== '') body.lowStockThreshold = Number(f.thr.value);
    if (await save(f.type.value, itemId, body)) {
      f.id.value = '';
      f.stock.value = '';
      f.thr.value = '';
      f.id.focus();
    }
  });
  section.append(h('div', { class: 'card' }, h('h2', { id: 'avail-add-title' }, 'Set an item'), addForm));

  async function save(itemType, itemId, body) {
    try {
      const item = await api.put(path('/api/availability', branch, itemType, itemId), body);
      upsert(item);
      return true;
    } catch (e) {
      toast(`Could not save ${itemId}: ${e.message}`, { kind: 'error' });
      return false;
    }
  }

  function makeRow(item) {
    const label = `${item.itemId}`;
    const toggle = h('input', { type: 'checkbox', role: 'switch', class: 'switch', 'aria-label': `Available: ${label}` });
    const stockId = uid('stock');
    const stock = h('input', { id: stockId, type: 'number', min: 0, step: 1, inputmode: 'numeric', class: 'stock-input', placeholder: '—' });
    const saveBtn = h('button', { type: 'submit', class: 'btn btn-small' }, 'Save');
    saveBtn.setAttribute('aria-label', `Save stock of ${label}`);
    const stockForm = h('form', { class: 'stock-form' }, h('label', { for: stockId, class: 'sr-only' }, `Stock of ${label}`), stock, saveBtn);
    const refs = {
      name: h('th', { scope: 'row', class: 'item-name' }),
      type: h('td', {}),
      state: h('span', { class: 'switch-text', 'aria-hidden': 'true' }),
      toggle,
      stock,
      thr: h('td', { class: 'num' }),
      time: h('td', { class: 'muted' }),
    };
    const tr = h('tr', { dataset: { itemId: item.itemId, itemType: item.itemType } },
      refs.name, refs.type, h('td', {}, h('label', { class: 'switch-wrap' }, toggle, refs.state)),
      h('td', {}, stockForm), refs.thr, refs.time);
    toggle.addEventListener('change', async () => {
      const e = rows.get(keyOf(item));
      if (!busy(toggle, true)) { toggle.checked = !toggle.checked; return; }
      const ok = await save(item.itemType, item.itemId, { available: toggle.checked });
      busy(toggle, false);
      if (!ok) toggle.checked = e.item.available;
      else announce(`${item.itemId} is now ${toggle.checked ? 'available' : 'unavailable'}`);
    });
    stockForm.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const e = rows.get(keyOf(item));
      const body = { available: e.item.available, stock: stock.value === '' ? null : Number(stock.value) };
      if (!busy(saveBtn, true)) return;
      if (await save(item.itemType, item.itemId, body)) announce(`Stock of ${item.itemId} saved`);
      busy(saveBtn, false);
    });
    // Typing in the box must not be overwritten by a live update of the same row.
    stock.addEventListener('input', () => { stock.dataset.dirty = '1'; });
    return { tr, refs, item };
  }

  function fill(e) {
    const it = e.item;
    const r = e.refs;
    setText(r.name, it.itemId);
    setText(r.type, words(it.itemType));
    r.toggle.checked = !!it.available;
    setText(r.state, it.available ? 'Available' : 'Unavailable');
    if (document.activeElement !== r.stock || !r.stock.dataset.dirty) {
      r.stock.value = it.stock === null || it.stock === undefined ? '' : String(it.stock);
      delete r.stock.dataset.dirty;
    }
    setText(r.thr, it.lowStockThreshold ?? '—');
    setText(r.time, fmtTime(it.updatedAt));
    e.tr.dataset.available = String(!!it.available);
    e.tr.dataset.stock = it.stock === null || it.stock === undefined ? '' : String(it.stock);
    e.tr.classList.toggle('is-out', it.stock === 0 || !it.available);
  }

  function upsert(item) {
    if (!item || item.branchId !== branch) return;
    const k = keyOf(item);
    let e = rows.get(k);
    if (e && e.item.updatedAt && item.updatedAt && item.updatedAt < e.item.updatedAt) return;
    if (!e) {
      e = makeRow(item);
      rows.set(k, e);
      // Sorted insert: type, then id.
      let before = null;
      for (const tr of tbody.children) {
        const other = rows.get(`${tr.dataset.itemType}\u0000${tr.dataset.itemId}`);
        if (other && keyOf(other.item) > k) { before = tr; break; }
      }
      tbody.insertBefore(e.tr, before);
    }
    e.item = { ...e.item, ...item };
    fill(e);
    stats();
  }

  function stats() {
    empty.hidden = rows.size > 0;
    let off = 0;
    for (const e of rows.values()) if (!e.item.available || e.item.stock === 0) off += 1;
    setText(summary, `${rows.size} items · ${off} unavailable`);
  }

  async function load() {
    const b = branch;
    if (!b) { stats(); return; }
    try {
      const res = await api.get(path('/api/availability', b));
      if (b !== branch) return;
      rows.clear();
      tbody.replaceChildren();
      for (const it of res.items || []) upsert({ branchId: b, ...it });
      section.dataset.loaded = 'true';
    } catch (e) {
      toast(`Could not load availability: ${e.message}`, { kind: 'error' });
    }
    stats();
  }

  async function joinAndLoad() {
    rows.clear();
    tbody.replaceChildren();
    stats();
    // Company-level users are in the company room already; joining the branch is what the
    // contract offers them to follow one branch explicitly.
    if (COMPANY_ROLES.has(ctx.user.role) && live.socket(NS).connected && branch) {
      try {
        if (joined && joined !== branch) await live.request(NS, 'leaveBranch', { branchId: joined });
        const ack = await live.request(NS, 'joinBranch', { branchId: branch });
        if (ack && ack.success) joined = branch;
      } catch { /* the company room still delivers this branch's events */ }
    }
    await load();
  }

  live.onConnect(NS, () => { joined = null; joinAndLoad(); });
  live.on(NS, 'availabilityUpdate', (it) => upsert(it));
  live.on(NS, 'bulkAvailabilityUpdate', (ev) => {
    if (!ev || ev.branchId !== branch) return;
    for (const it of ev.items || []) upsert({ branchId: ev.branchId, ...it });
  });
  live.on(NS, 'stockAlert', (a) => {
    if (!a) return;
    const where = ctx.multiBranch ? ` (${ctx.branchName(a.branchId)})` : '';
    const what = a.itemId || 'an item';
    raiseAlert('Stock:', a.type === 'out_of_stock' ? `${what} is out of stock${where}` : `${what} is running low: ${a.stock ?? '?'} left${where}`);
  });

  stats();
  return {};
}
