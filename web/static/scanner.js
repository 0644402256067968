// The door: a scanner page for a phone at a gate (docs/TICKETS.md). It reads a ticket's
// QR code with the camera (jsQR, vendored: Chromium on Linux and Firefox have no
// BarcodeDetector), checks it in online, and keeps working without a network: the
// show's bundle (public keys, revoked tickets, tickets already in) checks the signature
// and the state here, and the scans are uploaded, each with its id, once back online.

const API = '/ticketing/api';
const STORE = 'boxoffice.door';
const $ = (id) => document.getElementById(id);
/** The same code seen again within this is one scan, not a re-entry attempt. */
const SAME_SCAN_MS = 3000;
const BUNDLE_EVERY_MS = 60_000;
const UPLOAD_EVERY_MS = 5_000;

const REASONS = {
  ADMITTED: 'Let in',
  ALREADY_USED: 'Already used',
  REVOKED: 'Revoked: the order was cancelled or refunded',
  WRONG_EVENT: 'A ticket for another show',
  INVALID: 'Not a genuine ticket',
  NOT_YET_VALID: 'Not valid yet',
};

const saved = () => JSON.parse(localStorage.getItem(STORE) || 'null');
const save = (state) => localStorage.setItem(STORE, JSON.stringify(state));
const uuid = () => crypto.randomUUID();

let state = saved() || { pending: [], usedOffline: [] };
state.pending ||= [];
state.usedOffline ||= [];
let last = { code: null, at: 0 };

function show(result, detail, offline = false) {
  const box = $('result');
  box.dataset.result = result;
  $('result-title').textContent = result.replaceAll('_', ' ') + (offline ? ' (offline)' : '');
  $('result-detail').textContent = detail;
  if (navigator.vibrate) navigator.vibrate(result === 'ADMITTED' ? 80 : [200, 80, 200]);
}

function status() {
  const online = navigator.onLine ? 'online' : 'offline';
  const bundle = state.bundleAt ? `bundle ${new Date(state.bundleAt).toLocaleTimeString()}` : 'no bundle yet';
  $('door-state').textContent = `${online} · ${bundle} · ${state.pending.length} scans to upload`;
}

