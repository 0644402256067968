// boxoffice in a browser: shows, a live seat map, holds with a countdown, checkout,
// "my tickets", and an operator view. Plain modules, no build step.

const API = '/ticketing/api';
const main = document.getElementById('main');
const flashBox = document.getElementById('flash');
const MAX_SEATS = 20;
let cleanups = [];

const MESSAGES = {
  RESERVATION_CONFLICT: 'Someone else is holding one of those seats. Pick another.',
  RESERVATION_EXPIRED: 'Your hold has expired. Select your seats again.',
  SEAT_SOLD: 'One of those seats has just been sold.',
  VALIDATION_FAILED: 'That request was not valid.',
  NOT_FOUND: 'Not found.',
  UNAUTHORIZED: 'Hold a seat first: your session starts with your first hold.',
  FORBIDDEN: 'That belongs to someone else.',
  IDEMPOTENCY_KEY_REUSED: 'That order was already placed differently.',
  RATE_LIMITED: 'Too many requests — wait a moment and try again.',
  UNAVAILABLE: 'boxoffice is busy — try again in a moment.',
  INTERNAL_ERROR: 'Something went wrong on our side. Try again.',
};

const CANCEL_REASONS = {
  PAYMENT_FAILED: 'The payment failed, so your seats were released.',
  SEATS_LOST: 'Your seats could not be kept; the payment was refunded.',
  HOLDS_LAPSED: 'Your seats could not be kept; the payment was refunded.',
  EVENT_RESET: 'The show was reset by the operator; the payment was refunded.',
};

