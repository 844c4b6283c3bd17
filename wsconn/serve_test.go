package wsconn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/gorilla/websocket"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/internal/socket"
	"github.com/pollws/pollws/wsconn/internal/wstest"
)

// echoHandler echoes every message with its type: a Handler's state
// machine, which reads only once the last echo was taken.
type echoHandler struct {
	c       *Conn
	m       Message
	pending bool
}

func (e *echoHandler) Poll(t *asyncio.Task) (asyncio.Async[struct{}], error) {
	for {
		if e.pending {
			r, err := e.c.PollWriteMessage(t, e.m.Type, e.m.Data)
			if err != nil || !r.Ready {
				return asyncio.NotReady[struct{}](), err
			}
			e.m, e.pending = Message{}, false // the message was the connection's to lend until the next read
		}
		r, err := e.c.PollReadMessage(t)
		if err != nil || !r.Ready {
			return asyncio.NotReady[struct{}](), err
		}
		e.m, e.pending = r.Value, true
	}
}

// closeWith4000 closes client i's connection c with status 4000 and
// checks that the server echoes it.
func closeWith4000(t *testing.T, c *websocket.Conn, i int) {
	t.Helper()
	c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4000, "bye"))
	_, _, err := c.ReadMessage()
	if ce := new(websocket.CloseError); !errors.As(err, &ce) || ce.Code != 4000 {
		t.Errorf("client %d: after its close, read %v; want the echo of 4000", i, err)
	}
}

// reactorServer serves echoHandler on a Reactor; ends receives each
// connection's end.
type reactorServer struct {
	*httptest.Server
	r    *Reactor
	ends chan error
}

