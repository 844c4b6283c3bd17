package echotest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// FlagsOptions is what [Flags] needs to know of the example under test.
type FlagsOptions struct {
	// WSLimit is how many WebSocket connections the example admits with
	// -max-conns n: the rest of the n is kept for page requests.
	WSLimit func(maxConns int) int
	// Cert makes a self-signed certificate for hosts, as -tls does.
	Cert func(hosts ...string) (tls.Certificate, error)
}

// Flags runs the tests of the echo example's own flags (-max-conns,
// -ping, -idle, -drain, -cert and -key) and of its memory under a peer
// that claims large messages or sends them: what every echo example
// built on pollws must show.
func Flags(t *testing.T, start Start, o *FlagsOptions) {
	for _, tc := range []struct {
		name string
		run  func(*testing.T, Start, *FlagsOptions)
	}{
		{"MaxConns", testMaxConns},
		{"Keepalive", testKeepalive},
		{"Idle", testIdle},
		{"LargeMessagesLetGo", testLargeMessagesLetGo},
		{"DrainCountsUnechoed", testDrainCountsUnechoed},
		{"CertFiles", testCertFiles},
		{"HeaderOnlyProbe", testHeaderOnlyProbe},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, start, o) })
	}
}

// Dial opens a gorilla client to s that reads messages of up to
// 64 MiB for a minute at most, closed with the test.
func Dial(t *testing.T, s *Server) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	c, _, err := d.Dial(s.WSURL(), nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetReadLimit(64 << 20)
	c.SetReadDeadline(time.Now().Add(time.Minute))
	return c
}

// EchoOnce sends p as a binary message on c and reads its echo.
func EchoOnce(t *testing.T, c *websocket.Conn, p []byte) {
	t.Helper()
	if err := c.WriteMessage(websocket.BinaryMessage, p); err != nil {
		t.Fatalf("write: %v", err)
	}
	if _, got, err := c.ReadMessage(); err != nil || !bytes.Equal(got, p) {
		t.Fatalf("echo of %d bytes: %d bytes, %v", len(p), len(got), err)
	}
}

// testMaxConns: -max-conns bounds every TCP connection, page requests
// included, and keeps a place for them: at its WebSocket limit the
// server refuses an upgrade with 503 and still serves the page; with
// every place taken, a new connection waits until one closes.
func testMaxConns(t *testing.T, start Start, o *FlagsOptions) {
	const max = 5 // 4 WebSocket connections and 1 place kept
	s := start(t, "-max-conns", strconv.Itoa(max))
	for range o.WSLimit(max) {
		EchoOnce(t, Dial(t, s), []byte("hello"))
	}
	_, resp, err := websocket.DefaultDialer.Dial(s.WSURL(), nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("upgrade past the WebSocket limit: %v, %v; want 503", resp, err)
	}
	page := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	get := func() error {
		resp, err := page.Get(s.URL)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return errors.New(resp.Status)
		}
		return nil
	}
	if err := get(); err != nil {
		t.Fatalf("GET / at the WebSocket limit: %v", err)
	}

	idle, err := net.Dial("tcp", strings.TrimSuffix(strings.TrimPrefix(s.URL, "http://"), "/"))
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	got := make(chan error, 1)
	go func() { got <- get() }()
	select {
	case err := <-got:
		t.Fatalf("GET / with every place taken was served (%v), want it to wait", err)
	case <-time.After(300 * time.Millisecond): // nothing to wait on: the request must not be served
	}
	idle.Close()
	if err := <-got; err != nil {
		t.Fatalf("GET / once a place was free: %v", err)
	}
}

// testKeepalive: -ping sends pings, which a client answers.
func testKeepalive(t *testing.T, start Start, o *FlagsOptions) {
	s := start(t, "-ping", "20ms")
	c := Dial(t, s)
	pings := make(chan struct{}, 100)
	answer := c.PingHandler()
	c.SetPingHandler(func(data string) error { pings <- struct{}{}; return answer(data) })
	go func() {
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	}()
	for range 3 {
		select {
		case <-pings:
		case <-time.After(10 * time.Second):
			t.Fatal("no ping within 10s with -ping 20ms")
		}
	}
}

// testIdle: -idle closes with 1008 a connection that sends nothing, and
// pongs count as something.
func testIdle(t *testing.T, start Start, o *FlagsOptions) {
	t.Run("silent", func(t *testing.T) {
		s := start(t, "-idle", "200ms", "-ping", "0")
		c := Dial(t, s)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, _, err := c.ReadMessage(); !websocket.IsCloseError(err, websocket.ClosePolicyViolation) {
			t.Fatalf("a silent client's read ended with %v, want close 1008", err)
		}
	})
	t.Run("pongs", func(t *testing.T) {
		const idle = 200 * time.Millisecond
		s := start(t, "-idle", idle.String(), "-ping", "20ms")
		c := Dial(t, s)
		pings := make(chan struct{}, 1000)
		answer := c.PingHandler()
		c.SetPingHandler(func(data string) error { pings <- struct{}{}; return answer(data) })
		read := make(chan error, 1)
		go func() {
			_, _, err := c.ReadMessage()
			read <- err
		}()
		// Pings arrive for five times -idle, each answered with a pong:
		// the connection stays open.
		for deadline := time.Now().Add(5 * idle); time.Now().Before(deadline); {
			select {
			case <-pings:
			case err := <-read:
				t.Fatalf("a client that answers pings was closed: %v", err)
			case <-time.After(10 * time.Second):
				t.Fatal("no ping within 10s with -ping 20ms")
			}
		}
		if err := c.WriteMessage(websocket.TextMessage, []byte("still here")); err != nil {
			t.Fatal(err)
		}
		if err := <-read; err != nil {
			t.Fatalf("echo after %v of pongs: %v", 5*idle, err)
		}
	})
}

