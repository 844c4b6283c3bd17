package wsconn

import (
	"bufio"
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pollws/pollws/asyncio/asynciotest"
	"github.com/pollws/pollws/wsconn/gorillaws"
)

// The Pump's tests run over gorillaws's writer, which lives in a package
// of its own so that wsconn does not import gorilla/websocket; these
// names keep them as they were written.
type GorillaOptions = gorillaws.Options

var NewGorillaWriter = gorillaws.New

// Socket buffer sizes of test connections: small, so that a peer that does
// not read stalls the writer quickly. (A receive buffer much smaller than
// the loopback MSS stalls Linux TCP for seconds, so the client's is larger.)
const (
	gwSockSend = 4 << 10  // the server's send and receive buffers
	gwSockRecv = 32 << 10 // the client's receive buffer
)

// gwServer is a loopback HTTP server (TLS or not) that upgrades every
// request with gorilla and hands the server side of the connection over.
type gwServer struct {
	srv   *httptest.Server
	conns chan *websocket.Conn
}

func newGWServer(t testing.TB, useTLS bool) *gwServer {
	s := &gwServer{conns: make(chan *websocket.Conn, 256)}
	var up websocket.Upgrader
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		tc := gwTCP(c.NetConn())
		tc.SetWriteBuffer(gwSockSend)
		tc.SetReadBuffer(gwSockSend) // the client only sends control frames
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

func (s *gwServer) url() string { return "ws" + strings.TrimPrefix(s.srv.URL, "http") }

func (s *gwServer) tlsConfig() *tls.Config {
	if s.srv.TLS == nil {
		return nil
	}
	return s.srv.Client().Transport.(*http.Transport).TLSClientConfig
}

// accept returns the server side of the connection dialed last.
func (s *gwServer) accept(t testing.TB) *websocket.Conn {
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
func gwNetDial(raw **net.TCPConn) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		tc := c.(*net.TCPConn)
		tc.SetReadBuffer(gwSockRecv)
		*raw = tc
		return c, nil
	}
}

// dialGorilla connects a gorilla client and returns it, its TCP
// connection, and the server side.
func (s *gwServer) dialGorilla(t testing.TB) (client *websocket.Conn, raw *net.TCPConn, server *websocket.Conn) {
	t.Helper()
	d := websocket.Dialer{NetDialContext: gwNetDial(&raw), TLSClientConfig: s.tlsConfig(), ReadBufferSize: 4096}
	client, _, err := d.Dial(s.url(), nil)
	gwNoError(t, err, "gorilla dial")
	t.Cleanup(func() { client.Close() })
	return client, raw, s.accept(t)
}

func gwTCP(c net.Conn) *net.TCPConn {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	return c.(*net.TCPConn)
}

// gwReadAll reads messages from c until it fails and returns their
// payloads and the error.
func gwReadAll(c *websocket.Conn) ([]string, error) {
	var got []string
	for {
		_, p, err := c.ReadMessage()
		if err != nil {
			return got, err
		}
		got = append(got, string(p))
	}
}

// gwNoError fails the test when err is not nil.
func gwNoError(t testing.TB, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func gwCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), asynciotest.Timeout)
	t.Cleanup(cancel)
	return ctx
}

// gwReadInBackground reads c with gwReadAll in a goroutine; the result
// arrives on the channel.
func gwReadInBackground(c *websocket.Conn) <-chan gwReadResult {
	res := make(chan gwReadResult, 1)
	go func() {
		got, err := gwReadAll(c)
		res <- gwReadResult{got, err}
	}()
	return res
}

type gwReadResult struct {
	got []string
	err error
}

// check fails the test unless the client received want and then the
// writer's close frame with code.
func (r gwReadResult) check(t testing.TB, want []string, code int) {
	t.Helper()
	if !slices.Equal(r.got, want) {
		t.Errorf("client received %d messages %.200q, want %d %.200q", len(r.got), r.got, len(want), want)
	}
	if !websocket.IsCloseError(r.err, code) {
		t.Errorf("client read ended with %v, want a close frame with code %d", r.err, code)
	}
}

// gwPipe returns both ends of a gorilla connection over net.Pipe, for
// tests in a synctest bubble, where time is virtual and every wait on the
// pipe is durably blocking.
func gwPipe(t *testing.T) (server, client *websocket.Conn) {
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
		hj := &gwHijacker{conn: sc, brw: bufio.NewReadWriter(br, bufio.NewWriter(sc)), h: http.Header{}}
		server, serr = (&websocket.Upgrader{}).Upgrade(hj, req, nil)
	}()
	d := websocket.Dialer{NetDialContext: func(context.Context, string, string) (net.Conn, error) { return cc, nil }}
	client, _, err := d.Dial("ws://pipe/", nil)
	<-done
	gwNoError(t, err, "dial over a pipe")
	gwNoError(t, serr, "upgrade over a pipe")
	t.Cleanup(func() {
		client.Close()
		server.Close()
	})
	return server, client
}

// gwHijacker is the http.ResponseWriter that gorilla's Upgrader needs,
// over one end of a pipe.
type gwHijacker struct {
	conn net.Conn
	brw  *bufio.ReadWriter
	h    http.Header
}

func (h *gwHijacker) Header() http.Header         { return h.h }
func (h *gwHijacker) Write(p []byte) (int, error) { return len(p), nil }
func (h *gwHijacker) WriteHeader(int)             {}
func (h *gwHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return h.conn, h.brw, nil
}
