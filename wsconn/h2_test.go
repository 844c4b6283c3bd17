package wsconn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/asyncio/asynciotest"
	"github.com/pollws/pollws/shutdown"
	"github.com/pollws/pollws/wsconn/internal/handshake"
)

// h2Send writes a message through c and flushes it.
func h2Send(ctx context.Context, c *Conn, op MessageType, p []byte) error {
	if _, err := asyncio.BlockOn(ctx, func(t *asyncio.Task) (asyncio.Async[int], error) {
		return c.PollWriteMessage(t, op, p)
	}); err != nil {
		return err
	}
	_, err := asyncio.BlockOn(ctx, c.PollFlush)
	return err
}

// TestHTTP2FiftyStreams: a Go client opens 50 WebSockets as streams of
// one TLS connection, all open at once; each echoes a text and a 64 KiB
// binary message and closes with 4000, which the server echoes.
func TestHTTP2FiftyStreams(t *testing.T) {
	if !inXConnect(t, true) {
		return
	}
	const n = 50
	echo := newH2Echo()
	s := newH2Server(t, echo)
	o := &DialOptions{HTTP2: s.h2Client(t), Protocols: []string{"echo"}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	conns := make([]*Conn, n)
	for i := range conns {
		c, err := Dial(ctx, s.wsURL("/ws"), o)
		if err != nil {
			t.Fatalf("Dial %d: %v", i, err)
		}
		defer c.Close()
		if p := c.Subprotocol(); p != "echo" {
			t.Fatalf("Subprotocol = %q, want echo", p)
		}
		conns[i] = c
	}
	bin := connPayload(64<<10, false)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i, c := range conns {
		wg.Go(func() {
			text := []byte(fmt.Sprintf("stream %d ✓", i))
			for _, m := range []struct {
				op MessageType
				p  []byte
			}{{Text, text}, {Binary, bin}} {
				if err := h2Send(ctx, c, m.op, m.p); err != nil {
					errs <- fmt.Errorf("stream %d: write: %w", i, err)
					return
				}
				op, p, err := readMessage(ctx, c)
				if err != nil || op != m.op || !bytes.Equal(p, m.p) {
					errs <- fmt.Errorf("stream %d: echo of %d bytes of %v = %d bytes of %v, %v", i, len(m.p), m.op, len(p), op, err)
					return
				}
			}
			if _, err := asyncio.BlockOn(ctx, func(t *asyncio.Task) (asyncio.Async[struct{}], error) {
				return c.ShutdownWith(t, 4000, "done")
			}); err != nil {
				errs <- fmt.Errorf("stream %d: ShutdownWith(4000) = %w", i, err)
				return
			}
			if code := closeCode(c); code != 4000 {
				errs <- fmt.Errorf("stream %d: the server answered close code %d, want 4000", i, code)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for range n {
		seen := echo.next(t)
		if seen.method != http.MethodConnect || seen.proto != "HTTP/2.0" || seen.msgs != 2 || seen.code != 4000 {
			t.Errorf("the server saw %s %s, %d messages, close code %d (%v); want CONNECT HTTP/2.0, 2 messages, 4000",
				seen.method, seen.proto, seen.msgs, seen.code, seen.err)
		}
	}
	if got := s.conns.Load(); got != 1 {
		t.Errorf("the server accepted %d connections, want the one that carried every stream", got)
	}
}

// TestHTTP2DialFallback: a server whose net/http does not offer extended
// CONNECT (no GODEBUG setting) gets the WebSocket over HTTP/1.1 on a
// connection of its own, though the client asked for HTTP/2.
func TestHTTP2DialFallback(t *testing.T) {
	if !inXConnect(t, false) {
		return
	}
	echo := newH2Echo()
	mux := http.NewServeMux()
	mux.Handle("/ws", echo)
	s := newH2Server(t, mux)
	o := &DialOptions{HTTP2: s.h2Client(t), TLSConfig: s.clientTLS}
	ctx := context.Background()
	c, err := Dial(ctx, s.wsURL("/ws"), o)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := h2Send(ctx, c, Text, []byte("over HTTP/1.1")); err != nil {
		t.Fatal(err)
	}
	if op, p, err := readMessage(ctx, c); err != nil || op != Text || string(p) != "over HTTP/1.1" {
		t.Fatalf("echo = %v %q, %v", op, p, err)
	}
	if err := asyncio.Shutdown(ctx, c); err != nil {
		t.Fatal(err)
	}
	if seen := echo.next(t); seen.method != http.MethodGet || seen.proto != "HTTP/1.1" || seen.msgs != 1 {
		t.Errorf("the server saw %s %s with %d messages (%v); want GET HTTP/1.1 with 1", seen.method, seen.proto, seen.msgs, seen.err)
	}
	if got := s.conns.Load(); got != 2 {
		t.Errorf("the server accepted %d connections; want 2: the HTTP/2 one, then the WebSocket's own", got)
	}

	// When HTTP/1.1 fails too, the error says what both answered.
	if c, err := Dial(ctx, s.wsURL("/nothing"), o); !errors.Is(err, handshake.ErrStatus) || !strings.Contains(err.Error(), "over HTTP/2: ") {
		if c != nil {
			c.Close()
		}
		t.Errorf("Dial of a path that is no WebSocket = %v; want the HTTP/1.1 answer and the HTTP/2 failure", err)
	}
}

// TestHTTP2DialRefused: a server that answers the extended CONNECT with a
// refusal fails Dial with what it answered, and Dial does not try again
// over HTTP/1.1.
func TestHTTP2DialRefused(t *testing.T) {
	if !inXConnect(t, true) {
		return
	}
	echo := newH2Echo()
	echo.opts.CheckOrigin = func(*http.Request) bool { return false }
	s := newH2Server(t, echo)
	c, err := Dial(context.Background(), s.wsURL("/ws"), &DialOptions{HTTP2: s.h2Client(t), TLSConfig: s.clientTLS})
	if err == nil {
		c.Close()
		t.Fatal("Dial succeeded; want the server's 403")
	}
	if !errors.Is(err, handshake.ErrStatus) {
		t.Errorf("Dial = %v; want an error wrapping the handshake's ErrStatus", err)
	}
	if seen := echo.next(t); seen.method != http.MethodConnect || seen.err == nil {
		t.Errorf("the server saw %s (%v); want a refused CONNECT", seen.method, seen.err)
	}
	select {
	case seen := <-echo.seen:
		t.Errorf("the server saw a second request, %s %s: Dial tried again", seen.method, seen.proto)
	default:
	}
}

// TestHTTP2Conformance runs the writers' kit on the server side of a
// WebSocket over an HTTP/2 stream, read by a gobwas/ws client over net/
// http's HTTP/2 client, one connection per rule. The buffer is larger
// than the 4 MiB the client lets a stream have in flight, as over TLS it
// is larger than the socket buffers: a writer that answers NotReady then
// holds bytes its stalled peer did not take.
func TestHTTP2Conformance(t *testing.T) {
	if !inXConnect(t, true) {
		return
	}
	conns := make(chan *Conn, 1)
	s := newH2Server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Upgrade(w, r, &UpgradeOptions{Options: Options{BufferSize: 8 << 20}})
		if err != nil {
			t.Errorf("Upgrade: %v", err)
			return
		}
		conns <- c
		<-c.HandlerDone()
	}))
	asynciotest.TestWriter(t, func() (asyncio.AsyncWriter, asynciotest.Peer, func(), error) {
		resp, w, cancel, err := h2Open(context.Background(), s.h2Client(t), s.wsURL("/"))
		if err != nil {
			return nil, nil, nil, err
		}
		c := <-conns
		peer := &h2Peer{body: resp.Body, w: w, cancel: cancel}
		return c, peer, func() {
			c.Close()
			peer.Close()
		}, nil
	})
}

// TestHTTP2Drain drains a shutdown.Group of WebSockets over HTTP/2 with
// srv.Shutdown: each had messages queued and not flushed; every client
// gets them all, then close 1001, and every connection ends cleanly,
// after which the handlers return and the server stops.
func TestHTTP2Drain(t *testing.T) {
	if !inXConnect(t, true) {
		return
	}
	const conns, msgs = 20, 10
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	message := func(i int) []byte { return fmt.Appendf(nil, "message %d %s", i, bytes.Repeat([]byte{'.'}, 100*i)) }

	g := shutdown.NewGroup(nil)
	queued := make(chan struct{}, conns)
	handlerErrs := make(chan error, conns)
	s := newH2Server(t, g.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Upgrade(w, r, nil)
		if err != nil {
			handlerErrs <- err
			return
		}
		m, err := g.Add(r.Context(), c, nil)
		if err != nil {
			c.Close()
			handlerErrs <- err
			return
		}
		for i := range msgs {
			if res, err := c.PollWriteMessage(nil, Binary, message(i)); err != nil || !res.Ready {
				handlerErrs <- fmt.Errorf("PollWriteMessage %d = %+v, %v", i, res, err)
			}
		}
		if c.Undelivered() == 0 {
			handlerErrs <- errors.New("messages already sent: the test wants them queued at the drain")
		}
		queued <- struct{}{}
		<-m.Context().Done()
		m.Done(context.Cause(m.Context()))
		<-c.HandlerDone() // the group closes the Conn: then the stream may end
		handlerErrs <- nil
	})))
	g.RegisterOnShutdown(s.Config, 10*time.Second)
	o := &DialOptions{HTTP2: s.h2Client(t)}

	clientErrs := make(chan error, conns)
	for range conns {
		c, err := Dial(ctx, s.wsURL("/ws"), o)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		go func() {
			for i := 0; ; i++ {
				_, p, err := readMessage(ctx, c)
				var ce *CloseError
				switch {
				case errors.As(err, &ce) && ce.Code == StatusGoingAway && i == msgs:
					clientErrs <- nil
					return
				case err != nil:
					clientErrs <- fmt.Errorf("after %d messages: %v; want close 1001 after %d", i, err, msgs)
					return
				case !bytes.Equal(p, message(i)):
					clientErrs <- fmt.Errorf("message %d is %.20q…", i, p)
					return
				}
			}
		}()
	}
	for range conns {
		select {
		case <-queued:
		case err := <-handlerErrs:
			t.Fatalf("handler: %v", err)
		case <-ctx.Done():
			t.Fatal("the connections did not all come up")
		}
	}
	if err := s.Config.Shutdown(ctx); err != nil {
		t.Fatalf("srv.Shutdown: %v", err)
	}
	rep, err := g.Wait(ctx)
	if err != nil || rep.Clean != conns || rep.Forced != 0 || rep.Undelivered != 0 {
		t.Errorf("Wait = %v, %v; want clean=%d forced=0 undelivered=0", rep, err, conns)
	}
	for range conns {
		if err := <-clientErrs; err != nil {
			t.Error("client:", err)
		}
		if err := <-handlerErrs; err != nil {
			t.Error("handler:", err)
		}
	}
	if got := s.conns.Load(); got != 1 {
		t.Errorf("the server accepted %d connections, want 1", got)
	}
}

