// "Connect a tablet" (also the first-run view): the appliance's LAN address(es) and a QR
// code of the dashboard URL, generated in the browser (no network needed). With HTTPS on,
// the QR carries the https address and the CA fingerprint (`?tlsfp=`), the page offers the
// CA (/ca.crt as PEM, DER and an Apple profile) with per-platform steps, and, when the page
// itself came over plain http, switches to HTTPS once this device trusts the appliance.

import { h, setText, uid } from '../lib/dom.js';
import { qrSvg } from '../lib/qr.js';

const LOOPBACK = /^(localhost|127\.|\[?::1\]?$)/;

export function connectPage(ctx, section) {
  const { api } = ctx;
  const title = h('h1', { id: 'page-connect-title' }, 'Connect a tablet');
  const welcome = h('div', { class: 'welcome', hidden: true },
    h('p', { class: 'lead' }, 'Welcome! This appliance runs the branch, with or without internet. Connect each tablet and kitchen screen to it:'));
  const trustStep = h('li', { hidden: true }, 'On a new tablet, first make it trust this appliance (see "Trust this appliance" below), so the https address opens without a warning.');
  const steps = h('ol', { class: 'steps' },
    h('li', {}, 'Join the tablet to the restaurant Wi-Fi (the same network as this appliance).'),
    trustStep,
    h('li', {}, 'Open the camera and point it at the QR code, or type the address into the browser.'),
    h('li', {}, 'Log in with the tablet user\'s email and password.'));
  const choices = h('fieldset', { class: 'addr-choices', hidden: true },
    h('legend', {}, 'Address'));
  const qrBox = h('div', { class: 'qr-box', id: 'qr-box', 'aria-live': 'polite' });
  const urlText = h('p', { class: 'url-text' }, h('code', { id: 'connect-url' }, ''));
  const note = h('p', { class: 'muted', id: 'connect-note' }, '');
  const copyBtn = h('button', { type: 'button', class: 'btn' }, 'Copy address');
  const doneBtn = h('button', { type: 'button', class: 'btn btn-primary', hidden: true }, 'Continue to orders');
  const trust = trustCard();
  section.append(h('div', { class: 'page-head' }, title),
    h('div', { class: 'connect-layout' },
      h('div', { class: 'card connect-text' }, welcome, steps, choices, urlText, note,
        h('div', { class: 'form-actions' }, copyBtn, doneBtn)),
      h('div', { class: 'card connect-qr' }, qrBox)),
    trust.card);

  let current = '';
  let fingerprint = null;
  function showUrl(url) {
    current = url;
    setText(document.getElementById('connect-url'), url);
    // The fingerprint rides along so a pairing app can pin the CA; browsers ignore it.
    const qrText = fingerprint && url.startsWith('https:') ? `${url}?tlsfp=${fingerprint}` : url;
    qrBox.replaceChildren(qrSvg(qrText, { label: `QR code to open ${url} on a tablet`, size: 256 }));
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
    const tls = await tlsState();
    fingerprint = tls.caFingerprint || null;
    trust.show(tls);
    trustStep.hidden = !tls.caFingerprint;
    const scheme = tls.enabled ? 'https:' : window.location.protocol;
    let addrs = [];
    let p = port;
    if (ctx.mayUseSystem) {
      try {
        const info = await api.get('/api/system');
        addrs = info.lanAddresses || [];
        p = String(info.port || port);
      } catch { /* fall back to the address this browser used */ }
    }
    const fmt = (host) => `${scheme}//${host}${(p === '80' && scheme === 'http:') || (p === '443' && scheme === 'https:') ? '' : `:${p}`}/`;
    const urls = addrs.map(fmt);
    const here = `${scheme}//${window.location.host}/`;
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

/** `/health`'s `tls` ({enabled, caFingerprint}); TLS off when it cannot be read. */
async function tlsState() {
  try {
    const res = await fetch('/health', { cache: 'no-store' });
    const body = await res.json();
    return body.tls || { enabled: false, caFingerprint: null };
  } catch {
    return { enabled: false, caFingerprint: null };
  }
}

/** Whether this browser trusts the appliance's HTTPS: a request to the same host and port
 *  over https succeeds only when the certificate is trusted (an opaque answer is enough). */
async function trustsHttps() {
  try {
    await fetch(`https://${window.location.host}/health`, { mode: 'no-cors', cache: 'no-store' });
    return true;
  } catch {
    return false;
  }
}

const PLATFORMS = [
  ['iPhone and iPad', [
    'Open this page on the iPad in Safari and tap "Apple profile" below; allow the download.',
    'Settings > Profile Downloaded > Install (enter the passcode).',
    'Settings > General > About > Certificate Trust Settings: turn on full trust for the branchd CA. Without this step Safari still warns.',
  ]],
  ['Android', [
    'Download "Certificate (DER)" below.',
    'Settings > Security > More security settings > Encryption & credentials > Install a certificate > CA certificate (the path differs a little between makers), and pick the file.',
    'Chrome and other browsers trust a user CA; installed apps may not (Android apps trust only system CAs unless they say otherwise).',
  ]],
  ['Windows', [
    'Download "Certificate (DER)" below and open it: Install Certificate > Local Machine > Place all certificates in the following store > Trusted Root Certification Authorities.',
    'Chrome and Edge use it at once; Firefox: Settings > Privacy & Security > Certificates > View Certificates > Authorities > Import.',
  ]],
  ['macOS', [
    'Download "Apple profile" (or the PEM) below and open it; System Settings > Privacy & Security > Profiles > Install.',
    'Or open the PEM in Keychain Access (System keychain), double-click the branchd CA, Trust > When using this certificate: Always Trust.',
  ]],
  ['Managed devices (MDM)', [
    'Upload /ca.crt (PEM or DER) to your MDM as a trusted root certificate payload (Apple: Certificate / "com.apple.security.root"; Android Enterprise: CA certificate; Intune: Trusted certificate profile) and assign it to the branch\'s devices.',
  ]],
];

/** The "Trust this appliance" card: fingerprint, downloads, steps, the switch to HTTPS. */
function trustCard() {
  const fp = h('code', { id: 'tls-fingerprint', class: 'fingerprint' }, '');
  const links = h('p', { class: 'ca-links' },
    h('a', { class: 'btn', href: '/ca.crt', download: 'branchd-ca.crt', id: 'ca-pem' }, 'Certificate (PEM)'), ' ',
    h('a', { class: 'btn', href: '/ca.crt?format=der', download: 'branchd-ca.cer', id: 'ca-der' }, 'Certificate (DER)'), ' ',
    h('a', { class: 'btn', href: '/ca.crt?format=mobileconfig', download: 'branchd-ca.mobileconfig', id: 'ca-mobileconfig' }, 'Apple profile'));
  const status = h('p', { id: 'tls-status', 'aria-live': 'polite' }, '');
  const switchBtn = h('button', { type: 'button', class: 'btn btn-primary', id: 'switch-https', hidden: true }, 'Switch to HTTPS');
  const steps = PLATFORMS.map(([name, items]) => h('details', { class: 'platform' },
    h('summary', {}, name), h('ol', { class: 'steps' }, items.map((t) => h('li', {}, t)))));
  const ownCa = h('div', {},
    h('p', {}, 'Devices trust this appliance\'s HTTPS once they trust its own certificate authority (made on this appliance, valid only for its own names and LAN addresses). Check that the fingerprint on the device matches:'),
    h('p', { class: 'url-text' }, fp), links, ...steps);
  const card = h('div', { class: 'card trust-card', hidden: true },
    h('h2', {}, 'Trust this appliance (HTTPS)'), ownCa, status, h('div', { class: 'form-actions' }, switchBtn));

  switchBtn.addEventListener('click', async () => {
    setText(status, 'Checking that this device trusts the appliance…');
    if (await trustsHttps()) {
      setText(status, 'Trusted: switching to HTTPS (log in again there).');
      window.location.href = `https://${window.location.host}${window.location.pathname}${window.location.hash}`;
    } else {
      setText(status, 'This device does not trust the appliance yet: install the certificate (steps above), then try again.');
    }
  });

  function show(tls) {
    card.hidden = !tls.enabled;
    ownCa.hidden = !tls.caFingerprint;
    setText(fp, (tls.caFingerprint || '').toUpperCase().match(/.{1,4}/g)?.join(' ') || '');
    const secure = window.location.protocol === 'https:';
    switchBtn.hidden = secure || !tls.enabled;
    if (secure) setText(status, 'This page is already on HTTPS: the connection to the appliance is encrypted.');
  }
  return { card, show };
}