const won = (n) => `₩${Number(n).toLocaleString('en-US')}`;
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
const uuid = () => (crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(16).slice(2)}`);

class ApiError extends Error {
  constructor(status, body) {
    super((body && MESSAGES[body.code]) || (body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.code = body && body.code;
  }
}

async function api(path, options = {}) {
  const headers = { 'content-type': 'application/json', ...(options.headers || {}) };
  const response = await fetch(API + path, { ...options, headers, credentials: 'same-origin' });
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = null; }
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

function flash(text, ok = false) {
  flashBox.textContent = text;
  flashBox.className = ok ? 'ok' : '';
  flashBox.hidden = false;
  clearTimeout(flash.timer);
  flash.timer = setTimeout(() => { flashBox.hidden = true; }, 6000);
}

function onLeave(fn) { cleanups.push(fn); }

async function route() {
  cleanups.forEach((fn) => fn());
  cleanups = [];
  flashBox.hidden = true;
  const hash = location.hash || '#/';
  const show = hash.match(/^#\/events\/(\d+)$/);
  try {
    if (show) await showView(Number(show[1]));
    else if (hash === '#/tickets') await ticketsView();
    else if (hash === '#/operator') await operatorView();
    else await eventsView();
  } catch (e) {
    main.innerHTML = `<p>${esc(e.message)}</p>`;
  }
  main.focus();
}

// ---- shows ------------------------------------------------------------------------

async function eventsView() {
  const events = await api('/events');
  main.innerHTML = `<h1>Shows on sale</h1><ul class="cards">${events.map((e) => `
    <li class="card"><h2><a href="#/events/${e.id}">${esc(e.title)}</a></h2>
      <p class="muted">${esc(new Date(e.dateTime).toLocaleString())}</p>
      <p>${esc(e.description)}</p><p class="muted">${e.rows * e.cols} seats</p></li>`).join('')}</ul>`;
}

// ---- one show: the live seat map, holds, checkout ------------------------------------

const STATUS_TEXT = { AVAILABLE: 'available', HELD: 'held', SOLD: 'sold' };

async function showView(eventId) {
  const event = await api(`/events/${eventId}`);
  const state = { seats: new Map(), selected: new Set(), hold: null, order: null, prices: [] };
  main.innerHTML = `
    <h1>${esc(event.title)}</h1>
    <div class="show">
      <section aria-labelledby="map-title">
        <h2 id="map-title" class="muted">${esc(new Date(event.dateTime).toLocaleString())} · choose up to ${MAX_SEATS} seats</h2>
        <div class="stage" aria-hidden="true">STAGE</div>
        <div class="grid" id="grid" role="grid" aria-label="Seat map" style="grid-template-columns: repeat(${event.cols}, 1fr)"></div>
        <ul class="legend" aria-label="Legend">
          <li><i style="background:hsl(240 55% 50%)"></i>available (darker is dearer)</li>
          <li><i style="background:var(--held)"></i>held</li>
          <li><i style="background:var(--sold)"></i>sold</li>
          <li><i style="background:var(--mine)"></i>yours</li>
        </ul>
      </section>
      <aside class="panel card" id="panel" aria-live="polite"></aside>
    </div>`;
  const grid = document.getElementById('grid');
  const panel = document.getElementById('panel');

  const color = (price) => {
    const [lo, hi] = [state.prices[0], state.prices[state.prices.length - 1]];
    const f = hi > lo ? (price - lo) / (hi - lo) : 0.5;
    return `hsl(${215 + f * 45} 55% ${66 - f * 30}%)`;
  };
  const mine = (id) => !!state.hold && state.hold.seatIds.includes(id);

  function paint(button) {
    const seat = state.seats.get(Number(button.dataset.id));
    button.dataset.status = seat.status;
    button.dataset.mine = String(mine(seat.id));
    button.setAttribute('aria-pressed', String(state.selected.has(seat.id)));
    button.setAttribute('aria-label', `Row ${seat.r}, seat ${seat.c}, ${won(seat.price)}, ${mine(seat.id) ? 'held by you' : STATUS_TEXT[seat.status]}`);
  }

  function buildGrid(map) {
    state.seats = new Map(map.seats.map((s) => [s.id, s]));
    state.prices = [...new Set(map.seats.map((s) => s.price))].sort((a, b) => a - b);
    grid.innerHTML = '';
    for (const seat of map.seats) {
      const b = document.createElement('button');
      b.className = 'seat';
      b.dataset.id = seat.id;
      b.style.background = color(seat.price);
      b.textContent = seat.c;
      b.addEventListener('click', () => toggle(seat.id));
      grid.appendChild(b);
      paint(b);
    }
  }

  const button = (id) => grid.querySelector(`[data-id="${id}"]`);

  function toggle(id) {
    const seat = state.seats.get(id);
    if (state.hold || state.order) return flash('Finish or release your current hold first.');
    if (seat.status !== 'AVAILABLE') return flash(seat.status === 'SOLD' ? MESSAGES.SEAT_SOLD : 'That seat is held by someone else.');
    if (state.selected.has(id)) state.selected.delete(id);
    else if (state.selected.size >= MAX_SEATS) return flash(`Up to ${MAX_SEATS} seats at once.`);
    else state.selected.add(id);
    paint(button(id));
    renderPanel();
  }

  // Arrow keys move through the grid, drawn row by row (seat ids need not be 1, 2, 3…:
  // the demo shows keep the original's).
  grid.addEventListener('keydown', (e) => {
    const moves = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -event.cols, ArrowDown: event.cols };
    if (!(e.key in moves) || !e.target.dataset.id) return;
    const buttons = [...grid.children];
    const next = buttons[buttons.indexOf(e.target) + moves[e.key]];
    if (next) { next.focus(); e.preventDefault(); }
  });

  const label = (id) => { const s = state.seats.get(id); return s ? `Row ${s.r} · seat ${s.c}` : `Seat ${id}`; };
  const total = (ids) => ids.reduce((sum, id) => sum + (state.seats.get(id)?.price || 0), 0);

  function renderPanel() {
    if (state.order) {
      const o = state.order;
      const text = o.status === 'CONFIRMED' ? 'Your tickets are confirmed. Enjoy the show!'
        : o.status === 'CANCELLED' ? (CANCEL_REASONS[o.cancelReason] || 'The order was cancelled.')
        : 'Taking the payment…';
      panel.innerHTML = `<h2>Your order <span id="order-number">#${Number(o.orderId)}</span></h2>
        <p><span class="status ${o.status}" id="order-status">${o.status}</span></p>
        <p>${esc(text)}</p>
        <ul>${o.seatIds.map((id) => `<li>${label(id)}</li>`).join('')}</ul>
        <p>Total <b>${won(o.amount)}</b></p>
        <div class="actions">${o.status === 'CREATED' ? '' : '<button class="secondary" id="again">Buy more</button> <a href="#/tickets">My tickets</a>'}</div>`;
      panel.querySelector('#again')?.addEventListener('click', () => { state.order = null; renderPanel(); });
      return;
    }
    if (state.hold) {
      const left = Math.max(0, Math.round((state.hold.expiresAt - Date.now()) / 1000));
      panel.innerHTML = `<h2>Held for you</h2>
        <ul>${state.hold.seatIds.map((id) => `<li>${label(id)} — ${won(state.seats.get(id)?.price || 0)}</li>`).join('')}</ul>
        <p>Total <b>${won(total(state.hold.seatIds))}</b></p>
        <p>Expires in <span class="countdown" id="countdown" role="timer">${Math.floor(left / 60)}:${String(left % 60).padStart(2, '0')}</span></p>
        <div class="actions">
          <button class="primary" id="checkout">Checkout</button>
          <button class="secondary" id="extend">Extend 60 s</button>
          <button class="secondary" id="release">Release</button>
        </div>`;
      panel.querySelector('#checkout').addEventListener('click', checkout);
      panel.querySelector('#extend').addEventListener('click', extend);
      panel.querySelector('#release').addEventListener('click', release);
      return;
    }
    const ids = [...state.selected];
    panel.innerHTML = `<h2>Your selection</h2>
      ${ids.length ? `<ul>${ids.map((id) => `<li>${label(id)} — ${won(state.seats.get(id).price)}</li>`).join('')}</ul><p>Total <b>${won(total(ids))}</b></p>`
        : '<p class="muted">Select available seats on the map.</p>'}
      <div class="actions"><button class="primary" id="hold" ${ids.length ? '' : 'disabled'}>Hold ${ids.length || ''} seat${ids.length === 1 ? '' : 's'}</button></div>`;
    panel.querySelector('#hold').addEventListener('click', hold);
  }

  function repaintMine(ids) { ids.forEach((id) => { const b = button(id); if (b) paint(b); }); }

  async function hold() {
    const seatIds = [...state.selected];
    try {
      const r = await api('/reservations', { method: 'POST', body: JSON.stringify({ eventId, seatIds, holdSeconds: 120 }) });
      state.hold = { seatIds: r.seatIds, expiresAt: Date.parse(r.expiresAt) };
      state.selected.clear();
      repaintMine(seatIds);
      renderPanel();
    } catch (e) {
      state.selected.clear();
      repaintMine(seatIds);
      renderPanel();
      flash(e.message);
    }
  }

  async function extend() {
    try {
      let expiresAt = state.hold.expiresAt;
      for (const id of state.hold.seatIds) {
        const r = await api(`/reservations/${eventId}/${id}/extend`, { method: 'POST', body: JSON.stringify({ seconds: 60 }) });
        expiresAt = Math.min(expiresAt === state.hold.expiresAt ? Infinity : expiresAt, Date.parse(r.expiresAt));
      }
      // The server adds to the time left, but never past the longest hold, nor past the
      // longest a hold may last from its start: say when it gave less than asked.
      const before = state.hold.expiresAt;
      state.hold.expiresAt = expiresAt;
      renderPanel();
      const left = Math.max(0, Math.round((expiresAt - Date.now()) / 1000));
      flash(expiresAt - before >= 59000 ? 'Your hold was extended by 60 s.'
        : `Your hold was extended as far as it may go: ${Math.floor(left / 60)}:${String(left % 60).padStart(2, '0')} left.`, true);
    } catch (e) { lost(e); }
  }

  async function release() {
    const ids = state.hold.seatIds;
    for (const id of ids) { try { await api(`/reservations/${eventId}/${id}`, { method: 'DELETE' }); } catch { /* already gone */ } }
    state.hold = null;
    repaintMine(ids);
    renderPanel();
  }

  function lost(e) {
    flash(e.message);
    if (e.code === 'RESERVATION_EXPIRED') { const ids = state.hold?.seatIds || []; state.hold = null; repaintMine(ids); renderPanel(); }
  }

  async function checkout() {
    const seatIds = state.hold.seatIds;
    try {
      const order = await api('/orders', { method: 'POST', headers: { 'idempotency-key': uuid() }, body: JSON.stringify({ eventId, seatIds }) });
      state.order = order;
      state.hold = null;
      repaintMine(seatIds);
      renderPanel();
      follow(order.orderId);
    } catch (e) { lost(e); }
  }

  // The order moves on by itself (the payment runs in the background): follow it.
  function follow(orderId) {
    const timer = setInterval(async () => {
      try {
        const order = await api(`/orders/${orderId}`);
        if (order.status !== state.order?.status) { state.order = order; renderPanel(); }
        if (order.status !== 'CREATED') clearInterval(timer);
      } catch { /* keep trying */ }
    }, 250);
    onLeave(() => clearInterval(timer));
  }

  // The countdown, and the hold's end when it runs out.
  const tick = setInterval(() => {
    if (!state.hold) return;
    if (Date.now() >= state.hold.expiresAt) {
      const ids = state.hold.seatIds;
      state.hold = null;
      repaintMine(ids);
      renderPanel();
      flash(MESSAGES.RESERVATION_EXPIRED);
      return;
    }
    const el = document.getElementById('countdown');
    const left = Math.max(0, Math.round((state.hold.expiresAt - Date.now()) / 1000));
    if (el) el.textContent = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, '0')}`;
  }, 250);
  onLeave(() => clearInterval(tick));

  // A hold made before a reload is still ours.
  try {
    const holds = (await api('/reservations')).filter((h) => h.eventId === eventId && !h.pinned);
    if (holds.length) state.hold = { seatIds: holds.map((h) => h.seatId), expiresAt: Math.min(...holds.map((h) => Date.parse(h.expiresAt))) };
  } catch { /* no session yet */ }

  // The live map: INIT, then SEAT_UPDATE; the browser resumes with Last-Event-ID.
  const stream = new EventSource(`${API}/events/${eventId}/seats/stream`);
  stream.addEventListener('INIT', (m) => { buildGrid(JSON.parse(m.data)); renderPanel(); });
  stream.addEventListener('SEAT_UPDATE', (m) => {
    const u = JSON.parse(m.data);
    const seat = state.seats.get(u.seatId);
    if (!seat) return;
    seat.status = u.status;
    if (u.status !== 'AVAILABLE' && state.selected.has(u.seatId) && !mine(u.seatId)) {
      state.selected.delete(u.seatId);
      flash(`${label(u.seatId)} was just taken by someone else.`);
      renderPanel();
    }
    const b = button(u.seatId);
    if (b) paint(b);
  });
  onLeave(() => stream.close());
  renderPanel();
}

