package wsconn

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"

	"github.com/pollws/pollws/asyncio"
)

const (
	connDefaultMaxMessageSize = 32 << 20
	connDefaultCloseTimeout   = 5 * time.Second
	connReadBufferSize        = 8192
)

// Errors of a [Conn]. Match them with [errors.Is]; the errors returned
// wrap them with details.
var (
	// ErrProtocol: the peer broke the WebSocket protocol (RFC 6455). The
	// connection was closed with status 1002.
	ErrProtocol = errors.New("wsconn: protocol error")

	// ErrInvalidUTF8: a text message or a close reason from the peer is
	// not valid UTF-8. The connection was closed with status 1007.
	ErrInvalidUTF8 = errors.New("wsconn: invalid UTF-8")

	// ErrMessageTooBig: a message from the peer is larger than
	// [Options.MaxMessageSize]. The connection was closed with status 1009.
	ErrMessageTooBig = errors.New("wsconn: message too big")

	// ErrMessageInProgress: a message cannot be written while a
	// [MessageWriter] of the same connection is open.
	ErrMessageInProgress = errors.New("wsconn: a fragmented message is being written")
)

// Options configures a [Conn]. A nil *Options means the defaults.
type Options struct {
	// Writer configures the connection's [ConnWriter]; nil means its
	// defaults (a 64 KiB buffer).
	Writer *ConnWriterOptions

	// MaxMessageSize is the largest message a read accepts, in bytes; a
	// larger one closes the connection with status 1009. Zero or less
	// means 32 MiB.
	MaxMessageSize int64

	// CloseTimeout bounds the closing handshake: how long Shutdown waits
	// for the peer's close frame after sending its own, and how long a
	// read that ends the connection spends sending its close frame. Zero
	// or less means 5 seconds.
	CloseTimeout time.Duration

	// Logger receives at most one line per connection, when a read closes
	// it because of bad input from the peer. Nil means [slog.Default].
	Logger *slog.Logger
}

// connShutStage is how far Shutdown got.
type connShutStage uint8

const (
	connShutNone  connShutStage = iota
	connShutQueue               // the close frame is to be queued
	connShutFlush               // the close frame is queued: flushing
	connShutWait                // the close frame is out: waiting for the peer's
	connShutEnd                 // the peer answered, or time ran out: FIN, then close
)

// Conn is a WebSocket connection, server or client side, whose frames are
// written into a [ConnWriter] and read from the connection with a small
// buffer. Over a TCP or Unix socket the read buffer is held only while
// bytes are to be read: a Conn that waits for the next message holds
// none.
//
// Writes never block: [Conn.PollWriteMessage] and the other writes answer
// NotReady when the writer's buffer is full. Reads block:
// [Conn.NextMessage] and [Conn.ReadMessage] wait for a message, flushing
// pending writes first. A Conn is safe for use by multiple goroutines,
// except that one goroutine at a time may read, and, as for a ConnWriter,
// one goroutine at a time should wait on its writes.
type Conn struct {
	w            *ConnWriter
	conn         net.Conn
	client       bool
	maxMessage   int64
	closeTimeout time.Duration
	log          *slog.Logger
	subprotocol  string

	mu            sync.Mutex
	shutBegan     bool // Shutdown was called: data writes fail
	closeQueued   bool // a close frame is queued: nothing more may be written
	mw            *MessageWriter
	stage         connShutStage
	shutCode      ws.StatusCode
	shutReason    string
	shutTask      *asyncio.Task // Shutdown's, notified when the peer's close comes
	shutErr       error         // sticky
	closeTimer    *time.Timer
	timedOut      bool // the peer did not answer the close frame in time
	peerClosed    bool // the peer's close frame came
	readDone      bool // the reader Shutdown started has ended
	readerClosing bool // a read is closing the connection: Shutdown waits for it
	closeCode     ws.StatusCode
	logged        bool
	done          bool  // the connection is closed
	doneErr       error // why, or nil after a clean closing handshake

	// The read side is held by the one reader: rheld is set by whoever
	// takes it; rwaiters counts the readers that wait to take it, and
	// rwake holds a token after a release while there are any.
	rheld    atomic.Bool
	rwaiters atomic.Int32
	rwake    chan struct{}
	// shutWait is set, under mu, once stage has reached connShutWait, so
	// that a read's release finds out without taking mu whether a
	// Shutdown may wait for it to read the peer's close.
	shutWait atomic.Bool
	rd       connReader
	msg      connMessage
	wg       sync.WaitGroup // the reader Shutdown started
}

var (
	_ asyncio.AsyncWriter = (*Conn)(nil)
	_ asyncio.BufWriter   = (*Conn)(nil)
)

// Server returns the server side of a WebSocket connection over c, whose
// opening handshake is done. It expects masked frames from the peer and
// sends unmasked ones. The Conn takes ownership of c.
func Server(c net.Conn, o *Options) *Conn { return newConn(c, nil, o, false) }

