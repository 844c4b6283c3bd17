package socket

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Stream is a TCP connection accepted by a [StreamListener]: a descriptor
// the runtime's poller does not know, read and written by its [Socket]
// and watched by whoever registers that socket (a reactor). A net.Conn
// accepted by a net.Listener holds a netFD, its two addresses and a
// descriptor of the runtime's poller, about 900 bytes in all for a
// connection that idles; a Stream holds 96.
//
// A Stream is a net.Conn all the same. Its blocking calls (Read and Write
// that wait, the Socket's WaitReadable and WaitWritable) and its deadlines
// go through a second descriptor of the same socket, a duplicate that the
// runtime's poller watches, made by the first call that waits and kept
// until Close: a connection that never waits never has it.
type Stream struct {
	sock    Socket // its fd is -1 once closed, guarded by mu
	remote  netip.AddrPort
	mu      sync.Mutex
	w       *streamWait // nil until a deadline is set or a call waits
	release func()      // gives a Listener's place back, once; nil: none
}

// streamWait is what a Stream holds once it waits or has a deadline.
type streamWait struct {
	conn   net.Conn // the duplicate, once a call waited
	raw    syscall.RawConn
	rd, wd time.Time
}

// newStream returns the Stream of fd, a connected TCP socket in
// non-blocking mode, whose peer is remote.
func newStream(fd int, remote netip.AddrPort) *Stream {
	st := &Stream{remote: remote}
	st.sock = Socket{conn: st, raw: (*streamRaw)(st), fd: int32(fd)}
	return st
}

// Socket returns the Stream's socket.
func (st *Stream) Socket() *Socket { return &st.sock }

// Read reads into p, waiting for bytes if none are there.
func (st *Stream) Read(p []byte) (int, error) {
	for {
		n, err := st.sock.Read(p)
		if err != ErrWouldBlock {
			return n, err
		}
		if err := st.sock.WaitReadable(); err != nil {
			return 0, err
		}
	}
}

// Write writes p, waiting for room as long as the socket has none.
func (st *Stream) Write(p []byte) (int, error) {
	var v [1][]byte
	done := 0
	for done < len(p) {
		v[0] = p[done:]
		n, err := st.sock.Writev(v[:])
		done += n
		switch {
		case err == ErrWouldBlock:
			if err := st.sock.WaitWritable(); err != nil {
				return done, err
			}
		case err != nil:
			return done, err
		}
	}
	return done, nil
}

// Close closes the connection once no read or write of its socket runs.
func (st *Stream) Close() error { return st.sock.Close() }

// closeFD closes the descriptor and its duplicate, once; Socket.Close
// calls it when no system call on the descriptor runs.
func (st *Stream) closeFD() error {
	st.mu.Lock()
	fd := st.sock.fd
	if fd < 0 {
		st.mu.Unlock()
		return net.ErrClosed
	}
	st.sock.fd = -1 // no call of the socket's reads it any more: Close began
	w := st.w
	st.mu.Unlock()
	if w != nil && w.conn != nil {
		_ = w.conn.Close() // wakes a call that waits in the runtime's poller
	}
	err := closeFD(int(fd))
	if st.release != nil {
		st.release()
	}
	return err
}

// closed reports whether the descriptor was closed; st.mu is held.
func (st *Stream) closed() bool { return st.sock.fd < 0 }

// CloseWrite sends the end of the stream (TCP FIN); reads go on.
func (st *Stream) CloseWrite() error {
	if !st.sock.enter() {
		return net.ErrClosed
	}
	defer st.sock.exit()
	return shutdownWrite(int(st.sock.fd))
}

// LocalAddr returns the local network address, or an empty one once the
// connection is closed.
func (st *Stream) LocalAddr() net.Addr {
	var ap netip.AddrPort
	if st.sock.enter() {
		ap = localAddr(int(st.sock.fd))
		st.sock.exit()
	}
	return net.TCPAddrFromAddrPort(ap)
}

// RemoteAddr returns the peer's network address, as the connection was
// accepted from.
func (st *Stream) RemoteAddr() net.Addr { return net.TCPAddrFromAddrPort(st.remote) }

// SetDeadline sets the read and write deadlines.
func (st *Stream) SetDeadline(t time.Time) error {
	return st.setDeadline(t, true, true)
}

// SetReadDeadline sets the deadline of the reads that wait.
func (st *Stream) SetReadDeadline(t time.Time) error {
	return st.setDeadline(t, true, false)
}

// SetWriteDeadline sets the deadline of the writes that wait.
func (st *Stream) SetWriteDeadline(t time.Time) error {
	return st.setDeadline(t, false, true)
}

func (st *Stream) setDeadline(t time.Time, read, write bool) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.closed() {
		return net.ErrClosed
	}
	if st.w == nil {
		if t.IsZero() {
			return nil // no deadline, and none was set
		}
		st.w = new(streamWait)
	}
	w := st.w
	if read {
		w.rd = t
	}
	if write {
		w.wd = t
	}
	if w.conn == nil {
		return nil // applied when a call first waits
	}
	switch {
	case read && write:
		return w.conn.SetDeadline(t)
	case read:
		return w.conn.SetReadDeadline(t)
	default:
		return w.conn.SetWriteDeadline(t)
	}
}

// SyscallConn returns the connection's raw descriptor, as a
// *net.TCPConn's SyscallConn does. Its Read and Write wait in the
// runtime's poller.
func (st *Stream) SyscallConn() (syscall.RawConn, error) { return (*streamRaw)(st), nil }

