package wsconn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"
	"github.com/gorilla/websocket"

	"github.com/pollws/pollws/internal/handlertest"
	"github.com/pollws/pollws/wsconn/internal/deflate"
	"github.com/pollws/pollws/wsconn/internal/wstest"
)

// zCounts are what a compressing connection counted.
type zCounts struct {
	agreed     bool
	params     deflate.Params
	read, sent int // messages read and sent compressed
}

func zCountsOf(c *Conn) zCounts {
	if c.z == nil {
		return zCounts{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return zCounts{agreed: true, params: c.z.params, read: c.z.read, sent: c.z.sent}
}

// zEchoServer serves an echo on connections upgraded under o and, as each
// ends, sends what it counted. It also serves a blank page at /, for
// browsers.
func zEchoServer(t *testing.T, o *UpgradeOptions) (srv *httptest.Server, counts <-chan zCounts) {
	ch := make(chan zCounts, 16)
	var handlers handlertest.Group
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, "<!doctype html><title>pollws</title><p>permessage-deflate")
	})
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := Upgrade(w, r, o)
		if err != nil {
			return
		}
		defer c.Close()
		zEcho(c)
		ch <- zCountsOf(c)
	})
	srv = httptest.NewServer(handlers.Wrap(mux))
	t.Cleanup(func() {
		srv.Close()
		handlers.Wait()
	})
	return srv, ch
}

// zInteropMessages are what the interop tests send: JSON-like text and
// binary that does not compress, from 16 B to 128 KiB.
func zInteropMessages() (types []MessageType, msgs [][]byte) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{16, 100, 300, 1024, 5000, 40000, 131072} {
		types = append(types, Text, Binary)
		msgs = append(msgs, zJSON(r, n), zRandom(r, n))
	}
	return types, msgs
}

// zWantCounts checks what a server counted: every message read
// compressed, and every one of MinSize bytes or more sent compressed.
func zWantCounts(t *testing.T, got zCounts, read, sent int) {
	t.Helper()
	switch {
	case !got.agreed:
		t.Fatal("the server did not agree on compression")
	case got.read != read || got.sent != sent:
		t.Fatalf("the server (%+v) read %d compressed messages and sent %d; want %d and %d", got.params, got.read, got.sent, read, sent)
	}
}

// zCompressible counts the messages of at least 256 bytes, which a
// connection with the default MinSize compresses.
func zCompressible(msgs [][]byte) int {
	n := 0
	for _, m := range msgs {
		if len(m) >= 256 {
			n++
		}
	}
	return n
}

// TestCompressInteropGorillaClient: gorilla's client with
// EnableCompression (which asks for no context takeover) against the
// server, which reads its compressed messages and compresses its echoes.
func TestCompressInteropGorillaClient(t *testing.T) {
	for _, o := range []CompressionOptions{{}, {ContextTakeover: true}, {MaxWindowBits: 10, MinSize: -1}} {
		t.Run(fmt.Sprintf("%+v", o), func(t *testing.T) {
			srv, counts := zEchoServer(t, &UpgradeOptions{Options: zOn(o)})
			d := websocket.Dialer{EnableCompression: true}
			gc, resp, err := d.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/ws", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer gc.Close()
			t.Logf("the server answered %q", resp.Header.Get("Sec-WebSocket-Extensions"))
			gc.SetReadLimit(1 << 20)
			types, msgs := zInteropMessages()
			for i, msg := range msgs {
				typ := websocket.TextMessage
				if types[i] == Binary {
					typ = websocket.BinaryMessage
				}
				if err := gc.WriteMessage(typ, msg); err != nil {
					t.Fatal(err)
				}
				gotType, got, err := gc.ReadMessage()
				if err != nil || gotType != typ || !bytes.Equal(got, msg) {
					t.Fatalf("echo of %d bytes: type %d, %d bytes, %v", len(msg), gotType, len(got), err)
				}
			}
			gc.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Time{})
			gc.ReadMessage()
			sent := zCompressible(msgs)
			if o.MinSize < 0 {
				sent = len(msgs)
			}
			zWantCounts(t, <-counts, len(msgs), sent)
		})
	}
}

// TestCompressInteropGorillaServer: the client against gorilla's server
// with EnableCompression, which compresses every echo.
func TestCompressInteropGorillaServer(t *testing.T) {
	var wg sync.WaitGroup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wg.Add(1)
		defer wg.Done()
		u := websocket.Upgrader{EnableCompression: true}
		conn, err := u.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		conn.SetReadLimit(1 << 20)
		for {
			typ, msg, err := conn.ReadMessage()
			if err != nil {
				return
			}
			if err := conn.WriteMessage(typ, msg); err != nil {
				return
			}
		}
	}))
	defer func() { srv.Close(); wg.Wait() }()
	for _, o := range []CompressionOptions{{}, {ContextTakeover: true, MinSize: -1}} {
		t.Run(fmt.Sprintf("%+v", o), func(t *testing.T) {
			c, err := Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http"), &DialOptions{Options: zOn(o)})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			zClientEcho(t, c, -1)
		})
	}
}

