package wsconn

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gorilla/websocket"

	"github.com/pollws/pollws/internal/handlertest"
	"github.com/pollws/pollws/wsconn/internal/handshake"
)

// hsKey is the key of RFC 6455 section 1.3.
const hsKey = "dGhlIHNhbXBsZSBub25jZQ=="

// hsRequest is a valid opening handshake for host, changed by changes:
// "Name: value" replaces the line of that name or is added, "-Name"
// removes it, "+Name: value" adds a line, and a line with a method
// replaces the request line.
func hsRequest(host string, changes ...string) string {
	head := []string{
		"GET /chat HTTP/1.1",
		"Host: " + host,
		"Upgrade: websocket",
		"Connection: Upgrade",
		"Sec-WebSocket-Key: " + hsKey,
		"Sec-WebSocket-Version: 13",
	}
	find := func(name string) int {
		for i, l := range head {
			if strings.HasPrefix(strings.ToLower(l), strings.ToLower(name)+":") {
				return i
			}
		}
		return -1
	}
	for _, c := range changes {
		name, _, _ := strings.Cut(strings.TrimLeft(c, "+-"), ":")
		switch i := find(name); {
		case strings.HasPrefix(c, "+"):
			head = append(head, c[1:])
		case strings.HasPrefix(c, "-"):
			if i >= 0 {
				head = append(head[:i], head[i+1:]...)
			}
		case strings.HasSuffix(c, " HTTP/1.1") || strings.HasSuffix(c, " HTTP/1.0"):
			head[0] = c
		case i >= 0:
			head[i] = c
		default:
			head = append(head, c)
		}
	}
	return strings.Join(head, "\r\n") + "\r\n\r\n"
}

