package echoserver

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gorilla/websocket"
)

const (
	bFin  = 0x80
	bCont = byte(ws.OpContinuation)
	bText = byte(ws.OpText)
	bBin  = byte(ws.OpBinary)
	bClos = byte(ws.OpClose)
	bPing = byte(ws.OpPing)
)

var badMask = [4]byte{0xa1, 0x02, 0x7e, 0x55}

// rawFrame encodes a frame with first header byte b0 (FIN, RSV and opcode
// bits), masked as a client masks its frames unless unmasked is set.
func rawFrame(b0 byte, payload []byte, unmasked bool) []byte {
	b := []byte{b0, 0}
	switch n := len(payload); {
	case n <= 125:
		b[1] = byte(n)
	case n <= 0xffff:
		b[1] = 126
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b[1] = 127
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	p := bytes.Clone(payload)
	if !unmasked {
		b[1] |= 0x80
		b = append(b, badMask[:]...)
		ws.Cipher(p, badMask, 0)
	}
	return append(b, p...)
}

func masked(b0 byte, payload []byte) []byte { return rawFrame(b0, payload, false) }

func closeBody(code uint16) []byte { return binary.BigEndian.AppendUint16(nil, code) }

// badCase is input that must make the server close the connection.
type badCase struct {
	name string
	in   []byte
	want ws.StatusCode // the close code the pollws backend sends
	// gorillaAccepts marks input gorilla/websocket itself takes as valid:
	// on that backend only the other connections' health is checked.
	gorillaAccepts bool
}

func badCases() []badCase {
	cat := func(b ...[]byte) []byte { return bytes.Join(b, nil) }
	c := []badCase{
		{name: "invalid UTF-8 text", in: masked(bFin|bText, []byte("caf\xc3(")), want: 1007, gorillaAccepts: true},
		{name: "invalid UTF-8 across fragments", in: cat(masked(bText, []byte("ab\xe2\x82")), masked(bFin|bCont, []byte("xy"))), want: 1007, gorillaAccepts: true},
		{name: "RSV1 without an extension", in: masked(bFin|0x40|bText, []byte("rsv")), want: 1002},
		{name: "RSV3 without an extension", in: masked(bFin|0x10|bBin, []byte("rsv")), want: 1002},
		{name: "unmasked client frame", in: rawFrame(bFin|bText, []byte("unmasked"), true), want: 1002},
		{name: "reserved opcode 0x3", in: masked(bFin|0x3, []byte("x")), want: 1002},
		{name: "reserved opcode 0xB", in: masked(bFin|0xb, []byte("x")), want: 1002},
		{name: "fragmented control frame", in: cat(masked(bPing, []byte("a")), masked(bFin|bCont, []byte("b"))), want: 1002},
		{name: "control frame of 126 bytes", in: masked(bFin|bPing, bytes.Repeat([]byte("p"), 126)), want: 1002},
		{name: "continuation without a start", in: masked(bFin|bCont, []byte("orphan")), want: 1002},
		{name: "new message inside a fragmented one", in: cat(masked(bText, []byte("one")), masked(bFin|bBin, []byte("two"))), want: 1002},
		{name: "close payload of 1 byte", in: masked(bFin|bClos, []byte{0x03}), want: 1002, gorillaAccepts: true},
		// A header announcing 32 MiB + 1 bytes, whose payload never comes.
		{name: "frame header over the default limit", in: []byte{bFin | bBin, 0x80 | 127, 0, 0, 0, 0, 0x02, 0, 0, 1, 1, 2, 3, 4}, want: 1009},
	}
	for _, code := range []uint16{999, 1005, 1006, 1016, 2999} {
		c = append(c, badCase{name: "close code " + strconv.Itoa(int(code)), in: masked(bFin|bClos, closeBody(code)), want: 1002})
	}
	return c
}

// rawDial opens a WebSocket connection to url with gobwas/ws, and returns
// it with a reader of what the server sends.
func rawDial(t *testing.T, url string) (net.Conn, io.Reader) {
	t.Helper()
	d := ws.Dialer{Timeout: 10 * time.Second}
	conn, br, _, err := d.Dial(context.Background(), url)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if br != nil {
		return conn, br
	}
	return conn, conn
}

// serverClose reads what the server sends until its close frame or the
// end of the connection, and returns the close frame's status code (1005
// for an empty one), or 0 when none came.
func serverClose(t *testing.T, r io.Reader) ws.StatusCode {
	t.Helper()
	for {
		f, err := ws.ReadFrame(r)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || isReset(err) {
				return 0
			}
			t.Fatalf("reading the server's answer: %v", err)
		}
		if f.Header.OpCode != ws.OpClose {
			continue // a pong, or data the server echoed
		}
		if len(f.Payload) < 2 {
			return ws.StatusNoStatusRcvd
		}
		return ws.StatusCode(binary.BigEndian.Uint16(f.Payload))
	}
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}

// healthyClient connects a well-behaved client that closes with a
// closing handshake when the test ends, so that the server does not wait
// for it.
func healthyClient(t *testing.T, s *server) *websocket.Conn {
	t.Helper()
	c := gorillaDial(t, s.wsURL)
	t.Cleanup(func() {
		c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	})
	return c
}

// checkEcho checks that c, a healthy client, still gets its messages
// echoed.
func checkEcho(t *testing.T, c *websocket.Conn, msg string) {
	t.Helper()
	if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		t.Fatalf("healthy client: write: %v", err)
	}
	typ, got, err := c.ReadMessage()
	if err != nil || typ != websocket.TextMessage || string(got) != msg {
		t.Fatalf("healthy client: echo = %d %q, %v; want %q", typ, got, err, msg)
	}
}

