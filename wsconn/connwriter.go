package wsconn

import (
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gobwas/ws"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/buf"
)

const (
	cwDefaultBufferSize = 64 << 10

	// cwMaxVec bounds the slices of one writev: the queue has at most
	// five segments (big, the ring's two slices split around the control
	// frame), and a direct write a header and a few caller slices.
	cwMaxVec = 8

	// cwCtlMax is the largest control frame: a header and 125 bytes.
	cwCtlMax = ws.MaxHeaderSize + ws.MaxControlFramePayloadSize
)

// Task slots: a ConnWriter notifies the latest task of each. The
// application's polls use cwSlotApp; a Conn's reader, which queues pongs
// and close frames while the application may be waiting to write, uses
// cwSlotReader; a shutdown, which another goroutine may begin (a server's
// drain) while the application waits to write, uses cwSlotShutdown. So no
// wait replaces another's task and parks that goroutine for good.
const (
	cwSlotApp = iota
	cwSlotReader
	cwSlotShutdown
	cwSlots
)

type cwState uint8

const (
	cwOpen     cwState = iota
	cwShutting         // Shutdown began: writes fail, pending bytes go out, then the end
	cwShut             // the end (FIN, close_notify) was sent
)

// ConnWriterOptions configures a [ConnWriter]. A nil *ConnWriterOptions
// means the defaults.
type ConnWriterOptions struct {
	// BufferSize is how many bytes the writer holds before a write
	// answers NotReady. Zero or less means 64 KiB.
	BufferSize int

	// WriteThrough sends bytes to the connection as soon as they are
	// accepted, instead of when the buffer fills or on PollFlush:
	// latency over throughput. The default is false.
	WriteThrough bool

	// WriteTimeout bounds how long a flush may wait on the connection:
	// over a socket, how long the socket may take none of the pending
	// bytes; over other connections, how long one Write of pending bytes
	// may take. When it runs out, the writer fails with an error that
	// wraps [os.ErrDeadlineExceeded] and says how many bytes were not
	// delivered. Zero, the default, means no limit.
	WriteTimeout time.Duration
}

// ConnWriterStats counts what a [ConnWriter] did. Each field is read
// atomically, but not all of them at one instant.
type ConnWriterStats struct {
	Accepted      int64 // bytes taken by writes
	Written       int64 // bytes written to the connection
	WriteSyscalls int64 // writes to the connection: writev system calls, or calls of its Write
	NotReady      int64 // polls that answered NotReady
}

// ConnWriter is an [asyncio.AsyncWriter] over a [net.Conn] with a bounded
// buffer (see the package documentation for how bytes reach the
// connection). NewConnWriter takes ownership of the connection: it must
// not be written to or closed but through the ConnWriter, though it may be
// read from.
//
// A ConnWriter is safe for use by multiple goroutines; a NotReady poll
// replaces the task of an earlier one, so one goroutine at a time should
// wait on it, as with any [io.Writer].
type ConnWriter struct {
	conn    net.Conn
	raw     syscall.RawConn // non-nil: non-blocking writev on the socket
	size    int
	through bool
	timeout time.Duration

	// The callbacks for raw.Write, made once so that a write does not
	// allocate a closure.
	tryFn, directFn, waitFn func(fd uintptr) bool

	mu sync.Mutex
	// The queue of pending bytes, in the order they go out: big, the
	// first ctlAt bytes of ring, ctl, the rest of ring. A control frame
	// goes to ctl only when ring is full, and keeps its place: later
	// writes go after it.
	ring     *buf.Ring
	big      []byte // the head of one message larger than the buffer
	ctl      [cwCtlMax]byte
	ctlOff   int // ctl[ctlOff:ctlN] is the control frame
	ctlN     int
	ctlAt    int
	tasks    [cwSlots]*asyncio.Task
	err      error // sticky
	state    cwState
	busy     bool // a flush goroutine runs; only it writes to the socket
	full     bool // a write answered NotReady: later writes wait too, until bytes go out
	closed   bool
	head     [ws.MaxHeaderSize]byte // the frame header of the write in progress
	iov      [cwMaxVec][]byte       // the slices of the next writev
	niov     int
	chunks   [cwMaxVec][]byte // a WriteBuf's chunks, under mu, or under the Conn's mu for a Conn's writer
	cbWrote  int              // results of tryFn and directFn
	cbAgain  bool
	wg       sync.WaitGroup // the flush goroutine
	accepted atomic.Int64
	written  atomic.Int64
	syscalls atomic.Int64
	notReady atomic.Int64
}

