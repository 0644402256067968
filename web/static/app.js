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
  NOT_ENOUGH_SEATS: 'Not enough seats left that fit: try fewer, or another category.',
  RATE_LIMITED: 'Too many requests — wait a moment and try again.',
  UNAVAILABLE: 'boxoffice is busy — try again in a moment.',
  INTERNAL_ERROR: 'Something went wrong on our side. Try again.',
  QUEUE_REQUIRED: 'Your turn to buy has ended, or you have not been let through the queue yet.',
  NOT_ON_SALE: 'This show is not on sale yet.',
};

const CANCEL_REASONS = {
  PAYMENT_FAILED: 'The payment failed, so your seats were released.',
  SEATS_LOST: 'Your seats could not be kept; the payment was refunded.',
  HOLDS_LAPSED: 'Your seats could not be kept; the payment was refunded.',
  EVENT_RESET: 'The show was reset by the operator; the payment was refunded.',
  REFUNDED: 'The order was refunded by the box office; its tickets no longer open the door.',
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
  const show = hash.match(/^#\/(events|queue)\/(\d+)$/);
  try {
    if (show) await showView(Number(show[2]));
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
      <p>${esc(e.description)}</p>${e.rows > 0 ? `<p class="muted">${e.rows} rows, up to ${e.cols} seats a row</p>` : ''}</li>`).join('')}</ul>`;
}

// ---- the waiting room ----------------------------------------------------------------

/** Admission tokens of the shows the visitor was let through for (the server also sets
 * them as cookies; holds and orders carry them in the Admission-Token header too). */
const admissionKey = (eventId) => `admission-${eventId}`;
function admissionHeaders(eventId) {
  const token = sessionStorage.getItem(admissionKey(eventId));
  return token ? { 'admission-token': token } : {};
}
function remember(eventId, place) {
  if (place.admissionToken) sessionStorage.setItem(admissionKey(eventId), place.admissionToken);
  else sessionStorage.removeItem(admissionKey(eventId));
}

/** `12 s`, `4 min`, `1 h 05 min`: a wait as a person reads it. */
function duration(secs) {
  if (secs == null) return '–';
  if (secs < 60) return `${Math.max(0, Math.round(secs))} s`;
  if (secs < 3600) return `${Math.round(secs / 60)} min`;
  return `${Math.floor(secs / 3600)} h ${String(Math.round((secs % 3600) / 60)).padStart(2, '0')} min`;
}
const clock = (secs) => (secs >= 3600 ? `${Math.floor(secs / 3600)}:${mmss(secs % 3600).padStart(5, '0')}` : mmss(secs));

/** Joins the show's queue, if it has a waiting room. `{ until }` (when the admission
 * ends, if there is a room) when the visitor may see the seat map; `null` after
 * showing the waiting page, which opens the seat map itself when they are let through. */
async function queueGate(event) {
  let place;
  try {
    place = await api(`/queue/${event.id}/join`, { method: 'POST', body: '{}' });
  } catch (e) {
    if (e.status === 404) return {}; // no waiting room
    throw e;
  }
  remember(event.id, place);
  if (place.status === 'ADMITTED') return { until: place.admissionExpiresAt ? Date.parse(place.admissionExpiresAt) : null };
  waitingView(event, place);
  return null;
}

const QUEUE_TEXT = {
  PREQUEUE: 'You are in the queue. The sale has not opened yet: when it does, everyone here gets a place in a random order.',
  WAITING: 'You are in the queue. Keep this page open: you are let through in turn.',
  ADMITTED: 'It is your turn! Opening the seat map…',
  EXPIRED: 'Your place has lapsed: the page was closed for too long, or your turn to buy has ended.',
};

/** The waiting page: the status, the countdown to the on-sale, the place, the people
 * ahead, the estimated wait and a progress bar, live over the place's stream (polling
 * when the stream fails). */
function waitingView(event, first) {
  const eventId = event.id;
  main.innerHTML = `<h1>${esc(event.title)}</h1>
    <section class="card queue" aria-labelledby="queue-title">
      <h2 id="queue-title">Waiting room</h2>
      <p id="queue-status" role="status" aria-live="polite" aria-atomic="true"></p>
      <p id="queue-sale" hidden>The sale opens in <span class="countdown" id="queue-countdown" role="timer" aria-live="off">–</span></p>
      <dl class="figures">
        <div><dt>Your place</dt><dd id="queue-position">–</dd></div>
        <div><dt>People ahead</dt><dd id="queue-ahead">–</dd></div>
        <div><dt>Estimated wait</dt><dd id="queue-wait">–</dd></div>
      </dl>
      <label for="queue-progress">Progress</label>
      <progress id="queue-progress" max="100" value="0">0%</progress>
      <p class="muted">You keep your place while this page is open. Opening it in several tabs does not move you up.</p>
    </section>`;
  const $ = (id) => document.getElementById(id);
  let saleAt = null;
  let firstAhead = null;
  let done = false;

  async function letThrough() {
    done = true;
    // The answer of `me` sets the admission cookie; then the seat map.
    try { remember(eventId, await api(`/queue/${eventId}/me`)); } catch { /* the stream's token will do */ }
    route();
  }

  function show(place) {
    if (done) return;
    const status = $('queue-status');
    const text = QUEUE_TEXT[place.status] || place.status;
    const ahead = place.status === 'WAITING' ? ` ${place.ahead} ${place.ahead === 1 ? 'person is' : 'people are'} ahead of you.` : '';
    if (status.textContent !== text + ahead) status.textContent = text + ahead;
    status.dataset.status = place.status;
    const prequeue = place.status === 'PREQUEUE';
    $('queue-sale').hidden = !prequeue || place.estimatedWaitSeconds == null;
    saleAt = prequeue && place.estimatedWaitSeconds != null ? Date.now() + place.estimatedWaitSeconds * 1000 : null;
    tick();
    $('queue-position').textContent = place.position ?? '–';
    $('queue-ahead').textContent = place.ahead ?? '–';
    $('queue-wait').textContent = prequeue ? 'after the on-sale' : place.status === 'WAITING' ? `about ${duration(place.estimatedWaitSeconds)}` : '–';
    let progress = 0;
    if (place.status === 'WAITING' && place.ahead != null) {
      firstAhead = Math.max(firstAhead ?? 0, place.ahead + 1);
      progress = Math.round(100 * (1 - place.ahead / firstAhead));
    } else if (place.status === 'ADMITTED') progress = 100;
    $('queue-progress').value = progress;
    $('queue-progress').textContent = `${progress}%`;
    if (place.status === 'ADMITTED') { remember(eventId, place); letThrough(); }
    if (place.status === 'EXPIRED') { done = true; stop(); }
  }

  function tick() {
    if (saleAt == null) return;
    const left = Math.max(0, Math.round((saleAt - Date.now()) / 1000));
    $('queue-countdown').textContent = left > 0 ? clock(left) : 'any moment now';
  }

  let poll = null;
  const stream = new EventSource(`${API}/queue/${eventId}/me/stream`);
  stream.addEventListener('place', (m) => show(JSON.parse(m.data)));
  stream.onerror = () => {
    // The stream ends once the visitor is through; otherwise ask every 2 s instead.
    stream.close();
    if (done || poll) return;
    poll = setInterval(async () => { try { show(await api(`/queue/${eventId}/me`)); } catch { /* keep asking */ } }, 2000);
  };
  const countdown = setInterval(tick, 1000);
  function stop() { stream.close(); clearInterval(poll); clearInterval(countdown); }
  onLeave(stop);
  show(first);
}

// ---- one show: the live seat map, holds, checkout ------------------------------------

const STATUS_TEXT = { AVAILABLE: 'available', HELD: 'held', SOLD: 'sold' };
const MAX_BEST = 8;

/** What the buyer is told a seat or standing place is, and its price, from the seat map:
 * a grid's row and column, a venue's section, row and label; a standing place (not on the
 * map: areas are counts) by its area, its id being after the seats', area by area. */
function placesOf(map) {
  const seats = new Map(map.seats.map((s) => [s.id, s]));
  const last = map.seats.reduce((m, s) => Math.max(m, s.id), 0);
  return (id) => {
    const s = seats.get(id);
    if (s) return { text: s.section ? `${s.section} · row ${s.row} · seat ${s.label}` : `Row ${s.r} · seat ${s.c}`, price: s.price };
    let first = last + 1;
    for (const a of map.areas || []) {
      if (id >= first && id < first + a.capacity) return { text: `${a.name} · standing`, price: a.price };
      first += a.capacity;
    }
    return { text: `Seat ${id}`, price: 0 };
  };
}

/** List items for seats and places, one line per seat and per area's places (× n). */
function placeLines(ids, place, withPrice = true) {
  const lines = new Map();
  for (const id of ids) {
    const p = place(id);
    const line = lines.get(p.text) || { n: 0, price: 0 };
    lines.set(p.text, { n: line.n + 1, price: line.price + p.price });
  }
  return [...lines].map(([text, l]) => `<li>${esc(text)}${l.n > 1 ? ` × ${l.n}` : ''}${withPrice ? ` — ${won(l.price)}` : ''}</li>`).join('');
}

/** A seat as a screen reader names it: "Row 3, seat 4", or a venue's "Stalls row A, seat 12". */
const seatName = (s) => (s.section ? `${s.section} row ${s.row}, seat ${s.label}` : `Row ${s.r}, seat ${s.c}`);
const FLAGS = [['accessible', 'wheelchair space'], ['companion', 'companion seat'], ['restrictedView', 'restricted view']];
const mmss = (left) => `${Math.floor(left / 60)}:${String(left % 60).padStart(2, '0')}`;

async function showView(eventId) {
  const event = await api(`/events/${eventId}`);
  // A show whose waiting room is on shows the queue first; the seat map comes when the
  // visitor is let through.
  const admitted = await queueGate(event);
  if (!admitted) return;
  /** What holds and orders of this show carry: the admission token, when there is one. */
  const withToken = (headers = {}) => ({ ...headers, ...admissionHeaders(eventId) });
  /** A hold or order refused for want of a turn: back to the queue. */
  const requeue = (e) => { if (e.code === 'QUEUE_REQUIRED') setTimeout(route, 2000); };
  const state = { seats: new Map(), selected: new Set(), hold: null, order: null, prices: [], map: null, place: () => ({ text: '', price: 0 }) };
  main.innerHTML = `
    <h1>${esc(event.title)}</h1>
    ${admitted.until ? `<p class="card admitted" id="admitted">You are through the queue: your turn to buy lasts until
      <b>${esc(new Date(admitted.until).toLocaleTimeString())}</b>.</p>` : ''}
    <div class="show">
      <section aria-labelledby="map-title">
        <h2 id="map-title" class="muted">${esc(new Date(event.dateTime).toLocaleString())} · choose up to ${MAX_SEATS} seats</h2>
        <div id="map"></div>
        <ul class="legend" id="legend" aria-label="Legend"></ul>
      </section>
      <div class="side">
        <aside class="panel card" id="panel" aria-live="polite"></aside>
        <div id="more"></div>
      </div>
    </div>`;
  const mapBox = document.getElementById('map');
  const panel = document.getElementById('panel');
  const more = document.getElementById('more');

  const color = (price) => {
    const [lo, hi] = [state.prices[0], state.prices[state.prices.length - 1]];
    const f = hi > lo ? (price - lo) / (hi - lo) : 0.5;
    return `hsl(${215 + f * 45} 55% ${66 - f * 30}%)`;
  };
  const mine = (id) => !!state.hold && state.hold.seatIds.includes(id);
  const category = (key) => (state.map.categories || []).find((c) => c.key === key);

  function paint(el) {
    const seat = state.seats.get(Number(el.dataset.id));
    el.dataset.status = seat.status;
    el.dataset.mine = String(mine(seat.id));
    el.setAttribute('aria-pressed', String(state.selected.has(seat.id)));
    const cat = seat.category && category(seat.category);
    const flags = FLAGS.filter(([f]) => seat[f]).map(([, text]) => `, ${text}`).join('');
    el.setAttribute('aria-label', `${seatName(seat)}, ${cat ? `${cat.name} ` : ''}${won(seat.price)}${flags}, ${mine(seat.id) ? 'held by you' : STATUS_TEXT[seat.status]}`);
  }

  function buildMap(map) {
    if (state.map && map.seats.length === state.seats.size && map.seats.every((s) => state.seats.has(s.id))) {
      // The whole map again (a reconnect, or the stream fell behind): the same seats, so
      // the drawing, its zoom and the forms stay; statuses and counts are brought up to date.
      for (const s of map.seats) state.seats.get(s.id).status = s.status;
      for (const id of state.selected) if (state.seats.get(id).status !== 'AVAILABLE') state.selected.delete(id);
      mapBox.querySelectorAll('[data-id]').forEach(paint);
      for (const a of map.areas || []) areaCount(a.id, a.available);
      return;
    }
    state.map = map;
    state.place = placesOf(map);
    state.seats = new Map(map.seats.map((s) => [s.id, s]));
    state.prices = [...new Set(map.seats.map((s) => s.price))].sort((a, b) => a - b);
    const venue = map.seats.length > 0 && map.seats.every((s) => Number.isFinite(s.x) && Number.isFinite(s.y));
    if (venue) drawVenue(map, mapBox, toggle);
    else if (map.seats.length) drawGrid(map);
    else mapBox.innerHTML = '<p class="muted">No seats to choose: this show sells standing tickets.</p>';
    mapBox.querySelectorAll('[data-id]').forEach(paint);
    document.getElementById('legend').innerHTML = legend(map, venue);
    renderMore();
  }

  function drawGrid(map) {
    mapBox.innerHTML = `<div class="stage" aria-hidden="true">STAGE</div>
      <div class="grid" id="grid" role="grid" aria-label="Seat map" style="grid-template-columns: repeat(${map.cols}, 1fr)"></div>`;
    const grid = document.getElementById('grid');
    for (const seat of map.seats) {
      const b = document.createElement('button');
      b.className = 'seat';
      b.dataset.id = seat.id;
      b.style.background = color(seat.price);
      b.textContent = seat.c;
      b.addEventListener('click', () => toggle(seat.id));
      grid.appendChild(b);
    }
    // Arrow keys move through the grid, drawn row by row (seat ids need not be 1, 2, 3…:
    // the demo shows keep the original's).
    grid.addEventListener('keydown', (e) => {
      const moves = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -map.cols, ArrowDown: map.cols };
      if (!(e.key in moves) || !e.target.dataset.id) return;
      const buttons = [...grid.children];
      const next = buttons[buttons.indexOf(e.target) + moves[e.key]];
      if (next) { next.focus(); e.preventDefault(); }
    });
  }

  function legend(map, venue) {
    if (!map.seats.length) return '';
    const statuses = venue
      ? `<li><i class="held"></i>held</li><li><i style="background:var(--sold)"></i>sold</li><li><i style="background:var(--mine)"></i>yours</li>
         <li><b aria-hidden="true">♿</b> wheelchair space</li><li><i class="companion" style="background:var(--muted)"></i>companion seat</li>
         <li><i class="restricted" style="background:var(--muted)"></i>restricted view</li>`
      : `<li><i style="background:var(--held)"></i>held</li><li><i style="background:var(--sold)"></i>sold</li><li><i style="background:var(--mine)"></i>yours</li>`;
    const cats = (map.categories || []).map((c) => `<li><i style="background:${esc(c.colour)}"></i>${esc(c.name)} ${won(c.price)}</li>`).join('');
    return (venue ? cats : '<li><i style="background:hsl(240 55% 50%)"></i>available (darker is dearer)</li>') + statuses;
  }

  const seatEl = (id) => mapBox.querySelector(`[data-id="${id}"]`);

  function toggle(id) {
    const seat = state.seats.get(id);
    if (state.hold || state.order) return flash('Finish or release your current hold first.');
    if (seat.status !== 'AVAILABLE') return flash(seat.status === 'SOLD' ? MESSAGES.SEAT_SOLD : 'That seat is held by someone else.');
    if (state.selected.has(id)) state.selected.delete(id);
    else if (state.selected.size >= MAX_SEATS) return flash(`Up to ${MAX_SEATS} seats at once.`);
    else state.selected.add(id);
    paint(seatEl(id));
    renderPanel();
  }

  const total = (ids) => ids.reduce((sum, id) => sum + state.place(id).price, 0);

  function renderPanel() {
    more.hidden = !!(state.hold || state.order);
    if (state.order) {
      const o = state.order;
      const text = o.status === 'CONFIRMED' ? 'Your tickets are confirmed. Enjoy the show!'
        : o.status === 'CANCELLED' ? (CANCEL_REASONS[o.cancelReason] || 'The order was cancelled.')
        : 'Taking the payment…';
      panel.innerHTML = `<h2>Your order <span id="order-number">#${Number(o.orderId)}</span></h2>
        <p><span class="status ${o.status}" id="order-status">${o.status}</span></p>
        <p>${esc(text)}</p>
        <ul>${placeLines(o.seatIds, state.place, false)}</ul>
        <p>Total <b>${won(o.amount)}</b></p>
        <div class="actions">${o.status === 'CREATED' ? '' : '<button class="secondary" id="again">Buy more</button> <a href="#/tickets">My tickets</a>'}</div>`;
      panel.querySelector('#again')?.addEventListener('click', () => { state.order = null; renderPanel(); });
      return;
    }
    if (state.hold) {
      const left = Math.max(0, Math.round((state.hold.expiresAt - Date.now()) / 1000));
      panel.innerHTML = `<h2>Held for you</h2>
        ${state.hold.note ? `<p id="hold-note">${esc(state.hold.note)}</p>` : ''}
        <ul>${placeLines(state.hold.seatIds, state.place)}</ul>
        <p>Total <b>${won(total(state.hold.seatIds))}</b></p>
        <p>Expires in <span class="countdown" id="countdown" role="timer">${mmss(left)}</span></p>
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
      ${ids.length ? `<ul>${placeLines(ids, state.place)}</ul><p>Total <b>${won(total(ids))}</b></p>`
        : '<p class="muted">Select available seats on the map.</p>'}
      <div class="actions"><button class="primary" id="hold" ${ids.length ? '' : 'disabled'}>Hold ${ids.length || ''} seat${ids.length === 1 ? '' : 's'}</button></div>`;
    panel.querySelector('#hold').addEventListener('click', hold);
  }

  // Beside picking seats: "best available" and the standing areas.
  function renderMore() {
    const cats = state.map.categories || [];
    const areas = state.map.areas || [];
    more.innerHTML = `
      ${state.map.seats.length ? `<section class="card" aria-labelledby="best-title">
        <h2 id="best-title">Best available</h2>
        <form id="best">
          <label for="best-quantity">Seats</label>
          <input type="number" id="best-quantity" min="1" max="${MAX_BEST}" value="2" required>
          ${cats.length ? `<label for="best-category">Category</label>
          <select id="best-category"><option value="">Any category</option>
            ${cats.map((c) => `<option value="${esc(c.key)}">${esc(c.name)} — ${won(c.price)}</option>`).join('')}</select>` : ''}
          <label class="check"><input type="checkbox" id="best-accessible"> Wheelchair spaces (with companion seats)</label>
          <div class="actions"><button class="primary">Hold best available</button></div>
          <p id="best-result" class="result" role="status" aria-live="polite"></p>
        </form>
      </section>` : ''}
      ${areas.length ? `<section class="card" aria-labelledby="standing-title">
        <h2 id="standing-title">Standing areas</h2>
        ${areas.map((a) => `<form class="area" data-area="${a.id}" aria-labelledby="area-${a.id}-name">
          <h3 id="area-${a.id}-name">${esc(a.name)}</h3>
          <p>${won(a.price)} each · <b id="area-${a.id}-left">${a.available}</b> of ${a.capacity} places left</p>
          <label for="area-${a.id}-quantity">Standing tickets</label>
          <input type="number" id="area-${a.id}-quantity" min="1" max="${MAX_SEATS}" value="2" required>
          <div class="actions"><button class="primary" aria-describedby="area-${a.id}-name">Hold standing tickets</button></div>
        </form>`).join('')}
        <p id="standing-result" class="result" role="status" aria-live="polite"></p>
      </section>` : ''}`;
    more.querySelector('#best')?.addEventListener('submit', (e) => { e.preventDefault(); holdBest(); });
    more.querySelectorAll('form.area').forEach((f) => f.addEventListener('submit', (e) => { e.preventDefault(); holdStanding(Number(f.dataset.area)); }));
    more.hidden = !!(state.hold || state.order);
  }

  function areaCount(areaId, available) {
    const area = (state.map?.areas || []).find((a) => a.id === areaId);
    if (!area) return;
    area.available = available;
    const left = document.getElementById(`area-${areaId}-left`);
    if (left) left.textContent = available;
  }

  function repaintMine(ids) { ids.forEach((id) => { const el = seatEl(id); if (el) paint(el); }); }

  /** Holds what `body` asks for; the seats held are then the buyer's. */
  async function reserve(body, note) {
    const r = await api('/reservations', { method: 'POST', headers: withToken(), body: JSON.stringify({ eventId, holdSeconds: 120, ...body }) });
    state.hold = { seatIds: r.seatIds, expiresAt: Date.parse(r.expiresAt), note: note(r) };
    state.selected.clear();
    repaintMine(r.seatIds);
    renderPanel();
  }

  async function hold() {
    const seatIds = [...state.selected];
    try {
      await reserve({ seatIds }, () => '');
    } catch (e) {
      state.selected.clear();
      repaintMine(seatIds);
      renderPanel();
      flash(e.message);
      requeue(e);
    }
  }

  async function holdBest() {
    const quantity = Number(document.getElementById('best-quantity').value);
    const key = document.getElementById('best-category')?.value;
    const accessible = document.getElementById('best-accessible').checked;
    const result = document.getElementById('best-result');
    if (!(quantity >= 1 && quantity <= MAX_BEST)) { result.textContent = `Choose 1 to ${MAX_BEST} seats.`; return; }
    const bestAvailable = { quantity, ...(key ? { categories: [key] } : {}), ...(accessible ? { accessible } : {}) };
    result.textContent = 'Finding the best seats…';
    try {
      await reserve({ bestAvailable }, (r) => (r.seatIds.length === 1 ? 'The best seat left is yours for now.'
        : r.adjacent ? `Your ${r.seatIds.length} seats are together, side by side in one row.`
          : `Your ${r.seatIds.length} seats are the best left, but not all side by side.`));
      result.textContent = '';
    } catch (e) {
      const what = `${quantity} seat${quantity === 1 ? '' : 's'}${accessible ? ' with wheelchair spaces' : ''}${key ? ` in ${category(key)?.name || key}` : ''}`;
      result.textContent = e.code === 'NOT_ENOUGH_SEATS' ? `Not enough seats left for ${what}. Try fewer seats or another category.` : e.message;
      flash(result.textContent);
      requeue(e);
    }
  }

  async function holdStanding(areaId) {
    const area = state.map.areas.find((a) => a.id === areaId);
    const quantity = Number(document.getElementById(`area-${areaId}-quantity`).value);
    const result = document.getElementById('standing-result');
    if (!(quantity >= 1 && quantity <= MAX_SEATS)) { result.textContent = `Choose 1 to ${MAX_SEATS} tickets.`; return; }
    try {
      await reserve({ areaId, quantity }, (r) => `${r.seatIds.length} standing place${r.seatIds.length === 1 ? '' : 's'} in ${area.name} held for you.`);
      result.textContent = '';
    } catch (e) {
      result.textContent = e.code === 'NOT_ENOUGH_SEATS' ? `Not enough places left in ${area.name}: ${area.available} left.` : e.message;
      flash(result.textContent);
      requeue(e);
    }
  }

  async function extend() {
    try {
      let expiresAt = state.hold.expiresAt;
      for (const id of state.hold.seatIds) {
        const r = await api(`/reservations/${eventId}/${id}/extend`, { method: 'POST', headers: withToken(), body: JSON.stringify({ seconds: 60 }) });
        expiresAt = Math.min(expiresAt === state.hold.expiresAt ? Infinity : expiresAt, Date.parse(r.expiresAt));
      }
      // The server adds to the time left, but never past the longest hold, nor past the
      // longest a hold may last from its start: say when it gave less than asked.
      const before = state.hold.expiresAt;
      state.hold.expiresAt = expiresAt;
      renderPanel();
      const left = Math.max(0, Math.round((expiresAt - Date.now()) / 1000));
      flash(expiresAt - before >= 59000 ? 'Your hold was extended by 60 s.'
        : `Your hold was extended as far as it may go: ${mmss(left)} left.`, true);
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
    requeue(e);
    if (e.code === 'RESERVATION_EXPIRED') { const ids = state.hold?.seatIds || []; state.hold = null; repaintMine(ids); renderPanel(); }
  }

  async function checkout() {
    const seatIds = state.hold.seatIds;
    try {
      const order = await api('/orders', { method: 'POST', headers: withToken({ 'idempotency-key': uuid() }), body: JSON.stringify({ eventId, seatIds }) });
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
    if (el) el.textContent = mmss(left);
  }, 250);
  onLeave(() => clearInterval(tick));

  // A hold made before a reload is still ours.
  try {
    const holds = (await api('/reservations')).filter((h) => h.eventId === eventId && !h.pinned);
    if (holds.length) state.hold = { seatIds: holds.map((h) => h.seatId), expiresAt: Math.min(...holds.map((h) => Date.parse(h.expiresAt))) };
  } catch { /* no session yet */ }

  // The live map: INIT, then SEAT_UPDATE (and AREA_UPDATE for standing areas); the
  // browser resumes with Last-Event-ID.
  const stream = new EventSource(`${API}/events/${eventId}/seats/stream`);
  stream.addEventListener('INIT', (m) => { buildMap(JSON.parse(m.data)); renderPanel(); });
  stream.addEventListener('SEAT_UPDATE', (m) => {
    const u = JSON.parse(m.data);
    const seat = state.seats.get(u.seatId);
    if (!seat) return;
    seat.status = u.status;
    if (u.status !== 'AVAILABLE' && state.selected.has(u.seatId) && !mine(u.seatId)) {
      state.selected.delete(u.seatId);
      flash(`${state.place(u.seatId).text} was just taken by someone else.`);
      renderPanel();
    }
    const el = seatEl(u.seatId);
    if (el) paint(el);
  });
  stream.addEventListener('AREA_UPDATE', (m) => { const u = JSON.parse(m.data); areaCount(u.areaId, u.available); });
  onLeave(() => stream.close());
  renderPanel();
}

// ---- a venue drawn in SVG from its seats' x/y, zoomed and panned ---------------------

const SVG_NS = 'http://www.w3.org/2000/svg';
const num = (v) => Math.round(v * 100) / 100;

/** The venue's rows in layout order (`r` counts rows across the venue, `c` orders a row). */
function venueRows(seats) {
  const rows = [];
  for (const s of [...seats].sort((a, b) => a.r - b.r || a.c - b.c)) {
    const row = rows[rows.length - 1];
    if (row && row.r === s.r) row.seats.push(s);
    else rows.push({ r: s.r, section: s.section, label: s.row, seats: [s] });
  }
  return rows;
}

/** Draws the venue into `box`: each seat a focusable `[data-id]` shape, coloured by its
 * category; zoom (+/−, pinch, ctrl+wheel) and pan (drag) by the viewBox; arrow keys move
 * along a row and to the nearest seat of the next row. */
function drawVenue(map, box, toggle) {
  const rows = venueRows(map.seats);
  const colour = new Map((map.categories || []).map((c) => [c.key, c.colour]));
  const gaps = rows.flatMap((row) => row.seats.slice(1).map((s, i) => Math.hypot(s.x - row.seats[i].x, s.y - row.seats[i].y)));
  gaps.sort((a, b) => a - b);
  const pitch = gaps.length ? gaps[Math.floor(gaps.length / 2)] || 1 : 10;
  const rad = pitch * 0.42;
  const xs = map.seats.map((s) => s.x);
  const ys = map.seats.map((s) => s.y);
  const [minX, maxX, minY, maxY] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const stage = { w: Math.max((maxX - minX) * 0.4, pitch * 8), h: pitch * 4 };
  stage.x = (minX + maxX) / 2 - stage.w / 2;
  stage.y = minY - pitch * 2.5 - stage.h;
  const pad = pitch * 3;
  const base = { x: minX - pad, y: stage.y - pad, w: maxX - minX + 2 * pad, h: maxY - stage.y + 2 * pad };

  const shape = (s) => {
    const fill = `style="fill:${esc(colour.get(s.category) || '#7986cb')}"`;
    if (s.accessible) {
      return `<rect class="sh" x="${num(-rad)}" y="${num(-rad)}" width="${num(2 * rad)}" height="${num(2 * rad)}" rx="${num(rad * 0.3)}" ${fill}/>`
        + `<text class="glyph" y="${num(rad * 0.62)}" font-size="${num(rad * 1.7)}">♿</text>`;
    }
    const mark = s.companion ? `<circle class="mark" r="${num(rad * 0.38)}"/>`
      : s.restrictedView ? `<path class="mark-line" d="M${num(-rad * 0.7)} ${num(rad * 0.7)}L${num(rad * 0.7)} ${num(-rad * 0.7)}"/>` : '';
    return `<circle class="sh" r="${num(rad)}" ${fill}/>${mark}`;
  };
  const sections = [];
  for (const row of rows) {
    if (!sections.length || sections[sections.length - 1].name !== row.section) sections.push({ name: row.section, rows: [] });
    sections[sections.length - 1].rows.push(row);
  }
  // A section's name in front of its first row's middle; a row's label before its first seat.
  const sectionLabel = (sec) => {
    const front = sec.rows[0].seats;
    const mid = front[Math.floor(front.length / 2)];
    return `<text class="sec-label" x="${num(mid.x)}" y="${num(mid.y - pitch * 1.6)}" font-size="${num(pitch * 1.6)}">${esc(sec.name)}</text>`;
  };
  const rowLabel = (row) => {
    const [a, b] = [row.seats[0], row.seats[1] || { x: row.seats[0].x + 1, y: row.seats[0].y }];
    const d = Math.hypot(b.x - a.x, b.y - a.y) || 1;
    const [x, y] = [a.x - ((b.x - a.x) / d) * pitch * 1.3, a.y - ((b.y - a.y) / d) * pitch * 1.3];
    return `<text class="row-label" x="${num(x)}" y="${num(y + pitch * 0.3)}" font-size="${num(pitch * 0.85)}">${esc(row.label)}</text>`;
  };
  box.innerHTML = `<div class="venue">
    <div class="zoom" role="group" aria-label="Zoom the seat map">
      <button type="button" class="secondary" data-zoom="in" aria-label="Zoom in">+</button>
      <button type="button" class="secondary" data-zoom="out" aria-label="Zoom out">−</button>
      <button type="button" class="secondary" data-zoom="reset">Fit</button>
    </div>
    <svg xmlns="${SVG_NS}" id="venue" role="group" aria-label="Seat map" style="aspect-ratio:${num(base.w)} / ${num(base.h)}">
      <rect class="stage-shape" x="${num(stage.x)}" y="${num(stage.y)}" width="${num(stage.w)}" height="${num(stage.h)}" rx="${num(pitch)}"/>
      <text class="stage-label" x="${num(stage.x + stage.w / 2)}" y="${num(stage.y + stage.h * 0.62)}" font-size="${num(pitch * 1.5)}">STAGE</text>
      ${sections.map((sec) => `<g class="section" role="group" aria-label="${esc(sec.name)}">${sectionLabel(sec)}
        ${sec.rows.map((row) => `${rowLabel(row)}${row.seats.map((s) => `<g class="vseat" role="button" tabindex="-1" data-id="${s.id}" transform="translate(${num(s.x)} ${num(s.y)})">${shape(s)}</g>`).join('')}`).join('')}</g>`).join('')}
    </svg></div>`;
  const svg = box.querySelector('svg');
  let vb = { ...base };
  const show = () => svg.setAttribute('viewBox', `${num(vb.x)} ${num(vb.y)} ${num(vb.w)} ${num(vb.h)}`);
  /** Zooms by `f` (> 1: in) around the drawing point (cx, cy), within 1× and 12×; the
   * view's centre stays over the venue. */
  function zoom(f, cx = vb.x + vb.w / 2, cy = vb.y + vb.h / 2) {
    const w = Math.min(base.w, Math.max(base.w / 12, vb.w / f));
    const k = w / vb.w;
    vb = { x: cx - (cx - vb.x) * k, y: cy - (cy - vb.y) * k, w, h: vb.h * k };
    pan(0, 0);
  }
  function pan(dx, dy) {
    const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
    vb.x = clamp(vb.x + dx, base.x - vb.w / 2, base.x + base.w - vb.w / 2);
    vb.y = clamp(vb.y + dy, base.y - vb.h / 2, base.y + base.h - vb.h / 2);
    show();
  }
  const units = () => vb.w / (svg.clientWidth || 1); // drawing units per CSS pixel
  const at = (x, y) => { const r = svg.getBoundingClientRect(); return [vb.x + (x - r.left) * units(), vb.y + (y - r.top) * units()]; };
  show();

  box.querySelector('.zoom').addEventListener('click', (e) => {
    const how = e.target.closest('[data-zoom]')?.dataset.zoom;
    if (how === 'in') zoom(1.6);
    else if (how === 'out') zoom(1 / 1.6);
    else if (how === 'reset') { vb = { ...base }; show(); }
  });
  svg.addEventListener('wheel', (e) => {
    if (!e.ctrlKey && !e.metaKey) return; // a pinch on a touchpad; plain wheels scroll the page
    e.preventDefault();
    zoom(Math.exp(-e.deltaY * 0.01), ...at(e.clientX, e.clientY));
  }, { passive: false });

  // One finger (or the mouse) drags the view, two pinch it; a tap that did not move is a click.
  const pointers = new Map();
  let moved = 0;
  svg.addEventListener('pointerdown', (e) => {
    pointers.set(e.pointerId, { x: e.clientX, y: e.clientY });
    if (pointers.size === 1) moved = 0;
  });
  svg.addEventListener('pointermove', (e) => {
    const last = pointers.get(e.pointerId);
    if (!last) return;
    const before = [...pointers.values()].map((p) => ({ ...p }));
    last.x = e.clientX;
    last.y = e.clientY;
    if (pointers.size === 1) {
      moved += Math.hypot(e.clientX - before[0].x, e.clientY - before[0].y);
      if (moved < 6) return;
      try { svg.setPointerCapture(e.pointerId); } catch { /* synthetic pointer */ }
      pan(-(e.clientX - before[0].x) * units(), -(e.clientY - before[0].y) * units());
    } else if (pointers.size === 2) {
      moved = Infinity;
      const now = [...pointers.values()];
      const spread = (ps) => Math.hypot(ps[0].x - ps[1].x, ps[0].y - ps[1].y) || 1;
      const mid = (ps) => [(ps[0].x + ps[1].x) / 2, (ps[0].y + ps[1].y) / 2];
      const [mx, my] = mid(now);
      const [bx, by] = mid(before);
      pan(-(mx - bx) * units(), -(my - by) * units());
      zoom(spread(now) / spread(before), ...at(mx, my));
    }
    e.preventDefault();
  });
  const lift = (e) => { pointers.delete(e.pointerId); };
  svg.addEventListener('pointerup', lift);
  svg.addEventListener('pointercancel', lift);
  svg.addEventListener('click', (e) => {
    const el = e.target.closest('[data-id]');
    if (el && moved < 6) toggle(Number(el.dataset.id));
  });

  // The keyboard: one seat in the tab order at a time (roving tabindex).
  const place = new Map();
  rows.forEach((row, ri) => row.seats.forEach((s, si) => place.set(s.id, [ri, si])));
  const el = (s) => svg.querySelector(`[data-id="${s.id}"]`);
  let current = el(rows[0].seats[0]);
  current.tabIndex = 0;
  function focusSeat(s) {
    current.tabIndex = -1;
    current = el(s);
    current.tabIndex = 0;
    current.focus();
    if (s.x < vb.x || s.x > vb.x + vb.w || s.y < vb.y || s.y > vb.y + vb.h) pan(s.x - (vb.x + vb.w / 2), s.y - (vb.y + vb.h / 2));
  }
  svg.addEventListener('keydown', (e) => {
    const target = e.target.closest('[data-id]');
    if (!target) return;
    const [ri, si] = place.get(Number(target.dataset.id));
    const seat = rows[ri].seats[si];
    if (e.key === 'Enter' || e.key === ' ') { toggle(seat.id); e.preventDefault(); return; }
    let next;
    if (e.key === 'ArrowLeft') next = rows[ri].seats[si - 1];
    else if (e.key === 'ArrowRight') next = rows[ri].seats[si + 1];
    else if (e.key === 'ArrowUp' || e.key === 'ArrowDown') {
      const row = rows[ri + (e.key === 'ArrowUp' ? -1 : 1)];
      next = row && row.seats.reduce((a, b) => (Math.abs(b.x - seat.x) < Math.abs(a.x - seat.x) ? b : a));
    } else return;
    e.preventDefault();
    if (next) focusSeat(next);
  });
  svg.addEventListener('focusin', (e) => {
    const target = e.target.closest('[data-id]');
    if (target && target !== current) { current.tabIndex = -1; current = target; current.tabIndex = 0; }
  });
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
    try { places.set(id, placesOf(await api(`/events/${id}/seats`))); } catch { /* show gone */ }
  }));
  const unknown = (id) => ({ text: `Seat ${id}`, price: 0 });
  const rows = (list) => list.map((o) => `<tr><td class="num">#${Number(o.orderId)}</td><td>${esc(events.get(o.eventId)?.title || `Show ${o.eventId}`)}</td>
      <td><ul class="plain">${placeLines(o.seatIds, places.get(o.eventId) || unknown, false)}</ul></td><td class="num">${won(o.amount)}</td>
      <td><span class="status ${o.status}">${o.status}</span></td><td>${esc(new Date(o.createdAt).toLocaleString())}</td></tr>`).join('');
  const confirmed = orders.filter((o) => o.status === 'CONFIRMED');
  const others = orders.filter((o) => o.status !== 'CONFIRMED');
  const table = (list) => `<table><thead><tr><th class="num">Order</th><th>Show</th><th>Seats</th><th class="num">Paid</th><th>Status</th><th>Ordered</th></tr></thead><tbody>${rows(list)}</tbody></table>`;
  // Each confirmed order's tickets, each with its QR code to show at the door.
  const tickets = await Promise.all(confirmed.map(async (o) => {
    try { return { order: o, list: await api(`/orders/${o.orderId}/tickets`) }; } catch { return { order: o, list: [] }; }
  }));
  const cards = tickets.map(({ order, list }) => list.map((t) => `<li class="ticket card" data-status="${esc(t.status)}">
      <img src="${API}/orders/${Number(order.orderId)}/tickets/${encodeURIComponent(t.ticketId)}/qr.svg" width="180" height="180"
        alt="QR code of the ticket for ${esc(t.label || `seat ${t.seatId}`)}">
      <div><strong>${esc(events.get(order.eventId)?.title || `Show ${order.eventId}`)}</strong>
      <div>${esc(t.label || `Seat ${t.seatId}`)}</div><span class="status ${esc(t.status)}">${esc(t.status)}</span></div></li>`).join('')).join('');
  const pdfs = confirmed.map((o) => `<a href="${API}/orders/${Number(o.orderId)}/tickets.pdf" download>Order #${Number(o.orderId)} (PDF)</a>`).join(' · ');
  main.innerHTML = `<h1>My tickets</h1>
    ${confirmed.length ? table(confirmed) : '<p class="muted">No tickets yet. <a href="#/">Find a show</a>.</p>'}
    ${cards ? `<h2>At the door</h2><p class="muted">Show a code at the gate, from this screen or printed: ${pdfs}</p><ul class="cards tickets">${cards}</ul>` : ''}
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

/** A venue show's sales: by section, by category, and its standing areas. */
function salesTables(event, sales) {
  if (!sales) return '';
  const counts = (x) => ['available', 'held', 'sold'].map((k) => `<td class="num">${Number(x[k])}</td>`).join('');
  const head = (first, ...more) => `<thead><tr><th>${first}</th>${[...more, 'Available', 'Held', 'Sold'].map((h) => `<th class="num">${h}</th>`).join('')}</tr></thead>`;
  const id = `sales-${Number(event.id)}`;
  return `<section class="sales" id="${id}" aria-labelledby="${id}-title">
    <h2 id="${id}-title">Sales: ${esc(event.title)}</h2>
    <div class="tables">
      <table aria-label="By section">${head('Section', 'Seats')}<tbody>
        ${(sales.sections || []).map((s) => `<tr><td>${esc(s.name)}</td><td class="num">${Number(s.seats)}</td>${counts(s)}</tr>`).join('')}</tbody></table>
      <table aria-label="By category">${head('Category', 'Price', 'Seats')}<tbody>
        ${(sales.categories || []).map((c) => `<tr><td><i class="swatch" style="background:${esc(c.colour)}"></i>${esc(c.name)}</td>
          <td class="num">${won(c.price)}</td><td class="num">${Number(c.seats)}</td>${counts(c)}</tr>`).join('')}</tbody></table>
      ${(sales.areas || []).length ? `<table aria-label="Standing areas">${head('Standing area', 'Capacity')}<tbody>
        ${sales.areas.map((a) => `<tr><td>${esc(a.name)}</td><td class="num">${Number(a.capacity)}</td>${counts(a)}</tr>`).join('')}</tbody></table>` : ''}
    </div></section>`;
}

/** The waiting rooms' figures, per show with a room (`GET /admin/events/{id}/room`). */
function roomTable(events, rooms) {
  const rows = events.map((e, i) => [e, rooms[i]]).filter(([, r]) => r);
  if (!rows.length) return '';
  const rate = (r) => (r.waitingRoom.ratePerMinute === 'auto' ? 'auto' : `${Number(r.waitingRoom.ratePerMinute)}/min`);
  const waited = (r) => (r.medianWaitSeconds == null ? '–' : duration(Number(r.medianWaitSeconds)));
  return `<h2>Waiting rooms</h2>
    <table aria-label="Waiting rooms"><thead><tr><th>Show</th><th>Room</th><th>On sale</th><th class="num">Waiting</th>
      <th class="num">Let through</th><th class="num">Last minute</th><th class="num">Median wait</th><th class="num">No-shows</th></tr></thead><tbody>
    ${rows.map(([e, r]) => `<tr><td>${esc(e.title)}</td><td>${r.waitingRoom.enabled ? `on, ${rate(r)}` : 'off'}</td>
      <td>${r.onSaleAt ? esc(new Date(r.onSaleAt).toLocaleString()) : '–'}${r.draw ? ' (drawn)' : ''}</td>
      <td class="num">${Number(r.waiting)}</td><td class="num">${Number(r.admitted)}</td>
      <td class="num">${Number(r.admittedLastMinute)}</td><td class="num">${waited(r)}</td>
      <td class="num">${Number(r.noShows)}</td></tr>`).join('')}
    </tbody></table>`;
}

/** The room's switch: a show's room on or off, its rate, its on-sale time (PATCH). */
function roomSwitch(token, saved) {
  const form = document.getElementById('room');
  const $ = (id) => document.getElementById(id);
  let known = new Map();
  const local = (iso) => { const d = new Date(iso); return new Date(d - d.getTimezoneOffset() * 60000).toISOString().slice(0, 19); };
  function fill() {
    const r = known.get(Number($('room-event').value));
    $('room-enabled').checked = !!r?.waitingRoom.enabled;
    $('room-auto').checked = !r || r.waitingRoom.ratePerMinute === 'auto';
    if (r && r.waitingRoom.ratePerMinute !== 'auto') $('room-rate').value = r.waitingRoom.ratePerMinute;
    $('room-sale').value = r?.onSaleAt ? local(r.onSaleAt) : '';
  }
  $('room-event').addEventListener('change', fill);
  async function save(onSaleAt) {
    const waitingRoom = { enabled: $('room-enabled').checked, ratePerMinute: $('room-auto').checked ? 'auto' : Number($('room-rate').value) };
    const id = Number($('room-event').value);
    try {
      const r = await api(`/admin/events/${id}/room`, { method: 'PATCH', headers: { authorization: `Bearer ${token()}` }, body: JSON.stringify({ onSaleAt, waitingRoom }) });
      known.set(id, { ...known.get(id), ...r });
      fill();
      $('room-result').textContent = `Saved: the room is ${r.waitingRoom.enabled ? 'on' : 'off'}.`;
      saved();
    } catch (e) { $('room-result').textContent = e.message; }
  }
  form.addEventListener('submit', (e) => { e.preventDefault(); const v = $('room-sale').value; save(v ? new Date(v).toISOString() : null); });
  $('room-now').addEventListener('click', () => save(new Date().toISOString()));
  return {
    /** The shows and their rooms, as the board last read them. */
    shows(events, rooms) {
      const select = $('room-event');
      const first = !select.options.length;
      if (first) select.innerHTML = events.map((e) => `<option value="${Number(e.id)}">${esc(e.title)}</option>`).join('');
      known = new Map(events.map((e, i) => [e.id, rooms[i]]).filter(([, r]) => r));
      if (first) fill();
    },
  };
}

async function operatorView() {
  const token = sessionStorage.getItem('adminToken') || '';
  main.innerHTML = `<h1>Operator</h1>
    <form id="login"><label for="token">Admin token</label>
      <input type="password" id="token" autocomplete="off" value="${esc(token)}">
      <button class="primary">Show</button></form>
    <div id="board" aria-live="polite"></div>
    <section aria-labelledby="room-title">
      <h2 id="room-title">Waiting room settings</h2>
      <form id="room" class="room-form">
        <label for="room-event">Show</label><select id="room-event"></select>
        <label class="check"><input type="checkbox" id="room-enabled"> Waiting room on</label>
        <label class="check"><input type="checkbox" id="room-auto"> Rate: auto</label>
        <label for="room-rate">Or let through per minute</label><input type="number" id="room-rate" min="1" max="1000000" value="600">
        <label for="room-sale">On-sale time (your time zone; empty: none)</label><input type="datetime-local" id="room-sale" step="1">
        <div class="actions"><button class="primary">Save</button><button class="secondary" type="button" id="room-now">Open the sale now</button></div>
        <p id="room-result" class="result" role="status" aria-live="polite"></p>
      </form>
    </section>`;
  document.getElementById('login').addEventListener('submit', (e) => {
    e.preventDefault();
    sessionStorage.setItem('adminToken', document.getElementById('token').value.trim());
    refresh();
  });
  const board = document.getElementById('board');
  const rooms = roomSwitch(() => sessionStorage.getItem('adminToken'), () => refresh());
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
      // A venue's sales by section, category and standing area (none for a grid show).
      const venues = events.filter((e, i) => maps[i].categories?.length || maps[i].areas?.length);
      const sales = await Promise.all(venues.map((e) => api(`/admin/events/${e.id}/sales`, auth).catch(() => null)));
      const roomsOf = await Promise.all(events.map((e) => api(`/admin/events/${e.id}/room`, auth).catch(() => null)));
      rooms.shows(events, roomsOf);
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
        ${venues.map((e, i) => salesTables(e, sales[i])).join('')}
        ${roomTable(events, roomsOf)}
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
