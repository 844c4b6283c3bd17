package wsconn

import (
	"context"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pollws/pollws/internal/peers"
)

// TestHTTP2Chromium: headless Chromium loads a page over HTTPS and
// HTTP/2, opens a WebSocket from it, echoes 1,000 messages and gets its
// close code back. Where net/http offers extended CONNECT, the WebSocket
// is a stream of the page's connection (the server sees a CONNECT over
// HTTP/2.0); without the GODEBUG setting, Chromium opens it over HTTP/1.1
// on a connection of its own, and the same checks pass.
func TestHTTP2Chromium(t *testing.T) {
	for _, tc := range []struct {
		name          string
		xconnect      bool
		method, proto string
		sameConn      bool // the WebSocket goes over the page's connection
	}{
		{"extended CONNECT", true, http.MethodConnect, "HTTP/2.0", true},
		{"HTTP/1.1 without the setting", false, http.MethodGet, "HTTP/1.1", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !inXConnect(t, tc.xconnect) {
				return
			}
			node, dir := peers.Node(t)
			chromium := peers.Chromium(t)
			echo := newH2Echo()
			echo.opts.CheckOrigin = nil    // the page's own origin only
			pages := make(chan string, 10) // the RemoteAddr of each request for the page
			mux := http.NewServeMux()
			mux.Handle("/ws", echo)
			mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
				pages <- r.RemoteAddr
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
				w.Write([]byte("<!doctype html><title>pollws over HTTP/2</title><p>echo</p>"))
			})
			s := newH2Server(t, mux) // Chromium refuses its certificate before it ignores that: the server logs it

			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			out, err := exec.CommandContext(ctx, node, filepath.Join(dir, "chromium_h2.mjs"), chromium, s.URL+"/", "/ws").CombinedOutput()
			if err != nil || !strings.Contains(string(out), " passed, 0 failed") {
				t.Fatalf("chromium_h2.mjs: %v\n%s", err, out)
			}
			seen := echo.next(t)
			if seen.method != tc.method || seen.proto != tc.proto {
				t.Errorf("the WebSocket came as %s %s, want %s %s", seen.method, seen.proto, tc.method, tc.proto)
			}
			if seen.msgs != 1000 || seen.code != 4001 {
				t.Errorf("the server echoed %d messages and ended with close code %d (%v); want 1000 and 4001", seen.msgs, seen.code, seen.err)
			}
			page := <-pages
			if same := page == seen.remote; same != tc.sameConn {
				t.Errorf("the page came from %s and the WebSocket from %s; want the same connection: %v", page, seen.remote, tc.sameConn)
			}
			t.Logf("%s\n%s", strings.TrimSpace(string(out)), "the server saw "+seen.method+" "+seen.proto)
		})
	}
}
