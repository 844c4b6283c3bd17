package socket

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
)

// Sink takes bytes written to a [Conn] in non-blocking mode: all of them,
// at once. A writer's send queue is one; its bound is kept by whoever
// writes, before writing.
type Sink interface {
	Append(p []byte)
}

// Conn is a TCP connection accepted by a [Listener]. Until
// [Conn.SetNonblocking] it is a *net.TCPConn like any other, so that an
// HTTP server reads its requests and a TLS layer its handshake; from then
// on a read that would block returns an error whose Timeout and
// Temporary are true (crypto/tls returns it without failing the
// connection, and a read can be tried again when the socket is
// readable), and a write hands its bytes to a Sink and never blocks (a
// TLS layer's write error would be sticky).
//
// Close closes it through its [Socket], so no read or write of the
// socket's is under way on a closed descriptor.
type Conn struct {
	*net.TCPConn
	sock        Socket
	release     func() // gives the listener's place back, once
	nonblocking atomic.Bool
	sink        Sink
}

// ErrWouldBlockTemporary is the read error of a [Conn] in non-blocking mode
// when the socket has no bytes: a net.Error that is a timeout and
// temporary, as crypto/tls expects of an error to retry.
var ErrWouldBlockTemporary net.Error = wouldBlock{}

type wouldBlock struct{}

func (wouldBlock) Error() string   { return "socket: read would block" }
func (wouldBlock) Timeout() bool   { return true }
func (wouldBlock) Temporary() bool { return true }

// Socket returns the connection's socket, or nil on a system without raw
// sockets.
func (c *Conn) Socket() *Socket {
	if c.sock.conn == nil {
		return nil
	}
	return &c.sock
}

// SetNonblocking makes reads answer would-block and writes go to sink.
// The connection must not be in use when it is called.
func (c *Conn) SetNonblocking(sink Sink) {
	c.sink = sink
	c.nonblocking.Store(true)
}

// Read reads from the connection; in non-blocking mode it returns
// [ErrWouldBlockTemporary] when nothing is there.
func (c *Conn) Read(p []byte) (int, error) {
	if !c.nonblocking.Load() {
		return c.TCPConn.Read(p)
	}
	n, err := c.sock.Read(p)
	if err == ErrWouldBlock {
		return 0, ErrWouldBlockTemporary
	}
	return n, err
}

// Write writes to the connection; in non-blocking mode it hands p to the
// sink and returns len(p).
func (c *Conn) Write(p []byte) (int, error) {
	if !c.nonblocking.Load() {
		return c.TCPConn.Write(p)
	}
	c.sink.Append(p)
	return len(p), nil
}

// Close closes the connection and gives the listener's place back.
func (c *Conn) Close() error {
	var err error
	if c.sock.conn != nil {
		err = c.sock.Close()
	} else {
		err = c.TCPConn.Close()
	}
	if c.release != nil {
		c.release()
	}
	return err
}

// Wrap makes tc a [Conn], for a connection a client dialled: it returns
// nil on a system without raw sockets.
func Wrap(tc *net.TCPConn) *Conn {
	c := &Conn{TCPConn: tc}
	if !supported || !c.sock.Init(tc) {
		return nil
	}
	return c
}

// Listener accepts TCP connections as [Conn]s, at most a number of them
// open at once when it has a limit: Accept then waits for one to close,
// and new clients wait in the kernel's backlog.
type Listener struct {
	ln        *net.TCPListener
	slots     chan struct{} // nil: no limit
	done      chan struct{}
	closeOnce sync.Once
}

// NewListener returns a Listener over ln holding at most max connections
// at once (0: no limit).
func NewListener(ln *net.TCPListener, max int) *Listener {
	l := &Listener{ln: ln, done: make(chan struct{})}
	if max > 0 {
		l.slots = make(chan struct{}, max)
	}
	return l
}

// Accept waits for a connection and returns it as a *Conn.
func (l *Listener) Accept() (net.Conn, error) {
	if l.slots != nil {
		select {
		case l.slots <- struct{}{}:
		case <-l.done:
			return nil, net.ErrClosed
		}
	}
	tc, err := l.ln.AcceptTCP()
	if err != nil {
		if l.slots != nil {
			<-l.slots
		}
		return nil, err
	}
	c := &Conn{TCPConn: tc}
	if supported && !c.sock.Init(tc) {
		tc.Close()
		if l.slots != nil {
			<-l.slots
		}
		return nil, errors.New("socket: an accepted connection has no descriptor")
	}
	if l.slots != nil {
		c.release = sync.OnceFunc(func() { <-l.slots })
	}
	return c, nil
}

// Close stops accepting; connections accepted stay open.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.ln.Close()
}

// Addr returns the listener's address.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }
