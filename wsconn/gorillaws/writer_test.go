package gorillaws

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/gorilla/websocket"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/asyncio/asynciotest"
)

// Socket buffer sizes of test connections: small, so that a peer that does
// not read stalls the writer quickly. (A receive buffer much smaller than
// the loopback MSS stalls Linux TCP for seconds, so the client's is larger.)
const (
	sockSend = 4 << 10  // the server's send and receive buffers
	sockRecv = 32 << 10 // the client's receive buffer
)

// testServer is a loopback HTTP server (TLS or not) that upgrades every
// request with gorilla, through Upgrade, and hands the server side of the
// connection over.
type testServer struct {
	srv   *httptest.Server
	conns chan *websocket.Conn
}

func newTestServer(t testing.TB, useTLS bool) *testServer {
	return newServerUpgrading(t, useTLS, Upgrade)
}

// newServerUpgrading is newTestServer with the upgrade done by upgrade.
func newServerUpgrading(t testing.TB, useTLS bool, upgrade func(*websocket.Upgrader, http.ResponseWriter, *http.Request, http.Header) (*websocket.Conn, error)) *testServer {
	s := &testServer{conns: make(chan *websocket.Conn, 256)}
	var up websocket.Upgrader
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := upgrade(&up, w, r, nil)
		if err != nil {
			return
		}
		tc := tcpConn(c.NetConn())
		tc.SetWriteBuffer(sockSend)
		tc.SetReadBuffer(sockSend) // the client only sends control frames
		s.conns <- c
	})
	if useTLS {
		s.srv = httptest.NewTLSServer(h)
	} else {
		s.srv = httptest.NewServer(h)
	}
	t.Cleanup(s.srv.Close)
	return s
}

func (s *testServer) url() string { return "ws" + strings.TrimPrefix(s.srv.URL, "http") }

func (s *testServer) tlsConfig() *tls.Config {
	if s.srv.TLS == nil {
		return nil
	}
	return s.srv.Client().Transport.(*http.Transport).TLSClientConfig
}

// accept returns the server side of the connection dialed last.
func (s *testServer) accept(t testing.TB) *websocket.Conn {
	t.Helper()
	select {
	case c := <-s.conns:
		return c
	case <-time.After(asynciotest.Timeout):
		t.Fatal("server saw no connection")
		return nil
	}
}

// netDial dials TCP with a small receive buffer and records the TCP
// connection in *raw.
func netDial(raw **net.TCPConn) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		tc := c.(*net.TCPConn)
		tc.SetReadBuffer(sockRecv)
		*raw = tc
		return c, nil
	}
}

// dialGorilla connects a gorilla client and returns it, its TCP
// connection, and the server side.
func (s *testServer) dialGorilla(t testing.TB) (client *websocket.Conn, raw *net.TCPConn, server *websocket.Conn) {
	t.Helper()
	d := websocket.Dialer{NetDialContext: netDial(&raw), TLSClientConfig: s.tlsConfig(), ReadBufferSize: 4096}
	client, _, err := d.Dial(s.url(), nil)
	noError(t, err, "gorilla dial")
	t.Cleanup(func() { client.Close() })
	return client, raw, s.accept(t)
}

// dialGobwas connects a gobwas client and returns its connection (TLS or
// not), a reader that starts with what the handshake buffered, its TCP
// connection, and the server side.
func (s *testServer) dialGobwas(t testing.TB) (conn net.Conn, r io.Reader, raw *net.TCPConn, server *websocket.Conn) {
	t.Helper()
	d := ws.Dialer{NetDial: netDial(&raw), TLSConfig: s.tlsConfig()}
	conn, br, _, err := d.Dial(context.Background(), s.url())
	noError(t, err, "gobwas dial")
	t.Cleanup(func() { conn.Close() })
	r = conn
	if br != nil {
		r = io.MultiReader(br, conn)
	}
	return conn, r, raw, s.accept(t)
}

func tcpConn(c net.Conn) *net.TCPConn {
	if hc, ok := c.(*conn); ok {
		c = hc.NetConn()
	}
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	return c.(*net.TCPConn)
}

// reset makes the peer go away abruptly: the writer's next write fails.
func reset(raw *net.TCPConn) error {
	raw.SetLinger(0)
	return raw.Close()
}

// gorillaPeer presents the messages a gorilla client receives as the byte
// stream of their payloads; the writer's close frame is io.EOF (the client
// answers it with its own close, as gorilla does by default).
type gorillaPeer struct {
	c   *websocket.Conn
	raw *net.TCPConn
	cur io.Reader
	eof bool
}

func (p *gorillaPeer) Read(b []byte) (int, error) {
	for {
		if p.eof {
			return 0, io.EOF
		}
		if p.cur == nil {
			_, r, err := p.c.NextReader()
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				p.eof = true
				continue
			}
			if err != nil {
				return 0, err
			}
			p.cur = r
		}
		n, err := p.cur.Read(b)
		if err == io.EOF {
			p.cur, err = nil, nil
		}
		if n > 0 || err != nil {
			return n, err
		}
	}
}

func (p *gorillaPeer) Close() error { return reset(p.raw) }

// gobwasPeer is gorillaPeer with a gobwas client, which reads whole
// messages and answers the close frame.
type gobwasPeer struct {
	rw  io.ReadWriter
	raw *net.TCPConn
	buf []byte
	eof bool
}

func (p *gobwasPeer) Read(b []byte) (int, error) {
	for len(p.buf) == 0 {
		if p.eof {
			return 0, io.EOF
		}
		data, _, err := wsutil.ReadServerData(p.rw)
		var ce wsutil.ClosedError
		if errors.As(err, &ce) {
			p.eof = true
			continue
		}
		if err != nil {
			return 0, err
		}
		p.buf = data
	}
	n := copy(b, p.buf)
	p.buf = p.buf[n:]
	return n, nil
}

func (p *gobwasPeer) Close() error { return reset(p.raw) }

func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name    string
		tls     bool
		gobwas  bool
		queue   int
		foreign bool // upgraded by gorilla's Upgrader, not Upgrade
	}{
		{"tcp/gorilla", false, false, 0, false},
		{"tls/gorilla", true, false, 0, false},
		{"tcp/gobwas", false, true, 0, false},
		{"tcp/gorilla/queue4KiB", false, false, 4 << 10, false},
		{"tcp/gorilla/foreign", false, false, 0, true},
		{"tls/gobwas/foreign", true, true, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer(t, tc.tls)
			if tc.foreign {
				s = newServerUpgrading(t, tc.tls, (*websocket.Upgrader).Upgrade)
			}
			asynciotest.TestWriter(t, func() (asyncio.AsyncWriter, asynciotest.Peer, func(), error) {
				var (
					peer   asynciotest.Peer
					raw    *net.TCPConn
					server *websocket.Conn
				)
				if tc.gobwas {
					var (
						conn net.Conn
						r    io.Reader
					)
					conn, r, raw, server = s.dialGobwas(t)
					peer = &gobwasPeer{rw: struct {
						io.Reader
						io.Writer
					}{r, conn}, raw: raw}
				} else {
					var client *websocket.Conn
					client, raw, server = s.dialGorilla(t)
					peer = &gorillaPeer{c: client, raw: raw}
				}
				w := New(server, &Options{QueueBytes: tc.queue, ReadClose: true})
				stop := func() {
					raw.Close()
					w.Close()
				}
				return w, peer, stop, nil
			})
		})
	}
}

// readAll reads messages from c until it fails and returns their
// payloads and the error.
func readAll(c *websocket.Conn) ([]string, error) {
	var got []string
	for {
		_, p, err := c.ReadMessage()
		if err != nil {
			return got, err
		}
		got = append(got, string(p))
	}
}

// readLoop runs the application's read loop on the server side, as
// gorilla applications do, until reading fails.
func readLoop(t *testing.T, c *websocket.Conn) <-chan error {
	res := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				res <- err
				return
			}
		}
	})
	t.Cleanup(func() {
		c.Close()
		wg.Wait()
	})
	return res
}

// noError fails the test when err is not nil.
func noError(t testing.TB, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), asynciotest.Timeout)
	t.Cleanup(cancel)
	return ctx
}

// readInBackground reads c with readAll in a goroutine; the result
// arrives on the channel.
func readInBackground(c *websocket.Conn) <-chan readResult {
	res := make(chan readResult, 1)
	go func() {
		got, err := readAll(c)
		res <- readResult{got, err}
	}()
	return res
}

type readResult struct {
	got []string
	err error
}

// check fails the test unless the client received want and then the
// writer's close frame with code.
func (r readResult) check(t testing.TB, want []string, code int) {
	t.Helper()
	if !slices.Equal(r.got, want) {
		t.Errorf("client received %d messages %.200q, want %d %.200q", len(r.got), r.got, len(want), want)
	}
	if !websocket.IsCloseError(r.err, code) {
		t.Errorf("client read ended with %v, want a close frame with code %d", r.err, code)
	}
}

func TestIdleHasNoGoroutine(t *testing.T) {
	const conns = 100
	s := newTestServer(t, false)
	ws := make([]*Writer, conns)
	clients := make([]*websocket.Conn, conns)
	for i := range ws {
		var server *websocket.Conn
		clients[i], _, server = s.dialGorilla(t)
		ws[i] = New(server, nil)
	}
	base := runtime.NumGoroutine()
	ctx := testCtx(t)
	for i, w := range ws {
		noError(t, asyncio.WriteAll(ctx, w, fmt.Appendf(nil, "hello %d", i)), "WriteAll")
	}
	for i, w := range ws {
		noError(t, asyncio.Flush(ctx, w), "Flush")
		w.wg.Wait()
		w.mu.Lock()
		q, running := w.q, w.running
		w.mu.Unlock()
		if q != nil || running {
			t.Fatalf("writer %d after Flush: queue %v, goroutine running %v; want neither", i, q != nil, running)
		}
	}
	// Goroutines of earlier tests (context.AfterFunc, connections closing)
	// may still come and go; a goroutine per idle writer would be 100 more.
	if n := runtime.NumGoroutine(); n >= base+conns/2 {
		t.Fatalf("%d goroutines with %d idle writers, %d before they wrote: an idle writer holds a goroutine", n, conns, base)
	}
	for i, c := range clients {
		_, p, err := c.ReadMessage()
		if want := fmt.Sprintf("hello %d", i); err != nil || string(p) != want {
			t.Fatalf("client %d read %q, %v; want %q", i, p, err, want)
		}
	}
	for _, w := range ws {
		noError(t, w.Close(), "Close")
	}
}

