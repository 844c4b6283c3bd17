// Package wsconn is WebSocket connections for servers that talk to many
// clients: reads and writes are polls ("Ready / NotReady") that never
// park the caller, memory is bounded by what the peer sent, never by what
// it claims, and a graceful close flushes first.
//
// A [Conn] is one WebSocket connection, server side ([Upgrade], [Server])
// or client side ([Dial], [Client]). [Conn.PollReadMessage] answers Ready
// with the next whole message, or NotReady after arranging for the
// caller's [asyncio.Task] to be notified when more bytes come;
// [Conn.PollWriteMessage] takes a whole message at once or answers
// NotReady when the connection holds its buffer's worth ([Options].BufferSize).
// [Conn.ReadMessage] is the blocking read, with a context, for code that
// would rather park a goroutine. A read sends what was written before it
// waits, so an echo's replies to a burst leave in one writev.
//
// A [Reactor] serves many connections on a few goroutines: a net/http
// handler upgrades, hands the Conn and its [Handler] to [Reactor.Serve]
// and returns. On Linux one edge-triggered epoll set wakes a handler when
// its socket has bytes or room; a connection that waits holds no
// goroutine and no buffer. [NewListener] makes TLS connections servable
// the same way, and bounds how many connections a server holds. A
// listener of WebSockets alone can skip net/http: [Reactor.ServeListener]
// reads and answers the opening handshakes on the reactor too.
//
// The peer is not trusted: frames are checked as they come (RFC 6455:
// masking, opcodes, control frames, UTF-8 of text, close codes), a
// message larger than [Options].MaxMessageSize is refused with 1009
// before it is read, a peer silent past [Options].IdleTimeout is closed
// with 1008, pings ([Options].PingInterval) keep a quiet peer's
// connection alive, and a closing handshake takes at most
// [Options].CloseTimeout. Bad input closes the connection with its status
// code and an error that says why; nothing else is harmed.
//
// [Options].Compression negotiates permessage-deflate (RFC 7692).
// [Upgrade] accepts WebSockets over HTTP/2 streams (RFC 8441), and [Dial]
// asks for them through an HTTP/2 client ([DialOptions].HTTP2).
//
// [ConnWriter] is the write side alone, over any [net.Conn]: bytes
// instead of messages, with the same contract. [Pump] moves a stream of
// messages from a producer to a connection, stopping the producer while
// the connection is full. Package gorillaws gives code written on
// gorilla/websocket the same non-blocking writes.
package wsconn
