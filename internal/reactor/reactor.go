// Package reactor tells tasks when sockets become readable or writable,
// from one goroutine for any number of sockets: the other half of the
// poll contract, which lets a server wait on ten thousand idle
// connections without a goroutine or a buffer for each.
//
// On Linux a [Reactor] is one edge-triggered epoll set. Its descriptor is
// itself waited on through the runtime's poller, so the goroutine that
// reads its events holds no thread while it waits, and exists only while
// sockets are registered. Each event notifies the tasks the socket was
// registered with; the tasks decide where the work runs (an
// asyncio.Executor, a parked goroutine). Elsewhere [New] fails with
// [errors.ErrUnsupported] and callers wait on a goroutine per connection.
package reactor

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/internal/socket"
)

// ErrClosed is returned by Register after the reactor was closed.
var ErrClosed = errors.New("reactor: closed")

// Registration is one socket in a [Reactor]. Its tasks (or its [Edges])
// are notified on every edge: the read task when bytes, the end of the
// stream or an error arrive, the write task when the socket can take more
// or failed. The
// notifications are edges, not levels: a consumer that found the socket
// would block must have been notified since, or be notified later. Count
// the notifications to tell (see the package asyncio's WaitSet for the
// waiters behind them).
//
// A registration may also have a deadline ([Registration.SetTimer]): the
// reactor keeps the deadlines of all its registrations on one runtime
// timer.
//
// Close deregisters the socket and stops its deadline; it must be called
// before the socket's connection is closed.
type Registration struct {
	r      *Reactor
	s      *socket.Socket
	edges  Edges
	id     uint64 // index in r.regs and generation, as stored with the event
	closed bool   // guarded by r.mu
	ended  atomic.Bool

	// The deadline, guarded by r.t.mu.
	idx         int32 // in r.t.heap; -1: none
	closedTimer bool  // closed: no deadline any more
	due         int64 // as since timerEpoch
}

// Ended reports whether an edge told that the peer closed its side or the
// socket failed. It is set before the read task is notified of that edge.
//
// A read that took less than it asked for drained the socket's bytes, and
// any byte that comes later is a new edge; the end of the stream or an
// error that came with those bytes is not: the reader that saw such an
// edge before its short read must read again to find it.
func (g *Registration) Ended() bool { return g.ended.Load() }

// Reactor waits for readiness events of registered sockets and notifies
// their tasks. A Reactor is safe for use by multiple goroutines.
type Reactor struct {
	p poller
	t timers

	mu      sync.Mutex
	regs    []*Registration // by index; nil when free
	gens    []uint32        // generation of each index, bumped when freed
	free    []uint32
	n       int  // registrations
	running bool // the event goroutine runs
	closed  bool
	done    chan struct{} // closed when the event goroutine exits
}

// New returns a reactor with no sockets. It holds no goroutine until the
// first Register.
func New() (*Reactor, error) {
	r := &Reactor{}
	if err := r.p.open(); err != nil {
		return nil, err
	}
	return r, nil
}

// Edges is told of a registered socket's readiness edges, from the
// reactor's goroutine with no lock of the reactor's held; its methods
// must not block.
type Edges interface {
	ReadEdge()  // bytes, the end of the stream or an error arrived
	WriteEdge() // the socket can take more, or failed
}

// taskEdges notifies a read task and a write task, either of them nil.
type taskEdges struct{ read, write *asyncio.Task }

func (e taskEdges) ReadEdge()  { e.read.Notify() }
func (e taskEdges) WriteEdge() { e.write.Notify() }

// Register adds s, whose readiness edges notify read and write from then
// on. Either task may be nil. The first edge of each kind may come at
// once if the socket is ready.
func (r *Reactor) Register(s *socket.Socket, read, write *asyncio.Task) (*Registration, error) {
	return r.RegisterEdges(s, taskEdges{read, write})
}