func TestConcurrentWritersNeverRace(t *testing.T) {
	const (
		blockers = 8 // goroutines waiting through BlockOn, at the same time
		tryers   = 4 // goroutines calling Write, which never waits
		prepared = 2 // goroutines queueing prepared messages
		senders  = blockers + tryers + prepared
		each     = 300
		pings    = 50
	)
	s := newTestServer(t, false)
	client, _, server := s.dialGorilla(t)
	w := New(server, &Options{QueueBytes: 2 << 10})
	defer w.Close()
	readLoop(t, server) // answers the client's pings through w

	var pongs atomic.Int64
	client.SetPongHandler(func(string) error { pongs.Add(1); return nil })
	type result struct {
		next [senders]int
		err  error
	}
	read := make(chan result, 1)
	go func() {
		var r result
		for {
			_, p, err := client.ReadMessage()
			if err != nil {
				r.err = err
				read <- r
				return
			}
			var g, i int
			if _, err := fmt.Sscanf(string(p), "%d:%d", &g, &i); err != nil || g < 0 || g >= senders {
				r.err = fmt.Errorf("bad message %q", p)
				read <- r
				return
			}
			if i != r.next[g] {
				r.err = fmt.Errorf("sender %d: message %d after %d", g, i, r.next[g]-1)
				read <- r
				return
			}
			r.next[g]++
		}
	}()

	ctx := testCtx(t)
	var wg sync.WaitGroup
	errs := make(chan error, senders+1)
	for g := range blockers {
		wg.Go(func() {
			for i := range each {
				msg := fmt.Appendf(nil, "%d:%d:%s", g, i, strings.Repeat("x", i%200))
				_, err := asyncio.BlockOn(ctx, func(t *asyncio.Task) (asyncio.Async[int], error) {
					return w.PollWriteMessage(t, websocket.TextMessage, msg)
				})
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for g := blockers; g < blockers+tryers; g++ {
		wg.Go(func() {
			for i := 0; i < each; {
				_, err := w.Write(fmt.Appendf(nil, "%d:%d", g, i))
				switch {
				case errors.Is(err, asyncio.ErrWouldBlock):
					err = asyncio.Flush(ctx, w)
					if err != nil {
						errs <- err
						return
					}
				case err != nil:
					errs <- err
					return
				default:
					i++
				}
			}
		})
	}
	for g := blockers + tryers; g < senders; g++ {
		wg.Go(func() {
			for i := range each {
				pm, err := websocket.NewPreparedMessage(websocket.TextMessage, fmt.Appendf(nil, "%d:%d", g, i))
				if err == nil {
					_, err = asyncio.BlockOn(ctx, func(t *asyncio.Task) (asyncio.Async[struct{}], error) {
						return w.PollWritePrepared(t, pm)
					})
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Go(func() {
		for i := range pings {
			if err := client.WriteControl(websocket.PingMessage, fmt.Appendf(nil, "p%d", i), time.Now().Add(asynciotest.Timeout)); err != nil {
				errs <- err
				return
			}
			runtime.Gosched()
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("writer: %v", err)
	}
	noError(t, asyncio.Shutdown(ctx, w), "Shutdown")

	r := <-read
	if !websocket.IsCloseError(r.err, websocket.CloseNormalClosure) {
		t.Fatalf("client read ended with %v, want the writer's close frame", r.err)
	}
	for g, n := range r.next {
		if n != each {
			t.Errorf("client received %d messages of sender %d, want %d", n, g, each)
		}
	}
	if n := pongs.Load(); n != pings {
		t.Errorf("client received %d pongs for %d pings, want one each", n, pings)
	}
}

func TestPreparedBroadcast(t *testing.T) {
	const (
		subscribers = 20
		messages    = 50
	)
	for _, useTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", useTLS), func(t *testing.T) {
			s := newTestServer(t, useTLS)
			ws := make([]*Writer, subscribers)
			reads := make([]<-chan readResult, subscribers)
			for i := range subscribers {
				client, _, server := s.dialGorilla(t)
				ws[i] = New(server, &Options{ReadClose: true})
				reads[i] = readInBackground(client)
			}
			ctx := testCtx(t)
			var want []string
			for m := range messages {
				payload := fmt.Sprintf("broadcast %d %s", m, strings.Repeat("b", m*40))
				want = append(want, payload)
				pm, err := websocket.NewPreparedMessage(websocket.BinaryMessage, []byte(payload))
				noError(t, err, "NewPreparedMessage")
				for _, w := range ws {
					_, err := asyncio.BlockOn(ctx, func(t *asyncio.Task) (asyncio.Async[struct{}], error) {
						return w.PollWritePrepared(t, pm)
					})
					noError(t, err, "PollWritePrepared")
				}
			}
			for _, w := range ws {
				noError(t, asyncio.Shutdown(ctx, w), "Shutdown")
			}
			for _, r := range reads {
				(<-r).check(t, want, websocket.CloseNormalClosure)
			}
		})
	}
}

func TestCloseCodeSeenByClient(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", useTLS), func(t *testing.T) {
			s := newTestServer(t, useTLS)
			client, _, server := s.dialGorilla(t)
			// A long CloseTimeout: Shutdown must end on the client's answer.
			w := New(server, &Options{CloseTimeout: time.Hour})
			defer w.Close()
			appRead := readLoop(t, server)
			read := readInBackground(client)
			ctx := testCtx(t)
			noError(t, asyncio.WriteAll(ctx, w, []byte("last words")), "WriteAll")
			_, err := asyncio.BlockOn(ctx, func(t *asyncio.Task) (asyncio.Async[struct{}], error) {
				return w.ShutdownWith(t, 4001, "going down")
			})
			noError(t, err, "ShutdownWith")

			r := <-read
			r.check(t, []string{"last words"}, 4001)
			var ce *websocket.CloseError
			if errors.As(r.err, &ce) && ce.Text != "going down" {
				t.Errorf("close reason %q, want %q", ce.Text, "going down")
			}
			if err := <-appRead; !websocket.IsCloseError(err, 4001) {
				t.Errorf("application read ended with %v, want the client's answer 4001", err)
			}
			if _, err := w.PollWrite(nil, []byte("late")); !errors.Is(err, asyncio.ErrShutdown) {
				t.Errorf("PollWrite after Shutdown: %v, want ErrShutdown", err)
			}
			for range 2 {
				if r, err := w.Shutdown(nil); err != nil || !r.Ready {
					t.Errorf("Shutdown after completion = %+v, %v; want Ready at once", r, err)
				}
			}
		})
	}
}

func TestPeerClosesFirst(t *testing.T) {
	s := newTestServer(t, false)
	client, _, server := s.dialGorilla(t)
	w := New(server, nil)
	defer w.Close()
	appRead := readLoop(t, server)
	ctx := testCtx(t)
	noError(t, asyncio.WriteAll(ctx, w, []byte("before")), "WriteAll")
	noError(t, asyncio.Flush(ctx, w), "Flush")
	noError(t, client.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseGoingAway, "bye"), time.Now().Add(asynciotest.Timeout)), "client close")

	if err := <-appRead; !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Fatalf("application read ended with %v, want the client's close 1001", err)
	}
	noError(t, asyncio.Shutdown(ctx, w), "Shutdown after the peer's close")
	if _, err := w.Write([]byte("after")); !errors.Is(err, asyncio.ErrShutdown) {
		t.Errorf("Write after the peer's close: %v, want ErrShutdown", err)
	}
	got, err := readAll(client)
	readResult{got, err}.check(t, []string{"before"}, websocket.CloseGoingAway) // the writer echoes the code
}

func TestAnswersPings(t *testing.T) {
	s := newTestServer(t, true)
	client, _, server := s.dialGorilla(t)
	w := New(server, nil)
	defer w.Close()
	readLoop(t, server)
	pong := make(chan string, 1)
	client.SetPongHandler(func(data string) error { pong <- data; return nil })
	read := readInBackground(client)
	noError(t, client.WriteControl(websocket.PingMessage, []byte("are you there"), time.Now().Add(asynciotest.Timeout)), "ping")
	select {
	case got := <-pong:
		if got != "are you there" {
			t.Errorf("pong %q, want the ping's payload", got)
		}
	case <-time.After(asynciotest.Timeout):
		t.Fatal("no pong")
	}
	noError(t, asyncio.Shutdown(testCtx(t), w), "Shutdown")
	(<-read).check(t, nil, websocket.CloseNormalClosure)
}

func TestBadInputIsNotSticky(t *testing.T) {
	s := newTestServer(t, false)
	client, _, server := s.dialGorilla(t)
	w := New(server, &Options{ReadClose: true})
	defer w.Close()
	for _, tc := range []struct {
		name string
		poll func() error
	}{
		{"close message type", func() error {
			_, err := w.PollWriteMessage(nil, websocket.CloseMessage, nil)
			return err
		}},
		{"unknown message type", func() error {
			_, err := w.PollWriteMessage(nil, 42, []byte("x"))
			return err
		}},
		{"ping longer than 125 bytes", func() error {
			_, err := w.PollWriteMessage(nil, websocket.PingMessage, make([]byte, 126))
			return err
		}},
		{"nil prepared message", func() error {
			_, err := w.PollWritePrepared(nil, nil)
			return err
		}},
		{"reserved close code", func() error {
			_, err := w.ShutdownWith(nil, websocket.CloseAbnormalClosure, "")
			return err
		}},
		{"close reason too long", func() error {
			_, err := w.ShutdownWith(nil, websocket.CloseNormalClosure, strings.Repeat("r", 124))
			return err
		}},
		{"close reason not UTF-8", func() error {
			_, err := w.ShutdownWith(nil, websocket.CloseNormalClosure, "\xff")
			return err
		}},
	} {
		if err := tc.poll(); err == nil || !strings.HasPrefix(err.Error(), "gorillaws: ") {
			t.Errorf("%s: %v, want a gorillaws error", tc.name, err)
		}
	}

	var pings []string
	client.SetPingHandler(func(data string) error { pings = append(pings, data); return nil })
	read := readInBackground(client)
	ctx := testCtx(t)
	_, err := asyncio.BlockOn(ctx, func(t *asyncio.Task) (asyncio.Async[int], error) {
		return w.PollWriteMessage(t, websocket.PingMessage, []byte("app ping"))
	})
	noError(t, err, "ping")
	noError(t, asyncio.WriteAll(ctx, w, []byte("still works")), "WriteAll")
	_, err = asyncio.BlockOn(ctx, func(t *asyncio.Task) (asyncio.Async[int], error) {
		return w.PollWriteMessage(t, websocket.TextMessage, nil)
	})
	noError(t, err, "empty message")
	noError(t, asyncio.Shutdown(ctx, w), "Shutdown")
	(<-read).check(t, []string{"still works", ""}, websocket.CloseNormalClosure)
	if !slices.Equal(pings, []string{"app ping"}) {
		t.Errorf("client saw pings %q, want the application's one", pings)
	}
}

// pipePair returns both ends of a gorilla connection over net.Pipe, for
// tests in a synctest bubble, where time is virtual and every wait on the
// pipe is durably blocking.
func pipePair(t *testing.T) (server, client *websocket.Conn) {
	t.Helper()
	sc, cc := net.Pipe()
	var serr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		br := bufio.NewReader(sc)
		req, err := http.ReadRequest(br)
		if err != nil {
			serr = err
			return
		}
		hj := &pipeHijacker{conn: sc, brw: bufio.NewReadWriter(br, bufio.NewWriter(sc)), h: http.Header{}}
		server, serr = (&websocket.Upgrader{}).Upgrade(hj, req, nil)
	}()
	d := websocket.Dialer{NetDialContext: func(context.Context, string, string) (net.Conn, error) { return cc, nil }}
	client, _, err := d.Dial("ws://pipe/", nil)
	<-done
	noError(t, err, "dial over a pipe")
	noError(t, serr, "upgrade over a pipe")
	t.Cleanup(func() {
		client.Close()
		server.Close()
	})
	return server, client
}

// pipeHijacker is the http.ResponseWriter that gorilla's Upgrader needs,
// over one end of a pipe.
type pipeHijacker struct {
	conn net.Conn
	brw  *bufio.ReadWriter
	h    http.Header
}

func (h *pipeHijacker) Header() http.Header         { return h.h }
func (h *pipeHijacker) Write(p []byte) (int, error) { return len(p), nil }
func (h *pipeHijacker) WriteHeader(int)             {}
func (h *pipeHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return h.conn, h.brw, nil
}

func TestWriteTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		server, _ := pipePair(t) // the client never reads
		w := New(server, &Options{WriteTimeout: 2 * time.Second})
		defer w.Close()
		for _, n := range []int{100, 200} {
			_, err := w.Write(make([]byte, n))
			noError(t, err, "Write")
		}
		start := time.Now()
		err := asyncio.Flush(context.Background(), w)
		if !errors.Is(err, os.ErrDeadlineExceeded) || !strings.Contains(err.Error(), "300 bytes undelivered") {
			t.Fatalf("Flush to a stalled peer: %v, want os.ErrDeadlineExceeded saying 300 bytes undelivered", err)
		}
		if d := time.Since(start); d != 2*time.Second {
			t.Errorf("Flush failed after %v, want the 2s WriteTimeout", d)
		}
		if n, q := w.Undelivered(), w.Queued(); n != 300 || q != 0 {
			t.Errorf("Undelivered %d, Queued %d; want 300, 0", n, q)
		}
		for i := range 2 {
			if _, err := w.Write([]byte("x")); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("Write #%d after the timeout: %v, want the same error", i+1, err)
			}
			if _, err := w.Shutdown(nil); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("Shutdown #%d after the timeout: %v, want the same error", i+1, err)
			}
		}
	})
}

