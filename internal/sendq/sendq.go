// Package sendq is the bounded send queue under pollws's writers: the
// bytes a writer accepted and has not yet written, and the machinery that
// writes them to a connection without parking the caller.
//
// A [Writer] holds at most its buffer (or one whole write larger than it
// when nothing else is queued) plus one small priority write that may pass
// a full buffer. Over a socket it writes with a non-blocking writev from
// the caller's goroutine; when the socket is full, either a reactor tells
// it when to go on or one goroutine waits for the socket and exits when
// the bytes are out. Over any other connection a goroutine does the
// blocking Write for as long as bytes are pending. An idle Writer holds no
// goroutine and no buffer.
//
// It knows bytes, not WebSocket: what a framing protocol needs (a frame
// header written with the body, a small priority lane, a key the queued
// copy is XORed with, as a client's frames are masked) are generic fields
// of a [Req].
package sendq

import (
	"net"
	"sync"
	"time"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/internal/mask"
	"github.com/pollws/pollws/internal/ring"
	"github.com/pollws/pollws/internal/socket"
)

// HeadMax is the largest Req.Head.
const HeadMax = 16

// DefaultBufferSize is the buffer of a Writer whose Options give none.
const DefaultBufferSize = 64 << 10

// Req is one write.
type Req struct {
	// Head is written before Body, all or nothing with it; at most
	// HeadMax bytes, copied at once.
	Head []byte
	// Body is written after Head, in order.
	Body [][]byte
	// Whole makes the write all or nothing.
	Whole bool
	// Priority lets a write of at most Options.PriorityMax bytes pass a
	// full buffer, one at a time, in order with the other writes. It
	// implies Whole.
	Priority bool
	// Key, if set, is XORed, repeating, over the queued copy of Body's
	// bytes (never over the caller's), from Body's first byte on: the
	// masking of a WebSocket client's frames.
	Key *[4]byte
}

func (q *Req) total() int {
	n := len(q.Head)
	for _, b := range q.Body {
		n += len(b)
	}
	return n
}

// Options configures a Writer.
type Options struct {
	BufferSize   int           // bytes held before writes answer NotReady; <= 0: DefaultBufferSize
	WriteThrough bool          // write accepted bytes at once instead of when full or flushed
	WriteTimeout time.Duration // how long the connection may take none of the pending bytes; 0: no limit
	PriorityMax  int           // the largest priority write; 0: none may pass a full buffer
}

type state uint8

const (
	stateOpen     state = iota
	stateShutting       // Shutdown began: writes fail, pending bytes go out, then the end
	stateShut           // the end (FIN, close_notify) was sent
)

// Writer is the send queue of one connection. See the package
// documentation. A Writer is safe for use by multiple goroutines; any
// number of them may wait on it. Its lock is taken after the locks of
// its users (a Conn's), never before.
type Writer struct {
	conn    net.Conn
	sock    *socket.Socket // nil: the flusher goroutine writes with conn.Write
	timeout time.Duration
	prioMax int32
	through bool

	mu sync.Mutex
	// The queue, in the order it goes out: big, the first prio.at bytes
	// of ring, the priority write, the rest of ring. A priority write
	// goes to prio only when ring is full, and keeps its place.
	ring     ring.Pooled
	sp       *spill    // while bytes are held outside the ring
	prio     *prioLane // while a priority write is held past a full ring
	waiters  asyncio.WaitSet
	err      error // sticky
	state    state
	busy     bool // the flush goroutine runs; only it writes to the connection
	full     bool // a write answered NotReady: later writes wait too, until bytes go out
	closed   bool
	edged    bool // a reactor reports writability: no goroutine waits for it
	awaiting bool // a writable edge is awaited to go on writing
	headN    uint8
	head     [HeadMax]byte
	wg       sync.WaitGroup // the flush goroutine
	accepted int64
	written  int64
	reset    int64 // written, and still in the kernel's send queue when a hard close reset the connection
	syscalls int64
	notReady int64
}

// spill is what a writer holds outside its ring, only while it does:
// a connection that idles holds neither.
type spill struct {
	big  []byte // a whole write larger than the free ring, before it
	over []byte // bytes appended past a full ring (Append), after it
}

// big returns the queue's big write, or nil.
func (w *Writer) big() []byte {
	if w.sp == nil {
		return nil
	}
	return w.sp.big
}

// over returns the bytes appended past the ring, or nil.
func (w *Writer) over() []byte {
	if w.sp == nil {
		return nil
	}
	return w.sp.over
}

// setSpill sets the big write and the bytes past the ring, and drops the
// spill when both are nil.
func (w *Writer) setSpill(big, over []byte) {
	switch {
	case big == nil && over == nil:
		w.sp = nil
	case w.sp == nil:
		w.sp = &spill{big: big, over: over}
	default:
		w.sp.big, w.sp.over = big, over
	}
}

