// What the Chromium scripts share: a headless browser in a throwaway
// profile.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { finish } from './checks.mjs';

// withPage opens url in headless Chromium and runs fn(page); then it
// closes the browser and finishes the checks (see checks.mjs).
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
  finish();
}
