package wsconn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/internal/pool"
	"github.com/pollws/pollws/internal/socket"
	"github.com/pollws/pollws/wsconn/internal/frame"
)

// Message is a message from the peer. Data is the connection's buffer,
// lent until the next read of the connection: a ReadMessage, or a Close
// or Shutdown that reads for the peer's close while no ReadMessage runs.
// Copy it to keep it, and do not hold on to the Message past the next
// read (a handler that keeps it in its state clears it once done), or the
// buffer cannot go back to the pool.
type Message struct {
	Type MessageType
	Data []byte
}

// reader is the state of a Conn's read side. Whoever holds the read side
// (held) owns every field but held.
type reader struct {
	held  atomic.Bool
	nhold atomic.Int32 // tasks in the Conn's hwait

	buf     *[]byte     // the read buffer while bytes are pending, else nil
	holding atomic.Bool // buf != nil, for observers other than the reader
	r, w    int32       // (*buf)[r:w] is not parsed yet
	ticks   uint32      // the read edges counted before the last read of the socket
	msg     *[]byte     // a message too large for buf, as it arrives, else nil
	n       int         // bytes of msg
	pre     *pending    // bytes to read first: past the opening handshake, or a goroutine's read

	op     byte // type of the message in progress; 0 between messages
	frame  bool // a data frame's header was taken and remain counts its payload
	fin    bool
	masked bool
	mask   [4]byte
	off    int   // offset in the frame's payload
	remain int64 // payload bytes of the frame still to come
	size   int64 // payload bytes of the message so far, the current frame whole
	text   frame.UTF8
	kept   bool  // the message last returned aliases buf or msg
	self   bool  // the read in progress waits in its own goroutine
	short  bool  // the last read of the socket took less than it could
	err    error // sticky

	got *pending // bytes a goroutine read for a connection without a socket, handed over under rmu
}

// pending is bytes read and not yet parsed, held aside: those past the
// opening handshake, or those a goroutine read; err comes after them.
type pending struct {
	b   []byte
	buf *[]byte // the pooled buffer b is in, if any
	err error
}

var (
	errWouldBlock = errors.New("wsconn: the read would block")
	errBlocked    = errors.New("wsconn: the read waits for the writer")
	errConnEOF    = fmt.Errorf("wsconn: the connection ended without a close frame: %w", io.ErrUnexpectedEOF)
	connPast      = time.Unix(1, 0)
)

// PollReadMessage answers Ready with the next whole message from the
// peer, or NotReady, having read what there was and arranged for t to be
// notified when more comes. A message is all or nothing: one in progress
// stays inside the connection, in memory that grows with the bytes that
// arrived, never with a length the peer merely claims; a connection that
// waits holds no read buffer.
//
// Before it answers NotReady it starts sending the frames written so
// far, so that replies to everything read leave together. Pings are
// answered on the way, each with its pong, in order; when the connection
// cannot take a pong (the peer reads nothing) reading waits for it, so
// that back-pressure reaches the peer instead of memory growing.
//
// When the peer closes, the read answers its close frame and returns a
// *[CloseError]; on bad input it closes the connection with the matching
// status code and returns an error that wraps [ErrProtocol],
// [ErrInvalidUTF8], [ErrMessageTooBig] or, for a compressed message that
// does not inflate, [ErrCorruptMessage]; [ErrIdle] when the peer was
// silent past [Options].IdleTimeout. Errors are sticky.
//
// Over a TCP socket on Linux the wait is a [Reactor]'s, when the
// connection is served by one; otherwise, and for other connections, a
// goroutine waits for the bytes and exits when they come.
func (c *Conn) PollReadMessage(t *asyncio.Task) (asyncio.Async[Message], error) {
	m, ready, err := c.pollRead(t)
	if !ready || err != nil {
		return asyncio.NotReady[Message](), err
	}
	return asyncio.Ready(m), nil
}

