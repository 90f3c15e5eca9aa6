// Printers with live status, test prints (showing the correlation id), adding printers,
// discovery, and the print queue with reprints. Live over `/printing-ws`.

import { h, setText, toast, announce, busy, fmtTime, words, shortId, uid } from '../lib/dom.js';
import { path } from '../lib/api.js';
import { raiseAlert } from '../lib/alerts.js';

const NS = '/printing-ws';
const QUEUE_ROWS = 100;
const JOB_STATUSES = ['queued', 'printing', 'failed', 'expired', 'printed', 'cancelled'];
/** The API lists jobs oldest first: read at most this many pages per status. */
const MAX_PAGES = 3;
const ACTIVE_STATUSES = ['queued', 'printing'];

export function connectionText(c) {
  if (!c || typeof c !== 'object') return '—';
  switch (c.type) {
    case 'network': return `Network ${c.host}:${c.port ?? 9100}`;
    case 'serial': return `Serial ${c.path}${c.baudRate ? ` @ ${c.baudRate}` : ''}`;
    case 'usb': {
      const hex = (n) => (typeof n === 'number' ? n.toString(16).padStart(4, '0') : String(n ?? '?'));
      return `USB ${hex(c.vendorId)}:${hex(c.productId)}${c.serialNumber ? ` #${c.serialNumber}` : ''}`;
    }
    case 'desktop': return `Desktop app ${c.deviceId} · ${c.localId}`;
    case 'virtual': return 'Virtual (saved to the data directory)';
    default: return words(c.type || 'unknown');
  }
}

function badge(status) {
  return h('span', { class: 'badge', dataset: { status } }, words(status));
}