func TestCloseTimeout(t *testing.T) {
	for _, tc := range []struct {
		name      string
		readClose bool
		answer    bool // the client answers the close frame
		want      time.Duration
	}{
		{"app reads/none", false, true, 5 * time.Second}, // no read loop runs: the answer is never read
		{"writer reads/answer", true, true, 0},
		{"writer reads/silence", true, false, 5 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				server, client := pipePair(t)
				if !tc.answer {
					client.SetCloseHandler(func(int, string) error { return nil })
				}
				read := readInBackground(client)
				w := New(server, &Options{ReadClose: tc.readClose})
				defer w.Close()
				start := time.Now()
				noError(t, asyncio.Shutdown(context.Background(), w), "Shutdown")
				if d := time.Since(start); d != tc.want {
					t.Errorf("Shutdown took %v, want %v", d, tc.want)
				}
				(<-read).check(t, nil, websocket.CloseNormalClosure)
				if _, err := server.NetConn().Write([]byte{0}); !errors.Is(err, io.ErrClosedPipe) {
					t.Errorf("write after Shutdown: %v; want the connection closed", err)
				}
			})
		})
	}
}

func TestLargeMessageOnlyWhenEmpty(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		server, client := pipePair(t)
		w := New(server, &Options{QueueBytes: 1000})
		defer w.Close()
		poll := func(task *asyncio.Task, p []byte) bool {
			t.Helper()
			r, err := w.PollWriteMessage(task, websocket.BinaryMessage, p)
			noError(t, err, "PollWriteMessage")
			return r.Ready
		}
		read := func(want []byte) {
			t.Helper()
			if _, p, err := client.ReadMessage(); err != nil || !bytes.Equal(p, want) {
				t.Fatalf("client read %d bytes, %v; want %d bytes", len(p), err, len(want))
			}
		}
		if !poll(nil, []byte("small")) {
			t.Fatal("first message NotReady")
		}
		synctest.Wait() // the writer goroutine is stuck writing it: the client does not read

		var woken atomic.Int32
		task := asyncio.NewTask(func() { woken.Add(1) })
		big := bytes.Repeat([]byte("B"), 5000)
		if poll(task, big) {
			t.Fatal("a message larger than the budget was accepted beside another one")
		}
		if q, a := w.Queued(), w.Available(); q != minCost || a != 1000-minCost {
			t.Fatalf("Queued %d, Available %d; want %d, %d", q, a, minCost, 1000-minCost)
		}
		read([]byte("small"))
		synctest.Wait()
		if n := woken.Load(); n != 1 {
			t.Fatalf("task notified %d times once the queue emptied, want 1", n)
		}
		if !poll(task, big) {
			t.Fatal("a message larger than the budget was refused by an empty queue")
		}
		if q, a := w.Queued(), w.Available(); q != 5000 || a > 0 {
			t.Fatalf("Queued %d, Available %d; want 5000 and none", q, a)
		}
		if poll(task, []byte("x")) {
			t.Fatal("a message was accepted beside an oversized one")
		}
		read(big)
		noError(t, asyncio.Flush(context.Background(), w), "Flush")
	})
}

func TestCloseDropsQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		server, _ := pipePair(t) // the client never reads
		w := New(server, nil)
		for _, n := range []int{100, 200, 300} {
			_, err := w.Write(make([]byte, n))
			noError(t, err, "Write")
		}
		synctest.Wait()
		if r, err := w.Shutdown(nil); err != nil || r.Ready {
			t.Fatalf("Shutdown with a stalled peer = %+v, %v; want NotReady", r, err)
		}
		if q := w.Queued(); q != 600 {
			t.Fatalf("Queued %d, want 600", q)
		}
		noError(t, w.Close(), "Close")
		noError(t, w.Close(), "Close again")
		if n, q := w.Undelivered(), w.Queued(); n != 600 || q != 0 {
			t.Errorf("after Close: Undelivered %d, Queued %d; want 600 (the message being written and the queued ones), 0", n, q)
		}
		if _, err := w.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Write after Close: %v, want net.ErrClosed", err)
		}
		if _, err := w.Shutdown(nil); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Shutdown cut short by Close: %v, want net.ErrClosed", err)
		}
		if _, err := w.PollFlush(nil); !errors.Is(err, net.ErrClosed) {
			t.Errorf("PollFlush after Close: %v, want net.ErrClosed", err)
		}
	})
}

// BenchmarkWriteMessage128 queues 128-byte messages as fast as a
// gobwas client on loopback drains them: "queue" measures the queue (0
// allocs/op in steady state) and the writer goroutine's throughput;
// "direct" is gorilla's WriteMessage called in the loop, the baseline.
func BenchmarkWriteMessage128(b *testing.B) {
	msg := bytes.Repeat([]byte("m"), 128)
	b.Run("queue", func(b *testing.B) {
		benchConn(b, func(server *websocket.Conn) func() error {
			w := New(server, nil)
			poll := func(t *asyncio.Task) (asyncio.Async[int], error) {
				return w.PollWriteMessage(t, websocket.BinaryMessage, msg)
			}
			ctx := context.Background()
			n := 0
			for b.Loop() {
				if _, err := asyncio.BlockOn(ctx, poll); err != nil {
					b.Fatal(err)
				}
				n++
			}
			if err := asyncio.Flush(ctx, w); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
			return w.Close
		}, len(msg))
	})
	b.Run("direct", func(b *testing.B) {
		benchConn(b, func(server *websocket.Conn) func() error {
			n := 0
			for b.Loop() {
				if err := server.WriteMessage(websocket.BinaryMessage, msg); err != nil {
					b.Fatal(err)
				}
				n++
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
			return server.Close
		}, len(msg))
	})
}

// benchConn runs bench on the server side of a loopback connection whose
// gobwas client reads and discards everything; bench returns what closes
// the server side.
func benchConn(b *testing.B, bench func(server *websocket.Conn) (closeServer func() error), size int) {
	s := newTestServer(b, false)
	conn, r, _, server := s.dialGobwas(b)
	tcpConn(server.NetConn()).SetWriteBuffer(1 << 20) // undo newTestServer's stall-friendly size
	var readers sync.WaitGroup
	readers.Go(func() {
		buf := make([]byte, 64<<10)
		for {
			if _, err := r.Read(buf); err != nil {
				return
			}
		}
	})
	b.SetBytes(int64(size))
	b.ReportAllocs()
	closeServer := bench(server)
	closeServer()
	conn.Close()
	readers.Wait()
}
