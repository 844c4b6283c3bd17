package wsconn

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"

	"github.com/pollws/pollws/asyncio"
)

// connReader is the state of a Conn's read side. Whoever holds the read
// side (the Conn's rheld) owns it.
type connReader struct {
	// br is the read buffer. Over a socket it comes from connReaderPool
	// while bytes are to be read, and goes back when it is drained at a
	// message boundary, so that an idle connection holds none; held
	// mirrors br != nil for observers other than the reader.
	br      *bufio.Reader
	held    atomic.Bool
	noPark  bool            // a read of the socket that would block returns errConnWouldBlock
	pre     []byte          // bytes read past the opening handshake, read first
	ctx     context.Context // of the read in progress
	op      ws.OpCode       // type of the message being read; 0 between messages
	fin     bool            // the current frame is the message's last
	remain  int64           // payload bytes left in the current frame
	masked  bool
	mask    [4]byte
	maskOff int
	size    int64 // payload bytes of the message, counting the current frame whole
	utf8    connUTF8
	err     error // sticky
	ctl     [ws.MaxControlFramePayloadSize]byte

	// Over a socket, the callbacks for raw.Read, made once so that a read
	// does not allocate a closure, and their arguments and results.
	tryFn, waitFn func(fd uintptr) bool
	rp            []byte
	rn            int
	rerrno        syscall.Errno
	direct        bool    // waitFn runs: reads go to fd itself and never wait
	fd            uintptr // while direct
	waitErr       error   // what ended waitFn's fill
}

// connReaderPool holds the read buffers of connections over sockets that
// are not reading.
var connReaderPool = sync.Pool{
	New: func() any { return bufio.NewReaderSize(nil, connReadBufferSize) },
}

// errConnWouldBlock is returned by a read of the socket in noPark mode
// when it has no bytes.
var errConnWouldBlock = errors.New("wsconn: the read would block")

// connSource is what the read buffer reads from: the bytes left from the
// handshake, then the connection. Before a read waits on the socket it
// starts sending pending writes, so that replies to everything read so far
// go out together.
type connSource struct{ c *Conn }

func (s connSource) Read(p []byte) (int, error) {
	c := s.c
	rd := &c.rd
	if len(rd.pre) > 0 {
		n := copy(p, rd.pre)
		if rd.pre = rd.pre[n:]; len(rd.pre) == 0 {
			rd.pre = nil
		}
		return n, nil
	}
	if raw := c.w.raw; raw != nil && len(p) > 0 {
		// Over a socket, the pending writes go out only when the read
		// would wait: replies to a batch of pipelined messages leave
		// with one write.
		var err error
		if rd.direct {
			c.connRecvInto(rd.fd, p)
		} else {
			rd.rp = p
			err = raw.Read(rd.tryFn)
			rd.rp = nil
		}
		switch {
		case err != nil:
			return 0, err
		case rd.rerrno == 0 && rd.rn == 0:
			return 0, io.EOF
		case rd.rerrno == 0:
			return rd.rn, nil
		case rd.rerrno != syscall.EAGAIN:
			return 0, os.NewSyscallError("read", rd.rerrno)
		}
		if rd.direct {
			return 0, errConnWouldBlock
		}
		c.w.cwKick()
		if rd.noPark {
			return 0, errConnWouldBlock
		}
		return c.conn.Read(p)
	}
	c.w.cwKick()
	return c.conn.Read(p)
}

// connTryRead is tryFn: one read of the socket into rd.rp that never
// waits.
func (c *Conn) connTryRead(fd uintptr) bool {
	c.connRecvInto(fd, c.rd.rp)
	return true
}

// connRecvInto reads fd into p once, without waiting, and leaves the
// result in rd.rn and rd.rerrno.
func (c *Conn) connRecvInto(fd uintptr, p []byte) {
	rd := &c.rd
	for {
		rd.rn, rd.rerrno = connRecv(fd, p)
		if rd.rerrno != syscall.EINTR {
			return
		}
	}
}