// TestHTTP2PeerReset: a handler that waits for a Conn nobody reads or
// writes returns when the client resets the stream.
func TestHTTP2PeerReset(t *testing.T) {
	if !inXConnect(t, true) {
		return
	}
	ended := make(chan *Conn, 1)
	s := newH2Server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Upgrade(w, r, nil)
		if err != nil {
			t.Errorf("Upgrade: %v", err)
			return
		}
		<-c.HandlerDone()
		ended <- c
	}))
	resp, w, cancel, err := h2Open(context.Background(), s.h2Client(t), s.wsURL("/"))
	if err != nil {
		t.Fatal(err)
	}
	(&h2Peer{body: resp.Body, w: w, cancel: cancel}).Close()
	select {
	case c := <-ended:
		if _, err := c.ReadMessage(context.Background()); err == nil {
			t.Error("ReadMessage on a reset stream succeeded")
		}
		c.Close()
	case <-time.After(10 * time.Second):
		t.Fatal("the handler still waits 10 s after the client reset the stream")
	}
}

// TestHTTP2ReadMessageContext: a read whose context ends returns the
// context's cause and leaves the stream usable, although a body's read
// cannot be interrupted without ending it.
func TestHTTP2ReadMessageContext(t *testing.T) {
	if !inXConnect(t, true) {
		return
	}
	echo := newH2Echo()
	s := newH2Server(t, echo)
	o := &DialOptions{HTTP2: s.h2Client(t)}
	ctx := context.Background()
	c, err := Dial(ctx, s.wsURL("/"), o)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 3 {
		short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		_, _, err := readMessage(short, c)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("ReadMessage with nothing to read = %v; want context.DeadlineExceeded", err)
		}
		msg := []byte(fmt.Sprintf("after timeout %d", i))
		if err := h2Send(ctx, c, Text, msg); err != nil {
			t.Fatal(err)
		}
		if _, p, err := readMessage(ctx, c); err != nil || !bytes.Equal(p, msg) {
			t.Fatalf("echo after a read timed out = %q, %v; want %q", p, err, msg)
		}
	}
	if err := asyncio.Shutdown(ctx, c); err != nil {
		t.Fatal(err)
	}
	if seen := echo.next(t); seen.msgs != 3 || seen.code != StatusNormalClosure {
		t.Errorf("the server echoed %d messages and saw close code %d (%v); want 3 and 1000", seen.msgs, seen.code, seen.err)
	}
}

