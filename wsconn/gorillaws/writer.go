package gorillaws

import (
	"crypto/tls"
	"errors"
	"fmt"
	"math/bits"
	"net"
	"os"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"

	"github.com/pollws/pollws/asyncio"
)

// Options configures a [Writer]. The zero value and nil give
// the defaults written on each field.
type Options struct {
	// QueueBytes is the byte budget of queued messages: a message is
	// accepted when it fits in what is left of it, or when nothing is
	// queued, whatever its size. Each message counts as at least 64 bytes
	// and a prepared message as 1 KiB (its size is not visible through
	// gorilla's API). Default 64 KiB.
	QueueBytes int

	// WriteTimeout bounds the write of each message and control frame to
	// the connection; when it passes, the writer fails with an error that
	// matches os.ErrDeadlineExceeded. Default 0: no limit, except for the
	// close frame, whose write is bounded by CloseTimeout.
	WriteTimeout time.Duration

	// CloseTimeout bounds how long Shutdown waits for the peer's close
	// frame after sending its own, before it closes the connection.
	// Default 5 s.
	CloseTimeout time.Duration

	// ReadClose says that nothing else reads the connection, so Shutdown
	// must read it itself to see the peer's close frame: after sending its
	// own, it reads and discards messages until the close arrives, reading
	// fails, or CloseTimeout passes. Leave it false when the application
	// runs a read loop (NextReader or ReadMessage), as gorilla requires of
	// most applications: gorilla allows one reader at a time.
	ReadClose bool
}

const (
	defaultQueueBytes   = 64 << 10
	defaultCloseTimeout = 5 * time.Second
	minCost             = 64      // what a small message counts against the budget
	preparedCost        = 1 << 10 // what a prepared message counts against the budget
	maxPongs            = 16      // pongs waiting to go out, at most
)

var (
	errMessageType = errors.New("gorillaws: message type must be websocket.TextMessage, BinaryMessage, PingMessage or PongMessage (close with ShutdownWith)")
	errControlSize = errors.New("gorillaws: control message payload longer than 125 bytes")
	errCloseCode   = errors.New("gorillaws: close code cannot be sent")
	errCloseReason = errors.New("gorillaws: close reason longer than 123 bytes or not UTF-8")
	errNilPrepared = errors.New("gorillaws: nil prepared message")
)

// Writer gives a gorilla/websocket connection the poll contract of
// [asyncio.AsyncWriter]: writes copy each message into a bounded queue and
// never block, and one goroutine writes the queue to the connection. That
// goroutine exists only while the queue is not empty (an idle writer holds
// no goroutine and no buffer) and is the only caller of the connection's
// write methods (NextWriter, WriteMessage, WritePreparedMessage,
// WriteControl), so gorilla's "concurrent write to websocket connection"
// panic cannot happen whatever the callers do.
//
// [Writer.PollWrite] sends p as one binary message, so a
// Writer is a byte-stream AsyncWriter whose writes keep their
// boundaries; [Writer.PollWriteMessage] chooses the message type and
// [Writer.PollWritePrepared] queues a [websocket.PreparedMessage] for
// broadcast. [Writer.Shutdown] flushes the queue, sends a close
// frame, waits for the peer's close, and closes the connection.
//
// New installs the connection's ping and close handlers, so
// that pongs and the answer to the peer's close frame also go through the
// writer's goroutine: every ping gets its own pong, in order, ahead of the
// queued messages, and the close frame goes after them. The application's read loop (NextReader, ReadMessage)
// runs the handlers and still sees the peer's close as a
// *[websocket.CloseError]. An application that sets its own handlers
// afterwards takes that over.
//
// A Writer is safe for use by multiple goroutines, and any number of them
// may wait on it at once: every [asyncio.Task] that got NotReady is
// notified when what it waits for (room in the queue, a flush, the close)
// is possible.
type Writer struct {
	c            *websocket.Conn
	budget       int
	writeTimeout time.Duration
	closeTimeout time.Duration
	readClose    bool

	wg sync.WaitGroup // the writer goroutine; Add only under mu while the connection is open

	mu          sync.Mutex
	q           *queue          // nil when empty
	queued      int             // budget used by queued messages and the one being written
	running     bool            // the writer goroutine is alive
	writing     bool            // the writer goroutine is writing an item taken from q
	roomWait    asyncio.WaitSet // tasks waiting for room in the queue
	roomNeed    int             // the smallest cost a task in roomWait waits to queue
	flushWait   asyncio.WaitSet // tasks waiting for the queue to be written
	closeWait   asyncio.WaitSet // tasks waiting for the connection to be closed
	state       state
	err         error // sticky
	closeCode   int
	closeText   string
	peerClosed  bool // the peer's close frame was read
	connClosing bool // the connection is being closed or was closed
	closeTimer  *time.Timer
	undelivered int64
	pongs       *pongRing // nil when no pong waits
	pongRoom    sync.Cond // signalled when pongs has room, or pongs are no longer sent
}