// connWaitFill is waitFn: each time the socket may be readable it takes a
// read buffer and fills it, and answers false, to wait again, with the
// buffer given back when the socket had nothing. A fill that meets the
// socket's end or an error leaves it in rd.waitErr.
func (c *Conn) connWaitFill(fd uintptr) bool {
	rd := &c.rd
	c.takeReadBuffer()
	rd.fd, rd.direct = fd, true
	_, err := rd.br.Peek(1)
	rd.fd, rd.direct = 0, false
	if err == errConnWouldBlock {
		c.putReadBuffer()
		return false
	}
	rd.waitErr = err
	return true
}

func (c *Conn) takeReadBuffer() {
	rd := &c.rd
	rd.br = connReaderPool.Get().(*bufio.Reader)
	rd.br.Reset(connSource{c})
	rd.held.Store(true)
}

// putReadBuffer gives back the read buffer, which is empty.
func (c *Conn) putReadBuffer() {
	rd := &c.rd
	rd.br.Reset(nil)
	connReaderPool.Put(rd.br)
	rd.br = nil
	rd.held.Store(false)
}

// awaitLocked makes sure, at a message boundary, that the read buffer has
// bytes, or returns the error that ends the connection. Over a socket it
// waits for bytes without a buffer: it gives the drained buffer back and
// takes one again once the socket is readable.
func (c *Conn) awaitLocked() error {
	rd := &c.rd
	for {
		if rd.br == nil {
			if len(rd.pre) > 0 {
				c.takeReadBuffer()
				return nil
			}
			c.w.cwKick()
			rd.waitErr = nil
			if err := c.w.raw.Read(rd.waitFn); err != nil {
				return err
			}
			return rd.waitErr
		}
		if rd.br.Buffered() > 0 || len(rd.pre) > 0 {
			return nil
		}
		rd.noPark = true
		_, err := rd.br.Peek(1)
		rd.noPark = false
		switch {
		case err == nil:
			return nil
		case err != errConnWouldBlock:
			return err
		}
		c.putReadBuffer()
	}
}

// connMessage is the reader of the message NextMessage returned.
type connMessage struct{ c *Conn }

// connPast is a read deadline that has passed: it wakes a blocked read.
var connPast = time.Unix(1, 0)

// NextMessage waits for the next message from the peer and returns its
// type (ws.OpText or ws.OpBinary) and a reader of its payload, valid until
// the next call of NextMessage or ReadMessage. Whatever the previous
// message's reader left unread is dropped. Pending writes are flushed
// before the read waits on the socket; pings are answered and control
// frames handled on the way.
//
// ctx bounds the wait and the reads of the returned reader; when it ends,
// the read in progress returns ctx's cause and the connection stays
// usable. When the peer closes the connection, NextMessage returns a
// *[CloseError] (after answering the peer's close frame); on bad input it
// closes the connection with the matching status code and returns an
// error that wraps [ErrProtocol], [ErrInvalidUTF8] or [ErrMessageTooBig].
// Errors other than ctx's are sticky.
//
// One goroutine at a time may read.
func (c *Conn) NextMessage(ctx context.Context) (op ws.OpCode, r io.Reader, err error) {
	if err := c.acquireRead(ctx); err != nil {
		return 0, nil, err
	}
	defer c.releaseRead()
	c.rd.ctx = ctx
	stop := c.watchRead(ctx)
	op, err = c.nextLocked()
	if err = c.endRead(ctx, stop, err); err != nil {
		return 0, nil, err
	}
	return op, &c.msg, nil
}

// ReadMessage waits for the next message from the peer and returns its
// type and payload, as [Conn.NextMessage] does.
func (c *Conn) ReadMessage(ctx context.Context) (ws.OpCode, []byte, error) {
	op, data, err := c.AppendMessage(ctx, nil)
	if err != nil {
		return 0, nil, err
	}
	return op, data, nil
}

// AppendMessage is [Conn.ReadMessage] that appends the payload to dst and
// returns the extended slice, so that a read loop can reuse one buffer
// and read without allocating:
//
//	buf, err = c.AppendMessage(ctx, buf[:0])
//
// On error it returns dst.
func (c *Conn) AppendMessage(ctx context.Context, dst []byte) (ws.OpCode, []byte, error) {
	if err := c.acquireRead(ctx); err != nil {
		return 0, dst, err
	}
	defer c.releaseRead()
	c.rd.ctx = ctx
	stop := c.watchRead(ctx)
	op, err := c.nextLocked()
	data := dst
	for err == nil {
		if len(data) == cap(data) && c.rd.remain > 0 {
			data = slices.Grow(data, int(c.rd.remain))
		}
		n, rerr := c.readLocked(data[len(data):cap(data)])
		data = data[:len(data)+n]
		if rerr == io.EOF {
			break
		}
		err = rerr
	}
	if err = c.endRead(ctx, stop, err); err != nil {
		return 0, dst, err
	}
	return op, data, nil
}

