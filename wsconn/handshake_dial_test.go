package wsconn

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gorilla/websocket"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/wsconn/internal/handshake"
	"github.com/pollws/pollws/wsconn/internal/wstest"
)

// hsServer accepts connections on loopback, reads each one's request and
// writes answer(r) raw; then it closes the connection if hangUp is set,
// else it reads until the client goes. It returns the server's ws:// URL;
// the test's end closes the listener and waits for the connections'
// goroutines.
func hsServer(t *testing.T, hangUp bool, answer func(r *http.Request) string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			// Added by a goroutine that wg counts, so before any Wait
			// can return.
			wg.Go(func() {
				defer c.Close()
				r, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				if _, err := io.WriteString(c, answer(r)); err != nil || hangUp {
					return
				}
				io.Copy(io.Discard, c)
			})
		}
	})
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
	})
	return "ws://" + l.Addr().String() + "/chat"
}

// hsSwitch is the 101 that answers r, with extra header lines.
func hsSwitch(r *http.Request, lines ...string) string {
	head := []string{
		"HTTP/1.1 101 Switching Protocols",
		"Upgrade: websocket",
		"Connection: Upgrade",
		"Sec-WebSocket-Accept: " + handshake.AcceptKey(r.Header.Get("Sec-WebSocket-Key")),
	}
	return strings.Join(append(head, lines...), "\r\n") + "\r\n\r\n"
}

// TestDialChecksTheAnswer dials servers that answer wrongly: each Dial
// fails with an error that says what was wrong.
func TestDialChecksTheAnswer(t *testing.T) {
	for _, tc := range []struct {
		name   string
		hangUp bool
		answer func(r *http.Request) string
		err    error
		msg    string // in the error's text
	}{
		{"wrong accept key", false, func(r *http.Request) string {
			return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + handshake.AcceptKey(hsKey) + "\r\n\r\n"
		}, handshake.ErrAccept, "wrong Sec-WebSocket-Accept"},
		{"no accept key", false, func(r *http.Request) string {
			return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
		}, handshake.ErrAccept, "wrong Sec-WebSocket-Accept"},
		{"200", false, func(r *http.Request) string {
			return "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
		}, handshake.ErrStatus, "did not switch protocols: HTTP/1.1 200 OK"},
		{"403", false, func(r *http.Request) string {
			return "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"
		}, handshake.ErrStatus, "403 Forbidden"},
		{"subprotocol not offered", false, func(r *http.Request) string {
			return hsSwitch(r, "Sec-WebSocket-Protocol: other")
		}, handshake.ErrProtocolNotOffered, `"other", offered ["chat" "v2"]`},
		{"extension not offered", false, func(r *http.Request) string {
			return hsSwitch(r, "Sec-WebSocket-Extensions: permessage-deflate")
		}, handshake.ErrExtensionNotOffered, "permessage-deflate"},
		{"no Upgrade", false, func(r *http.Request) string {
			return strings.Replace(hsSwitch(r), "Upgrade: websocket\r\n", "", 1)
		}, handshake.ErrUpgrade, "Upgrade"},
		{"not HTTP", false, func(r *http.Request) string { return "SSH-2.0-OpenSSH_9.9\r\n" }, nil, "malformed HTTP"},
		{"cut short", true, func(r *http.Request) string { return "HTTP/1.1 101 Switching Protocols\r\n" }, io.ErrUnexpectedEOF, "unexpected EOF"},
		{"endless", false, func(r *http.Request) string {
			return "HTTP/1.1 101 Switching Protocols\r\n" + strings.Repeat("X-Pad: "+strings.Repeat("p", 1000)+"\r\n", 1100)
		}, nil, "longer than 1048576 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := hsServer(t, tc.hangUp, tc.answer)
			// The deadline only bounds a failure: every case ends at once.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := Dial(ctx, url, &DialOptions{Protocols: []string{"chat", "v2"}})
			if err == nil {
				c.Close()
				t.Fatal("Dial succeeded")
			}
			if tc.err != nil && !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("Dial = %v; want an error wrapping %v that says %q", err, tc.err, tc.msg)
			}
		})
	}
}