var (
	_ asyncio.AsyncWriter = (*Writer)(nil)
	_ asyncio.BufWriter   = (*Writer)(nil)
)

type state uint8

const (
	stateOpen      state = iota
	stateClosing         // the close frame is queued: writes are refused
	stateCloseSent       // the close frame was written; waiting for the peer's close
	stateClosed          // the connection is closed
)

// New returns a writer over c configured by o (nil: the
// defaults). It sets c's ping and close handlers (see [Writer]) and
// leaves everything else of c to the caller, who must not call c's write
// methods any more.
func New(c *websocket.Conn, o *Options) *Writer {
	if o == nil {
		o = &Options{}
	}
	w := &Writer{
		c:            c,
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
	r, err := w.admitLocked(t, n)
	if err != nil || !r.Ready {
		w.mu.Unlock()
		return r, err
	}
	buf := getBuf(n)
	for p := (*buf)[:0]; b.Remaining() > 0; {
		c := b.Chunk()
		p = append(p, c...)
		b.Advance(len(c))
	}
	w.pushLocked(item{kind: kindMessage, mt: websocket.BinaryMessage, buf: buf, n: n, cost: r.Value})
	w.mu.Unlock()
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
	r, err := w.admitLocked(t, len(p))
	if err != nil || !r.Ready {
		w.mu.Unlock()
		return r, err
	}
	var buf *[]byte
	if len(p) > 0 {
		buf = getBuf(len(p))
		copy(*buf, p)
	}
	w.pushLocked(item{kind: kindMessage, mt: messageType, buf: buf, n: len(p), cost: r.Value})
	w.mu.Unlock()
	return asyncio.Ready(len(p)), nil
}

// PollWritePrepared queues pm, which the writer's goroutine sends with
// WritePreparedMessage: the way to broadcast one message to many
// connections, encoded once. pm is not copied and counts as 1 KiB against
// the budget. Otherwise it is [Writer.PollWriteMessage].
func (w *Writer) PollWritePrepared(t *asyncio.Task, pm *websocket.PreparedMessage) (asyncio.Async[struct{}], error) {
	if pm == nil {
		return asyncio.NotReady[struct{}](), errNilPrepared
	}
	w.mu.Lock()
	r, err := w.admitLocked(t, preparedCost)
	if err != nil || !r.Ready {
		w.mu.Unlock()
		return asyncio.NotReady[struct{}](), err
	}
	w.pushLocked(item{kind: kindPrepared, pm: pm, cost: r.Value})
	w.mu.Unlock()
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

// pushLocked queues it and makes sure the writer goroutine runs.
func (w *Writer) pushLocked(it item) {
	if w.q == nil {
		w.q = queues.Get().(*queue)
	}
	w.q.push(it)
	w.queued += it.cost
	w.startLocked()
}

func (w *Writer) startLocked() {
	if !w.running {
		w.running = true
		w.wg.Add(1)
		go w.run()
	}
}

// PollFlush is Ready when every queued message was written to the
// connection (gorilla writes each message through to the socket), and
// NotReady until then. It fails with the writer's error.
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

// Shutdown is ShutdownWith(t, websocket.CloseNormalClosure, "").
func (w *Writer) Shutdown(t *asyncio.Task) (asyncio.Async[struct{}], error) {
	return w.ShutdownWith(t, websocket.CloseNormalClosure, "")
}

// ShutdownWith closes the connection gracefully: first it refuses new
// writes ([asyncio.ErrShutdown]) and writes every queued message, then it
// sends a close frame with code and reason, then it waits for the peer's
// close frame for up to [Options.CloseTimeout], and then it closes
// the connection. It is Ready when the connection is closed, also when the
// peer did not answer in time: every message was written by then.
//
// The peer's close frame is read by the application's read loop, whose
// NextReader or ReadMessage returns a *[websocket.CloseError] for it, or,
// with [Options.ReadClose], by the writer's goroutine. If the peer
// closed first, the writer answered with its own close frame echoing the
// peer's code, and ShutdownWith waits for that answer to be written.
//
// A NotReady ShutdownWith resumes when called again, whatever its
// arguments: the first call chooses the close frame. After Ready it is
// Ready at once. A write error before the close frame is written is
// sticky, as is [net.ErrClosed] when [Writer.Close] cut the
// shutdown short. code 1005 (websocket.CloseNoStatusReceived) sends a close
// frame with no code; other codes that may not be sent, and reasons longer
// than 123 bytes or not UTF-8, are refused without starting the shutdown.
func (w *Writer) ShutdownWith(t *asyncio.Task, code int, reason string) (asyncio.Async[struct{}], error) {
	if !sendableCode(code) {
		return asyncio.NotReady[struct{}](), errCloseCode
	}
	if len(reason) > 123 || !utf8.ValidString(reason) || (code == websocket.CloseNoStatusReceived && reason != "") {
		return asyncio.NotReady[struct{}](), errCloseReason
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return asyncio.NotReady[struct{}](), w.err
	}
	if w.state == stateClosed {
		return asyncio.Ready(struct{}{}), nil
	}
	if w.state == stateOpen {
		w.state = stateClosing
		w.closeCode, w.closeText = code, reason
		w.pushLocked(item{kind: kindClose})
	}
	w.closeWait.Add(t)
	return asyncio.NotReady[struct{}](), nil
}

func sendableCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003, code == websocket.CloseNoStatusReceived,
		code >= 1007 && code <= 1014, code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// Close closes the connection at once, without a close frame: a message
// being written fails, queued messages are dropped (see
// [Writer.Undelivered]), and the writer's goroutine has exited when
// Close returns. Over TLS it closes the transport without close_notify.
// Writes and a Shutdown that had not yet sent its close frame fail with
// [net.ErrClosed]; after the close frame was sent, Shutdown is Ready. Close
// is safe to call more than once and concurrently with anything; later
// calls return nil.
func (w *Writer) Close() error {
	w.mu.Lock()
	if w.connClosing {
		w.mu.Unlock()
		w.wg.Wait()
		return nil
	}
	if w.err == nil && w.state < stateCloseSent {
		w.err = net.ErrClosed
	}
	w.dropLocked()
	w.connClosing = true
	w.stopTimerLocked()
	wake := w.takeAllLocked()
	w.mu.Unlock()
	wake.Notify()

	nc := w.c.NetConn()
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	err := nc.Close()

	w.mu.Lock()
	w.state = stateClosed
	wake = w.takeAllLocked()
	w.mu.Unlock()
	wake.Notify()
	w.wg.Wait()
	return err
}

// Queued returns how much of the budget the queued messages use, the one
// being written included: their length in bytes, with the minimum costs
// [Options.QueueBytes] describes.
func (w *Writer) Queued() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.queued
}

// Available returns how much of the budget is free, QueueBytes minus
// [Writer.Queued]: a message that costs no more is accepted now (and
// any message when nothing is queued). It is 0 or less when the queue is
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
// failed or was closed. A message whose write failed counts as
// undelivered, whatever part of it reached the socket. It is 0 while the
// writer works.
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
// waiting for room once the queue has drained to where the smallest
// message they wait to queue fits beside half the budget (so that writers
// that keep the queue full are woken once per half, not per message).
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

// failLocked makes err the writer's sticky error and drops the queue.
func (w *Writer) failLocked(err error) {
	if w.err != nil {
		return
	}
	w.dropLocked()
	if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
		w.err = fmt.Errorf("gorillaws: write timed out after %v, %d bytes undelivered: %w", w.writeTimeout, w.undelivered, os.ErrDeadlineExceeded)
		return
	}
	w.err = fmt.Errorf("gorillaws: write failed, %d bytes undelivered: %w", w.undelivered, err)
}

