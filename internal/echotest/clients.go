package echotest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
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

// closeTimeout is the longest a server may wait for a close to complete;
// a connection that ends well under it was not left to time out.
const closeTimeout = 5 * time.Second

func payload(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*31 + 7)
	}
	return p
}

// Clients runs independent clients against the server, plain and over
// TLS: gorilla (messages of every size up to 16 MiB, a ping, the close
// code echoed), gobwas (a fragmented message), 200 clients at once, a
// client that vanishes without a close frame, a plain GET of /ws and a
// cross-origin upgrade (both refused).
func Clients(t *testing.T, start Start) {
	for _, useTLS := range []bool{false, true} {
		name, args := "plain", []string(nil)
		if useTLS {
			name, args = "tls", []string{"-tls"}
		}
		t.Run(name, func(t *testing.T) {
			s := start(t, args...)
			t.Run("gorilla", func(t *testing.T) { gorillaClient(t, s) })
			t.Run("gobwas fragments", func(t *testing.T) { gobwasFragments(t, s) })
		})
	}
	t.Run("concurrent clients", func(t *testing.T) { concurrentClients(t, start(t)) })
	t.Run("vanished peer", func(t *testing.T) { vanishedPeer(t, start(t)) })
	s := start(t)
	t.Run("plain GET refused", func(t *testing.T) { plainGETRefused(t, s) })
	t.Run("cross-origin refused", func(t *testing.T) { crossOriginRefused(t, s) })
}

func gorillaClient(t *testing.T, s *Server) {
	c := gorillaDial(t, s)
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
}

func gobwasFragments(t *testing.T, s *Server) {
	c := rawDial(t, s)
	c.SetDeadline(time.Now().Add(time.Minute))
	parts := []string{"frag", "men", "", "ted ✓"}
	for i, p := range parts {
		op := ws.OpContinuation
		if i == 0 {
			op = ws.OpText
		}
		f := ws.MaskFrameInPlace(ws.NewFrame(op, i == len(parts)-1, []byte(p)))
		if err := ws.WriteFrame(c, f); err != nil {
			t.Fatal(err)
		}
	}
	got, op, err := wsutil.ReadServerData(struct {
		io.Reader
		io.Writer
	}{c.r, c})
	if err != nil || op != ws.OpText || string(got) != "fragmented ✓" {
		t.Fatalf("echo of fragments = %q %v, %v", got, op, err)
	}
	if err := ws.WriteFrame(c, ws.MaskFrameInPlace(ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusGoingAway, "bye")))); err != nil {
		t.Fatal(err)
	}
	f, err := ws.ReadFrame(c.r)
	if err != nil || f.Header.OpCode != ws.OpClose {
		t.Fatalf("after close, read %v, %v; want a close frame", f.Header.OpCode, err)
	}
	if code := closeCode(f.Payload); code != int(ws.StatusGoingAway) {
		t.Fatalf("close code echoed as %d, want 1001", code)
	}
}

