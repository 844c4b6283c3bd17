package interop

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/pollws/pollws/internal/echoserver"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func startEcho(t *testing.T, backend echoserver.Backend, useTLS bool) string {
	t.Helper()
	cfg := echoserver.Config{Addr: "127.0.0.1:0", TLS: useTLS, Backend: backend,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ln, url, err := echoserver.Listen(&cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	s := echoserver.New(cfg)
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
	return strings.Replace(url, "http", "ws", 1) + "ws"
}

func TestCoderClient(t *testing.T) {
	for _, backend := range []echoserver.Backend{echoserver.Pollws} {
		for _, useTLS := range []bool{false, true} {
			name := backend.String()
			if useTLS {
				name += "/tls"
			}
			t.Run(name, func(t *testing.T) {
				url := startEcho(t, backend, useTLS)
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
				c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: client})
				if err != nil {
					t.Fatal(err)
				}
				defer c.CloseNow()
				c.SetReadLimit(64 << 20)
				for _, size := range []int{0, 1, 125, 126, 65536, 1 << 20, 16 << 20} {
					for _, typ := range []websocket.MessageType{websocket.MessageBinary, websocket.MessageText} {
						p := bytes.Repeat([]byte("a"), size)
						if err := c.Write(ctx, typ, p); err != nil {
							t.Fatalf("write %d B: %v", size, err)
						}
						gotTyp, got, err := c.Read(ctx)
						if err != nil || gotTyp != typ || !bytes.Equal(got, p) {
							t.Fatalf("echo of %d B %v: got %d B %v, %v", size, typ, len(got), gotTyp, err)
						}
					}
				}
				// A message streamed in several frames comes back whole.
				w, err := c.Writer(ctx, websocket.MessageText)
				if err != nil {
					t.Fatal(err)
				}
				for _, part := range []string{"frag", "men", "ted"} {
					if _, err := w.Write([]byte(part)); err != nil {
						t.Fatal(err)
					}
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				if _, got, err := c.Read(ctx); err != nil || string(got) != "fragmented" {
					t.Fatalf("echo of a fragmented message: %q, %v", got, err)
				}
				// coder's Ping needs a read in progress to see the pong.
				read := make(chan string, 1)
				go func() {
					_, got, _ := c.Read(ctx)
					read <- string(got)
				}()
				if err := c.Ping(ctx); err != nil {
					t.Fatalf("ping: %v", err)
				}
				if err := c.Write(ctx, websocket.MessageText, []byte("after ping")); err != nil {
					t.Fatal(err)
				}
				if got := <-read; got != "after ping" {
					t.Fatalf("echo after ping: %q", got)
				}
				if err := c.Close(4005, "done"); err != nil {
					var ce websocket.CloseError
					if !errors.As(err, &ce) || ce.Code != 4005 {
						t.Fatalf("close: %v; want the code 4005 echoed", err)
					}
				}
			})
		}
	}
}
