package peers

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// fault is how a test echo server departs from a correct one.
type fault int

const (
	faultNone    fault = iota
	faultCorrupt       // flips the last byte of binary messages of 64 KiB
	faultReorder       // echoes the text "m501" after "m503"
	faultPong          // answers a ping with its payload reversed
	faultClose         // answers every close with 1000
	faultUTF8          // echoes text that is not UTF-8
)

// faultyEcho serves an echo on loopback with gorilla, wrong in the way f
// says, compressing when compress is set and the client offers it. It
// returns the ws:// URL, and closes the server and waits for its handlers
// when t ends.
func faultyEcho(t *testing.T, f fault, compress bool) string {
	up := websocket.Upgrader{EnableCompression: compress}
	var handlers sync.WaitGroup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		handlers.Add(1)
		defer handlers.Done()
		defer c.Close()
		serveEcho(c, f)
	}))
	t.Cleanup(func() {
		srv.Close()
		handlers.Wait()
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"
}

func serveEcho(c *websocket.Conn, f fault) {
	c.SetReadLimit(64 << 20)
	c.EnableWriteCompression(true)
	deadline := func() time.Time { return time.Now().Add(5 * time.Second) }
	switch f {
	case faultPong:
		c.SetPingHandler(func(s string) error {
			p := []byte(s)
			slices.Reverse(p)
			return c.WriteControl(websocket.PongMessage, p, deadline())
		})
	case faultClose:
		c.SetCloseHandler(func(int, string) error {
			return c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), deadline())
		})
	}
	var held []byte
	for {
		typ, p, err := c.ReadMessage()
		if err != nil {
			return
		}
		if typ == websocket.TextMessage && !utf8.Valid(p) && f != faultUTF8 {
			// Read on until the client answers the close.
			c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseInvalidFramePayloadData, "not UTF-8"), deadline())
			continue
		}
		switch {
		case f == faultCorrupt && typ == websocket.BinaryMessage && len(p) == 65536:
			p[len(p)-1] ^= 1
		case f == faultReorder && string(p) == "m501":
			held = p
			continue
		}
		if c.WriteMessage(typ, p) != nil {
			return
		}
		if held != nil && string(p) == "m503" {
			if c.WriteMessage(typ, held) != nil {
				return
			}
			held = nil
		}
	}
}

// runEchoPy runs ws_echo.py against url and returns its output and
// whether it exited 0.
func runEchoPy(t *testing.T, url string) (out string, ok bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b, err := exec.CommandContext(ctx, Python(t), filepath.Join(Dir(), "ws_echo.py"), url).CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("ws_echo.py did not run: %v\n%s", err, b)
	}
	return string(b), err == nil
}

// TestPythonEcho runs ws_echo.py against echo servers that are right,
// with and without compression, and against servers that are each wrong
// in one way, which it must catch.
func TestPythonEcho(t *testing.T) {
	for _, tc := range []struct {
		name     string
		fault    fault
		compress bool
		want     string // the line that must be printed
	}{
		{"correct", faultNone, false, "permessage-deflate: offered, not agreed"},
		{"correct, compressing", faultNone, true, "permessage-deflate: agreed (permessage-deflate;"},
		{"corrupts 64 KiB", faultCorrupt, false, "FAIL binary 65536 B: sent binary of 65536 B, got binary of 65536 B differing from byte 65535"},
		{"corrupts 64 KiB, compressing", faultCorrupt, true, "FAIL binary 65536 B:"},
		{"reorders", faultReorder, false, "FAIL 1000 pipelined messages come back in order: message 501 is b'm502', want 'm501'"},
		{"wrong pong", faultPong, false, "FAIL pings are answered with their payloads: pongs carried [b'ereht uoy era'], want b'are you there'"},
		{"wrong close code", faultClose, false, "FAIL close code is echoed: close code 1000 (''), want 4002"},
		{"accepts bad UTF-8", faultUTF8, false, "FAIL invalid UTF-8 text is closed with 1007: the server sent no close first"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, ok := runEchoPy(t, faultyEcho(t, tc.fault, tc.compress))
			if !strings.Contains(out, tc.want) {
				t.Errorf("ws_echo.py printed no line with %q:\n%s", tc.want, out)
			}
			if passed := strings.Contains(out, " passed, 0 failed\n"); ok != passed || ok != (tc.fault == faultNone) {
				t.Errorf("ws_echo.py exited 0: %v, printed no failures: %v; want both %v:\n%s", ok, passed, tc.fault == faultNone, out)
			}
			// Each fault fails its own check and no other.
			fails, want := strings.Count("\n"+out, "\nFAIL "), 1
			if tc.fault == faultNone {
				want = 0
			}
			if fails != want {
				t.Errorf("ws_echo.py failed %d checks, want %d:\n%s", fails, want, out)
			}
		})
	}
}

