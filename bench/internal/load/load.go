// Package load is the load client of the side-by-side benchmarks. It is
// built to cost less per message than any server it drives, so that a
// figure measured through it is the server's and not the client's: each
// connection sends messages that were framed (and, for WebSocket, masked)
// once, stamping only a sequence number and a send time into each, many
// per write; and it parses the echoes' headers by hand out of one read
// buffer it reuses, many per read. No message allocates.
//
// Every echo is checked on the way back: its sequence number, its length
// and every byte after the send time, so a server that drops, reorders or
// corrupts a message ends the run with [ErrWrongEcho] instead of being
// measured.
//
// A message's payload is laid out as
//
//	[0:8]   sequence number on its connection, little-endian
//	[8:16]  send time, nanoseconds of [Now], little-endian
//	[16:]   byte i is byte(i)
package load

import (
	"errors"
	"fmt"
	"time"
)

// Proto is how messages are framed on the wire.
type Proto int

const (
	// WebSocket frames each message as one binary WebSocket frame
	// (RFC 6455), masked from client to server.
	WebSocket Proto = iota
	// Raw frames each message with a 4-byte big-endian length: the
	// protocol of the raw-TCP ceiling.
	Raw
)

func (p Proto) String() string {
	switch p {
	case WebSocket:
		return "websocket"
	case Raw:
		return "raw"
	}
	return fmt.Sprintf("Proto(%d)", int(p))
}

// MinSize is the smallest message this package sends: a sequence number
// and a send time.
const MinSize = 16

var (
	// ErrWrongEcho reports an echo that is not the message sent: another
	// sequence number (a message lost or reordered), another length, or
	// other bytes.
	ErrWrongEcho = errors.New("load: wrong echo")
	// ErrFrame reports a frame the client does not accept from a server:
	// masked, with reserved bits set, of an unknown opcode, or a
	// continuation out of place.
	ErrFrame = errors.New("load: bad frame")
	// ErrTooLarge reports a message longer than the reader's limit.
	ErrTooLarge = errors.New("load: message too large")
	// ErrSize reports a message size below [MinSize].
	ErrSize = errors.New("load: message smaller than MinSize")
	// ErrInflate reports a compressed message from a server that does not
	// inflate: not DEFLATE, or cut short.
	ErrInflate = errors.New("load: corrupt compressed message")
	// ErrDeflate reports a server that did not agree to permessage-deflate
	// as [DialOptions].Deflate offers it.
	ErrDeflate = errors.New("load: permessage-deflate not agreed")
)

var epoch = time.Now()

// Now is the clock of the send times stamped into messages: nanoseconds
// since the process started, monotonic.
func Now() int64 { return int64(time.Since(epoch)) }

// pattern returns the payload bytes of a message of size bytes after its
// stamps, as [Frames] fills them in and an echo must return them.
func pattern(size int) []byte {
	p := make([]byte, size)
	for i := range p {
		p[i] = byte(i)
	}
	return p[MinSize:]
}
