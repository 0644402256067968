// The web page in a real headless Chromium: two buyers in two browser contexts, a
// failed payment, "my tickets" and the operator's view. Run by the Rust test
// `browser` with BOXOFFICE_URL (payments succeed), BOXOFFICE_FAILING_URL (payments
// fail) and BOXOFFICE_ADMIN set; SCREENSHOTS_DIR, when set, receives screenshots.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { URL, FAILING, ADMIN, newContext, until, statusOf, shot } from './common.mjs';

const seat = (page, r, c) => page.getByRole('button', { name: new RegExp(`^Row ${r}, seat ${c},`) });

test('a held seat turns HELD for the other buyer within a second; the sale shows SOLD to both', async () => {
  const [a, b] = [await newContext(), await newContext()];
  const [pa, pb] = [await a.newPage(), await b.newPage()];
  await pa.goto(`${URL}/`);
  await pa.getByRole('link', { name: 'The Nutcracker' }).waitFor();
  await shot(pa, 'shows');
  await pa.getByRole('link', { name: 'The Nutcracker' }).click();
  await pb.goto(`${URL}/#/events/2`);
  await seat(pa, 3, 4).waitFor();
  await seat(pb, 3, 4).waitFor();

  await seat(pa, 3, 4).click();
  await seat(pa, 3, 5).click();
  await pa.getByRole('button', { name: 'Hold 2 seats' }).click();
  await pa.getByText('Held for you').waitFor();
  const held = Date.now();
  await until('B sees the seat HELD', async () => (await statusOf(seat(pb, 3, 4))) === 'HELD', 1000);
  assert.ok(Date.now() - held < 1000);
  assert.match(await seat(pa, 3, 4).getAttribute('aria-label'), /held by you/);
  assert.match(await pa.getByRole('timer').textContent(), /^[0-2]:\d\d$/);
  await shot(pa, 'seat-map-held');
  // An extend adds to the time left, up to the longest hold: the page says how far.
  await pa.getByRole('button', { name: 'Extend 60 s' }).click();
  await pa.getByRole('alert').filter({ hasText: /extended (by 60 s|as far as it may go)/ }).waitFor();

  // B cannot take it: the page says so, and the server refuses B's own request.
  await seat(pb, 3, 4).click();
  await pb.getByRole('alert').filter({ hasText: 'held by someone else' }).waitFor();
  // Row 3, seat 4 of show 2 is seat 71: the demo shows keep the original's ids (2, 5, 8, …).
  const refused = await pb.evaluate(() => fetch('/ticketing/api/reservations', {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ eventId: 2, seatId: 71 }),
  }).then((r) => r.status));
  assert.equal(refused, 409);

  // A buys; both see SOLD.
  await pa.getByRole('button', { name: 'Checkout' }).click();
  await pa.locator('#order-status', { hasText: 'CONFIRMED' }).waitFor({ timeout: 10000 });
  await pa.getByText('Your tickets are confirmed').waitFor();
  // The order's number is an integer, as the original's contract has it.
  assert.match(await pa.locator('#order-number').textContent(), /^#[1-9][0-9]*$/);
  await shot(pa, 'order-confirmed');
  for (const page of [pa, pb]) {
    await until('SOLD on both pages', async () => (await statusOf(seat(page, 3, 4))) === 'SOLD', 3000);
  }

  await pa.getByRole('link', { name: 'My tickets' }).first().click();
  await pa.getByRole('cell', { name: /Row 3 · seat 4/ }).waitFor();
  await shot(pa, 'my-tickets');
  await a.close();
  await b.close();
});

test('a failed payment shows the order cancelled and the seat free again', async () => {
  const context = await newContext();
  const page = await context.newPage();
  await page.goto(`${FAILING}/#/events/1`);
  await seat(page, 5, 5).click();
  await page.getByRole('button', { name: 'Hold 1 seat' }).click();
  await page.getByRole('button', { name: 'Checkout' }).click();
  await page.locator('#order-status', { hasText: 'CANCELLED' }).waitFor({ timeout: 10000 });
  await page.getByText('The payment failed, so your seats were released.').waitFor();
  await until('the seat is free again', async () => (await statusOf(seat(page, 5, 5))) === 'AVAILABLE', 3000);
  await shot(page, 'payment-failed');
  await context.close();
});

test('the page works on a phone-sized screen and with a keyboard', async () => {
  const context = await newContext({ viewport: { width: 390, height: 844 } });
  const page = await context.newPage();
  await page.goto(`${URL}/#/events/3`);
  await seat(page, 1, 1).focus();
  await page.keyboard.press('ArrowRight');
  await page.keyboard.press('ArrowDown');
  const focused = await page.evaluate(() => document.activeElement.getAttribute('aria-label'));
  assert.match(focused, /^Row 2, seat 2, ₩52,000, available$/);
  await page.keyboard.press('Enter');
  assert.equal(await seat(page, 2, 2).getAttribute('aria-pressed'), 'true');
  await page.getByRole('button', { name: 'Hold 1 seat' }).focus();
  await page.keyboard.press('Enter');
  await page.getByText('Held for you').waitFor();
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 390, `no horizontal scrolling (${width}px)`);
  await shot(page, 'phone');
  await page.getByRole('button', { name: 'Release' }).click();
  await until('released', async () => (await statusOf(seat(page, 2, 2))) === 'AVAILABLE', 3000);
  await context.close();
});

test('the operator sees seats and orders by state, and the lag and SLA figures', async () => {
  const context = await newContext();
  const page = await context.newPage();
  await page.goto(`${URL}/#/operator`);
  await page.getByLabel('Admin token').fill('wrong');
  await page.getByRole('button', { name: 'Show' }).click();
  await page.getByText('That is not the admin token.').waitFor();
  await page.getByLabel('Admin token').fill(ADMIN);
  await page.getByRole('button', { name: 'Show' }).click();
  const row = page.getByRole('row', { name: /The Nutcracker/ });
  await row.waitFor();
  const cells = await row.getByRole('cell').allTextContents();
  assert.equal(Number(cells[3]), 2, `sold seats of the Nutcracker: ${cells}`);
  assert.equal(Number(cells[5]), 1, `confirmed orders: ${cells}`);
  await page.getByText('Final state p99').waitFor();
  // What the defences turned away: the wrong token above is one.
  await page.locator('#defences').getByText('Connections open').waitFor();
  await shot(page, 'operator');
  await context.close();
});
