// Sync with HQ: the uplink state from /health (`upstream`, and its `sync` object: backlog,
// last success, last error, …). Refreshed every few seconds while the page is open.

import { h, setText, fmtDateTime, fmtDuration, words } from '../lib/dom.js';

const EVERY_MS = 5000;
const UPSTREAM = {
  online: ['Connected to HQ', 'Events flow both ways.'],
  offline: ['HQ unreachable', 'The branch keeps working; events wait here and are sent, in order, when the uplink is back.'],
  disabled: ['Sync disabled', 'No HQ address is configured (BRANCHD_UPSTREAM_URL), so this appliance works on its own.'],
};
/** Fields of the `sync` object, in display order, with how to show them. */
const FIELDS = [
  ['pending', 'Backlog (events waiting for HQ)', String],
  ['oldestPendingAgeSeconds', 'Oldest waiting event', (v) => `${fmtDuration(v)} old`],
  ['lastSuccessAt', 'Last successful exchange', fmtDateTime],
  ['lastError', 'Last error', String],
  ['stopped', 'Stopped', String],
  ['warning', 'Needs attention', String],
  ['parked', 'Events parked (refused by HQ, or HQ changes not applicable here)', String],
  ['pushed', 'Sent to HQ since start', String],
  ['feedApplied', 'Received from HQ since start', String],
  ['acked', 'Confirmed by HQ up to event', String],
  ['hubHighWater', 'Events HQ has stored', String],
  ['divergences', 'Times the numbering had to be repaired (HQ or this appliance restored)', String],
];
const HIDDEN = new Set(['enabled', 'online', 'branchId']);

function generic(v) {
  if (v === null || v === undefined || v === '') return '—';
  if (typeof v === 'string' && /^\d{4}-\d\d-\d\dT/.test(v)) return fmtDateTime(v);
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

export function syncPage(ctx, section) {
  let timer = null;
  section.append(h('div', { class: 'page-head' }, h('h1', { id: 'page-sync-title' }, 'Sync')));
  const badge = h('span', { class: 'badge', id: 'sync-badge' }, '…');
  const state = h('p', { class: 'sync-state', 'aria-live': 'polite' }, badge);
  const setBadge = (status, label) => {
    badge.dataset.status = status;
    setText(badge, label);
  };
  const explain = h('p', { class: 'muted' }, '');
  const details = h('dl', { class: 'facts' });
  section.append(h('div', { class: 'card sync-card' }, h('h2', {}, 'Uplink to HQ'), state, explain, details));

  async function refresh() {
    let health;
    try {
      const res = await fetch('/health', { cache: 'no-store' });
      health = await res.json();
    } catch {
      setBadge('offline', 'Appliance unreachable');
      return;
    }
    const sync = health.sync && typeof health.sync === 'object' ? health.sync : null;
    let up = health.upstream || 'disabled';
    if (sync && sync.enabled === false) up = 'disabled';
    const [label, text] = UPSTREAM[up] || [words(up), ''];
    setBadge(up === 'online' ? 'online' : up === 'offline' ? 'offline' : 'unknown', label);
    setText(explain, sync && sync.stopped ? `Sync stopped: ${sync.stopped}` : text);
    const rows = [];
    if (sync && up !== 'disabled') {
      if (sync.branchId) rows.push(['Branch', ctx.branchName(sync.branchId)]);
      for (const [k, name, fmt] of FIELDS) {
        if (!(k in sync)) continue;
        const v = sync[k];
        if (v === null || v === undefined || v === '') {
          if (k === 'lastSuccessAt') rows.push([name, 'never']);
          continue;
        }
        rows.push([name, fmt(v), k]);
      }
      for (const [k, v] of Object.entries(sync)) {
        if (!HIDDEN.has(k) && !FIELDS.some(([f]) => f === k)) rows.push([words(k.replace(/([A-Z])/g, '_$1').toLowerCase()), generic(v)]);
      }
    } else if (!sync && up !== 'disabled') {
      rows.push(['Backlog', 'not reported by this version']);
    }
    details.replaceChildren(...rows.flatMap(([k, v, key]) => [h('dt', {}, k), h('dd', { dataset: key ? { field: key } : {} }, v)]));
    details.hidden = rows.length === 0;
    section.dataset.upstream = up;
    section.dataset.loaded = 'true';
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