// dropLocked drops the queued messages, except the one being written,
// which the writer goroutine accounts for, and the pongs.
func (w *Writer) dropLocked() {
	w.dropPongsLocked()
	if w.q == nil {
		return
	}
	for w.q.n > 0 {
		it := w.q.pop()
		w.queued -= it.cost
		w.undelivered += int64(it.cost)
		it.release()
	}
	queues.Put(w.q)
	w.q = nil
}

func (w *Writer) stopTimerLocked() {
	if w.closeTimer != nil {
		w.closeTimer.Stop()
		w.closeTimer = nil
	}
}

// run is the writer goroutine: it writes queued items in order, and a
// pending pong before the next item, until the queue is empty or the
// writer failed or closed.
func (w *Writer) run() {
	defer w.wg.Done()
	var wake asyncio.Wakeups
	w.mu.Lock()
	for {
		var it item
		switch {
		case w.err != nil || w.connClosing:
			w.running = false
			w.dropLocked()
			w.mu.Unlock()
			wake.Notify()
			return
		case w.pongs != nil && w.pongs.n > 0:
			it = item{kind: kindPong}
		case w.q != nil && w.q.n > 0:
			it = w.q.pop()
		default:
			w.running = false
			if w.q != nil {
				queues.Put(w.q)
				w.q = nil
			}
			w.dropPongsLocked()
			w.mu.Unlock()
			wake.Notify()
			return
		}
		var pong [125]byte
		if it.kind == kindPong {
			it.n = w.pongs.pop(&pong)
			w.pongRoom.Broadcast()
		}
		code, text := w.closeCode, w.closeText
		w.writing = true
		w.mu.Unlock()
		wake.Notify()

		err := w.write(&it, &pong, code, text)
		it.release()

		w.mu.Lock()
		w.writing = false
		w.queued -= it.cost
		switch {
		case err != nil:
			w.undelivered += int64(it.cost)
			w.failLocked(err)
		case w.err != nil:
			// Close cut in while the item was written; it was delivered.
		case it.kind == kindClose:
			// Nothing is queued after the close frame: this goroutine's last
			// task is to see the connection closed, now if the peer's close
			// came first, else when it comes (read here with ReadClose, or
			// by the application's read loop) or when CloseTimeout passes.
			w.state = stateCloseSent
			w.running = false
			w.dropPongsLocked()
			peerClosed := w.peerClosed
			if !peerClosed && !w.readClose {
				w.closeTimer = time.AfterFunc(w.closeTimeout, w.closeConn)
			}
			wake = w.wakeLocked()
			w.mu.Unlock()
			wake.Notify()
			if peerClosed || w.readClose {
				if !peerClosed {
					w.awaitPeerClose()
				}
				w.closeConn()
			}
			return
		}
		wake = w.wakeLocked()
	}
}

