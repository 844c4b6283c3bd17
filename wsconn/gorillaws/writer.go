package gorillaws

import (
	"errors"
	"net"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pollws/pollws/asyncio"
)

// Options configures a [Writer]. The zero value and nil give
// the defaults written on each field.
type Options struct {
	// QueueBytes is the byte budget of queued messages: a message is
	// accepted when it fits in what is left of it, or when nothing is
	// queued, whatever its size. A message counts as its length, and at
	// least 64 bytes. Default 64 KiB.
	QueueBytes int

	// WriteTimeout bounds each write to the connection (one or more
	// queued frames at a time); when it passes, the writer fails with an
	// error that matches os.ErrDeadlineExceeded. Default 0: no limit,
	// except for a write that ends with the close frame, which
	// CloseTimeout bounds.
	WriteTimeout time.Duration

	// CloseTimeout bounds how long Shutdown waits for the peer's close
	// frame after sending its own, before it closes the connection.
	// Default 5 s.
	CloseTimeout time.Duration

	// ReadClose says that nothing else reads the connection, so Shutdown
	// must read it itself to see the peer's close frame: after sending its
	// own, it reads and discards messages until the close arrives, reading
	// fails, or CloseTimeout passes. Leave it false when the application
	// runs a read loop, as gorilla requires of most applications: gorilla
	// allows one reader at a time.
	ReadClose bool
}

const (
	defaultQueueBytes   = 64 << 10
	defaultCloseTimeout = 5 * time.Second
	minCost             = 64 // what a small message counts against the budget
	maxPongs            = 16 // pongs waiting to go out, at most
)

var (
	errMessageType = errors.New("gorillaws: message type must be websocket.TextMessage, BinaryMessage, PingMessage or PongMessage (close with ShutdownWith)")
	errControlSize = errors.New("gorillaws: control message payload longer than 125 bytes")
	errCloseCode   = errors.New("gorillaws: close code cannot be sent")
	errCloseReason = errors.New("gorillaws: close reason longer than 123 bytes or not UTF-8")
	errNilPrepared = errors.New("gorillaws: nil prepared message")
)

