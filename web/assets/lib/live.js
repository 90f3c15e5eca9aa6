// Live updates over Socket.IO (the official client, vendored). One engine connection is
// shared by the three namespaces. Each page subscribes to the events it shows and re-reads
// its state on every (re)connect, so nothing is missed while the network was away.

import { io } from '../vendor/socket.io.esm.min.js';

export const NAMESPACES = ['/orders', '/availability', '/printing-ws'];
const AUTH_FAILURES = new Set(['AUTH_REQUIRED', 'TOKEN_INVALID', 'TOKEN_EXPIRED']);

export class Live {
  /**
   * onAuthFailure(code): the server refused the token; onChange(): a namespace's state
   * changed (see `state(ns)`).
   */
  constructor(token, { onAuthFailure, onChange }) {
    this.sockets = new Map();
    this.states = new Map();
    this.handlers = new Map();
    for (const ns of NAMESPACES) {
      const socket = io(ns, {
        auth: { token, userRole: 'web_client' },
        reconnectionDelay: 500,
        reconnectionDelayMax: 5000,
      });
      this.sockets.set(ns, socket);
      this.states.set(ns, 'connecting');
      this.handlers.set(ns, new Set());
      socket.on('connect', () => {
        this.states.set(ns, 'live');
        onChange();
        for (const fn of this.handlers.get(ns)) fn(socket);
      });
      socket.on('disconnect', (reason) => {
        this.states.set(ns, 'offline');
        onChange();
        // The server closed this namespace (e.g. refused): reconnect by hand.
        if (reason === 'io server disconnect') window.setTimeout(() => socket.connect(), 2000);
      });
      socket.on('connect_error', (err) => {
        const code = err && err.message;
        if (AUTH_FAILURES.has(code)) {
          onAuthFailure(code);
          return;
        }
        this.states.set(ns, code === 'FORBIDDEN' ? 'forbidden' : 'offline');
        onChange();
      });
    }
  }

  socket(ns) {
    return this.sockets.get(ns);
  }

  state(ns) {
    return this.states.get(ns);
  }

  /** `fn(socket)` now if connected and on every later (re)connect. */
  onConnect(ns, fn) {
    this.handlers.get(ns).add(fn);
    const s = this.sockets.get(ns);
    if (s.connected) fn(s);
  }

  on(ns, event, fn) {
    this.sockets.get(ns).on(event, fn);
  }

  /** Emits with an ack; resolves to the ack payload, rejects on timeout. */
  request(ns, event, payload, timeoutMs = 10000) {
    const s = this.sockets.get(ns);
    return s.timeout(timeoutMs).emitWithAck(event, payload);
  }

  transport() {
    const s = this.sockets.get('/orders');
    const engine = s && s.io && s.io.engine;
    return engine && engine.transport ? engine.transport.name : null;
  }

  close() {
    for (const s of this.sockets.values()) {
      s.removeAllListeners();
      s.disconnect();
    }
    this.sockets.clear();
  }
}