// write writes one item to the connection.
func (w *Writer) write(it *item, pong *[125]byte, code int, text string) error {
	var deadline time.Time
	if w.writeTimeout > 0 {
		deadline = time.Now().Add(w.writeTimeout)
	}
	switch it.kind {
	case kindMessage:
		var p []byte
		if it.buf != nil {
			p = (*it.buf)[:it.n]
		}
		if it.mt == websocket.PingMessage || it.mt == websocket.PongMessage {
			return w.c.WriteControl(it.mt, p, deadline)
		}
		w.c.SetWriteDeadline(deadline)
		return w.c.WriteMessage(it.mt, p)
	case kindPrepared:
		w.c.SetWriteDeadline(deadline)
		return w.c.WritePreparedMessage(it.pm)
	case kindPong:
		return w.c.WriteControl(websocket.PongMessage, pong[:it.n], deadline)
	}
	if deadline.IsZero() {
		deadline = time.Now().Add(w.closeTimeout)
	}
	var msg []byte
	if code != websocket.CloseNoStatusReceived {
		msg = websocket.FormatCloseMessage(code, text)
	}
	return w.c.WriteControl(websocket.CloseMessage, msg, deadline)
}

// awaitPeerClose reads and discards messages until the peer's close frame
// arrives, reading fails, or CloseTimeout passes.
func (w *Writer) awaitPeerClose() {
	w.c.SetReadDeadline(time.Now().Add(w.closeTimeout))
	for {
		if _, _, err := w.c.NextReader(); err != nil {
			return
		}
	}
}

