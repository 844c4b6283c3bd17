package echotest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// badCase is input that must make the server close the connection with
// want.
type badCase struct {
	name string
	in   []byte
	want int
}

func badCases() []badCase {
	c := []badCase{
		{"invalid UTF-8 text", text(bFin|bText, "caf\xc3("), 1007},
		{"invalid UTF-8 across fragments", cat(text(bText, "ab\xe2\x82"), text(bFin|bCont, "xy")), 1007},
		{"RSV1 without an extension", text(bFin|bRsv1|bText, "rsv"), 1002},
		{"RSV3 without an extension", text(bFin|bRsv3|bBin, "rsv"), 1002},
		{"unmasked client frame", rawFrame(bFin|bText, []byte("unmasked"), true), 1002},
		{"reserved opcode 0x3", text(bFin|0x3, "x"), 1002},
		{"reserved opcode 0xB", text(bFin|0xb, "x"), 1002},
		{"fragmented control frame", cat(text(bPing, "a"), text(bFin|bCont, "b")), 1002},
		{"control frame of 126 bytes", frame(bFin|bPing, bytes.Repeat([]byte("p"), 126)), 1002},
		{"continuation without a start", text(bFin|bCont, "orphan"), 1002},
		{"new message inside a fragmented one", cat(text(bText, "one"), text(bFin|bBin, "two")), 1002},
		{"close payload of 1 byte", frame(bFin|bClos, []byte{0x03}), 1002},
		{"close reason not UTF-8", frame(bFin|bClos, closeBody(1000, "\xce\xba\xed\xa0\x80")), 1007},
		// A header announcing 32 MiB + 1 bytes, whose payload never comes.
		{"frame header over the default limit", []byte{bFin | bBin, 0x80 | 127, 0, 0, 0, 0, 0x02, 0, 0, 1, 1, 2, 3, 4}, 1009},
	}
	for _, code := range []uint16{0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999, 5000, 65535} {
		c = append(c, badCase{"close code " + strconv.Itoa(int(code)), frame(bFin|bClos, closeBody(code, "")), 1002})
	}
	return c
}

// healthyClient connects a well-behaved client that closes with a
// closing handshake when the test ends.
func healthyClient(t *testing.T, s *Server) *websocket.Conn {
	t.Helper()
	c := gorillaDial(t, s)
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

// sendBad sends one bad input on a connection of its own and returns
// the close code the server answered with, as an error when it is not
// want.
func sendBad(s *Server, tc badCase) error {
	_, err := sendBadFrom(s, tc)
	return err
}

// sendBadFrom is sendBad that also returns the address the bad
// connection came from, as the server's log names it.
func sendBadFrom(s *Server, tc badCase) (string, error) {
	c, err := dialRaw(s)
	if err != nil {
		return "", err
	}
	defer c.Close()
	from := c.LocalAddr().String()
	if _, err := c.Write(tc.in); err != nil {
		return from, fmt.Errorf("write: %w", err)
	}
	got, err := c.serverClose()
	switch {
	case err != nil:
		return from, err
	case got == 0:
		return from, fmt.Errorf("the server ended the connection without a close frame, want close %d", tc.want)
	case got != tc.want:
		return from, fmt.Errorf("the server closed with %d, want %d", got, tc.want)
	}
	return from, nil
}

// BadInput sends each kind of bad input on a connection of its own while
// a healthy client is connected: the server closes the bad connection
// with the status code RFC 6455 gives (1002 for a protocol error, 1007
// for text that is not UTF-8, 1009 for a message over -max-message), logs
// at most a line for it, and the healthy client is unharmed. Requests
// that are not WebSocket handshakes get 400 or 426, or the connection's
// end, and harm nobody either.
//
// The cases are named "BadInput/frames/<case>", "BadInput/too big/<case>"
// and "BadInput/handshake/<case>" in known.
func BadInput(t *testing.T, start Start, known Known) {
	t.Run("frames", func(t *testing.T) {
		s := start(t)
		healthy := healthyClient(t, s)
		checkEcho(t, healthy, "before")
		for _, tc := range badCases() {
			t.Run(tc.name, func(t *testing.T) {
				check(t, known, "BadInput/frames/"+tc.name, func() error { return sendBad(s, tc) })
				checkEcho(t, healthy, "after "+tc.name)
			})
		}
	})
	t.Run("too big", func(t *testing.T) { tooBig(t, start, known) })
	t.Run("handshake", func(t *testing.T) { badHandshakes(t, start, known) })
}

// tooBig sends messages over a -max-message of 1000 bytes, in one frame
// and in fragments: 1009, at most one log line per connection, and the
// healthy client unharmed.
func tooBig(t *testing.T, start Start, known Known) {
	const max = 1000
	s := start(t, "-max-message", strconv.Itoa(max))
	healthy := healthyClient(t, s)
	checkEcho(t, healthy, strings.Repeat("x", max))
	cases := []badCase{
		{"one frame", frame(bFin|bBin, make([]byte, max+1)), 1009},
		{"fragments", cat(frame(bText, bytes.Repeat([]byte("a"), max/2)), frame(bFin|bCont, bytes.Repeat([]byte("b"), max/2+1))), 1009},
		{"header only", []byte{bFin | bBin, 0x80 | 126, 0x03, 0xe9, 1, 2, 3, 4}, 1009},
	}
	first := len(s.Lines())
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			check(t, known, "BadInput/too big/"+tc.name, func() error {
				from, err := sendBadFrom(s, tc)
				if err != nil {
					return err
				}
				checkEcho(t, healthy, "after "+tc.name)
				// A server may log after its close frame went, so a line
				// of the case before may come now: count this
				// connection's, which name its address.
				var lines []string
				for _, l := range s.Lines()[first:] {
					if strings.Contains(l, from) {
						lines = append(lines, l)
					}
				}
				if len(lines) > 1 {
					return fmt.Errorf("%d log lines for one bad connection, want at most 1: %q", len(lines), lines)
				}
				return nil
			})
		})
	}
	// For a server whose lines name no address: a line per case at most.
	if lines := s.Lines()[first:]; len(lines) > len(cases) {
		t.Errorf("%d log lines for %d bad connections, want at most one each: %q", len(lines), len(cases), lines)
	}
}