// testLargeMessagesLetGo: connections that each echoed a message of 4 MiB
// and went idle keep a small buffer at most, not the message.
func testLargeMessagesLetGo(t *testing.T, start Start, o *FlagsOptions) {
	const conns, size = 10, 4 << 20
	s := start(t)
	heap := func() uint64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := heap()
	p := bytes.Repeat([]byte("L"), size)
	for range conns {
		EchoOnce(t, Dial(t, s), p)
	}
	after := heap()
	grew := int64(after) - int64(before)
	if grew > conns*size/4 {
		t.Fatalf("the heap grew by %d MiB with %d idle connections after a %d MiB message each: the messages are kept", grew>>20, conns, size>>20)
	}
	t.Logf("%d idle connections after a %d MiB message each: the heap grew by %d KiB", conns, size>>20, grew>>10)
}

// testDrainCountsUnechoed: a client that sends and never reads fills the
// server's queue, so the echo of the message being handled waits; a drain
// then cannot echo it, and the report counts it.
func testDrainCountsUnechoed(t *testing.T, start Start, o *FlagsOptions) {
	s := start(t, "-drain", "500ms")
	d := websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			c.(*net.TCPConn).SetReadBuffer(32 << 10)
		}
		return c, err
	}}
	c, _, err := d.Dial(s.WSURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Send until the server stops reading, which it does only while an
	// echo waits for room.
	p := bytes.Repeat([]byte("x"), 64<<10)
	for i := 0; ; i++ {
		c.SetWriteDeadline(time.Now().Add(time.Second))
		if err := c.WriteMessage(websocket.BinaryMessage, p); err != nil {
			break
		}
		if i > 10000 {
			t.Fatal("the server read 640 MiB from a client that reads nothing")
		}
	}
	s.Stop()
	out := strings.Join(s.Lines(), "\n")
	m := regexp.MustCompile(`drained: clean=(\d+) forced=(\d+) undelivered=(\d+)B errors=\d+ gone=\d+ notechoed=(\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no drain report in the output:\n%s", out)
	}
	if m[2] != "1" || m[3] == "0" || m[4] == "0" {
		t.Fatalf("drain report %q: want the connection forced, bytes undelivered, and the message being echoed counted", m[0])
	}
}

// testCertFiles serves HTTPS and WSS with -cert and -key.
func testCertFiles(t *testing.T, start Start, o *FlagsOptions) {
	cert, err := o.Cert("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}), 0o600); err != nil {
		t.Fatal(err)
	}
	s := start(t, "-cert", certFile, "-key", keyFile)
	if !s.TLS() {
		t.Fatalf("with -cert and -key the server serves %s", s.URL)
	}
	EchoOnce(t, Dial(t, s), []byte("over TLS"))
}

// testHeaderOnlyProbe: clients that send only the header of a frame that
// claims 32 MiB (the limit) make the server allocate nothing for it: a
// read grows with the bytes that came. A real message of 4 MiB still
// echoes.
func testHeaderOnlyProbe(t *testing.T, start Start, o *FlagsOptions) {
	const conns = 100
	s := start(t)
	heap := func() uint64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		return m.HeapInuse
	}
	before := heap()
	addr := strings.TrimSuffix(strings.TrimPrefix(s.URL, "http://"), "/")
	header := []byte{0x82, 0xff, 0, 0, 0, 0, 0x02, 0, 0, 0, 1, 2, 3, 4} // binary, masked, 32 MiB
	for range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		key := "dGhlIHNhbXBsZSBub25jZQ=="
		if _, err := c.Write([]byte("GET /ws HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		resp := make([]byte, 129)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if n, err := c.Read(resp); err != nil || !bytes.HasPrefix(resp[:n], []byte("HTTP/1.1 101")) {
			t.Fatalf("handshake: %q, %v", resp[:n], err)
		}
		if _, err := c.Write(header); err != nil {
			t.Fatal(err)
		}
	}
	EchoOnce(t, Dial(t, s), bytes.Repeat([]byte("m"), 4<<20))
	grew := int64(heap()) - int64(before)
	if grew > 64<<20 {
		t.Fatalf("%d connections that sent only a header claiming 32 MiB: the heap grew by %d MiB", conns, grew>>20)
	}
	t.Logf("%d connections that sent only a header claiming 32 MiB, and a 4 MiB echo: the heap grew by %d KiB", conns, grew>>10)
}