func newReactorServer(t *testing.T, o *Options) *reactorServer {
	t.Helper()
	r, err := NewReactor(nil)
	if err != nil {
		t.Fatal(err)
	}
	s := &reactorServer{r: r, ends: make(chan error, 10000)}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var uo *UpgradeOptions
		if o != nil {
			uo = &UpgradeOptions{Options: *o}
		}
		c, err := Upgrade(w, req, uo)
		if err != nil {
			return
		}
		if err := r.Serve(c, &echoHandler{c: c}, func(err error) { s.ends <- err }); err != nil {
			t.Error(err)
		}
	}))
	t.Cleanup(func() {
		s.Server.Close()
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func (s *reactorServer) url() string { return "ws" + strings.TrimPrefix(s.URL, "http") }

func TestReactorEcho(t *testing.T) {
	const clients, msgs = 50, 200
	s := newReactorServer(t, nil)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			c, _, err := websocket.DefaultDialer.Dial(s.url(), nil)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			go func() {
				for j := range msgs {
					typ := websocket.BinaryMessage
					if j%2 == 0 {
						typ = websocket.TextMessage
					}
					if err := c.WriteMessage(typ, fmt.Appendf(nil, "%d/%d %s", i, j, strings.Repeat("x", j*37))); err != nil {
						return
					}
				}
			}()
			for j := range msgs {
				typ, p, err := c.ReadMessage()
				want := fmt.Appendf(nil, "%d/%d %s", i, j, strings.Repeat("x", j*37))
				if err != nil || !bytes.Equal(p, want) || (typ == websocket.TextMessage) != (j%2 == 0) {
					t.Errorf("client %d message %d: %d %q, %v", i, j, typ, p, err)
					return
				}
			}
			closeWith4000(t, c, i)
		})
	}
	wg.Wait()
	for range clients {
		select {
		case err := <-s.ends:
			var ce *CloseError
			if !errors.As(err, &ce) || ce.Code != 4000 {
				t.Errorf("handler ended with %v, want the peer's close 4000", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a handler did not end")
		}
	}
}

// TestReactorHandlerReadyCloses: a handler that answers Ready has its
// connection closed with 1000 after what it wrote.
func TestReactorHandlerReadyCloses(t *testing.T) {
	r, err := NewReactor(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s, cl := wstest.TCPPair(t, false)
	gc, err := wstest.UpgradeGorilla(s, cl)
	if err != nil {
		t.Fatal(err)
	}
	c := Server(s, nil)
	sent := false
	done := make(chan error, 1)
	h := HandlerFunc(func(t *asyncio.Task) (asyncio.Async[struct{}], error) {
		if !sent {
			if r, err := c.PollWriteMessage(t, Text, []byte("only this")); err != nil || !r.Ready {
				return asyncio.NotReady[struct{}](), err
			}
			sent = true
		}
		return asyncio.Ready(struct{}{}), nil
	})
	if err := r.Serve(c, h, func(err error) { done <- err }); err != nil {
		t.Fatal(err)
	}
	if typ, p, err := gc.ReadMessage(); err != nil || typ != websocket.TextMessage || string(p) != "only this" {
		t.Fatalf("client read %d %q, %v", typ, p, err)
	}
	_, _, err = gc.ReadMessage() // answers the close
	if ce := new(websocket.CloseError); !errors.As(err, &ce) || ce.Code != 1000 {
		t.Fatalf("client read %v, want close 1000", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("done(%v), want nil", err)
	}
}

// TestReactorStalledPeerStopsReading: a client that writes and never
// reads fills the server's buffer; the handler's writes answer NotReady,
// it stops reading, and TCP holds the client back: the server holds no
// more than its buffer and the message in hand.
func TestReactorStalledPeerStopsReading(t *testing.T) {
	s := newReactorServer(t, &Options{BufferSize: 16 << 10})
	raw, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.(*net.TCPConn).SetReadBuffer(16 << 10)
	gc, _, err := gorillaOver(raw, s.url())
	if err != nil {
		t.Fatal(err)
	}
	raw.(*net.TCPConn).SetWriteBuffer(16 << 10)
	// What may be in flight when TCP holds the client back: the kernel's
	// queues of both sockets, at most their limits, the server's buffer,
	// read buffer and the message in hand.
	limit := kernelQueueMax() + 1<<20
	msg := bytes.Repeat([]byte("m"), 4096)
	written := 0
	gc.SetWriteDeadline(time.Now().Add(2 * time.Second))
	for {
		if err := gc.WriteMessage(websocket.BinaryMessage, msg); err != nil {
			if ne := net.Error(nil); !errors.As(err, &ne) || !ne.Timeout() {
				t.Fatalf("after %d messages: %v; want the write to wait until its deadline", written, err)
			}
			break // the server stopped reading: TCP pushes back
		}
		written++
		if written*len(msg) > limit {
			t.Fatalf("the server took %d bytes from a client that reads nothing; the kernel's queues and its buffers hold %d", written*len(msg), limit)
		}
	}
	t.Logf("the client wrote %d messages of 4 KiB before TCP held it back", written)
}

// kernelQueueMax is the most a loopback TCP connection's kernel queues
// may hold, both ways: the largest receive and send buffers TCP grows
// to (net.ipv4.tcp_rmem and tcp_wmem), twice. 64 MiB where they cannot
// be read.
func kernelQueueMax() int {
	n := 0
	for _, f := range []string{"/proc/sys/net/ipv4/tcp_rmem", "/proc/sys/net/ipv4/tcp_wmem"} {
		b, err := os.ReadFile(f)
		fields := strings.Fields(string(b))
		if err != nil || len(fields) != 3 {
			return 64 << 20
		}
		m, err := strconv.Atoi(fields[2])
		if err != nil {
			return 64 << 20
		}
		n += 2 * m
	}
	return n
}

// TestReactorPeerResets: a client that vanishes (a reset, with echoes
// unread) ends its handler promptly, whether the handler waits to read
// or to write.
func TestReactorPeerResets(t *testing.T) {
	for _, stalled := range []bool{false, true} {
		t.Run(fmt.Sprint("stalled=", stalled), func(t *testing.T) {
			s := newReactorServer(t, &Options{BufferSize: 16 << 10})
			raw, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			tc := raw.(*net.TCPConn)
			tc.SetReadBuffer(8 << 10)
			gc, _, err := gorillaOver(raw, s.url())
			if err != nil {
				t.Fatal(err)
			}
			if stalled {
				msg := bytes.Repeat([]byte("m"), 4096)
				gc.SetWriteDeadline(time.Now().Add(time.Second))
				for gc.WriteMessage(websocket.BinaryMessage, msg) == nil {
				}
			} else {
				gc.WriteMessage(websocket.TextMessage, []byte("hi"))
				gc.ReadMessage()
			}
			tc.SetLinger(0)
			tc.Close()
			select {
			case err := <-s.ends:
				t.Logf("handler ended with %v", err)
			case <-time.After(10 * time.Second):
				t.Fatal("the handler did not end after its peer reset the connection")
			}
		})
	}
}

// TestReactorTLS serves WebSockets over TLS on connections of
// NewListener: crypto/tls reads without parking and writes into the send
// queue, so the reactor drives them with no goroutine per connection.
func TestReactorTLS(t *testing.T) {
	const clients, msgs = 20, 100
	r, err := NewReactor(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ends := make(chan error, clients)
	var nonblocking atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		c, err := Upgrade(w, req, nil)
		if err != nil {
			return
		}
		if c.tls != nil {
			nonblocking.Add(1)
		}
		r.Serve(c, &echoHandler{c: c}, func(err error) { ends <- err })
	}))
	ln, err := NewListener(srv.Listener, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv.Listener = ln
	srv.TLS = connServerTLS(t)
	srv.StartTLS()
	defer srv.Close()
	d := websocket.Dialer{TLSClientConfig: connClientTLS(t)}
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			c, _, err := d.Dial("wss"+strings.TrimPrefix(srv.URL, "https"), nil)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			go func() {
				for j := range msgs {
					if c.WriteMessage(websocket.BinaryMessage, fmt.Appendf(nil, "%d/%d %s", i, j, strings.Repeat("x", j*300))) != nil {
						return
					}
				}
			}()
			for j := range msgs {
				_, p, err := c.ReadMessage()
				if want := fmt.Appendf(nil, "%d/%d %s", i, j, strings.Repeat("x", j*300)); err != nil || !bytes.Equal(p, want) {
					t.Errorf("client %d message %d: %d bytes, %v", i, j, len(p), err)
					return
				}
			}
			c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""))
			if _, _, err := c.ReadMessage(); !websocket.IsCloseError(err, 1000) {
				t.Errorf("client %d: after its close, %v", i, err)
			}
		})
	}
	wg.Wait()
	for range clients {
		select {
		case err := <-ends:
			if !isCloseError(err) {
				t.Errorf("handler ended with %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a handler did not end")
		}
	}
	if n := nonblocking.Load(); n != clients {
		t.Errorf("%d of %d connections ran TLS over the non-blocking socket", n, clients)
	}
}

