// Headless Chromium against the echo example's page:
//   node chromium_echo.mjs CHROMIUM_PATH http://127.0.0.1:8080/ [screenshot.png]
// It drives the page as a person would (type, send, see the echo), runs
// binary and close-code checks with the browser's own WebSocket, and exits
// 0 only if every check passed.
import { withPage } from './browser.mjs';
import { check } from './checks.mjs';

const [executablePath, url, screenshot] = process.argv.slice(2);
if (!executablePath || !url) {
  console.error('usage: node chromium_echo.mjs CHROMIUM_PATH URL [SCREENSHOT]');
  process.exit(2);
}

await withPage(executablePath, url, async (page) => {
  await check('the page connects', async () => {
    await page.waitForSelector('#status[data-state="open"]', { timeout: 15000 });
  });

  await check('a typed message is echoed on the page', async () => {
    await page.fill('#msg', 'hello from Chromium ✓');
    await page.click('#send');
    await page.waitForSelector('#log li.in >> text="hello from Chromium ✓"', { timeout: 10000 });
    const received = await page.textContent('#received');
    if (Number(received) < 1) throw new Error(`received counter is ${received}`);
  });

  await check('binary messages echo byte for byte', async () => {
    const bad = await page.evaluate(async () => {
      const ws = new WebSocket(location.origin.replace(/^http/, 'ws') + '/ws');
      ws.binaryType = 'arraybuffer';
      await new Promise((res, rej) => { ws.onopen = res; ws.onerror = rej; });
      for (const size of [0, 1, 126, 65536, 1 << 20]) {
        const b = new Uint8Array(size);
        for (let i = 0; i < size; i++) b[i] = (i * 31 + 7) & 0xff;
        const got = await new Promise((res) => { ws.onmessage = (e) => res(e.data); ws.send(b); });
        if (!(got instanceof ArrayBuffer) || got.byteLength !== size) return `size ${size}: got ${got.byteLength}`;
        const g = new Uint8Array(got);
        for (let i = 0; i < size; i++) if (g[i] !== b[i]) return `size ${size}: byte ${i} differs`;
      }
      ws.close(1000);
      return '';
    });
    if (bad) throw new Error(bad);
  });

  await check('the close code is echoed', async () => {
    const code = await page.evaluate(async () => {
      const ws = new WebSocket(location.origin.replace(/^http/, 'ws') + '/ws');
      await new Promise((res, rej) => { ws.onopen = res; ws.onerror = rej; });
      return await new Promise((res) => { ws.onclose = (e) => res(e.code); ws.close(4002, 'bye'); });
    });
    if (code !== 4002) throw new Error(`close code ${code}, want 4002`);
  });

  if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
});
