// System facts (version, uptime, data directory, role, addresses, branches) and the backup
// download. Owners, managers and super admins only (the server enforces it too).

import { h, setText, toast, busy, fmtDuration, fmtBytes } from '../lib/dom.js';

export function systemPage(ctx, section) {
  const { api } = ctx;
  let info = null;
  let loadedAt = 0;
  let ticker = null;

  section.append(h('div', { class: 'page-head' }, h('h1', { id: 'page-system-title' }, 'System')));
  const v = {
    version: h('dd', { id: 'sys-version' }, '…'),
    update: h('dd', { id: 'sys-update' }, '…'),
    role: h('dd', { id: 'sys-role' }, '…'),
    uptime: h('dd', { id: 'sys-uptime', class: 'tabular' }, '…'),
    dataDir: h('dd', { id: 'sys-datadir' }, h('code', {}, '…')),
    port: h('dd', { id: 'sys-port' }, '…'),
    lan: h('dd', { id: 'sys-lan' }, '…'),
    db: h('dd', { id: 'sys-db' }, '…'),
  };
  section.append(h('div', { class: 'card' }, h('h2', {}, 'This appliance'),
    h('dl', { class: 'facts' },
      h('dt', {}, 'Version'), v.version,
      h('dt', {}, 'Update'), v.update,
      h('dt', {}, 'Role'), v.role,
      h('dt', {}, 'Up for'), v.uptime,
      h('dt', {}, 'Database'), v.db,
      h('dt', {}, 'Data directory'), v.dataDir,
      h('dt', {}, 'Port'), v.port,
      h('dt', {}, 'LAN addresses'), v.lan)));

  const btbody = h('tbody', {});
  section.append(h('div', { class: 'card' }, h('h2', { id: 'sys-branches' }, 'Branches you can see'),
    h('div', { class: 'table-wrap' }, h('table', { class: 'table', 'aria-labelledby': 'sys-branches' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Name'), h('th', { scope: 'col' }, 'Branch id'), h('th', { scope: 'col' }, 'Company id'))),
      btbody))));

  const backupBtn = h('button', { type: 'button', class: 'btn btn-primary', id: 'backup-btn' }, 'Download backup');
  const backupMsg = h('p', { class: 'muted', id: 'backup-msg', role: 'status' }, '');
  const backupCard = h('div', { class: 'card' }, h('h2', {}, 'Backup'),
    h('p', {}, 'A consistent copy of the whole database, taken while the appliance keeps running. Keep it somewhere safe: it holds every order and account of this appliance.'),
    h('div', { class: 'form-actions' }, backupBtn), backupMsg);
  section.append(backupCard);

  backupBtn.addEventListener('click', async () => {
    if (!busy(backupBtn, true)) return;
    setText(backupBtn, 'Preparing backup…');
    setText(backupMsg, '');
    delete backupMsg.dataset.result;
    try {
      const res = await api.raw('/api/system/backup');
      const blob = await res.blob();
      const cd = res.headers.get('Content-Disposition') || '';
      const name = (cd.match(/filename="([^"]+)"/) || [])[1] || 'branchd-backup.db';
      const url = URL.createObjectURL(blob);
      const a = h('a', { href: url, download: name, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      window.setTimeout(() => URL.revokeObjectURL(url), 60000);
      const msg = `Backup ${name} downloaded (${fmtBytes(blob.size)}).`;
      setText(backupMsg, msg);
      backupMsg.dataset.result = 'ok';
    } catch (e) {
      setText(backupMsg, `Backup failed: ${e.message}`);
      backupMsg.dataset.result = 'error';
    } finally {
      busy(backupBtn, false);
      setText(backupBtn, 'Download backup');
    }
  });

  function tick() {
    if (info) setText(v.uptime, fmtDuration(info.uptimeSeconds + (Date.now() - loadedAt) / 1000));
  }

  async function refresh() {
    try {
      info = await api.get('/api/system');
      loadedAt = Date.now();
      setText(v.version, info.version);
      const u = info.update;
      setText(v.update, !u ? 'not checked yet (branchd update --check)'
        : u.error ? `check failed: ${u.error}`
        : u.newer ? `${u.available} available (branchd update --apply)` : `up to date (checked ${new Date(u.checkedAt).toLocaleString()})`);
      setText(v.role, info.role === 'hub' ? 'Hub (HQ)' : 'Branch appliance');
      setText(v.dataDir.firstChild, info.dataDir);
      setText(v.port, info.port);
      v.lan.replaceChildren(...(info.lanAddresses.length ? info.lanAddresses.map((a) => h('code', { class: 'addr' }, a)) : ['none found']));
      btbody.replaceChildren(...(info.branches || []).map((b) => h('tr', {}, h('td', {}, b.name), h('td', {}, h('code', {}, b.id)), h('td', {}, h('code', {}, b.companyId)))));
      backupBtn.parentElement.hidden = !info.mayBackup;
      if (!info.mayBackup) {
        setText(backupMsg, ctx.user.role === 'company_owner' && info.backupRefusal
          ? 'This appliance also holds other companies\' data, so only a super admin can download its backup.'
          : 'Only company owners can download a backup.');
      }
      tick();
      section.dataset.loaded = 'true';
    } catch (e) {
      toast(`Could not load system details: ${e.message}`, { kind: 'error' });
    }
    try {
      const health = await (await fetch('/health', { cache: 'no-store' })).json();
      setText(v.db, health.db === 'ok' ? 'OK' : `Problem: ${health.db}`);
    } catch {
      setText(v.db, 'unknown');
    }
  }

  return {
    enter() {
      refresh();
      ticker = window.setInterval(tick, 1000);
    },
    leave() {
      window.clearInterval(ticker);
    },
  };
}