// hsDial opens a connection to srv, over TLS if it has a certificate, and
// closes it when the test ends.
func hsDial(t *testing.T, srv *httptest.Server) net.Conn {
	t.Helper()
	var c net.Conn
	var err error
	if srv.TLS != nil {
		c, err = tls.Dial("tcp", srv.Listener.Addr().String(), connClientTLS(t))
	} else {
		c, err = net.Dial("tcp", srv.Listener.Addr().String())
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// hsFrames returns the client frames (masked) of text messages msgs.
func hsFrames(msgs ...string) []byte {
	var b bytes.Buffer
	for _, m := range msgs {
		ws.WriteFrame(&b, ws.MaskFrame(ws.NewTextFrame([]byte(m))))
	}
	return b.Bytes()
}

// hsExpectEcho reads text messages msgs from the server, as frames.
func hsExpectEcho(t *testing.T, r io.Reader, msgs ...string) {
	t.Helper()
	for _, m := range msgs {
		f, err := ws.ReadFrame(r)
		if err != nil || f.Header.OpCode != ws.OpText || string(f.Payload) != m {
			t.Fatalf("read %+v %q, %v; want the echo of %q", f.Header, f.Payload, err, m)
		}
	}
}

// hsExpectClosed checks that the server ends the connection: nothing
// more comes, in particular no second HTTP answer.
func hsExpectClosed(t *testing.T, c net.Conn, br *bufio.Reader) {
	t.Helper()
	// The server closes at once; the deadline only bounds a failure.
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if b, err := br.ReadByte(); err != io.EOF {
		rest, _ := br.Peek(br.Buffered())
		t.Fatalf("after the answer: %q, %v; want the connection closed", append([]byte{b}, rest...), err)
	}
}

// TestUpgradeHandshake sends handshakes as raw bytes: those RFC 6455 and
// RFC 7230 accept must switch protocols and echo a message, the others
// get their status, the headers it needs, and the connection's end.
func TestUpgradeHandshake(t *testing.T) {
	srv, wait := connEchoServer(t, false, nil)
	defer wait()
	host := srv.Listener.Addr().String()
	for _, tc := range []struct {
		name    string
		changes []string
		status  int
		header  string // "Name: value" the answer must carry
	}{
		{"RFC 6455", nil, 101, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="},
		{"Connection over two lines", []string{"Connection: keep-alive", "+Connection: Upgrade"}, 101, ""},
		{"Upgrade: h2c, websocket", []string{"Upgrade: h2c, websocket"}, 101, ""},
		{"Connection: keep-alive, Upgrade", []string{"Connection: keep-alive, Upgrade"}, 101, ""},
		{"tokens in any case", []string{"Upgrade: WEBSOCKET", "Connection: upgrade"}, 101, ""},
		{"two keys", []string{"+Sec-WebSocket-Key: " + hsKey}, 400, ""},
		{"key not base64", []string{"Sec-WebSocket-Key: this-is-no-base64-value!"}, 400, ""},
		{"key of 15 bytes", []string{"Sec-WebSocket-Key: MDEyMzQ1Njc4OWFiY2Rl"}, 400, ""},
		{"key of 17 bytes", []string{"Sec-WebSocket-Key: MDEyMzQ1Njc4OWFiY2RlZmc="}, 400, ""},
		{"no key", []string{"-Sec-WebSocket-Key"}, 400, ""},
		{"version 8", []string{"Sec-WebSocket-Version: 8"}, 426, "Sec-WebSocket-Version: 13"},
		{"no version", []string{"-Sec-WebSocket-Version"}, 426, "Sec-WebSocket-Version: 13"},
		{"POST", []string{"POST /chat HTTP/1.1", "Content-Length: 0"}, 405, "Allow: GET"},
		{"HTTP/1.0", []string{"GET /chat HTTP/1.0"}, 400, ""},
		{"malformed subprotocols", []string{"Sec-WebSocket-Protocol: a b"}, 400, ""},
		{"malformed extensions", []string{"Sec-WebSocket-Extensions: permessage-deflate;"}, 400, ""},
		{"foreign origin", []string{"Origin: http://evil.example"}, 403, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := hsDial(t, srv)
			// The frame behind the request must be echoed after a 101,
			// and never read as HTTP after a refusal.
			if _, err := io.WriteString(c, hsRequest(host, tc.changes...)+string(hsFrames("hello"))); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("%s %q; want %d", resp.Status, body, tc.status)
			}
			if name, value, _ := strings.Cut(tc.header, ": "); tc.header != "" && resp.Header.Get(name) != value {
				t.Errorf("%s: %q, want %q", name, resp.Header.Values(name), value)
			}
			if tc.status != 101 {
				if !resp.Close {
					t.Error("the answer does not say Connection: close")
				}
				hsExpectClosed(t, c, br)
				return
			}
			if got, want := resp.Header.Get("Sec-WebSocket-Accept"), handshake.AcceptKey(hsKey); got != want {
				t.Errorf("Sec-WebSocket-Accept %q, want %q", got, want)
			}
			hsExpectEcho(t, br, "hello")
		})
	}
}

// TestUpgradeNotWebSocket: a request that asks for no WebSocket gets 426
// and keeps its connection for the next request, as HTTP does.
func TestUpgradeNotWebSocket(t *testing.T) {
	srv, wait := connEchoServer(t, false, nil)
	defer wait()
	c := hsDial(t, srv)
	br := bufio.NewReader(c)
	for range 2 {
		if _, err := io.WriteString(c, "GET /chat HTTP/1.1\r\nHost: a\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != 426 || resp.Header.Get("Upgrade") != "websocket" || resp.Header.Get("Connection") != "Upgrade" {
			t.Fatalf("%s with %v; want 426 with Upgrade: websocket and Connection: Upgrade", resp.Status, resp.Header)
		}
	}
}

// TestUpgradeEarlyData checks the documented choice: bytes a client
// sends behind its request, before the 101 came, are the connection's
// first frames, however they arrive.
func TestUpgradeEarlyData(t *testing.T) {
	pad := "X-Pad: " + strings.Repeat("p", 5000) // past net/http's 4 KiB read buffer
	frames := hsFrames("early", "data")
	for _, tc := range []struct {
		name  string
		tls   bool
		pad   bool
		split int // frames[:split] go with the request, the rest in a write of their own
	}{
		{"with the request", false, false, len(frames)},
		{"with the request over TLS", true, false, len(frames)},
		{"a frame cut in two", false, false, 9},
		{"in a write of their own", false, false, 0},
		{"behind a request larger than the read buffer", false, true, len(frames)},
		{"over TLS, a frame cut in two, behind a large request", true, true, 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, wait := connEchoServer(t, tc.tls, nil)
			defer wait()
			c := hsDial(t, srv)
			var changes []string
			if tc.pad {
				changes = append(changes, pad)
			}
			req := hsRequest(srv.Listener.Addr().String(), changes...)
			if _, err := io.WriteString(c, req+string(frames[:tc.split])); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Write(frames[tc.split:]); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil || resp.StatusCode != 101 {
				t.Fatalf("answer %v, %v; want 101", resp, err)
			}
			hsExpectEcho(t, br, "early", "data")
			c.Close()
		})
	}
}

