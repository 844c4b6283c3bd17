package echoserver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/gorilla/websocket"

	"github.com/pollws/pollws/internal/peers"
)

// server is an echo server on a loopback port for one test.
type server struct {
	*Server
	url   string // http(s)://127.0.0.1:port/
	wsURL string
}

func startServer(t *testing.T, backend Backend, useTLS bool) *server {
	t.Helper()
	cfg := Config{Addr: "127.0.0.1:0", TLS: useTLS, Backend: backend, Drain: 5 * time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ln, url, err := Listen(&cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	s := New(cfg)
	srv := &http.Server{Handler: s.Handler(), ErrorLog: nil}
	done := make(chan struct{})
	go func() { srv.Serve(ln); close(done) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		s.Group().Drain(ctx)
		<-done
	})
	return &server{Server: s, url: url, wsURL: wsURL(url) + "ws"}
}

var backends = []Backend{Pollws, Gorilla}

// forEach runs f on every backend, plain and over TLS.
func forEach(t *testing.T, f func(t *testing.T, s *server)) {
	for _, b := range backends {
		for _, useTLS := range []bool{false, true} {
			name := b.String()
			if useTLS {
				name += "/tls"
			}
			t.Run(name, func(t *testing.T) { f(t, startServer(t, b, useTLS)) })
		}
	}
}

func gorillaDial(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, HandshakeTimeout: 10 * time.Second}
	c, _, err := d.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetReadLimit(64 << 20)
	c.SetReadDeadline(time.Now().Add(time.Minute))
	return c
}

func payload(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*31 + 7)
	}
	return p
}

func TestGorillaClient(t *testing.T) {
	forEach(t, func(t *testing.T, s *server) {
		c := gorillaDial(t, s.wsURL)
		for _, size := range []int{0, 1, 125, 126, 65535, 65536, 1 << 20, 16 << 20} {
			for _, typ := range []int{websocket.BinaryMessage, websocket.TextMessage} {
				p := payload(size)
				if typ == websocket.TextMessage {
					p = bytes.Repeat([]byte("é"), size/2)
				}
				if err := c.WriteMessage(typ, p); err != nil {
					t.Fatalf("write %d B: %v", size, err)
				}
				gotTyp, got, err := c.ReadMessage()
				if err != nil || gotTyp != typ || !bytes.Equal(got, p) {
					t.Fatalf("echo of %d B type %d: got %d B type %d, %v", len(p), typ, len(got), gotTyp, err)
				}
			}
		}
		pong := make(chan string, 1)
		c.SetPongHandler(func(data string) error { pong <- data; return nil })
		if err := c.WriteControl(websocket.PingMessage, []byte("ping?"), time.Now().Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		if err := c.WriteMessage(websocket.TextMessage, []byte("after ping")); err != nil {
			t.Fatal(err)
		}
		if _, got, err := c.ReadMessage(); err != nil || string(got) != "after ping" {
			t.Fatalf("echo after ping: %q, %v", got, err)
		}
		if got := <-pong; got != "ping?" {
			t.Fatalf("pong carried %q", got)
		}
		if err := c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4003, "done")); err != nil {
			t.Fatal(err)
		}
		_, _, err := c.ReadMessage()
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != 4003 {
			t.Fatalf("after sending close 4003, read: %v; want the code echoed", err)
		}
	})
}

func TestGobwasClientFragments(t *testing.T) {
	forEach(t, func(t *testing.T, s *server) {
		d := ws.Dialer{TLSConfig: &tls.Config{InsecureSkipVerify: true}, Timeout: 10 * time.Second}
		conn, _, _, err := d.Dial(context.Background(), s.wsURL)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(time.Minute))
		parts := []string{"frag", "men", "", "ted ✓"}
		for i, p := range parts {
			op := ws.OpContinuation
			if i == 0 {
				op = ws.OpText
			}
			f := ws.MaskFrameInPlace(ws.NewFrame(op, i == len(parts)-1, []byte(p)))
			if err := ws.WriteFrame(conn, f); err != nil {
				t.Fatal(err)
			}
		}
		got, op, err := wsutil.ReadServerData(conn)
		if err != nil || op != ws.OpText || string(got) != "fragmented ✓" {
			t.Fatalf("echo of fragments = %q %v, %v", got, op, err)
		}
		if err := ws.WriteFrame(conn, ws.MaskFrameInPlace(ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusGoingAway, "bye")))); err != nil {
			t.Fatal(err)
		}
		f, err := ws.ReadFrame(conn)
		if err != nil || f.Header.OpCode != ws.OpClose {
			t.Fatalf("after close, read %v, %v; want a close frame", f.Header.OpCode, err)
		}
		if code, _ := ws.ParseCloseFrameData(f.Payload); code != ws.StatusGoingAway {
			t.Fatalf("close code echoed as %d, want 1001", code)
		}
	})
}

