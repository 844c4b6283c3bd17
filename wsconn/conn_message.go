package wsconn

import (
	"fmt"

	"github.com/gobwas/ws"

	"github.com/pollws/pollws/asyncio"
)

// MessageWriter writes one message of a [Conn] as a stream of fragments:
// each PollWrite sends a fragment of what fits in the buffer, and Shutdown
// sends the final, empty fragment and flushes. It is an
// [asyncio.AsyncWriter], so a message of any size streams through a
// bounded buffer. While it is open, other data messages of the
// connection fail with [ErrMessageInProgress]; control frames may still
// go between its fragments.
//
// A MessageWriter is not safe for concurrent use.
type MessageWriter struct {
	c       *Conn
	op      ws.OpCode
	started bool // a fragment is out: the next ones are continuations
	closing bool // Shutdown began
	final   bool // the final fragment is queued
	done    bool // Shutdown is complete
	err     error
}

var (
	_ asyncio.AsyncWriter = (*MessageWriter)(nil)
	_ asyncio.BufWriter   = (*MessageWriter)(nil)
)

// MessageWriter returns a writer of one message of type op (ws.OpText or
// ws.OpBinary). Nothing is sent until its first write or Shutdown.
func (c *Conn) MessageWriter(op ws.OpCode) *MessageWriter {
	m := &MessageWriter{c: c, op: op}
	if op != ws.OpText && op != ws.OpBinary {
		m.err = fmt.Errorf("wsconn: MessageWriter of opcode %#x", byte(op))
	}
	return m
}

// Write writes p without blocking: it is [asyncio.TryWrite].
func (m *MessageWriter) Write(p []byte) (int, error) { return asyncio.TryWrite(m, p) }

// PollWrite sends a fragment of p: as much of it as fits in the buffer
// now, or all of it when nothing is pending. It answers Ready(n), or
// NotReady when the buffer is full.
func (m *MessageWriter) PollWrite(t *asyncio.Task, p []byte) (asyncio.Async[int], error) {
	switch {
	case m.err != nil:
		return asyncio.NotReady[int](), m.err
	case m.closing:
		return asyncio.NotReady[int](), asyncio.ErrShutdown
	case len(p) == 0:
		return asyncio.Ready(0), nil
	}
	n := len(p)
	if avail := m.c.w.Available() - ws.MaxHeaderSize; avail > 0 && n > avail {
		n = avail
	}
	one := [1][]byte{p[:n]}
	r, err := m.c.pollFrame(t, cwSlotApp, false, m.opcode(), one[:], m)
	if err != nil {
		m.err = err
		return r, err
	}
	if r.Ready {
		m.started = true
	}
	return r, nil
}

// WriteBuf sends a fragment of b's first chunk, as PollWrite does, and
// advances b past it.
func (m *MessageWriter) WriteBuf(t *asyncio.Task, b asyncio.Buf) (asyncio.Async[int], error) {
	if b.Remaining() == 0 {
		return asyncio.Ready(0), nil
	}
	r, err := m.PollWrite(t, b.Chunk())
	if r.Ready && err == nil {
		b.Advance(r.Value)
	}
	return r, err
}

func (m *MessageWriter) opcode() ws.OpCode {
	if m.started {
		return ws.OpContinuation
	}
	return m.op
}

// PollFlush answers Ready when every fragment written has reached the
// connection.
func (m *MessageWriter) PollFlush(t *asyncio.Task) (asyncio.Async[struct{}], error) {
	if m.err != nil {
		return asyncio.NotReady[struct{}](), m.err
	}
	return m.c.w.PollFlush(t)
}

// Shutdown ends the message: it sends the final fragment, empty, then
// flushes. Writes fail with [asyncio.ErrShutdown] from the first call on;
// a NotReady Shutdown resumes when called again, and after Ready it
// answers Ready at once. It does not close the connection.
func (m *MessageWriter) Shutdown(t *asyncio.Task) (asyncio.Async[struct{}], error) {
	switch {
	case m.done:
		return asyncio.Ready(struct{}{}), nil
	case m.err != nil:
		return asyncio.NotReady[struct{}](), m.err
	}
	m.closing = true
	if !m.final {
		r, err := m.c.pollFrame(t, cwSlotApp, true, m.opcode(), nil, m)
		if err != nil {
			m.err = err
			return asyncio.NotReady[struct{}](), err
		}
		if !r.Ready {
			return asyncio.NotReady[struct{}](), nil
		}
		m.final = true
	}
	r, err := m.c.w.PollFlush(t)
	if err != nil {
		m.err = err
		return r, err
	}
	if r.Ready {
		m.done = true
	}
	return r, nil
}
