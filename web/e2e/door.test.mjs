// The door's scanner page in a real headless Chromium whose camera is a fake one: a
// video file of a real ticket's QR code, made here from the server's qr.svg. The page
// reads it, checks it in (ADMITTED), and, the video showing the same code on, reads it
// again a few seconds later (ALREADY_USED). Run by the Rust test `browser` with
// BOXOFFICE_URL and BOXOFFICE_SCANNER (a scanner's token) set.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { URL, newContext, until, shot } from './common.mjs';

const SCANNER = process.env.BOXOFFICE_SCANNER;
const API = `${URL}/ticketing/api`;

async function call(method, path, buyer, body, headers = {}) {
  const r = await fetch(API + path, {
    method,
    headers: { authorization: `Bearer ${buyer}`, 'content-type': 'application/json', ...headers },
    body: body && JSON.stringify(body),
  });
  return { status: r.status, body: await r.json().catch(() => null), text: r.status };
}

/** Buys one seat of show 3 as `buyer`; returns the order's first ticket. */
async function buyTicket(buyer) {
  const map = await (await fetch(`${API}/events/3/seats`)).json();
  const free = map.seats.filter((s) => s.status === 'AVAILABLE').reverse();
  for (const seat of free) {
    const hold = await call('POST', '/reservations', buyer, { eventId: 3, seatIds: [seat.id], holdSeconds: 60 });
    if (hold.status !== 201) continue;
    const order = await call('POST', '/orders', buyer, { eventId: 3, seatIds: [seat.id] }, { 'idempotency-key': `door-${buyer}` });
    assert.ok([200, 201].includes(order.status), `order: ${JSON.stringify(order.body)}`);
    const id = order.body.orderId;
    let tickets = [];
    await until('the order is CONFIRMED with its ticket', async () => {
      const o = await call('GET', `/orders/${id}`, buyer);
      if (o.body?.status !== 'CONFIRMED') return o.body?.status;
      tickets = (await call('GET', `/orders/${id}/tickets`, buyer)).body;
      return Array.isArray(tickets) && tickets.length === 1 ? true : JSON.stringify(tickets);
    }, 15000);
    return { orderId: id, ticket: tickets[0] };
  }
  assert.fail('no seat of show 3 could be held');
}

/** A Y4M video (what Chromium's fake camera plays) of the image on a 640×480 page. */
async function videoOf(svg) {
  const context = await newContext();
  const page = await context.newPage();
  const src = `data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}`;
  const luma = await page.evaluate(async (src) => {
    const img = new Image();
    img.src = src;
    await img.decode();
    const canvas = Object.assign(document.createElement('canvas'), { width: 640, height: 480 });
    const g = canvas.getContext('2d');
    g.fillStyle = '#fff';
    g.fillRect(0, 0, 640, 480);
    g.imageSmoothingEnabled = false;
    g.drawImage(img, 140, 60, 360, 360);
    const { data } = g.getImageData(0, 0, 640, 480);
    const y = new Array(640 * 480);
    for (let i = 0; i < y.length; i++) y[i] = Math.round(0.299 * data[4 * i] + 0.587 * data[4 * i + 1] + 0.114 * data[4 * i + 2]);
    return y;
  }, src);
  await context.close();
  const frame = Buffer.concat([Buffer.from('FRAME\n'), Buffer.from(luma), Buffer.alloc(640 * 480 / 2, 128)]);
  const file = join(mkdtempSync(join(tmpdir(), 'door-')), 'ticket.y4m');
  writeFileSync(file, Buffer.concat([Buffer.from('YUV4MPEG2 W640 H480 F10:1 Ip A1:1 C420jpeg\n'), frame, frame, frame]));
  return file;
}

test('a scanner reads a ticket from the camera: ADMITTED, then ALREADY_USED', async () => {
  assert.ok(SCANNER, 'BOXOFFICE_SCANNER is set');
  const { orderId, ticket } = await buyTicket('door-buyer');
  assert.equal(ticket.status, 'VALID');
  const svg = await (await fetch(`${API}/orders/${orderId}/tickets/${ticket.ticketId}/qr.svg`, {
    headers: { authorization: 'Bearer door-buyer' },
  })).text();
  assert.match(svg, /<svg/);
  const video = await videoOf(svg);

  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
      `--use-file-for-fake-video-capture=${video}`],
  });
  try {
    const context = await browser.newContext({ permissions: ['camera'] });
    const page = await context.newPage();
    await page.goto(`${URL}/scanner`);
    await page.getByLabel('Scanner token').fill(SCANNER);
    await page.getByLabel('Gate').fill('north-3');
    await page.getByLabel('Show').fill('3');
    await page.getByRole('button', { name: 'Start scanning' }).click();
    const verdict = page.getByRole('status');
    await until('the camera\'s ticket is let in', async () => (await verdict.getAttribute('data-result')) === 'ADMITTED' || (await verdict.textContent()), 15000);
    assert.match(await verdict.textContent(), /ADMITTED/);
    await shot(page, 'door-admitted');
    // The video shows the same code on: seen again after a few seconds, it is a re-entry.
    await until('the same ticket is refused', async () => (await verdict.getAttribute('data-result')) === 'ALREADY_USED' || (await verdict.textContent()), 15000);
    assert.match(await verdict.textContent(), /gate north-3/);
    await shot(page, 'door-already-used');
  } finally {
    await browser.close();
  }
  // The server agrees: the ticket is USED.
  const tickets = (await call('GET', `/orders/${orderId}/tickets`, 'door-buyer')).body;
  assert.equal(tickets[0].status, 'USED');
});