// TestBadInput sends each kind of bad input on a connection of its own
// while a healthy client is connected: the server closes the bad
// connection with the status code RFC 6455 gives (the pollws backend),
// or at least ends it (gorilla's), and the healthy client is unharmed.
func TestBadInput(t *testing.T) {
	for _, b := range backends {
		t.Run(b.String(), func(t *testing.T) {
			s := startServer(t, b, false)
			healthy := healthyClient(t, s)
			checkEcho(t, healthy, "before")
			for _, tc := range badCases() {
				t.Run(tc.name, func(t *testing.T) {
					conn, r := rawDial(t, s.wsURL)
					if _, err := conn.Write(tc.in); err != nil {
						t.Fatalf("write: %v", err)
					}
					if b == Gorilla && tc.gorillaAccepts {
						// No close code to check: only that the server
						// survives the input and the connection's end.
						conn.Close()
						checkEcho(t, healthy, "after "+tc.name)
						return
					}
					got := serverClose(t, r)
					conn.Close()
					checkBadClose(t, b, got, tc.want)
					checkEcho(t, healthy, "after "+tc.name)
				})
			}
		})
	}
}

// checkBadClose checks the close code a backend sent on bad input: the
// pollws backend must send want; the gorilla backend may send any of the
// codes for bad input, or end the connection without one.
func checkBadClose(t *testing.T, b Backend, got, want ws.StatusCode) {
	t.Helper()
	switch {
	case b == Pollws && got != want:
		t.Fatalf("server closed with %d, want %d", got, want)
	case b == Gorilla && got != 0 && got != 1002 && got != 1007 && got != 1009:
		t.Fatalf("server closed with %d, want 1002, 1007, 1009 or the connection's end", got)
	}
}

// startSmallServer is startServer with a MaxMessage of max bytes, and a
// logger that counts the lines it gets.
func startSmallServer(t *testing.T, backend Backend, max int64, lines *countHandler) *server {
	t.Helper()
	cfg := Config{Addr: "127.0.0.1:0", Backend: backend, Drain: 5 * time.Second, MaxMessage: max, Logger: slog.New(lines)}
	ln, url, err := Listen(&cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	s := New(cfg)
	srv := &http.Server{Handler: s.Handler()}
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

// countHandler is a slog.Handler that counts records at Warn and above.
type countHandler struct {
	slog.Handler
	n chan struct{}
}

func newCountHandler() *countHandler {
	return &countHandler{Handler: slog.DiscardHandler, n: make(chan struct{}, 100)}
}

func (h *countHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *countHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		select {
		case h.n <- struct{}{}:
		default:
		}
	}
	return nil
}

// TestBadInputTooBig sends messages over a small -max-message, in one
// frame and in fragments: 1009, at most one log line per connection, and
// the healthy client unharmed.
func TestBadInputTooBig(t *testing.T) {
	const max = 1000
	cases := []badCase{
		{name: "one frame", in: masked(bFin|bBin, make([]byte, max+1)), want: 1009},
		{name: "fragments", in: bytes.Join([][]byte{masked(bText, bytes.Repeat([]byte("a"), max/2)), masked(bFin|bCont, bytes.Repeat([]byte("b"), max/2+1))}, nil), want: 1009},
	}
	for _, b := range backends {
		t.Run(b.String(), func(t *testing.T) {
			lines := newCountHandler()
			s := startSmallServer(t, b, max, lines)
			healthy := healthyClient(t, s)
			checkEcho(t, healthy, strings.Repeat("x", max))
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					conn, r := rawDial(t, s.wsURL)
					if _, err := conn.Write(tc.in); err != nil {
						t.Fatalf("write: %v", err)
					}
					got := serverClose(t, r)
					conn.Close()
					checkBadClose(t, b, got, tc.want)
					checkEcho(t, healthy, "after "+tc.name)
					if n := len(lines.n); b == Pollws && n > 1 {
						t.Fatalf("%d log lines for one bad connection, want at most 1", n)
					}
					for len(lines.n) > 0 {
						<-lines.n
					}
				})
			}
		})
	}
}

// TestBadHandshake sends requests that are not WebSocket handshakes to
// /ws: a plain GET gets 400 or 426, garbage gets the connection closed,
// and the healthy client is unharmed.
func TestBadHandshake(t *testing.T) {
	for _, b := range backends {
		t.Run(b.String(), func(t *testing.T) {
			s := startServer(t, b, false)
			healthy := healthyClient(t, s)
			checkEcho(t, healthy, "before")
			addr := strings.TrimSuffix(strings.TrimPrefix(s.url, "http://"), "/")

			t.Run("plain GET", func(t *testing.T) {
				conn, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: "+addr+"\r\nConnection: close\r\n\r\n"); err != nil {
					t.Fatal(err)
				}
				resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
				if err != nil {
					t.Fatalf("reading the response: %v", err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusUpgradeRequired {
					t.Fatalf("plain GET /ws = %d, want 400 or 426", resp.StatusCode)
				}
				checkEcho(t, healthy, "after a plain GET")
			})

			t.Run("garbage", func(t *testing.T) {
				conn, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(10 * time.Second))
				garbage := append(masked(bFin|bText, []byte("no handshake")), "\x00\xff\r\n\r\n"...)
				if _, err := conn.Write(garbage); err != nil {
					t.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, conn); err != nil && !isReset(err) {
					t.Fatalf("after garbage, the connection did not end: %v", err)
				}
				checkEcho(t, healthy, "after garbage")
			})
		})
	}
}