// TestHTTP2Keepalive: over a stream the server pings as over TCP, and a
// peer's pongs keep an echo open past its idle timeout; a connection
// whose peer stays silent gets close 1008 when the timeout runs out, then
// the end of the stream.
func TestHTTP2Keepalive(t *testing.T) {
	if !inXConnect(t, true) {
		return
	}
	const ping, idle = 20 * time.Millisecond, 200 * time.Millisecond
	echo := newH2Echo()
	echo.opts.PingInterval, echo.opts.IdleTimeout = ping, idle
	silent := make(chan StatusCode, 1)
	mux := http.NewServeMux()
	mux.Handle("/echo", echo)
	mux.HandleFunc("/silent", func(w http.ResponseWriter, r *http.Request) {
		// A greeting, then no read: what ends the connection is its own
		// timer.
		c, err := Upgrade(w, r, &UpgradeOptions{Options: Options{PingInterval: ping, IdleTimeout: idle}})
		if err != nil {
			t.Errorf("Upgrade: %v", err)
			return
		}
		if err := h2Send(r.Context(), c, Text, []byte("hello")); err != nil {
			t.Errorf("greeting: %v", err)
		}
		<-c.HandlerDone()
		silent <- closeCode(c)
	})
	s := newH2Server(t, mux)
	rt := s.h2Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	t.Run("pongs", func(t *testing.T) {
		resp, w, stop, err := h2Open(ctx, rt, s.wsURL("/echo"))
		if err != nil {
			t.Fatal(err)
		}
		defer (&h2Peer{body: resp.Body, w: w, cancel: stop}).Close()
		start := time.Now()
		pings := 0
		for time.Since(start) < 2*idle {
			f, err := ws.ReadFrame(resp.Body)
			if err != nil {
				t.Fatalf("after %d pings: %v", pings, err)
			}
			if f.Header.OpCode != ws.OpPing {
				t.Fatalf("after %d pings the server sent %v; want pings", pings, f.Header.OpCode)
			}
			pings++
			if err := ws.WriteFrame(w, ws.MaskFrameInPlace(ws.NewPongFrame(f.Payload))); err != nil {
				t.Fatal(err)
			}
		}
		if err := ws.WriteFrame(w, ws.MaskFrameInPlace(ws.NewTextFrame([]byte("still here")))); err != nil {
			t.Fatal(err)
		}
		for {
			f, err := ws.ReadFrame(resp.Body)
			if err != nil {
				t.Fatalf("no echo after %d pings answered over %v: %v", pings, time.Since(start), err)
			}
			if f.Header.OpCode == ws.OpText {
				if string(f.Payload) != "still here" {
					t.Fatalf("echo %q", f.Payload)
				}
				break
			}
		}
		if err := ws.WriteFrame(w, ws.MaskFrameInPlace(ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusNormalClosure, "")))); err != nil {
			t.Fatal(err)
		}
		if seen := echo.next(t); seen.msgs != 1 || seen.code != StatusNormalClosure {
			t.Errorf("the server echoed %d messages and ended with %d (%v); want 1 and 1000", seen.msgs, seen.code, seen.err)
		}
	})

	t.Run("silence", func(t *testing.T) {
		start := time.Now()
		resp, w, stop, err := h2Open(ctx, rt, s.wsURL("/silent"))
		if err != nil {
			t.Fatal(err)
		}
		defer (&h2Peer{body: resp.Body, w: w, cancel: stop}).Close()
		for {
			f, err := ws.ReadFrame(resp.Body)
			if err != nil {
				t.Fatalf("no close frame from the server: %v", err)
			}
			if f.Header.OpCode == ws.OpClose {
				if code, _ := ws.ParseCloseFrameData(f.Payload); code != ws.StatusPolicyViolation {
					t.Fatalf("close code %d, want 1008", code)
				}
				break
			}
		}
		if d := time.Since(start); d < idle {
			t.Errorf("closed after %v, before the idle timeout %v", d, idle)
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			t.Errorf("the stream after the server's close: %v; want its end", err)
		}
		if code := <-silent; code != StatusPolicyViolation {
			t.Errorf("the server's Conn ended with %d, want 1008", code)
		}
	})
}