export function printersPage(ctx, section) {
  const { api, live } = ctx;
  const printers = new Map();
  const jobs = new Map();

  // ---- head
  const discoverBtn = h('button', { type: 'button', class: 'btn' }, 'Discover printers');
  const count = h('span', { class: 'stat' }, '');
  section.append(h('div', { class: 'page-head' },
    h('h1', { id: 'page-printers-title' }, 'Printers'),
    h('div', { class: 'toolbar' }, count, discoverBtn)));

  // ---- printers table
  const ptbody = h('tbody', {});
  const pEmpty = h('p', { class: 'empty-note' }, 'No printers yet. Add one below or use discovery.');
  section.append(h('div', { class: 'card' },
    h('div', { class: 'table-wrap' }, h('table', { class: 'table printers-table' },
      h('caption', { class: 'sr-only' }, 'Printers and their status'),
      h('colgroup', {}, h('col', { class: 'c-name' }), ctx.multiBranch ? h('col', { class: 'c-branch' }) : null,
        h('col', { class: 'c-conn' }), h('col', { class: 'c-status' }), h('col', { class: 'c-test' }), h('col', { class: 'c-actions' })),
      h('thead', {}, h('tr', {},
        h('th', { scope: 'col' }, 'Printer'), ctx.multiBranch ? h('th', { scope: 'col' }, 'Branch') : null,
        h('th', { scope: 'col' }, 'Connection'), h('th', { scope: 'col' }, 'Status'),
        h('th', { scope: 'col' }, 'Last test'), h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Actions')))),
      ptbody)),
    pEmpty));

  // ---- discovery results
  const discSerial = h('input', { type: 'checkbox', id: uid('disc-serial') });
  const discCidr = h('input', { id: uid('disc-cidr'), autocomplete: 'off', spellcheck: 'false', placeholder: '192.168.1.0/24', maxlength: 40 });
  const discOptions = h('details', { class: 'disc-options' }, h('summary', {}, 'Search options'),
    h('div', { class: 'inline-form' },
      h('div', { class: 'field field-check' }, discSerial, h('label', { for: discSerial.id }, 'Probe serial ports')),
      h('div', { class: 'field field-grow' }, h('label', { for: discCidr.id }, 'Also scan a network range for port 9100 (optional)'), discCidr)));
  const discList = h('ul', { class: 'discovery-list' });
  const discNote = h('p', { class: 'muted', role: 'status' }, '');
  const discCard = h('div', { class: 'card', hidden: true, 'aria-labelledby': 'disc-title' },
    h('h2', { id: 'disc-title' }, 'Discovered printers'), discNote, discList, discOptions);
  section.append(discCard);

  // ---- add printer form
  const F = {};
  const field = (key, label, el, cls = '') => {
    el.id = uid(`pf-${key}`);
    el.name = key;
    F[key] = el;
    return h('div', { class: `field ${cls}` }, h('label', { for: el.id }, label), el);
  };
  const branchOptions = ctx.branches.map((b) => h('option', { value: b.id }, b.name));
  const typeSel = h('select', {},
    h('option', { value: 'network' }, 'Network (TCP 9100)'), h('option', { value: 'usb' }, 'USB'),
    h('option', { value: 'serial' }, 'Serial'), h('option', { value: 'virtual' }, 'Virtual (test)'));
  const groups = {
    network: h('div', { class: 'field-row', dataset: { conn: 'network' } },
      field('host', 'Host or IP address', h('input', { autocomplete: 'off', spellcheck: 'false', placeholder: '192.168.1.50' }), 'field-grow'),
      field('port', 'Port', h('input', { type: 'number', min: 1, max: 65535, value: 9100, inputmode: 'numeric' }), 'field-num')),
    usb: h('div', { class: 'field-row', dataset: { conn: 'usb' } },
      field('vendorId', 'Vendor id (hex)', h('input', { autocomplete: 'off', placeholder: '04b8' }), 'field-num'),
      field('productId', 'Product id (hex)', h('input', { autocomplete: 'off', placeholder: '0202' }), 'field-num'),
      field('serialNumber', 'Serial number (optional)', h('input', { autocomplete: 'off' }), 'field-grow')),
    serial: h('div', { class: 'field-row', dataset: { conn: 'serial' } },
      field('path', 'Device path', h('input', { autocomplete: 'off', placeholder: '/dev/ttyUSB0' }), 'field-grow'),
      field('baudRate', 'Baud rate', h('input', { type: 'number', min: 300, value: 9600, inputmode: 'numeric' }), 'field-num')),
    virtual: h('div', { class: 'field-row', dataset: { conn: 'virtual' } },
      h('p', { class: 'muted' }, 'A virtual printer saves each page to the data directory: handy to try things out.')),
  };
  const addForm = h('form', { class: 'stack-form', 'aria-labelledby': 'add-printer-title' },
    h('div', { class: 'field-row' },
      field('name', 'Name', h('input', { required: true, maxlength: 100, autocomplete: 'off', placeholder: 'Kitchen grill' }), 'field-grow'),
      field('branchId', 'Branch', h('select', {}, branchOptions)),
      field('role', 'Role', h('select', {}, h('option', { value: 'receipt' }, 'Receipt'), h('option', { value: 'kitchen' }, 'Kitchen'), h('option', { value: 'label' }, 'Label'))),
      field('paperWidth', 'Paper', h('select', {}, h('option', { value: '80' }, '80 mm'), h('option', { value: '58' }, '58 mm')))),
    h('div', { class: 'field-row' },
      field('stations', 'Stations (comma-separated, kitchen printers)', h('input', { autocomplete: 'off', placeholder: 'grill, bar' }), 'field-grow'),
      field('type', 'Connection', typeSel)),
    Object.values(groups),
    h('div', { class: 'form-actions' }, h('button', { type: 'submit', class: 'btn btn-primary' }, 'Add printer')));
  const showGroup = () => {
    for (const [k, g] of Object.entries(groups)) g.hidden = k !== typeSel.value;
  };
  typeSel.addEventListener('change', showGroup);
  showGroup();
  addForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const name = F.name.value.trim();
    if (!name) { toast('Give the printer a name.', { kind: 'error' }); F.name.focus(); return; }
    const type = typeSel.value;
    const connection = { type };
    if (type === 'network') {
      connection.host = F.host.value.trim();
      connection.port = Number(F.port.value || 9100);
    } else if (type === 'usb') {
      connection.vendorId = F.vendorId.value.trim();
      connection.productId = F.productId.value.trim();
      if (F.serialNumber.value.trim()) connection.serialNumber = F.serialNumber.value.trim();
    } else if (type === 'serial') {
      connection.path = F.path.value.trim();
      connection.baudRate = Number(F.baudRate.value || 9600);
    }
    const body = {
      branchId: F.branchId.value,
      name,
      role: F.role.value,
      paperWidth: Number(F.paperWidth.value),
      stations: F.stations.value.split(',').map((s) => s.trim()).filter(Boolean),
      connection,
    };
    try {
      const p = await api.post('/api/printers', body);
      upsertPrinter(p);
      toast(`Printer ${p.name} added`, { kind: 'success' });
      F.name.value = '';
      F.stations.value = '';
    } catch (e) {
      toast(`Could not add the printer: ${e.message}`, { kind: 'error' });
    }
  });
  section.append(h('div', { class: 'card' }, h('h2', { id: 'add-printer-title' }, 'Add a printer'), addForm));

  // ---- print queue
  const qStatus = h('select', { id: uid('q-status') }, h('option', { value: '' }, 'All'),
    JOB_STATUSES.map((s) => h('option', { value: s }, words(s))));
  qStatus.addEventListener('change', () => applyJobFilter());
  const jtbody = h('tbody', {});
  const jEmpty = h('p', { class: 'empty-note' }, 'Nothing in the queue.');
  section.append(h('div', { class: 'card' },
    h('div', { class: 'card-head' }, h('h2', { id: 'queue-title' }, 'Print queue'),
      h('div', { class: 'toolbar' }, h('label', { for: qStatus.id }, 'Show'), qStatus)),
    h('div', { class: 'table-wrap queue-wrap' }, h('table', { class: 'table queue-table', 'aria-labelledby': 'queue-title' },
      h('colgroup', {}, h('col', { class: 'c-time' }), h('col', { class: 'c-printer' }), h('col', { class: 'c-kind' }),
        h('col', { class: 'c-jstatus' }), h('col', { class: 'c-tries' }), h('col', { class: 'c-error' }), h('col', { class: 'c-actions' })),
      h('thead', {}, h('tr', {},
        h('th', { scope: 'col' }, 'Queued'), h('th', { scope: 'col' }, 'Printer'), h('th', { scope: 'col' }, 'Job'),
        h('th', { scope: 'col' }, 'Status'), h('th', { scope: 'col', class: 'num' }, 'Tries'), h('th', { scope: 'col' }, 'Last error'),
        h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Actions')))),
      jtbody)),
    jEmpty));

  // ---- printers
  function makePrinterRow(p) {
    const refs = {
      name: h('strong', {}),
      sub: h('span', { class: 'muted small' }),
      branch: ctx.multiBranch ? h('td', {}) : null,
      conn: h('td', { class: 'conn' }),
      status: h('td', { class: 'status-cell' }),
      test: h('td', { class: 'test-cell' }),
      testBtn: h('button', { type: 'button', class: 'btn btn-small', 'data-action': 'test' }, 'Test print'),
      removeBtn: h('button', { type: 'button', class: 'btn btn-small btn-ghost', 'data-action': 'remove' }, 'Remove'),
    };
    const tr = h('tr', { dataset: { printerId: p.id } },
      h('th', { scope: 'row' }, refs.name, h('br'), refs.sub),
      refs.branch, refs.conn, refs.status, refs.test,
      h('td', { class: 'actions' }, refs.testBtn, refs.removeBtn));
    refs.testBtn.addEventListener('click', () => testPrint(p.id));
    refs.removeBtn.addEventListener('click', () => removePrinter(p.id));
    return { tr, refs, p };
  }

  function fillPrinter(e) {
    const { p, refs } = e;
    setText(refs.name, p.name);
    setText(refs.sub, `${words(p.role)} · ${p.paperWidth} mm${p.stations && p.stations.length ? ` · ${p.stations.join(', ')}` : ''}`);
    if (refs.branch) setText(refs.branch, ctx.branchName(p.branchId));
    setText(refs.conn, connectionText(p.connection));
    setStatus(e, p.status, p.checkedAt, p.statusDetail);
    refs.testBtn.setAttribute('aria-label', `Test print on ${p.name}`);
    refs.removeBtn.setAttribute('aria-label', `Remove ${p.name}`);
  }

  function setStatus(e, status, checkedAt, detail) {
    e.p.status = status;
    if (checkedAt) e.p.checkedAt = checkedAt;
    e.tr.dataset.status = status;
    const cell = e.refs.status;
    let b = cell.querySelector('.badge');
    if (!b || b.dataset.status !== status) {
      b = badge(status);
      cell.replaceChildren(b, h('span', { class: 'status-detail muted small' }));
    }
    const d = cell.querySelector('.status-detail');
    setText(d, detail || (e.p.checkedAt ? `checked ${fmtTime(e.p.checkedAt)}` : ''));
    d.title = detail || '';
  }

  function upsertPrinter(p) {
    if (!p || !p.id) return;
    let e = printers.get(p.id);
    if (!e) {
      e = makePrinterRow(p);
      printers.set(p.id, e);
      ptbody.append(e.tr);
    }
    e.p = { ...e.p, ...p };
    fillPrinter(e);
    printerStats();
  }

  function removeRow(id) {
    const e = printers.get(id);
    if (!e) return;
    printers.delete(id);
    e.tr.remove();
    printerStats();
  }

  function printerStats() {
    pEmpty.hidden = printers.size > 0;
    let online = 0;
    for (const e of printers.values()) if (e.p.status === 'online') online += 1;
    setText(count, `${printers.size} printers · ${online} online`);
  }

  async function testPrint(id) {
    const e = printers.get(id);
    if (!e) return;
    const { testBtn, test } = e.refs;
    if (!busy(testBtn, true)) return;
    setText(testBtn, 'Printing…');
    test.replaceChildren(h('span', { class: 'muted' }, 'Sending a test page…'));
    let r;
    try {
      r = await api.post(path('/api/printers', id, 'test'), {});
    } catch (err) {
      r = err.body && typeof err.body.success === 'boolean' ? err.body : { success: false, message: err.message, error: { code: err.code, message: err.message } };
    }
    busy(testBtn, false);
    setText(testBtn, 'Test print');
    const ok = r.success === true;
    const msg = ok ? `Printed${Number.isFinite(r.durationMs) ? ` in ${r.durationMs} ms` : ''}`
      : `Failed: ${(r.error && r.error.message) || r.message || 'unknown error'}`;
    test.replaceChildren(...[
      h('span', { class: ok ? 'result-ok' : 'result-fail', dataset: { result: ok ? 'success' : 'failure' } }, ok ? '✓ ' : '✗ ', msg),
      r.correlationId ? h('span', { class: 'corr small' }, 'ID ', h('code', { class: 'correlation-id', title: 'Correlation id: quote it when asking for help' }, r.correlationId)) : null,
    ].filter(Boolean));
    announce(`Test print on ${e.p.name}: ${msg}`);
  }

  async function removePrinter(id) {
    const e = printers.get(id);
    if (!e) return;
    if (!window.confirm(`Remove printer ${e.p.name}? Its queued jobs will not print.`)) return;
    try {
      await api.del(path('/api/printers', id));
      removeRow(id);
      toast(`Printer ${e.p.name} removed`, { kind: 'success' });
    } catch (err) {
      toast(`Could not remove ${e.p.name}: ${err.message}`, { kind: 'error' });
    }
  }

  // ---- discovery
  discoverBtn.addEventListener('click', async () => {
    discCard.hidden = false;
    if (!busy(discoverBtn, true)) return;
    setText(discoverBtn, 'Searching…');
    setText(discNote, 'Looking for printers on USB, serial ports and the network…');
    discList.replaceChildren();
    try {
      const body = {};
      if (discSerial.checked) body.serial = true;
      if (discCidr.value.trim()) body.scan = { cidr: discCidr.value.trim() };
      const res = await api.post('/api/printers/discover', body);
      const list = Array.isArray(res) ? res : (res && (res.items || res.candidates || res.printers)) || [];
      setText(discNote, list.length ? `${list.length} found. Use one to fill in the form below.` : 'No printers found. Check that the printer is on, or try the search options.');
      discList.replaceChildren(...list.map(candidateItem));
    } catch (e) {
      setText(discNote, e.status === 404 || e.status === 405
        ? 'Printer discovery is not available in this version of branchd. Add the printer by hand below.'
        : `Discovery failed: ${e.message}`);
    } finally {
      busy(discoverBtn, false);
      setText(discoverBtn, 'Discover printers');
    }
  });

  function candidateItem(c) {
    const conn = c.connection && typeof c.connection === 'object' ? c.connection
      : { type: c.type, host: c.host, port: c.port, path: c.path, baudRate: c.baudRate, vendorId: c.vendorId, productId: c.productId, serialNumber: c.serialNumber };
    const name = c.name || c.model || c.host || 'Printer';
    const use = h('button', { type: 'button', class: 'btn btn-small' }, c.alreadyAdded ? 'Added' : 'Use');
    use.setAttribute('aria-label', c.alreadyAdded ? `${name} is already added` : `Use ${name}`);
    if (c.alreadyAdded) use.disabled = true;
    use.addEventListener('click', () => {
      F.name.value = name;
      if (groups[conn.type]) typeSel.value = conn.type;
      showGroup();
      const set = (k, v) => { if (F[k] && v !== undefined && v !== null) F[k].value = typeof v === 'number' && (k === 'vendorId' || k === 'productId') ? v.toString(16).padStart(4, '0') : String(v); };
      for (const k of ['host', 'port', 'path', 'baudRate', 'vendorId', 'productId', 'serialNumber']) set(k, conn[k]);
      F.name.focus();
      F.name.select();
    });
    return h('li', {},
      h('div', { class: 'cand' },
        h('div', { class: 'cand-title' }, h('strong', {}, name), c.source ? h('span', { class: 'chip' }, c.source) : null),
        h('div', { class: 'muted small' }, connectionText(conn), c.detail ? ` · ${c.detail}` : '')),
      use);
  }

  // ---- jobs
  function makeJobRow(j) {
    const refs = {
      time: h('td', { class: 'muted' }),
      printer: h('td', {}),
      kind: h('td', {}),
      status: h('td', {}),
      tries: h('td', { class: 'num' }),
      error: h('td', { class: 'error-cell small' }),
      reprint: h('button', { type: 'button', class: 'btn btn-small', 'data-action': 'reprint' }, 'Reprint'),
    };
    const tr = h('tr', { dataset: { jobId: j.id } }, refs.time, refs.printer, refs.kind, refs.status, refs.tries, refs.error,
      h('td', { class: 'actions' }, refs.reprint));
    refs.reprint.addEventListener('click', () => reprint(j.id));
    return { tr, refs, j };
  }

  function fillJob(e) {
    const { j, refs } = e;
    setText(refs.time, fmtTime(j.createdAt));
    refs.time.title = j.createdAt;
    const pe = printers.get(j.printerId);
    setText(refs.printer, pe ? pe.p.name : shortId(j.printerId));
    const extra = [j.station, j.orderId ? `order ${shortId(j.orderId)}` : null, j.reprintOf ? 'reprint' : null,
      j.uncertain ? 'possible duplicate' : null].filter(Boolean).join(' · ');
    refs.kind.replaceChildren(...[h('span', {}, words(j.kind)), extra ? h('span', { class: 'muted small' }, ` ${extra}`) : null].filter(Boolean));
    const b = refs.status.firstElementChild;
    if (!b || b.dataset.status !== j.status) refs.status.replaceChildren(badge(j.status));
    setText(refs.tries, j.attempts ?? 0);
    setText(refs.error, j.lastError || '');
    refs.error.title = j.lastError || '';
    refs.reprint.hidden = j.kind === 'test' || !['printed', 'failed', 'expired', 'cancelled'].includes(j.status);
    refs.reprint.setAttribute('aria-label', `Reprint ${words(j.kind)} job ${shortId(j.id)}`);
    e.tr.dataset.status = j.status;
    e.tr.hidden = !!qStatus.value && qStatus.value !== j.status;
  }

  function upsertJob(j) {
    if (!j) return;
    const id = j.id || j.jobId;
    if (!id) return;
    let e = jobs.get(id);
    if (e && e.j.updatedAt && j.updatedAt && j.updatedAt < e.j.updatedAt) return;
    if (!e) {
      e = makeJobRow({ ...j, id });
      jobs.set(id, e);
      // Newest first.
      let before = null;
      for (const tr of jtbody.children) {
        const other = jobs.get(tr.dataset.jobId);
        if (other && other.j.createdAt < (j.createdAt || '')) { before = tr; break; }
      }
      jtbody.insertBefore(e.tr, before);
      trimJobs();
    }
    e.j = { ...e.j, ...j, id };
    fillJob(e);
    jEmpty.hidden = jobs.size > 0;
  }

  function trimJobs() {
    // Keep the newest rows, but never drop a job still waiting to print.
    const rowsNow = [...jtbody.children];
    for (let i = rowsNow.length - 1; i >= QUEUE_ROWS; i -= 1) {
      const e = jobs.get(rowsNow[i].dataset.jobId);
      if (e && (e.j.status === 'queued' || e.j.status === 'printing')) continue;
      jobs.delete(rowsNow[i].dataset.jobId);
      rowsNow[i].remove();
    }
  }

  function applyJobFilter() {
    for (const e of jobs.values()) e.tr.hidden = !!qStatus.value && qStatus.value !== e.j.status;
  }

  async function reprint(id) {
    const e = jobs.get(id);
    if (!e) return;
    if (!busy(e.refs.reprint, true)) return;
    try {
      const r = await api.post(path('/api/print-jobs', id, 'reprint'), {});
      toast(`Reprint queued (${shortId(r.id)})`, { kind: 'success' });
    } catch (err) {
      toast(`Could not reprint: ${err.message}`, { kind: 'error' });
    } finally {
      busy(e.refs.reprint, false);
    }
  }

  async function listAll(base, maxPages) {
    const out = [];
    let cursor = null;
    for (let i = 0; i < maxPages; i += 1) {
      const page = await api.get(`${base}${base.includes('?') ? '&' : '?'}limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      out.push(...(page.items || []));
      cursor = page.nextCursor;
      if (!cursor) break;
    }
    return out;
  }

  async function load() {
    try {
      const list = await listAll('/api/printers', 10);
      const seen = new Set(list.map((p) => p.id));
      for (const id of [...printers.keys()]) if (!seen.has(id)) removeRow(id);
      for (const p of list) upsertPrinter(p);
      printerStats();
      // Jobs still waiting (however old), then the newest of the rest: the history can be
      // long, and the newest page is what a manager looks for.
      const all = new Map();
      for (const s of ACTIVE_STATUSES) for (const j of await listAll(`/api/print-jobs?status=${s}`, MAX_PAGES)) all.set(j.id, j);
      const newest = await api.get(`/api/print-jobs?order=newest&limit=${QUEUE_ROWS}`);
      for (const j of newest.items || []) all.set(j.id, j);
      const rows = [...all.values()].sort((a, b) => (a.createdAt < b.createdAt ? 1 : -1));
      for (const j of rows.slice(0, QUEUE_ROWS).reverse()) upsertJob(j);
      jEmpty.hidden = jobs.size > 0;
      section.dataset.loaded = 'true';
    } catch (e) {
      toast(`Could not load printers: ${e.message}`, { kind: 'error' });
    }
  }

  live.onConnect(NS, load);
  live.on(NS, 'printerStatusUpdate', (ev) => {
    const e = printers.get(ev && ev.printerId);
    if (!e) return;
    const before = e.p.status;
    setStatus(e, ev.status, ev.checkedAt, ev.detail);
    printerStats();
    if (before !== ev.status) announce(`${e.p.name} is ${words(ev.status)}`);
  });
  live.on(NS, 'printer:added', (p) => upsertPrinter(p));
  live.on(NS, 'printerUpdate', (p) => upsertPrinter(p));
  live.on(NS, 'printerRemoved', (ev) => removeRow(ev && ev.printerId));
  live.on(NS, 'printJobUpdate', (j) => upsertJob(j));
  live.on(NS, 'printAlert', (a) => {
    if (!a) return;
    const where = ctx.multiBranch && a.branchId ? ` (${ctx.branchName(a.branchId)})` : '';
    raiseAlert('Printing:', `${a.message || words(a.type)}${where}`);
  });

  printerStats();
  jEmpty.hidden = false;
  return {};
}