// zClientEcho sends the interop messages on c to an echo server and
// checks the echoes; the server is to compress them all (serverCompresses
// < 0) or that many.
func zClientEcho(t *testing.T, c *Conn, serverCompresses int) {
	t.Helper()
	types, msgs := zInteropMessages()
	for i, msg := range msgs {
		if err := zWrite(c, types[i], msg); err != nil {
			t.Fatal(err)
		}
		m, err := c.ReadMessage(context.Background())
		if err != nil || m.Type != types[i] || !bytes.Equal(m.Data, msg) {
			t.Fatalf("echo of %d bytes: %v, %d bytes, %v", len(msg), m.Type, len(m.Data), err)
		}
	}
	got := zCountsOf(c)
	if serverCompresses < 0 {
		serverCompresses = len(msgs)
	}
	sent := 0
	for _, m := range msgs {
		if c.z != nil && c.z.w.ShouldCompress(len(m)) {
			sent++
		}
	}
	if !got.agreed || got.read != serverCompresses || got.sent != sent {
		t.Fatalf("the client (%+v) read %d compressed echoes and sent %d compressed; want %d and %d", got.params, got.read, got.sent, serverCompresses, sent)
	}
}

// TestCompressInteropGobwasClient: gobwas's client with wsflate, which
// compresses with compress/flate and asks for no context takeover,
// against the server.
func TestCompressInteropGobwasClient(t *testing.T) {
	srv, counts := zEchoServer(t, &UpgradeOptions{Options: zOn(CompressionOptions{ContextTakeover: true})})
	offer := wsflate.Parameters{ServerNoContextTakeover: true, ClientNoContextTakeover: true}
	var d ws.Dialer
	d.Extensions = append(d.Extensions, offer.Option())
	conn, br, hs, err := d.Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http")+"/ws")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if len(hs.Extensions) != 1 || string(hs.Extensions[0].Name) != wsflate.ExtensionName {
		t.Fatalf("the server accepted %v", hs.Extensions)
	}
	var r io.Reader = conn
	if br != nil {
		r = br
	}
	types, msgs := zInteropMessages()
	compressed := 0
	for i, msg := range msgs {
		f, err := wsflate.CompressFrame(ws.NewFrame(ws.OpCode(types[i]), true, msg))
		if err != nil {
			t.Fatal(err)
		}
		if err := ws.WriteFrame(conn, ws.MaskFrameInPlace(f)); err != nil {
			t.Fatal(err)
		}
		got, err := ws.ReadFrame(r)
		if err != nil {
			t.Fatal(err)
		}
		if ok, _ := wsflate.IsCompressed(got.Header); ok {
			compressed++
			if got, err = wsflate.DecompressFrame(got); err != nil {
				t.Fatalf("inflating the echo of %d bytes: %v", len(msg), err)
			}
		}
		if got.Header.OpCode != ws.OpCode(types[i]) || !bytes.Equal(got.Payload, msg) {
			t.Fatalf("echo of %d bytes: %v, %d bytes", len(msg), got.Header.OpCode, len(got.Payload))
		}
	}
	if err := ws.WriteFrame(conn, ws.MaskFrameInPlace(ws.NewCloseFrame(ws.NewCloseFrameBody(1000, "")))); err != nil {
		t.Fatal(err)
	}
	if f, err := ws.ReadFrame(r); err != nil || f.Header.OpCode != ws.OpClose {
		t.Fatalf("after the close frame: %v, %v", f.Header, err)
	}
	want := zCompressible(msgs)
	if compressed != want {
		t.Errorf("%d echoes came compressed, want %d", compressed, want)
	}
	zWantCounts(t, <-counts, len(msgs), want)
}

// TestCompressInteropGobwasServer: the client against gobwas's server
// with wsflate, which inflates with compress/flate and compresses its
// echo of a compressed message at level 9.
func TestCompressInteropGobwasServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer func() { ln.Close(); wg.Wait() }()
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer conn.Close()
				wstest.GobwasDeflateEcho(conn)
			})
		}
	})
	// gobwas cannot bound its window (compress/flate has 32 KiB): it
	// declines an offer of server_max_window_bits.
	for _, o := range []CompressionOptions{{}, {ContextTakeover: true}, {MinSize: -1, Level: 9}} {
		t.Run(fmt.Sprintf("%+v", o), func(t *testing.T) {
			c, err := Dial(context.Background(), "ws://"+ln.Addr().String()+"/", &DialOptions{Options: zOn(o)})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_, msgs := zInteropMessages()
			want := zCompressible(msgs)
			if o.MinSize < 0 {
				want = len(msgs)
			}
			zClientEcho(t, c, want)
		})
	}
}

// TestCompressReactorEcho: connections served by a Reactor compress and
// inflate as those read by a goroutine do. Clients (gorilla with
// compression) pipeline their messages, so that the echoes fill the
// connections' buffers.
func TestCompressReactorEcho(t *testing.T) {
	const clients, msgs = 10, 80
	s := newReactorServer(t, &Options{BufferSize: 8 << 10, Compression: &CompressionOptions{}})
	payload := func(i, j int) []byte {
		return zJSON(rand.New(rand.NewPCG(uint64(i), uint64(j))), 100+j*120)
	}
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			d := websocket.Dialer{EnableCompression: true}
			c, _, err := d.Dial(s.url(), nil)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			go func() {
				for j := range msgs {
					if err := c.WriteMessage(websocket.TextMessage, payload(i, j)); err != nil {
						return
					}
				}
			}()
			for j := range msgs {
				_, p, err := c.ReadMessage()
				if err != nil || !bytes.Equal(p, payload(i, j)) {
					t.Errorf("client %d message %d: %d bytes, %v", i, j, len(p), err)
					return
				}
			}
			c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4000, "bye"))
			c.ReadMessage()
		})
	}
	wg.Wait()
	for range clients {
		if err := <-s.ends; !errors.As(err, new(*CloseError)) {
			t.Errorf("handler ended with %v, want the peer's close", err)
		}
	}
}
