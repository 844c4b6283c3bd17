package shutdown_test

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/shutdown"
)

// conn is a connection over an asyncio.Pipe whose reader is the peer. Its
// end is a marker "<close CODE>" written after every accepted byte, then
// the pipe's EOF, like a close frame and then FIN. Close is the socket's
// close: after a clean shutdown the peer keeps what it got; otherwise the
// peer's reads fail (a hard close drops what was queued).
type conn struct {
	w         *asyncio.PipeWriter
	r         io.ReadCloser
	delivered atomic.Int64 // bytes the peer read
	closed    chan struct{}

	mu       sync.Mutex
	accepted int64
	began    bool
	code     int
	end      []byte // what is left of the marker
	shut     bool   // the shutdown completed
	closes   int
	atClose  string // the state of the pipe when Close was first called
	closeErr error  // what Close returns
	fail     error  // what the shutdown fails with, once the peer left
}

// codedConn is a conn whose end carries the code it is given: a
// shutdown.CodeShutdowner.
type codedConn struct{ *conn }

// bufferedConn is a conn that counts only its buffer: a
// shutdown.BufferedReporter and not an UndeliveredReporter.
type bufferedConn struct{ c *conn }

var (
	_ asyncio.AsyncWriter          = (*conn)(nil)
	_ shutdown.UndeliveredReporter = (*conn)(nil)
	_ shutdown.CodeShutdowner      = codedConn{}
	_ asyncio.AsyncWriter          = bufferedConn{}
	_ shutdown.BufferedReporter    = bufferedConn{}
	_ io.Closer                    = bufferedConn{}
)

func newConn(capacity int) *conn {
	w, r := asyncio.Pipe(capacity)
	return &conn{w: w, r: r, closed: make(chan struct{})}
}

func (c *conn) Write(p []byte) (int, error) { return asyncio.TryWrite(c, p) }

func (c *conn) PollWrite(t *asyncio.Task, p []byte) (asyncio.Async[int], error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, err := c.w.PollWrite(t, p)
	c.accepted += int64(r.Value)
	return r, err
}

func (c *conn) PollFlush(t *asyncio.Task) (asyncio.Async[struct{}], error) { return c.w.PollFlush(t) }

// Shutdown ends with code 1000 (normal closure), as a WebSocket writer's
// Shutdown does.
func (c *conn) Shutdown(t *asyncio.Task) (asyncio.Async[struct{}], error) {
	return c.shutdown(t, 1000)
}

func (c *conn) shutdown(t *asyncio.Task, code int) (asyncio.Async[struct{}], error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.began {
		c.began, c.code = true, code
		c.end = fmt.Appendf(nil, "<close %d>", code)
	}
	if c.fail != nil {
		return asyncio.NotReady[struct{}](), c.fail
	}
	for len(c.end) > 0 {
		r, err := c.w.PollWrite(t, c.end)
		if err != nil || !r.Ready {
			return asyncio.NotReady[struct{}](), err
		}
		c.accepted += int64(r.Value)
		c.end = c.end[r.Value:]
	}
	r, err := c.w.Shutdown(t)
	c.shut = r.Ready
	return r, err
}

func (c codedConn) ShutdownCode(t *asyncio.Task, code int, _ string) (asyncio.Async[struct{}], error) {
	return c.shutdown(t, code)
}

func (b bufferedConn) Write(p []byte) (int, error) { return b.c.Write(p) }

func (b bufferedConn) PollWrite(t *asyncio.Task, p []byte) (asyncio.Async[int], error) {
	return b.c.PollWrite(t, p)
}

func (b bufferedConn) PollFlush(t *asyncio.Task) (asyncio.Async[struct{}], error) {
	return b.c.PollFlush(t)
}

func (b bufferedConn) Shutdown(t *asyncio.Task) (asyncio.Async[struct{}], error) {
	return b.c.Shutdown(t)
}

// Buffered is what the pipe holds, unread by the peer.
func (b bufferedConn) Buffered() int { return b.c.w.Buffered() }

func (b bufferedConn) Close() error { return b.c.Close() }

// Undelivered is what was accepted and not read by the peer.
func (c *conn) Undelivered() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.accepted - c.delivered.Load()
}

func (c *conn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closes++
	if c.closes > 1 {
		return c.closeErr
	}
	c.atClose = fmt.Sprintf("shut=%v buffered=%d", c.shut, c.w.Buffered())
	if !c.shut {
		c.r.Close()
	}
	close(c.closed)
	return c.closeErr
}

// leave is a peer that goes away without reading: the writer's
// shutdown fails with err from then on, as a socket writer's does with
// the error its socket gave. Closing the pipe's reader notifies the task
// waiting on the writer.
func (c *conn) leave(err error) {
	c.mu.Lock()
	c.fail = err
	c.mu.Unlock()
	c.r.Close()
}

// state returns the code sent, and how many times Close was called.
func (c *conn) state() (code int, closes int, atClose string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.code, c.closes, c.atClose
}

// queue writes s; it must fit.
func (c *conn) queue(t *testing.T, s string) {
	t.Helper()
	if n, err := c.Write([]byte(s)); err != nil || n != len(s) {
		t.Fatalf("queue: Write = %d, %v; want %d, nil", n, err, len(s))
	}
}

// received is what a peer read: the bytes, then the error that ended it.
type received struct {
	data string
	err  error
}

// read reads the peer in chunks of size until an error.
func (c *conn) read(size int) <-chan received {
	ch := make(chan received, 1)
	go func() {
		var got []byte
		buf := make([]byte, size)
		for {
			n, err := c.r.Read(buf)
			got = append(got, buf[:n]...)
			c.delivered.Add(int64(n))
			if err != nil {
				ch <- received{string(got), err}
				return
			}
		}
	}()
	return ch
}

// opaque hides every method of a writer but the AsyncWriter ones: a
// writer that reports no pending bytes and cannot be closed.
type opaque struct{ asyncio.AsyncWriter }