// ---- my tickets -------------------------------------------------------------------

async function ticketsView() {
  let orders = [];
  try { orders = await api('/orders'); } catch (e) { if (e.status !== 401) throw e; }
  const events = new Map((await api('/events')).map((e) => [e.id, e]));
  // Seat ids are the show's own (the demo shows keep the original's database-wide ids):
  // the seat maps say where each seat is.
  const places = new Map();
  await Promise.all([...new Set(orders.map((o) => o.eventId))].map(async (id) => {
    try { for (const s of (await api(`/events/${id}/seats`)).seats) places.set(`${id}/${s.id}`, s); } catch { /* show gone */ }
  }));
  const seat = (o, id) => { const s = places.get(`${o.eventId}/${id}`); return s ? `Row ${s.r} · seat ${s.c}` : `Seat ${id}`; };
  const rows = (list) => list.map((o) => `<tr><td class="num">#${Number(o.orderId)}</td><td>${esc(events.get(o.eventId)?.title || `Show ${o.eventId}`)}</td>
      <td>${o.seatIds.map((id) => seat(o, id)).join('<br>')}</td><td class="num">${won(o.amount)}</td>
      <td><span class="status ${o.status}">${o.status}</span></td><td>${esc(new Date(o.createdAt).toLocaleString())}</td></tr>`).join('');
  const confirmed = orders.filter((o) => o.status === 'CONFIRMED');
  const others = orders.filter((o) => o.status !== 'CONFIRMED');
  const table = (list) => `<table><thead><tr><th class="num">Order</th><th>Show</th><th>Seats</th><th class="num">Paid</th><th>Status</th><th>Ordered</th></tr></thead><tbody>${rows(list)}</tbody></table>`;
  main.innerHTML = `<h1>My tickets</h1>
    ${confirmed.length ? table(confirmed) : '<p class="muted">No tickets yet. <a href="#/">Find a show</a>.</p>'}
    ${others.length ? `<h2>Other orders</h2>${table(others)}` : ''}`;
}

