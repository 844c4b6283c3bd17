// What every peer script shares: checks that print one line each, and a
// tally that sets the exit status.
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

// finish prints the tally and exits: 0 only if at least one check ran and
// every check passed.
export function finish() {
  console.log(`${total - failed} passed, ${failed} failed`);
  process.exit(failed || total === 0 ? 1 : 0);
}

// open connects a client of Node's ws package to url with options.
export async function open(WebSocket, url, options) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, options);
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

// next resolves with the next message ws (Node's ws package) receives, and
// fails if it closes first.
export function next(ws) {
  return new Promise((resolve, reject) => {
    const onClose = (code) => reject(new Error(`closed with ${code} while waiting for a message`));
    ws.once('message', (data, isBinary) => { ws.off('close', onClose); resolve({ data, isBinary }); });
    ws.once('close', onClose);
  });
}
