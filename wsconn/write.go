package wsconn

import (
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"math/rand/v2"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/internal/pool"
	"github.com/pollws/pollws/internal/sendq"
	"github.com/pollws/pollws/wsconn/internal/frame"
)

// PollWriteMessage writes p as one message of type typ in one frame: all
// of it, Ready(len(p)), or nothing, NotReady, having arranged for t to be
// notified when it can go on. A message larger than the buffer is taken
// only when nothing else is pending, so the connection holds at most the
// larger of its buffer and one message. The frames go out when the buffer
// fills, on [Conn.PollFlush], or before a read waits for the peer.
//
// On a connection that agreed on permessage-deflate (see
// [Options].Compression), a message of at least MinSize bytes goes out
// compressed, under the same contract: it is compressed only once the
// buffer has room for the most its compression can take (its size, plus
// a few bytes per 16 KiB), so that a NotReady answer costs no compression.
// When the buffer has less room, the message waits like any other, or, if
// room for it as it is came meanwhile, goes out uncompressed: the peer
// reads it the same.
//
// Writes after Shutdown began, or after the peer's close frame came, fail
// with [asyncio.ErrShutdown].
func (c *Conn) PollWriteMessage(t *asyncio.Task, typ MessageType, p []byte) (asyncio.Async[int], error) {
	if typ != Text && typ != Binary {
		return asyncio.NotReady[int](), fmt.Errorf("wsconn: write of %v: not a message type", typ)
	}
	one := [1][]byte{p}
	var wake asyncio.Wakeups
	c.mu.Lock()
	r, err := c.messageLocked(t, byte(typ), one[:], &wake)
	c.mu.Unlock()
	wake.Notify()
	return r, err
}

// Write writes p as one binary message without blocking: it is
// [asyncio.TryWrite].
func (c *Conn) Write(p []byte) (int, error) { return asyncio.TryWrite(c, p) }

// PollWrite writes p as one binary message, all or nothing: it is
// PollWriteMessage(t, Binary, p), except that an empty p is Ready(0) and
// sends nothing.
func (c *Conn) PollWrite(t *asyncio.Task, p []byte) (asyncio.Async[int], error) {
	if len(p) == 0 {
		c.mu.Lock()
		err := c.writableLocked(nil)
		c.mu.Unlock()
		if err != nil {
			return asyncio.NotReady[int](), err
		}
		return asyncio.Ready(0), nil
	}
	return c.PollWriteMessage(t, Binary, p)
}

// WriteBuf writes what b holds (up to eight of its chunks) as one binary
// message, with one vectored write, and advances b past it. A message
// that goes out compressed is compressed whole, its chunks gathered first.
func (c *Conn) WriteBuf(t *asyncio.Task, b asyncio.Buf) (asyncio.Async[int], error) {
	if b.Remaining() == 0 {
		return c.PollWrite(t, nil)
	}
	var chunks [8][]byte
	body := bufChunks(b, &chunks)
	var wake asyncio.Wakeups
	c.mu.Lock()
	r, err := c.messageLocked(t, frame.OpBinary, body, &wake)
	c.mu.Unlock()
	wake.Notify()
	if r.Ready && err == nil {
		b.Advance(r.Value)
	}
	return r, err
}

// PollFlush answers Ready when every frame written has reached the
// connection.
func (c *Conn) PollFlush(t *asyncio.Task) (asyncio.Async[struct{}], error) {
	var wake asyncio.Wakeups
	c.flushTLS()
	ready, err := c.out.PollFlush(t, &wake)
	wake.Notify()
	if err != nil {
		c.mu.Lock()
		clean := c.state == stateClosed && c.endErr == nil
		c.mu.Unlock()
		if clean && c.out.Undelivered() == 0 {
			return asyncio.Ready(struct{}{}), nil
		}
	}
	return unit(ready, err)
}

// messageLocked writes one whole message of op, whose payload is the
// concatenation of body, in one frame: compressed when the connection
// compresses and the message is worth it, all or nothing either way. It
// may change body's slices, which the caller made for this write.
func (c *Conn) messageLocked(t *asyncio.Task, op byte, body [][]byte, wake *asyncio.Wakeups) (asyncio.Async[int], error) {
	if c.z != nil {
		if r, done, err := c.compressedLocked(t, op, body, wake); done {
			return r, err
		}
	}
	return c.frameLocked(t, true, op, body, nil, wake)
}

// frameLocked writes one frame of op whose payload is the concatenation
// of body, all or nothing, and answers Ready(payload length). owner is
// the MessageWriter writing it, if any. It adds to wake the tasks to
// notify once c.mu is released.
func (c *Conn) frameLocked(t *asyncio.Task, fin bool, op byte, body [][]byte, owner *MessageWriter, wake *asyncio.Wakeups) (asyncio.Async[int], error) {
	if err := c.writableLocked(owner); err != nil {
		return asyncio.NotReady[int](), err
	}
	n, ready, err := c.putFrameLocked(t, fin, 0, op, body, false, wake)
	if !ready || err != nil {
		return asyncio.NotReady[int](), err
	}
	if owner != nil {
		c.mw = owner
		if fin {
			c.mw = nil
		}
	}
	return asyncio.Ready(n), nil
}

// putFrameLocked queues one frame with the reserved bits rsv; a priority
// frame (control) may pass a full buffer by one frame. It answers the
// payload length.
func (c *Conn) putFrameLocked(t *asyncio.Task, fin bool, rsv, op byte, body [][]byte, priority bool, wake *asyncio.Wakeups) (int, bool, error) {
	total := 0
	for _, b := range body {
		total += len(b)
	}
	h := frame.Header{Fin: fin, Rsv: rsv, Op: op, Length: int64(total)}
	if c.client {
		h.Masked = true
		binary.LittleEndian.PutUint32(h.Mask[:], rand.Uint32())
	}
	if c.tls != nil {
		return c.tlsFrameLocked(t, &h, body, priority, wake)
	}
	q := sendq.Req{Body: body, Whole: true, Priority: priority}
	if h.Masked {
		q.Key = &h.Mask
	}
	var hb [frame.MaxHeader]byte
	q.Head = hb[:frame.Put(&hb, &h)]
	_, ready, err := c.out.Poll(t, &q, wake)
	return total, ready, err
}

// tlsFrameLocked queues one frame through TLS. A small frame is staged
// in plaintext, after room in the send queue was reserved for it and for
// what was staged before, and encrypted with them at the next flush point
// (flushTLSLocked): a burst of small messages costs one record, not one
// each. A large one goes out at once after the staged frames, its
// payload from the caller's slices without a copy.
func (c *Conn) tlsFrameLocked(t *asyncio.Task, h *frame.Header, body [][]byte, priority bool, wake *asyncio.Wakeups) (int, bool, error) {
	total := int(h.Length)
	var hb [frame.MaxHeader]byte
	hn := frame.Put(&hb, h)
	size := hn + total
	o := c.tls
	if size > tlsStageMax {
		need := o.staged() + size
		ok, err := c.out.Reserve(t, need+tlsOverhead(need), priority, wake)
		if !ok || err != nil {
			return 0, false, err
		}
		if h.Masked {
			// Masked in a copy: the caller's bytes are not ours to change.
			c.flushTLSLocked()
			o.stageFrame(hb[:hn], body, h)
			c.flushTLSLocked()
			return total, true, nil
		}
		// The header goes out with the frames staged before it; the
		// payload from the caller's slices.
		o.grow(hn)
		*o.stage = append(*o.stage, hb[:hn]...)
		c.flushTLSLocked()
		for _, b := range body {
			if _, err = o.conn.Write(b); err != nil {
				return 0, false, fmt.Errorf("wsconn: tls: %w", err)
			}
		}
		return total, true, nil
	}
	if o.staged()+size > tlsStageMax {
		c.flushTLSLocked() // the stage stays within its pooled buffer
	}
	need := o.staged() + size
	ok, err := c.out.Reserve(t, need+tlsOverhead(need), priority, wake)
	if !ok || err != nil {
		return 0, false, err
	}
	o.stageFrame(hb[:hn], body, h)
	if o.staged() >= tlsStageMax {
		c.flushTLSLocked()
	}
	return total, true, nil
}

// tlsStageMax is the most plaintext staged before it is encrypted: a TLS
// record's worth.
const tlsStageMax = 16 << 10

// tlsOut is the TLS layer of a Conn whose TLS runs over a socket.Conn:
// the records it makes go into the send queue. Guarded by the Conn's mu.
type tlsOut struct {
	conn    *tls.Conn
	stage   *[]byte // pooled plaintext of frames not yet encrypted, else nil
	dropped int64   // bytes staged when the connection closed
}

