// What the Chromium scripts share: a headless browser in a throwaway
// profile, and checks that print one line each and set the exit status.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

let failed = 0;
let total = 0;

// check runs fn and prints "ok   name" or "FAIL name: why".
export async function check(name, fn) {
  total++;
  try {
    await fn();
    console.log(`ok   ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e.message}`);
  }
}

// count counts a check whose line was printed elsewhere (from a page).
export function count(ok) {
  total++;
  if (!ok) failed++;
}

// withPage opens url in headless Chromium and runs fn(page); then it
// closes the browser, prints the tally and exits: 0 only if at least one
// check ran and every check passed.
export async function withPage(executablePath, url, fn) {
  const userDataDir = mkdtempSync(join(tmpdir(), 'pollws-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    ignoreHTTPSErrors: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await context.newPage();
    await page.goto(url, { timeout: 30000 });
    await fn(page);
  } finally {
    await context.close();
    rmSync(userDataDir, { recursive: true, force: true });
  }
  console.log(`${total - failed} passed, ${failed} failed`);
  process.exit(failed || total === 0 ? 1 : 0);
}