// TestConcurrentClients runs 200 clients at once, each sending messages of
// its own sizes and checking the echoes' checksums.
func TestConcurrentClients(t *testing.T) {
	for _, b := range backends {
		t.Run(b.String(), func(t *testing.T) {
			s := startServer(t, b, false)
			const clients, msgs = 200, 20
			var wg sync.WaitGroup
			errc := make(chan error, clients)
			var mu sync.Mutex
			var slowest time.Duration // the longest handshake
			for i := range clients {
				wg.Go(func() {
					// The handshakes contend with 199 echo streams for two
					// cores, and under the race detector for much less.
					d := websocket.Dialer{HandshakeTimeout: time.Minute}
					start := time.Now()
					c, _, err := d.Dial(s.wsURL, nil)
					took := time.Since(start)
					if err != nil {
						errc <- fmt.Errorf("client %d: dial after %v: %w", i, took, err)
						return
					}
					mu.Lock()
					slowest = max(slowest, took)
					mu.Unlock()
					defer c.Close()
					c.SetReadDeadline(time.Now().Add(time.Minute))
					sent, recv := sha256.New(), sha256.New()
					go func() { // pipelined writes
						for k := range msgs {
							p := payload((i*97 + k*1013) % 20000)
							sent.Write(p)
							c.WriteMessage(websocket.BinaryMessage, p)
						}
					}()
					for range msgs {
						_, p, err := c.ReadMessage()
						if err != nil {
							errc <- fmt.Errorf("client %d: %w", i, err)
							return
						}
						recv.Write(p)
					}
					if !bytes.Equal(sent.Sum(nil), recv.Sum(nil)) {
						errc <- fmt.Errorf("client %d: echoes differ from what it sent", i)
					}
				})
			}
			wg.Wait()
			close(errc)
			for err := range errc {
				t.Error(err)
			}
			t.Logf("slowest handshake %v", slowest)
			if st := s.Stats(); st.Messages < clients*msgs {
				t.Fatalf("server echoed %d messages, want at least %d", st.Messages, clients*msgs)
			}
		})
	}
}

// TestVanishedPeerIsReleased: a client whose connection breaks without a
// close frame cannot take a close of ours, so its connection ends at once
// rather than waiting out the graceful close's timeout.
func TestVanishedPeerIsReleased(t *testing.T) {
	for _, b := range backends {
		t.Run(b.String(), func(t *testing.T) {
			s := startServer(t, b, false)
			c := gorillaDial(t, s.wsURL)
			if err := c.WriteMessage(websocket.TextMessage, []byte("hello")); err != nil {
				t.Fatal(err)
			}
			if _, _, err := c.ReadMessage(); err != nil {
				t.Fatal(err)
			}
			if st := s.Stats(); st.Open != 1 {
				t.Fatalf("Open = %d with one client, want 1", st.Open)
			}
			c.NetConn().Close() // no close frame
			deadline := time.Now().Add(closeTimeout / 2)
			for s.Stats().Open != 0 {
				if time.Now().After(deadline) {
					t.Fatalf("the connection of a vanished client is still open after %v", closeTimeout/2)
				}
				time.Sleep(10 * time.Millisecond) // the server tells nobody when a handler ends
			}
		})
	}
}

func TestPlainGETIsRefused(t *testing.T) {
	for _, b := range backends {
		s := startServer(t, b, false)
		resp, err := http.Get(strings.TrimSuffix(s.url, "/") + "/ws")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusUpgradeRequired {
			t.Fatalf("%v: plain GET /ws = %d; want 400 or 426", b, resp.StatusCode)
		}
	}
}

func TestCrossOriginBrowserIsRefused(t *testing.T) {
	for _, b := range backends {
		s := startServer(t, b, false)
		_, resp, err := websocket.DefaultDialer.Dial(s.wsURL, http.Header{"Origin": {"http://evil.example"}})
		if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("%v: cross-origin upgrade = %v, %v; want 403", b, resp, err)
		}
	}
}

func TestNodeWS(t *testing.T) {
	node, dir := peers.Node(t)
	forEach(t, func(t *testing.T, s *server) {
		runPeer(t, exec.Command(node, filepath.Join(dir, "ws_echo.mjs"), s.wsURL))
	})
}

func TestChromium(t *testing.T) {
	node, dir := peers.Node(t)
	chromium := peers.Chromium(t)
	forEach(t, func(t *testing.T, s *server) {
		runPeer(t, exec.Command(node, filepath.Join(dir, "chromium_echo.mjs"), chromium, s.url))
	})
}

func runPeer(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd = exec.CommandContext(ctx, cmd.Path, cmd.Args[1:]...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", filepath.Base(cmd.Args[1]), err, out)
	}
	if !strings.Contains(string(out), " passed, 0 failed") {
		t.Fatalf("%s printed no summary:\n%s", filepath.Base(cmd.Args[1]), out)
	}
}