// ---- the operator's view -------------------------------------------------------------

/** Samples of a metric from the Prometheus text format: [{labels, value}]. */
function samples(text, name) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = line.match(/^([a-zA-Z_:][\w:]*)(\{([^}]*)\})? ([^ ]+)$/);
    if (!m || m[1] !== name) continue;
    const labels = {};
    (m[3] || '').replace(/(\w+)="([^"]*)"/g, (_, k, v) => { labels[k] = v; });
    out.push({ labels, value: Number(m[4]) });
  }
  return out;
}
const sum = (xs) => xs.reduce((a, x) => a + x.value, 0);

/** A quantile from cumulative histogram buckets (since start), in seconds. */
function quantile(text, name, q, filter = () => true) {
  const buckets = new Map();
  for (const s of samples(text, `${name}_bucket`).filter((s) => filter(s.labels))) {
    const le = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le);
    buckets.set(le, (buckets.get(le) || 0) + s.value);
  }
  const sorted = [...buckets.entries()].sort((a, b) => a[0] - b[0]);
  const count = sorted.length ? sorted[sorted.length - 1][1] : 0;
  if (!count) return null;
  const rank = q * count;
  let prev = [0, 0];
  for (const [le, n] of sorted) {
    if (n >= rank) {
      if (le === Infinity) return prev[0];
      return prev[0] + (le - prev[0]) * ((rank - prev[1]) / Math.max(n - prev[1], 1e-9));
    }
    prev = [le, n];
  }
  return null;
}
const ms = (s) => (s == null ? '–' : s < 1 ? `${(s * 1000).toFixed(1)} ms` : `${s.toFixed(2)} s`);