// Writer gives a gorilla/websocket connection the poll contract of
// [asyncio.AsyncWriter]: writes copy each message, framed, into a bounded
// queue and never block, and one goroutine writes the queue to the
// connection, several frames per system call when they are waiting. That
// goroutine exists only while the queue is not empty: an idle Writer holds
// no goroutine and no buffer.
//
// [Writer.PollWrite] sends p as one binary message, so a Writer is a
// byte-stream AsyncWriter whose writes keep their boundaries;
// [Writer.PollWriteMessage] chooses the message type and
// [Writer.PollWritePrepared] queues a [websocket.PreparedMessage] for
// broadcast. [Writer.Shutdown] flushes the queue, sends a close frame,
// waits for the peer's close, and closes the connection.
//
// The Writer frames its messages itself and writes them to the network
// connection under gorilla's, so gorilla's write methods are never called
// and its "concurrent write to websocket connection" panic cannot happen,
// whatever the callers do. New installs the connection's ping and close
// handlers, so that pongs and the answer to the peer's close frame go
// through the Writer too: every ping gets its own pong, in order, ahead of
// the queued messages, and the close frame goes after them. The
// application's read loop runs the handlers and still sees the peer's
// close as a *[websocket.CloseError]; it may read through
// [Writer.NextReader] or [Writer.AppendMessage], which also check the
// UTF-8 of text messages. An application that sets its own ping or close
// handler afterwards takes that over.
//
// gorilla writes a close frame by itself when it reads bad input (1002 on
// a protocol error, 1009 on a message over the read limit). Over a
// connection upgraded with [Upgrade], that close frame goes through the
// queue like the Writer's own: after the messages accepted before it.
// Over a connection upgraded elsewhere it goes straight to the network
// and may overtake queued messages; see [New].
//
// A Writer is safe for use by multiple goroutines, and any number of them
// may wait on it at once: every [asyncio.Task] that got NotReady is
// notified when what it waits for (room in the queue, a flush, the close)
// is possible. It holds its one lock only to update its own state, never
// while it writes to or closes the connection or notifies a task, and
// never calls gorilla while holding it.
//
// Messages go out uncompressed, as permessage-deflate allows, also when
// the Upgrader negotiated it; gorilla still inflates what it reads.
type Writer struct {
	c            *websocket.Conn
	out          net.Conn // where frames are written: the network connection under c
	upgraded     bool     // c was upgraded by Upgrade: gorilla's own writes come through writeRaw
	vectored     bool     // out writes net.Buffers with one system call
	budget       int
	writeTimeout time.Duration
	closeTimeout time.Duration
	readClose    bool

	// The sender goroutine, and the one that waits for the peer's close
	// when the application no longer reads. Add only under mu while the
	// state is before stateClosingConn.
	wg sync.WaitGroup

	mu           sync.Mutex
	state        state
	err          error     // sticky
	q            *queue    // nil when empty
	queued       int       // budget used by queued frames and the ones being written
	running      bool      // the sender goroutine is alive
	writing      bool      // the sender goroutine is writing frames taken from q
	pongs        *pongRing // nil when no pong waits
	pongRoom     sync.Cond // signalled when pongs has room, or pongs are no longer sent
	roomWait     asyncio.WaitSet
	roomNeed     int // the smallest cost a task in roomWait waits to queue
	flushWait    asyncio.WaitSet
	closeWait    asyncio.WaitSet
	peerClosed   bool // the peer's close frame was read
	readerFailed bool // gorilla's reader failed on bad input and wrote its own close
	readEnded    bool // the application's reads through NextReader ended
	readErr      error
	closeTimer   *time.Timer
	undelivered  int64
	deadlineSet  bool          // a write deadline is set on out; only the sender uses it
	msg          messageReader // the reader NextReader returned; only the reading goroutine uses it
}

var (
	_ asyncio.AsyncWriter = (*Writer)(nil)
	_ asyncio.BufWriter   = (*Writer)(nil)
)

// New returns a writer over c, the server side of a connection,
// configured by o (nil: the defaults). It sets c's ping and close
// handlers (see [Writer]) and leaves everything else of c to the caller,
// who must not call c's write methods any more. Make at most one Writer
// per connection.
//
// Over a connection that [Upgrade] made, every frame, gorilla's own close
// frames included, goes out in the order it was queued. Over one upgraded
// otherwise, a close frame that gorilla writes by itself on bad input
// goes out at once, ahead of queued messages, and gorilla's one-second
// deadline for it also bounds a write of the Writer in progress;
// [Writer.NextReader] and [Writer.AppendMessage] drop the queue and
// refuse writes when they return that read error, so that nothing is
// queued after the close, but frames the Writer was writing at that
// moment may still follow it.
func New(c *websocket.Conn, o *Options) *Writer {
	if o == nil {
		o = &Options{}
	}
	w := &Writer{
		c:            c,
		out:          c.NetConn(),
		budget:       o.QueueBytes,
		writeTimeout: max(o.WriteTimeout, 0),
		closeTimeout: o.CloseTimeout,
		readClose:    o.ReadClose,
	}
	if w.budget <= 0 {
		w.budget = defaultQueueBytes
	}
	if w.closeTimeout <= 0 {
		w.closeTimeout = defaultCloseTimeout
	}
	w.pongRoom.L = &w.mu
	c.SetPingHandler(w.onPing)
	c.SetCloseHandler(w.onClose)
	if hc, ok := w.out.(*conn); ok {
		w.out, w.upgraded = hc.Conn, true
		hc.w.Store(w)
	}
	w.vectored = vectored(w.out)
	return w
}

// Write queues p as one binary message. It is [asyncio.TryWrite]: it never
// blocks, and returns (0, [asyncio.ErrWouldBlock]) when p does not fit.
func (w *Writer) Write(p []byte) (int, error) { return asyncio.TryWrite(w, p) }

