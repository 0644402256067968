// The demo venue in a real headless Chromium: best available, standing tickets, the
// map on a phone (zoom, pan, pinch, taps) and with a keyboard, the operator's sales.
// Run by the Rust test `browser` after buyers.test.mjs, with the same environment;
// SCREENSHOTS_DIR, when set, receives venue.png (docs/venue.png is one).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { URL, ADMIN, newContext, until, statusOf, shot } from './common.mjs';

const VENUE = /Grand Theatre/;
const seats = (page) => page.locator('#venue [data-id]');
const byId = (page, id) => page.locator(`#venue [data-id="${id}"]`);

/** Opens the demo venue's page from the list of shows; its address, for other buyers. */
async function openVenue(page) {
  await page.goto(`${URL}/`);
  await page.getByRole('link', { name: VENUE }).click();
  await seats(page).first().waitFor();
  return page.url();
}

/** Two buyers on the venue's page, each in a browser context of their own. */
async function twoBuyers() {
  const [a, b] = [await newContext(), await newContext()];
  const [pa, pb] = [await a.newPage(), await b.newPage()];
  const address = await openVenue(pa);
  await pb.goto(address);
  await seats(pb).first().waitFor();
  return { pa, pb, address, close: async () => { await a.close(); await b.close(); } };
}

const viewBox = async (page) => (await page.locator('#venue').getAttribute('viewBox')).split(' ').map(Number);

test('a buyer asks for 4 best available: 4 seats side by side turn theirs and HELD for another buyer within a second', async () => {
  const { pa, pb, address, close } = await twoBuyers();
  await pa.getByLabel('Seats', { exact: true }).fill('4');
  await pa.getByLabel('Category').selectOption({ label: 'Premium — ₩8,900' });
  await pa.getByRole('button', { name: 'Hold best available' }).click();
  await pa.getByRole('heading', { name: 'Held for you' }).waitFor();
  const held = Date.now();
  const mine = (await pa.locator('#venue [data-mine="true"]').evaluateAll((els) => els.map((e) => Number(e.dataset.id)))).sort((x, y) => x - y);
  assert.equal(mine.length, 4, `the buyer's seats: ${mine}`);
  await until('B sees the 4 seats HELD', async () => (await Promise.all(mine.map((id) => statusOf(byId(pb, id))))).every((s) => s === 'HELD'), 1000);
  assert.ok(Date.now() - held < 1000);

  await pa.getByText('Your 4 seats are together, side by side in one row.').waitFor();
  for (const id of mine) assert.match(await byId(pa, id).getAttribute('aria-label'), /^Stalls row [A-Z], seat \d+, Premium ₩8,900, held by you$/);
  // Side by side: one row, consecutive places in it (the seat map says where they are).
  const map = await pa.evaluate((path) => fetch(path).then((r) => r.json()), `/ticketing/api/events/${address.split('/').pop()}/seats`);
  const places = map.seats.filter((s) => mine.includes(s.id)).map((s) => [s.r, s.c]).sort((x, y) => x[1] - y[1]);
  assert.ok(places.every(([r, c], i) => r === places[0][0] && c === places[0][1] + i), `in one row, side by side: ${JSON.stringify(places)}`);
  await shot(pa, 'venue');

  // They go through the order and the payment as any seats.
  await pa.getByRole('button', { name: 'Checkout' }).click();
  await pa.locator('#order-status', { hasText: 'CONFIRMED' }).waitFor({ timeout: 10000 });
  await until('SOLD for B', async () => (await Promise.all(mine.map((id) => statusOf(byId(pb, id))))).every((s) => s === 'SOLD'), 3000);
  await close();
});

test('best available that nothing fits is answered with a clear message', async () => {
  const context = await newContext();
  const page = await context.newPage();
  await openVenue(page);
  // The wheelchair spaces are at the back of the stalls and the front of the circle: none is Premium.
  await page.getByLabel('Category').selectOption({ label: 'Premium — ₩8,900' });
  await page.getByLabel('Wheelchair spaces').check();
  await page.getByRole('button', { name: 'Hold best available' }).click();
  await page.getByRole('status').filter({ hasText: 'Not enough seats left for 2 seats with wheelchair spaces in Premium. Try fewer seats or another category.' }).waitFor();
  await page.getByRole('alert').filter({ hasText: 'Not enough seats left' }).waitFor();
  assert.equal(await page.locator('#venue [data-mine="true"]').count(), 0);
  await context.close();
});

test('standing tickets: hold 2 places, order, pay, and the count of places left drops by 2', async () => {
  const { pa: page, pb: other, close } = await twoBuyers();
  const left = async (p) => Number(await p.locator('#area-1-left').textContent());
  const before = await left(page);
  assert.ok(before > 2, `places left: ${before}`);

  await page.getByLabel('Standing tickets').fill('2');
  await page.getByRole('button', { name: 'Hold standing tickets' }).click();
  await page.getByRole('heading', { name: 'Held for you' }).waitFor();
  await page.getByText('2 standing places in Standing held for you.').waitFor();
  await page.getByText(/Standing · standing × 2 — ₩5,000/).waitFor();
  assert.equal(await page.getByRole('button', { name: 'Hold standing tickets' }).isVisible(), false, 'one hold at a time');
  // The other buyer's page follows the count over the stream (AREA_UPDATE).
  await until('the other buyer sees 2 places fewer', async () => (await left(other)) === before - 2 || await left(other), 2000);

  await page.getByRole('button', { name: 'Checkout' }).click();
  await page.locator('#order-status', { hasText: 'CONFIRMED' }).waitFor({ timeout: 10000 });
  await page.getByText('Total ₩5,000').waitFor();
  await page.getByRole('button', { name: 'Buy more' }).click();
  await page.reload();
  await seats(page).first().waitFor();
  assert.equal(await left(page), before - 2, 'sold places stay taken');
  await page.getByRole('link', { name: 'My tickets' }).first().click();
  await page.getByRole('cell', { name: /Standing · standing × 2/ }).waitFor();
  await close();
});

