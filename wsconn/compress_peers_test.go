package wsconn

import (
	"bufio"
	"context"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pollws/pollws/internal/peers"
	"github.com/pollws/pollws/wsconn/internal/deflate"
)

// zRunPeer runs a peer script with node and fails t unless it printed a
// summary with no failure.
func zRunPeer(t *testing.T, node string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", filepath.Base(args[0]), err, out)
	}
	if !strings.Contains(string(out), " passed, 0 failed") {
		t.Fatalf("%s printed no summary:\n%s", filepath.Base(args[0]), out)
	}
	return string(out)
}

// TestCompressNodeWSClient: Node's ws client with perMessageDeflate, which
// compresses every message, against the server, with context takeover,
// without, and with small windows. It skips when node or the ws package
// is missing, unless POLLWS_REQUIRE_PEERS=1.
func TestCompressNodeWSClient(t *testing.T) {
	node, dir := peers.Node(t)
	script := filepath.Join(dir, "ws_deflate.mjs")
	for _, tc := range []struct {
		mode string
		o    CompressionOptions
		want deflate.Params
	}{
		{"takeover", CompressionOptions{ContextTakeover: true}, deflate.Params{ServerMaxWindowBits: 15, ClientMaxWindowBits: 15}},
		{"takeover", CompressionOptions{}, deflate.Params{ServerNoContextTakeover: true, ClientNoContextTakeover: true, ServerMaxWindowBits: 15, ClientMaxWindowBits: 15}},
		{"no-takeover", CompressionOptions{ContextTakeover: true}, deflate.Params{ServerNoContextTakeover: true, ClientNoContextTakeover: true, ServerMaxWindowBits: 15, ClientMaxWindowBits: 15}},
		{"bits=9", CompressionOptions{ContextTakeover: true}, deflate.Params{ServerMaxWindowBits: 9, ClientMaxWindowBits: 9}},
		{"takeover", CompressionOptions{ContextTakeover: true, MaxWindowBits: 8}, deflate.Params{ServerMaxWindowBits: 8, ClientMaxWindowBits: 8}},
	} {
		t.Run(tc.mode+"/"+zOptName(tc.o), func(t *testing.T) {
			srv, counts := zEchoServer(t, &UpgradeOptions{Options: zOn(tc.o)})
			out := zRunPeer(t, node, script, "client", "ws"+strings.TrimPrefix(srv.URL, "http")+"/ws", tc.mode)
			got := <-counts
			if got.params != tc.want {
				t.Errorf("agreed %+v, want %+v\n%s", got.params, tc.want, out)
			}
			// 6 sizes of text and binary, a fragmented message and 200
			// pipelined ones, all compressed; every echo of 300 bytes or
			// more compressed.
			if got.read != 213 || got.sent < 200 {
				t.Errorf("the server read %d compressed messages and sent %d; want 213 and 200 or more", got.read, got.sent)
			}
		})
	}
}

// TestCompressNodeWSServer: the client against Node's ws server with
// perMessageDeflate, which compresses every echo.
func TestCompressNodeWSServer(t *testing.T) {
	node, dir := peers.Node(t)
	script := filepath.Join(dir, "ws_deflate.mjs")
	for _, tc := range []struct {
		mode string
		o    CompressionOptions
	}{
		{"takeover", CompressionOptions{ContextTakeover: true}},
		{"takeover", CompressionOptions{}},
		{"no-takeover", CompressionOptions{ContextTakeover: true, MinSize: -1}},
		{"bits=10", CompressionOptions{ContextTakeover: true}},
		{"takeover", CompressionOptions{ContextTakeover: true, MaxWindowBits: 9}},
	} {
		t.Run(tc.mode+"/"+zOptName(tc.o), func(t *testing.T) {
			cmd := exec.Command(node, script, "server", tc.mode)
			stdin, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() {
				stdin.Close() // the server exits when its input ends
				if err := cmd.Wait(); err != nil {
					t.Errorf("the Node server: %v", err)
				}
			}()
			line, err := bufio.NewReader(stdout).ReadString('\n')
			port, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
			if err != nil || !ok {
				t.Fatalf("the Node server printed %q, %v", line, err)
			}
			c, err := Dial(context.Background(), "ws://127.0.0.1:"+port+"/", &DialOptions{Options: zOn(tc.o)})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			zClientEcho(t, c, -1)
			t.Logf("agreed %+v", c.z.params)
		})
	}
}

// zOptName names options for a subtest.
func zOptName(o CompressionOptions) string {
	var s []string
	if o.ContextTakeover {
		s = append(s, "takeover")
	}
	if o.MaxWindowBits != 0 {
		s = append(s, "bits="+strconv.Itoa(o.MaxWindowBits))
	}
	if o.MinSize != 0 {
		s = append(s, "min="+strconv.Itoa(o.MinSize))
	}
	if o.Level != 0 {
		s = append(s, "level="+strconv.Itoa(o.Level))
	}
	if len(s) == 0 {
		return "defaults"
	}
	return strings.Join(s, ",")
}

// TestCompressChromium: headless Chromium's WebSocket, from a page of the
// server's origin, against the server with context takeover, without,
// and with a small window. Chromium's frames must come compressed (RSV1
// set): the server counts the messages it read compressed, at least every
// one that compresses. It skips when node, playwright-core or Chromium is
// missing, unless POLLWS_REQUIRE_PEERS=1.
func TestCompressChromium(t *testing.T) {
	node, dir := peers.Node(t)
	chrome := peers.Chromium(t)
	script := filepath.Join(dir, "chromium_deflate.mjs")
	for _, tc := range []struct {
		o    CompressionOptions
		want deflate.Params
	}{
		{CompressionOptions{ContextTakeover: true}, deflate.Params{ServerMaxWindowBits: 15, ClientMaxWindowBits: 15}},
		{CompressionOptions{}, deflate.Params{ServerNoContextTakeover: true, ClientNoContextTakeover: true, ServerMaxWindowBits: 15, ClientMaxWindowBits: 15}},
		{CompressionOptions{ContextTakeover: true, MaxWindowBits: 9}, deflate.Params{ServerMaxWindowBits: 9, ClientMaxWindowBits: 9}},
	} {
		t.Run(zOptName(tc.o), func(t *testing.T) {
			srv, counts := zEchoServer(t, &UpgradeOptions{Options: zOn(tc.o)})
			out := zRunPeer(t, node, script, chrome, srv.URL+"/")
			_, after, ok := strings.Cut(out, "compressible ")
			compressible, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(after, "\n", 2)[0]))
			if !ok || err != nil {
				t.Fatalf("no count of compressible messages:\n%s", out)
			}
			got := <-counts
			if got.params != tc.want {
				t.Errorf("agreed %+v, want %+v\n%s", got.params, tc.want, out)
			}
			// 12 messages of 16 B to 128 KiB and 100 pipelined ones.
			if got.read < compressible || got.read > 112 || got.sent < 100 {
				t.Errorf("the server read %d compressed messages (Chromium sent %d that compress) and sent %d", got.read, compressible, got.sent)
			}
			t.Logf("the server read %d of 112 messages compressed and sent %d compressed", got.read, got.sent)
		})
	}
}