// TestHTTP2Reactor: a Reactor serves WebSockets over HTTP/2 streams, whose
// handlers wait for HandlerDone after handing them over; the reactor's
// end of each connection lets its handler return.
func TestHTTP2Reactor(t *testing.T) {
	if !inXConnect(t, true) {
		return
	}
	const conns, msgs = 10, 100
	r, err := NewReactor(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	}()
	ends := make(chan error, conns)
	s := newH2Server(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		c, err := Upgrade(w, req, nil)
		if err != nil {
			t.Errorf("Upgrade: %v", err)
			return
		}
		if err := r.Serve(c, &echoHandler{c: c}, func(err error) { ends <- err }); err != nil {
			t.Error(err)
			return
		}
		<-c.HandlerDone()
	}))
	o := &DialOptions{HTTP2: s.h2Client(t)}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i := range conns {
		c, err := Dial(ctx, s.wsURL("/"), o)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		wg.Go(func() {
			for j := range msgs {
				msg := fmt.Appendf(nil, "%d/%d", i, j)
				if err := h2Send(ctx, c, Binary, msg); err != nil {
					t.Error(err)
					return
				}
				if _, p, err := readMessage(ctx, c); err != nil || !bytes.Equal(p, msg) {
					t.Errorf("echo %q, %v; want %q", p, err, msg)
					return
				}
			}
			if err := asyncio.Shutdown(ctx, c); err != nil {
				t.Errorf("Shutdown: %v", err)
			}
		})
	}
	wg.Wait()
	for range conns {
		select {
		case err := <-ends:
			var ce *CloseError
			if !errors.As(err, &ce) || ce.Code != StatusNormalClosure {
				t.Errorf("the reactor ended a connection with %v; want the peer's close 1000", err)
			}
		case <-ctx.Done():
			t.Fatal("the reactor did not end every connection")
		}
	}
	if got := s.conns.Load(); got != 1 {
		t.Errorf("the server accepted %d connections, want 1", got)
	}
}
