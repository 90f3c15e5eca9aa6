// branchd dashboard: login, the shell (header, nav, live indicator) and a hash router over
// the pages. The token lives in sessionStorage only (gone when the tab closes) and goes
// out as `Authorization: Bearer` (REST) and in the Socket.IO handshake `auth`.

import { createApi, login, claims } from './lib/api.js';
import { Live, NAMESPACES } from './lib/live.js';
import { initAlerts } from './lib/alerts.js';
import { initPrintBanner, initChime } from './lib/printbanner.js';
import { $, h, setText, toast, words } from './lib/dom.js';
import { ordersPage } from './pages/orders.js';
import { availabilityPage } from './pages/availability.js';
import { printersPage } from './pages/printers.js';
import { connectionsPage } from './pages/connections.js';
import { syncPage } from './pages/sync.js';
import { systemPage } from './pages/system.js';
import { connectPage } from './pages/connect.js';
import { firstRunSetup } from './pages/setup.js';
import { usersPage, MANAGER_ROLES } from './pages/users.js';
import { initShell, initOwnPassword } from './lib/shell.js';

const SESSION_KEY = 'branchd.session';
const FIRST_RUN_KEY = 'branchd.firstRunDone';
const PAGES = {
  orders: ordersPage,
  availability: availabilityPage,
  printers: printersPage,
  connections: connectionsPage,
  sync: syncPage,
  system: systemPage,
  connect: connectPage,
  users: usersPage,
};
const SYSTEM_ROLES = new Set(['company_owner', 'branch_manager', 'super_admin']);

function loadSession() {
  try {
    const s = JSON.parse(sessionStorage.getItem(SESSION_KEY) || 'null');
    if (!s || typeof s.token !== 'string' || !s.user) return null;
    const c = claims(s.token);
    if (!c || (typeof c.exp === 'number' && c.exp * 1000 <= Date.now())) return null;
    return s;
  } catch {
    return null;
  }
}

function logout(message) {
  sessionStorage.removeItem(SESSION_KEY);
  if (message) sessionStorage.setItem('branchd.logoutMessage', message);
  // A reload drops every piece of the previous user's data and connections at once.
  window.location.hash = '';
  window.location.reload();
}

function showLogin() {
  $('#app-view').hidden = true;
  $('#login-view').hidden = false;
  document.title = 'Log in · branchd';
  const msg = sessionStorage.getItem('branchd.logoutMessage');
  if (msg) {
    sessionStorage.removeItem('branchd.logoutMessage');
    setText($('#login-error'), msg);
  }
  const form = $('#login-form');
  const email = $('#login-email');
  email.focus();
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const button = $('#login-submit');
    const pw = $('#login-password');
    if (!email.value.trim() || !pw.value) {
      setText($('#login-error'), 'Enter your email and password.');
      (email.value.trim() ? pw : email).focus();
      return;
    }
    button.disabled = true;
    setText(button, 'Logging in…');
    setText($('#login-error'), '');
    try {
      const res = await login(email.value.trim(), pw.value);
      sessionStorage.setItem(SESSION_KEY, JSON.stringify({ token: res.accessToken, user: res.user }));
      pw.value = '';
      $('#login-view').hidden = true;
      await startApp(loadSession(), { fresh: true });
    } catch (e) {
      setText($('#login-error'), e.code === 'INVALID_CREDENTIALS' ? 'Wrong email or password.' : e.message);
      pw.select();
      pw.focus();
    } finally {
      button.disabled = false;
      setText(button, 'Log in');
    }
  });
}