// TestUpgradeSubprotocols negotiates with gorilla's client: the server
// takes the first subprotocol the client offers that it speaks.
func TestUpgradeSubprotocols(t *testing.T) {
	for _, tc := range []struct {
		name            string
		server, offered []string
		want            string
	}{
		{"client's first that the server speaks", []string{"chat", "v2.chat"}, []string{"v3.chat", "v2.chat", "chat"}, "v2.chat"},
		{"none offered", []string{"chat"}, nil, ""},
		{"none in common", []string{"chat"}, []string{"other"}, ""},
		{"server speaks none", nil, []string{"chat"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var handlers handlertest.Group
			chosen := make(chan string, 1)
			srv := httptest.NewServer(handlers.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c, err := Upgrade(w, r, &UpgradeOptions{Protocols: tc.server})
				if err != nil {
					chosen <- err.Error()
					return
				}
				chosen <- c.Subprotocol()
				c.Close()
			})))
			defer func() {
				srv.Close()
				handlers.Wait()
			}()
			d := websocket.Dialer{Subprotocols: tc.offered}
			gc, resp, err := d.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
			if err != nil {
				t.Fatal(err)
			}
			gc.Close()
			if got := <-chosen; got != tc.want {
				t.Errorf("server's Subprotocol() = %q, want %q", got, tc.want)
			}
			if got := gc.Subprotocol(); got != tc.want {
				t.Errorf("gorilla's Subprotocol() = %q, want %q", got, tc.want)
			}
			if _, ok := resp.Header["Sec-Websocket-Protocol"]; ok != (tc.want != "") {
				t.Errorf("Sec-WebSocket-Protocol in the answer: %q, want %q", resp.Header.Values("Sec-WebSocket-Protocol"), tc.want)
			}
		})
	}
}

// TestUpgradeHeader checks UpgradeOptions.Header: its fields are in the
// 101, and one the handshake writes itself fails every upgrade with 500.
func TestUpgradeHeader(t *testing.T) {
	srv, wait := connEchoServer(t, false, &UpgradeOptions{Header: http.Header{"X-Served-By": {"pollws"}}})
	gc, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	gc.Close()
	wait()
	if got := resp.Header.Get("X-Served-By"); got != "pollws" {
		t.Errorf("X-Served-By: %q, want pollws", got)
	}

	var handlers handlertest.Group
	errc := make(chan error, 1)
	srv = httptest.NewServer(handlers.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := Upgrade(w, r, &UpgradeOptions{Header: http.Header{"Sec-WebSocket-Accept": {"x"}}})
		errc <- err
	})))
	defer func() {
		srv.Close()
		handlers.Wait()
	}()
	if gc, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil); err == nil || resp == nil || resp.StatusCode != 500 {
		if gc != nil {
			gc.Close()
		}
		t.Fatalf("Dial = %v, %v; want 500", resp, err)
	}
	if err := <-errc; !errors.Is(err, handshake.ErrHeader) {
		t.Errorf("Upgrade = %v, want an error wrapping handshake.ErrHeader", err)
	}
}

