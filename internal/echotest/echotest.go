// Package echotest holds the end-to-end suites an echo server must pass,
// whatever it is built on: independent clients (gorilla, gobwas, Node's
// ws, headless Chromium, Python's websockets), bad input with the close
// code RFC 6455 gives for each kind, bad handshakes, and the cases of
// Autobahn|Testsuite's sections 1 to 10, written out as Go tests.
//
// A suite takes a [Start]: a way to start the server under test with the
// echo example's command-line flags. [InProcess] makes one from an
// example's run function, [Command] runs the example's main in a process
// of its own, as a user's `go run` does.
package echotest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pollws/pollws/internal/exampletest"
)

// Server is an echo server under test.
type Server struct {
	// URL is its page: http://host:port/ or https://host:port/. The
	// WebSocket endpoint is /ws.
	URL   string
	lines func() []string
	stop  func() error
	once  sync.Once
	err   error
}

// WSURL returns the URL of the WebSocket endpoint.
func (s *Server) WSURL() string {
	return "ws" + strings.TrimPrefix(s.URL, "http") + "ws"
}

// TLS reports whether the server serves HTTPS.
func (s *Server) TLS() bool { return strings.HasPrefix(s.URL, "https:") }

// Lines returns every line the server printed so far, its log included.
func (s *Server) Lines() []string { return s.lines() }

// Stop stops the server as Ctrl-C does, and returns once it has drained
// and exited, with its error (in process, its run's; as a command, its
// exit status). Lines then holds all it printed. Only the first call
// stops; later ones return the same error.
func (s *Server) Stop() error {
	s.once.Do(func() { s.err = s.stop() })
	return s.err
}

// Start starts an echo server with args, the echo example's command-line
// flags ("-tls", "-max-message", "1000", …), listening on a loopback port
// of its choosing, and stops it when t ends.
type Start func(t *testing.T, args ...string) *Server

// RunFunc is an example's run function: it serves with the command-line
// flags args until ctx ends, writing what it prints (the listening URL
// first, then its log) to out, then drains and returns.
type RunFunc func(ctx context.Context, args []string, out io.Writer) error

// startTimeout bounds how long a server may take to print its URL.
const startTimeout = 10 * time.Second

// InProcess returns a Start that calls run in this process, on a
// goroutine, with -addr 127.0.0.1:0 before args. At the end of the test
// it cancels run's context and waits for it to return, which it must do
// without an error.
func InProcess(run RunFunc) Start {
	return func(t *testing.T, args ...string) *Server {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		out := &lineWriter{more: make(chan struct{}, 1)}
		done := make(chan error, 1)
		go func() { done <- run(ctx, append([]string{"-addr", "127.0.0.1:0"}, args...), out) }()
		s := &Server{lines: out.lines, stop: func() error {
			cancel()
			return <-done
		}}
		t.Cleanup(func() {
			if err := s.Stop(); err != nil {
				t.Errorf("the server's run returned %v", err)
			}
		})
		timeout := time.After(startTimeout)
		for {
			if s.URL = out.url(); s.URL != "" {
				return s
			}
			select {
			case <-out.more:
			case err := <-done:
				s.once.Do(func() { s.err = err })
				t.Fatalf("the server's run returned %v before printing a URL; output:\n%s", err, strings.Join(out.lines(), "\n"))
			case <-timeout:
				t.Fatalf("the server printed no URL within %v; output:\n%s", startTimeout, strings.Join(out.lines(), "\n"))
			}
		}
	}
}

// Command returns a Start that runs the example's main in a process of
// its own, with -addr 127.0.0.1:0 before args; the example's TestMain
// must be [exampletest.Main]. The process is killed at the end of the
// test.
func Command() Start {
	return func(t *testing.T, args ...string) *Server {
		t.Helper()
		p, u := exampletest.Start(t, append([]string{"-addr", "127.0.0.1:0"}, args...)...)
		return &Server{URL: u, lines: p.Lines, stop: func() error {
			_, err := p.Interrupt(t)
			return err
		}}
	}
}

// lineWriter keeps what a server prints, line by line.
type lineWriter struct {
	mu    sync.Mutex
	buf   []byte
	all   []string
	first string        // the first URL printed
	more  chan struct{} // signalled when a line arrives
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		line := string(w.buf[:i])
		w.buf = w.buf[i+1:]
		w.all = append(w.all, line)
		if w.first == "" {
			w.first = findURL(line)
		}
	}
	w.mu.Unlock()
	select {
	case w.more <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (w *lineWriter) lines() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.all...)
}

func (w *lineWriter) url() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.first
}

// findURL returns the first http(s) URL in line, or "".
func findURL(line string) string {
	for _, scheme := range []string{"https://", "http://"} {
		if i := strings.Index(line, scheme); i >= 0 {
			u := line[i:]
			if j := strings.IndexAny(u, " \t)"); j >= 0 {
				u = u[:j]
			}
			return u
		}
	}
	return ""
}

// Known lists the cases a server is known to fail today, each by its
// name (the subtest's path below the suite, as "Autobahn/3.2" or
// "BadInput/frames/close payload of 1 byte") with the reason. Such a case
// still runs: when it fails it is skipped, saying why; when it passes the
// test fails, so that the list only holds what is still true.
type Known map[string]string

// check runs one case that reports its failure as an error, under the
// Known rules.
func check(t *testing.T, known Known, name string, f func() error) {
	t.Helper()
	fail, skip := verdict(known, name, f())
	switch {
	case fail != "":
		t.Error(fail)
	case skip != "":
		t.Skip(skip)
	}
}

// verdict applies the Known rules to the outcome err of the case name:
// it returns why the test fails, or why it is skipped, or neither.
func verdict(known Known, name string, err error) (fail, skip string) {
	reason, listed := known[name]
	switch {
	case listed && err == nil:
		return fmt.Sprintf("%s passes, but is listed as a known failure (%s): take it off the list", name, reason), ""
	case listed:
		return "", fmt.Sprintf("known failure (%s): %v", reason, err)
	case err != nil:
		return err.Error(), ""
	}
	return "", ""
}

// All runs every suite: [Clients], [Peers], [BadInput] and [Autobahn].
func All(t *testing.T, start Start, known Known) {
	t.Run("Clients", func(t *testing.T) { Clients(t, start) })
	t.Run("Peers", func(t *testing.T) { Peers(t, start) })
	t.Run("BadInput", func(t *testing.T) { BadInput(t, start, known) })
	t.Run("Autobahn", func(t *testing.T) { Autobahn(t, start, known) })
}
