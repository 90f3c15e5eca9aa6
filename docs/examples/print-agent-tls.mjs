// A desktop print agent connecting to branchd over WSS with the appliance's CA pinned
// (docs/OPERATING.md). Usage:
//   node print-agent-tls.mjs https://192.168.1.20:3001 branchd-ca.pem LICENSE-KEY
// The CA comes from http://APPLIANCE:3001/ca.crt (check its SHA-256 against the dashboard's
// "Connect a tablet" page or /health tls.caFingerprint before trusting it).
import fs from 'node:fs';
import crypto from 'node:crypto';
import { io } from 'socket.io-client';

const [url, caFile, licenseKey] = process.argv.slice(2);
const ca = fs.readFileSync(caFile);
console.log('pinned CA SHA-256', crypto.createHash('sha256').update(new crypto.X509Certificate(ca).raw).digest('hex'));

const socket = io(`${url}/printing-ws`, {
  ca, // trust exactly this CA for this connection (polling and WebSocket alike)
  transports: ['websocket'],
  auth: {
    userRole: 'desktop_app', deviceId: 'front-desk-pc', branchId: process.env.BRANCH_ID || 'br-1',
    companyId: process.env.COMPANY_ID || 'co-1', licenseKey, appVersion: '2.3.0', instanceId: 'agent-1',
  },
});
socket.on('connect', () => { console.log('connected over', socket.io.engine.transport.name, 'to', url); socket.close(); });
socket.on('connect_error', (e) => { console.error('connect_error:', e.message); process.exit(1); });