test('the venue on a phone: zoom, drag, pinch and tap; and with a keyboard', async () => {
  const context = await newContext({ viewport: { width: 390, height: 844 }, hasTouch: true, isMobile: true });
  const page = await context.newPage();
  await openVenue(page);
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 390, `no horizontal scrolling (${width}px)`);

  const [x0, y0, w0] = await viewBox(page);
  await page.getByRole('button', { name: 'Zoom in' }).click();
  const [, , w1] = await viewBox(page);
  assert.ok(w1 < w0 * 0.7, `zoomed in: ${w0} → ${w1}`);

  // A drag moves the view (pointer events, as a finger's).
  const box = await page.locator('#venue').boundingBox();
  const [cx, cy] = [box.x + box.width / 2, box.y + box.height / 2];
  const pointer = (type, id, x, y) => page.locator('#venue').dispatchEvent(type, { pointerId: id, pointerType: 'touch', isPrimary: id === 1, clientX: x, clientY: y, bubbles: true });
  await pointer('pointerdown', 1, cx, cy);
  await pointer('pointermove', 1, cx + 30, cy + 10);
  await pointer('pointermove', 1, cx + 60, cy + 20);
  await pointer('pointerup', 1, cx + 60, cy + 20);
  const [x2, y2, w2] = await viewBox(page);
  assert.ok(x2 < x0 + (w0 - w1) / 2 && y2 !== y0, `dragged: ${x0},${y0} → ${x2},${y2}`);
  assert.equal(w2, w1);
  // Two fingers spreading apart zoom in.
  await pointer('pointerdown', 1, cx - 20, cy);
  await pointer('pointerdown', 2, cx + 20, cy);
  await pointer('pointermove', 1, cx - 60, cy);
  await pointer('pointermove', 2, cx + 60, cy);
  await pointer('pointerup', 1, cx - 60, cy);
  await pointer('pointerup', 2, cx + 60, cy);
  const [, , w3] = await viewBox(page);
  assert.ok(w3 < w2 * 0.6, `pinched: ${w2} → ${w3}`);
  await page.getByRole('button', { name: 'Fit' }).click();
  assert.equal((await viewBox(page))[2], w0);

  // One seat is in the tab order; the arrows move along a row and to the next row.
  await page.locator('#venue [tabindex="0"]').focus();
  const focused = () => page.evaluate(() => document.activeElement.getAttribute('aria-label'));
  assert.match(await focused(), /^Stalls row A, seat 1, /);
  await page.keyboard.press('ArrowRight');
  assert.match(await focused(), /^Stalls row A, seat 2, Premium ₩8,900, /);
  await page.keyboard.press('ArrowDown');
  assert.match(await focused(), /^Stalls row B, seat \d+, /);
  await page.keyboard.press('Enter');
  assert.equal(await page.evaluate(() => document.activeElement.getAttribute('aria-pressed')), 'true');
  await page.keyboard.press(' ');
  assert.equal(await page.evaluate(() => document.activeElement.getAttribute('aria-pressed')), 'false');
  // A tap on an available seat selects it.
  const available = page.locator('#venue [data-status="AVAILABLE"]').nth(40);
  await available.tap();
  assert.equal(await available.getAttribute('aria-pressed'), 'true');
  await page.getByRole('button', { name: 'Hold 1 seat' }).waitFor();
  await available.tap();
  assert.equal(await available.getAttribute('aria-pressed'), 'false');

  // The accessible seats say so.
  assert.ok(await page.getByRole('button', { name: /, wheelchair space, available$/ }).count() > 0);
  assert.ok(await page.getByRole('button', { name: /, companion seat, available$/ }).count() > 0);
  assert.ok(await page.getByRole('button', { name: /, restricted view, available$/ }).count() > 0);
  await shot(page, 'venue-phone');
  await context.close();
});

test('the operator sees the venue\'s sales by section and category, and its standing areas', async () => {
  const context = await newContext();
  const page = await context.newPage();
  await page.goto(`${URL}/#/operator`);
  await page.getByLabel('Admin token').fill(ADMIN);
  await page.getByRole('button', { name: 'Show' }).click();
  const sales = page.getByRole('region', { name: /^Sales: .*Grand Theatre/ });
  await sales.waitFor();
  const cells = async (table, name) => sales.getByRole('table', { name: table }).getByRole('row', { name }).getByRole('cell').allTextContents();
  // Sold by the tests before: 4 Premium seats in the stalls, 2 standing places.
  await until('the stalls show 4 sold', async () => (await cells('By section', /^Stalls/))[4] === '4' || String(await cells('By section', /^Stalls/)), 5000);
  const premium = await cells('By category', /Premium/);
  assert.deepEqual(premium.slice(1).map((c) => c.trim()), ['₩8,900', premium[2], String(Number(premium[2]) - 4), '0', '4'], `Premium: ${premium}`);
  const standing = await cells('Standing areas', /Standing/);
  assert.deepEqual(standing.map((c) => c.trim()), ['Standing', '500', '498', '0', '2'], `Standing: ${standing}`);
  await shot(page, 'operator-venue');
  await context.close();
});