// concurrentClients runs 200 clients at once, each sending messages of
// its own sizes, pipelined, and checking the echoes' checksums.
func concurrentClients(t *testing.T, s *Server) {
	const clients, msgs = 200, 20
	var wg sync.WaitGroup
	errc := make(chan error, clients)
	var mu sync.Mutex
	var slowest time.Duration // the longest handshake
	for i := range clients {
		wg.Go(func() {
			// The handshakes contend with 199 echo streams for two cores,
			// and under the race detector for much less.
			d := websocket.Dialer{HandshakeTimeout: time.Minute, TLSClientConfig: clientTLS}
			begin := time.Now()
			c, _, err := d.Dial(s.WSURL(), nil)
			took := time.Since(begin)
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
			var writes sync.WaitGroup
			defer writes.Wait()
			writes.Go(func() {
				for k := range msgs {
					p := payload((i*97 + k*1013) % 20000)
					sent.Write(p)
					if c.WriteMessage(websocket.BinaryMessage, p) != nil {
						return
					}
				}
			})
			for range msgs {
				_, p, err := c.ReadMessage()
				if err != nil {
					errc <- fmt.Errorf("client %d: %w", i, err)
					c.Close()
					return
				}
				recv.Write(p)
			}
			writes.Wait()
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
}

// vanishedPeer: a client ends its side of the connection without a close
// frame and goes on reading. The server cannot get a close from it, so it
// ends the connection at once rather than waiting out a graceful close's
// timeout.
func vanishedPeer(t *testing.T, s *Server) {
	c := rawDial(t, s)
	if _, err := c.Write(text(bFin|bText, "hello")); err != nil {
		t.Fatal(err)
	}
	if f, err := c.readFrame(10 * time.Second); err != nil || string(f.Payload) != "hello" {
		t.Fatalf("echo: %q, %v", f.Payload, err)
	}
	begin := time.Now()
	if err := c.Conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(2 * closeTimeout))
	n, err := io.Copy(io.Discard, c.r)
	if took := time.Since(begin); err != nil || took > closeTimeout/2 {
		t.Fatalf("the server ended the connection of a vanished client after %v (%v, %d bytes), want under %v", took, err, n, closeTimeout/2)
	}
}

func plainGETRefused(t *testing.T, s *Server) {
	resp, err := http.Get(strings.TrimSuffix(s.URL, "/") + "/ws")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusUpgradeRequired {
		t.Fatalf("plain GET /ws = %d; want 400 or 426", resp.StatusCode)
	}
}

func crossOriginRefused(t *testing.T, s *Server) {
	_, resp, err := websocket.DefaultDialer.Dial(s.WSURL(), http.Header{"Origin": {"http://evil.example"}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin upgrade = %v, %v; want 403", resp, err)
	}
	c, _, err := websocket.DefaultDialer.Dial(s.WSURL(), http.Header{"Origin": {strings.TrimSuffix(s.URL, "/")}})
	if err != nil {
		t.Fatalf("same-origin upgrade: %v", err)
	}
	c.Close()
}

// Peers runs Node's ws package, headless Chromium (on the page at /) and
// Python's websockets package against the server, plain and over TLS.
// Each peer that is missing (node with ws, Chromium, a python3 with
// websockets) is skipped, or fails with POLLWS_REQUIRE_PEERS=1.
func Peers(t *testing.T, start Start) {
	for _, useTLS := range []bool{false, true} {
		name, args := "plain", []string(nil)
		if useTLS {
			name, args = "tls", []string{"-tls"}
		}
		t.Run(name, func(t *testing.T) {
			s := start(t, args...)
			t.Run("node ws", func(t *testing.T) {
				node, dir := peers.Node(t)
				runPeer(t, node, filepath.Join(dir, "ws_echo.mjs"), s.WSURL())
			})
			t.Run("chromium", func(t *testing.T) {
				node, dir := peers.Node(t)
				runPeer(t, node, filepath.Join(dir, "chromium_echo.mjs"), peers.Chromium(t), s.URL)
			})
			t.Run("python websockets", func(t *testing.T) {
				runPeer(t, peers.Python(t), filepath.Join(peers.Dir(), "ws_echo.py"), s.WSURL())
			})
		})
	}
}

// runPeer runs the peer script args[0] with the interpreter interp, and
// fails t unless it exits 0 after printing its summary of no failures.
// What the script reports besides its checks (lines it indents, as
// whether permessage-deflate was agreed) goes to the test's log.
func runPeer(t *testing.T, interp string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, interp, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", filepath.Base(args[0]), err, out)
	}
	if !strings.Contains(string(out), " passed, 0 failed") {
		t.Fatalf("%s printed no summary:\n%s", filepath.Base(args[0]), out)
	}
	for line := range strings.Lines(string(out)) {
		if strings.HasPrefix(line, "     ") {
			t.Logf("%s: %s", filepath.Base(args[0]), strings.TrimSpace(line))
		}
	}
}
