package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/internal/handlertest"
	"github.com/pollws/pollws/wsconn"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// echoServer is a WebSocket echo server on wsconn. alter, if set, may
// change message i (counted from 0 per connection) before it is echoed;
// returning nil drops it.
type echoServer struct {
	*httptest.Server
	url      string
	handlers handlertest.Group
	conns    atomic.Int32
}

func newEchoServer(t *testing.T, tls bool, alter func(i int, p []byte) []byte) *echoServer {
	t.Helper()
	s := &echoServer{}
	opts := &wsconn.UpgradeOptions{Options: wsconn.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := wsconn.Upgrade(w, r, opts)
		if err != nil {
			return
		}
		defer c.Close()
		s.conns.Add(1)
		ctx := context.Background()
		for i := 0; ; i++ {
			m, err := c.ReadMessage(ctx)
			op, p := m.Type, m.Data
			if err != nil {
				return // the client closed: the close frame was answered
			}
			if alter != nil {
				if p = alter(i, p); p == nil {
					continue
				}
			}
			if _, err := asyncio.BlockOn(ctx, func(t *asyncio.Task) (asyncio.Async[int], error) {
				return c.PollWriteMessage(t, op, p)
			}); err != nil {
				return
			}
		}
	})
	s.Server = httptest.NewUnstartedServer(s.handlers.Wrap(h))
	s.Server.Config.ErrorLog = log.New(io.Discard, "", 0) // refused certificates
	if tls {
		s.Server.StartTLS()
	} else {
		s.Server.Start()
	}
	s.url = "ws" + strings.TrimPrefix(s.Server.URL, "http")
	t.Cleanup(func() {
		s.Server.Close()
		s.handlers.Wait()
	})
	return s
}