// TestUpgradeHTTP2 checks the answer to an extended CONNECT: 200 with the
// chosen subprotocol and none of the 101's fields, flushed; the Conn's
// HandlerDone is closed once the Conn is.
func TestUpgradeHTTP2(t *testing.T) {
	r := httptest.NewRequest(http.MethodConnect, "https://example.com/chat", nil)
	r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/2.0", 2, 0
	r.Header[":protocol"] = []string{"websocket"}
	r.Header.Set("Sec-WebSocket-Version", "13")
	r.Header.Set("Sec-WebSocket-Protocol", "other, chat")
	w := httptest.NewRecorder()
	c, err := Upgrade(w, r, &UpgradeOptions{Protocols: []string{"chat"}, Header: http.Header{"X-Extra": {"1"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	h := w.Result().Header
	if w.Code != http.StatusOK || !w.Flushed || h.Get("Sec-WebSocket-Protocol") != "chat" || h.Get("X-Extra") != "1" || c.Subprotocol() != "chat" {
		t.Errorf("answered %d (flushed %v) with %v, Subprotocol %q; want 200, flushed, chat and X-Extra", w.Code, w.Flushed, h, c.Subprotocol())
	}
	for _, name := range []string{"Upgrade", "Connection", "Sec-WebSocket-Accept"} {
		if v := h.Values(name); v != nil {
			t.Errorf("the answer carries %s: %q", name, v)
		}
	}
	select {
	case <-c.HandlerDone():
		t.Fatal("HandlerDone is closed while the Conn is open")
	default:
	}
	c.Close()
	select {
	case <-c.HandlerDone():
	default:
		t.Fatal("HandlerDone is open after Close")
	}
}

// TestUpgradeHTTP2Refused: an extended CONNECT for another protocol, or
// from another origin, is refused without a Conn, and only its stream
// ends.
func TestUpgradeHTTP2Refused(t *testing.T) {
	for _, tc := range []struct {
		name     string
		protocol string
		origin   string
		status   int
	}{
		{"not websocket", "webtransport", "", http.StatusUpgradeRequired},
		{"cross-origin", "websocket", "https://evil.example", http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodConnect, "https://example.com/chat", nil)
			r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/2.0", 2, 0
			r.Header[":protocol"] = []string{tc.protocol}
			r.Header.Set("Sec-WebSocket-Version", "13")
			if tc.origin != "" {
				r.Header.Set("Origin", tc.origin)
			}
			w := httptest.NewRecorder()
			if c, err := Upgrade(w, r, nil); err == nil || w.Code != tc.status || w.Header().Get("Connection") != "" {
				if c != nil {
					c.Close()
				}
				t.Errorf("Upgrade = %v, answered %d with %v; want an error and %d without Connection", err, w.Code, w.Header(), tc.status)
			}
		})
	}
}

// TestUpgradeWithoutHijack: a ResponseWriter that cannot hand over its
// connection gets 500 and Upgrade an error.
func TestUpgradeWithoutHijack(t *testing.T) {
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(hsRequest("example.com"))))
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	if c, err := Upgrade(w, r, nil); !errors.Is(err, http.ErrNotSupported) || w.Code != 500 {
		if c != nil {
			c.Close()
		}
		t.Errorf("Upgrade = %v, answered %d; want http.ErrNotSupported and 500", err, w.Code)
	}
}

// TestUpgradeGobwasProtocols negotiates a subprotocol with gobwas's
// client.
func TestUpgradeGobwasProtocols(t *testing.T) {
	srv, wait := connEchoServer(t, false, &UpgradeOptions{Protocols: []string{"chat"}})
	defer wait()
	d := ws.Dialer{Protocols: []string{"other", "chat"}}
	conn, _, hs, err := d.Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http"))
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if hs.Protocol != "chat" {
		t.Errorf("gobwas's handshake chose %q, want chat", hs.Protocol)
	}
}
