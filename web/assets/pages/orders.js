// Live orders board: one column per live status. Cards are keyed by order id and updated
// in place; a status change moves the card. Columns have a fixed height and scroll, so a
// new order never pushes the rest of the page around.

import { h, setText, toast, announce, busy, fmtMoney, fmtAge, words, uid } from '../lib/dom.js';
import { path } from '../lib/api.js';

const NS = '/orders';
export const COLUMNS = ['pending', 'confirmed', 'preparing', 'ready', 'out_for_delivery'];
const FINISHED = new Set(['completed', 'cancelled']);
const TYPE_LABEL = { dine_in: 'Dine-in', takeaway: 'Takeaway', delivery: 'Delivery' };
const COLUMN_LABEL = { out_for_delivery: 'Delivering' };
const MAX_ITEMS_SHOWN = 4;

/** The next step of an order and the words on its button. */
export function nextStep(order) {
  switch (order.status) {
    case 'pending': return { status: 'confirmed', label: 'Confirm' };
    case 'confirmed': return { status: 'preparing', label: 'Start preparing' };
    case 'preparing': return { status: 'ready', label: 'Mark ready' };
    case 'ready': return order.type === 'delivery'
      ? { status: 'out_for_delivery', label: 'Out for delivery' }
      : { status: 'completed', label: 'Complete' };
    case 'out_for_delivery': return { status: 'completed', label: 'Delivered' };
    default: return null;
  }
}

const PRINT_LABEL = { none: 'No tickets', pending: 'Printing…', printed: 'Printed ✓', attention: 'Needs attention' };
const REPRINTABLE = new Set(['printed', 'failed', 'expired']);

/**
 * A delivery order's address: the customer's `address` (a string, or an object whose text
 * parts are joined), else a top-level `deliveryAddress`/`address`.
 */
export function addressText(order) {
  const c = order.customer && typeof order.customer === 'object' ? order.customer : {};
  const a = c.address ?? order.deliveryAddress ?? order.address;
  if (typeof a === 'string') return a.trim();
  if (a && typeof a === 'object') {
    const keys = ['line1', 'line2', 'street', 'building', 'floor', 'apartment', 'area', 'city', 'postcode', 'notes'];
    const parts = keys.map((k) => a[k]).concat(Object.entries(a).filter(([k]) => !keys.includes(k)).map(([, v]) => v));
    return parts.filter((v) => (typeof v === 'string' && v.trim()) || typeof v === 'number').join(', ');
  }
  return '';
}

