// The shell on small screens, and the account controls: the phone's menu button (the
// sections and the account controls in one panel under the top bar), table rows labelled
// for the card layout narrow screens use, and "Change my password".

import { $, h, setText, toast, uid } from './dom.js';
import { sentence } from '../pages/users.js';

const PHONE = '(max-width: 699px)';

/**
 * Wires the menu button and moves the account controls (who, change password, chime, log
 * out) between the top bar and the menu panel as the window crosses the phone width.
 */
export function initShell() {
  const btn = $('#menu-btn');
  const nav = $('#sidenav');
  const account = $('#account');
  const header = $('.topbar');
  const phone = window.matchMedia(PHONE);
  const setOpen = (open) => {
    document.body.dataset.menu = open ? 'open' : 'closed';
    btn.setAttribute('aria-expanded', String(open));
    setText($('#menu-btn-text'), open ? 'Close' : 'Menu');
  };
  const place = () => {
    if (phone.matches) {
      if (account.parentElement !== nav) nav.append(account);
    } else if (account.parentElement !== header) {
      header.append(account);
      setOpen(false);
    }
  };
  btn.addEventListener('click', () => setOpen(btn.getAttribute('aria-expanded') !== 'true'));
  nav.addEventListener('click', (ev) => { if (ev.target.closest('a')) setOpen(false); });
  document.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && btn.getAttribute('aria-expanded') === 'true') {
      setOpen(false);
      btn.focus();
    }
  });
  window.addEventListener('hashchange', () => setOpen(false));
  phone.addEventListener('change', place);
  setOpen(false);
  place();
  labelTables($('#main'));
}

/**
 * Narrow screens show each table row as a card: every cell gets its column's heading as
 * `data-label` (shown before the value by CSS). Rows come and go, so this watches `root`.
 */
export function labelTables(root) {
  let queued = false;
  const run = () => {
    queued = false;
    for (const table of root.querySelectorAll('table.table')) {
      // A heading only for screen readers ("Actions") labels nothing on the card.
      const heads = [...table.querySelectorAll('thead th')].map((th) => (th.querySelector('.sr-only') ? '' : th.textContent.trim()));
      for (const tr of table.querySelectorAll('tbody tr:not([data-labelled])')) {
        [...tr.children].forEach((cell, i) => {
          if (cell.tagName === 'TD' && heads[i]) cell.dataset.label = heads[i];
        });
        tr.dataset.labelled = '';
      }
    }
  };
  new MutationObserver(() => {
    if (queued) return;
    queued = true;
    queueMicrotask(run);
  }).observe(root, { childList: true, subtree: true });
  run();
}

/**
 * "Change my password" (anyone logged in): the current and the new password; on success
 * the server's fresh token replaces the session (older tokens are refused from then on).
 */
export function initOwnPassword(api, user, saveSession) {
  const current = h('input', { id: uid('own-current'), type: 'password', autocomplete: 'current-password', maxlength: 1024 });
  const next = h('input', { id: uid('own-new'), type: 'password', autocomplete: 'new-password', maxlength: 1024 });
  const title = h('h2', { id: uid('own-title') }, 'Change my password');
  const error = h('p', { class: 'form-error', role: 'alert' });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Change password');
  const cancel = h('button', { type: 'button', class: 'btn' }, 'Cancel');
  const form = h('form', { class: 'stack-form', novalidate: true }, title,
    h('p', { class: 'muted' }, `For ${user.email || user.id}. Your other sessions end; this one goes on.`),
    h('div', { class: 'field' }, h('label', { for: current.id }, 'Current password'), current),
    h('div', { class: 'field' }, h('label', { for: next.id }, 'New password'), next,
      h('span', { class: 'muted small' }, 'At least 8 characters.')),
    error, h('div', { class: 'dialog-actions' }, cancel, submit));
  const dialog = h('dialog', { class: 'dialog', id: 'own-password-dialog', 'aria-labelledby': title.id }, form);
  document.body.append(dialog);
  cancel.addEventListener('click', () => dialog.close());
  $('#password-btn').addEventListener('click', () => {
    current.value = '';
    next.value = '';
    setText(error, '');
    dialog.showModal();
    current.focus();
  });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (!current.value || !next.value) {
      setText(error, 'Enter your current password and a new one.');
      (current.value ? next : current).focus();
      return;
    }
    submit.disabled = true;
    setText(error, '');
    try {
      const res = await api.post('/auth/password', { currentPassword: current.value, newPassword: next.value });
      current.value = '';
      next.value = '';
      saveSession(res);
      dialog.close();
      toast('Your password is changed.', { kind: 'success' });
    } catch (e) {
      setText(error, e.code === 'INVALID_CREDENTIALS' ? 'The current password is wrong.' : sentence(e.message));
    } finally {
      submit.disabled = false;
    }
  });
}
