// "Connect a tablet" (also the first-run view): the appliance's LAN address(es) and a QR
// code of the dashboard URL, generated in the browser (no network needed).

import { h, setText, uid } from '../lib/dom.js';
import { qrSvg } from '../lib/qr.js';

const LOOPBACK = /^(localhost|127\.|\[?::1\]?$)/;

export function connectPage(ctx, section) {
  const { api } = ctx;
  const title = h('h1', { id: 'page-connect-title' }, 'Connect a tablet');
  const welcome = h('div', { class: 'welcome', hidden: true },
    h('p', { class: 'lead' }, 'Welcome! This appliance runs the branch, with or without internet. Connect each tablet and kitchen screen to it:'));
  const steps = h('ol', { class: 'steps' },
    h('li', {}, 'Join the tablet to the restaurant Wi-Fi (the same network as this appliance).'),
    h('li', {}, 'Open the camera and point it at the QR code, or type the address into the browser.'),
    h('li', {}, 'Log in with the tablet user\'s email and password.'));
  const choices = h('fieldset', { class: 'addr-choices', hidden: true },
    h('legend', {}, 'Address'));
  const qrBox = h('div', { class: 'qr-box', id: 'qr-box', 'aria-live': 'polite' });
  const urlText = h('p', { class: 'url-text' }, h('code', { id: 'connect-url' }, ''));
  const note = h('p', { class: 'muted', id: 'connect-note' }, '');
  const copyBtn = h('button', { type: 'button', class: 'btn' }, 'Copy address');
  const doneBtn = h('button', { type: 'button', class: 'btn btn-primary', hidden: true }, 'Continue to orders');
  section.append(h('div', { class: 'page-head' }, title),
    h('div', { class: 'connect-layout' },
      h('div', { class: 'card connect-text' }, welcome, steps, choices, urlText, note,
        h('div', { class: 'form-actions' }, copyBtn, doneBtn)),
      h('div', { class: 'card connect-qr' }, qrBox)));

  let current = '';
  function showUrl(url) {
    current = url;
    setText(document.getElementById('connect-url'), url);
    qrBox.replaceChildren(qrSvg(url, { label: `QR code to open ${url} on a tablet`, size: 256 }));
  }

  copyBtn.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(current);
      setText(copyBtn, 'Copied');
    } catch {
      // Clipboard needs a secure context; select the text instead.
      const range = document.createRange();
      range.selectNodeContents(document.getElementById('connect-url'));
      const sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      setText(copyBtn, 'Selected: press Ctrl+C');
    }
    window.setTimeout(() => setText(copyBtn, 'Copy address'), 2500);
  });
  doneBtn.addEventListener('click', () => {
    ctx.finishFirstRun();
    window.location.hash = '#/orders';
  });

  async function refresh() {
    welcome.hidden = !ctx.firstRun;
    doneBtn.hidden = !ctx.firstRun;
    setText(title, ctx.firstRun ? 'Welcome: connect your tablets' : 'Connect a tablet');
    const port = window.location.port || (window.location.protocol === 'https:' ? '443' : '80');
    let addrs = [];
    let p = port;
    if (ctx.mayUseSystem) {
      try {
        const info = await api.get('/api/system');
        addrs = info.lanAddresses || [];
        p = String(info.port || port);
      } catch { /* fall back to the address this browser used */ }
    }
    const fmt = (host) => `${window.location.protocol}//${host}${(p === '80' && window.location.protocol === 'http:') ? '' : `:${p}`}/`;
    const urls = addrs.map(fmt);
    const here = `${window.location.origin}/`;
    if (!LOOPBACK.test(window.location.hostname) && !urls.includes(here)) urls.unshift(here);
    if (!urls.length) {
      setText(note, 'No LAN address found: is the appliance connected to the restaurant network? Showing the address this browser used.');
      urls.push(here);
    } else {
      setText(note, urls.length > 1 ? 'This appliance has more than one address: use the one on the tablets\' network.' : '');
    }
    const name = uid('addr');
    choices.replaceChildren(h('legend', {}, 'Address'), ...urls.map((u, i) => {
      const id = `${name}-${i}`;
      const r = h('input', { type: 'radio', name, id, value: u, checked: i === 0 });
      r.addEventListener('change', () => showUrl(u));
      return h('div', { class: 'radio' }, r, h('label', { for: id }, u));
    }));
    choices.hidden = urls.length < 2;
    showUrl(urls[0]);
    section.dataset.loaded = 'true';
  }

  return { enter: refresh };
}