async function call(path, options = {}) {
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${state.token}` };
  const response = await fetch(API + path, { ...options, headers, signal: AbortSignal.timeout(4000) });
  const body = await response.json().catch(() => null);
  return { ok: response.ok, status: response.status, body };
}

const seatOf = (ticket) => (ticket && (ticket.label || (ticket.seatId != null ? `seat ${ticket.seatId}` : ''))) || '';

function describe(answer) {
  const reason = REASONS[answer.result] || answer.result;
  if (answer.result === 'ALREADY_USED' && answer.firstUsedAt) {
    const when = new Date(answer.firstUsedAt).toLocaleTimeString();
    return `${reason} at ${when}${answer.firstGate ? `, gate ${answer.firstGate}` : ''}`;
  }
  const seat = seatOf(answer.ticket);
  return seat ? `${reason} · ${seat}` : reason;
}

async function check(code) {
  code = code.trim();
  if (!code) return;
  const now = Date.now();
  if (code === last.code && now - last.at < SAME_SCAN_MS) return;
  last = { code, at: now };
  const scan = { scanId: uuid(), token: code, gate: state.gate, scannedAt: new Date(now).toISOString() };
  try {
    const r = await call('/checkin', { method: 'POST', body: JSON.stringify({ token: code, gate: state.gate, scanId: scan.scanId }) });
    if (r.ok) return show(r.body.result, describe(r.body));
    if (r.status === 400 || r.status === 422) return show('INVALID', REASONS.INVALID);
    if (r.status === 401 || r.status === 403) return show('REFUSED', 'This scanner is not allowed: set it up again.');
    if (r.status < 500) return show('REFUSED', (r.body && r.body.message) || `HTTP ${r.status}`);
  } catch { /* no network: decide here, upload later */ }
  const answer = await checkOffline(code, now);
  if (answer.result === 'ADMITTED') state.usedOffline.push(answer.ticketId);
  state.pending.push(scan);
  save(state);
  status();
  show(answer.result, describe(answer), true);
}

// --- offline: the compact JWS (RFC 8037, EdDSA) checked with the bundle's keys ---

const fromB64url = (s) => Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(s.length / 4) * 4, '=')), (c) => c.charCodeAt(0));
const json = (s) => JSON.parse(new TextDecoder().decode(fromB64url(s)));

/** A ticket token's claims, whichever short names the server gives them. */
function claimsOf(payload) {
  return {
    ticketId: payload.tid ?? payload.ticketId ?? payload.jti ?? payload.sub,
    eventId: Number(payload.ev ?? payload.eventId ?? payload.event),
    label: payload.lbl ?? payload.label ?? '',
    seatId: payload.sid ?? payload.seatId ?? payload.seat,
    nbf: payload.nbf,
  };
}

async function checkOffline(code, now) {
  const bundle = state.bundle;
  const parts = code.split('.');
  if (!bundle || parts.length !== 3) return { result: 'INVALID' };
  try {
    const header = json(parts[0]);
    const key = (bundle.keys || []).find((k) => k.kid === header.kid);
    if (header.alg !== 'EdDSA' || !key) return { result: 'INVALID' };
    const publicKey = await crypto.subtle.importKey('raw', fromB64url(key.publicKey), { name: 'Ed25519' }, false, ['verify']);
    const signed = new TextEncoder().encode(`${parts[0]}.${parts[1]}`);
    if (!(await crypto.subtle.verify({ name: 'Ed25519' }, publicKey, fromB64url(parts[2]), signed))) return { result: 'INVALID' };
    const claims = claimsOf(json(parts[1]));
    const ticket = { label: claims.label, seatId: claims.seatId };
    if (claims.eventId !== state.eventId) return { result: 'WRONG_EVENT', ticket };
    if (claims.nbf && claims.nbf * 1000 > now) return { result: 'NOT_YET_VALID', ticket };
    const id = String(claims.ticketId);
    if ((bundle.revoked || []).map(String).includes(id)) return { result: 'REVOKED', ticket };
    if ((bundle.checkedIn || bundle.used || []).map((t) => String(t.ticketId ?? t)).includes(id) || state.usedOffline.includes(id)) {
      return { result: 'ALREADY_USED', ticket };
    }
    return { result: 'ADMITTED', ticket, ticketId: id };
  } catch {
    return { result: 'INVALID' };
  }
}

async function refreshBundle() {
  try {
    const r = await call(`/admin/events/${state.eventId}/scanner-bundle`);
    if (r.ok) {
      state.bundle = r.body;
      state.bundleAt = Date.now();
      state.usedOffline = [];
      save(state);
    }
  } catch { /* offline: keep the bundle we have */ }
  status();
}

async function upload() {
  if (!state.pending.length) return;
  const scans = state.pending.slice(0, 500);
  try {
    const r = await call('/checkin/batch', { method: 'POST', body: JSON.stringify({ scans }) });
    if (!r.ok) return;
    const sent = new Set(scans.map((s) => s.scanId));
    state.pending = state.pending.filter((s) => !sent.has(s.scanId));
    save(state);
    const conflicts = ((r.body && r.body.results) || []).filter((x) => x.result === 'CONFLICT');
    if (conflicts.length) show('CONFLICT', `${conflicts.length} ticket(s) scanned offline were let in at another gate too`);
  } catch { /* still offline */ }
  status();
}

// --- the camera ---

async function startCamera() {
  const video = $('camera');
  if (!navigator.mediaDevices?.getUserMedia) { video.hidden = true; return; }
  try {
    video.srcObject = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' }, audio: false });
    await video.play();
  } catch {
    video.hidden = true;
    $('result-detail').textContent = 'No camera: type or paste the ticket code.';
    return;
  }
  const canvas = document.createElement('canvas');
  const context = canvas.getContext('2d', { willReadFrequently: true });
  const look = () => {
    if (video.readyState >= 2 && video.videoWidth) {
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
      context.drawImage(video, 0, 0);
      const image = context.getImageData(0, 0, canvas.width, canvas.height);
      const code = window.jsQR(image.data, image.width, image.height, { inversionAttempts: 'dontInvert' });
      if (code && code.data) check(code.data);
    }
    setTimeout(look, 150);
  };
  look();
}

function start() {
  $('setup').hidden = true;
  $('door').hidden = false;
  $('door-where').textContent = `Gate ${state.gate} · show ${state.eventId}`;
  status();
  refreshBundle();
  setInterval(refreshBundle, BUNDLE_EVERY_MS);
  setInterval(upload, UPLOAD_EVERY_MS);
  addEventListener('online', () => { status(); upload(); });
  addEventListener('offline', status);
  startCamera();
}

$('setup').addEventListener('submit', (e) => {
  e.preventDefault();
  state = { ...state, token: $('setup-token').value.trim(), gate: $('setup-gate').value.trim(), eventId: Number($('setup-event').value) };
  save(state);
  start();
});
$('manual').addEventListener('submit', (e) => {
  e.preventDefault();
  last = { code: null, at: 0 };
  check($('manual-code').value);
  $('manual-code').value = '';
});
$('door-reset').addEventListener('click', () => {
  $('door').hidden = true;
  $('setup').hidden = false;
  $('setup-gate').value = state.gate || '';
  $('setup-event').value = state.eventId || '';
});

if (state.token && state.gate && state.eventId) start();
else $('setup').hidden = false;