async function startApp(session, { fresh = false } = {}) {
  const { token, user } = session;
  const api = createApi(() => token, (code) => logout(code === 'TOKEN_EXPIRED'
    ? 'Your session expired. Please log in again.' : 'Please log in again.'));
  const c = claims(token);
  if (c && typeof c.exp === 'number') {
    const ms = c.exp * 1000 - Date.now();
    if (ms < 2 ** 31) window.setTimeout(() => logout('Your session expired. Please log in again.'), Math.max(0, ms));
  }
  // The demo admin's first login: the first-run setup screen instead of the dashboard.
  if (await firstRunSetup(api, user, (res) => {
    sessionStorage.setItem(SESSION_KEY, JSON.stringify({ token: res.accessToken, user: res.user }));
    window.location.hash = '';
    window.location.reload();
  }, () => logout())) return;

  let branches = [];
  try {
    branches = (await api.get('/api/branches')).items || [];
  } catch (e) {
    if (e.status === 401) return;
    toast(`Could not load branches: ${e.message}`, { kind: 'error' });
  }

  const pill = $('#live-pill');
  const live = new Live(token, {
    onAuthFailure: (code) => logout(code === 'TOKEN_EXPIRED'
      ? 'Your session expired. Please log in again.' : 'Please log in again.'),
    onChange: () => {
      const states = NAMESPACES.map((ns) => live.state(ns));
      const state = states.every((s) => s === 'live' || s === 'forbidden') ? 'live'
        : states.some((s) => s === 'offline') ? 'offline' : 'connecting';
      pill.dataset.state = state;
      setText($('#live-text'), state === 'live' ? 'Live' : state === 'offline' ? 'Reconnecting…' : 'Connecting…');
    },
  });

  const branchName = (id) => (branches.find((b) => b.id === id) || {}).name || id;
  const ctx = {
    api,
    live,
    user,
    branches,
    branchName,
    multiBranch: branches.length > 1,
    mayUseSystem: SYSTEM_ROLES.has(user.role),
    firstRun: fresh && !localStorage.getItem(FIRST_RUN_KEY),
    finishFirstRun() {
      localStorage.setItem(FIRST_RUN_KEY, '1');
      ctx.firstRun = false;
    },
  };

  setText($('#who'), `${user.email || user.id} · ${words(user.role)}`);
  setText($('#scope'), branches.length === 1 ? [branches[0].companyName, branches[0].name].filter(Boolean).join(' · ')
    : branches.length ? `${branches.length} branches` : 'No branch');
  $('#logout').addEventListener('click', () => logout());
  initAlerts();
  initChime(live);
  initPrintBanner(ctx);
  if (!ctx.mayUseSystem) $('#nav-list a[data-page="system"]').parentElement.hidden = true;
  if (!MANAGER_ROLES.has(user.role)) $('#nav-list a[data-page="users"]').parentElement.hidden = true;
  initShell();
  initOwnPassword(api, user, (res) => {
    // The new token (older ones are refused from now on): start again with it.
    sessionStorage.setItem(SESSION_KEY, JSON.stringify({ token: res.accessToken, user: res.user }));
    window.location.reload();
  });

  const main = $('#main');
  const pages = {};
  for (const [name, make] of Object.entries(PAGES)) {
    const section = h('section', { class: 'page', id: `page-${name}`, hidden: true, 'aria-labelledby': `page-${name}-title` });
    main.append(section);
    pages[name] = { section, page: make(ctx, section) };
  }

  let current = null;
  const route = () => {
    let name = (window.location.hash.match(/^#\/([a-z]+)/) || [])[1];
    if (!pages[name] || (name === 'system' && !ctx.mayUseSystem) || (name === 'users' && !MANAGER_ROLES.has(user.role))) name = ctx.firstRun ? 'connect' : 'orders';
    if (current === name) return;
    if (current) {
      pages[current].section.hidden = true;
      pages[current].page.leave?.();
    }
    const prev = current;
    current = name;
    const { section, page } = pages[name];
    section.hidden = false;
    page.enter?.();
    for (const a of document.querySelectorAll('#nav-list a')) {
      if (a.dataset.page === name) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    const title = section.querySelector('h1');
    document.title = `${title ? title.textContent : words(name)} · branchd`;
    document.body.dataset.page = name;
    // Move focus to the new page for keyboard and screen-reader users (not on first load).
    if (prev && title) {
      title.setAttribute('tabindex', '-1');
      title.focus({ preventScroll: true });
    }
  };
  window.addEventListener('hashchange', route);
  $('#app-view').hidden = false;
  route();
}

const session = loadSession();
if (session) startApp(session);
else {
  sessionStorage.removeItem(SESSION_KEY);
  showLogin();
}