// PollWrite queues a copy of p as one binary message, or answers NotReady
// and takes nothing when it does not fit. An empty p is Ready(0) and sends
// nothing; use [Writer.PollWriteMessage] for an empty message.
func (w *Writer) PollWrite(t *asyncio.Task, p []byte) (asyncio.Async[int], error) {
	if len(p) == 0 {
		w.mu.Lock()
		err := w.writableLocked()
		w.mu.Unlock()
		if err != nil {
			return asyncio.NotReady[int](), err
		}
		return asyncio.Ready(0), nil
	}
	return w.PollWriteMessage(t, websocket.BinaryMessage, p)
}

// WriteBuf queues what remains of b as one binary message and advances b
// to its end, or answers NotReady and leaves b as it is when it does not
// fit. An empty b is Ready(0).
func (w *Writer) WriteBuf(t *asyncio.Task, b asyncio.Buf) (asyncio.Async[int], error) {
	n := b.Remaining()
	if n == 0 {
		return w.PollWrite(t, nil)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	r, err := w.admitLocked(t, n)
	if err != nil || !r.Ready {
		return r, err
	}
	it, p := newFrame(websocket.BinaryMessage, n, r.Value)
	for p = p[:0]; b.Remaining() > 0; {
		c := b.Chunk()
		p = append(p, c...)
		b.Advance(len(c))
	}
	w.pushLocked(it)
	return asyncio.Ready(n), nil
}

// PollWriteMessage queues a copy of p as one message of type messageType
// (websocket.TextMessage, BinaryMessage, PingMessage or PongMessage), all
// or nothing: it answers Ready(len(p)) when the message is queued, or
// NotReady, taking nothing, when it does not fit in what is left of the
// budget; t is then notified when the queue has drained to half the budget
// (or further, for a message larger than half). A message larger than the
// whole budget is accepted when nothing is queued. An empty p is an empty
// message.
//
// Messages are written in the order they were queued. After Shutdown began,
// or the peer's close frame arrived, it fails with [asyncio.ErrShutdown];
// after the writer failed, with that error.
func (w *Writer) PollWriteMessage(t *asyncio.Task, messageType int, p []byte) (asyncio.Async[int], error) {
	switch messageType {
	case websocket.TextMessage, websocket.BinaryMessage:
	case websocket.PingMessage, websocket.PongMessage:
		if len(p) > 125 {
			return asyncio.NotReady[int](), errControlSize
		}
	default:
		return asyncio.NotReady[int](), errMessageType
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	r, err := w.admitLocked(t, len(p))
	if err != nil || !r.Ready {
		return r, err
	}
	it, payload := newFrame(messageType, len(p), r.Value)
	copy(payload, p)
	w.pushLocked(it)
	return asyncio.Ready(len(p)), nil
}

// PollWritePrepared queues pm: the way to broadcast one message to many
// connections, framed once. pm's frame is not copied; it counts against
// the budget as its payload's length. Otherwise it is [Writer.PollWriteMessage]. A
// prepared close message is refused: close with [Writer.ShutdownWith].
func (w *Writer) PollWritePrepared(t *asyncio.Task, pm *websocket.PreparedMessage) (asyncio.Async[struct{}], error) {
	if pm == nil {
		return asyncio.NotReady[struct{}](), errNilPrepared
	}
	frame, err := preparedFrame(pm)
	if err != nil {
		return asyncio.NotReady[struct{}](), err
	}
	if frame[0]&0x0f == websocket.CloseMessage {
		return asyncio.NotReady[struct{}](), errMessageType
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	r, err := w.admitLocked(t, payloadLen(frame))
	if err != nil || !r.Ready {
		return asyncio.NotReady[struct{}](), err
	}
	w.pushLocked(item{frame: frame, cost: r.Value})
	return asyncio.Ready(struct{}{}), nil
}

// admitLocked decides whether a message of n bytes may be queued: Ready
// with its cost against the budget, NotReady having registered t, or the
// error that refuses every write.
func (w *Writer) admitLocked(t *asyncio.Task, n int) (asyncio.Async[int], error) {
	if err := w.writableLocked(); err != nil {
		return asyncio.NotReady[int](), err
	}
	cost := max(n, minCost)
	if w.queued > 0 && w.queued+cost > w.budget {
		if t != nil {
			if w.roomWait.Len() == 0 || cost < w.roomNeed {
				w.roomNeed = cost
			}
			w.roomWait.Add(t)
		}
		return asyncio.NotReady[int](), nil
	}
	return asyncio.Ready(cost), nil
}

func (w *Writer) writableLocked() error {
	if w.err != nil {
		return w.err
	}
	if w.state != stateOpen {
		return asyncio.ErrShutdown
	}
	return nil
}

// pushLocked queues it and makes sure the sender goroutine runs.
func (w *Writer) pushLocked(it item) {
	if w.q == nil {
		w.q = queues.Get().(*queue)
	}
	w.q.push(it)
	w.queued += it.cost
	w.startLocked()
}

func (w *Writer) startLocked() {
	if !w.running && w.state < stateClosingConn {
		w.running = true
		w.wg.Add(1)
		go w.run()
	}
}

// PollFlush is Ready when every queued message was written to the
// connection, and NotReady until then. It fails with the writer's error.
func (w *Writer) PollFlush(t *asyncio.Task) (asyncio.Async[struct{}], error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return asyncio.NotReady[struct{}](), w.err
	}
	if w.flushedLocked() {
		return asyncio.Ready(struct{}{}), nil
	}
	w.flushWait.Add(t)
	return asyncio.NotReady[struct{}](), nil
}

func (w *Writer) flushedLocked() bool {
	return (w.q == nil || w.q.n == 0) && !w.writing
}

// Queued returns how much of the budget the queued messages use, the ones
// being written included: their length in bytes, with the minimum cost
// [Options.QueueBytes] describes.
func (w *Writer) Queued() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.queued
}

// Available returns how much of the budget is free, QueueBytes minus
// [Writer.Queued]: a message that costs no more is accepted now (and any
// message when nothing is queued). It is 0 or less when the queue is
// full, and 0 once writes are refused.
func (w *Writer) Available() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.writableLocked() != nil {
		return 0
	}
	return w.budget - w.queued
}

