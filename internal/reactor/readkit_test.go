package reactor

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/asyncio/asynciotest"
	"github.com/pollws/pollws/internal/socket"
)

// sockReader is the smallest reader of a socket a reactor wakes: it reads
// without parking, and when the socket has nothing it waits for the next
// readable edge, counted so that an edge between its read and its wait
// is not lost.
type sockReader struct {
	s     *socket.Socket
	ticks atomic.Uint32
	mu    sync.Mutex
	wait  asyncio.WaitSet
	err   error // sticky, guarded by mu
}

func (r *sockReader) edge() {
	r.ticks.Add(1)
	r.mu.Lock()
	w := r.wait.Take()
	r.mu.Unlock()
	w.Notify()
}

func (r *sockReader) PollRead(t *asyncio.Task, p []byte) (asyncio.Async[int], error) {
	if len(p) == 0 {
		return asyncio.Ready(0), nil
	}
	for {
		r.mu.Lock()
		err := r.err
		r.mu.Unlock()
		if err != nil {
			return asyncio.NotReady[int](), err
		}
		ticks := r.ticks.Load()
		n, err := r.s.Read(p)
		switch {
		case err == nil:
			return asyncio.Ready(n), nil
		case !errors.Is(err, socket.ErrWouldBlock):
			r.mu.Lock()
			r.err = err
			r.mu.Unlock()
			return asyncio.NotReady[int](), err
		}
		r.mu.Lock()
		if r.ticks.Load() == ticks {
			r.wait.Add(t)
			r.mu.Unlock()
			return asyncio.NotReady[int](), nil
		}
		r.mu.Unlock()
	}
}

type tcpSource struct{ c *net.TCPConn }

func (s tcpSource) Deliver(p []byte) error { _, err := s.c.Write(p); return err }
func (s tcpSource) End() error             { return s.c.CloseWrite() }
func (s tcpSource) HangUp() error {
	s.c.SetLinger(0)
	return s.c.Close()
}

// TestSocketReaderConformance runs the readers' kit on a socket whose
// readable edges come from a reactor.
func TestSocketReaderConformance(t *testing.T) {
	asynciotest.TestReader(t, func() (asyncio.AsyncReader, asynciotest.Source, func(), error) {
		r, err := New()
		if err != nil {
			return nil, nil, nil, err
		}
		srv, cli := pair(t)
		s, ok := socket.Of(srv)
		if !ok {
			r.Close()
			return nil, nil, nil, errors.ErrUnsupported
		}
		rd := &sockReader{s: s}
		g, err := r.Register(s, asyncio.NewTask(rd.edge), nil)
		if err != nil {
			r.Close()
			return nil, nil, nil, err
		}
		return rd, tcpSource{cli}, func() { g.Close(); s.Close(); cli.Close(); r.Close() }, nil
	})
}
