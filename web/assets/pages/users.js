// Users (SPEC §2/§3): the users this manager sees, adding one, changing its role, branch or
// name, disabling and enabling it, and resetting its password. Managers and above only (the
// server decides who may manage whom; its refusals are shown in its own words). Users that
// came from HQ are managed there and shown read-only.

import { h, setText, toast, announce, busy, words, uid } from '../lib/dom.js';
import { path } from '../lib/api.js';

/** Highest first; a manager assigns only roles below its own (a super admin any). */
const ROLES = ['super_admin', 'company_owner', 'branch_manager', 'cashier', 'call_center', 'kitchen'];
const RANK = { super_admin: 4, company_owner: 3, branch_manager: 2, cashier: 1, call_center: 1, kitchen: 1 };
/** Roles that belong to one branch. */
const BRANCH_ROLES = new Set(['branch_manager', 'cashier', 'kitchen']);
const NO_BRANCH_ROLES = new Set(['super_admin', 'company_owner']);
export const MANAGER_ROLES = new Set(['super_admin', 'company_owner', 'branch_manager']);

export function usersPage(ctx, section) {
  const { api, user: me } = ctx;
  const rows = new Map();
  const assignable = ROLES.filter((r) => me.role === 'super_admin' || RANK[r] < RANK[me.role]);
  const mayManage = (u) => !u.readOnly && u.id !== me.id && (me.role === 'super_admin' || RANK[u.role] < RANK[me.role]);

  const count = h('span', { class: 'stat', id: 'users-count' }, '');
  const addBtn = h('button', { type: 'button', class: 'btn btn-primary', id: 'add-user-btn' }, 'Add a user');
  section.append(h('div', { class: 'page-head' },
    h('h1', { id: 'page-users-title' }, 'Users'),
    h('div', { class: 'toolbar' }, count, addBtn)));

  const tbody = h('tbody', {});
  const empty = h('p', { class: 'empty-note' }, 'No users to show.');
  section.append(h('div', { class: 'card' },
    h('p', { class: 'muted users-note' }, 'People who log in to this appliance. Users created at HQ are managed there and are read-only here.'),
    h('div', { class: 'table-wrap' }, h('table', { class: 'table users-table' },
      h('caption', { class: 'sr-only' }, 'Users'),
      h('colgroup', {}, h('col', { class: 'c-user' }), h('col', { class: 'c-role' }), h('col', { class: 'c-branch' }),
        h('col', { class: 'c-ustatus' }), h('col', { class: 'c-actions' })),
      h('thead', {}, h('tr', {},
        h('th', { scope: 'col' }, 'User'), h('th', { scope: 'col' }, 'Role'), h('th', { scope: 'col' }, 'Branch'),
        h('th', { scope: 'col' }, 'Status'), h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Actions')))),
      tbody)),
    empty));

  // ---- add / edit dialog
  const f = {
    email: h('input', { id: uid('u-email'), type: 'email', autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false', maxlength: 320 }),
    name: h('input', { id: uid('u-name'), autocomplete: 'off', maxlength: 200 }),
    role: h('select', { id: uid('u-role') }, assignable.map((r) => h('option', { value: r }, words(r)))),
    branch: h('select', { id: uid('u-branch') }),
    password: h('input', { id: uid('u-password'), type: 'password', autocomplete: 'new-password', maxlength: 1024 }),
  };
  const field = (el, label, hint) => h('div', { class: 'field' }, h('label', { for: el.id }, label), el,
    hint ? h('span', { class: 'muted small' }, hint) : null);
  const emailField = field(f.email, 'Email');
  const passwordField = field(f.password, 'Password', 'At least 8 characters. Tell it to the person; they can change it after logging in.');
  const branchField = field(f.branch, 'Branch');
  const dialogTitle = h('h2', { id: uid('user-dialog-title') }, 'Add a user');
  const dialogError = h('p', { class: 'form-error', role: 'alert' });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Add user');
  const cancel = h('button', { type: 'button', class: 'btn' }, 'Cancel');
  const form = h('form', { class: 'stack-form', novalidate: true },
    dialogTitle, emailField, field(f.name, 'Name'), field(f.role, 'Role'), branchField, passwordField, dialogError,
    h('div', { class: 'dialog-actions' }, cancel, submit));
  const dialog = h('dialog', { class: 'dialog', id: 'user-dialog', 'aria-labelledby': dialogTitle.id }, form);
  section.append(dialog);
  let editing = null;

  function branchOptions(role, selected) {
    const opts = [];
    if (!BRANCH_ROLES.has(role) && me.role !== 'branch_manager') opts.push(h('option', { value: '' }, NO_BRANCH_ROLES.has(role) ? 'None (whole company)' : 'Any (whole company)'));
    if (!NO_BRANCH_ROLES.has(role)) {
      const mine = me.role === 'branch_manager' ? ctx.branches.filter((b) => b.id === me.branchId) : ctx.branches;
      for (const b of mine) opts.push(h('option', { value: b.id, selected: b.id === selected }, b.name));
    }
    f.branch.replaceChildren(...opts);
    if (selected && [...f.branch.options].some((o) => o.value === selected)) f.branch.value = selected;
  }
  f.role.addEventListener('change', () => branchOptions(f.role.value, f.branch.value));
  cancel.addEventListener('click', () => dialog.close());

  function openDialog(u) {
    editing = u;
    setText(dialogError, '');
    emailField.hidden = !!u;
    passwordField.hidden = !!u;
    setText(dialogTitle, u ? `Change ${u.email}` : 'Add a user');
    setText(submit, u ? 'Save' : 'Add user');
    f.email.value = '';
    f.password.value = '';
    f.name.value = u ? u.name || '' : '';
    const role = u ? u.role : (assignable.includes('cashier') ? 'cashier' : assignable[0]);
    if (u && !assignable.includes(u.role)) f.role.append(h('option', { value: u.role }, words(u.role)));
    f.role.value = role;
    branchOptions(role, u ? u.branchId || '' : (me.branchId || (ctx.branches[0] || {}).id || ''));
    dialog.showModal();
    (u ? f.name : f.email).focus();
  }
  addBtn.addEventListener('click', () => openDialog(null));

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (!busy(submit, true)) return;
    setText(dialogError, '');
    try {
      if (editing) {
        const body = { name: f.name.value.trim() || null };
        if (f.role.value !== editing.role) body.role = f.role.value;
        if ((f.branch.value || null) !== (editing.branchId || null)) body.branchId = f.branch.value || null;
        const u = await api.patch(path('/api/users', editing.id), body);
        upsert(u);
        announce(`${u.email} saved`);
        toast(`${u.email} saved`, { kind: 'success' });
      } else {
        const email = f.email.value.trim();
        if (!email || !f.password.value) {
          setText(dialogError, 'Enter an email and a password.');
          (email ? f.password : f.email).focus();
          return;
        }
        const body = { email, password: f.password.value, role: f.role.value };
        if (f.name.value.trim()) body.name = f.name.value.trim();
        if (f.branch.value) body.branchId = f.branch.value;
        const u = await api.post('/api/users', body);
        upsert(u);
        toast(`${u.email} can now log in`, { kind: 'success' });
      }
      dialog.close();
    } catch (e) {
      setText(dialogError, sentence(e.message));
    } finally {
      busy(submit, false);
    }
  });

  // ---- reset password dialog
  const pw = h('input', { id: uid('reset-pw'), type: 'password', autocomplete: 'new-password', maxlength: 1024 });
  const pwTitle = h('h2', { id: uid('pw-title') }, 'Reset password');
  const pwError = h('p', { class: 'form-error', role: 'alert' });
  const pwSubmit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Set password');
  const pwCancel = h('button', { type: 'button', class: 'btn' }, 'Cancel');
  const pwForm = h('form', { class: 'stack-form', novalidate: true }, pwTitle,
    h('p', { class: 'muted' }, 'The user\'s sessions end and the new password works at once.'),
    field(pw, 'New password'), pwError, h('div', { class: 'dialog-actions' }, pwCancel, pwSubmit));
  const pwDialog = h('dialog', { class: 'dialog', id: 'password-dialog', 'aria-labelledby': pwTitle.id }, pwForm);
  section.append(pwDialog);
  let resetting = null;
  pwCancel.addEventListener('click', () => pwDialog.close());
  pwForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (!resetting || !busy(pwSubmit, true)) return;
    setText(pwError, '');
    try {
      const u = await api.post(path('/api/users', resetting.id, 'password'), { password: pw.value });
      upsert(u && u.id ? u : resetting);
      toast(`New password set for ${resetting.email}`, { kind: 'success' });
      pwDialog.close();
    } catch (e) {
      setText(pwError, sentence(e.message));
    } finally {
      busy(pwSubmit, false);
    }
  });

  // ---- rows
  function makeRow(u) {
    const refs = {
      email: h('strong', { class: 'user-email' }),
      name: h('span', { class: 'muted small user-name' }),
      role: h('td', {}),
      branch: h('td', {}),
      status: h('td', {}),
      actions: h('td', { class: 'actions' }),
    };
    const tr = h('tr', { dataset: { userId: u.id } },
      h('th', { scope: 'row' }, refs.email, h('br'), refs.name), refs.role, refs.branch, refs.status, refs.actions);
    return { tr, refs, u };
  }

  function fill(e) {
    const { u, refs } = e;
    setText(refs.email, u.email);
    setText(refs.name, u.name || '');
    refs.name.hidden = !u.name;
    setText(refs.role, words(u.role));
    setText(refs.branch, u.branchId ? ctx.branchName(u.branchId) : 'Whole company');
    refs.status.replaceChildren(h('span', { class: 'user-status' },
      h('span', { class: 'badge', dataset: { status: u.disabled ? 'offline' : 'online' } }, u.disabled ? 'Disabled' : 'Active'),
      u.readOnly ? h('span', { class: 'chip chip-hq', title: 'Created at HQ: change it on the HQ hub' }, 'Managed at HQ') : null,
      u.id === me.id ? h('span', { class: 'chip' }, 'You') : null));
    if (!mayManage(u)) {
      refs.actions.replaceChildren();
      return;
    }
    const edit = h('button', { type: 'button', class: 'btn btn-small', 'aria-label': `Edit ${u.email}` }, 'Edit');
    const reset = h('button', { type: 'button', class: 'btn btn-small', 'aria-label': `Reset the password of ${u.email}` }, 'Reset password');
    const toggle = h('button', { type: 'button', class: `btn btn-small ${u.disabled ? '' : 'btn-ghost'}`, 'aria-label': `${u.disabled ? 'Enable' : 'Disable'} ${u.email}` },
      u.disabled ? 'Enable' : 'Disable');
    edit.addEventListener('click', () => openDialog(e.u));
    reset.addEventListener('click', () => {
      resetting = e.u;
      setText(pwTitle, `New password for ${e.u.email}`);
      setText(pwError, '');
      pw.value = '';
      pwDialog.showModal();
      pw.focus();
    });
    toggle.addEventListener('click', async () => {
      if (!busy(toggle, true)) return;
      const disabled = !e.u.disabled;
      try {
        const next = await api.patch(path('/api/users', e.u.id), { disabled });
        upsert(next);
        announce(`${next.email} ${disabled ? 'disabled' : 'enabled'}`);
        toast(disabled ? `${next.email} is disabled: its sessions end within seconds` : `${next.email} can log in again`, { kind: 'success' });
      } catch (err) {
        toast(`Could not ${disabled ? 'disable' : 'enable'} ${e.u.email}: ${err.message}`, { kind: 'error' });
      } finally {
        busy(toggle, false);
      }
    });
    refs.actions.replaceChildren(edit, reset, toggle);
  }

  function upsert(u) {
    let e = rows.get(u.id);
    if (!e) {
      e = makeRow(u);
      rows.set(u.id, e);
    }
    e.u = u;
    fill(e);
    place();
  }

  function place() {
    const sorted = [...rows.values()].sort((a, b) => a.u.email.localeCompare(b.u.email));
    tbody.replaceChildren(...sorted.map((e) => e.tr));
    empty.hidden = rows.size > 0;
    setText(count, `${rows.size} ${rows.size === 1 ? 'user' : 'users'}`);
  }

  async function refresh() {
    try {
      const list = (await api.get('/api/users')).items || [];
      const seen = new Set(list.map((u) => u.id));
      for (const id of [...rows.keys()]) if (!seen.has(id)) rows.delete(id);
      for (const u of list) upsert(u);
      place();
      section.dataset.loaded = 'true';
    } catch (e) {
      toast(`Could not load users: ${e.message}`, { kind: 'error' });
    }
  }

  return { enter: refresh };
}

/** An API message as a sentence: "the password must be…" → "The password must be…." */
export function sentence(message) {
  const s = String(message || 'Something went wrong.').trim();
  const t = s.charAt(0).toUpperCase() + s.slice(1);
  return /[.!?]$/.test(t) ? t : `${t}.`;
}