// closeConn closes the connection once the close frame was written and
// the peer's close arrived or CloseTimeout passed, and wakes a waiting
// Shutdown. Any number of callers may race to it; the first closes.
func (w *Writer) closeConn() {
	w.mu.Lock()
	if w.connClosing {
		w.mu.Unlock()
		return
	}
	w.connClosing = true
	w.stopTimerLocked()
	w.dropPongsLocked()
	w.mu.Unlock()

	w.c.Close()

	w.mu.Lock()
	w.state = stateClosed
	wake := w.wakeLocked()
	w.mu.Unlock()
	wake.Notify()
}

// onClose is the connection's close handler. When the peer closes first,
// the writer begins its shutdown with the peer's code, so its close frame
// follows the messages already queued; when the writer's close frame was
// already sent, the handshake is complete and the connection closes.
func (w *Writer) onClose(code int, _ string) error {
	w.mu.Lock()
	w.peerClosed = true
	switch {
	case w.err != nil || w.connClosing:
	case w.state == stateOpen:
		w.state = stateClosing
		w.closeCode, w.closeText = code, ""
		if !sendableCode(code) {
			w.closeCode = websocket.CloseNoStatusReceived
		}
		w.pushLocked(item{kind: kindClose})
	case w.state == stateCloseSent:
		w.mu.Unlock()
		w.closeConn()
		return nil
	}
	wake := w.wakeLocked()
	w.mu.Unlock()
	wake.Notify()
	return nil
}

type kind uint8

const (
	kindMessage kind = iota
	kindPrepared
	kindClose
	kindPong
)

// item is one queued message or control frame.
type item struct {
	kind kind
	mt   int     // message type of a kindMessage
	buf  *[]byte // payload of a kindMessage, from getBuf; nil when empty
	n    int     // payload length
	cost int     // what the item counts against the budget
	pm   *websocket.PreparedMessage
}

func (it *item) release() {
	if it.buf != nil {
		putBuf(it.buf)
		it.buf = nil
	}
	it.pm = nil
}

// queue is a FIFO ring of items. Rings are pooled: a writer holds one
// only while it has messages queued.
type queue struct {
	items []item // len is a power of two
	head  int
	n     int
}

var queues = sync.Pool{New: func() any { return &queue{items: make([]item, 16)} }}

func (q *queue) push(it item) {
	if q.n == len(q.items) {
		items := make([]item, 2*len(q.items))
		for i := range q.n {
			items[i] = q.items[(q.head+i)&(len(q.items)-1)]
		}
		q.items, q.head = items, 0
	}
	q.items[(q.head+q.n)&(len(q.items)-1)] = it
	q.n++
}

func (q *queue) pop() item {
	it := q.items[q.head]
	q.items[q.head] = item{}
	q.head = (q.head + 1) & (len(q.items) - 1)
	q.n--
	return it
}

// Message buffers come from pools by power-of-two size class, from
// 64 B to maxBuf (1 MiB); larger ones are allocated for the message.
const (
	minBufShift = 6
	maxBufShift = 20
	maxBuf      = 1 << maxBufShift
)

var bufs [maxBufShift - minBufShift + 1]sync.Pool

func bufClass(n int) int {
	return max(bits.Len(uint(n-1)), minBufShift) - minBufShift
}

// getBuf returns a buffer of length n > 0.
func getBuf(n int) *[]byte {
	if n > maxBuf {
		b := make([]byte, n)
		return &b
	}
	c := bufClass(n)
	if v := bufs[c].Get(); v != nil {
		b := v.(*[]byte)
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n, 1<<(c+minBufShift))
	return &b
}

func putBuf(b *[]byte) {
	if c := cap(*b); c <= maxBuf && c == 1<<(bufClass(c)+minBufShift) {
		bufs[bufClass(c)].Put(b)
	}
}
