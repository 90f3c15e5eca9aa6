// Stalled printers, on every page: a banner per open `printer_stalled` alert naming the
// printer, what is wrong and how many tickets wait, with Retry now, Send to another printer
// and Ack (SPEC §4). It re-reads `/api/alerts?open=true` on every (re)connect and on each
// print alert, ack or job change, so it never shows a state the server no longer has.
// Also the opt-in chime (per device, remembered in localStorage) on a new order and on a
// print alert.

import { h, setText, toast, announce, busy } from './dom.js';
import { path } from './api.js';

const CHIME_KEY = 'branchd.chime';
const WRONG = { offline: 'offline', paper_out: 'out of paper', cover_open: 'cover open', error: 'in error', unknown: 'not answering' };

let audio = null;

/** Two short tones (Web Audio: no file to load). Counted on the button for tests. */
function chime(button) {
  if (localStorage.getItem(CHIME_KEY) !== 'on') return;
  button.dataset.chimes = String(Number(button.dataset.chimes || 0) + 1);
  try {
    audio = audio || new AudioContext();
    const t = audio.currentTime;
    for (const [i, f] of [[0, 880], [1, 660]]) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.frequency.value = f;
      gain.gain.setValueAtTime(0.2, t + i * 0.18);
      gain.gain.exponentialRampToValueAtTime(0.001, t + i * 0.18 + 0.16);
      osc.connect(gain).connect(audio.destination);
      osc.start(t + i * 0.18);
      osc.stop(t + i * 0.18 + 0.17);
    }
  } catch { /* no audio on this device: the banner still shows */ }
}

export function initChime(live) {
  const button = document.getElementById('chime-btn');
  const show = () => {
    const on = localStorage.getItem(CHIME_KEY) === 'on';
    button.setAttribute('aria-pressed', String(on));
    setText(button, on ? 'Chime: on' : 'Chime: off');
  };
  button.addEventListener('click', () => {
    const on = localStorage.getItem(CHIME_KEY) !== 'on';
    localStorage.setItem(CHIME_KEY, on ? 'on' : 'off');
    show();
    if (on) {
      // A user gesture: the browser lets the sound play from now on.
      try { audio = audio || new AudioContext(); audio.resume(); } catch { /* no audio */ }
    }
  });
  show();
  live.on('/orders', 'newOrder', () => chime(button));
  live.on('/printing-ws', 'printAlert', (a) => { if (a && a.type !== 'printer_recovered') chime(button); });
}

export function initPrintBanner(ctx) {
  const { api, live } = ctx;
  const box = document.getElementById('print-banner');
  let printers = [];
  let timer = null;

  async function waiting(printerId) {
    try {
      const page = await api.get(`/api/print-jobs?printerId=${encodeURIComponent(printerId)}&status=queued&limit=1000`);
      return (page.items || []).length;
    } catch {
      return null;
    }
  }

  function row(alert, count) {
    const printer = printers.find((p) => p.id === alert.printerId);
    const name = (printer && printer.name) || alert.printerName || 'A printer';
    const what = WRONG[(printer && printer.status !== 'online' && printer.status) || alert.status] || 'not printing';
    const n = count ?? alert.waitingJobs ?? 0;
    const others = printers.filter((p) => p.id !== alert.printerId && p.branchId === alert.branchId);
    const select = h('select', { 'aria-label': `Printer to send ${name}'s tickets to` },
      ...others.map((p) => h('option', { value: p.id }, `${p.name} (${p.status})`)));
    const retry = h('button', { type: 'button', class: 'btn btn-small', 'data-action': 'retry' }, 'Retry now');
    const move = h('button', { type: 'button', class: 'btn btn-small', 'data-action': 'move', disabled: others.length === 0 ? '' : null }, 'Send to another printer');
    const ack = h('button', { type: 'button', class: 'btn btn-small btn-ghost', 'data-action': 'ack', disabled: alert.ackedAt ? '' : null },
      alert.ackedAt ? 'Seen' : 'Ack');
    const text = h('p', { class: 'print-banner-text' },
      h('strong', {}, `${name} is ${what}`),
      ` · ${n} ${n === 1 ? 'ticket waits' : 'tickets wait'}`,
      ctx.multiBranch ? ` · ${ctx.branchName(alert.branchId)}` : '');
    retry.addEventListener('click', async () => {
      if (!busy(retry, true)) return;
      try {
        await api.post(path('/api/printers', alert.printerId, 'retry'), {});
        announce(`Retrying ${name}`);
      } catch (e) {
        toast(`Could not retry ${name}: ${e.message}`, { kind: 'error' });
      } finally {
        busy(retry, false);
      }
    });
    move.addEventListener('click', async () => {
      if (!select.value || !busy(move, true)) return;
      try {
        const r = await api.post(path('/api/printers', alert.printerId, 'move-jobs'), { toPrinterId: select.value });
        const to = others.find((p) => p.id === select.value);
        announce(`${r.moved.length} tickets sent to ${to ? to.name : 'another printer'}`);
        toast(`${r.moved.length} ${r.moved.length === 1 ? 'ticket' : 'tickets'} sent to ${to ? to.name : 'another printer'}`);
        schedule();
      } catch (e) {
        toast(`Could not move the tickets: ${e.message}`, { kind: 'error' });
      } finally {
        busy(move, false);
      }
    });
    ack.addEventListener('click', async () => {
      try {
        await api.post(path('/api/alerts', alert.id, 'ack'), {});
        schedule();
      } catch (e) {
        toast(`Could not ack: ${e.message}`, { kind: 'error' });
      }
    });
    return h('div', { class: `print-banner-row${alert.ackedAt ? ' is-acked' : ''}`, dataset: { alertId: alert.id, printerId: alert.printerId, waiting: String(n) } },
      text, h('div', { class: 'print-banner-actions' }, retry, select, move, ack));
  }

  async function load() {
    try {
      const [alerts, list] = await Promise.all([api.get('/api/alerts?open=true'), api.get('/api/printers?limit=1000')]);
      printers = list.items || [];
      const open = (alerts.items || []).filter((a) => a.type === 'printer_stalled');
      const counts = await Promise.all(open.map((a) => waiting(a.printerId)));
      // A stalled printer whose tickets were all sent elsewhere holds nothing: no banner.
      const rows = open.map((a, i) => (counts[i] === 0 ? null : row(a, counts[i]))).filter(Boolean);
      box.replaceChildren(...rows);
      box.hidden = rows.length === 0;
      document.body.classList.toggle('has-print-banner', rows.length > 0);
    } catch { /* the next event or reconnect tries again */ }
  }

  function schedule() {
    window.clearTimeout(timer);
    timer = window.setTimeout(load, 150);
  }

  live.onConnect('/printing-ws', schedule);
  for (const ev of ['printAlert', 'printAlertAck', 'printJobUpdate', 'printerStatusUpdate']) {
    live.on('/printing-ws', ev, (a) => {
      if (ev === 'printJobUpdate' && box.hidden) return;
      schedule();
      if (ev === 'printAlert' && a && a.type === 'printer_stalled') announce(a.message || 'A printer is stalled');
    });
  }
}