async function operatorView() {
  const token = sessionStorage.getItem('adminToken') || '';
  main.innerHTML = `<h1>Operator</h1>
    <form id="login"><label for="token">Admin token</label>
      <input type="password" id="token" autocomplete="off" value="${esc(token)}">
      <button class="primary">Show</button></form>
    <div id="board" aria-live="polite"></div>`;
  document.getElementById('login').addEventListener('submit', (e) => {
    e.preventDefault();
    sessionStorage.setItem('adminToken', document.getElementById('token').value.trim());
    refresh();
  });
  const board = document.getElementById('board');
  async function refresh() {
    const admin = sessionStorage.getItem('adminToken');
    if (!admin) { board.innerHTML = '<p class="muted">Enter the admin token (in the data directory, file admin-token).</p>'; return; }
    try {
      const auth = { headers: { authorization: `Bearer ${admin}` } };
      const [events, summary, backlog, metrics] = await Promise.all([
        api('/events'),
        api('/admin/orders/summary', auth),
        fetch('/actuator/backlog', auth).then((r) => r.json()),
        fetch('/actuator/prometheus', auth).then((r) => r.text()),
      ]);
      const maps = await Promise.all(events.map((e) => api(`/events/${e.id}/seats`)));
      const byEvent = new Map(summary.map((s) => [s.eventId, s]));
      const count = (map, st) => map.seats.filter((s) => s.status === st).length;
      const isRoute = (r) => (l) => l.route === `/ticketing/api/${r}`;
      const stat = (name, value) => `<div class="stat">${esc(name)}<b>${value}</b></div>`;
      const pay = sum(samples(metrics, 'payment_success_total'));
      const fail = sum(samples(metrics, 'payment_fail_total'));
      board.innerHTML = `
        <h2>Seats and orders</h2>
        <table><thead><tr><th>Show</th><th class="num">Available</th><th class="num">Held</th><th class="num">Sold</th>
          <th class="num">Orders in flight</th><th class="num">Confirmed</th><th class="num">Cancelled</th></tr></thead><tbody>
        ${events.map((e, i) => { const s = byEvent.get(e.id) || {}; return `<tr><td>${esc(e.title)}</td>
          <td class="num">${count(maps[i], 'AVAILABLE')}</td><td class="num">${count(maps[i], 'HELD')}</td><td class="num">${count(maps[i], 'SOLD')}</td>
          <td class="num">${s.created || 0}</td><td class="num">${s.confirmed || 0}</td><td class="num">${s.cancelled || 0}</td></tr>`; }).join('')}
        </tbody></table>
        <h2>Lag and SLA (since start)</h2>
        <div class="stats">
          ${stat('Backlog (events, orders, calls)', backlog.total)}
          ${stat('Orders in flight', backlog.ordersInFlight)}
          ${stat('Final state p50', ms(quantile(metrics, 'order_final_state_seconds', 0.5)))}
          ${stat('Final state p99', ms(quantile(metrics, 'order_final_state_seconds', 0.99)))}
          ${stat('Hold p99', ms(quantile(metrics, 'http_request_duration_seconds', 0.99, isRoute('reservations'))))}
          ${stat('Order p99', ms(quantile(metrics, 'http_request_duration_seconds', 0.99, isRoute('orders'))))}
          ${stat('Outbox lag p99', ms(quantile(metrics, 'outbox_publish_lag_seconds', 0.99)))}
          ${stat('Payments ok / failed', `${pay} / ${fail}`)}
          ${stat('Holds ok / conflicts', `${sum(samples(metrics, 'reservation_hold_success_total'))} / ${sum(samples(metrics, 'reservation_hold_conflict_total'))}`)}
        </div>
        <h2>Defences (since start)</h2>
        <div class="stats" id="defences">
          ${stat('Connections open', sum(samples(metrics, 'http_connections_open')))}
          ${stat('Connections refused (caps)', sum(samples(metrics, 'http_connections_refused_total')))}
          ${stat('Connections timed out', sum(samples(metrics, 'http_connections_timed_out_total')))}
          ${stat('Requests rate-limited', sum(samples(metrics, 'http_rate_limited_total')))}
          ${stat('Cross-site writes refused', sum(samples(metrics, 'http_cross_site_refused_total')))}
          ${stat('Wrong operator tokens', sum(samples(metrics, 'http_admin_auth_failed_total')))}
        </div>`;
    } catch (e) {
      board.innerHTML = `<p>${esc(e.status === 401 || e.status === 403 ? 'That is not the admin token.' : e.message)}</p>`;
    }
  }
  refresh();
  const timer = setInterval(refresh, 2000);
  onLeave(() => clearInterval(timer));
}

window.addEventListener('hashchange', route);
route();
