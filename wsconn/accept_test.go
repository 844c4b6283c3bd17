package wsconn

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/gorilla/websocket"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/internal/handlertest"
)

// connEcho echoes every message of c with its type until a read fails.
func connEcho(c *Conn) error {
	ctx := context.Background()
	for {
		op, p, err := readMessage(ctx, c)
		if err != nil {
			return err
		}
		if _, err := asyncio.BlockOn(ctx, func(t *asyncio.Task) (asyncio.Async[int], error) {
			return c.PollWriteMessage(t, op, p)
		}); err != nil {
			return err
		}
	}
}

// connEchoServer serves connEcho on connections upgraded by Upgrade with
// o; the returned wait closes the server and waits for the handlers,
// which end when their clients go.
func connEchoServer(t *testing.T, tlsOn bool, o *UpgradeOptions) (srv *httptest.Server, wait func()) {
	var handlers handlertest.Group
	srv = httptest.NewUnstartedServer(handlers.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Upgrade(w, r, o)
		if err != nil {
			return
		}
		defer c.Close()
		connEcho(c)
	})))
	if tlsOn {
		srv.TLS = connServerTLS(t)
		srv.StartTLS()
	} else {
		srv.Start()
	}
	return srv, func() {
		srv.Close()
		handlers.Wait()
	}
}

// connSizes are the message sizes of the interoperability tests: both
// sides of every length encoding, and large messages.
var connSizes = []int{0, 1, 125, 126, 65535, 65536, 1 << 20, 16 << 20}

func connPayload(n int, text bool) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*31 + i>>8)
		if text {
			p[i] = 'a' + byte(i%26)
		}
	}
	return p
}

func TestUpgradeInteropGorilla(t *testing.T) {
	srv, wait := connEchoServer(t, false, nil)
	defer wait()
	gc, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer gc.Close()
	gc.SetReadLimit(64 << 20)

	for _, n := range connSizes {
		for _, typ := range []int{websocket.TextMessage, websocket.BinaryMessage} {
			want := connPayload(n, typ == websocket.TextMessage)
			if err := gc.WriteMessage(typ, want); err != nil {
				t.Fatal(err)
			}
			gotType, got, err := gc.ReadMessage()
			if err != nil || gotType != typ || !bytes.Equal(got, want) {
				t.Fatalf("echo of a %d-byte message of type %d = type %d, %d bytes, %v", n, typ, gotType, len(got), err)
			}
		}
	}

	pongs := make(chan string, 1)
	gc.SetPongHandler(func(s string) error { pongs <- s; return nil })
	if err := gc.WriteControl(websocket.PingMessage, []byte("ping?"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := gc.WriteMessage(websocket.TextMessage, []byte("after the ping")); err != nil {
		t.Fatal(err)
	}
	if _, p, err := gc.ReadMessage(); err != nil || string(p) != "after the ping" {
		t.Fatalf("ReadMessage = %q, %v", p, err)
	}
	if got := <-pongs; got != "ping?" {
		t.Fatalf("pong %q, want ping?", got)
	}

	if err := gc.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(3000, "bye"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	_, _, err = gc.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 3000 {
		t.Fatalf("after the client's close, ReadMessage = %v; want the echo of 3000", err)
	}
}

func TestUpgradeInteropGobwas(t *testing.T) {
	srv, wait := connEchoServer(t, true, nil)
	defer wait()
	d := ws.Dialer{TLSConfig: connClientTLS(t)}
	conn, _, _, err := d.Dial(context.Background(), "wss"+strings.TrimPrefix(srv.URL, "https"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	for _, n := range connSizes {
		want := connPayload(n, false)
		if err := wsutil.WriteClientMessage(conn, ws.OpBinary, want); err != nil {
			t.Fatal(err)
		}
		got, op, err := wsutil.ReadServerData(conn)
		if err != nil || op != ws.OpBinary || !bytes.Equal(got, want) {
			t.Fatalf("echo of a %d-byte message = %v, %d bytes, %v", n, op, len(got), err)
		}
	}

	// A fragmented text message, with a ping between its fragments.
	for _, f := range []ws.Frame{
		ws.NewFrame(ws.OpText, false, []byte("frag")),
		ws.NewPingFrame([]byte("in between")),
		ws.NewFrame(ws.OpContinuation, false, []byte("men")),
		ws.NewFrame(ws.OpContinuation, true, []byte("ted ✓")),
	} {
		if err := ws.WriteFrame(conn, ws.MaskFrame(f)); err != nil {
			t.Fatal(err)
		}
	}
	f, err := ws.ReadFrame(conn)
	if err != nil || f.Header.OpCode != ws.OpPong || string(f.Payload) != "in between" {
		t.Fatalf("read %+v %q, %v; want the pong first", f.Header, f.Payload, err)
	}
	got, op, err := wsutil.ReadServerData(conn)
	if err != nil || op != ws.OpText || string(got) != "fragmented ✓" {
		t.Fatalf("echo of the fragmented message = %v, %q, %v", op, got, err)
	}

	if err := ws.WriteFrame(conn, ws.MaskFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusGoingAway, "leaving")))); err != nil {
		t.Fatal(err)
	}
	f, err = ws.ReadFrame(conn)
	if code, _ := ws.ParseCloseFrameData(f.Payload); err != nil || f.Header.OpCode != ws.OpClose || code != ws.StatusGoingAway {
		t.Fatalf("after the client's close, read %+v (%d), %v; want the echo of 1001", f.Header, code, err)
	}
}

func TestUpgradeRejects(t *testing.T) {
	srv, wait := connEchoServer(t, false, &UpgradeOptions{Protocols: []string{"chat"}})
	defer wait()
	handshake := func(mod func(h http.Header)) http.Header {
		h := http.Header{}
		h.Set("Connection", "Upgrade")
		h.Set("Upgrade", "websocket")
		h.Set("Sec-WebSocket-Version", "13")
		h.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		if mod != nil {
			mod(h)
		}
		return h
	}
	for _, tc := range []struct {
		name   string
		header http.Header
		want   int
	}{
		{"plain GET", http.Header{}, http.StatusUpgradeRequired},
		{"foreign origin", handshake(func(h http.Header) { h.Set("Origin", "https://evil.example") }), http.StatusForbidden},
		{"unsupported version", handshake(func(h http.Header) { h.Set("Sec-WebSocket-Version", "12") }), http.StatusUpgradeRequired},
		{"no key", handshake(func(h http.Header) { h.Del("Sec-WebSocket-Key") }), http.StatusBadRequest},
		{"same origin", handshake(func(h http.Header) { h.Set("Origin", srv.URL) }), http.StatusSwitchingProtocols},
		{"no origin", handshake(nil), http.StatusSwitchingProtocols},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header = tc.header
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}

	c, err := Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http"), &DialOptions{Protocols: []string{"other", "chat"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if p := c.Subprotocol(); p != "chat" {
		t.Errorf("Subprotocol = %q, want chat", p)
	}
}
