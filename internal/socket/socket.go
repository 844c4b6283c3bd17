// Package socket is the non-blocking socket under pollws's connections:
// one read and one vectored write that never park, waiting for readiness
// in the calling goroutine, a half-close, and the kernel's send queue.
//
// On Linux a [Socket] works on the file descriptor of a TCP or Unix
// stream connection directly: a read or a write is one system call, with
// no lock of the runtime's. The descriptor stays the connection's; the
// Socket keeps it from being closed while one of its calls runs, so the
// connection must be closed through [Socket.Close]. Waiting
// (WaitReadable, WaitWritable) goes through the connection's
// [syscall.RawConn], so the runtime's poller parks the goroutine and the
// connection's deadlines apply. Elsewhere [Of] finds no socket and callers
// fall back to the connection's blocking Read and Write on a goroutine;
// the API is the same everywhere, so the fallback compiles.
//
// A [Stream] is a connection taken out of the runtime's poller once a
// reactor watches it alone ([Detach], [StreamListener]): its descriptor
// and its peer's address, and nothing of the runtime's until a call
// waits for it.
package socket

import (
	"errors"
	"net"
	"runtime"
	"sync/atomic"
	"syscall"

	"github.com/pollws/pollws/internal/pool"
)

// ErrWouldBlock is returned by a read or write that could not make
// progress without waiting.
var ErrWouldBlock = errors.New("socket: operation would block")

// Supported reports whether this system has raw sockets: Of finds none
// where it does not.
const Supported = supported

// MaxVec is the most slices one [Socket.Writev] sends.
const MaxVec = 8

// closing is the bit of Socket.calls set once Close began.
const closing = -1 << 31

// Socket is a connection's file descriptor, used without parking: Read
// and Writev try once and report [ErrWouldBlock]; WaitReadable and
// WaitWritable park the calling goroutine in the runtime's poller.
//
// A Socket is safe for one reader and one writer at a time, and for
// Close, OutQueue, Reset and DiscardInput from any goroutine.
type Socket struct {
	conn  net.Conn
	raw   syscall.RawConn
	fd    int32
	calls atomic.Int32 // system calls on fd in progress; the closing bit once Close began
}

// Of returns the socket of c when c is a TCP or Unix stream connection on
// a system where this package can use its descriptor, and false otherwise.
func Of(c net.Conn) (*Socket, bool) {
	if sc, ok := c.(interface{ Socket() *Socket }); ok { // a Conn or a Stream
		s := sc.Socket()
		return s, s != nil
	}
	s := new(Socket)
	if !s.Init(c) {
		return nil, false
	}
	return s, true
}

// Init makes s the socket of c, as [Of] does, in place, and reports
// whether c has one.
func (s *Socket) Init(c net.Conn) bool {
	if !supported {
		return false
	}
	var raw syscall.RawConn
	var err error
	switch c := c.(type) {
	case *net.TCPConn:
		raw, err = c.SyscallConn()
	case *net.UnixConn:
		if a := c.LocalAddr(); a == nil || a.Network() != "unix" {
			return false // datagram and seqpacket sockets keep their boundaries
		}
		raw, err = c.SyscallConn()
	default:
		return false
	}
	if err != nil {
		return false
	}
	fd := -1
	if err := raw.Control(func(d uintptr) { fd = int(d) }); err != nil || fd < 0 {
		return false
	}
	*s = Socket{conn: c, raw: raw, fd: int32(fd)}
	return true
}

// enter counts a system call on fd, or reports false once Close began.
func (s *Socket) enter() bool {
	if s.calls.Add(1) < 0 {
		s.calls.Add(-1)
		return false
	}
	return true
}

func (s *Socket) exit() { s.calls.Add(-1) }

// Read reads into p with one system call that never parks. It returns
// [ErrWouldBlock] when nothing is there to read, and io.EOF at the end of
// the stream. An empty p reads nothing.
func (s *Socket) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if !s.enter() {
		return 0, net.ErrClosed
	}
	n, errno := read(int(s.fd), p)
	s.exit()
	return n, readErr(n, errno)
}

// Writev writes the non-empty slices of v, at most [MaxVec] of them, with
// one system call that never parks, and returns how many bytes it wrote.
// It returns [ErrWouldBlock] when the socket took nothing.
func (s *Socket) Writev(v [][]byte) (int, error) {
	if !s.enter() {
		return 0, net.ErrClosed
	}
	n, errno := writev(int(s.fd), v)
	s.exit()
	return n, writeErr(n, errno)
}

// WaitReadable parks until a read would not block: bytes, the end of the
// stream or an error are there. It returns an error when the connection
// is closed or its read deadline passes.
func (s *Socket) WaitReadable() error { return s.raw.Read(peek) }

// WaitWritable parks until a write would not block. It returns an error
// when the connection is closed or its write deadline passes.
func (s *Socket) WaitWritable() error { return s.raw.Write(pollOut) }

// CloseWrite sends the end of the stream (TCP FIN); reads go on.
func (s *Socket) CloseWrite() error {
	if cw, ok := s.conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// OutQueue returns how many bytes the kernel holds in a TCP socket's send
// queue, written and not yet acknowledged by the peer, or -1 where it
// cannot tell (for a Unix socket the kernel reports its memory, not the
// bytes).
func (s *Socket) OutQueue() int {
	switch s.conn.(type) {
	case *net.TCPConn, *Stream:
	default:
		return -1
	}
	if !s.enter() {
		return -1
	}
	defer s.exit()
	return outQueue(int(s.fd))
}

// DiscardInput reads and drops what the peer sent and nobody read, without
// waiting, so that closing the socket sends a FIN, not a reset that would
// destroy what the kernel has yet to send. It reads at most 256 KiB.
func (s *Socket) DiscardInput() {
	b := pool.Get(4096)
	defer pool.Put(b)
	for range 64 {
		if _, err := s.Read(*b); err != nil {
			return
		}
	}
}

// Reset makes the next close of the connection a reset (SO_LINGER 0):
// the kernel drops what it has yet to send at once, instead of holding it
// for a peer that does not read.
func (s *Socket) Reset() {
	switch c := s.conn.(type) {
	case *net.TCPConn:
		_ = c.SetLinger(0)
	case *Stream:
		if s.enter() {
			_ = lingerZero(int(s.fd))
			s.exit()
		}
	}
}

// Control runs f with the socket's descriptor, which stays open while f
// runs.
func (s *Socket) Control(f func(fd uintptr)) error { return s.raw.Control(f) }

// Close closes the connection, once no system call of the socket's runs
// any more and none can start: the descriptor's number may belong to
// another connection once it is closed. Calls after Close fail with
// net.ErrClosed.
func (s *Socket) Close() error {
	for {
		n := s.calls.Load()
		if n < 0 {
			break // closing already
		}
		if s.calls.CompareAndSwap(n, n|closing) {
			break
		}
	}
	for s.calls.Load() != closing {
		runtime.Gosched() // a read or write never parks: it ends soon
	}
	if st, ok := s.conn.(*Stream); ok {
		return st.closeFD()
	}
	return s.conn.Close()
}