// staged returns how many bytes of frames are staged; 0 for a nil o.
func (o *tlsOut) staged() int {
	if o == nil || o.stage == nil {
		return 0
	}
	return len(*o.stage)
}

// stageFrame appends the frame of header head and payload body to the
// staged bytes, masked as h says.
func (o *tlsOut) stageFrame(head []byte, body [][]byte, h *frame.Header) {
	o.grow(len(head) + int(h.Length))
	p := append(*o.stage, head...)
	start := len(p)
	for _, b := range body {
		p = append(p, b...)
	}
	if h.Masked {
		frame.Mask(p[start:], h.Mask, 0)
	}
	*o.stage = p
}

// grow makes sure a stage exists, with room for n more bytes when it is
// new: a record's worth at least.
func (o *tlsOut) grow(n int) {
	if o.stage == nil {
		o.stage = pool.Get(max(n, tlsStageMax))
		*o.stage = (*o.stage)[:0]
	}
}

// drop forgets the staged bytes of a connection that closed, counting
// them as undelivered.
func (o *tlsOut) drop() {
	if o.stage != nil {
		o.dropped += int64(len(*o.stage))
		pool.Put(o.stage)
		o.stage = nil
	}
}

// flushTLSLocked encrypts the staged frames into the send queue, in as
// few records as TLS makes of them. A TLS connection that writes into
// the queue fails only once it failed before or was shut: the queue's
// own error tells the writers then.
func (c *Conn) flushTLSLocked() {
	o := c.tls
	if o == nil || o.stage == nil {
		return
	}
	_, _ = o.conn.Write(*o.stage)
	pool.Put(o.stage)
	o.stage = nil
}

// flushTLS is flushTLSLocked for a caller without c.mu.
func (c *Conn) flushTLS() {
	if c.tls == nil {
		return
	}
	c.mu.Lock()
	c.flushTLSLocked()
	c.mu.Unlock()
}

// tlsOverhead bounds what TLS adds to n bytes written: per record, at
// most a header, a nonce, a tag, a MAC and padding (tlsRecordOverhead
// for the costliest suites), and a record for every tlsMinRecord bytes at
// worst (crypto/tls starts a connection with records small enough for
// one TCP segment).
func tlsOverhead(n int) int { return (n/tlsMinRecord + 1) * tlsRecordOverhead }

const (
	tlsRecordOverhead = 72
	tlsMinRecord      = 1024
)

// controlLocked queues a control frame with payload p ahead of a full
// buffer, in order with the frames before it.
func (c *Conn) controlLocked(t *asyncio.Task, op byte, p []byte, wake *asyncio.Wakeups) (bool, error) {
	one := [1][]byte{p}
	_, ready, err := c.putFrameLocked(t, true, 0, op, one[:], true, wake)
	return ready, err
}

// writableLocked returns why a data frame may not be written now by
// owner (nil, or the MessageWriter whose message is in progress).
func (c *Conn) writableLocked(owner *MessageWriter) error {
	switch {
	case c.state != stateOpen:
		return asyncio.ErrShutdown
	case c.mw != nil && c.mw != owner:
		return ErrMessageInProgress
	}
	return nil
}

// MessageWriter writes one message of a [Conn] as a stream of fragments:
// each PollWrite sends a fragment of what fits in the buffer, and Shutdown
// sends the final, empty fragment and flushes. It is an
// [asyncio.AsyncWriter], so a message of any size streams through a
// bounded buffer. While it is open, other messages of the connection fail
// with [ErrMessageInProgress]; control frames still go between its
// fragments.
//
// Its fragments go out uncompressed, even on a connection that agreed on
// permessage-deflate: a compressed message is compressed whole.
//
// A MessageWriter is safe for use by multiple goroutines, which write
// its fragments in the order their writes are taken.
type MessageWriter struct {
	c   *Conn
	typ MessageType
	// Guarded by c.mu.
	started bool // a fragment is out: the next ones are continuations
	closing bool // Shutdown began
	final   bool // the final fragment is queued
	done    bool // Shutdown is complete
	err     error
}

var _ asyncio.AsyncWriter = (*MessageWriter)(nil)

// MessageWriter returns a writer of one message of type typ. Nothing is
// sent until its first write or Shutdown.
func (c *Conn) MessageWriter(typ MessageType) *MessageWriter {
	m := &MessageWriter{c: c, typ: typ}
	if typ != Text && typ != Binary {
		m.err = fmt.Errorf("wsconn: MessageWriter of %v: not a message type", typ)
	}
	return m
}