// badHandshakes sends requests that are not WebSocket handshakes to /ws:
// a plain GET gets 400 or 426, garbage gets the connection closed, and
// the healthy client is unharmed.
func badHandshakes(t *testing.T, start Start, known Known) {
	s := start(t)
	healthy := healthyClient(t, s)
	checkEcho(t, healthy, "before")
	addr := strings.TrimSuffix(strings.TrimPrefix(s.URL, "http://"), "/")
	for _, tc := range []struct {
		name string
		req  string
		want func(resp *http.Response, err error) error
	}{
		{"plain GET", "GET /ws HTTP/1.1\r\nHost: " + addr + "\r\nConnection: close\r\n\r\n", func(resp *http.Response, err error) error {
			if err != nil {
				return fmt.Errorf("reading the response: %w", err)
			}
			if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusUpgradeRequired {
				return fmt.Errorf("plain GET /ws = %d, want 400 or 426", resp.StatusCode)
			}
			return nil
		}},
		{"key not base64", "GET /ws HTTP/1.1\r\nHost: " + addr + "\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: !!!!!!!!!!!!!!!!!!!!!!==\r\n\r\n", func(resp *http.Response, err error) error {
			if err != nil {
				return fmt.Errorf("reading the response: %w", err)
			}
			if resp.StatusCode != http.StatusBadRequest {
				return fmt.Errorf("a key that is not base64 got %d, want 400", resp.StatusCode)
			}
			return nil
		}},
		{"garbage", string(append(text(bFin|bText, "no handshake"), "\x00\xff\r\n\r\n"...)), func(resp *http.Response, err error) error {
			if err == nil && resp.StatusCode < 400 {
				return fmt.Errorf("garbage got %d, want an error status or the connection's end", resp.StatusCode)
			}
			return nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check(t, known, "BadInput/handshake/"+tc.name, func() error {
				conn, err := net.Dial("tcp", addr)
				if err != nil {
					return err
				}
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := io.WriteString(conn, tc.req); err != nil {
					return err
				}
				resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
				if err == nil {
					resp.Body.Close()
				}
				return tc.want(resp, err)
			})
			checkEcho(t, healthy, "after "+tc.name)
		})
	}
}
