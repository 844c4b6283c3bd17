// Package socket is the non-blocking socket under pollws's connections:
// one read and one vectored write that never park, waiting for readiness
// in the calling goroutine, a half-close, and the kernel's send queue.
//
// On Linux a [Socket] works on the file descriptor of a TCP or Unix
// stream connection through its [syscall.RawConn], so the runtime still
// owns the descriptor and its deadlines. Elsewhere [Of] finds no socket
// and callers fall back to the connection's blocking Read and Write on a
// goroutine; the API is the same everywhere, so the fallback compiles.
package socket

import (
	"errors"
	"net"
	"syscall"
)

// ErrWouldBlock is returned by a read or write that could not make
// progress without waiting.
var ErrWouldBlock = errors.New("socket: operation would block")

// Supported reports whether this system has raw sockets: Of finds none
// where it does not.
const Supported = supported

// MaxVec is the most slices one [Socket.Writev] sends.
const MaxVec = 8

// Socket is a connection's file descriptor, used without parking: Read
// and Writev try once and report [ErrWouldBlock]; WaitReadable and
// WaitWritable park the calling goroutine in the runtime's poller.
//
// A Socket is safe for one reader and one writer at a time: Read and
// WaitReadable must not be called concurrently with each other, nor
// Writev and WaitWritable with each other.
type Socket struct {
	raw  syscall.RawConn
	conn net.Conn

	// The arguments and results of the callbacks given to raw, made once
	// so that a call does not allocate a closure.
	readFn, writeFn, peekFn, pollOutFn func(fd uintptr) bool
	rp                                 []byte
	rn                                 int
	rerr                               syscall.Errno
	wv                                 [][]byte
	wn                                 int
	werr                               syscall.Errno
}

// Of returns the socket of c when c is a TCP or Unix stream connection on
// a system where this package can use its descriptor, and false otherwise.
func Of(c net.Conn) (*Socket, bool) {
	if !supported {
		return nil, false
	}
	var raw syscall.RawConn
	var err error
	switch c := c.(type) {
	case *net.TCPConn:
		raw, err = c.SyscallConn()
	case *net.UnixConn:
		if a := c.LocalAddr(); a == nil || a.Network() != "unix" {
			return nil, false // datagram and seqpacket sockets keep their boundaries
		}
		raw, err = c.SyscallConn()
	default:
		return nil, false
	}
	if err != nil {
		return nil, false
	}
	s := &Socket{raw: raw, conn: c}
	s.readFn, s.writeFn, s.peekFn, s.pollOutFn = s.doRead, s.doWrite, s.doPeek, s.doPollOut
	return s, true
}

// Conn returns the connection the socket belongs to.
func (s *Socket) Conn() net.Conn { return s.conn }

// RawConn returns the socket's raw connection.
func (s *Socket) RawConn() syscall.RawConn { return s.raw }

// Read reads into p with one system call that never parks. It returns
// [ErrWouldBlock] when nothing is there to read, and io.EOF at the end of
// the stream. An empty p reads nothing.
func (s *Socket) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s.rp = p
	err := s.raw.Read(s.readFn)
	s.rp = nil
	if err != nil {
		return 0, err
	}
	return s.rn, readErr(s.rn, s.rerr)
}

// Writev writes the non-empty slices of v, at most [MaxVec] of them, with
// one system call that never parks, and returns how many bytes it wrote.
// It returns [ErrWouldBlock] when the socket took nothing.
func (s *Socket) Writev(v [][]byte) (int, error) {
	s.wv = v
	err := s.raw.Write(s.writeFn)
	s.wv = nil
	if err != nil {
		return 0, err
	}
	return s.wn, writeErr(s.wn, s.werr)
}

// WaitReadable parks until a read would not block: bytes, the end of the
// stream or an error are there. It returns an error when the connection
// is closed or its read deadline passes.
func (s *Socket) WaitReadable() error { return s.raw.Read(s.peekFn) }

// WaitWritable parks until a write would not block. It returns an error
// when the connection is closed or its write deadline passes.
func (s *Socket) WaitWritable() error { return s.raw.Write(s.pollOutFn) }

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
	n := -1
	if _, ok := s.conn.(*net.TCPConn); !ok {
		return n
	}
	_ = s.raw.Control(func(fd uintptr) { n = outQueue(fd) })
	return n
}

// DiscardInput reads and drops what the peer sent and nobody read, without
// waiting, so that closing the socket sends a FIN, not a reset that would
// destroy what the kernel has yet to send. It reads at most 256 KiB.
func (s *Socket) DiscardInput() {
	var b [4096]byte
	for range 64 {
		if _, err := s.Read(b[:]); err != nil {
			return
		}
	}
}

// Reset makes the next close of the connection a reset (SO_LINGER 0):
// the kernel drops what it has yet to send at once, instead of holding it
// for a peer that does not read.
func (s *Socket) Reset() {
	if c, ok := s.conn.(*net.TCPConn); ok {
		_ = c.SetLinger(0)
	}
}

// Control runs f with the socket's descriptor, which stays open while f
// runs.
func (s *Socket) Control(f func(fd uintptr)) error { return s.raw.Control(f) }
