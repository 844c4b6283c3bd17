// Package broadcast is the hub of examples/broadcast: it sends one stream
// of WebSocket messages to many subscribers through one [buf.Channel],
// without letting a slow subscriber slow the others or grow memory.
//
// Every subscriber is a weak reader of the channel. A subscriber that
// falls more than the channel's capacity behind is overtaken: the
// messages it missed are dropped for it alone, and it is told how many
// with a small text message before the next one it gets,
//
//	{"type":"missed","frames":12,"bytes":12288}
//
// A subscriber overtaken too often within a window
// ([Options].KickAfter, [Options].BehindWindow) is disconnected with
// close code 1008 (policy violation).
//
// Subscribers cost no goroutine while they wait: each is a small state
// machine driven by its [asyncio.Task], which the channel notifies when
// a message arrives and the connection when it can take more bytes. A
// few worker goroutines, started only while some subscriber has work and
// never more than [Options].Workers, poll them. Memory is bounded by the
// channel's capacity, plus, per subscriber, its connection's write
// buffer and the one message it is writing.
package broadcast