// Read reads the message's payload; it returns io.EOF at its end.
func (m *connMessage) Read(p []byte) (int, error) {
	c := m.c
	if err := c.acquireRead(context.Background()); err != nil {
		return 0, err
	}
	defer c.releaseRead()
	ctx := c.rd.ctx
	stop := c.watchRead(ctx)
	n, err := c.readLocked(p)
	if err == io.EOF {
		c.endRead(ctx, stop, nil)
		return n, io.EOF
	}
	return n, c.endRead(ctx, stop, err)
}

func (c *Conn) acquireRead(ctx context.Context) error {
	if c.tryAcquireRead() {
		return nil
	}
	c.rwaiters.Add(1)
	defer c.rwaiters.Add(-1)
	for !c.tryAcquireRead() {
		// A release after the failed attempt finds rwaiters counting this
		// wait and leaves a token in rwake, so the wait cannot miss it; a
		// stale token only costs a retry.
		select {
		case <-c.rwake:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	return nil
}

func (c *Conn) tryAcquireRead() bool { return c.rheld.CompareAndSwap(false, true) }

func (c *Conn) releaseRead() {
	c.rheld.Store(false)
	if c.rwaiters.Load() > 0 {
		select {
		case c.rwake <- struct{}{}:
		default: // a token is there already
		}
	}
	if c.shutWait.Load() {
		c.readForShutdown()
	}
}

// readForShutdown starts reading for the peer's close frame when a
// Shutdown waits for it and no read is in progress. Shutdown leaves the
// answer to the application's read when it finds one running; if that
// read then ends without it (its context ended, as a handler's does when a
// drain begins) and no other read follows, the answer must still be read.
func (c *Conn) readForShutdown() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stage != connShutWait || c.done || c.peerClosed || c.timedOut || c.readDone || c.readerClosing {
		return
	}
	if c.tryAcquireRead() {
		c.wg.Add(1)
		go c.drainForClose()
	}
}

// watchRead arranges for ctx's end to wake a blocked read with a read
// deadline. The returned stop, nil when ctx never ends, reports whether
// ctx ended the read, and clears the deadline then.
func (c *Conn) watchRead(ctx context.Context) (stop func() bool) {
	if ctx == nil || ctx.Done() == nil {
		return nil
	}
	fired := make(chan struct{})
	stopf := context.AfterFunc(ctx, func() {
		_ = c.conn.SetReadDeadline(connPast)
		close(fired)
	})
	return func() bool {
		if stopf() {
			return false
		}
		<-fired
		_ = c.conn.SetReadDeadline(time.Time{})
		return true
	}
}

// endRead returns what a read that ended with err returns: nil, the
// sticky error, ctx's cause when ctx ended the read (the connection stays
// usable: nothing was consumed but whole frames and payload returned), or
// else the I/O error, which ends the connection.
func (c *Conn) endRead(ctx context.Context, stop func() bool, err error) error {
	cancelled := stop != nil && stop()
	switch {
	case err == nil:
		return nil
	case c.rd.err != nil:
		return c.rd.err
	case cancelled && ctx.Err() != nil:
		return context.Cause(ctx)
	}
	return c.readFailed(err)
}

// nextLocked drops the rest of the message being read, then reads frames
// until a data message begins, and returns its type.
func (c *Conn) nextLocked() (ws.OpCode, error) {
	rd := &c.rd
	if rd.err != nil {
		return 0, rd.err
	}
	if rd.br == nil && c.w.raw == nil {
		rd.br = bufio.NewReaderSize(connSource{c}, connReadBufferSize)
		rd.held.Store(true)
	}
	for rd.op != 0 {
		switch {
		case rd.remain > 0:
			n, err := rd.br.Discard(int(min(rd.remain, 1<<30)))
			rd.remain -= int64(n)
			if err != nil {
				return 0, err
			}
		case rd.fin:
			rd.op = 0
		default:
			if err := c.frameLocked(true); err != nil {
				return 0, err
			}
		}
	}
	if c.w.raw != nil {
		if err := c.awaitLocked(); err != nil {
			return 0, err
		}
	}
	if err := c.frameLocked(false); err != nil {
		return 0, err
	}
	return rd.op, nil
}

// readLocked reads payload of the message being read into p.
func (c *Conn) readLocked(p []byte) (int, error) {
	rd := &c.rd
	for {
		switch {
		case rd.err != nil:
			return 0, rd.err
		case rd.op == 0:
			return 0, io.EOF
		case rd.remain == 0 && rd.fin:
			if rd.op == ws.OpText && !rd.utf8.done() {
				return 0, c.fail(ws.StatusInvalidFramePayloadData, fmt.Errorf("%w in a text message: it ends inside a character", ErrInvalidUTF8))
			}
			rd.op = 0
			return 0, io.EOF
		case rd.remain == 0:
			if err := c.frameLocked(true); err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF // io.EOF here is the message's end
				}
				return 0, err
			}
			continue
		case len(p) == 0:
			return 0, nil
		}
		q := p[:min(int64(len(p)), rd.remain)]
		n, err := rd.br.Read(q)
		if n > 0 {
			q = q[:n]
			if rd.masked {
				ws.Cipher(q, rd.mask, rd.maskOff)
			}
			rd.maskOff += n
			rd.remain -= int64(n)
			if rd.op == ws.OpText && !rd.utf8.write(q) {
				return 0, c.fail(ws.StatusInvalidFramePayloadData, fmt.Errorf("%w in a text message", ErrInvalidUTF8))
			}
			return n, nil
		}
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, err
	}
}

