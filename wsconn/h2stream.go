package wsconn

import (
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/pollws/pollws/internal/pool"
)

// stream is a net.Conn over one HTTP/2 stream that carries a WebSocket
// (RFC 8441): it reads an HTTP body and writes to a [streamSink], the
// ResponseWriter of the handler that accepted the stream ([Upgrade]) or
// the request body of the client that opened it ([Dial]). It has no
// socket of its own: a Conn over it writes on a goroutine that exists
// while bytes are pending, and its reads wait on one that exists while a
// read waits for bytes ([bodyReader]).
//
// A stream is safe for use by multiple goroutines.
type stream struct {
	in            bodyReader
	out           streamSink
	local, remote net.Addr
}

var _ net.Conn = (*stream)(nil)

// streamSink is the output of a stream.
type streamSink interface {
	// Write writes p and sends it on: a write that returned is on its
	// way to the peer.
	Write(p []byte) (int, error)
	SetWriteDeadline(t time.Time) error
	// CloseWrite ends the output after what was written, as a FIN ends
	// a TCP connection's: END_STREAM.
	CloseWrite() error
	// Close ends the stream: cleanly after CloseWrite, else with a
	// reset, which also ends a Write in progress. Closing again does
	// nothing.
	Close() error
}

func newStream(body io.ReadCloser, out streamSink, local, remote net.Addr) *stream {
	s := &stream{out: out, local: local, remote: remote}
	s.in.init(body)
	return s
}

func (s *stream) Read(p []byte) (int, error)  { return s.in.Read(p) }
func (s *stream) Write(p []byte) (int, error) { return s.out.Write(p) }

// CloseWrite ends the stream's output (END_STREAM) after what was
// written: the end of the WebSocket's closing handshake.
func (s *stream) CloseWrite() error { return s.out.CloseWrite() }

// Close ends the stream, cleanly after CloseWrite, else with a reset, and
// waits for the goroutine of a read in progress, which returns.
func (s *stream) Close() error {
	err := s.out.Close()
	if ierr := s.in.Close(); err == nil {
		err = ierr
	}
	return err
}

func (s *stream) LocalAddr() net.Addr  { return s.local }
func (s *stream) RemoteAddr() net.Addr { return s.remote }

func (s *stream) SetDeadline(t time.Time) error {
	s.in.dl.set(t)
	return s.out.SetWriteDeadline(t)
}

func (s *stream) SetReadDeadline(t time.Time) error {
	s.in.dl.set(t)
	return nil
}

func (s *stream) SetWriteDeadline(t time.Time) error { return s.out.SetWriteDeadline(t) }

// streamAddr is the address of a stream's end when the connection under
// it did not say: the text net/http has for it.
type streamAddr string

func (a streamAddr) Network() string { return "tcp" }
func (a streamAddr) String() string  { return string(a) }

// bodyReader reads an HTTP body for a stream, with a read deadline. A
// Conn ends a blocked read with a deadline and reads on afterwards (a
// ReadMessage whose context ended), but a body's Read can only be ended
// by closing the body, and net/http's own read deadline for an HTTP/2
// stream closes it for good. So the body is read on a goroutine that
// exists only while a read waits for it, into a buffer of its own: a read
// that the deadline ends leaves that goroutine reading, and a later read
// takes what it got. Safe for use by multiple goroutines.
type bodyReader struct {
	body io.ReadCloser
	dl   deadline

	mu      sync.Mutex
	buf     *[]byte // what the goroutine read and no read took yet, from off on; nil when none
	off     int
	err     error         // the body's error, returned once buf is taken; sticky
	reading chan struct{} // closed when the goroutine's read returned; nil while none reads
	closed  chan struct{} // closed by Close
	wg      sync.WaitGroup
}

func (b *bodyReader) init(body io.ReadCloser) {
	b.body = body
	b.dl.init()
	b.closed = make(chan struct{})
}

// Read reads what the body holds, waiting for it until the deadline or
// Close.
func (b *bodyReader) Read(p []byte) (int, error) {
	b.mu.Lock()
	for {
		switch {
		case isClosed(b.closed):
			b.mu.Unlock()
			return 0, net.ErrClosed
		case b.buf != nil:
			n := copy(p, (*b.buf)[b.off:])
			if b.off += n; b.off == len(*b.buf) {
				pool.Put(b.buf)
				b.buf, b.off = nil, 0
			}
			b.mu.Unlock()
			return n, nil
		case b.err != nil:
			err := b.err
			b.mu.Unlock()
			return 0, err
		case len(p) == 0:
			b.mu.Unlock()
			return 0, nil
		case isClosed(b.dl.wait()):
			b.mu.Unlock()
			return 0, os.ErrDeadlineExceeded
		}
		if b.reading == nil {
			b.reading = make(chan struct{})
			b.wg.Add(1)
			go b.fill(b.reading)
		}
		reading := b.reading
		b.mu.Unlock()
		select {
		case <-reading:
		case <-b.dl.wait():
		case <-b.closed:
		}
		b.mu.Lock()
	}
}

// fill is the goroutine that reads the body once, then closes done.
func (b *bodyReader) fill(done chan struct{}) {
	defer b.wg.Done()
	buf := pool.Get(readBufferSize)
	n, err := b.body.Read(*buf)
	if n == 0 && err == nil {
		err = io.ErrNoProgress
	}
	b.mu.Lock()
	if n > 0 {
		*buf = (*buf)[:n]
		b.buf = buf
	} else {
		pool.Put(buf)
	}
	b.err = err
	b.reading = nil
	b.mu.Unlock()
	close(done)
}

// Close closes the body, which ends the goroutine's read, waits for the
// goroutine and drops what it read. Reads in progress and later ones
// return net.ErrClosed.
func (b *bodyReader) Close() error {
	b.mu.Lock()
	if isClosed(b.closed) {
		b.mu.Unlock()
		return nil
	}
	close(b.closed)
	b.mu.Unlock()
	err := b.body.Close()
	b.wg.Wait()
	b.mu.Lock()
	if b.buf != nil {
		pool.Put(b.buf)
		b.buf = nil
	}
	b.mu.Unlock()
	b.dl.set(time.Time{})
	return err
}

// deadline is a deadline as net.Pipe keeps one: a timer that closes a
// channel when it passes. Safe for use by multiple goroutines.
type deadline struct {
	mu     sync.Mutex
	timer  *time.Timer
	cancel chan struct{} // closed when the deadline passed
}

func (d *deadline) init() { d.cancel = make(chan struct{}) }

// set sets the deadline to t; the zero time means none.
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel // the timer fired: its function closes cancel
	}
	d.timer = nil
	passed := isClosed(d.cancel)
	if t.IsZero() {
		if passed {
			d.cancel = make(chan struct{})
		}
		return
	}
	if wait := time.Until(t); wait > 0 {
		if passed {
			d.cancel = make(chan struct{})
		}
		cancel := d.cancel
		d.timer = time.AfterFunc(wait, func() { close(cancel) })
		return
	}
	if !passed {
		close(d.cancel)
	}
}

// wait returns a channel that is closed when the deadline passed.
func (d *deadline) wait() chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cancel
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