// Write writes p without blocking: it is [asyncio.TryWrite].
func (m *MessageWriter) Write(p []byte) (int, error) { return asyncio.TryWrite(m, p) }

// PollWrite sends a fragment of p: as much of it as fits in the buffer
// now, or all of it when nothing is pending. It answers Ready(n), or
// NotReady when the buffer is full.
func (m *MessageWriter) PollWrite(t *asyncio.Task, p []byte) (asyncio.Async[int], error) {
	var wake asyncio.Wakeups
	c := m.c
	c.mu.Lock()
	r, err := m.writeLocked(t, p, &wake)
	c.mu.Unlock()
	wake.Notify()
	return r, err
}

func (m *MessageWriter) writeLocked(t *asyncio.Task, p []byte, wake *asyncio.Wakeups) (asyncio.Async[int], error) {
	switch {
	case m.err != nil:
		return asyncio.NotReady[int](), m.err
	case m.closing:
		return asyncio.NotReady[int](), asyncio.ErrShutdown
	case len(p) == 0:
		return asyncio.Ready(0), nil
	}
	n := len(p)
	if avail := m.c.availableLocked() - frame.MaxHeader; avail > 0 && n > avail {
		n = avail
	}
	r, err := m.frameLocked(t, false, p[:n], wake)
	if err != nil {
		m.err = err
		return r, err
	}
	if r.Ready {
		m.started = true
	}
	return r, nil
}

func (m *MessageWriter) frameLocked(t *asyncio.Task, fin bool, p []byte, wake *asyncio.Wakeups) (asyncio.Async[int], error) {
	op := byte(m.typ)
	if m.started {
		op = frame.OpContinuation
	}
	var body [][]byte
	one := [1][]byte{p}
	if len(p) > 0 {
		body = one[:]
	}
	return m.c.frameLocked(t, fin, op, body, m, wake)
}

// PollFlush answers Ready when every fragment written has reached the
// connection.
func (m *MessageWriter) PollFlush(t *asyncio.Task) (asyncio.Async[struct{}], error) {
	m.c.mu.Lock()
	err := m.err
	m.c.mu.Unlock()
	if err != nil {
		return asyncio.NotReady[struct{}](), err
	}
	return m.c.PollFlush(t)
}

// Shutdown ends the message: it sends the final fragment, empty, then
// flushes. Writes fail with [asyncio.ErrShutdown] from the first call on;
// a NotReady Shutdown resumes when called again, and after Ready it
// answers Ready at once. It does not close the connection.
func (m *MessageWriter) Shutdown(t *asyncio.Task) (asyncio.Async[struct{}], error) {
	var wake asyncio.Wakeups
	c := m.c
	c.mu.Lock()
	switch {
	case m.done:
		c.mu.Unlock()
		return asyncio.Ready(struct{}{}), nil
	case m.err != nil:
		c.mu.Unlock()
		return asyncio.NotReady[struct{}](), m.err
	}
	m.closing = true
	if !m.final {
		r, err := m.frameLocked(t, true, nil, &wake)
		if err != nil {
			m.err = err
		}
		if err != nil || !r.Ready {
			c.mu.Unlock()
			wake.Notify()
			return asyncio.NotReady[struct{}](), err
		}
		m.final = true
	}
	c.mu.Unlock()
	wake.Notify()
	r, err := c.PollFlush(t)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		m.err = err
		return r, err
	}
	if r.Ready {
		m.done = true
	}
	return r, nil
}

// Available returns how many bytes of frames the connection takes now
// without a flush: a message that, with its frame header (2 to 14
// bytes), is no larger is accepted at once. It is 0 when the buffer is
// full or writes are refused.
func (c *Conn) Available() int {
	if c.tls == nil {
		return c.out.Available()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.availableLocked()
}

// availableLocked is Available for a caller that holds c.mu. Over TLS a
// frame is reserved with the frames staged before it and what TLS adds
// to them (tlsFrameLocked): the room is what is left of the queue's once
// those are counted.
func (c *Conn) availableLocked() int {
	free := c.out.Available()
	if c.tls == nil || free == 0 {
		return free
	}
	// The most x with x + tlsOverhead(x) <= free, less what is staged.
	return max((free-tlsRecordOverhead)*tlsMinRecord/(tlsMinRecord+tlsRecordOverhead)-c.tls.staged(), 0)
}
