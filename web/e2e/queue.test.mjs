// The waiting room in a real headless Chromium: two visitors join a show's queue before
// its on-sale, the operator opens the sale, both are let through in the order the
// server recorded, and one buys. Run by the Rust test `browser` after the other files,
// with the same environment.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { URL, ADMIN, newContext, until, shot } from './common.mjs';

/** An operator's request (bearer token, JSON). */
const admin = (path, method = 'GET', body) => fetch(`${URL}/ticketing/api${path}`, {
  method,
  headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
  body: body && JSON.stringify(body),
});

const statusOf = (page) => page.locator('#queue-status').getAttribute('data-status');
const seat = (page, r, c) => page.getByRole('button', { name: new RegExp(`^Row ${r}, seat ${c},`) });

test('two visitors join before the on-sale, are let through in the recorded order, and one buys', async () => {
  // A show of its own, its room on at 20 a minute (one every 3 s), its sale an hour away.
  const created = await admin('/admin/events', 'POST', { title: 'The Queue', dateTime: '2026-12-31T20:00:00', rows: 3, cols: 4 });
  assert.equal(created.status, 201);
  const { id } = await created.json();
  const hourAway = new Date(Date.now() + 3600_000).toISOString();
  const set = await admin(`/admin/events/${id}/room`, 'PATCH', { onSaleAt: hourAway, waitingRoom: { enabled: true, ratePerMinute: 20 } });
  assert.equal(set.status, 200, await set.text());

  // A, then B (so A's place is the earlier entry), on a phone and on a desktop.
  const [a, b] = [await newContext({ viewport: { width: 390, height: 844 } }), await newContext()];
  const [pa, pb] = [await a.newPage(), await b.newPage()];
  for (const page of [pa, pb]) {
    await page.goto(`${URL}/#/events/${id}`);
    await until('the pre-queue', async () => (await statusOf(page)) === 'PREQUEUE', 5000);
  }
  assert.match(await pa.getByRole('timer').textContent(), /^(59:[0-5]\d|1:00:00)$/);
  assert.match(await pa.getByRole('status').textContent(), /sale has not opened yet/);
  const width = await pa.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 390, `no horizontal scrolling on a phone (${width}px)`);
  await shot(pa, 'queue-prequeue');

  // The sale opens: the pre-queue is shuffled, and each visitor is told a place.
  assert.equal((await admin(`/admin/events/${id}/room`, 'PATCH', { onSaleAt: new Date().toISOString() })).status, 200);
  const audit = await (async () => {
    let room;
    await until('the pre-queue shuffled', async () => {
      room = await (await admin(`/admin/events/${id}/room`)).json();
      return room.draw !== null && room.order.length === 2;
    }, 5000);
    return room;
  })();
  // Entries are numbered in arrival order: A's is the smaller.
  const [first, second] = audit.order[0] < audit.order[1] ? [pa, pb] : [pb, pa];
  await until('the second told its place', async () => (await second.locator('#queue-position').textContent()) === '2', 5000);
  assert.equal(await second.locator('#queue-ahead').textContent(), '1');
  assert.match(await second.getByRole('status').textContent(), /1 person is ahead of you/);
  await shot(second, 'queue-waiting');

  // The first in the recorded order is let through while the second still waits.
  await first.locator('#admitted').waitFor({ timeout: 10000 });
  assert.equal(await statusOf(second), 'WAITING', 'the second waits while the first is let through');
  await second.locator('#admitted').waitFor({ timeout: 10000 });
  const context = first === pa ? a : b;
  assert.ok((await context.cookies()).some((c) => c.name === `admission_${id}`), 'the admission cookie is set');

  // The first buys a seat.
  await seat(first, 1, 1).click();
  await first.getByRole('button', { name: 'Hold 1 seat' }).click();
  await first.getByText('Held for you').waitFor();
  await first.getByRole('button', { name: 'Checkout' }).click();
  await first.locator('#order-status', { hasText: 'CONFIRMED' }).waitFor({ timeout: 10000 });
  await shot(first, 'queue-bought');

  assert.equal((await admin(`/admin/events/${id}/room`, 'PATCH', { waitingRoom: { enabled: false } })).status, 200);
  await a.close();
  await b.close();
});

test('the operator sees the waiting rooms and switches one', async () => {
  const context = await newContext();
  const page = await context.newPage();
  await page.goto(`${URL}/#/operator`);
  await page.getByLabel('Admin token').fill(ADMIN);
  await page.getByRole('button', { name: 'Show' }).click();
  const row = page.getByRole('table', { name: 'Waiting rooms' }).getByRole('row', { name: /The Queue/ });
  await row.waitFor();
  const cells = await row.getByRole('cell').allTextContents();
  assert.equal(cells[1], 'off', `the room was turned off: ${cells}`);
  assert.equal(Number(cells[4]), 2, `both let through: ${cells}`);
  assert.notEqual(cells[6], '–', `a median wait once someone was let through: ${cells}`);
  assert.equal(Number(cells[7]), 0, `no no-shows: ${cells}`);

  await page.getByLabel('Show', { exact: true }).selectOption({ label: 'The Queue' });
  await page.getByLabel('Waiting room on').check();
  await page.getByLabel('Rate: auto').uncheck();
  await page.getByLabel('Or let through per minute').fill('120');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByRole('status').filter({ hasText: 'Saved: the room is on.' }).waitFor();
  await until('the table shows the room on', async () => (await row.getByRole('cell').nth(1).textContent()) === 'on, 120/min', 5000);
  await shot(page, 'operator-rooms');
  await page.getByLabel('Waiting room on').uncheck();
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByRole('status').filter({ hasText: 'Saved: the room is off.' }).waitFor();
  await context.close();
});