// prioLane holds a priority write that passed a full ring: b[off:n], to
// go out after the first at bytes of the ring.
type prioLane struct {
	b          []byte
	off, n, at int
}

// Init makes w a writer over c configured by o. It takes no buffer until
// the first write. w must not be in use.
func (w *Writer) Init(c net.Conn, o Options) {
	w.conn, w.through, w.timeout, w.prioMax = c, o.WriteThrough, o.WriteTimeout, int32(o.PriorityMax)
	size := o.BufferSize
	if size <= 0 {
		size = DefaultBufferSize
	}
	w.ring.SetCap(min(size, 1<<30))
	if s, ok := socket.Of(c); ok {
		// A socket.Conn's or Stream's own, which reads use too; else one
		// of its own, which a Stream or socket.Conn does not pay for.
		w.sock = s
	}
}

// Swap moves the writer onto the connection that swap makes of its own,
// when the writer is idle: open, nothing pending, no goroutine writing and
// no reactor's edges relied on yet. swap runs under the writer's lock and
// returns nil to keep the connection; the new one must have a socket. It
// reports whether the writer moved.
func (w *Writer) Swap(swap func(old net.Conn) net.Conn) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.busy || w.closed || w.err != nil || w.state != stateOpen || w.edged || w.pendingLocked() > 0 {
		return false
	}
	c := swap(w.conn)
	if c == nil {
		return false
	}
	s, ok := socket.Of(c)
	if !ok {
		panic("sendq: Swap onto a connection without a socket")
	}
	w.conn, w.sock = c, s
	return true
}

// Conn returns the connection written to.
func (w *Writer) Conn() net.Conn {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.conn
}

// Socket returns the connection's socket, or nil when writes go through
// a goroutine.
func (w *Writer) Socket() *socket.Socket { return w.sock }

// Poll runs one write: it accepts what it can of q and answers Ready(n),
// or registers t and answers NotReady having taken nothing. It adds to
// wake the tasks to notify once the caller holds no lock.
func (w *Writer) Poll(t *asyncio.Task, q *Req, wake *asyncio.Wakeups) (n int, ready bool, err error) {
	w.mu.Lock()
	n, ready, err = w.pollLocked(t, q, wake)
	w.mu.Unlock()
	return n, ready, err
}

func (w *Writer) pollLocked(t *asyncio.Task, q *Req, wake *asyncio.Wakeups) (int, bool, error) {
	if err := w.writableLocked(); err != nil {
		return 0, false, err
	}
	total := q.total()
	if total == 0 {
		return 0, true, nil
	}
	w.headN = uint8(copy(w.head[:], q.Head))
	for attempt := 0; ; attempt++ {
		if n, ok := w.acceptLocked(q, total); ok {
			w.accepted += int64(n)
			if w.through && w.kickLocked() {
				w.waiters.TakeInto(wake)
			}
			return n, true, w.err
		}
		if w.err != nil {
			// The direct write failed: no flush will run to wake the
			// other waiting tasks, so they learn of it now.
			w.waiters.TakeInto(wake)
			return 0, false, w.err
		}
		// Full: try to make room now, once, before waiting.
		if attempt > 0 || w.busy || w.sock == nil {
			break
		}
		progress := w.drainLocked()
		if progress || w.err != nil {
			w.waiters.TakeInto(wake)
		}
		if w.err != nil {
			return 0, false, w.err
		}
		if !progress {
			break
		}
	}
	if !q.Priority {
		w.full = true
	}
	w.waiters.Add(t)
	w.startLocked()
	w.notReady++
	return 0, false, nil
}

// writableLocked returns why nothing may be written, if anything.
func (w *Writer) writableLocked() error {
	if w.err != nil {
		return w.err
	}
	if w.state != stateOpen {
		return asyncio.ErrShutdown
	}
	return nil
}

// pending returns the number of bytes queued and not yet written.
func (w *Writer) pendingLocked() int {
	n := len(w.big()) + w.ring.Len() + len(w.over())
	if w.prio != nil {
		n += w.prio.n - w.prio.off
	}
	return n
}