var (
	_ asyncio.AsyncWriter = (*ConnWriter)(nil)
	_ asyncio.BufWriter   = (*ConnWriter)(nil)
)

// NewConnWriter returns a [ConnWriter] over c with the default options.
func NewConnWriter(c net.Conn) *ConnWriter { return NewConnWriterOptions(c, nil) }

// NewConnWriterOptions returns a [ConnWriter] over c configured by o; a nil
// o means the defaults. It takes no buffer until the first write.
func NewConnWriterOptions(c net.Conn, o *ConnWriterOptions) *ConnWriter {
	if o == nil {
		o = new(ConnWriterOptions)
	}
	w := &ConnWriter{conn: c, size: o.BufferSize, through: o.WriteThrough, timeout: o.WriteTimeout}
	if w.size <= 0 {
		w.size = cwDefaultBufferSize
	}
	w.ring = buf.NewRing(w.size)
	w.raw = cwRawConn(c)
	if w.raw != nil {
		w.tryFn, w.directFn, w.waitFn = w.cwTry, w.cwDirect, w.cwWaitWritable
	}
	return w
}

// cwRawConn returns the raw socket of c when writes to it may bypass c:
// a TCP or Unix stream socket, with a half-close for Shutdown.
func cwRawConn(c net.Conn) syscall.RawConn {
	if !cwRawSupported {
		return nil
	}
	switch c := c.(type) {
	case *net.TCPConn:
		if raw, err := c.SyscallConn(); err == nil {
			return raw
		}
	case *net.UnixConn:
		if a := c.LocalAddr(); a != nil && a.Network() == "unix" {
			if raw, err := c.SyscallConn(); err == nil {
				return raw
			}
		}
	}
	return nil
}

// cwReq is one write: an optional frame header, copied to w.head[:hn],
// and a body, which a direct write may send from the caller's slices.
type cwReq struct {
	hn      int
	body    [][]byte
	total   int
	whole   bool // all or nothing
	control bool // a control frame: may pass a full buffer
	masked  bool // mask the body with mask (client frames)
	mask    [4]byte
}

// Write writes p without blocking: it is [asyncio.TryWrite].
func (w *ConnWriter) Write(p []byte) (int, error) { return asyncio.TryWrite(w, p) }

// PollWrite copies as much of p as fits into the buffer and answers
// Ready(n), or NotReady when the buffer is full and the connection takes
// nothing. A large p written while nothing is pending may go to the
// socket directly, without the copy.
func (w *ConnWriter) PollWrite(t *asyncio.Task, p []byte) (asyncio.Async[int], error) {
	one := [1][]byte{p}
	q := cwReq{body: one[:], total: len(p)}
	return w.cwPoll(t, cwSlotApp, nil, q)
}

// PollWriteWhole writes all of p or nothing: Ready(total) or NotReady.
// A total larger than the buffer is accepted only when nothing is
// pending, so the writer holds at most the larger of its buffer and one
// such write.
func (w *ConnWriter) PollWriteWhole(t *asyncio.Task, p ...[]byte) (asyncio.Async[int], error) {
	q := cwReq{body: p, whole: true}
	for _, b := range p {
		q.total += len(b)
	}
	return w.cwPoll(t, cwSlotApp, nil, q)
}

// WriteBuf writes from b and advances it by what was taken, with one
// vectored write of its chunks when b is an [asyncio.VectoredBuf].
func (w *ConnWriter) WriteBuf(t *asyncio.Task, b asyncio.Buf) (asyncio.Async[int], error) {
	if b.Remaining() == 0 {
		return asyncio.Ready(0), nil
	}
	w.mu.Lock()
	q := cwReq{}
	if vb, ok := b.(asyncio.VectoredBuf); ok {
		q.body = w.chunks[:vb.Chunks(w.chunks[:])]
	} else {
		w.chunks[0] = b.Chunk()
		q.body = w.chunks[:1]
	}
	for _, c := range q.body {
		q.total += len(c)
	}
	var wake [cwSlots]*asyncio.Task
	n, ready, err := w.cwPollLocked(t, cwSlotApp, &q, &wake)
	clear(w.chunks[:])
	w.mu.Unlock()
	cwNotify(wake)
	if !ready || err != nil {
		return asyncio.NotReady[int](), err
	}
	b.Advance(n)
	return asyncio.Ready(n), nil
}

