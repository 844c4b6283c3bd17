package wsconn

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pollws/pollws/internal/socket"
)

// listenServerT serves echoHandler with Reactor.ServeListener on a
// loopback port: ends receives each connection's end, served each
// upgraded request (unless the options have a Handler), for up to 10,000
// connections: handlers must not block.
type listenServerT struct {
	r      *Reactor
	ln     net.Listener
	addr   string
	ends   chan error
	served chan *http.Request
	ret    chan error // ServeListener's result
}

func newListenServer(t *testing.T, o *ListenOptions) *listenServerT {
	t.Helper()
	r, err := NewReactor(nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &listenServerT{r: r, ln: ln, addr: ln.Addr().String(), ends: make(chan error, 10000), served: make(chan *http.Request, 10000), ret: make(chan error, 1)}
	if o == nil {
		o = &ListenOptions{}
	}
	if o.Handler == nil {
		o.Handler = func(c *Conn, req *http.Request) Handler {
			s.served <- req
			return &echoHandler{c: c}
		}
	}
	o.Done = func(c *Conn, err error) { s.ends <- err }
	go func() { s.ret <- r.ServeListener(ln, o) }()
	t.Cleanup(func() {
		ln.Close()
		if err := <-s.ret; !errors.Is(err, net.ErrClosed) {
			t.Errorf("ServeListener returned %v, want net.ErrClosed", err)
		}
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// TestServeListenerEcho: clients upgraded by ServeListener are served by
// their handlers, which see the request, and end with the peer's close;
// subprotocols and compression are negotiated as Upgrade does.
func TestServeListenerEcho(t *testing.T) {
	const clients, msgs = 20, 50
	s := newListenServer(t, &ListenOptions{UpgradeOptions: UpgradeOptions{
		Protocols: []string{"chat"},
		Options:   Options{Compression: &CompressionOptions{MinSize: -1}},
	}})
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			d := websocket.Dialer{Subprotocols: []string{"other", "chat"}, EnableCompression: i%2 == 0}
			c, resp, err := d.Dial(fmt.Sprintf("ws://%s/room/%d?x=1", s.addr, i), http.Header{"X-Client": {"t"}})
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			if c.Subprotocol() != "chat" {
				t.Errorf("subprotocol %q, want chat", c.Subprotocol())
			}
			if got := strings.Contains(resp.Header.Get("Sec-WebSocket-Extensions"), "permessage-deflate"); got != (i%2 == 0) {
				t.Errorf("client %d: compression agreed: %v", i, got)
			}
			for j := range msgs {
				want := fmt.Appendf(nil, "%d/%d %s", i, j, strings.Repeat("y", j*41))
				if err := c.WriteMessage(websocket.TextMessage, want); err != nil {
					t.Error(err)
					return
				}
				_, p, err := c.ReadMessage()
				if err != nil || !bytes.Equal(p, want) {
					t.Errorf("client %d message %d: %q, %v", i, j, p, err)
					return
				}
			}
			closeWith4000(t, c, i)
		})
	}
	wg.Wait()
	for range clients {
		req := <-s.served
		if !strings.HasPrefix(req.URL.Path, "/room/") || req.URL.Query().Get("x") != "1" || req.Header.Get("X-Client") != "t" || req.RemoteAddr == "" {
			t.Errorf("the handler saw the request %s %v from %q", req.URL, req.Header, req.RemoteAddr)
		}
		var ce *CloseError
		if err := <-s.ends; !errors.As(err, &ce) || ce.Code != 4000 {
			t.Errorf("handler ended with %v, want the peer's close 4000", err)
		}
	}
}

// rawExchange sends req on a new connection to addr and returns all the
// server answers until it closes the connection.
func rawExchange(t *testing.T, addr, req string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading the answer: %v (so far %q)", err, b)
	}
	return string(b)
}

