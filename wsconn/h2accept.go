package wsconn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/pollws/pollws/wsconn/internal/handshake"
)

var (
	// errStreamEnded fails the writes of a stream whose output ended.
	errStreamEnded = errors.New("the HTTP/2 stream ended")
	// errHandlerReturned fails a write through a ResponseWriter whose
	// handler returned, which net/http answers with a panic.
	errHandlerReturned = errors.New("the handler that accepted the HTTP/2 stream returned before the Conn ended (see Conn.HandlerDone)")
)

// acceptStream accepts an extended CONNECT (RFC 8441): it answers 200 on w
// with the chosen subprotocol and extensions and extra, and returns the
// stream, whose input is r's body and whose output w.
func acceptStream(w http.ResponseWriter, r *http.Request, protocol string, exts []handshake.Extension, extra http.Header) (net.Conn, error) {
	rc := http.NewResponseController(w)
	// Hijack clears the server's deadlines of an HTTP/1 connection; the
	// HTTP/2 server applies ReadTimeout and WriteTimeout to each stream
	// instead, and they would end a WebSocket that outlives them. A
	// ResponseWriter without deadlines (ErrNotSupported) has none to
	// clear.
	for _, err := range []error{rc.EnableFullDuplex(), rc.SetReadDeadline(time.Time{}), rc.SetWriteDeadline(time.Time{})} {
		if err != nil && !errors.Is(err, http.ErrNotSupported) {
			http.Error(w, "the stream cannot be taken over", http.StatusInternalServerError)
			return nil, err
		}
	}
	if err := handshake.WriteConnectResponse(w, protocol, exts, extra); err != nil {
		if errors.Is(err, handshake.ErrHeader) || errors.Is(err, handshake.ErrProtocols) || errors.Is(err, handshake.ErrExtensions) {
			// Nothing was written.
			http.Error(w, "the server's WebSocket handshake is misconfigured", http.StatusInternalServerError)
			return nil, fmt.Errorf("UpgradeOptions.Header: %w", err)
		}
		return nil, err
	}
	sink := &responseSink{w: w, rc: rc, done: make(chan struct{})}
	// Once the stream ended (the peer reset it, the connection under it
	// died), the handler need not wait for the Conn to find out.
	sink.stop = context.AfterFunc(r.Context(), func() { sink.end(false) })
	body := r.Body
	if body == nil {
		body = http.NoBody
	}
	return newStream(body, sink, localAddr(r), remoteAddr(r)), nil
}

func localAddr(r *http.Request) net.Addr {
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		return a
	}
	return streamAddr(r.Host)
}

func remoteAddr(r *http.Request) net.Addr {
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return net.TCPAddrFromAddrPort(ap)
	}
	return streamAddr(r.RemoteAddr)
}

// responseSink is the output of a stream that a handler accepted: each
// write goes to the handler's ResponseWriter and is flushed. net/http
// ends the stream when the handler returns, and a ResponseWriter used
// after that panics: so the sink counts its calls on the ResponseWriter,
// starts none once it ended, and closes done when the last one returned,
// which is when the handler may return ([Conn.HandlerDone]). It ends when
// the stream closes, or when the request's context ends (the peer reset
// the stream, the connection under it failed).
//
// A responseSink is safe for use by multiple goroutines.
type responseSink struct {
	w    http.ResponseWriter
	rc   *http.ResponseController
	stop func() bool // stops watching the request's context

	mu      sync.Mutex
	calls   int  // calls on w in progress
	ended   bool // no call on w may start
	wclosed bool // CloseWrite was called: the output is over
	done    chan struct{}
}

func (s *responseSink) Write(p []byte) (n int, err error) {
	err = s.call(true, func() error {
		var err error
		if n, err = s.w.Write(p); err == nil {
			err = s.rc.Flush()
		}
		return err
	})
	return n, err
}

// SetWriteDeadline sets the stream's write deadline in net/http, which
// resets the stream when it passes: a write that takes no bytes for that
// long fails the connection anyway.
func (s *responseSink) SetWriteDeadline(t time.Time) error {
	return s.call(false, func() error { return s.rc.SetWriteDeadline(t) })
}

// CloseWrite ends the output. The END_STREAM itself goes out when the
// handler returns, once the stream closed.
func (s *responseSink) CloseWrite() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return errStreamEnded
	}
	s.wclosed = true
	return nil
}

// Close ends the sink: the handler may return once the calls in progress
// did. Without CloseWrite the stream is reset first (net/http's write
// deadline, set in the past, resets it at once), which also ends a write
// waiting for the peer's flow control.
func (s *responseSink) Close() error {
	s.stop()
	s.mu.Lock()
	reset := !s.wclosed
	s.mu.Unlock()
	s.end(reset)
	return nil
}

// call runs f, a call on the ResponseWriter, unless the sink ended (or
// its output did, for a write). A panic from it, which is how net/http
// refuses a ResponseWriter whose handler returned, becomes
// errHandlerReturned.
func (s *responseSink) call(write bool, f func() error) (err error) {
	s.mu.Lock()
	if s.ended || write && s.wclosed {
		s.mu.Unlock()
		return errStreamEnded
	}
	s.calls++
	s.mu.Unlock()
	defer s.callDone()
	defer func() {
		if recover() != nil {
			err = errHandlerReturned
		}
	}()
	return f()
}

// callDone ends a call on the ResponseWriter, and the sink with the last
// one once it ended.
func (s *responseSink) callDone() {
	s.mu.Lock()
	s.calls--
	last := s.ended && s.calls == 0
	s.mu.Unlock()
	if last {
		close(s.done)
	}
}

// end stops new calls on the ResponseWriter, resets the stream first when
// reset is set, and closes done once no call is in progress. Only the
// first end does anything.
func (s *responseSink) end(reset bool) {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return
	}
	s.ended = true
	s.calls++ // the reset's call, and the check that none is left
	s.mu.Unlock()
	if reset {
		func() {
			defer func() { _ = recover() }() // the handler returned: the stream is over anyway
			_ = s.rc.SetWriteDeadline(connPast)
		}()
	}
	s.callDone()
}

// closedDone is the HandlerDone of a Conn without a handler to hold.
var closedDone = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// HandlerDone returns a channel that is closed when the HTTP handler that
// upgraded the connection may return.
//
// Over HTTP/1 that is at once: [Upgrade] took the connection over from
// net/http. Over HTTP/2 the Conn is a stream of the handler's request,
// which net/http ends when the handler returns: the channel is closed
// once the Conn closed (after its closing handshake, or Close), or the
// stream ended without it (the peer reset it, the connection failed). A
// handler that serves the Conn elsewhere, such as on a [Reactor], waits
// for it before returning. The channel of a Conn that no handler upgraded
// ([Dial], [Server], [Client]) is closed.
func (c *Conn) HandlerDone() <-chan struct{} {
	if s, ok := c.out.Conn().(*stream); ok {
		if rs, ok := s.out.(*responseSink); ok {
			return rs.done
		}
	}
	return closedDone
}
