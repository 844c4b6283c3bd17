"""An independent WebSocket client (Python's websockets package) that checks
an echo server: python3 ws_echo.py ws://127.0.0.1:8080/ws  (or wss://, any
certificate). It offers permessage-deflate, as websockets does by default,
says whether the server agreed, and checks the echoes either way. It prints
one line per check and exits 0 only if every check passed.

It uses websockets.legacy.client (websockets 10 and later), whose
write_frame can send a text frame that is not UTF-8.
"""

import asyncio
import ssl
import sys

from websockets.exceptions import ConnectionClosed
from websockets.legacy.client import WebSocketClientProtocol, connect

OP_TEXT, OP_PONG = 0x1, 0xA

# Every check must end within this many seconds; a server that stops
# answering fails the check instead of hanging the run.
CHECK_TIMEOUT = 60


class Recorder(WebSocketClientProtocol):
    """Keeps the payload of every pong frame the server sends."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.pongs = []
        self.pong_came = asyncio.Event()

    async def read_frame(self, max_size):
        frame = await super().read_frame(max_size)
        if frame.opcode == OP_PONG:
            self.pongs.append(bytes(frame.data))
            self.pong_came.set()
        return frame


def payload(n):
    base = bytes((i * 31 + 7) & 0xFF for i in range(256))
    return (base * (n // 256 + 1))[:n]


def text(n):
    """A string of n bytes in UTF-8, two-byte characters but for the last."""
    return "é" * (n // 2) + "a" * (n % 2)


def describe(m):
    kind = "text" if isinstance(m, str) else "binary"
    return f"{kind} of {len(m.encode() if isinstance(m, str) else m)} B"


async def open_conn(url):
    tls = None
    if url.startswith("wss:"):
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        tls.check_hostname = False
        tls.verify_mode = ssl.CERT_NONE
    # No keepalive pings: the only pings are the checks' own, so every pong
    # answers one of them.
    return await connect(
        url,
        ssl=tls,
        create_protocol=Recorder,
        max_size=64 << 20,
        ping_interval=None,
        close_timeout=10,
    )


async def echo(ws, m):
    await ws.send(m)
    got = await ws.recv()
    if type(got) is not type(m):
        raise AssertionError(f"sent {describe(m)}, got {describe(got)}")
    if got != m:
        i = next((i for i, (a, b) in enumerate(zip(got, m)) if a != b), min(len(got), len(m)))
        raise AssertionError(f"sent {describe(m)}, got {describe(got)} differing from {'character' if isinstance(m, str) else 'byte'} {i}")


checks = []


def check(name):
    def add(fn):
        checks.append((name, fn))
        return fn

    return add


for size in [0, 125, 126, 65535, 65536, 1 << 20]:

    @check(f"text {size} B")
    async def _(ws, size=size):
        await echo(ws, text(size))

    @check(f"binary {size} B")
    async def _(ws, size=size):
        await echo(ws, payload(size))


@check("multi-byte UTF-8 text")
async def _(ws):
    await echo(ws, "héllo wörld ✓ 🚀")


@check("1000 pipelined messages come back in order")
async def _(ws):
    n = 1000

    async def send():
        for i in range(n):
            await ws.send(f"m{i}" if i % 2 else f"m{i}".encode())

    sender = asyncio.ensure_future(send())
    try:
        for i in range(n):
            got = await ws.recv()
            want = f"m{i}" if i % 2 else f"m{i}".encode()
            if type(got) is not type(want) or got != want:
                raise AssertionError(f"message {i} is {got!r}, want {want!r}")
    finally:
        if not sender.done():
            sender.cancel()
    await sender


@check("pings are answered with their payloads")
async def _(ws):
    sent = [b"are you there", bytes(range(125))]
    for i, p in enumerate(sent):
        ws.pong_came.clear()
        # websockets waits only for a pong that carries the payload; a pong
        # that carries another fails the check at once instead.
        await ws.ping(p)
        await ws.pong_came.wait()
        if ws.pongs[i:] != [p]:
            raise AssertionError(f"pongs carried {ws.pongs[i:]!r}, want {p!r}")
    await echo(ws, "after pings")


@check("close code is echoed")
async def _(ws):
    await ws.close(4002, "python bye")
    rcvd = ws.close_rcvd
    if rcvd is None:
        raise AssertionError(f"no close frame came back (close code {ws.close_code})")
    if rcvd.code != 4002:
        raise AssertionError(f"close code {rcvd.code} ({rcvd.reason!r}), want 4002")


async def invalid_utf8(url):
    """Sends a text frame that is not UTF-8 on a connection of its own; the
    server must close it with 1007 before it hears a close from us."""
    ws = await open_conn(url)
    try:
        if not callable(getattr(ws, "write_frame", None)):
            return "this websockets cannot write a raw frame"
        await ws.write_frame(True, OP_TEXT, b"caf\xc3(")
        try:
            got = await ws.recv()
            raise AssertionError(f"the server echoed {got!r}")
        except ConnectionClosed:
            pass
        await ws.wait_closed()
        rcvd = ws.close_rcvd
        if rcvd is None or ws.close_rcvd_then_sent is not True:
            raise AssertionError(f"the server sent no close first (close code {ws.close_code})")
        if rcvd.code != 1007:
            raise AssertionError(f"close code {rcvd.code} ({rcvd.reason!r}), want 1007")
    finally:
        await ws.close()
    return None


async def main(url):
    failed = passed = 0

    def report(name, err):
        nonlocal failed, passed
        if err is None:
            passed += 1
            print(f"ok   {name}", flush=True)
        else:
            failed += 1
            print(f"FAIL {name}: {err}", flush=True)

    try:
        ws = await asyncio.wait_for(open_conn(url), CHECK_TIMEOUT)
    except Exception as e:
        report("open", f"{type(e).__name__}: {e}")
        return failed, passed
    agreed = [e.name for e in ws.extensions]
    if "permessage-deflate" in agreed:
        print(f"     permessage-deflate: agreed ({ws.response_headers.get('Sec-WebSocket-Extensions')})", flush=True)
    else:
        print("     permessage-deflate: offered, not agreed", flush=True)

    for name, fn in checks:
        try:
            await asyncio.wait_for(fn(ws), CHECK_TIMEOUT)
            report(name, None)
        except Exception as e:
            report(name, f"{type(e).__name__}: {e}" if not isinstance(e, AssertionError) else e)
            # What the failed check left unread would fail the next ones:
            # they go on over a connection of their own.
            ws.transport.abort()
            try:
                ws = await asyncio.wait_for(open_conn(url), CHECK_TIMEOUT)
            except Exception as e:
                report("open again", f"{type(e).__name__}: {e}")
                return failed, passed
    await ws.close()

    name = "invalid UTF-8 text is closed with 1007"
    try:
        why = await asyncio.wait_for(invalid_utf8(url), CHECK_TIMEOUT)
        if why is None:
            report(name, None)
        else:
            print(f"skip {name}: {why}", flush=True)
    except Exception as e:
        report(name, f"{type(e).__name__}: {e}" if not isinstance(e, AssertionError) else e)
    return failed, passed


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python3 ws_echo.py URL", file=sys.stderr)
        sys.exit(2)
    failed, passed = asyncio.run(main(sys.argv[1]))
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