// gorillaOver opens a gorilla client to url over the connection raw,
// whose socket the test set up.
func gorillaOver(raw net.Conn, url string) (*websocket.Conn, *http.Response, error) {
	d := websocket.Dialer{
		NetDialContext:  func(context.Context, string, string) (net.Conn, error) { return raw, nil },
		ReadBufferSize:  1024,
		WriteBufferSize: 1024,
	}
	return d.Dial(url, nil)
}

// TestReactorKeepalive: a served connection's pings and idle timeout run
// on its reactor's deadlines, not on a runtime timer of its own.
func TestReactorKeepalive(t *testing.T) {
	const ping, idle = 20 * time.Millisecond, 150 * time.Millisecond
	s := newReactorServer(t, &Options{PingInterval: ping, IdleTimeout: idle})

	// A client that answers: pings keep coming, one deadline after the
	// other, and the connection lives past the idle timeout.
	live, _, err := websocket.DefaultDialer.Dial(s.url(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	pings := make(chan struct{}, 100)
	live.SetPingHandler(func(data string) error {
		pings <- struct{}{}
		return live.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	ended := make(chan error, 1)
	go func() {
		for {
			if _, _, err := live.ReadMessage(); err != nil {
				ended <- err
				return
			}
		}
	}()
	start := time.Now()
	for i := range 10 {
		select {
		case <-pings:
		case <-time.After(10 * time.Second):
			t.Fatalf("ping %d did not come", i)
		}
		if i == 0 {
			// Between a deadline's expiry and the next one the
			// reactor holds none; nothing tells when the next is set.
			n := s.r.r.Timers()
			for wait := time.Now().Add(5 * time.Second); n != 1 && time.Now().Before(wait); n = s.r.r.Timers() {
				time.Sleep(time.Millisecond)
			}
			if n != 1 {
				t.Errorf("the reactor holds %d deadlines with one connection served, want 1", n)
			}
		}
	}
	if elapsed := time.Since(start); elapsed < 9*ping {
		t.Errorf("10 pings in %v, with one per %v of silence", elapsed, ping)
	}

	// A client that never reads, so never answers: closed at the idle
	// timeout, while the live one goes on.
	silent, _, err := websocket.DefaultDialer.Dial(s.url(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	select {
	case err := <-s.ends:
		if !errors.Is(err, ErrIdle) {
			t.Fatalf("the silent connection ended with %v, want ErrIdle", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the silent connection was not closed at its idle timeout")
	}
	silent.SetPingHandler(func(string) error { return nil })
	for {
		_, _, err := silent.ReadMessage()
		if ce := new(websocket.CloseError); errors.As(err, &ce) {
			if ce.Code != websocket.ClosePolicyViolation {
				t.Errorf("the silent client got close %d, want 1008", ce.Code)
			}
			break
		} else if err != nil {
			t.Fatalf("the silent client read %v, want close 1008", err)
		}
	}
	select {
	case <-pings:
	case <-time.After(10 * time.Second):
		t.Fatal("the live connection's pings stopped")
	}
	live.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4000, "bye"))
	if ce := new(websocket.CloseError); !errors.As(<-ended, &ce) || ce.Code != 4000 {
		t.Errorf("the live client's close was not echoed: %v", ce)
	}
}

// TestServeDetachesIdleTCP: a plain TCP connection that Serve gets with
// nothing under way leaves the runtime's poller for a socket.Stream; one
// with bytes still going out stays a *net.TCPConn. Both are served the
// same.
func TestServeDetachesIdleTCP(t *testing.T) {
	r := epollReactor(t)
	const welcome = 8 << 20 // more than loopback takes before the client reads
	transports := make(chan net.Conn, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		c, err := Upgrade(w, req, nil)
		if err != nil {
			return
		}
		if req.URL.Query().Get("welcome") != "" {
			if r, err := c.PollWriteMessage(nil, Binary, make([]byte, welcome)); err != nil || !r.Ready {
				t.Errorf("welcome: %v, %v", r, err)
			}
			c.PollFlush(nil)
		}
		if err := r.Serve(c, &echoHandler{c: c}, nil); err != nil {
			t.Error(err)
		}
		transports <- c.out.Conn()
	}))
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")

	for _, tc := range []struct {
		query    string
		detached bool
	}{{"", true}, {"?welcome=1", false}} {
		c, _, err := websocket.DefaultDialer.Dial(url+tc.query, nil)
		if err != nil {
			t.Fatal(err)
		}
		tr := <-transports
		if _, ok := tr.(*socket.Stream); ok != tc.detached {
			t.Errorf("%q: served over a %T, want detached %v", tc.query, tr, tc.detached)
		}
		if got, want := tr.RemoteAddr().String(), c.LocalAddr().String(); got != want {
			t.Errorf("%q: RemoteAddr %s, want %s", tc.query, got, want)
		}
		if tc.query != "" {
			if _, p, err := c.ReadMessage(); err != nil || len(p) != welcome {
				t.Fatalf("welcome: %d bytes, %v", len(p), err)
			}
		}
		c.WriteMessage(websocket.TextMessage, []byte("hi"))
		if _, p, err := c.ReadMessage(); err != nil || string(p) != "hi" {
			t.Fatalf("%q: echo %q, %v", tc.query, p, err)
		}
		closeWith4000(t, c, 0)
		c.Close()
	}
}

// TestServeDetachKeepsListenerPlace: a connection of NewListener's that
// Serve detaches keeps its place under MaxConns until it closes, and
// gives it back then.
func TestServeDetachKeepsListenerPlace(t *testing.T) {
	r := epollReactor(t)
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := NewListener(tcp, &ListenerOptions{MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	transports := make(chan net.Conn, 2)
	ends := make(chan error, 2)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		c, err := Upgrade(w, req, nil)
		if err != nil {
			return
		}
		if err := r.Serve(c, &echoHandler{c: c}, func(err error) { ends <- err }); err != nil {
			t.Error(err)
		}
		transports <- c.out.Conn()
	})}
	go srv.Serve(ln)
	defer srv.Close()
	url := "ws://" + tcp.Addr().String()

	first, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tr := <-transports; reflect.TypeOf(tr) != reflect.TypeFor[*socket.Stream]() {
		t.Fatalf("served over a %T, want a detached *socket.Stream", tr)
	}
	// The second waits in the backlog while the first holds the place.
	second := make(chan error, 1)
	go func() {
		c, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err == nil {
			c.WriteMessage(websocket.TextMessage, []byte("second"))
			_, p, rerr := c.ReadMessage()
			if rerr == nil && string(p) != "second" {
				rerr = fmt.Errorf("echo %q", p)
			}
			err = rerr
			c.Close()
		}
		second <- err
	}()
	select {
	case err := <-second:
		t.Fatalf("a second connection was served while the first held the only place: %v", err)
	case <-time.After(100 * time.Millisecond): // nothing tells that a client waits in the backlog
	}
	closeWith4000(t, first, 0)
	first.Close()
	<-ends
	select {
	case err := <-second:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the detached connection did not give its place back when it closed")
	}
}

// epollReactor returns a Reactor closed when the test ends; it skips the
// test on a system without epoll.
func epollReactor(t *testing.T) *Reactor {
	t.Helper()
	r, err := NewReactor(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	if r.r == nil {
		t.Skip("no reactor on this system")
	}
	return r
}

// TestConnSize: a Conn fits the 512-byte size class. An object of more
// than 512 bytes carries an 8-byte header and takes the next class, 576
// bytes: every served connection keeps one, so a field that crosses the
// line costs each of them 64 bytes.
func TestConnSize(t *testing.T) {
	if n := unsafe.Sizeof(Conn{}); n > 512 {
		t.Errorf("a Conn is %d bytes, over 512", n)
	}
}
