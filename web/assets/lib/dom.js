// DOM helpers. Data from the server is only ever put in the page as text (textContent,
// attribute values), never parsed as HTML, so hostile strings stay inert.

/**
 * h('button', {class: 'x', onclick: fn, 'aria-label': 'y'}, 'text', child...)
 * `null`/`undefined`/`false` children and attributes are skipped.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'text') el.textContent = String(v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Sets text only when it changed (no needless layout or screen-reader churn). */
export function setText(el, text) {
  const t = text === null || text === undefined ? '' : String(text);
  if (el.textContent !== t) el.textContent = t;
}

/**
 * Marks a control busy without `disabled` (disabling a focused control throws keyboard
 * focus away). Returns false when it already was busy.
 */
export function busy(el, on) {
  if (on) {
    if (el.getAttribute('aria-disabled') === 'true') return false;
    el.setAttribute('aria-disabled', 'true');
  } else {
    el.removeAttribute('aria-disabled');
  }
  return true;
}

export function $(sel, root = document) {
  return root.querySelector(sel);
}

let idSeq = 0;
export function uid(prefix = 'id') {
  idSeq += 1;
  return `${prefix}-${idSeq}`;
}

/** Politely tells screen-reader users about a live change. */
export function announce(message) {
  const el = document.getElementById('announcer');
  if (!el) return;
  // Clearing first makes repeated identical messages heard again.
  el.textContent = '';
  window.setTimeout(() => { el.textContent = message; }, 50);
}

/**
 * A short-lived toast in the fixed overlay at the bottom right (it never pushes the page
 * around, and goes away by itself). kind: 'info' | 'success' | 'warning' | 'error'.
 * Warnings and errors are read out at once (assertive region).
 */
export function toast(message, { kind = 'info', title = null, timeout = 7000 } = {}) {
  const region = kind === 'error' || kind === 'warning'
    ? document.getElementById('alerts') : document.getElementById('toasts');
  if (!region) return null;
  const close = h('button', { type: 'button', class: 'toast-close', 'aria-label': 'Dismiss' }, '×');
  const el = h('div', { class: `toast toast-${kind}`, dataset: { kind } },
    h('div', { class: 'toast-body' }, title ? h('strong', {}, title, ' ') : null, h('span', {}, message)),
    close);
  const remove = () => el.remove();
  close.addEventListener('click', remove);
  region.append(el);
  while (region.children.length > 3) region.firstElementChild.remove();
  window.setTimeout(remove, timeout);
  return el;
}

const moneyFormats = new Map();

/**
 * An amount in minor units (SPEC §3) in `currency` (ISO 4217), in the browser's locale. The
 * currency's minor digits place the point (JPY 0, USD 2, KWD 3): `digits` as the server gives
 * them (`currencyDigits` of `/api/branches`, ISO 4217's), else the browser's own. An unknown
 * code shows as USD would rather than failing.
 */
export function fmtMoney(minor, currency = 'USD', digits = undefined) {
  if (typeof minor !== 'number' || !Number.isFinite(minor)) return '—';
  const key = `${currency}/${digits}`;
  let f = moneyFormats.get(key);
  if (!f) {
    try {
      const own = new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits;
      const d = Number.isInteger(digits) && digits >= 0 && digits <= 4 ? digits : own;
      f = { format: new Intl.NumberFormat(undefined, { style: 'currency', currency, minimumFractionDigits: d, maximumFractionDigits: d }), digits: d };
    } catch {
      return fmtMoney(minor, 'USD');
    }
    moneyFormats.set(key, f);
  }
  return f.format.format(minor / 10 ** f.digits);
}

export function fmtTime(rfc3339) {
  if (!rfc3339) return '—';
  const d = new Date(rfc3339);
  if (Number.isNaN(d.getTime())) return '—';
  return d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
}

export function fmtDateTime(rfc3339) {
  if (!rfc3339) return '—';
  const d = new Date(rfc3339);
  if (Number.isNaN(d.getTime())) return '—';
  return d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

/** "just now", "4 min", "2 h 5 min" since a timestamp. */
export function fmtAge(rfc3339, now = Date.now()) {
  const t = new Date(rfc3339).getTime();
  if (Number.isNaN(t)) return '';
  const min = Math.max(0, Math.floor((now - t) / 60000));
  if (min < 1) return 'now';
  if (min < 60) return `${min} min`;
  return `${Math.floor(min / 60)} h ${min % 60} min`;
}

export function fmtDuration(seconds) {
  let s = Math.max(0, Math.floor(seconds));
  const d = Math.floor(s / 86400); s %= 86400;
  const hh = Math.floor(s / 3600); s %= 3600;
  const mm = Math.floor(s / 60); s %= 60;
  if (d) return `${d} d ${hh} h ${mm} min`;
  if (hh) return `${hh} h ${mm} min`;
  if (mm) return `${mm} min ${s} s`;
  return `${s} s`;
}

export function fmtBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** Human words for snake_case codes: "out_for_delivery" → "Out for delivery". */
export function words(code) {
  const s = String(code ?? '').replace(/_/g, ' ');
  return s.charAt(0).toUpperCase() + s.slice(1);
}

export function shortId(id) {
  const s = String(id ?? '');
  return s.length > 8 ? s.slice(0, 8) : s;
}
