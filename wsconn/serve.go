package wsconn

import (
	"errors"
	"net"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/internal/reactor"
	"github.com/pollws/pollws/internal/socket"
)

// Handler serves one connection on a [Reactor]. Poll is called when the
// connection may make progress: at first, and then each time the task it
// passes to the connection's polls is notified (a message came, the
// socket took the bytes written, a timer, anything else the handler
// waits on). It answers NotReady to wait, and Ready or an error when it
// is done with the connection.
//
// A handler keeps its own state between polls, as a state machine: an
// echo holds the message it has yet to write. It should read only when
// it can write what the read calls for: a connection whose writes answer
// NotReady then stops being read, and TCP slows the peer instead of
// memory growing.
type Handler interface {
	Poll(t *asyncio.Task) (asyncio.Async[struct{}], error)
}

// HandlerFunc adapts a poll function to a [Handler].
type HandlerFunc func(t *asyncio.Task) (asyncio.Async[struct{}], error)

// Poll returns f(t).
func (f HandlerFunc) Poll(t *asyncio.Task) (asyncio.Async[struct{}], error) { return f(t) }

// ReactorOptions configures a [Reactor]. A nil *ReactorOptions means the
// defaults.
type ReactorOptions struct {
	// Workers is the most goroutines that run handlers at once. Zero or
	// less means runtime.GOMAXPROCS(0).
	Workers int
}

// Reactor serves many connections on a few goroutines. On Linux one
// edge-triggered epoll set watches every connection's socket and wakes
// its handler when bytes come or the socket takes more; handlers run on
// at most [ReactorOptions].Workers goroutines that exist only while some
// handler has work. A connection waiting for its peer costs its socket,
// its small structs and nothing else: no goroutine, no buffer.
// Connections without a socket of their own (TLS over a connection the
// reactor did not accept, HTTP/2 streams), and every connection on
// systems without epoll, wait on a goroutine while they wait for bytes,
// behind the same API.
//
// A Reactor is safe for use by multiple goroutines. Close it when the
// server is done: after its connections ended (a shutdown.Group's drain).
type Reactor struct {
	r    *reactor.Reactor // nil where there is no epoll
	exec *asyncio.Executor
}

// NewReactor returns a reactor configured by o (nil: the defaults). It
// starts no goroutine until a connection is served.
func NewReactor(o *ReactorOptions) (*Reactor, error) {
	var eo asyncio.ExecutorOptions
	if o != nil {
		eo.Workers = o.Workers
	}
	r := &Reactor{exec: asyncio.NewExecutor(&eo)}
	rr, err := reactor.New()
	switch {
	case err == nil:
		r.r = rr
	case !errors.Is(err, errors.ErrUnsupported):
		return nil, err
	}
	return r, nil
}

// ErrReactorClosed is returned by [Reactor.Serve] after Close.
var ErrReactorClosed = errors.New("wsconn: reactor closed")

// Serve serves c with h and returns at once: a [net/http] handler that
// upgraded c hands it over and returns, so that net/http frees what it
// held for the request. When h is done, Serve ends the connection: with
// a closing handshake of status 1000 when h answered Ready, by finishing
// the handshake under way when the connection ended it (the peer's
// close, bad input), with status 1011 (internal error) when h failed
// otherwise; then it calls done, if not nil, with h's error (nil when it
// was Ready). done runs on one of the reactor's goroutines and must not
// block.
//
// Serve takes over c's reads: nothing else may read it while h serves it.
//
// On Linux, a plain TCP connection with nothing under way (no bytes
// pending, no goroutine waiting on it) leaves the runtime's poller when
// Serve takes it: the reactor alone watches it, and it keeps its
// descriptor and peer's address instead of a *net.TCPConn's netFD,
// addresses and poller descriptor (about 900 bytes). Its timer (pings,
// idle timeout, closing deadline) becomes a deadline of the reactor's
// rather than a runtime timer. The Conn behaves the same; a call that
// waits for it outside the reactor (a blocking write, a deadline) brings
// a second descriptor of the connection into the runtime's poller.
func (r *Reactor) Serve(c *Conn, h Handler, done func(error)) error {
	return r.serve(c, h, done, nil)
}

// serve is Serve, with the registration of c's transport when it has one
// already (reg, a handshake's; else nil).
func (r *Reactor) serve(c *Conn, h Handler, done func(error), reg *reactor.Registration) error {
	if err := c.serveOn(r.r, reg); err != nil {
		return err
	}
	s := &served{c: c, h: h, done: done}
	if _, err := r.exec.SpawnJob(&s.job, s); err != nil {
		c.Close()
		return ErrReactorClosed
	}
	return nil
}