// runArgs runs the client with args and stdin, and returns its exit code
// and output.
func runArgs(t *testing.T, args []string, stdin string) (code int, stdout, stderr string) {
	t.Helper()
	cfg, err := parseFlags(args, io.Discard)
	if err != nil {
		t.Fatalf("parseFlags(%q): %v", args, err)
	}
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code = run(ctx, cfg, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

var summaryLine = regexp.MustCompile(`sent (\d+), received (\d+), mismatches (\d+)`)

// counts returns the counts of the summary in out.
func counts(t *testing.T, out string) string {
	t.Helper()
	m := summaryLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no summary in %q", out)
	}
	return m[0]
}

func TestLinesAreEchoed(t *testing.T) {
	s := newEchoServer(t, false, nil)
	in := "hello\nworld, ünïcode\n\nlast line without newline"
	code, out, errOut := runArgs(t, []string{"-url", s.url}, in)
	if code != 0 || out != "hello\nworld, ünïcode\n\nlast line without newline\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	code, out, errOut = runArgs(t, []string{"-url", s.url, "-check", "-binary"}, in)
	if code != 0 || !strings.HasPrefix(out, "hello\n") || counts(t, out) != "sent 4, received 4, mismatches 0" || !strings.Contains(out, "latency p50") {
		t.Errorf("-check: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestLoadIsChecked(t *testing.T) {
	s := newEchoServer(t, false, nil)
	for _, args := range [][]string{
		{"-n", "3000", "-size", "100", "-conns", "4", "-window", "8", "-check"},
		{"-n", "60", "-size", "70000", "-conns", "2", "-window", "4", "-check", "-text"}, // larger than a connection's buffer
		{"-n", "1000", "-size", "0", "-window", "1", "-check"},
		{"-n", "7", "-conns", "3"},
	} {
		code, out, errOut := runArgs(t, append(args, "-url", s.url), "")
		n := args[1]
		if want := fmt.Sprintf("sent %s, received %s, mismatches 0", n, n); code != 0 || counts(t, out) != want {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want %q", args, code, out, errOut, want)
		}
		t.Logf("%q:\n%s", args, out)
	}
	if got := s.conns.Load(); got != 4+2+1+3 {
		t.Errorf("the server saw %d connections, want 10", got)
	}
}

// A line that is not UTF-8 sent as text makes the server close the
// connection with 1007; -binary sends it as it is.
func TestInvalidTextLine(t *testing.T) {
	s := newEchoServer(t, false, nil)
	code, _, errOut := runArgs(t, []string{"-url", s.url}, "ok\n\xff\xfe\nafter\n")
	if code != 1 || !strings.Contains(errOut, "1007") {
		t.Errorf("exit %d, stderr %q; want 1 and close 1007", code, errOut)
	}
	code, out, errOut := runArgs(t, []string{"-url", s.url, "-binary", "-check"}, "ok\n\xff\xfe\nafter\n")
	if code != 0 || !strings.HasPrefix(out, "ok\n\xff\xfe\nafter\n") {
		t.Errorf("-binary: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// Echoes that differ fail -check, with a non-zero exit.
func TestMismatchesFail(t *testing.T) {
	s := newEchoServer(t, false, func(i int, p []byte) []byte {
		if i == 10 && len(p) > 0 {
			p[len(p)/2] ^= 1
		}
		return p
	})
	code, out, _ := runArgs(t, []string{"-url", s.url, "-n", "400", "-conns", "2", "-check"}, "")
	if code != 1 || counts(t, out) != "sent 400, received 400, mismatches 2" {
		t.Errorf("exit %d, stdout %q; want 1 and 2 mismatches", code, out)
	}
	// Without -check, only the counts are compared.
	if code, out, _ := runArgs(t, []string{"-url", s.url, "-n", "400", "-conns", "2"}, ""); code != 0 {
		t.Errorf("without -check: exit %d, stdout %q", code, out)
	}
	code, out, _ = runArgs(t, []string{"-url", s.url, "-check"}, strings.Repeat("line\n", 20))
	if code != 1 || counts(t, out) != "sent 20, received 20, mismatches 1" {
		t.Errorf("lines: exit %d, stdout %q; want 1 and 1 mismatch", code, out)
	}
}

// An echo that never comes fails once -timeout passes.
func TestMissingEchoFails(t *testing.T) {
	s := newEchoServer(t, false, func(i int, p []byte) []byte {
		if i == 5 {
			return nil
		}
		return p
	})
	code, out, errOut := runArgs(t, []string{"-url", s.url, "-n", "20", "-window", "4", "-timeout", "300ms"}, "")
	if code != 1 || !strings.Contains(errOut, "no echo in time") {
		t.Errorf("exit %d, stdout %q, stderr %q; want 1 and no echo in time", code, out, errOut)
	}
}

func TestTLS(t *testing.T) {
	s := newEchoServer(t, true, nil)
	code, out, errOut := runArgs(t, []string{"-url", s.url, "-insecure", "-n", "100", "-check"}, "")
	if code != 0 || counts(t, out) != "sent 100, received 100, mismatches 0" {
		t.Errorf("-insecure: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, _, errOut = runArgs(t, []string{"-url", s.url, "-n", "1"}, "")
	if code != 1 || !strings.Contains(errOut, "certificate") {
		t.Errorf("without -insecure: exit %d, stderr %q; want a certificate error", code, errOut)
	}
}

// Cancelling the run stops sending and reports what was done.
func TestInterrupt(t *testing.T) {
	s := newEchoServer(t, false, nil)
	cfg, err := parseFlags([]string{"-url", s.url, "-n", "100000000", "-conns", "2", "-check"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	var out, errOut bytes.Buffer
	if code := run(ctx, cfg, nil, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "context deadline exceeded") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}
	// The echoes of what was sent are still collected.
	m := summaryLine.FindStringSubmatch(out.String())
	if m == nil || m[1] != m[2] || m[1] == "0" || m[3] != "0" {
		t.Errorf("summary %q: want every message sent echoed", out.String())
	}
}

func TestFlags(t *testing.T) {
	cfg, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := config{url: "ws://127.0.0.1:8080/ws", size: 128, conns: 1, window: 16, timeout: 10 * time.Second}
	if cfg != want {
		t.Errorf("defaults:\ngot  %+v\nwant %+v", cfg, want)
	}
	for _, tc := range []struct {
		args string
		text bool
	}{{"", true}, {"-n 1", false}, {"-binary", false}, {"-n 1 -text", true}} {
		cfg, err := parseFlags(strings.Fields(tc.args), io.Discard)
		if err != nil || cfg.textMessages() != tc.text {
			t.Errorf("%q: text messages %v, %v; want %v", tc.args, cfg.textMessages(), err, tc.text)
		}
	}
	for _, args := range []string{"-text -binary", "-stream -n 1", "-url http://x/", "-url ::", "-conns 0", "-window 0", "-n -1", "-timeout 0", "extra", "-nope"} {
		var stderr bytes.Buffer
		if _, err := parseFlags(strings.Fields(args), &stderr); err == nil || stderr.Len() == 0 {
			t.Errorf("parseFlags(%q) = %v, stderr %q; want an error, explained", args, err, stderr.String())
		}
	}
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	for _, tc := range []struct {
		p    int
		want time.Duration
	}{{50, 50 * time.Millisecond}, {99, 99 * time.Millisecond}, {100, 100 * time.Millisecond}, {0, time.Millisecond}} {
		if got := percentile(d, tc.p); got != tc.want {
			t.Errorf("p%d = %v, want %v", tc.p, got, tc.want)
		}
	}
	if got := percentile([]time.Duration{7 * time.Microsecond}, 99); got != 7*time.Microsecond {
		t.Errorf("p99 of one = %v", got)
	}
}
