// Package pollws is a set of poll-style ("Ready / NotReady") non-blocking
// write adapters for WebSocket servers that write to many clients: no
// goroutine parked on a slow client, no buffer that grows without bound,
// no byte lost that was said to be accepted, and a graceful close that
// flushes first.
//
// The packages:
//
//   - asyncio: the contract every writer keeps (AsyncWriter: PollWrite,
//     PollFlush, Shutdown; Task notifications), blocking helpers with a
//     context (BlockOn, WriteAll, Flush, Shutdown), a bounded in-memory
//     Pipe, vectored Bufs, and the pull-based StreamProducer.
//   - asyncio/asynciotest: the conformance kit; every writer in this
//     module passes it, and yours can too.
//   - buf: the bounded buffers everything queues through: Ring (bytes),
//     Stream (chunks) and Channel (one writer, many strong or weak
//     readers).
//   - wsconn: writers over net.Conn and TLS, WebSocket connections framed
//     with gobwas/ws, and the same contract for gorilla/websocket.
//   - shutdown: a close that flushes first and reports what it could not
//     deliver, and a Group that admits, expires and drains a server's
//     connections when http.Server.Shutdown runs.
//
// examples/echo is the place to start: go run ./examples/echo.
//
// This package itself holds no code: import the packages above.
package pollws