// Close closes every connection still served, at once, and waits until no
// handler runs; their done functions see [ErrReactorClosed]. Serve fails
// afterwards. Drain the connections gracefully before (a
// shutdown.Group's Drain) to close them with a handshake.
func (r *Reactor) Close() error {
	err := r.exec.Close()
	if r.r != nil {
		if cerr := r.r.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// pollBudget is how many bytes a handler reads in one poll before its
// reads yield to the other connections' handlers.
const pollBudget = 256 << 10

// served is one connection served by a Reactor: the handler's polls,
// then the connection's end.
type served struct {
	job    asyncio.Job // the executor's record of the task, kept here to spare an allocation
	c      *Conn
	h      Handler
	done   func(error)
	ending bool  // the handler is done; the connection is ending
	err    error // the handler's result
}

func (s *served) Poll(t *asyncio.Task) (asyncio.Async[struct{}], error) {
	c := s.c
	if !s.ending {
		c.budget.Store(pollBudget)
		r, err := s.h.Poll(t)
		if err == nil && !r.Ready {
			return r, nil
		}
		s.ending, s.err = true, err
		var wake asyncio.Wakeups
		c.mu.Lock()
		switch {
		case err == nil:
			c.beginCloseLocked(StatusNormalClosure, "", &wake)
		case c.state == stateOpen:
			c.beginCloseLocked(StatusInternalError, "", &wake)
		}
		c.mu.Unlock()
		wake.Notify()
	}
	ready, err := c.drive(t)
	if err == nil && !ready {
		return asyncio.NotReady[struct{}](), nil
	}
	return asyncio.Ready(struct{}{}), nil
}

func (s *served) Done(err error) {
	if err == nil {
		err = s.err
	}
	if errors.Is(err, asyncio.ErrExecutorClosed) {
		err = ErrReactorClosed
	}
	s.c.abort(err)       // a no-op after a closing handshake
	s.c.waitGoroutines() // they exit once it is closed
	if s.done != nil {
		s.done(err)
	}
}

// detach moves a plain TCP connection out of the runtime's poller, onto a
// socket.Stream, once the reactor is to watch it alone: the
// *net.TCPConn's netFD, addresses and poller descriptor (about 900
// bytes, 580 of them outside the heap) become a Stream (96 bytes). It
// does so only while nothing of the connection's is under way: no
// bytes pending, no goroutine waiting to read or write; else the
// connection stays as it is.
func (c *Conn) detach() {
	if c.tls != nil {
		return
	}
	switch c.out.Conn().(type) {
	case *net.TCPConn, *socket.Conn: // NewListener's, plain
	default:
		return
	}
	c.rmu.Lock()
	reading := c.rgoing
	c.rmu.Unlock()
	if reading {
		return
	}
	if c.out.Swap(func(old net.Conn) net.Conn {
		st, err := socket.Detach(old)
		if err != nil {
			return nil // out of descriptors: the connection stays in the poller
		}
		return st
	}) {
		c.sock = c.out.Socket()
	}
}

// serveOn makes r, if not nil, watch c's socket: its readable edges wake
// the readers, its writable edges the writer. Ending is then Serve's.
// reg, if not nil, is a registration with r of c's transport: c takes it
// over when that is a Stream already, which keeps the socket in the
// reactor's set; else it is closed, before the connection is detached
// (a descriptor closed while its duplicate lives would stay in the set).
func (c *Conn) serveOn(r *reactor.Reactor, reg *reactor.Registration) error {
	c.mu.Lock()
	c.served = true
	c.mu.Unlock()
	if reg != nil {
		if _, ok := c.out.Conn().(*socket.Stream); ok && r != nil && c.sock != nil {
			reg.Hand((*connEdges)(c))
		} else {
			reg.Close()
			reg = nil
		}
	}
	if r == nil || c.sock == nil {
		return nil
	}
	if reg == nil {
		c.detach()
		var err error
		reg, err = r.RegisterEdges(c.sock, (*connEdges)(c))
		if errors.Is(err, reactor.ErrClosed) {
			return ErrReactorClosed
		}
		if err != nil {
			return err
		}
	}
	c.rmu.Lock()
	c.reg = reg
	c.rmu.Unlock()
	c.moveTimer(reg)
	c.out.SetEdged()
	c.wakeReaders() // bytes may have come before the registration
	return nil
}