// ReadMessage waits for the next message from the peer, as
// [Conn.PollReadMessage] reads it, parking the calling goroutine. Pending
// writes are flushed before it waits. ctx bounds the wait; when it ends,
// the read returns ctx's cause and the connection stays usable. When the
// read ends the connection (the peer's close, bad input), the closing
// handshake is over, at most CloseTimeout later, when it returns.
func (c *Conn) ReadMessage(ctx context.Context) (Message, error) {
	if _, err := asyncio.BlockOn(ctx, c.pollHold); err != nil {
		return Message{}, err
	}
	stop := c.watchRead(ctx)
	m, err := asyncio.BlockOn(ctx, c.pollHeldSelf)
	if stop != nil && stop() && errors.Is(err, os.ErrDeadlineExceeded) {
		err = context.Cause(ctx)
	}
	c.releaseRead()
	if err != nil && !errors.Is(err, context.Cause(ctx)) {
		c.finishClosing()
	}
	return m, err
}

// pollHold takes the read side.
func (c *Conn) pollHold(t *asyncio.Task) (asyncio.Async[struct{}], error) {
	if !c.holdRead(t) {
		return asyncio.NotReady[struct{}](), nil
	}
	return asyncio.Ready(struct{}{}), nil
}

// pollHeldSelf is the poll of a blocking read, with the read side held:
// it waits for bytes in the calling goroutine itself, and answers
// NotReady only for what a task must wait for (a pong that the connection
// cannot take yet).
func (c *Conn) pollHeldSelf(t *asyncio.Task) (asyncio.Async[Message], error) {
	for {
		m, ready, err := c.readHeld(t, true)
		switch {
		case err == errWouldBlock:
			if werr := c.sock.WaitReadable(); werr != nil && !c.doomed() {
				if errors.Is(werr, os.ErrDeadlineExceeded) {
					return asyncio.NotReady[Message](), werr // the context ended: ReadMessage tells
				}
				return asyncio.NotReady[Message](), c.readFailed(werr)
			}
			continue // bytes, or the end: the next read finds out
		case err != nil:
			return asyncio.NotReady[Message](), err
		case !ready:
			return asyncio.NotReady[Message](), nil
		}
		return asyncio.Ready(m), nil
	}
}

// watchRead arranges for ctx's end to wake a blocked read with a read
// deadline. The returned stop, nil when ctx never ends, reports whether
// ctx ended the read, and clears the deadline then.
func (c *Conn) watchRead(ctx context.Context) (stop func() bool) {
	if ctx.Done() == nil {
		return nil
	}
	fired := make(chan struct{})
	stopf := context.AfterFunc(ctx, func() {
		_ = c.out.Conn().SetReadDeadline(connPast)
		c.wakeReaders()
		close(fired)
	})
	return func() bool {
		if stopf() {
			return false
		}
		<-fired
		_ = c.out.Conn().SetReadDeadline(time.Time{})
		return true
	}
}

// pollRead reads the next message, or registers t to be notified when
// it can go on.
func (c *Conn) pollRead(t *asyncio.Task) (Message, bool, error) {
	if !c.holdRead(t) {
		return Message{}, false, nil
	}
	m, ready, err := c.readHeld(t, false)
	c.releaseRead()
	return m, ready, err
}

// holdRead takes the read side, or registers t to be notified when it is
// given back and reports false.
func (c *Conn) holdRead(t *asyncio.Task) bool {
	rd := &c.rd
	if rd.held.CompareAndSwap(false, true) {
		return true
	}
	c.rmu.Lock()
	if c.hwait == nil {
		c.hwait = new(asyncio.WaitSet)
	}
	c.hwait.Add(t)
	rd.nhold.Store(int32(c.hwait.Len()))
	c.rmu.Unlock()
	// A release that came before the task waited found no waiter: try
	// again. One after it finds the waiter and notifies it.
	return rd.held.CompareAndSwap(false, true)
}

// releaseRead gives back the read side and wakes the tasks waiting for
// it, if any.
func (c *Conn) releaseRead() {
	c.rd.held.Store(false)
	if c.rd.nhold.Load() != 0 {
		var wake asyncio.Wakeups
		c.rmu.Lock()
		c.takeHoldersLocked(&wake)
		c.rmu.Unlock()
		wake.Notify()
	}
	if c.waiting() {
		c.mu.Lock()
		var wake asyncio.Wakeups
		c.takeShutWaitLocked(&wake)
		c.mu.Unlock()
		wake.Notify()
	}
}

