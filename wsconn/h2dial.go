package wsconn

import (
	"context"
	"fmt"
	"net"
	"net/http/httptrace"
	"net/url"
	"sync"
	"time"

	"github.com/pollws/pollws/wsconn/internal/deflate"
	"github.com/pollws/pollws/wsconn/internal/handshake"
)

// dialStream opens a WebSocket to u as an extended CONNECT stream (RFC
// 8441) through o.HTTP2. fallback reports that no answer came (the round
// trip failed: the server speaks no HTTP/2, offers no extended CONNECT,
// or was not reached), so that HTTP/1.1 may be tried; it is false when
// ctx ended.
func dialStream(ctx context.Context, u *url.URL, o *DialOptions) (d opened, fallback bool, err error) {
	dopts := o.Compression.deflateOptions()
	exts := extensionsOf(deflate.Offer(dopts))
	req, err := handshake.NewConnectRequest(u, o.Protocols, exts, o.Header)
	if err != nil {
		return d, false, err
	}
	pr, pw := net.Pipe()
	body := &requestBody{r: pr, closed: make(chan struct{})}
	req.Body = body
	var local, remote net.Addr
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
		if i.Conn != nil {
			local, remote = i.Conn.LocalAddr(), i.Conn.RemoteAddr()
		}
	}}
	// ctx bounds the handshake, not the stream: the stream's context has
	// ctx's values but not its end, and ends when ctx does before the
	// answer came, or when the stream closes.
	sctx, cancel := context.WithCancel(httptrace.WithClientTrace(context.WithoutCancel(ctx), trace))
	stop := context.AfterFunc(ctx, cancel)
	resp, err := o.HTTP2.RoundTrip(req.WithContext(sctx))
	ended := !stop()
	if err == nil && !ended {
		neg, cerr := handshake.CheckConnectResponse(resp, o.Protocols, exts)
		if cerr == nil {
			d.deflate, d.compress, cerr = deflate.CheckResponse(neg.Extensions, dopts)
		}
		if cerr == nil {
			if local == nil {
				local, remote = streamAddr(""), streamAddr(u.Host)
			}
			sink := &requestSink{w: pw, body: body, closing: make(chan struct{}), cancel: cancel}
			d.conn, d.protocol = newStream(resp.Body, sink, local, remote), neg.Protocol
			return d, false, nil
		}
		err = cerr
	}
	if resp != nil {
		resp.Body.Close()
	}
	pw.Close()
	cancel()
	switch {
	case ended && err != nil:
		return opened{}, false, fmt.Errorf("%w (%v)", context.Cause(ctx), err)
	case ended:
		return opened{}, false, context.Cause(ctx)
	case resp == nil:
		return opened{}, true, fmt.Errorf("over HTTP/2: %w", err)
	}
	return opened{}, false, err
}

// requestBody is the end of the pipe that the HTTP/2 client reads the
// request's body from. The client closes it once it sent the body's end
// (END_STREAM) or gave up the stream.
type requestBody struct {
	r      net.Conn
	once   sync.Once
	closed chan struct{} // closed by Close
}

func (b *requestBody) Read(p []byte) (int, error) { return b.r.Read(p) }

func (b *requestBody) Close() error {
	err := b.r.Close()
	b.once.Do(func() { close(b.closed) })
	return err
}

// requestSink is the output of a stream that Dial opened: the request's
// body, which the HTTP/2 client reads from a pipe as the peer's flow
// control lets it send. A write returns once the client took its bytes.
//
// A requestSink is safe for use by multiple goroutines.
type requestSink struct {
	w       net.Conn // the pipe's writing end
	body    *requestBody
	closing chan struct{} // closed by Close
	once    sync.Once
	cancel  context.CancelFunc // ends the request's context, and the stream with it
}

func (s *requestSink) Write(p []byte) (int, error)        { return s.w.Write(p) }
func (s *requestSink) SetWriteDeadline(t time.Time) error { return s.w.SetWriteDeadline(t) }

// CloseWrite ends the request's body and waits until the client sent its
// end or gave up the stream: until then the last bytes written (the close
// frame) may wait for flow control, and Close would drop them.
func (s *requestSink) CloseWrite() error {
	if err := s.w.Close(); err != nil {
		return err
	}
	select {
	case <-s.body.closed:
		return nil
	case <-s.closing:
		return net.ErrClosed
	}
}

// Close ends the stream: the client resets it unless both ends had sent
// their end.
func (s *requestSink) Close() error {
	s.once.Do(func() {
		close(s.closing)
		s.w.Close()
		s.cancel()
	})
	return nil
}