// frameLocked reads frames until a data frame and makes it the current
// one: a continuation when cont is set, the start of a message otherwise.
// It handles control frames on the way. It reads a header only when the
// whole of it is buffered, so a read woken by ctx consumes nothing.
func (c *Conn) frameLocked(cont bool) error {
	rd := &c.rd
	for {
		h, hn, err := c.peekHeader()
		if err != nil {
			return err
		}
		if err := c.checkHeader(h, cont); err != nil {
			return err
		}
		if h.OpCode.IsControl() {
			b, err := rd.br.Peek(hn + int(h.Length))
			if err != nil {
				return err
			}
			p := rd.ctl[:copy(rd.ctl[:], b[hn:])]
			_, _ = rd.br.Discard(len(b))
			if h.Masked {
				ws.Cipher(p, h.Mask, 0)
			}
			if err := c.controlLocked(h.OpCode, p); err != nil {
				return err
			}
			continue
		}
		_, _ = rd.br.Discard(hn)
		if !cont {
			rd.op, rd.size = h.OpCode, 0
			rd.utf8.reset()
		}
		rd.size += h.Length
		rd.fin, rd.remain, rd.masked, rd.mask, rd.maskOff = h.Fin, h.Length, h.Masked, h.Mask, 0
		return nil
	}
}

// peekHeader parses the frame header at the start of the read buffer
// without consuming it, and returns its length.
func (c *Conn) peekHeader() (h ws.Header, n int, err error) {
	br := c.rd.br
	b, err := br.Peek(2)
	if err != nil {
		return h, 0, err
	}
	n = 2
	switch b[1] & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b[1]&0x80 != 0 {
		n += 4
	}
	if b, err = br.Peek(n); err != nil {
		return h, 0, err
	}
	h.Fin = b[0]&0x80 != 0
	h.Rsv = b[0] >> 4 & 0x7
	h.OpCode = ws.OpCode(b[0] & 0x0f)
	k := 2
	switch l := b[1] & 0x7f; l {
	case 126:
		h.Length, k = int64(binary.BigEndian.Uint16(b[2:])), 4
	case 127:
		u := binary.BigEndian.Uint64(b[2:])
		if u>>63 != 0 {
			return h, 0, c.fail(ws.StatusProtocolError, fmt.Errorf("%w: a frame length with the most significant bit set", ErrProtocol))
		}
		h.Length, k = int64(u), 10
	default:
		h.Length = int64(l)
	}
	if b[1]&0x80 != 0 {
		h.Masked = true
		copy(h.Mask[:], b[k:])
	}
	return h, n, nil
}

