// An independent WebSocket client (Node's ws package) that checks an echo
// server: node ws_echo.mjs ws://127.0.0.1:8080/ws  (or wss://, any certificate).
// It prints one line per check and exits 0 only if every check passed.
import WebSocket from 'ws';

import { check, finish, next, open } from './checks.mjs';

const url = process.argv[2];
if (!url) {
  console.error('usage: node ws_echo.mjs URL');
  process.exit(2);
}

function equal(a, b) {
  return Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;
}

const ws = await open(WebSocket, url, { rejectUnauthorized: false, perMessageDeflate: false, maxPayload: 64 << 20 });

await check('text echoes as text', async () => {
  const p = next(ws);
  ws.send('hello, pollws');
  const { data, isBinary } = await p;
  if (isBinary || data.toString() !== 'hello, pollws') throw new Error(`got ${isBinary ? 'binary' : 'text'} ${data}`);
});

await check('multi-byte UTF-8 text', async () => {
  const s = 'héllo wörld ✓ 🚀';
  const p = next(ws);
  ws.send(s);
  const { data, isBinary } = await p;
  if (isBinary || data.toString() !== s) throw new Error(`got ${data}`);
});

for (const size of [0, 1, 125, 126, 65535, 65536, 1 << 20, 16 << 20]) {
  await check(`binary ${size} B`, async () => {
    const b = Buffer.alloc(size);
    for (let i = 0; i < size; i++) b[i] = (i * 31 + 7) & 0xff;
    const p = next(ws);
    ws.send(b, { binary: true });
    const { data, isBinary } = await p;
    if (!isBinary || !equal(data, b)) throw new Error(`got ${isBinary ? 'binary' : 'text'} of ${data.length} B`);
  });
}

await check('fragmented text is echoed whole', async () => {
  const p = next(ws);
  ws.send('frag', { fin: false });
  ws.send('men', { fin: false });
  ws.send('ted', { fin: true });
  const { data, isBinary } = await p;
  if (isBinary || data.toString() !== 'fragmented') throw new Error(`got ${data}`);
});

await check('ping is answered with its payload', async () => {
  const p = new Promise((resolve) => ws.once('pong', resolve));
  ws.ping(Buffer.from('are you there'));
  const data = await p;
  if (data.toString() !== 'are you there') throw new Error(`pong carried ${data}`);
});

await check('200 pipelined messages come back in order', async () => {
  const got = [];
  const done = new Promise((resolve) => {
    const on = (data) => { got.push(data.toString()); if (got.length === 200) { ws.off('message', on); resolve(); } };
    ws.on('message', on);
  });
  for (let i = 0; i < 200; i++) ws.send(`m${i}`);
  await done;
  for (let i = 0; i < 200; i++) if (got[i] !== `m${i}`) throw new Error(`message ${i} is ${got[i]}`);
});

await check('close code is echoed', async () => {
  const p = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  ws.close(4001, 'bye');
  const { code } = await p;
  if (code !== 4001) throw new Error(`close code ${code}, want 4001`);
});

finish();
