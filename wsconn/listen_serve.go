package wsconn

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/internal/reactor"
	"github.com/pollws/pollws/internal/socket"
)

// ListenOptions configures [Reactor.ServeListener].
type ListenOptions struct {
	// UpgradeOptions checks and answers each handshake as [Upgrade] does,
	// and configures the Conns.
	UpgradeOptions

	// Handler returns the handler that serves c, upgraded by the request
	// r. It runs on one of the reactor's goroutines and must not block.
	// A nil Handler, or a nil handler returned, closes the connection
	// with status 1000. r's body is empty; its context is not canceled.
	Handler func(c *Conn, r *http.Request) Handler

	// Done, if not nil, is called with each served connection and its
	// handler's result when the connection has ended, as [Reactor.Serve]
	// calls its done function.
	Done func(c *Conn, err error)

	// HandshakeTimeout bounds the time from a connection's accept to its
	// 101 answer: a client that sends its request slowly, or never,
	// loses its connection then. Zero means 10 seconds.
	HandshakeTimeout time.Duration

	// MaxHeaderBytes bounds the size of a request's line and header
	// fields; a larger request gets 431 Request Header Fields Too Large.
	// Zero means 4096 bytes; it is at least 1024.
	MaxHeaderBytes int
}

const (
	// smallRequest is the buffer a request is read into first: a
	// browser's handshake takes about 600 bytes. A request that needs
	// more moves to one of MaxHeaderBytes, so that a client that sends
	// its request slowly holds little while it does.
	smallRequest = 1024

	defaultHandshakeTimeout = 10 * time.Second
	defaultMaxHeaderBytes   = 4096
	minMaxHeaderBytes       = 1024
)