// cwFrame writes one frame, all or nothing: head (a frame header) and the
// concatenation of body, masked with mask when masked is set. A control
// frame may pass a full buffer by one frame. It answers
// Ready(len(head)+len(body)) and adds to wake the tasks to notify, which
// the caller notifies once it holds no lock.
func (w *ConnWriter) cwFrame(t *asyncio.Task, slot int, head []byte, body [][]byte, masked bool, mask [4]byte, control bool, wake *[cwSlots]*asyncio.Task) (asyncio.Async[int], error) {
	q := cwReq{body: body, total: len(head), whole: true, control: control, masked: masked, mask: mask}
	for _, b := range body {
		q.total += len(b)
	}
	w.mu.Lock()
	q.hn = copy(w.head[:], head)
	n, ready, err := w.cwPollLocked(t, slot, &q, wake)
	w.mu.Unlock()
	if !ready || err != nil {
		return asyncio.NotReady[int](), err
	}
	return asyncio.Ready(n), nil
}

// cwPoll runs one write. head, a frame header, is copied at once into
// w.head so that it never escapes.
func (w *ConnWriter) cwPoll(t *asyncio.Task, slot int, head []byte, q cwReq) (asyncio.Async[int], error) {
	w.mu.Lock()
	q.hn = copy(w.head[:], head)
	var wake [cwSlots]*asyncio.Task
	n, ready, err := w.cwPollLocked(t, slot, &q, &wake)
	w.mu.Unlock()
	cwNotify(wake)
	if !ready || err != nil {
		return asyncio.NotReady[int](), err
	}
	return asyncio.Ready(n), nil
}

// cwPollLocked accepts what it can of q, or registers t and makes sure a
// flush is under way. It adds to wake the tasks to notify after
// unlocking; it never clears an entry of wake.
func (w *ConnWriter) cwPollLocked(t *asyncio.Task, slot int, q *cwReq, wake *[cwSlots]*asyncio.Task) (n int, ready bool, err error) {
	if err := w.cwWritableLocked(); err != nil {
		return 0, false, err
	}
	if q.total == 0 {
		return 0, true, nil
	}
	for attempt := 0; ; attempt++ {
		if n, ok := w.cwAcceptLocked(q); ok {
			w.accepted.Add(int64(n))
			if w.through && w.cwKickLocked() {
				w.cwTakeTasksIntoLocked(t, wake)
			}
			return n, true, w.err
		}
		if w.err != nil {
			// The direct write failed: no flush will run to wake the
			// other waiting tasks, so they learn of it now.
			w.cwTakeTasksIntoLocked(t, wake)
			return 0, false, w.err
		}
		// Full: try to make room now, once, before waiting.
		if attempt > 0 || w.busy || w.raw == nil {
			break
		}
		progress := w.cwDrainLocked()
		if progress || w.err != nil {
			w.cwTakeTasksIntoLocked(t, wake)
		}
		if w.err != nil {
			// No flush will start on a failed writer: answering NotReady
			// now would leave t waiting for a notification that never
			// comes.
			return 0, false, w.err
		}
		if !progress {
			break
		}
	}
	if !q.control {
		w.full = true
	}
	w.cwRegisterLocked(slot, t)
	w.cwStartLocked()
	w.notReady.Add(1)
	return 0, false, nil
}

// cwWritableLocked returns why nothing may be written, if anything.
func (w *ConnWriter) cwWritableLocked() error {
	if w.err != nil {
		return w.err
	}
	if w.state != cwOpen {
		return asyncio.ErrShutdown
	}
	return nil
}

// cwAcceptLocked takes what it can of q into the queue (or straight to the
// socket) and returns how many bytes it took; ok is false when it took
// none. A direct write that fails sets w.err and takes nothing.
func (w *ConnWriter) cwAcceptLocked(q *cwReq) (n int, ok bool) {
	pending := w.cwPendingLocked()
	if q.control {
		switch {
		case w.ctlN > 0:
			return 0, false // one control frame past the buffer at a time, in order
		case w.ring.Free() >= q.total:
			w.cwCopyLocked(q, 0, 0)
		default:
			w.ctlAt = w.ring.Len()
			w.cwCopyLocked(q, 0, -1)
		}
		return q.total, true
	}
	if len(w.big) > 0 || w.full {
		return 0, false
	}
	if pending == 0 && w.raw != nil && !w.busy && !q.masked && (w.through || q.total >= w.size) {
		return w.cwDirectLocked(q)
	}
	free := w.ring.Free()
	switch {
	case q.whole && q.total <= free:
		w.cwCopyLocked(q, 0, 0)
		return q.total, true
	case q.whole && pending == 0:
		w.cwCopyLocked(q, 0, q.total-w.size)
		return q.total, true
	case !q.whole && free > 0:
		n := min(q.total, free)
		w.cwCopySomeLocked(q, 0, n)
		return n, true
	}
	return 0, false
}