// checkHeader fails the connection when h breaks the protocol or the size
// limit; cont tells whether a continuation frame is expected.
func (c *Conn) checkHeader(h ws.Header, cont bool) error {
	var why string
	switch {
	case h.Rsv != 0:
		why = fmt.Sprintf("reserved bits %#x set without an extension", h.Rsv)
	case h.OpCode.IsReserved():
		why = fmt.Sprintf("reserved opcode %#x", byte(h.OpCode))
	case h.OpCode.IsControl() && !h.Fin:
		why = "a fragmented control frame"
	case h.OpCode.IsControl() && h.Length > ws.MaxControlFramePayloadSize:
		why = fmt.Sprintf("a control frame of %d bytes", h.Length)
	case !c.client && !h.Masked:
		why = "an unmasked frame from a client"
	case c.client && h.Masked:
		why = "a masked frame from a server"
	case h.OpCode.IsControl():
	case cont && h.OpCode != ws.OpContinuation:
		why = "a new data frame inside a fragmented message"
	case !cont && h.OpCode == ws.OpContinuation:
		why = "a continuation frame with no message to continue"
	default:
		size := h.Length
		if cont {
			size += c.rd.size
		}
		if size > c.maxMessage {
			return c.fail(ws.StatusMessageTooBig, fmt.Errorf("%w: more than %d bytes", ErrMessageTooBig, c.maxMessage))
		}
	}
	if why != "" {
		return c.fail(ws.StatusProtocolError, fmt.Errorf("%w: %s", ErrProtocol, why))
	}
	return nil
}

// controlLocked handles a control frame with payload p.
func (c *Conn) controlLocked(op ws.OpCode, p []byte) error {
	switch op {
	case ws.OpPing:
		c.pong(p)
	case ws.OpClose:
		return c.peerClose(p)
	}
	return nil
}

// pong answers a ping with payload p. The pong passes a full buffer when
// nothing else does; otherwise the read waits for room, so that pings
// from a peer that reads nothing hold the reader back too. A write error
// is left for the writes to report.
func (c *Conn) pong(p []byte) {
	one := [1][]byte{p}
	r, err := c.pollFrame(nil, cwSlotReader, true, ws.OpPong, one[:], nil)
	if r.Ready || err != nil {
		return
	}
	ctx := c.rd.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	_, _ = asyncio.BlockOn(ctx, func(t *asyncio.Task) (asyncio.Async[int], error) {
		return c.pollFrame(t, cwSlotReader, true, ws.OpPong, one[:], nil)
	})
}

// connUTF8 checks that a text message is valid UTF-8 as it is read, a
// piece at a time: a character may be split across pieces.
type connUTF8 struct {
	part [utf8.UTFMax]byte // the start of a character split across pieces
	n    int
}

func (u *connUTF8) reset() { u.n = 0 }

// done reports whether the text so far ends at a character boundary.
func (u *connUTF8) done() bool { return u.n == 0 }

// write reports whether p continues valid UTF-8 text.
func (u *connUTF8) write(p []byte) bool {
	if u.n > 0 {
		for len(p) > 0 && !utf8.FullRune(u.part[:u.n]) {
			u.part[u.n] = p[0]
			u.n++
			p = p[1:]
		}
		if !utf8.FullRune(u.part[:u.n]) {
			return true
		}
		if r, size := utf8.DecodeRune(u.part[:u.n]); r == utf8.RuneError && size <= 1 {
			return false
		}
		u.n = 0
	}
	tail := 0
	for i := len(p) - 1; i >= 0 && i > len(p)-utf8.UTFMax; i-- {
		if utf8.RuneStart(p[i]) {
			if !utf8.FullRune(p[i:]) {
				tail = len(p) - i
			}
			break
		}
	}
	if !utf8.Valid(p[:len(p)-tail]) {
		return false
	}
	u.n = copy(u.part[:], p[len(p)-tail:])
	return true
}

// errConnEOF is the read error when the connection ends without a close
// frame.
var errConnEOF = fmt.Errorf("wsconn: the connection ended without a close frame: %w", io.ErrUnexpectedEOF)

// readBufferHeld reports whether c holds a read buffer.
func (c *Conn) readBufferHeld() bool { return c.rd.held.Load() }