// ServeListener accepts connections from ln and serves the WebSockets
// opened on them on the reactor, without net/http: each connection's
// opening handshake is read, checked and answered as it arrives, by a
// task of the reactor, and the upgraded Conn goes to the handler that
// o.Handler returns. No goroutine waits for a client, during its
// handshake or after, and a handshake leaves little behind: where a
// handler of net/http takes a goroutine and about 12 KiB of buffers for
// each connection, which a WebSocket never returns to net/http's pools,
// a handshake here takes a buffer of 1 KiB from a pool while its request
// arrives (of MaxHeaderBytes for a larger request), and the parsed
// request.
//
// It is for a listener that serves WebSockets only, such as a port of
// their own or the back of a proxy: a request that is not a WebSocket
// handshake is refused with 426 Upgrade Required, and every refusal
// closes the connection after its answer, as [Upgrade] words it. Serve
// WebSockets from a [net/http] handler with [Upgrade] where they share a
// server with pages, a mux, TLS or HTTP/2.
//
// ln must be a TCP listener (as net.Listen("tcp", …) returns, or
// [NewListener]'s); on systems without epoll, where a Reactor waits on a
// goroutine per connection, each handshake is read on a goroutine too.
//
// On Linux, a connection accepted from a *net.TCPListener leaves the
// runtime's poller once accepted: only the reactor watches it, and it
// holds its descriptor and its peer's address, about 100 bytes, instead
// of a *net.TCPConn's netFD, addresses and poller descriptor, about 900
// (of which the poller's 580 are outside the heap). The Conn behaves the
// same; a call that waits for it outside the reactor (a blocking read or
// write, a deadline) brings a second descriptor of the connection into
// the runtime's poller, kept until the Conn closes.
// ServeListener returns the error that ended its accepts: net.ErrClosed
// once ln is closed; a temporary one (too many open files) makes it wait
// a moment and go on. Connections already upgraded stay with the reactor.
func (r *Reactor) ServeListener(ln net.Listener, o *ListenOptions) error {
	if o == nil {
		o = new(ListenOptions)
	}
	switch ln.(type) {
	case *net.TCPListener, *socket.Listener:
	default:
		return fmt.Errorf("wsconn: ServeListener of a %T, not a TCP listener", ln)
	}
	l := &listenServer{r: r, o: o, timeout: o.HandshakeTimeout, max: o.MaxHeaderBytes}
	if l.timeout <= 0 {
		l.timeout = defaultHandshakeTimeout
	}
	if l.max <= 0 {
		l.max = defaultMaxHeaderBytes
	}
	l.max = max(l.max, minMaxHeaderBytes)
	l.bufs.New = func() any { b := make([]byte, l.max); return &b }
	l.small.New = func() any { b := make([]byte, smallRequest); return &b }
	l.readers.New = func() any { return bufio.NewReaderSize(nil, l.max) }
	accept := ln.Accept
	if tl, ok := ln.(*net.TCPListener); ok && l.r.r != nil {
		// Connections the runtime's poller never sees: the reactor
		// watches them, and a connection holds a descriptor and its
		// peer's address instead of a net.TCPConn's netFD, addresses
		// and poller descriptor.
		if sl, err := socket.NewStreamListener(tl); err == nil {
			accept = func() (net.Conn, error) {
				st, err := sl.Accept()
				if err != nil {
					return nil, err
				}
				return st, nil
			}
		}
	}
	var backoff time.Duration
	for {
		c, err := accept()
		if err != nil {
			if isTemporary(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		l.start(c)
	}
}

// isTemporary reports whether an accept failed for a reason that passes,
// such as running out of descriptors.
func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// listenServer is one ServeListener: what every handshake shares.
type listenServer struct {
	r       *Reactor
	o       *ListenOptions
	timeout time.Duration
	max     int
	bufs    sync.Pool // *[]byte: request buffers of max bytes
	small   sync.Pool // *[]byte: request buffers of smallRequest bytes
	readers sync.Pool // *bufio.Reader of max bytes, for parsing a request
}

// start begins the handshake of c: on the reactor when c has a socket it
// can watch, else on a goroutine.
func (l *listenServer) start(c net.Conn) {
	s, ok := socket.Of(c)
	if l.r.r == nil || !ok {
		go l.block(c)
		return
	}
	h := &handshaking{l: l, conn: c, sock: s}
	if _, err := l.r.exec.SpawnJob(&h.job, h); err != nil {
		c.Close()
	}
}

// handshaking is a connection whose opening handshake the reactor reads
// and answers.
type handshaking struct {
	job  asyncio.Job
	l    *listenServer
	conn net.Conn
	sock *socket.Socket

	reg     *reactor.Registration // with the handshake's deadline
	task    *asyncio.Task
	expired atomic.Bool

	bufp *[]byte // the request so far, in a buffer from l.small or l.bufs
	n    int
	resp []byte // the answer, written from off; nil while the request comes
	off  int
	ok   bool          // resp is a 101, then req and neg are set
	req  *http.Request // the request, once parsed
	neg  negotiation
	pre  []byte // bytes past the request
	done bool   // the connection went to its handler, or was closed
}

func (h *handshaking) Poll(t *asyncio.Task) (asyncio.Async[struct{}], error) {
	if h.reg == nil {
		h.task = t
		reg, err := h.l.r.r.RegisterEdges(h.sock, h)
		if err != nil {
			return asyncio.Ready(struct{}{}), err
		}
		h.reg = reg
		reg.SetTimer(h.l.timeout)
	}
	if h.expired.Load() {
		return asyncio.Ready(struct{}{}), errHandshakeTimeout
	}
	if h.resp == nil {
		if err := h.read(); err != nil {
			return asyncio.Ready(struct{}{}), err
		}
		if h.resp == nil {
			return asyncio.NotReady[struct{}](), nil
		}
	}
	for h.off < len(h.resp) {
		n, err := h.sock.Writev([][]byte{h.resp[h.off:]})
		h.off += n
		if errors.Is(err, socket.ErrWouldBlock) {
			return asyncio.NotReady[struct{}](), nil
		}
		if err != nil {
			return asyncio.Ready(struct{}{}), err
		}
	}
	if !h.ok {
		return asyncio.Ready(struct{}{}), errRefused
	}
	h.handOff()
	return asyncio.Ready(struct{}{}), nil
}

// errHandshakeTimeout and errRefused end a handshake that yields no Conn.
var (
	errHandshakeTimeout = errors.New("wsconn: the opening handshake timed out")
	errRefused          = errors.New("wsconn: the opening handshake was refused")
)

// read reads what came of the request and, once it is whole, sets the
// answer.
func (h *handshaking) read() error {
	for {
		if h.bufp == nil {
			h.bufp = h.l.small.Get().(*[]byte)
		}
		buf := *h.bufp
		if h.n == len(buf) {
			if len(buf) >= h.l.max {
				h.release()
				h.answer(nil, errHeaderTooLarge)
				return nil
			}
			large := h.l.bufs.Get().(*[]byte)
			copy(*large, buf)
			h.release()
			h.bufp = large
			continue
		}
		n, err := h.sock.Read(buf[h.n:])
		from := max(h.n-3, 0)
		h.n += n
		if end := bytes.Index(buf[from:h.n], []byte("\r\n\r\n")); end >= 0 {
			h.parse(from + end + 4)
			return nil
		}
		switch {
		case errors.Is(err, socket.ErrWouldBlock):
			if h.n == 0 {
				h.release() // a connection that has sent nothing holds no buffer
			}
			return nil
		case err != nil:
			return err
		}
	}
}

// errHeaderTooLarge: the request's header is larger than MaxHeaderBytes.
var errHeaderTooLarge = errors.New("the request's header fields are too large")

// parse parses the request, the first end bytes of the buffer, and sets
// the answer.
func (h *handshaking) parse(end int) {
	buf := *h.bufp
	var src bytes.Reader
	src.Reset(buf[:end])
	br := h.l.readers.Get().(*bufio.Reader)
	br.Reset(&src)
	req, err := http.ReadRequest(br)
	br.Reset(nil)
	h.l.readers.Put(br)
	if err == nil {
		// The reader goes back to the pool: the request must not read
		// it, and a handshake has no body anyway.
		req.Body = http.NoBody
		req.RemoteAddr = h.conn.RemoteAddr().String()
	}
	if h.n > end {
		h.pre = bytes.Clone(buf[end:h.n])
	}
	h.answer(req, err)
}

// answer sets the answer to req, parsed with err.
func (h *handshaking) answer(req *http.Request, err error) {
	o := &h.l.o.UpgradeOptions
	if err == nil && req.ProtoMajor != 1 {
		// An HTTP/2 request line on a connection of its own: Upgrade's
		// checks would take it for an HTTP/2 stream.
		req, err = nil, fmt.Errorf("%s request line", req.Proto)
	}
	if err == nil {
		h.neg, err = negotiate(req, o)
	}
	if err == nil {
		// The 101 goes into the request's buffer, whose request is
		// parsed: answering a handshake allocates nothing more.
		var b []byte
		if h.bufp != nil {
			b = (*h.bufp)[:0]
		}
		h.resp, err = h.neg.response(b, o)
		h.ok, h.req = err == nil, req
	}
	if err != nil {
		h.release()
		h.resp, h.ok = refusal(req, err), false
	}
}

// refusal is the HTTP/1.1 answer refusing req (nil if it did not parse)
// for err, which ends the connection.
func refusal(req *http.Request, err error) []byte {
	w := &responseBuffer{}
	switch {
	case req != nil:
		refuse(w, req, err)
	case errors.Is(err, errHeaderTooLarge):
		http.Error(w, err.Error(), http.StatusRequestHeaderFieldsTooLarge)
	default:
		http.Error(w, "malformed request: "+err.Error(), http.StatusBadRequest)
	}
	w.Header().Set("Connection", "close")
	return w.bytes()
}

// handOff gives the upgraded connection to its handler.
func (h *handshaking) handOff() {
	h.release() // the request's buffer, which held the response
	h.done = true
	hs := opened{conn: h.conn, pre: h.pre, protocol: h.neg.protocol, compress: h.neg.compress, deflate: h.neg.params, served: h.sock != nil}
	c := hs.newConn(&h.l.o.Options, false)
	var hd Handler
	if h.l.o.Handler != nil {
		hd = h.l.o.Handler(c, h.req)
	}
	if hd == nil {
		hd = HandlerFunc(func(*asyncio.Task) (asyncio.Async[struct{}], error) { return asyncio.Ready(struct{}{}), nil })
	}
	var done func(error)
	if f := h.l.o.Done; f != nil {
		done = func(err error) { f(c, err) }
	}
	reg := h.reg // the Conn's now
	h.reg = nil
	if err := h.l.r.serve(c, hd, done, reg); err != nil {
		c.Close()
		if done != nil {
			done(err)
		}
	}
}

// Done closes the connection of a handshake that did not hand it off.
func (h *handshaking) Done(error) {
	if h.done {
		return
	}
	h.stop()
	h.release()
	h.sock.DiscardInput() // what the client sent past a refused request: a reset would lose the answer
	h.conn.Close()
}

// ReadEdge and WriteEdge poll the handshake again; Expired ends it at its
// deadline.
func (h *handshaking) ReadEdge()  { h.task.Notify() }
func (h *handshaking) WriteEdge() { h.task.Notify() }

func (h *handshaking) Expired() {
	h.expired.Store(true)
	h.task.Notify()
}

// stop takes the connection out of the reactor, and so its deadline.
func (h *handshaking) stop() {
	if h.reg != nil {
		h.reg.Close()
	}
}

// release gives the request buffer back.
func (h *handshaking) release() {
	switch {
	case h.bufp == nil:
		return
	case len(*h.bufp) == smallRequest:
		h.l.small.Put(h.bufp)
	default:
		h.l.bufs.Put(h.bufp)
	}
	h.bufp = nil
}

// block reads and answers the handshake of c on a goroutine, where the
// reactor cannot watch c.
func (l *listenServer) block(c net.Conn) {
	c.SetDeadline(time.Now().Add(l.timeout))
	lr := &io.LimitedReader{R: c, N: int64(l.max)}
	br := bufio.NewReaderSize(lr, l.max)
	h := &handshaking{l: l, conn: c}
	req, err := http.ReadRequest(br)
	switch {
	case err == nil:
		req.Body = http.NoBody
		req.RemoteAddr = c.RemoteAddr().String()
		h.pre = leftover(br)
	case lr.N == 0:
		err = errHeaderTooLarge
	default:
		var ne net.Error
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &ne) && ne.Timeout() {
			c.Close() // no request, or half of one: no one to answer
			return
		}
	}
	h.answer(req, err)
	if _, err := c.Write(h.resp); err != nil || !h.ok {
		c.Close()
		return
	}
	c.SetDeadline(time.Time{})
	h.handOff()
}

// responseBuffer is an http.ResponseWriter that makes an HTTP/1.1
// response of what is written to it.
type responseBuffer struct {
	h      http.Header
	status int
	body   bytes.Buffer
}

func (w *responseBuffer) Header() http.Header {
	if w.h == nil {
		w.h = make(http.Header)
	}
	return w.h
}

func (w *responseBuffer) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *responseBuffer) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(p)
}

// bytes returns the response: status line, header fields, body.
func (w *responseBuffer) bytes() []byte {
	w.WriteHeader(http.StatusOK)
	h := w.Header()
	h.Del("Transfer-Encoding")
	h.Set("Content-Length", strconv.Itoa(w.body.Len()))
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 %03d %s\r\n", w.status, http.StatusText(w.status))
	h.Write(&b)
	b.WriteString("\r\n")
	b.Write(w.body.Bytes())
	return b.Bytes()
}