// cwDirectLocked writes q to the socket with one writev, without copying,
// and queues what the socket did not take: all of it for a whole write,
// what fits in the buffer otherwise. Nothing may be pending.
func (w *ConnWriter) cwDirectLocked(q *cwReq) (int, bool) {
	k := 0
	if q.hn > 0 {
		w.iov[k] = w.head[:q.hn]
		k++
	}
	for _, b := range q.body {
		if k == cwMaxVec {
			break
		}
		if len(b) > 0 {
			w.iov[k] = b
			k++
		}
	}
	w.niov = k
	w.cbWrote = 0
	if err := w.raw.Write(w.directFn); err != nil && w.err == nil {
		w.err = cwWrapErr(err)
	}
	clear(w.iov[:k])
	if w.err != nil {
		return 0, false
	}
	sent := w.cbWrote
	w.written.Add(int64(sent))
	rest := q.total - sent
	switch {
	case rest == 0:
	case !q.whole:
		rest = min(rest, w.ring.Free())
		w.cwCopySomeLocked(q, sent, rest)
	case rest <= w.ring.Free():
		w.cwCopyLocked(q, sent, 0)
	default:
		w.cwCopyLocked(q, sent, rest-w.size)
	}
	return sent + rest, true
}

// cwCopyLocked queues the bytes of q after skip: the first bigN of them
// into a new big (none when bigN is 0), the rest into the ring, or all
// into ctl when bigN is -1.
func (w *ConnWriter) cwCopyLocked(q *cwReq, skip, bigN int) {
	if skip == 0 && bigN == 0 && !q.masked {
		// The common case, a whole frame into the ring: nothing to skip,
		// split or mask, so no per-slice bookkeeping.
		n := w.ring.Write(w.head[:q.hn])
		for _, b := range q.body {
			n += w.ring.Write(b)
		}
		if n != q.total {
			panic("wsconn: ring overflow")
		}
		return
	}
	if bigN > 0 {
		w.big = make([]byte, 0, bigN)
	}
	w.cwCopyRangeLocked(q, skip, q.total-skip, bigN)
}

// cwCopySomeLocked queues n bytes of q after skip into the ring.
func (w *ConnWriter) cwCopySomeLocked(q *cwReq, skip, n int) {
	w.cwCopyRangeLocked(q, skip, n, 0)
}

func (w *ConnWriter) cwCopyRangeLocked(q *cwReq, skip, n, bigN int) {
	pos := 0 // position in q's stream: head, then body
	put := func(p []byte, body bool) {
		end := pos + len(p)
		if lo := skip - pos; lo > 0 {
			p = p[min(lo, len(p)):]
		}
		start := end - len(p)
		pos = end
		if len(p) > n {
			p = p[:n]
		}
		n -= len(p)
		for len(p) > 0 {
			c := len(p)
			var dst []byte
			switch {
			case bigN > 0 && len(w.big) < bigN:
				c = min(c, bigN-len(w.big))
				w.big = append(w.big, p[:c]...)
				dst = w.big[len(w.big)-c:]
			case bigN < 0:
				dst = w.ctl[w.ctlN : w.ctlN+c]
				copy(dst, p)
				w.ctlN += c
			default:
				if got := w.ring.Write(p[:c]); got != c {
					panic("wsconn: ring overflow")
				}
				if body && q.masked {
					w.cwMaskRingTail(c, q.mask, start-q.hn)
				}
			}
			if dst != nil && body && q.masked {
				ws.Cipher(dst, q.mask, start-q.hn)
			}
			p = p[c:]
			start += c
		}
	}
	put(w.head[:q.hn], false)
	for _, b := range q.body {
		if n == 0 {
			break
		}
		put(b, true)
	}
}

// cwMaskRingTail masks the last n bytes of the ring, which hold body bytes
// from offset off of a frame's payload.
func (w *ConnWriter) cwMaskRingTail(n int, mask [4]byte, off int) {
	a, b := w.ring.Peek()
	if len(b) >= n {
		ws.Cipher(b[len(b)-n:], mask, off)
		return
	}
	fromA := n - len(b)
	ws.Cipher(a[len(a)-fromA:], mask, off)
	ws.Cipher(b, mask, off+fromA)
}