// Undelivered returns how many queued bytes (counted as [Writer.Queued]
// counts them) were dropped without being written because the writer
// failed or was closed. A write that failed counts as undelivered,
// whatever part of it reached the socket. It is 0 while the writer works.
func (w *Writer) Undelivered() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.undelivered
}

// takeAllLocked takes every waiting task, to be notified once the lock
// is released.
func (w *Writer) takeAllLocked() asyncio.Wakeups {
	var wake asyncio.Wakeups
	w.roomWait.TakeInto(&wake)
	w.flushWait.TakeInto(&wake)
	w.closeWait.TakeInto(&wake)
	return wake
}

// wakeLocked takes the tasks whose wait is over: all of them once the
// writer failed; else those waiting for the close once the connection is
// closed, those waiting for a flush once the queue is written, and those
// waiting for room once writes are refused or the queue has drained to
// where the smallest message they wait to queue fits beside half the
// budget (so that writers that keep the queue full are woken once per
// half, not per message).
func (w *Writer) wakeLocked() asyncio.Wakeups {
	if w.err != nil {
		return w.takeAllLocked()
	}
	var wake asyncio.Wakeups
	if w.state == stateClosed {
		w.closeWait.TakeInto(&wake)
	}
	if w.flushedLocked() {
		w.flushWait.TakeInto(&wake)
	}
	if w.roomWait.Len() > 0 && (w.state != stateOpen || w.queued == 0 || w.queued+max(w.roomNeed, w.budget/2) <= w.budget) {
		w.roomWait.TakeInto(&wake)
	}
	return wake
}