// acceptLocked takes what it can of q into the queue (or straight to the
// socket) and returns how many bytes it took; ok is false when it took
// none. A direct write that fails sets w.err and takes nothing.
func (w *Writer) acceptLocked(q *Req, total int) (n int, ok bool) {
	pending := w.pendingLocked()
	if q.Priority {
		switch {
		case w.prio != nil:
			return 0, false // one priority write past the buffer at a time, in order
		case w.ring.Free() >= total:
			w.copyLocked(q, total, 0, 0)
		case total > int(w.prioMax):
			return 0, false
		default:
			w.prio = &prioLane{b: make([]byte, total), at: w.ring.Len()}
			w.copyLocked(q, total, 0, -1)
		}
		return total, true
	}
	if len(w.big()) > 0 || w.full {
		return 0, false
	}
	if pending == 0 && w.sock != nil && !w.busy && q.Key == nil && (w.through || total >= w.ring.Cap()) {
		return w.directLocked(q, total)
	}
	free := w.ring.Free()
	switch {
	case q.Whole && total <= free:
		w.copyLocked(q, total, 0, 0)
		return total, true
	case q.Whole && pending == 0:
		w.copyLocked(q, total, 0, total-w.ring.Cap())
		return total, true
	case !q.Whole && free > 0:
		n := min(total, free)
		w.copyRangeLocked(q, 0, n, 0)
		return n, true
	}
	return 0, false
}

// directLocked writes q to the socket with one writev, without copying,
// and queues what the socket did not take: all of it for a whole write,
// what fits in the buffer otherwise. Nothing may be pending.
func (w *Writer) directLocked(q *Req, total int) (int, bool) {
	var v [socket.MaxVec][]byte // on the stack: the caller's slices do not escape
	k := 0
	if w.headN > 0 {
		v[k] = w.head[:w.headN]
		k++
	}
	for _, b := range q.Body {
		if k == socket.MaxVec {
			break
		}
		if len(b) > 0 {
			v[k] = b
			k++
		}
	}
	sent, err := w.sock.Writev(v[:k])
	w.syscalls++
	switch {
	case err == socket.ErrWouldBlock:
		sent = 0
	case err != nil:
		w.failLocked(err)
		return 0, false
	}
	w.written += int64(sent)
	rest := total - sent
	switch {
	case rest == 0:
	case !q.Whole:
		rest = min(rest, w.ring.Free())
		w.copyRangeLocked(q, sent, rest, 0)
	case rest <= w.ring.Free():
		w.copyLocked(q, total, sent, 0)
	default:
		w.copyLocked(q, total, sent, rest-w.ring.Cap())
	}
	return sent + rest, true
}

// copyLocked queues the bytes of q after skip: the first bigN of them
// into a new big (none when bigN is 0), the rest into the ring, or all
// into prio when bigN is -1.
func (w *Writer) copyLocked(q *Req, total, skip, bigN int) {
	if skip == 0 && bigN == 0 && q.Key == nil {
		// The common case, a whole write into the ring: nothing to skip,
		// split or transform, so no per-slice bookkeeping.
		if n := w.ring.WriteAll(w.head[:w.headN], q.Body); n != total {
			panic("sendq: ring overflow")
		}
		return
	}
	if bigN > 0 {
		w.setSpill(make([]byte, 0, bigN), w.over())
	}
	w.copyRangeLocked(q, skip, total-skip, bigN)
}

// copyRangeLocked queues n bytes of q after skip: into big until it holds
// bigN (bigN > 0), into prio (bigN < 0), else into the ring.
func (w *Writer) copyRangeLocked(q *Req, skip, n, bigN int) {
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
			case bigN > 0 && len(w.sp.big) < bigN:
				c = min(c, bigN-len(w.sp.big))
				w.sp.big = append(w.sp.big, p[:c]...)
				dst = w.sp.big[len(w.sp.big)-c:]
			case bigN < 0:
				dst = w.prio.b[w.prio.n : w.prio.n+c]
				copy(dst, p)
				w.prio.n += c
			default:
				if got := w.ring.Write(p[:c]); got != c {
					panic("sendq: ring overflow")
				}
				if body && q.Key != nil {
					w.xorRingTail(c, q.Key, start-int(w.headN))
				}
			}
			if dst != nil && body && q.Key != nil {
				mask.XOR(dst, *q.Key, start-int(w.headN))
			}
			p = p[c:]
			start += c
		}
	}
	put(w.head[:w.headN], false)
	for _, b := range q.Body {
		if n == 0 {
			break
		}
		put(b, true)
	}
}

// xorRingTail XORs key over the last n bytes of the ring, which hold
// body bytes from offset off.
func (w *Writer) xorRingTail(n int, key *[4]byte, off int) {
	a, b := w.ring.Peek()
	if len(b) >= n {
		mask.XOR(b[len(b)-n:], *key, off)
		return
	}
	fromA := n - len(b)
	mask.XOR(a[len(a)-fromA:], *key, off)
	mask.XOR(b, *key, off+fromA)
}

// gatherLocked fills v with the queue's segments in the order they go out
// and returns how many it filled.
func (w *Writer) gatherLocked(v *[socket.MaxVec][]byte) int {
	k := 0
	add := func(p []byte) {
		if len(p) > 0 {
			v[k] = p
			k++
		}
	}
	add(w.big())
	a, b := w.ring.Peek()
	switch p := w.prio; {
	case p == nil:
		add(a)
		add(b)
	case p.at <= len(a):
		add(a[:p.at])
		add(p.b[p.off:p.n])
		add(a[p.at:])
		add(b)
	default:
		add(a)
		add(b[:p.at-len(a)])
		add(p.b[p.off:p.n])
		add(b[p.at-len(a):])
	}
	add(w.over())
	return k
}