// waiter returns the raw connection of the duplicate, made at the first
// call, with the deadlines set so far.
func (st *Stream) waiter() (syscall.RawConn, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.closed() {
		return nil, net.ErrClosed
	}
	if st.w != nil && st.w.raw != nil {
		return st.w.raw, nil
	}
	if !st.sock.enter() {
		return nil, net.ErrClosed
	}
	c, err := dupConn(int(st.sock.fd))
	st.sock.exit()
	if err != nil {
		return nil, err
	}
	raw, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		c.Close()
		return nil, err
	}
	if st.w == nil {
		st.w = new(streamWait)
	}
	w := st.w
	if !w.rd.IsZero() {
		_ = c.SetReadDeadline(w.rd)
	}
	if !w.wd.IsZero() {
		_ = c.SetWriteDeadline(w.wd)
	}
	w.conn, w.raw = c, raw
	return raw, nil
}

// streamRaw is a Stream's syscall.RawConn.
type streamRaw Stream

// Control runs f with the descriptor, which stays open while f runs.
func (r *streamRaw) Control(f func(fd uintptr)) error {
	s := &r.sock
	if !s.enter() {
		return net.ErrClosed
	}
	defer s.exit()
	f(uintptr(s.fd))
	return nil
}

// Read calls f with the descriptor until f returns true, waiting for the
// socket to be readable in between.
func (r *streamRaw) Read(f func(fd uintptr) bool) error {
	raw, err := (*Stream)(r).waiter()
	if err != nil {
		return err
	}
	return raw.Read(f)
}

// Write calls f with the descriptor until f returns true, waiting for
// the socket to be writable in between.
func (r *streamRaw) Write(f func(fd uintptr) bool) error {
	raw, err := (*Stream)(r).waiter()
	if err != nil {
		return err
	}
	return raw.Write(f)
}

// StreamListener accepts the connections of a TCP listener as [Stream]s.
type StreamListener struct {
	ln   *net.TCPListener
	raw  syscall.RawConn
	opts atomic.Pointer[acceptOptions] // as the listener's accepts set them, once one was seen
}

// NewStreamListener returns a StreamListener over ln. It fails with
// [errors.ErrUnsupported] on a system without raw sockets.
func NewStreamListener(ln *net.TCPListener) (*StreamListener, error) {
	if !supported {
		return nil, errors.ErrUnsupported
	}
	raw, err := ln.SyscallConn()
	if err != nil {
		return nil, err
	}
	return &StreamListener{ln: ln, raw: raw}, nil
}

// Accept waits for a connection and returns it, with the options the
// listener's accepts set (TCP_NODELAY and keep-alive probes by default).
// It fails as the listener's Accept does: with an error that is
// net.ErrClosed once the listener is closed, and one whose Temporary
// method reports true when the process runs out of descriptors.
//
// A connection already waiting is accepted on the listener's descriptor
// directly, and given the options the listener's last accept through net
// had (TCP_NODELAY, and its keep-alive probes, read back from that
// connection). When none is waiting, the listener accepts a
// *net.TCPConn (a listener's descriptor cannot be waited on through its
// RawConn); the Stream takes a duplicate of its descriptor and closes it,
// which gives its netFD to the garbage collector and its descriptor of
// the runtime's poller back to the runtime's cache. A burst of
// connections is so accepted with five system calls fewer each (the
// poller's registration and its removal, getsockname, the duplicate and
// the close of the original), and no garbage but the Stream.
func (l *StreamListener) Accept() (*Stream, error) {
	for {
		if o := l.opts.Load(); o != nil {
			st, err := l.acceptWaiting(o)
			if st != nil || err != nil {
				return st, err
			}
		}
		tc, err := l.ln.AcceptTCP()
		if err != nil {
			return nil, err
		}
		if l.opts.Load() == nil {
			if o, err := readAcceptOptions(tc); err == nil {
				l.opts.Store(o)
			}
		}
		st, err := detach(tc)
		if err == nil {
			return st, nil
		}
		tc.Close()
		if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
			return nil, err
		}
		// The connection went before its duplicate was made: the next.
	}
}

// Detach returns a Stream over a duplicate of the descriptor of c, a
// *net.TCPConn or a [Conn] in blocking mode, and closes c, whose netFD
// and poller descriptor the runtime then frees; a Conn's place in its
// Listener goes to the Stream, given back when the Stream closes. c must
// not be in use. When Detach fails, c is left as it was.
func Detach(c net.Conn) (*Stream, error) {
	if !supported {
		return nil, errors.ErrUnsupported
	}
	var release func()
	tc, ok := c.(*net.TCPConn)
	if sc, isConn := c.(*Conn); isConn && !sc.nonblocking.Load() {
		tc, ok, release = sc.TCPConn, true, sc.release
	}
	if !ok {
		return nil, fmt.Errorf("socket: Detach of a %T", c)
	}
	st, err := detach(tc)
	if err != nil {
		return nil, err
	}
	if release != nil {
		c.(*Conn).release = nil // the Stream's now
		st.release = release
	}
	return st, nil
}

// detach returns a Stream over a duplicate of tc's descriptor, and closes
// tc; it leaves tc as it was when it fails.
func detach(tc *net.TCPConn) (*Stream, error) {
	raw, err := tc.SyscallConn()
	if err != nil {
		return nil, err
	}
	fd := -1
	if cerr := raw.Control(func(d uintptr) { fd, err = dupFD(int(d)) }); cerr != nil {
		return nil, cerr
	}
	if err != nil {
		return nil, err
	}
	var remote netip.AddrPort
	if a, ok := tc.RemoteAddr().(*net.TCPAddr); ok {
		remote = a.AddrPort()
	}
	tc.Close()
	return newStream(fd, remote), nil
}

// Addr returns the listener's address.
func (l *StreamListener) Addr() net.Addr { return l.ln.Addr() }

// Close closes the listener; an Accept in progress returns.
func (l *StreamListener) Close() error { return l.ln.Close() }
