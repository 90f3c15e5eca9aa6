// First-run setup (SPEC §3): shown instead of the dashboard after logging in with the demo
// admin while `GET /api/setup` says the demo company is still there. Two paths: standalone
// (name the company and branch, pick the currency) or join HQ (the hub's address and this
// branch's uplink credential; ids and names come from the hub). Either way the installer
// sets their own admin email and password; the answer is a login for that admin.

import { h, setText, uid } from '../lib/dom.js';

/**
 * Resolves true when the setup screen took over the page (the caller stops there). Only a
 * company owner can be the demo admin, so nobody else asks.
 * onDone({accessToken, user, setup}) runs after a successful setup.
 */
export async function firstRunSetup(api, user, onDone, onLogout) {
  if (user.role !== 'company_owner') return false;
  let info;
  try {
    info = await api.get('/api/setup');
  } catch {
    return false; // 404: done long ago; 403: not the demo admin
  }
  if (!info || !info.needed) return false;
  document.body.append(setupView(api, info, onDone, onLogout));
  document.title = 'Set up this appliance · branchd';
  document.getElementById('setup-title').focus();
  return true;
}

function field(label, input, hint) {
  input.id = input.id || uid('setup');
  const hintEl = hint ? h('p', { class: 'muted small', id: uid('hint') }, hint) : null;
  if (hintEl) input.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: input.id }, label), input, hintEl);
}

function setupView(api, info, onDone, onLogout) {
  const modes = info.modes || ['standalone'];
  const radio = (value, label) => {
    const id = uid('setup-mode');
    const r = h('input', { type: 'radio', name: 'setup-mode', id, value, checked: value === 'standalone' });
    return { r, el: h('div', { class: 'radio' }, r, h('label', { for: id }, label)) };
  };
  const standaloneRadio = radio('standalone', 'On its own: name your company and branch');
  const joinRadio = radio('join', 'Join your HQ: this branch syncs with the HQ hub');
  const mode = () => (joinRadio.r.checked ? 'join' : 'standalone');

  const company = h('input', { name: 'companyName', autocomplete: 'organization', maxlength: 100, required: true });
  const branch = h('input', { name: 'branchName', maxlength: 100, required: true });
  const currency = h('select', { name: 'currency' },
    (info.currencies || ['USD']).map((c) => h('option', { value: c, selected: c === (info.defaultCurrency || 'USD') }, c)));
  const hub = h('input', { name: 'upstreamUrl', type: 'url', inputmode: 'url', autocapitalize: 'none', spellcheck: 'false',
    placeholder: 'https://hq.example.com' });
  const credential = h('input', { name: 'uplinkToken', autocapitalize: 'none', spellcheck: 'false', autocomplete: 'off' });
  const email = h('input', { name: 'adminEmail', type: 'email', autocomplete: 'username', autocapitalize: 'none', spellcheck: 'false', required: true });
  const password = h('input', { name: 'adminPassword', type: 'password', autocomplete: 'new-password', minlength: 8, required: true });
  const confirm = h('input', { name: 'confirmPassword', type: 'password', autocomplete: 'new-password', required: true });

  const standaloneGroup = h('div', { class: 'stack-form', dataset: { mode: 'standalone' } },
    field('Company name', company),
    field('Branch name', branch),
    field('Currency', currency, 'Prices and receipts use its decimals (JPY none, USD two, KWD three).'));
  const joinGroup = h('div', { class: 'stack-form', dataset: { mode: 'join' }, hidden: true },
    field('HQ hub address', hub),
    field('Uplink credential', credential, 'Printed at HQ by “branchd uplink create” for this branch. The company and branch come from HQ.'));
  const error = h('p', { class: 'form-error', id: 'setup-error', role: 'alert' });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary btn-block', id: 'setup-submit' }, 'Finish setup');
  const logout = h('button', { type: 'button', class: 'btn btn-ghost' }, 'Log out');
  logout.addEventListener('click', () => onLogout());

  const choices = h('fieldset', { class: 'addr-choices' }, h('legend', {}, 'How will this branch run?'),
    standaloneRadio.el, modes.includes('join') ? joinRadio.el : null);
  const show = () => {
    standaloneGroup.hidden = mode() !== 'standalone';
    joinGroup.hidden = mode() !== 'join';
  };
  standaloneRadio.r.addEventListener('change', show);
  joinRadio.r.addEventListener('change', show);

  const form = h('form', { id: 'setup-form', class: 'stack-form', novalidate: true },
    choices, standaloneGroup, joinGroup,
    h('h2', {}, 'Your admin account'),
    field('Admin email', email),
    field('Admin password', password, 'At least 8 characters.'),
    field('Repeat the password', confirm),
    error, submit);

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    setText(error, '');
    const need = mode() === 'join' ? [hub, credential] : [company, branch];
    const missing = [...need, email, password, confirm].find((i) => !i.value.trim());
    if (missing) {
      setText(error, `Fill in “${missing.labels[0].textContent}”.`);
      missing.focus();
      return;
    }
    if (password.value !== confirm.value) {
      setText(error, 'The two passwords differ.');
      confirm.focus();
      return;
    }
    const body = mode() === 'join'
      ? { upstreamUrl: hub.value.trim(), uplinkToken: credential.value.trim() }
      : { companyName: company.value.trim(), branchName: branch.value.trim(), currency: currency.value };
    body.adminEmail = email.value.trim();
    body.adminPassword = password.value;
    submit.disabled = true;
    setText(submit, mode() === 'join' ? 'Asking HQ…' : 'Setting up…');
    try {
      const res = await api.post('/api/setup', body);
      password.value = '';
      confirm.value = '';
      onDone(res);
    } catch (e) {
      setText(error, e.message);
      submit.disabled = false;
      setText(submit, 'Finish setup');
    }
  });

  const demo = info.demo || {};
  return h('div', { class: 'login-view', id: 'setup-view' },
    h('main', { class: 'login-card', 'aria-labelledby': 'setup-title' },
      h('div', { class: 'brand brand-large' }, h('img', { src: '/assets/icon.svg', alt: '', width: 40, height: 40 }), h('span', {}, 'branchd')),
      h('h1', { id: 'setup-title', tabindex: '-1' }, 'Set up this appliance'),
      h('p', { class: 'muted' },
        `You are using the demo (${demo.companyName || 'demo company'}, ${demo.branchName || 'demo branch'}). `
        + 'Make it yours: the demo company, its admin, printer and orders are replaced.'),
      form,
      h('div', { class: 'form-actions' }, logout)));
}