// RegisterEdges adds s, whose readiness edges are told to e from then on,
// as Register's notify its tasks. A connection that is its own Edges
// needs no task for the reactor.
func (r *Reactor) RegisterEdges(s *socket.Socket, e Edges) (*Registration, error) {
	g := &Registration{r: r, s: s, edges: e, idx: -1}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, ErrClosed
	}
	var idx uint32
	if k := len(r.free); k > 0 {
		idx = r.free[k-1]
		r.free = r.free[:k-1]
	} else {
		idx = uint32(len(r.regs))
		r.regs = append(r.regs, nil)
		r.gens = append(r.gens, 0)
	}
	g.id = uint64(r.gens[idx])<<32 | uint64(idx)
	r.regs[idx] = g
	r.n++
	start := !r.running
	if start {
		r.running = true
		r.done = make(chan struct{})
	}
	r.mu.Unlock()

	var err error
	if cerr := s.Control(func(fd uintptr) { err = r.p.add(fd, g.id) }); cerr != nil {
		err = cerr
	}
	if err != nil {
		r.mu.Lock()
		r.release(g)
		r.mu.Unlock()
		return nil, err
	}
	if start {
		go r.loop(r.done)
	}
	return g, nil
}

// release frees g's place; r.mu is held. The event goroutine exits by
// itself once it finds no registration left.
func (r *Reactor) release(g *Registration) {
	if g.closed {
		return
	}
	g.closed = true
	idx := uint32(g.id)
	r.regs[idx] = nil
	r.gens[idx]++
	r.free = append(r.free, idx)
	r.n--
	if r.n == 0 {
		r.p.wake()
	}
}

// Hand gives the registration to e: the socket's edges, and the deadline
// once one is set again, are told to e from then on. The deadline is
// stopped. An edge already under way may still reach the Edges before,
// so e should look at the socket once Hand returned. A connection that
// changes hands (an opening handshake, then the connection it opens)
// stays in the reactor's set, and is neither removed nor added again.
func (g *Registration) Hand(e Edges) {
	g.StopTimer()
	r := g.r
	r.mu.Lock()
	r.t.mu.Lock()
	g.edges = e
	r.t.mu.Unlock()
	r.mu.Unlock()
}

// Close takes the socket out of the reactor; no notification follows
// once it returns, but one may be under way. Call it before closing the
// socket's connection. Closing again does nothing.
func (g *Registration) Close() error {
	r := g.r
	r.mu.Lock()
	if g.closed {
		r.mu.Unlock()
		return nil
	}
	var err error
	if cerr := g.s.Control(func(fd uintptr) { err = r.p.del(fd) }); cerr != nil {
		err = nil // the connection is closed already: the kernel dropped it from the set
	}
	r.release(g)
	r.mu.Unlock()
	g.closeTimer()
	return err
}

// lookup returns the registration an event's id names, or nil when it
// was closed since.
func (r *Reactor) lookup(id uint64) *Registration {
	idx := uint32(id)
	if int(idx) >= len(r.regs) || r.gens[idx] != uint32(id>>32) {
		return nil
	}
	return r.regs[idx]
}

// Len returns the number of sockets registered.
func (r *Reactor) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

// Close deregisters every socket, notifying both of its tasks so that
// waiters find out, and waits for the event goroutine to exit. Register
// fails afterwards. Closing again does nothing.
func (r *Reactor) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	var told []Edges
	for _, g := range r.regs {
		if g == nil {
			continue
		}
		_ = g.s.Control(func(fd uintptr) { _ = r.p.del(fd) })
		told = append(told, g.edges)
		r.release(g)
		g.closeTimer()
	}
	done := r.done
	running := r.running
	r.mu.Unlock()
	for _, e := range told {
		e.ReadEdge()
		e.WriteEdge()
	}
	r.t.mu.Lock()
	if r.t.timer != nil {
		r.t.timer.Stop()
	}
	r.t.mu.Unlock()
	if running {
		<-done
	}
	return r.p.close()
}