// TestServeListenerRefusals: each malformed or refused handshake gets its
// status and the connection closes after the answer; the server serves
// the next client as before.
func TestServeListenerRefusals(t *testing.T) {
	s := newListenServer(t, &ListenOptions{MaxHeaderBytes: 1024})
	const key = "dGhlIHNhbXBsZSBub25jZQ=="
	ws := func(method, extra string) string {
		return method + " /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Version: 13\r\n" + extra + "\r\n"
	}
	for _, tc := range []struct {
		name, req, status, header string
	}{
		{"page", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "426", "Upgrade: websocket"},
		{"post", ws("POST", "Sec-WebSocket-Key: "+key+"\r\n"), "405", "Allow: GET"},
		{"no key", ws("GET", ""), "400", ""},
		{"bad key", ws("GET", "Sec-WebSocket-Key: short\r\n"), "400", ""},
		{"origin", ws("GET", "Sec-WebSocket-Key: "+key+"\r\nOrigin: http://elsewhere\r\n"), "403", ""},
		{"garbage", "HELLO\r\n\r\n", "400", ""},
		{"HTTP/2 line", "GET /ws HTTP/2.0\r\nHost: x\r\n\r\n", "400", "HTTP/2.0 request line"},
		{"too large", ws("GET", "Sec-WebSocket-Key: "+key+"\r\nX-Big: "+strings.Repeat("b", 2000)+"\r\n"), "431", ""},
	} {
		got := rawExchange(t, s.addr, tc.req)
		if !strings.HasPrefix(got, "HTTP/1.1 "+tc.status+" ") || !strings.Contains(got, tc.header) {
			t.Errorf("%s: answered %q, want %s with %q", tc.name, got, tc.status, tc.header)
		}
		if tc.status != "426" && !strings.Contains(got, "Connection: close") {
			t.Errorf("%s: answered %q without Connection: close", tc.name, got)
		}
	}
	// The server goes on.
	c, _, err := websocket.DefaultDialer.Dial("ws://"+s.addr+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

// TestServeListenerHandshakeTimeout: a client that sends half a request,
// or nothing, loses its connection when HandshakeTimeout has passed.
func TestServeListenerHandshakeTimeout(t *testing.T) {
	s := newListenServer(t, &ListenOptions{HandshakeTimeout: 200 * time.Millisecond})
	for _, part := range []string{"", "GET /ws HTTP/1.1\r\nHost: x\r\n"} {
		start := time.Now()
		got := rawExchange(t, s.addr, part)
		if got != "" {
			t.Errorf("sent %q: answered %q, want the connection closed", part, got)
		}
		if d := time.Since(start); d < 200*time.Millisecond {
			t.Errorf("sent %q: closed after %v, before the timeout", part, d)
		}
	}
}

// TestServeListenerFramesWithRequest: frames the client sends in the
// same packet as its request are its first messages.
func TestServeListenerFramesWithRequest(t *testing.T) {
	s := newListenServer(t, nil)
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
	if _, err := c.Write(append([]byte(req), append(maskedFrame([]byte("one")), maskedFrame([]byte("two"))...)...)); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("answer %v, %v", resp, err)
	}
	for _, want := range []string{"one", "two"} {
		f := make([]byte, 2+len(want))
		if _, err := io.ReadFull(br, f); err != nil || string(f[2:]) != want {
			t.Fatalf("echo %q, %v; want %q", f, err, want)
		}
	}
}

// TestServeListenerNoGoroutinePerHandshake: connections whose handshake
// has not come hold no goroutine, and neither do the upgraded ones.
func TestServeListenerNoGoroutinePerHandshake(t *testing.T) {
	const n = 300
	s := newListenServer(t, nil)
	base := runtime.NumGoroutine()
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range n {
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	// Nothing tells when the server has accepted them all: wait until the
	// reactor watches them.
	deadline := time.Now().Add(10 * time.Second)
	for s.r.r.Len() < n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := s.r.r.Len(); got < n {
		t.Fatalf("the reactor watches %d connections, want %d", got, n)
	}
	if g := runtime.NumGoroutine(); g > base+10 {
		t.Errorf("%d goroutines with %d handshakes pending, %d before", g, n, base)
	}
	// Half of them upgrade and idle.
	for _, c := range conns[:n/2] {
		fmt.Fprintf(c, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	}
	for range n / 2 {
		<-s.served
	}
	if g := runtime.NumGoroutine(); g > base+10 {
		t.Errorf("%d goroutines with %d connections upgraded, %d before", g, n/2, base)
	}
}

// TestServeListenerWithoutReactorSocket: where the reactor cannot watch a
// connection, its handshake is read on a goroutine, with the same
// answers and the same Conn.
func TestServeListenerWithoutReactorSocket(t *testing.T) {
	r, err := NewReactor(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ends := make(chan error, 2)
	timed := make(chan bool, 2)
	l := &listenServer{r: r, timeout: 5 * time.Second, max: 1024, o: &ListenOptions{
		Handler: func(c *Conn, req *http.Request) Handler {
			// No reactor watches a pipe: its pings need a timer of its own.
			c.mu.Lock()
			b := c.blk.Load()
			timed <- b != nil && b.timer != nil
			c.mu.Unlock()
			return &echoHandler{c: c}
		},
		Done: func(c *Conn, err error) { ends <- err },
	}}
	for _, tc := range []struct{ req, status string }{
		{"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", "101"},
		{"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", "400"},
	} {
		server, client := net.Pipe()
		go l.block(server)
		go io.WriteString(client, tc.req+string(maskedFrame([]byte("hi"))))
		br := bufio.NewReader(client)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || fmt.Sprint(resp.StatusCode) != tc.status {
			t.Fatalf("answer %v, %v; want %s", resp, err, tc.status)
		}
		if tc.status == "101" {
			f := make([]byte, 4)
			if _, err := io.ReadFull(br, f); err != nil || string(f[2:]) != "hi" {
				t.Fatalf("echo %q, %v", f, err)
			}
		}
		client.Close()
	}
	if err := <-ends; err == nil {
		t.Error("the connection's handler ended without error when its peer vanished")
	}
	if !<-timed {
		t.Error("a connection served without a socket has no timer for its pings and idle timeout")
	}
}

// TestServeListenerRejectsOtherListeners: ServeListener needs a TCP
// listener.
func TestServeListenerRejectsOtherListeners(t *testing.T) {
	r, err := NewReactor(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ln, err := net.Listen("unix", t.TempDir()+"/s")
	if err != nil {
		t.Skip(err)
	}
	defer ln.Close()
	if err := r.ServeListener(ln, nil); err == nil {
		t.Error("ServeListener of a Unix listener succeeded")
	}
}

// A connection whose handshake the reactor read keeps the handshake's
// registration: its socket never leaves the reactor's set, not even
// while the handler for it is chosen (when the handshake's deadline still
// runs), and is not added to it again.
func TestServeListenerKeepsTheHandshakesRegistration(t *testing.T) {
	var server atomic.Pointer[listenServerT]
	during := make(chan [2]int, 1)
	s := newListenServer(t, &ListenOptions{Handler: func(c *Conn, _ *http.Request) Handler {
		r := server.Load().r.r
		during <- [2]int{r.Len(), r.Timers()}
		return &echoHandler{c: c}
	}})
	server.Store(s)
	if s.r.r == nil {
		t.Skip("no reactor on this system")
	}
	c, _, err := websocket.DefaultDialer.Dial("ws://"+s.addr+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := <-during; got != [2]int{1, 1} {
		t.Errorf("while the handler was chosen: %d registrations, %d deadlines; want the handshake's, 1 and 1", got[0], got[1])
	}
	if err := c.WriteMessage(websocket.TextMessage, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if _, m, err := c.ReadMessage(); err != nil || string(m) != "hi" {
		t.Fatalf("echo %q, %v", m, err)
	}
	if n := s.r.r.Len(); n != 1 {
		t.Errorf("%d registrations once served, want 1", n)
	}
}

// A connection of NewListener's whose handshake the reactor read is
// detached all the same: the handshake's registration is closed, not
// handed over, as the Conn's descriptor changes.
func TestServeListenerDetachesNewListenerConnections(t *testing.T) {
	r := epollReactor(t)
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := NewListener(tcp, nil)
	if err != nil {
		t.Fatal(err)
	}
	transports := make(chan net.Conn, 1)
	ret := make(chan error, 1)
	go func() {
		ret <- r.ServeListener(ln, &ListenOptions{Handler: func(c *Conn, _ *http.Request) Handler {
			return &echoHandler{c: c}
		}, Done: func(c *Conn, _ error) { transports <- c.out.Conn() }})
	}()
	defer func() {
		ln.Close()
		<-ret
	}()
	c, _, err := websocket.DefaultDialer.Dial("ws://"+tcp.Addr().String()+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WriteMessage(websocket.TextMessage, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if _, m, err := c.ReadMessage(); err != nil || string(m) != "hi" {
		t.Fatalf("echo %q, %v", m, err)
	}
	if n := r.r.Len(); n != 1 {
		t.Errorf("%d registrations, want the connection's", n)
	}
	closeWith4000(t, c, 0)
	c.Close()
	if tr := <-transports; reflect.TypeOf(tr) != reflect.TypeFor[*socket.Stream]() {
		t.Fatalf("served over a %T, want a detached *socket.Stream", tr)
	}
}