// takeHoldersLocked moves the tasks waiting for the read side to wake,
// with c.rmu held.
func (c *Conn) takeHoldersLocked(wake *asyncio.Wakeups) {
	if c.hwait != nil {
		c.hwait.TakeInto(wake)
	}
	c.rd.nhold.Store(0)
}

// connEdges is a served Conn as the reactor's Edges of its socket: a
// read edge wakes its readers, a write edge its send queue, and the
// registration's deadline is the connection's timer.
type connEdges Conn

func (e *connEdges) ReadEdge()  { (*Conn)(e).wakeReaders() }
func (e *connEdges) WriteEdge() { e.out.Edge() }
func (e *connEdges) Expired()   { (*Conn)(e).tick() }

// wakeReaders notifies the tasks waiting for bytes, and those waiting for
// the read side, which may find the connection ended.
func (c *Conn) wakeReaders() {
	c.rticks.Add(1)
	c.rmu.Lock()
	wake := c.rwait.Take()
	c.takeHoldersLocked(&wake)
	c.rmu.Unlock()
	wake.Notify()
}

// watched reports whether a reactor watches the socket and has not seen
// its end: then every byte that comes is an edge it reports.
func (c *Conn) watched() bool {
	c.rmu.Lock()
	reg := c.reg
	c.rmu.Unlock()
	return reg != nil && !reg.Ended()
}

// awaitReadable registers t for the next readable edge after ticks, and
// reports false when one came meanwhile (read again).
func (c *Conn) awaitReadable(t *asyncio.Task, ticks uint32) bool {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.rticks.Load() != ticks {
		return false
	}
	c.rwait.Add(t)
	if c.reg == nil && !c.rgoing && c.rd.got == nil {
		c.rgoing = true
		c.blocking().wg.Add(1)
		go c.waitBytes()
	}
	return true
}

// waitBytes is the goroutine that waits for bytes when no reactor does:
// over a socket it waits for the socket to be readable; over another
// connection it reads into a buffer of its own and hands it over.
func (c *Conn) waitBytes() {
	defer c.blk.Load().wg.Done()
	var got *pending
	if c.sock != nil {
		_ = c.sock.WaitReadable()
	} else {
		buf := pool.Get(readBufferSize)
		n, err := c.out.Conn().Read(*buf)
		if n == 0 && err == nil {
			err = io.ErrNoProgress
		}
		got = &pending{b: (*buf)[:n], buf: buf, err: err}
	}
	c.rmu.Lock()
	c.rgoing = false
	c.rd.got = got
	c.rmu.Unlock()
	c.wakeReaders()
}

// readHeld reads the next message with the read side held.
func (c *Conn) readHeld(t *asyncio.Task, self bool) (Message, bool, error) {
	rd := &c.rd
	rd.self = self
	c.releaseKept()
	for {
		if rd.err == nil && c.doomed() {
			rd.err = c.doomedErr()
		}
		if rd.err != nil {
			if c.z != nil {
				c.z.r.Release() // the connection ended: see releaseCompression
			}
			return Message{}, false, rd.err
		}
		m, ready, err := c.parse(t)
		if err == errBlocked {
			return Message{}, false, nil // an answer waits for room; t waits for the writer
		}
		if err != nil || ready {
			return m, ready, err
		}
		if c.budget.Load() < 0 {
			// A Reactor's handler that read its share of bytes in this
			// poll yields, so that a busy connection does not starve
			// the others: polled again after them, it reads on.
			c.budget.Store(0)
			t.Notify()
			return Message{}, false, nil
		}
		// When the last read of the socket took less than it could, the
		// socket had no more then, and the reactor reports any byte that
		// came since as an edge after rd.ticks: no need to read again
		// only to hear that it would block. Not so for the end of the
		// stream or an error, which may have come with those bytes, on
		// an edge seen before.
		skip := rd.short && !self && c.watched()
		rd.short = false
		var ticks uint32
		var ferr error
		if skip {
			ticks, ferr = rd.ticks, errWouldBlock
		} else {
			ticks = c.rticks.Load()
			rd.ticks = ticks
			ferr = c.fill(self)
		}
		switch {
		case ferr == nil:
			continue
		case errors.Is(ferr, os.ErrDeadlineExceeded) && c.doomed() && c.doomedErr() != nil:
			// The timer ended a blocked read to tell that the connection
			// ends (idle): the loop's top returns why, and the close
			// frame, queued already, goes out before the end.
			continue
		case self && errors.Is(ferr, os.ErrDeadlineExceeded):
			return Message{}, false, ferr // the context ended: ReadMessage tells
		case ferr != errWouldBlock:
			return Message{}, false, c.readFailed(ferr)
		}
		c.idle()
		var wake asyncio.Wakeups
		c.flushTLS()
		c.out.Kick(&wake)
		wake.Notify()
		if self && c.sock != nil {
			return Message{}, false, errWouldBlock
		}
		if c.awaitReadable(t, ticks) {
			return Message{}, false, nil
		}
	}
}

