package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pollws/pollws/internal/echotest"
	"github.com/pollws/pollws/internal/exampletest"
	"github.com/pollws/pollws/internal/peers"
)

// stats reads the echo's counters at url's /stats.
func stats(t *testing.T, c *http.Client, url string) (s struct{ Accepted, HTTP2, Messages int64 }) {
	t.Helper()
	resp, err := c.Get(url + "stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestHTTP2Chromium runs the echo as a user does with -tls and
// GODEBUG=http2xconnect=1: headless Chromium loads the page over HTTP/2
// and opens WebSockets as streams of that connection, echoes 1,000
// messages and closes with 4001; the server counts the WebSockets as over
// HTTP/2, and the drain after Ctrl-C is clean.
func TestHTTP2Chromium(t *testing.T) {
	node, dir := peers.Node(t)
	chromium := peers.Chromium(t)
	p, url := exampletest.StartEnv(t, []string{"GODEBUG=http2xconnect=1"}, "-addr", "127.0.0.1:0", "-tls")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, filepath.Join(dir, "chromium_h2.mjs"), chromium, url, "/ws").CombinedOutput()
	if err != nil || !strings.Contains(string(out), " passed, 0 failed") {
		t.Fatalf("chromium_h2.mjs: %v\n%s", err, out)
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, Timeout: 10 * time.Second}
	defer c.CloseIdleConnections()
	// The page opens a WebSocket of its own as it loads, and the script
	// one more.
	if s := stats(t, c, url); s.Accepted < 2 || s.HTTP2 != s.Accepted || s.Messages != 1000 {
		t.Errorf("stats: %+v; want the WebSockets all over HTTP/2, and the script's 1000 messages", s)
	}
	rest, err := p.Interrupt(t)
	if err != nil || !strings.Contains(rest, "drained: clean=") || !strings.Contains(rest, " forced=0 ") {
		t.Errorf("after Ctrl-C: %v\n%s", err, rest)
	}
}

// TestProtocol: the page's question of which protocol its WebSocket went
// over is answered HTTP/1.1 for a client of HTTP/1.1.
func TestProtocol(t *testing.T) {
	s := start(t, "-tls")
	echotest.EchoOnce(t, echotest.Dial(t, s), []byte("hello"))
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, Timeout: 10 * time.Second}
	defer c.CloseIdleConnections()
	resp, err := c.Get(s.URL + "protocol")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if got := strings.TrimSpace(string(b)); got != "HTTP/1.1" {
		t.Errorf("/protocol = %q, want HTTP/1.1", got)
	}
	if st := stats(t, c, s.URL); st.Accepted != 1 || st.HTTP2 != 0 {
		t.Errorf("stats: %+v; want one WebSocket, none over HTTP/2", st)
	}
}

// TestCompress: by default the server agrees to permessage-deflate with
// a client that offers it, and echoes through it; with -compress=false it
// declines.
func TestCompress(t *testing.T) {
	for _, on := range []bool{true, false} {
		s := start(t, "-compress="+strconv.FormatBool(on))
		d := websocket.Dialer{EnableCompression: true, HandshakeTimeout: 10 * time.Second}
		c, resp, err := d.Dial(s.WSURL(), nil)
		if err != nil {
			t.Fatal(err)
		}
		ext := resp.Header.Get("Sec-WebSocket-Extensions")
		if agreed := strings.Contains(ext, "permessage-deflate"); agreed != on {
			t.Errorf("-compress=%v: the server answered extensions %q", on, ext)
		}
		msg := []byte(strings.Repeat(`{"kind":"quote","price":101.5}`, 64))
		echotest.EchoOnce(t, c, msg)
		c.Close()
	}
}
