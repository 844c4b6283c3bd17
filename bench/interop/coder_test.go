package interop

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// examples are the echo examples, run as their users run them.
var examples = []string{"echo", "echo-gorilla"}

// build builds the example into dir and returns the binary's path.
func build(t *testing.T, dir, name string) string {
	t.Helper()
	bin := filepath.Join(dir, name)
	out, err := exec.Command("go", "build", "-o", bin, "github.com/pollws/pollws/examples/"+name).CombinedOutput()
	if err != nil {
		t.Fatalf("go build %s: %v\n%s", name, err, out)
	}
	return bin
}

var urlRE = regexp.MustCompile(`https?://[^\s)]+`)

// startEcho runs bin, waits for the URL it prints, and returns the
// WebSocket URL; the server is interrupted (a graceful drain) at the end
// of the test.
func startEcho(t *testing.T, bin string, useTLS bool) string {
	t.Helper()
	args := []string{"-addr", "127.0.0.1:0"}
	if useTLS {
		args = append(args, "-tls")
	}
	cmd := exec.Command(bin, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	url := ""
	for url == "" && lines.Scan() {
		url = urlRE.FindString(lines.Text())
	}
	if url == "" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("%s printed no URL", bin)
	}
	go io.Copy(io.Discard, out)
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	})
	return strings.Replace(url, "http", "ws", 1) + "ws"
}

func TestCoderClient(t *testing.T) {
	dir := t.TempDir()
	for _, example := range examples {
		bin := build(t, dir, example)
		for _, useTLS := range []bool{false, true} {
			name := example
			if useTLS {
				name += "/tls"
			}
			t.Run(name, func(t *testing.T) {
				url := startEcho(t, bin, useTLS)
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