// Client returns the client side of a WebSocket connection over c, whose
// opening handshake is done. It masks the frames it sends and expects
// unmasked ones. The Conn takes ownership of c.
func Client(c net.Conn, o *Options) *Conn { return newConn(c, nil, o, true) }

// newConn returns a Conn over c; pre holds bytes read from c past the
// handshake, which reads return first.
func newConn(c net.Conn, pre []byte, o *Options, client bool) *Conn {
	if o == nil {
		o = new(Options)
	}
	wc := &Conn{
		w:            NewConnWriterOptions(c, o.Writer),
		conn:         c,
		client:       client,
		maxMessage:   o.MaxMessageSize,
		closeTimeout: o.CloseTimeout,
		log:          o.Logger,
		rwake:        make(chan struct{}, 1),
	}
	if wc.maxMessage <= 0 {
		wc.maxMessage = connDefaultMaxMessageSize
	}
	if wc.closeTimeout <= 0 {
		wc.closeTimeout = connDefaultCloseTimeout
	}
	if wc.log == nil {
		wc.log = slog.Default()
	}
	wc.rd.pre = pre
	if wc.w.raw != nil {
		wc.rd.tryFn, wc.rd.waitFn = wc.connTryRead, wc.connWaitFill
	}
	wc.msg.c = wc
	return wc
}

// connPutHeader encodes h into b as [ws.WriteHeader] does, without
// allocating, and returns its length.
func connPutHeader(b *[ws.MaxHeaderSize]byte, h *ws.Header) int {
	b[0] = h.Rsv<<4 | byte(h.OpCode)
	if h.Fin {
		b[0] |= 0x80
	}
	n := 2
	switch {
	case h.Length <= ws.MaxControlFramePayloadSize:
		b[1] = byte(h.Length)
	case h.Length <= 0xffff:
		b[1] = 126
		binary.BigEndian.PutUint16(b[2:], uint16(h.Length))
		n = 4
	default:
		b[1] = 127
		binary.BigEndian.PutUint64(b[2:], uint64(h.Length))
		n = 10
	}
	if h.Masked {
		b[1] |= 0x80
		n += copy(b[n:], h.Mask[:])
	}
	return n
}

// pollFrame writes one frame of op with the concatenation of body as its
// payload, all or nothing, for the task of slot. owner is the
// MessageWriter writing it, if any. It answers Ready(payload length).
func (c *Conn) pollFrame(t *asyncio.Task, slot int, fin bool, op ws.OpCode, body [][]byte, owner *MessageWriter) (asyncio.Async[int], error) {
	var wake [cwSlots]*asyncio.Task
	c.mu.Lock()
	r, err := c.pollFrameLocked(t, slot, fin, op, body, owner, &wake)
	c.mu.Unlock()
	cwNotify(wake)
	return r, err
}

// pollFrameLocked is pollFrame under c.mu; it adds to wake the tasks to
// notify once no lock is held.
func (c *Conn) pollFrameLocked(t *asyncio.Task, slot int, fin bool, op ws.OpCode, body [][]byte, owner *MessageWriter, wake *[cwSlots]*asyncio.Task) (asyncio.Async[int], error) {
	total := 0
	for _, b := range body {
		total += len(b)
	}
	if op.IsControl() && total > ws.MaxControlFramePayloadSize {
		return asyncio.NotReady[int](), fmt.Errorf("wsconn: a control frame of %d bytes, more than %d", total, ws.MaxControlFramePayloadSize)
	}
	if err := c.writableLocked(op, owner); err != nil {
		return asyncio.NotReady[int](), err
	}
	h := ws.Header{Fin: fin, OpCode: op, Length: int64(total)}
	if c.client {
		h.Masked, h.Mask = true, ws.NewMask()
	}
	var hb [ws.MaxHeaderSize]byte
	n := connPutHeader(&hb, &h)
	r, err := c.w.cwFrame(t, slot, hb[:n], body, h.Masked, h.Mask, op.IsControl(), wake)
	if !r.Ready || err != nil {
		return asyncio.NotReady[int](), err
	}
	if owner != nil {
		c.mw = owner
		if fin {
			c.mw = nil
		}
	}
	return asyncio.Ready(total), nil
}

// writableLocked returns why a frame of op may not be written now.
func (c *Conn) writableLocked(op ws.OpCode, owner *MessageWriter) error {
	switch {
	case c.closeQueued || (c.shutBegan && op.IsData()):
		return asyncio.ErrShutdown
	case op == ws.OpClose:
		return errors.New("wsconn: a close frame is written by Shutdown or ShutdownWith")
	case op.IsData() && c.mw != nil && c.mw != owner:
		return ErrMessageInProgress
	}
	return nil
}

