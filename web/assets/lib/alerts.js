// Operational alerts (print problems, stock): a short toast when they happen, and a list
// behind the "Alerts" button in the top bar until someone clears them. Repeats of the same
// alert are counted, not stacked.

import { h, setText, toast, fmtTime } from './dom.js';

const MAX = 50;
const list = [];
let els = null;
let lastToast = null;
let lastToastAt = 0;
let burst = 0;

function render() {
  if (!els) return;
  const n = list.reduce((a, x) => a + x.count, 0);
  setText(els.count, n > 99 ? '99+' : String(n));
  els.count.dataset.count = String(n);
  els.button.setAttribute('aria-label', `Alerts: ${n}`);
  els.empty.hidden = list.length > 0;
  els.clear.hidden = list.length === 0;
  els.list.replaceChildren(...list.map((a) => {
    const dismiss = h('button', { type: 'button', class: 'toast-close', 'aria-label': `Dismiss: ${a.message}` }, '×');
    dismiss.addEventListener('click', () => {
      list.splice(list.indexOf(a), 1);
      render();
      els.button.focus();
    });
    return h('li', { class: `alert-item alert-${a.kind}` },
      h('div', { class: 'alert-text' },
        h('strong', {}, a.title), ' ', a.message,
        h('span', { class: 'muted small alert-meta' }, ` ${fmtTime(a.at)}${a.count > 1 ? ` · ${a.count} times` : ''}`)),
      dismiss);
  }));
}

function setOpen(open) {
  els.panel.hidden = !open;
  els.button.setAttribute('aria-expanded', String(open));
  if (open) (els.clear.hidden ? els.button : els.clear).focus();
}

export function initAlerts() {
  els = {
    button: document.getElementById('alerts-btn'),
    count: document.getElementById('alerts-count'),
    panel: document.getElementById('alerts-panel'),
    list: document.getElementById('alerts-list'),
    empty: document.getElementById('alerts-empty'),
    clear: document.getElementById('alerts-clear'),
  };
  els.button.addEventListener('click', () => setOpen(els.panel.hidden));
  els.clear.addEventListener('click', () => {
    list.length = 0;
    render();
    setOpen(false);
    els.button.focus();
  });
  document.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && !els.panel.hidden) {
      setOpen(false);
      els.button.focus();
    }
  });
  document.addEventListener('click', (ev) => {
    if (!els.panel.hidden && !els.panel.contains(ev.target) && !els.button.contains(ev.target)) setOpen(false);
  });
  render();
}

/** Records an alert and shows it briefly. */
export function raiseAlert(title, message, { kind = 'warning' } = {}) {
  const same = list.find((a) => a.title === title && a.message === message);
  if (same) {
    same.count += 1;
    same.at = new Date().toISOString();
    list.splice(list.indexOf(same), 1);
    list.unshift(same);
  } else {
    list.unshift({ title, message, kind, count: 1, at: new Date().toISOString() });
    if (list.length > MAX) list.length = MAX;
  }
  render();
  // One alert toast at a time: a burst becomes "N new alerts" instead of a stack.
  const recent = Date.now() - lastToastAt < 7000 && lastToast && lastToast.isConnected;
  if (recent) {
    burst += 1;
    lastToast.querySelector('.toast-body').textContent = `${burst} new alerts: the latest is "${title} ${message}". See Alerts at the top.`;
    return;
  }
  burst = 1;
  lastToastAt = Date.now();
  lastToast = toast(message, { kind, title });
}
