// Headless Chromium over HTTPS, which it speaks as HTTP/2 where the server
// offers it:
//   node chromium_h2.mjs CHROMIUM_PATH https://127.0.0.1:8443/ WS_PATH
// It loads the page, prints the protocol the page came over ("page
// protocol: h2"), opens a WebSocket to WS_PATH from the page, echoes 1,000
// messages through it, closes with 4001 and checks that the code comes
// back; it exits 0 only if every check passed. Whether the WebSocket went
// over HTTP/2 is for the server to say: the browser does not tell.
import { withPage } from './browser.mjs';
import { check } from './checks.mjs';

const [executablePath, url, wsPath] = process.argv.slice(2);
if (!executablePath || !url || !wsPath) {
  console.error('usage: node chromium_h2.mjs CHROMIUM_PATH URL WS_PATH');
  process.exit(2);
}

await withPage(executablePath, url, async (page) => {
  await check('the page came over HTTP/2', async () => {
    const protocol = await page.evaluate(() => performance.getEntriesByType('navigation')[0].nextHopProtocol);
    console.log(`page protocol: ${protocol}`);
    if (protocol !== 'h2') throw new Error(`nextHopProtocol ${protocol}, want h2`);
  });

  await check('1,000 messages echo, in order', async () => {
    const bad = await page.evaluate(async (path) => {
      const ws = new WebSocket(location.origin.replace(/^http/, 'ws') + path);
      await new Promise((res, rej) => { ws.onopen = res; ws.onerror = () => rej(new Error('the WebSocket failed to open')); });
      const n = 1000;
      const got = [];
      const done = new Promise((res) => {
        ws.onmessage = (e) => { got.push(e.data); if (got.length === n) res(); };
        ws.onclose = (e) => res();
      });
      for (let i = 0; i < n; i++) ws.send(`message ${i} ${'.'.repeat(i % 300)}`);
      await done;
      window.echoSocket = ws;
      if (got.length !== n) return `${got.length} echoes, want ${n}`;
      for (let i = 0; i < n; i++) {
        if (got[i] !== `message ${i} ${'.'.repeat(i % 300)}`) return `echo ${i} is ${String(got[i]).slice(0, 40)}`;
      }
      return '';
    }, wsPath);
    if (bad) throw new Error(bad);
  });

  await check('the close code comes back', async () => {
    const code = await page.evaluate(async () => {
      const ws = window.echoSocket;
      if (!ws || ws.readyState !== WebSocket.OPEN) return -1;
      return await new Promise((res) => { ws.onclose = (e) => res(e.code); ws.close(4001, 'done'); });
    });
    if (code !== 4001) throw new Error(`close code ${code}, want 4001`);
  });
});