// TestPythonEchoTakeover runs ws_echo.py against Node's ws serving with
// permessage-deflate and context takeover, which websockets offers by
// default.
func TestPythonEchoTakeover(t *testing.T) {
	node, dir := Node(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "ws_deflate.mjs"), "server", "takeover")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	lines := make(chan string, 1)
	cmd.Stdout = &lineSink{buf: &stdout, lines: lines}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("ws_deflate.mjs server: %v", err)
		}
	}()
	var port string
	select {
	case l := <-lines:
		var ok bool
		if port, ok = strings.CutPrefix(l, "listening "); !ok {
			t.Fatalf("ws_deflate.mjs server printed %q", l)
		}
	case <-ctx.Done():
		t.Fatal("ws_deflate.mjs server printed no port")
	}
	out, ok := runEchoPy(t, "ws://127.0.0.1:"+port+"/")
	if !ok || !strings.Contains(out, "permessage-deflate: agreed (permessage-deflate)\n") {
		t.Errorf("ws_echo.py against ws with context takeover:\n%s", out)
	}
}

// lineSink keeps what a process writes and sends its first line.
type lineSink struct {
	mu    sync.Mutex
	buf   *bytes.Buffer
	lines chan<- string
	sent  bool
}

func (s *lineSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf.Write(p)
	if line, _, ok := strings.Cut(s.buf.String(), "\n"); ok && !s.sent {
		s.sent = true
		s.lines <- line
	}
	return len(p), nil
}

// TestFindPython finds the first python3 that imports websockets, past
// one on PATH that cannot (as a pyenv shim without the package).
func TestFindPython(t *testing.T) {
	dirs := make([]string, 4)
	for i := range dirs {
		dirs[i] = t.TempDir()
	}
	script := func(dir, body string, mode os.FileMode) {
		if err := os.WriteFile(filepath.Join(dir, "python3"), []byte("#!/bin/sh\n"+body+"\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	// dirs[0] has none; dirs[1]'s lacks the module, dirs[2]'s is not
	// executable, dirs[3]'s has the module.
	script(dirs[1], `echo "ModuleNotFoundError: No module named 'websockets'" >&2; exit 1`, 0o755)
	script(dirs[2], "exit 0", 0o644)
	script(dirs[3], `[ "$1 $2" = "-c import `+pythonModule+`" ]`, 0o755)
	path := strings.Join([]string{dirs[0], dirs[1], "", dirs[2], dirs[1], dirs[3]}, string(os.PathListSeparator))

	got := pythonCandidates(path)
	want := []string{filepath.Join(dirs[1], "python3"), filepath.Join(dirs[3], "python3")}
	if !slices.Equal(got[:min(len(got), 2)], want) || len(got) > 3 || (len(got) == 3 && got[2] != systemPython) {
		t.Errorf("pythonCandidates = %q, want %q then at most %s", got, want, systemPython)
	}
	if got := firstPython(got); got != want[1] {
		t.Errorf("firstPython = %q, want %q", got, want[1])
	}
	if got := firstPython(want[:1]); got != "" {
		t.Errorf("firstPython of one without the module = %q, want none", got)
	}
}