// releaseKept ends the life of the message last returned: its buffer may
// be reused now.
func (c *Conn) releaseKept() {
	rd := &c.rd
	if !rd.kept {
		return
	}
	rd.kept = false
	if rd.msg != nil && rd.op == 0 {
		pool.Put(rd.msg)
		rd.msg, rd.n = nil, 0
	}
}

// idle gives the read buffer back when nothing in it waits to be parsed,
// so that a connection waiting for the peer holds none.
func (c *Conn) idle() {
	rd := &c.rd
	if rd.buf != nil && rd.r == rd.w && !rd.kept {
		pool.Put(rd.buf)
		rd.buf, rd.r, rd.w = nil, 0, 0
		rd.holding.Store(false)
	}
}

// fill reads more bytes into the read buffer: the bytes left from the
// handshake, those a goroutine read, or a read of the connection, which
// parks only when self is set and there is no socket.
func (c *Conn) fill(self bool) error {
	rd := &c.rd
	if rd.buf == nil {
		rd.buf = pool.Get(readBufferSize)
		rd.r, rd.w = 0, 0
		rd.holding.Store(true)
	} else if rd.r > 0 {
		rd.w = int32(copy(*rd.buf, (*rd.buf)[rd.r:rd.w]))
		rd.r = 0
	}
	b := (*rd.buf)[rd.w:]
	if rd.pre == nil && c.sock == nil {
		// What a goroutine read is to be read first.
		c.rmu.Lock()
		rd.pre, rd.got = rd.got, nil
		going := c.rgoing
		c.rmu.Unlock()
		if rd.pre == nil && (going || !self) {
			return errWouldBlock
		}
	}
	if p := rd.pre; p != nil {
		n := copy(b, p.b)
		p.b = p.b[n:]
		if len(p.b) == 0 {
			if p.buf != nil {
				pool.Put(p.buf)
				p.buf = nil
			}
			if n == 0 || p.err == nil {
				rd.pre = nil
			}
		}
		if n > 0 {
			rd.w += int32(n)
			c.lastRecv.Store(now())
			return nil
		}
		return p.err
	}
	var n int
	var err error
	switch {
	case c.tls != nil:
		n, err = c.tls.conn.Read(b)
		if err == socket.ErrWouldBlockTemporary {
			err = errWouldBlock
		} else if n > 0 {
			err = nil
		}
	case c.sock != nil:
		n, err = c.sock.Read(b)
		if err == socket.ErrWouldBlock {
			err = errWouldBlock
		}
		rd.short = n > 0 && n < len(b)
	default:
		// This read may park: the replies to what was read go out first.
		var wake asyncio.Wakeups
		c.out.Kick(&wake)
		wake.Notify()
		n, err = c.out.Conn().Read(b)
		if n > 0 {
			err = nil
		}
	}
	if n > 0 {
		rd.w += int32(n)
		c.lastRecv.Store(now())
		if b := c.budget.Load(); b > 0 {
			if b -= int32(n); b <= 0 {
				b = -1 // spent: the next fill yields
			}
			c.budget.Store(b)
		}
	}
	return err
}

