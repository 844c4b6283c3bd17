// Node's ws package with permessage-deflate, as a client or a server:
//   node ws_deflate.mjs client URL MODE   checks an echo server at URL
//   node ws_deflate.mjs server MODE       serves an echo on 127.0.0.1, prints
//                                         "listening PORT", runs until stdin closes
// MODE is "takeover" (ws's default offer and answer: context takeover both
// ways), "no-takeover" (no context takeover either way) or "bits=N" (both
// windows at most 2^N bytes). ws compresses every message (threshold 0).
// The client prints one line per check and exits 0 only if every check
// passed.
import WebSocket, { WebSocketServer } from 'ws';

import { check, finish, next, open } from './checks.mjs';

const [role, ...rest] = process.argv.slice(2);

function deflateOptions(mode) {
  const o = { threshold: 0 };
  if (mode === 'no-takeover') {
    o.serverNoContextTakeover = true;
    o.clientNoContextTakeover = true;
  } else if (mode && mode.startsWith('bits=')) {
    const bits = Number(mode.slice(5));
    o.serverMaxWindowBits = bits;
    o.clientMaxWindowBits = bits;
  } else if (mode !== 'takeover') {
    console.error(`unknown mode ${mode}`);
    process.exit(2);
  }
  return o;
}

if (role === 'server') {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: deflateOptions(rest[0]), maxPayload: 64 << 20 });
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    // A client's bad input (text that is not UTF-8, say) is answered with
    // the close code ws picks; it must not end the server.
    ws.on('error', () => {});
    ws.on('close', (code) => { if (ws.readyState !== WebSocket.CLOSED) ws.close(code); });
  });
  wss.on('listening', () => console.log(`listening ${wss.address().port}`));
  process.stdin.resume();
  process.stdin.on('end', () => { wss.close(); process.exit(0); });
} else if (role === 'client') {
  await client(rest[0], rest[1]);
} else {
  console.error('usage: node ws_deflate.mjs client URL MODE | server MODE');
  process.exit(2);
}

function jsonLike(n, seed) {
  const words = ['id', 'name', 'value', 'status', 'items', 'price', 'user', 'true', 'false', 'null'];
  let s = '';
  let x = seed;
  const rand = () => { x = (x * 1103515245 + 12345) % 2147483648; return x; };
  while (s.length < n) {
    s += `{"${words[rand() % words.length]}":${rand() % 100000},"${words[rand() % words.length]}":"é-${rand() % 1000}"},`;
  }
  // Cut at n UTF-16 units: every character here is one, so the text stays valid.
  return s.slice(0, n);
}

function randomBytes(n, seed) {
  const b = Buffer.alloc(n);
  let x = seed;
  for (let i = 0; i < n; i++) { x = (x * 1103515245 + 12345) % 2147483648; b[i] = x >> 16; }
  return b;
}

async function client(url, mode) {
  const ws = await open(WebSocket, url, { perMessageDeflate: deflateOptions(mode), maxPayload: 64 << 20 });

  await check('permessage-deflate is agreed', async () => {
    if (!ws.extensions.includes('permessage-deflate')) throw new Error(`extensions: "${ws.extensions}"`);
    console.log(`     agreed: ${ws.extensions}`);
  });

  for (const size of [16, 200, 1024, 5000, 65536, 131072]) {
    await check(`text ${size} B`, async () => {
      const s = jsonLike(size, size);
      const p = next(ws);
      ws.send(s);
      const { data, isBinary } = await p;
      if (isBinary || data.toString() !== s) throw new Error(`got ${isBinary ? 'binary' : 'text'} of ${data.length} B`);
    });
    await check(`binary ${size} B`, async () => {
      const b = randomBytes(size, size);
      const p = next(ws);
      ws.send(b, { binary: true });
      const { data, isBinary } = await p;
      if (!isBinary || Buffer.compare(data, b) !== 0) throw new Error(`got ${isBinary ? 'binary' : 'text'} of ${data.length} B`);
    });
  }

  await check('a compressed message in fragments', async () => {
    const parts = [jsonLike(3000, 1), jsonLike(10, 2), jsonLike(5000, 3)];
    const p = next(ws);
    ws.send(parts[0], { fin: false, compress: true });
    ws.send(parts[1], { fin: false, compress: true });
    ws.send(parts[2], { fin: true, compress: true });
    const { data, isBinary } = await p;
    if (isBinary || data.toString() !== parts.join('')) throw new Error(`got ${data.length} B`);
  });

  await check('200 pipelined messages come back in order', async () => {
    const got = [];
    const done = new Promise((resolve) => {
      const on = (data) => { got.push(data.toString()); if (got.length === 200) { ws.off('message', on); resolve(); } };
      ws.on('message', on);
    });
    for (let i = 0; i < 200; i++) ws.send(`{"seq":${i},"body":"${jsonLike(300, i)}"}`);
    await done;
    for (let i = 0; i < 200; i++) if (!got[i].startsWith(`{"seq":${i},`)) throw new Error(`message ${i} is ${got[i].slice(0, 20)}`);
  });

  await check('close code is echoed', async () => {
    const p = new Promise((resolve) => ws.once('close', (code) => resolve(code)));
    ws.close(4001, 'bye');
    const code = await p;
    if (code !== 4001) throw new Error(`close code ${code}, want 4001`);
  });

  finish();
}