// cwPendingLocked returns the number of bytes queued and not yet written.
func (w *ConnWriter) cwPendingLocked() int {
	return len(w.big) + w.ring.Len() + w.ctlN - w.ctlOff
}

// cwGatherLocked fills w.iov with the queue's segments in the order they
// go out and returns how many it filled.
func (w *ConnWriter) cwGatherLocked() int {
	k := 0
	add := func(p []byte) {
		if len(p) > 0 {
			w.iov[k] = p
			k++
		}
	}
	add(w.big)
	a, b := w.ring.Peek()
	switch x := w.ctlAt; {
	case w.ctlN == 0:
		add(a)
		add(b)
	case x <= len(a):
		add(a[:x])
		add(w.ctl[w.ctlOff:w.ctlN])
		add(a[x:])
		add(b)
	default:
		add(a)
		add(b[:x-len(a)])
		add(w.ctl[w.ctlOff:w.ctlN])
		add(b[x-len(a):])
	}
	return k
}

// cwConsumeLocked drops the first n queued bytes, which were written, in
// the order of cwGatherLocked.
func (w *ConnWriter) cwConsumeLocked(n int) {
	w.written.Add(int64(n))
	w.full = false
	if c := min(n, len(w.big)); c > 0 {
		w.big = w.big[c:]
		if len(w.big) == 0 {
			w.big = nil
		}
		n -= c
	}
	if w.ctlN > 0 {
		c := min(n, w.ctlAt)
		w.ring.Discard(c)
		w.ctlAt -= c
		n -= c
		if w.ctlAt == 0 {
			c = min(n, w.ctlN-w.ctlOff)
			w.ctlOff += c
			n -= c
			if w.ctlOff == w.ctlN {
				w.ctlOff, w.ctlN = 0, 0
			}
		}
	}
	if n > 0 {
		w.ring.Discard(n)
	}
}

// cwRegisterLocked makes t the task notified for slot. A nil t arranges
// nothing and leaves the slot's task in place.
func (w *ConnWriter) cwRegisterLocked(slot int, t *asyncio.Task) {
	if t != nil {
		w.tasks[slot] = t
	}
}

// cwTakeSlot removes and returns the task of slot, unless it is except.
func (w *ConnWriter) cwTakeSlot(slot int, except *asyncio.Task) *asyncio.Task {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cwTakeSlotLocked(slot, except)
}

func (w *ConnWriter) cwTakeSlotLocked(slot int, except *asyncio.Task) *asyncio.Task {
	t := w.tasks[slot]
	if t == except {
		return nil
	}
	w.tasks[slot] = nil
	return t
}

// cwTakeTasksLocked removes and returns the registered tasks but except,
// the task of the poll in progress, which must not notify itself.
func (w *ConnWriter) cwTakeTasksLocked(except *asyncio.Task) (wake [cwSlots]*asyncio.Task) {
	w.cwTakeTasksIntoLocked(except, &wake)
	return wake
}

// cwTakeTasksIntoLocked is cwTakeTasksLocked that adds the tasks to wake.
func (w *ConnWriter) cwTakeTasksIntoLocked(except *asyncio.Task, wake *[cwSlots]*asyncio.Task) {
	for i, t := range w.tasks {
		if t != nil && t != except {
			wake[i], w.tasks[i] = t, nil
		}
	}
}

func cwNotify(wake [cwSlots]*asyncio.Task) {
	for _, t := range wake {
		t.Notify()
	}
}

// Buffered returns the number of bytes accepted and not yet written to
// the connection.
func (w *ConnWriter) Buffered() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cwPendingLocked()
}

// Available returns how many bytes a write can take now without a flush.
func (w *ConnWriter) Available() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.big) > 0 || w.full || w.cwWritableLocked() != nil {
		return 0
	}
	return w.ring.Free()
}

// Undelivered returns the number of bytes accepted and never written to
// the connection; after [ConnWriter.Close] they never will be.
func (w *ConnWriter) Undelivered() int64 {
	return w.accepted.Load() - w.written.Load()
}

// Stats returns the writer's counters.
func (w *ConnWriter) Stats() ConnWriterStats {
	return ConnWriterStats{
		Accepted:      w.accepted.Load(),
		Written:       w.written.Load(),
		WriteSyscalls: w.syscalls.Load(),
		NotReady:      w.notReady.Load(),
	}
}
