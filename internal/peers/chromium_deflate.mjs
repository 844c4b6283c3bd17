// Headless Chromium's own WebSocket, which offers permessage-deflate on
// every connection, against an echo server:
//   node chromium_deflate.mjs CHROMIUM_PATH http://127.0.0.1:8080/
// It opens the page at the URL and, from it, a WebSocket to /ws on the
// same origin; it checks that compression was agreed and that text and
// binary messages of 16 B to 128 KiB and 100 pipelined messages echo
// unchanged, then closes with 4002. It prints one line per check, and
// "compressible N": how many of the messages it sent compress well, which
// the server must have read compressed (with RSV1). It exits 0 only if
// every check passed.
import { withPage } from './browser.mjs';
import { count } from './checks.mjs';

const [executablePath, url] = process.argv.slice(2);
if (!executablePath || !url) {
  console.error('usage: node chromium_deflate.mjs CHROMIUM_PATH URL');
  process.exit(2);
}

await withPage(executablePath, url, async (page) => {
  const lines = await page.evaluate(async () => {
    const out = [];
    let compressible = 0;
    const ws = new WebSocket(location.origin.replace(/^http/, 'ws') + '/ws');
    ws.binaryType = 'arraybuffer';
    try {
      await new Promise((res, rej) => { ws.onopen = res; ws.onerror = () => rej(new Error('the connection failed')); });
    } catch (e) {
      return [`FAIL open: ${e.message}`];
    }
    const echo = (m) => new Promise((res) => { ws.onmessage = (e) => res(e.data); ws.send(m); });
    const check = async (name, fn) => {
      try {
        await fn();
        out.push(`ok   ${name}`);
      } catch (e) {
        out.push(`FAIL ${name}: ${e.message}`);
      }
    };
    const json = (n, seed) => {
      const words = ['id', 'name', 'value', 'status', 'items', 'price', 'user', 'true', 'false', 'null'];
      let s = '';
      let x = seed;
      const next = () => { x = (x * 1103515245 + 12345) % 2147483648; return x; };
      while (s.length < n) s += `{"${words[next() % words.length]}":${next() % 100000},"${words[next() % words.length]}":"ü-${next() % 1000}"},`;
      return s.slice(0, n);
    };

    await check('permessage-deflate is agreed', async () => {
      if (!ws.extensions.includes('permessage-deflate')) throw new Error(`extensions: "${ws.extensions}"`);
      out.push(`     agreed: ${ws.extensions}`);
    });
    for (const size of [16, 200, 1024, 5000, 65536, 131072]) {
      await check(`text ${size} B`, async () => {
        const s = json(size, size);
        const got = await echo(s);
        if (got !== s) throw new Error(`got ${typeof got} of ${got.length}`);
        if (size >= 200) compressible++;
      });
      await check(`binary ${size} B`, async () => {
        const b = new Uint8Array(size);
        for (let i = 0; i < size; i++) b[i] = (i % 251) ^ (i >> 8);
        const got = await echo(b);
        if (!(got instanceof ArrayBuffer) || got.byteLength !== size) throw new Error(`got ${got.byteLength}`);
        const g = new Uint8Array(got);
        for (let i = 0; i < size; i++) if (g[i] !== b[i]) throw new Error(`byte ${i} differs`);
        if (size >= 200) compressible++;
      });
    }
    await check('100 pipelined messages come back in order', async () => {
      const got = [];
      const done = new Promise((res) => { ws.onmessage = (e) => { got.push(e.data); if (got.length === 100) res(); }; });
      for (let i = 0; i < 100; i++) ws.send(`{"seq":${i},"body":"${json(300, i)}"}`);
      await done;
      for (let i = 0; i < 100; i++) if (!got[i].startsWith(`{"seq":${i},`)) throw new Error(`message ${i} is ${got[i].slice(0, 20)}`);
      compressible += 100;
    });
    await check('the close code is echoed', async () => {
      const code = await new Promise((res) => { ws.onclose = (e) => res(e.code); ws.close(4002, 'bye'); });
      if (code !== 4002) throw new Error(`close code ${code}, want 4002`);
    });
    out.push(`compressible ${compressible}`);
    return out;
  });
  for (const line of lines) {
    console.log(line);
    if (line.startsWith('ok   ')) count(true);
    if (line.startsWith('FAIL')) count(false);
  }
});