// parse takes frames from the read buffer until a whole message is there,
// handling control frames on the way. It answers not ready when it needs
// more bytes, or when a control frame's answer must wait for the writer
// (t is then registered with it).
func (c *Conn) parse(t *asyncio.Task) (Message, bool, error) {
	rd := &c.rd
	for rd.buf != nil {
		p := (*rd.buf)[rd.r:rd.w]
		if rd.frame {
			// Payload of a frame that streams into msg.
			k := int(min(int64(len(p)), rd.remain))
			if k == 0 && rd.remain > 0 {
				return Message{}, false, nil
			}
			if err := c.take(p[:k]); err != nil {
				return Message{}, false, err
			}
			rd.r += int32(k)
			if rd.remain > 0 {
				continue
			}
			rd.frame = false
			if !rd.fin {
				continue
			}
			return c.finish()
		}
		h, hn, err := frame.Parse(p)
		if err != nil {
			return Message{}, false, c.fail(StatusProtocolError, fmt.Errorf("%w: %v", ErrProtocol, err))
		}
		if hn == 0 {
			return Message{}, false, nil
		}
		if err := c.check(&h); err != nil {
			return Message{}, false, err
		}
		whole := hn + int(h.Length)
		if frame.IsControl(h.Op) {
			if len(p) < whole {
				return Message{}, false, nil
			}
			if err := c.controlFrame(t, &h, p[hn:whole]); err != nil {
				return Message{}, false, err
			}
			rd.r += int32(whole)
			continue
		}
		if rd.op == 0 && h.Fin && h.Rsv == 0 && rd.msg == nil && whole <= len(*rd.buf) && (len(p) >= whole || h.Op != frame.OpText) {
			// A whole message in one frame that fits the buffer: read it
			// in place, once all of it is there. (Text that has not all
			// come streams instead, to fail at its first invalid byte; a
			// compressed message is inflated into a message buffer.)
			if len(p) < whole {
				return Message{}, false, nil
			}
			data := p[hn:whole]
			if h.Masked {
				frame.Mask(data, h.Mask, 0)
			}
			if h.Op == frame.OpText && !utf8.Valid(data) {
				return Message{}, false, c.fail(StatusInvalidPayload, fmt.Errorf("%w in a text message", ErrInvalidUTF8))
			}
			rd.r += int32(whole)
			rd.kept = true
			return Message{Type: MessageType(h.Op), Data: data}, true, nil
		}
		rd.r += int32(hn)
		c.beginFrame(&h)
		if h.Length == 0 && h.Fin {
			return c.finish()
		}
	}
	return Message{}, false, nil
}

// controlFrame handles the control frame h with payload p, whole in the
// read buffer. It returns errBlocked, with p as it came, when the answer
// waits for room.
func (c *Conn) controlFrame(t *asyncio.Task, h *frame.Header, p []byte) error {
	if h.Masked {
		frame.Mask(p, h.Mask, 0)
	}
	ok, err := c.control(t, h.Op, p)
	if err != nil {
		return err
	}
	if !ok {
		if h.Masked {
			frame.Mask(p, h.Mask, 0) // as it came, for the next attempt
		}
		return errBlocked
	}
	return nil
}

// beginFrame starts streaming the payload of the data frame h, whose
// header was taken, into the message, starting the message on its first
// frame.
func (c *Conn) beginFrame(h *frame.Header) {
	rd := &c.rd
	if rd.op == 0 {
		rd.op, rd.size = h.Op, 0
		rd.text.Reset()
		if c.z != nil {
			c.z.begin(h.Rsv&rsv1 != 0)
		}
	}
	rd.size += h.Length
	rd.frame, rd.fin, rd.masked, rd.mask, rd.off, rd.remain = h.Length > 0, h.Fin, h.Masked, h.Mask, 0, h.Length
}

// take appends payload bytes of the current frame to the message.
func (c *Conn) take(p []byte) error {
	rd := &c.rd
	if len(p) == 0 {
		return nil
	}
	if rd.masked {
		frame.Mask(p, rd.mask, rd.off)
	}
	rd.off += len(p)
	rd.remain -= int64(len(p))
	if c.z != nil && c.z.inflating {
		return c.inflate(p)
	}
	if rd.op == frame.OpText && !rd.text.Write(p) {
		return c.fail(StatusInvalidPayload, fmt.Errorf("%w in a text message", ErrInvalidUTF8))
	}
	need := rd.n + len(p)
	if rd.msg == nil || need > cap(*rd.msg) {
		// Grow with what arrived: at most twice that, never what the
		// frame claims.
		grown := pool.Get(max(need, 2*rd.n, 512))
		if rd.msg != nil {
			copy(*grown, (*rd.msg)[:rd.n])
			pool.Put(rd.msg)
		}
		rd.msg = grown
	}
	*rd.msg = (*rd.msg)[:cap(*rd.msg)]
	copy((*rd.msg)[rd.n:], p)
	rd.n = need
	return nil
}