// consumeLocked drops the first n queued bytes, which were written, in
// the order of gatherLocked.
func (w *Writer) consumeLocked(n int) {
	w.written += int64(n)
	w.full = false
	if big := w.big(); len(big) > 0 {
		c := min(n, len(big))
		if big = big[c:]; len(big) == 0 {
			big = nil
		}
		w.setSpill(big, w.over())
		n -= c
	}
	if p := w.prio; p != nil {
		c := min(n, p.at)
		w.ring.Discard(c)
		p.at -= c
		n -= c
		if p.at == 0 {
			c = min(n, p.n-p.off)
			p.off += c
			n -= c
			if p.off == p.n {
				w.prio = nil
			}
		}
	}
	if c := min(n, w.ring.Len()); c > 0 {
		w.ring.Discard(c)
		n -= c
	}
	if n > 0 {
		over := w.over()[n:]
		if len(over) == 0 {
			over = nil
		}
		w.setSpill(w.big(), over)
	}
}

// Buffered returns the number of bytes accepted and not yet written.
func (w *Writer) Buffered() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pendingLocked()
}

// Available returns how many bytes a write can take now without a flush.
func (w *Writer) Available() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.big()) > 0 || w.full || w.writableLocked() != nil {
		return 0
	}
	return w.ring.Free()
}

// Undelivered returns the bytes accepted that the peer will not get, as
// far as the writer knows: those never written to the connection, and,
// after a hard Close over a socket, those the kernel still held in its
// send queue.
func (w *Writer) Undelivered() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.accepted - w.written + w.reset
}

// Stats are a Writer's counters.
type Stats struct {
	Accepted      int64 // bytes taken by writes
	Written       int64 // bytes written to the connection
	Reset         int64 // of those, what the kernel still held when a hard close reset the connection
	WriteSyscalls int64 // writes to the connection: writev system calls, or calls of its Write
	NotReady      int64 // polls that answered NotReady
}

// Stats returns the writer's counters.
func (w *Writer) Stats() Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return Stats{Accepted: w.accepted, Written: w.written, Reset: w.reset, WriteSyscalls: w.syscalls, NotReady: w.notReady}
}

// Reserve reports whether n bytes may be appended now (see Append)
// within the writer's bound: there is room for them, or nothing is
// pending, or, for a priority write, no other priority write went past
// the bound. Otherwise it writes what the socket takes and, if that made
// no room, registers t and reports false. A layer that encodes writes
// (TLS records) reserves the encoded size, then appends it.
func (w *Writer) Reserve(t *asyncio.Task, n int, priority bool, wake *asyncio.Wakeups) (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.writableLocked(); err != nil {
		return false, err
	}
	for attempt := 0; ; attempt++ {
		switch pending := w.pendingLocked(); {
		case priority && (w.over() == nil || w.ring.Free() >= n),
			!priority && !w.full && len(w.big()) == 0 && (w.ring.Free() >= n || pending == 0):
			return true, nil
		}
		if attempt > 0 || w.busy || w.sock == nil || !w.drainLocked() {
			break
		}
		w.waiters.TakeInto(wake)
	}
	if w.err != nil {
		w.waiters.TakeInto(wake)
		return false, w.err
	}
	if !priority {
		w.full = true
	}
	w.waiters.Add(t)
	w.startLocked()
	w.notReady++
	return false, nil
}

// Append queues all of p, whatever the bound: into the ring while it
// fits and nothing was appended past it, after the ring otherwise. Its
// caller reserved the room first ([Writer.Reserve]); a write of a layer
// under the caller's control (a TLS record, a TLS alert) may come
// unreserved and is bounded by that layer. Append never writes to the
// connection and never fails: an error shows at the next poll.
func (w *Writer) Append(p []byte) {
	if len(p) == 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || w.err != nil {
		return
	}
	w.accepted += int64(len(p))
	if w.over() == nil && w.prio == nil {
		p = p[w.ring.Write(p):]
	}
	if len(p) > 0 {
		w.setSpill(w.big(), append(w.over(), p...))
	}
}

// WakeAll adds every waiting task to wake: something they wait for
// changed outside the writer (its user began a shutdown).
func (w *Writer) WakeAll(wake *asyncio.Wakeups) {
	w.mu.Lock()
	w.waiters.TakeInto(wake)
	w.mu.Unlock()
}

// Held reports whether the writer holds buffer storage, which it does
// only while bytes are pending.
func (w *Writer) Held() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ring.Held() || w.sp != nil || w.prio != nil
}