// TestDialRequest checks the request Dial sends: a valid handshake with
// the offered subprotocols and the extra header fields.
func TestDialRequest(t *testing.T) {
	seen := make(chan *http.Request, 1)
	url := hsServer(t, false, func(r *http.Request) string {
		seen <- r
		return hsSwitch(r, "Sec-WebSocket-Protocol: v2")
	})
	c, err := Dial(context.Background(), url+"?room=1", &DialOptions{
		Protocols: []string{"chat", "v2"},
		Header:    http.Header{"Origin": {"http://app.example"}, "Host": {"app.example"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if p := c.Subprotocol(); p != "v2" {
		t.Errorf("Subprotocol = %q, want v2", p)
	}
	r := <-seen
	req, err := handshake.ParseRequest(r)
	if err != nil {
		t.Fatalf("the request is no valid handshake: %v", err)
	}
	if r.RequestURI != "/chat?room=1" || r.Host != "app.example" || r.Header.Get("Origin") != "http://app.example" || strings.Join(req.Protocols, " ") != "chat v2" {
		t.Errorf("request %s %s, Host %s, Origin %s, subprotocols %q", r.Method, r.RequestURI, r.Host, r.Header.Get("Origin"), req.Protocols)
	}
}

// TestDialRefusesOptions: a bad URL or a header field that the handshake
// writes fails before anything is dialed.
func TestDialRefusesOptions(t *testing.T) {
	dialed := false
	o := func(h http.Header) *DialOptions {
		return &DialOptions{Header: h, NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dialed = true
			return nil, errors.New("dialed")
		}}
	}
	for _, tc := range []struct {
		url    string
		header http.Header
		err    error
	}{
		{"http://127.0.0.1:1/", nil, handshake.ErrURL},
		{"ws:///path", nil, handshake.ErrURL},
		{"ws://127.0.0.1:1/", http.Header{"Sec-WebSocket-Protocol": {"chat"}}, handshake.ErrHeader},
		{"ws://127.0.0.1:1/", http.Header{"X-Bad": {"a\r\nb"}}, handshake.ErrHeader},
	} {
		dialed = false
		if c, err := Dial(context.Background(), tc.url, o(tc.header)); !errors.Is(err, tc.err) || dialed {
			if c != nil {
				c.Close()
			}
			t.Errorf("Dial(%s, Header %q) = %v (dialed: %v); want an error wrapping %v", tc.url, tc.header, err, dialed, tc.err)
		}
	}
}

// TestDialContext: ctx bounds the handshake, so a server that never
// answers costs the caller its deadline or its cancellation, no more.
func TestDialContext(t *testing.T) {
	silent := func() (url string, got chan struct{}) {
		got = make(chan struct{}, 1)
		return hsServer(t, false, func(r *http.Request) string {
			got <- struct{}{}
			return "" // and no answer
		}), got
	}

	url, _ := silent()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	c, err := Dial(ctx, url, nil)
	if err == nil {
		c.Close()
	}
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Errorf("Dial with a deadline = %v after %v; want context.DeadlineExceeded at the deadline", err, time.Since(start))
	}

	url, got := silent()
	ctx, cancel = context.WithCancel(context.Background())
	go func() {
		<-got // the request reached the server: the handshake waits for its answer
		cancel()
	}()
	c, err = Dial(ctx, url, nil)
	if err == nil {
		c.Close()
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Dial cancelled during the handshake = %v; want context.Canceled", err)
	}
}

// TestDialBytesPastTheAnswer: frames the server sends in the same packet
// as its 101 are the connection's first messages.
func TestDialBytesPastTheAnswer(t *testing.T) {
	var frames bytes.Buffer
	ws.WriteFrame(&frames, ws.NewTextFrame([]byte("first")))
	ws.WriteFrame(&frames, ws.NewBinaryFrame([]byte("second")))
	url := hsServer(t, false, func(r *http.Request) string { return hsSwitch(r) + frames.String() })
	c, err := Dial(context.Background(), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, want := range []struct {
		op MessageType
		p  string
	}{{Text, "first"}, {Binary, "second"}} {
		op, p, err := readMessage(context.Background(), c)
		if err != nil || op != want.op || string(p) != want.p {
			t.Fatalf("ReadMessage = %v %q, %v; want %v %q", op, p, err, want.op, want.p)
		}
	}
}

// TestDialTLS dials a server that also speaks HTTP/2, with a
// configuration that names neither the server nor HTTP/1.1: Dial verifies
// the certificate for the URL's host and asks for HTTP/1.1.
func TestDialTLS(t *testing.T) {
	cert, roots, err := wstest.Certificate()
	if err != nil {
		t.Fatal(err)
	}
	protos := make(chan string, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		protos <- r.TLS.NegotiatedProtocol
		c, err := Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		connEcho(c)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}
	srv.EnableHTTP2 = true
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused certificate below
	srv.StartTLS()
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())

	for _, host := range []string{"localhost", "127.0.0.1"} {
		c, err := Dial(context.Background(), "wss://"+net.JoinHostPort(host, port)+"/", &DialOptions{
			TLSConfig: &tls.Config{RootCAs: roots, NextProtos: []string{"h2", "http/1.1"}},
		})
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		if p := <-protos; p != "http/1.1" {
			t.Errorf("%s: the server saw ALPN %q, want http/1.1", host, p)
		}
		hsEcho(t, c, "over TLS")
		c.Close()
	}

	c, err := Dial(context.Background(), "wss://"+net.JoinHostPort("localhost", port)+"/", &DialOptions{
		TLSConfig: &tls.Config{RootCAs: roots, ServerName: "other.example"},
	})
	if err == nil {
		c.Close()
		t.Fatal("Dial verified the certificate for localhost against the configured ServerName other.example")
	}
	var verr *tls.CertificateVerificationError
	if !errors.As(err, &verr) {
		t.Errorf("Dial with another ServerName = %v; want a certificate verification error", err)
	}
}

// hsEcho sends msg through c to an echo server and checks the echo.
func hsEcho(t *testing.T, c *Conn, msg string) {
	t.Helper()
	ctx := context.Background()
	if _, err := asyncio.BlockOn(ctx, func(t *asyncio.Task) (asyncio.Async[int], error) {
		return c.PollWriteMessage(t, Text, []byte(msg))
	}); err != nil {
		t.Fatal(err)
	}
	if op, p, err := readMessage(ctx, c); err != nil || op != Text || string(p) != msg {
		t.Fatalf("echo %v %q, %v; want text %q", op, p, err, msg)
	}
}

// TestDialSubprotocolGorilla negotiates a subprotocol with gorilla's
// server.
func TestDialSubprotocolGorilla(t *testing.T) {
	u := websocket.Upgrader{Subprotocols: []string{"v2", "chat"}}
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(done)
		gc, err := u.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer gc.Close()
		gc.ReadMessage() // until the client goes
	}))
	defer srv.Close()
	c, err := Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http"), &DialOptions{Protocols: []string{"chat", "v2"}})
	if err != nil {
		t.Fatal(err)
	}
	if p := c.Subprotocol(); p != "v2" {
		t.Errorf("Subprotocol = %q, want gorilla's choice v2", p)
	}
	c.Close()
	<-done
}
