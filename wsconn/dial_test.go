package wsconn

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/gorilla/websocket"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/internal/handlertest"
	"github.com/pollws/pollws/wsconn/internal/wstest"
)

func connServerTLS(t *testing.T) *tls.Config {
	t.Helper()
	s, _, err := wstest.Configs()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func connClientTLS(t *testing.T) *tls.Config {
	t.Helper()
	_, c, err := wstest.Configs()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// connPeerServer starts a WebSocket echo server of another library; the
// returned wait closes it and waits for its handlers.
func connPeerServer(t *testing.T, lib string, tlsOn bool) (url string, wait func()) {
	var handlers handlertest.Group
	var h http.Handler
	switch lib {
	case "gorilla":
		h = wstest.GorillaHandler(func(c *websocket.Conn) {
			c.SetReadLimit(64 << 20)
			for {
				typ, p, err := c.ReadMessage()
				if err != nil {
					return
				}
				if err := c.WriteMessage(typ, p); err != nil {
					return
				}
			}
		})
	case "gobwas":
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			conn, _, _, err := ws.UpgradeHTTP(r, w)
			if err != nil {
				return
			}
			defer conn.Close()
			for {
				p, op, err := wsutil.ReadClientData(conn)
				if err != nil {
					return
				}
				if err := wsutil.WriteServerMessage(conn, op, p); err != nil {
					return
				}
			}
		})
	}
	srv := httptest.NewUnstartedServer(handlers.Wrap(h))
	scheme := "ws"
	if tlsOn {
		srv.TLS = connServerTLS(t)
		srv.StartTLS()
		scheme = "wss"
	} else {
		srv.Start()
	}
	return scheme + "://" + srv.Listener.Addr().String(), func() {
		srv.Close()
		handlers.Wait()
	}
}

// TestDialInterop runs the client side against gorilla and gobwas echo
// servers, and against this package's own server, over TCP and TLS.
func TestDialInterop(t *testing.T) {
	for _, lib := range []string{"gorilla", "gobwas", "wsconn"} {
		for _, tlsOn := range []bool{false, true} {
			name := lib + "/ws"
			if tlsOn {
				name = lib + "/wss"
			}
			t.Run(name, func(t *testing.T) {
				var url string
				var wait func()
				if lib == "wsconn" {
					srv, w := connEchoServer(t, tlsOn, nil)
					url, wait = strings.Replace(srv.URL, "http", "ws", 1), w
				} else {
					url, wait = connPeerServer(t, lib, tlsOn)
				}
				defer wait()
				c, err := Dial(context.Background(), url, &DialOptions{TLSConfig: connClientTLS(t)})
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				connEchoRoundTrips(t, c)
			})
		}
	}
}

// connEchoRoundTrips sends messages of every size and type through c to
// an echo server and checks the echoes, then a fragmented message, a
// ping, and the closing handshake.
func connEchoRoundTrips(t *testing.T, c *Conn) {
	t.Helper()
	ctx := context.Background()
	send := func(op MessageType, p []byte) {
		t.Helper()
		if _, err := asyncio.BlockOn(ctx, func(t *asyncio.Task) (asyncio.Async[int], error) {
			return c.PollWriteMessage(t, op, p)
		}); err != nil {
			t.Fatal(err)
		}
	}
	expect := func(op MessageType, want []byte) {
		t.Helper()
		gotOp, got, err := readMessage(ctx, c)
		if err != nil || gotOp != op || !bytes.Equal(got, want) {
			t.Fatalf("echo of a %d-byte message of type %v = type %v, %d bytes, %v", len(want), op, gotOp, len(got), err)
		}
	}
	for _, n := range connSizes {
		for _, op := range []MessageType{Text, Binary} {
			if n == 16<<20 && op == Text {
				continue
			}
			p := connPayload(n, op == Text)
			send(op, p)
			expect(op, p)
		}
	}

	m := c.MessageWriter(Text)
	want := connPayload(200_000, true)
	if err := asyncio.WriteAll(ctx, m, want); err != nil {
		t.Fatal(err)
	}
	if err := asyncio.Shutdown(ctx, m); err != nil {
		t.Fatal(err)
	}
	expect(Text, want)

	if err := asyncio.Shutdown(ctx, c); err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	if code := closeCode(c); code != StatusNormalClosure {
		t.Errorf("CloseCode = %d, want the server's answer 1000", code)
	}
	if _, _, err := readMessage(ctx, c); !errors.As(err, new(*CloseError)) {
		t.Errorf("ReadMessage after Shutdown = %v, want *CloseError", err)
	}
}

// TestDialNetDial checks that Dial makes its connection with NetDial,
// under TLS too.
func TestDialNetDial(t *testing.T) {
	for _, tlsOn := range []bool{false, true} {
		srv, wait := connEchoServer(t, tlsOn, nil)
		var dialed []string
		o := &DialOptions{TLSConfig: connClientTLS(t), NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dialed = append(dialed, network+" "+addr)
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}}
		c, err := Dial(context.Background(), strings.Replace(srv.URL, "http", "ws", 1), o)
		if err != nil {
			t.Fatal(err)
		}
		if want := "tcp " + srv.Listener.Addr().String(); len(dialed) != 1 || dialed[0] != want {
			t.Errorf("tls %v: NetDial calls %q, want one, %q", tlsOn, dialed, want)
		}
		if err := asyncio.Shutdown(context.Background(), c); err != nil {
			t.Error(err)
		}
		c.Close()
		wait()
	}
}

func TestDialFails(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	if c, err := Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http"), nil); err == nil {
		c.Close()
		t.Fatal("Dial to a server that is not a WebSocket server succeeded")
	}
}
