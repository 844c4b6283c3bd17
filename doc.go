// Package pollws is poll-style ("Ready / NotReady") non-blocking I/O for
// WebSocket servers that talk to many clients: no goroutine parked on a
// slow or idle client, no buffer that grows without bound or with what a
// peer merely claims, no byte lost that was said to be accepted (and
// every loss counted), and a graceful close that flushes first.
//
// The packages:
//
//   - asyncio: the contract (AsyncWriter and AsyncReader: PollWrite,
//     PollFlush, Shutdown, PollRead; Task notifications), blocking
//     helpers with a context (BlockOn, WriteAll, Read, Flush, Shutdown),
//     a bounded in-memory Pipe, WaitSet and Executor.
//   - asyncio/asynciotest: the conformance kits for writers and readers;
//     every one in this module passes them, and yours can too.
//   - buf: bounded buffers: Stream (chunks, fan-in) and Channel (one
//     writer, many strong or weak readers).
//   - wsconn: WebSocket connections (Upgrade, Dial) with polled reads and
//     writes, a Reactor that serves them without a goroutine each,
//     compression, WebSockets over HTTP/2.
//   - wsconn/gorillaws: the same non-blocking writes for code on
//     gorilla/websocket.
//   - shutdown: a close that flushes first and reports what it could not
//     deliver, and a Group that admits, expires and drains a server's
//     connections when http.Server.Shutdown runs.
//   - fanout: one stream per topic to many subscribers, a slow one
//     overtaken instead of slowing the others; across server instances
//     through a Bus (fanout/natsbus, a module of its own, is one over
//     NATS).
//
// examples/echo is the place to start: go run ./examples/echo.
//
// This package itself holds no code: import the packages above.
package pollws
