// What the browser tests share: one headless Chromium per file, the servers under test,
// waiting for the page, and screenshots when SCREENSHOTS_DIR is set.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

export const URL = process.env.BOXOFFICE_URL;
export const FAILING = process.env.BOXOFFICE_FAILING_URL;
export const ADMIN = process.env.BOXOFFICE_ADMIN;
const SHOTS = process.env.SCREENSHOTS_DIR;

// The file's browser, launched before its tests and closed after them.
let browser;
before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
});
after(async () => { await browser?.close(); });

/** A buyer of their own: a fresh browser context (cookies, storage). */
export const newContext = (options) => browser.newContext(options);

export async function until(what, check, ms) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    last = await check();
    if (last === true) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.fail(`${what} within ${ms} ms (last: ${last})`);
}

export const statusOf = (locator) => locator.getAttribute('data-status');
export async function shot(page, name) { if (SHOTS) await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true }); }