export function ordersPage(ctx, section) {
  const { api, live } = ctx;
  const branchOf = (branchId) => ctx.branches.find((b) => b.id === branchId) || {};
  const currencyOf = (branchId) => branchOf(branchId).currency || 'USD';
  // ISO 4217's minor digits, as the server prints them (browsers differ for a few, e.g. IQD).
  const digitsOf = (branchId) => branchOf(branchId).currencyDigits;
  /** id → {order, el, refs, touched} */
  const cards = new Map();
  let filter = '';

  const title = h('h1', { id: 'page-orders-title' }, 'Live orders');
  const total = h('span', { class: 'stat', id: 'orders-total' }, '0 live');
  let branchSelect = null;
  if (ctx.multiBranch) {
    const id = uid('orders-branch');
    branchSelect = h('select', { id, onchange: () => { filter = branchSelect.value; applyFilter(); } },
      h('option', { value: '' }, 'All branches'),
      ctx.branches.map((b) => h('option', { value: b.id }, b.name)));
    section.append(h('div', { class: 'page-head' }, title,
      h('div', { class: 'toolbar' }, h('label', { for: id }, 'Branch'), branchSelect, total)));
  } else {
    section.append(h('div', { class: 'page-head' }, title, h('div', { class: 'toolbar' }, total)));
  }

  const columns = {};
  // On narrow screens the board shows one status at a time, chosen with these tabs (CSS
  // hides them, and shows every column, where five columns fit).
  const tabs = h('div', { class: 'board-tabs', role: 'tablist', 'aria-label': 'Order status' });
  const board = h('div', { class: 'board', role: 'region', 'aria-label': 'Orders by status' });
  let activeTab = COLUMNS[0];
  const selectTab = (status, focus = false) => {
    activeTab = status;
    for (const s of COLUMNS) {
      const on = s === status;
      columns[s].tab.setAttribute('aria-selected', String(on));
      columns[s].tab.tabIndex = on ? 0 : -1;
      columns[s].col.classList.toggle('is-active', on);
    }
    if (focus) columns[status].tab.focus();
  };
  tabs.addEventListener('keydown', (ev) => {
    const i = COLUMNS.indexOf(activeTab);
    const to = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: COLUMNS.length - 1 }[ev.key];
    if (to === undefined) return;
    ev.preventDefault();
    selectTab(COLUMNS[(to + COLUMNS.length) % COLUMNS.length], true);
  });
  for (const status of COLUMNS) {
    const headId = `col-${status}`;
    const tabCount = h('span', { class: 'tab-count' }, '0');
    const tab = h('button', { type: 'button', role: 'tab', class: 'board-tab', id: `tab-${status}`, 'aria-controls': `column-${status}`, dataset: { status } },
      h('span', { class: 'tab-label' }, COLUMN_LABEL[status] || words(status)), ' ', tabCount);
    tab.addEventListener('click', () => selectTab(status));
    tabs.append(tab);
    const list = h('ol', { class: 'cards', 'aria-labelledby': headId });
    const count = h('span', { class: 'col-count', 'aria-label': `0 orders` }, '0');
    const empty = h('p', { class: 'col-empty' }, 'No orders');
    const col = h('section', { class: 'column', id: `column-${status}`, dataset: { status }, 'aria-labelledby': headId },
      h('header', { class: 'column-head' }, h('h2', { id: headId, title: words(status) }, COLUMN_LABEL[status] || words(status)), count),
      h('div', { class: 'column-body' }, list, empty));
    columns[status] = { col, list, count, empty, tab, tabCount };
    board.append(col);
  }
  selectTab(activeTab);
  // A sideways swipe on the board moves to the next or previous status (tabs shown only).
  let swipe = null;
  board.addEventListener('touchstart', (ev) => {
    const t = ev.touches[0];
    swipe = ev.touches.length === 1 && tabs.checkVisibility() ? { x: t.clientX, y: t.clientY } : null;
  }, { passive: true });
  board.addEventListener('touchend', (ev) => {
    const t = ev.changedTouches[0];
    if (!swipe || !t) return;
    const dx = t.clientX - swipe.x;
    const dy = t.clientY - swipe.y;
    swipe = null;
    if (Math.abs(dx) < 60 || Math.abs(dy) > Math.abs(dx) / 2) return;
    const i = COLUMNS.indexOf(activeTab) + (dx < 0 ? 1 : -1);
    if (i >= 0 && i < COLUMNS.length) selectTab(COLUMNS[i]);
  }, { passive: true });
  section.append(tabs, board);

  // Cancel dialog (native <dialog>: focus is trapped and Escape closes it).
  const reasonId = uid('cancel-reason');
  const reason = h('input', { id: reasonId, name: 'reason', maxlength: 200, autocomplete: 'off' });
  const dialogTitle = h('h2', { id: uid('cancel-title') }, 'Cancel order');
  const confirmCancel = h('button', { type: 'submit', class: 'btn btn-danger', value: 'cancel' }, 'Cancel order');
  const dialog = h('dialog', { class: 'dialog', 'aria-labelledby': dialogTitle.id },
    h('form', { method: 'dialog' },
      dialogTitle,
      h('div', { class: 'field' }, h('label', { for: reasonId }, 'Reason (optional)'), reason),
      h('div', { class: 'dialog-actions' },
        h('button', { type: 'submit', class: 'btn', value: 'keep' }, 'Keep order'),
        confirmCancel)));
  section.append(dialog);
  let cancelTarget = null;
  dialog.addEventListener('close', async () => {
    const target = cancelTarget;
    cancelTarget = null;
    if (dialog.returnValue !== 'cancel' || !target) return;
    const entry = cards.get(target);
    try {
      const o = await api.post(path('/api/orders', target, 'cancel'), { reason: reason.value.trim() || 'cancelled from the dashboard' });
      upsert(o);
      announce(`Order ${o.number} cancelled`);
    } catch (e) {
      toast(`Could not cancel order ${entry ? entry.order.number : ''}: ${e.message}`, { kind: 'error' });
    }
  });

  function makeCard(order) {
    const titleId = uid('order');
    const refs = {
      number: h('h3', { id: titleId, class: 'order-number' }),
      type: h('span', { class: 'chip' }),
      age: h('span', { class: 'order-age' }),
      branch: h('p', { class: 'order-branch' }),
      customer: h('p', { class: 'order-customer' }),
      address: h('p', { class: 'order-address' }),
      items: h('ul', { class: 'order-items' }),
      notes: h('p', { class: 'order-notes' }),
      driver: h('p', { class: 'order-driver' }),
      total: h('span', { class: 'order-total' }),
      printState: h('span', { class: 'print-state' }),
      reprint: h('button', { type: 'button', class: 'btn btn-ghost btn-small', 'data-action': 'reprint' }, 'Reprint'),
      next: h('button', { type: 'button', class: 'btn btn-primary btn-small', 'data-action': 'next' }),
      cancel: h('button', { type: 'button', class: 'btn btn-ghost btn-small', 'data-action': 'cancel' }, 'Cancel'),
    };
    const el = h('li', { class: 'order-card', dataset: { orderId: order.id }, 'aria-labelledby': titleId },
      h('div', { class: 'order-top' }, refs.number, refs.type, refs.age),
      refs.branch, refs.customer, refs.address, refs.items, refs.notes, refs.driver,
      h('p', { class: 'order-print' }, refs.printState, refs.reprint),
      h('div', { class: 'order-actions' }, refs.total, h('span', { class: 'spacer' }), refs.cancel, refs.next));
    refs.next.addEventListener('click', () => advance(order.id));
    refs.reprint.addEventListener('click', () => reprint(order.id));
    refs.cancel.addEventListener('click', () => {
      const entry = cards.get(order.id);
      cancelTarget = order.id;
      setText(dialogTitle, `Cancel order #${entry.order.number}?`);
      reason.value = '';
      dialog.showModal();
      reason.focus();
    });
    return { el, refs, order, touched: 0 };
  }

  function fill(entry) {
    const o = entry.order;
    const r = entry.refs;
    setText(r.number, `#${o.number}`);
    setText(r.type, TYPE_LABEL[o.type] || words(o.type));
    r.type.dataset.type = o.type;
    setText(r.age, fmtAge(o.createdAt));
    r.age.title = new Date(o.createdAt).toLocaleString();
    setText(r.branch, ctx.multiBranch ? ctx.branchName(o.branchId) : '');
    r.branch.hidden = !ctx.multiBranch;
    const cust = o.customer && typeof o.customer === 'object'
      ? [o.customer.name, o.customer.phone].filter((x) => typeof x === 'string' && x).join(' · ') : '';
    setText(r.customer, cust);
    r.customer.hidden = !cust;
    const address = o.type === 'delivery' ? addressText(o) : '';
    setText(r.address, address ? `Deliver to: ${address}` : '');
    r.address.hidden = !address;
    const items = Array.isArray(o.items) ? o.items : [];
    const shown = items.slice(0, MAX_ITEMS_SHOWN).map((it) => h('li', {},
      h('span', { class: 'qty' }, `${it.quantity}×`), ' ', it.name, it.notes ? h('span', { class: 'item-notes' }, ` (${it.notes})`) : null));
    if (items.length > MAX_ITEMS_SHOWN) shown.push(h('li', { class: 'more' }, `+ ${items.length - MAX_ITEMS_SHOWN} more`));
    r.items.replaceChildren(...shown);
    setText(r.notes, o.notes ? `Note: ${o.notes}` : '');
    r.notes.hidden = !o.notes;
    const d = o.driver && typeof o.driver === 'object' ? o.driver : null;
    const driverText = d ? `Driver: ${[d.name, d.phone, Number.isFinite(d.etaMinutes) ? `ETA ${d.etaMinutes} min` : null].filter(Boolean).join(' · ')}` : '';
    setText(r.driver, driverText);
    r.driver.hidden = !d;
    setText(r.total, fmtMoney(o.total, currencyOf(o.branchId), digitsOf(o.branchId)));
    const step = nextStep(o);
    r.next.hidden = !step;
    if (step) {
      setText(r.next, step.label);
      r.next.setAttribute('aria-label', `${step.label}: order #${o.number}`);
      r.next.dataset.next = step.status;
    }
    r.cancel.setAttribute('aria-label', `Cancel order #${o.number}`);
    const pr = o.printing && typeof o.printing === 'object' ? o.printing : { state: 'none', jobs: [] };
    setText(r.printState, PRINT_LABEL[pr.state] || words(pr.state));
    r.printState.dataset.state = pr.state;
    entry.el.dataset.print = pr.state;
    r.reprint.hidden = !(pr.jobs || []).some((j) => REPRINTABLE.has(j.status));
    r.reprint.setAttribute('aria-label', `Reprint the tickets of order #${o.number}`);
    entry.el.dataset.status = o.status;
    entry.el.dataset.branchId = o.branchId;
  }

  function place(entry) {
    const col = columns[entry.order.status];
    if (!col) return;
    const had = entry.el.contains(document.activeElement);
    // Oldest first: the kitchen works top-down.
    const key = (o) => `${o.createdAt}|${String(o.number).padStart(8, '0')}`;
    const k = key(entry.order);
    let before = null;
    for (const li of col.list.children) {
      if (li === entry.el) continue;
      const other = cards.get(li.dataset.orderId);
      if (other && key(other.order) > k) { before = li; break; }
    }
    if (entry.el.parentElement === col.list && entry.el.nextElementSibling === before) return;
    col.list.insertBefore(entry.el, before);
    if (had) {
      const target = entry.refs.next.hidden ? entry.refs.cancel : entry.refs.next;
      // One status at a time: the card went to another tab; keep focus on the board.
      (target.checkVisibility() ? target : columns[activeTab].tab).focus({ preventScroll: true });
    }
  }

  function visible(entry) {
    return !filter || entry.order.branchId === filter;
  }

  function applyFilter() {
    for (const e of cards.values()) e.el.hidden = !visible(e);
    counts();
  }

  function counts() {
    const n = Object.fromEntries(COLUMNS.map((s) => [s, 0]));
    for (const e of cards.values()) if (visible(e) && n[e.order.status] !== undefined) n[e.order.status] += 1;
    let all = 0;
    for (const s of COLUMNS) {
      all += n[s];
      setText(columns[s].count, n[s]);
      setText(columns[s].tabCount, n[s]);
      columns[s].count.setAttribute('aria-label', `${n[s]} ${n[s] === 1 ? 'order' : 'orders'}`);
      columns[s].empty.hidden = n[s] > 0;
    }
    setText(total, `${all} live`);
  }

  function remove(id) {
    const e = cards.get(id);
    if (!e) return;
    cards.delete(id);
    e.el.remove();
    counts();
  }

  function upsert(order, { fresh = false } = {}) {
    if (!order || typeof order.id !== 'string') return;
    if (FINISHED.has(order.status)) { remove(order.id); return; }
    let entry = cards.get(order.id);
    if (entry && entry.order.updatedAt && order.updatedAt && order.updatedAt < entry.order.updatedAt) return;
    const created = !entry;
    if (!entry) {
      entry = makeCard(order);
      cards.set(order.id, entry);
    }
    entry.order = order;
    entry.touched = Date.now();
    fill(entry);
    entry.el.hidden = !visible(entry);
    place(entry);
    counts();
    if (created && fresh) {
      entry.el.classList.add('is-new');
      window.setTimeout(() => entry.el.classList.remove('is-new'), 4000);
    }
  }

  async function advance(id) {
    const entry = cards.get(id);
    if (!entry) return;
    const step = nextStep(entry.order);
    if (!step) return;
    if (!busy(entry.refs.next, true)) return;
    try {
      const o = await api.patch(path('/api/orders', id, 'status'), { status: step.status });
      upsert(o);
      announce(FINISHED.has(o.status) ? `Order ${o.number} completed` : `Order ${o.number} is now ${words(o.status)}`);
    } catch (e) {
      toast(`Could not move order #${entry.order.number}: ${e.message}`, { kind: 'error' });
      if (e.status === 409) refresh();
    } finally {
      busy(entry.refs.next, false);
    }
  }

  /** Reprints the order's tickets that printed or failed (never one still waiting). */
  async function reprint(id) {
    const entry = cards.get(id);
    if (!entry || !busy(entry.refs.reprint, true)) return;
    const jobs = ((entry.order.printing || {}).jobs || []).filter((j) => REPRINTABLE.has(j.status));
    try {
      for (const j of jobs) await api.post(path('/api/print-jobs', j.id, 'reprint'), {});
      announce(`Order #${entry.order.number}: ${jobs.length} ${jobs.length === 1 ? 'ticket' : 'tickets'} sent again`);
    } catch (e) {
      toast(`Could not reprint order #${entry.order.number}: ${e.message}`, { kind: 'error' });
    } finally {
      busy(entry.refs.reprint, false);
    }
  }

  async function fetchOne(id) {
    try {
      upsert(await api.get(path('/api/orders', id)));
    } catch { /* gone or not ours: nothing to show */ }
  }

  async function refresh() {
    const asked = Date.now();
    try {
      const ack = await live.request(NS, 'requestLiveOrders', {});
      if (!ack || ack.success !== true) throw new Error((ack && ack.error && ack.error.message) || 'refused');
      const seen = new Set();
      for (const o of ack.orders || []) {
        seen.add(o.id);
        upsert(o);
      }
      for (const [id, e] of cards) if (!seen.has(id) && e.touched < asked) remove(id);
      section.dataset.loaded = 'true';
    } catch (e) {
      toast(`Could not load live orders: ${e.message}`, { kind: 'error' });
    }
  }

  live.onConnect(NS, refresh);
  live.on(NS, 'newOrder', (o) => {
    const known = cards.has(o && o.id);
    upsert(o, { fresh: true });
    if (!known && o && !FINISHED.has(o.status)) announce(`New order #${o.number}, ${TYPE_LABEL[o.type] || o.type}`);
  });
  live.on(NS, 'orderStatusUpdate', (ev) => {
    const e = cards.get(ev && ev.orderId);
    if (!e) { if (ev && ev.orderId && !FINISHED.has(ev.status)) fetchOne(ev.orderId); return; }
    upsert({ ...e.order, status: ev.status, updatedAt: ev.updatedAt || e.order.updatedAt });
  });
  live.on(NS, 'orderCancelled', (ev) => {
    const e = cards.get(ev && ev.orderId);
    if (e) announce(`Order #${e.order.number} was cancelled`);
    remove(ev && ev.orderId);
  });
  live.on(NS, 'orderPrintingUpdate', (ev) => {
    const e = cards.get(ev && ev.orderId);
    if (!e || !ev.printing) return;
    upsert({ ...e.order, printing: ev.printing });
  });
  live.on(NS, 'driverUpdate', (ev) => {
    const e = cards.get(ev && ev.orderId);
    if (!e) return;
    upsert({ ...e.order, driver: ev.driver, updatedAt: ev.updatedAt || e.order.updatedAt });
  });

  // Ages tick without touching anything else.
  window.setInterval(() => {
    for (const e of cards.values()) setText(e.refs.age, fmtAge(e.order.createdAt));
  }, 30000);

  counts();
  return {};
}