// PollWriteMessage writes p as one message of type op (ws.OpText or
// ws.OpBinary) in one frame, or a ping or pong control frame: all of it,
// Ready(len(p)), or nothing, NotReady. A message larger than the buffer
// is accepted only when nothing is pending; control frames may pass a
// full buffer by one frame. Writes after Shutdown began fail with
// [asyncio.ErrShutdown].
func (c *Conn) PollWriteMessage(t *asyncio.Task, op ws.OpCode, p []byte) (asyncio.Async[int], error) {
	if op != ws.OpText && op != ws.OpBinary && op != ws.OpPing && op != ws.OpPong {
		return asyncio.NotReady[int](), fmt.Errorf("wsconn: PollWriteMessage of opcode %#x", byte(op))
	}
	one := [1][]byte{p}
	return c.pollFrame(t, cwSlotApp, true, op, one[:], nil)
}

// PollWriteFrame writes one frame, all or nothing, as PollWriteMessage
// does: f's Fin, OpCode and Payload are kept, its Length is the length of
// the payload, and on the client side the frame is masked with a fresh
// key (f's Masked and Mask are ignored). Reserved bits must be zero.
// Frames of one fragmented message must not interleave with other data
// frames; close frames are written by [Conn.ShutdownWith].
func (c *Conn) PollWriteFrame(t *asyncio.Task, f ws.Frame) (asyncio.Async[int], error) {
	switch h := f.Header; {
	case h.Rsv != 0:
		return asyncio.NotReady[int](), errors.New("wsconn: a frame with reserved bits set")
	case h.OpCode.IsReserved():
		return asyncio.NotReady[int](), fmt.Errorf("wsconn: a frame of reserved opcode %#x", byte(h.OpCode))
	case h.OpCode.IsControl() && !h.Fin:
		return asyncio.NotReady[int](), errors.New("wsconn: a fragmented control frame")
	}
	one := [1][]byte{f.Payload}
	return c.pollFrame(t, cwSlotApp, f.Header.Fin, f.Header.OpCode, one[:], nil)
}

// Write writes p as one binary message without blocking: it is
// [asyncio.TryWrite].
func (c *Conn) Write(p []byte) (int, error) { return asyncio.TryWrite(c, p) }

// PollWrite writes p as one binary message, all or nothing: it is
// PollWriteMessage(t, ws.OpBinary, p), except that an empty p is Ready(0)
// and sends nothing.
func (c *Conn) PollWrite(t *asyncio.Task, p []byte) (asyncio.Async[int], error) {
	if len(p) == 0 {
		return asyncio.Ready(0), nil
	}
	return c.PollWriteMessage(t, ws.OpBinary, p)
}

// WriteBuf writes what b holds (up to eight of its chunks) as one binary
// message with one vectored write, and advances b past it.
func (c *Conn) WriteBuf(t *asyncio.Task, b asyncio.Buf) (asyncio.Async[int], error) {
	if b.Remaining() == 0 {
		return asyncio.Ready(0), nil
	}
	c.mu.Lock()
	// The writer's chunks are free for the Conn's use under c.mu: nothing
	// calls the WriteBuf of a Conn's writer, the one other user of them.
	chunks := &c.w.chunks
	var body [][]byte
	if vb, ok := b.(asyncio.VectoredBuf); ok {
		body = chunks[:vb.Chunks(chunks[:])]
	} else {
		chunks[0] = b.Chunk()
		body = chunks[:1]
	}
	var wake [cwSlots]*asyncio.Task
	r, err := c.pollFrameLocked(t, cwSlotApp, true, ws.OpBinary, body, nil, &wake)
	clear(chunks[:])
	c.mu.Unlock()
	cwNotify(wake)
	if r.Ready && err == nil {
		b.Advance(r.Value)
	}
	return r, err
}

// PollFlush answers Ready when every frame written has reached the
// connection.
func (c *Conn) PollFlush(t *asyncio.Task) (asyncio.Async[struct{}], error) {
	c.mu.Lock()
	done, doneErr := c.done, c.doneErr
	c.mu.Unlock()
	if done && doneErr == nil && c.w.Undelivered() == 0 {
		return asyncio.Ready(struct{}{}), nil
	}
	return c.w.PollFlush(t)
}

// Undelivered returns the number of bytes written and not yet sent to the
// connection (frame headers included); after [Conn.Close] they never will
// be.
func (c *Conn) Undelivered() int64 { return c.w.Undelivered() }

// Stats returns the counters of the connection's [ConnWriter].
func (c *Conn) Stats() ConnWriterStats { return c.w.Stats() }

// Subprotocol returns the subprotocol negotiated by [Upgrade] or [Dial],
// or "".
func (c *Conn) Subprotocol() string { return c.subprotocol }

// CloseCode returns the status code of the close frame the peer sent, or,
// when this side ended the connection on bad input, of the close frame it
// sent; 1006 when the connection broke without one; 0 while none of this
// happened.
func (c *Conn) CloseCode() ws.StatusCode {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeCode
}

// LocalAddr returns the local network address.
func (c *Conn) LocalAddr() net.Addr { return c.conn.LocalAddr() }

// RemoteAddr returns the remote network address.
func (c *Conn) RemoteAddr() net.Addr { return c.conn.RemoteAddr() }