// finish returns the message assembled in msg.
func (c *Conn) finish() (Message, bool, error) {
	rd := &c.rd
	if c.z != nil && c.z.inflating {
		if err := c.finishInflate(); err != nil {
			return Message{}, false, err
		}
	}
	if rd.op == frame.OpText && !rd.text.Done() {
		return Message{}, false, c.fail(StatusInvalidPayload, fmt.Errorf("%w in a text message: it ends inside a character", ErrInvalidUTF8))
	}
	m := Message{Type: MessageType(rd.op)}
	if rd.msg != nil {
		m.Data = (*rd.msg)[:rd.n]
	} else {
		m.Data = []byte{}
	}
	rd.op = 0
	rd.kept = true
	return m, true, nil
}

// check fails the connection when h breaks the protocol or the size
// limit.
func (c *Conn) check(h *frame.Header) error {
	rd := &c.rd
	cont := rd.op != 0
	rsv := h.Rsv
	if c.z != nil {
		rsv &^= rsv1 // permessage-deflate's, checked below
	}
	var why string
	switch {
	case rsv != 0:
		why = fmt.Sprintf("reserved bits %#x set without an extension that uses them", rsv)
	case h.Rsv&rsv1 != 0 && frame.IsControl(h.Op):
		why = "RSV1 (compressed) set on a control frame"
	case h.Rsv&rsv1 != 0 && h.Op == frame.OpContinuation:
		why = "RSV1 (compressed) set on a continuation frame"
	case frame.IsReserved(h.Op):
		why = fmt.Sprintf("reserved opcode %#x", h.Op)
	case frame.IsControl(h.Op) && !h.Fin:
		why = "a fragmented control frame"
	case frame.IsControl(h.Op) && h.Length > frame.MaxControlPayload:
		why = fmt.Sprintf("a control frame of %d bytes", h.Length)
	case !c.client && !h.Masked:
		why = "an unmasked frame from a client"
	case c.client && h.Masked:
		why = "a masked frame from a server"
	case frame.IsControl(h.Op):
	case cont && h.Op != frame.OpContinuation:
		why = "a new data frame inside a fragmented message"
	case !cont && h.Op == frame.OpContinuation:
		why = "a continuation frame with no message to continue"
	default:
		size := h.Length
		if cont {
			size += rd.size
		}
		limit := c.cfg.maxMessage
		if h.Rsv&rsv1 != 0 || cont && c.z != nil && c.z.inflating {
			limit = compressedLimit(limit) // the inflated bytes count as they come
		}
		if size > limit {
			return c.fail(StatusMessageTooBig, fmt.Errorf("%w: more than %d bytes", ErrMessageTooBig, c.cfg.maxMessage))
		}
	}
	if why != "" {
		return c.fail(StatusProtocolError, fmt.Errorf("%w: %s", ErrProtocol, why))
	}
	return nil
}

// control handles a control frame with payload p. It reports false when
// the frame must be read again later: its answer waits for the writer,
// which notifies t.
func (c *Conn) control(t *asyncio.Task, op byte, p []byte) (bool, error) {
	switch op {
	case frame.OpPing:
		var wake asyncio.Wakeups
		c.mu.Lock()
		var ok bool
		var err error
		if c.state == stateOpen || c.state == stateClosing {
			ok, err = c.controlLocked(t, frame.OpPong, p, &wake)
		} else {
			ok = true // our close frame is queued: nothing may follow it
		}
		c.mu.Unlock()
		wake.Notify()
		if err != nil {
			return true, nil // a write error is left for the writes to report
		}
		return ok, nil
	case frame.OpClose:
		return c.peerClose(t, p)
	}
	return true, nil
}
