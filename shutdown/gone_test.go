package shutdown_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pollws/pollws/shutdown"
)

// sockErr is the error a socket writer fails with when the system call
// op fails with errno, wrapped as the writers in this module wrap it.
func sockErr(op string, errno syscall.Errno) error {
	return fmt.Errorf("wsconn: %w", &net.OpError{Op: op, Net: "tcp", Err: os.NewSyscallError(op, errno)})
}

// logBuffer is a log destination that is safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines returns the lines logged so far.
func (b *logBuffer) lines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(b.buf.String(), "\n"), "\n")
}

// logger logs text lines at level and above into a new logBuffer.
func logger(level slog.Level) (*slog.Logger, *logBuffer) {
	b := new(logBuffer)
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: level})), b
}

// 3,000 peers reset their connections while the drain waits for them to
// read: the drain ends when the last one is gone, not at its deadline,
// and counts them as gone, with their bytes undelivered and no error; it
// logs one line.
func TestDrainVanishedPeers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n, data = 3000, "0123456789"
		log, lines := logger(slog.LevelInfo)
		e := newEnds()
		g := shutdown.NewGroup(&shutdown.GroupOptions{OnDone: e.onDone, Logger: log})
		conns := make([]*conn, n)
		for i := range conns {
			c := newConn(64)
			m, err := g.Add(t.Context(), codedConn{c}, nil)
			if err != nil {
				t.Fatal(err)
			}
			c.queue(t, data)
			stuck(m, c)
			conns[i] = c
		}
		reset := sockErr("write", syscall.ECONNRESET)
		time.AfterFunc(time.Second, func() {
			for _, c := range conns {
				c.leave(reset)
			}
		})

		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		start := time.Now()
		rep := g.Drain(ctx)

		if d := time.Since(start); d != time.Second {
			t.Errorf("Drain returned after %v, want 1s, when the last peer left", d)
		}
		perConn := int64(len(data + "<close 1001>"))
		if rep.Gone != n || rep.Clean != 0 || rep.Forced != 0 || len(rep.Errors) != 0 || rep.Undelivered != n*perConn {
			t.Errorf("Drain = %v, want clean=0 forced=0 undelivered=%dB errors=0 gone=%d", rep, n*perConn, n)
		}
		if got := lines.lines(); len(got) != 1 ||
			!strings.Contains(got[0], "level=INFO") || !strings.Contains(got[0], "gone=3000") || !strings.Contains(got[0], "errors=0") {
			t.Errorf("log has %d lines, first %q; want one INFO line with gone=3000 errors=0", len(got), append(got, "")[0])
		}
		if conns, calls := e.count(); conns != n || calls != n {
			t.Fatalf("OnDone called %d times for %d connections, want once for each of %d", calls, conns, n)
		}
		for id := range e.errs {
			err := e.only(t, id)
			var ue *shutdown.UndeliveredError
			if !errors.As(err, &ue) || ue.Bytes != perConn || !errors.Is(err, syscall.ECONNRESET) || !errors.Is(err, shutdown.ErrDraining) {
				t.Fatalf("OnDone(%d) error %v, want ErrDraining and %d bytes undelivered by ECONNRESET", id, err, perConn)
			}
		}
	})
}

// Which shutdown errors say the peer is gone: those are counted in Gone
// and logged at Info; any other is forced, an error of the drain, and
// logged at Warn. Either way the bytes count as undelivered.
func TestDrainGoneOrForced(t *testing.T) {
	boom := errors.New("wsconn: protocol error")
	for _, tt := range []struct {
		name string
		err  error
		gone bool
	}{
		{"ECONNRESET", sockErr("write", syscall.ECONNRESET), true},
		{"ECONNABORTED", sockErr("write", syscall.ECONNABORTED), true},
		{"EPIPE", sockErr("write", syscall.EPIPE), true},
		{"ETIMEDOUT", sockErr("read", syscall.ETIMEDOUT), true},
		{"EOF", fmt.Errorf("wsconn: read: %w", io.EOF), true},
		{"unexpected EOF", fmt.Errorf("wsconn: the connection ended without a close frame: %w", io.ErrUnexpectedEOF), true},
		{"closed pipe", io.ErrClosedPipe, true},
		{"closed by the writer", fmt.Errorf("wsconn: %w", net.ErrClosed), true},
		{"close handshake timed out", fmt.Errorf("wsconn: close: no close frame from the peer: %w", os.ErrDeadlineExceeded), false},
		{"ECONNREFUSED", sockErr("write", syscall.ECONNREFUSED), false},
		{"protocol error", boom, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				log, lines := logger(slog.LevelInfo)
				g := shutdown.NewGroup(&shutdown.GroupOptions{Logger: log})
				c := newConn(64)
				m, err := g.Add(t.Context(), codedConn{c}, nil)
				if err != nil {
					t.Fatal(err)
				}
				c.queue(t, "0123456789")
				stuck(m, c)
				time.AfterFunc(time.Second, func() { c.leave(tt.err) })
				ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
				defer cancel()
				start := time.Now()
				rep := g.Drain(ctx)

				if d := time.Since(start); d != time.Second {
					t.Errorf("Drain returned after %v, want 1s, when the shutdown failed", d)
				}
				const bytes = int64(len("0123456789<close 1001>"))
				want := shutdown.Report{Forced: 1, Undelivered: bytes}
				level := "level=WARN"
				if tt.gone {
					want = shutdown.Report{Gone: 1, Undelivered: bytes}
					level = "level=INFO"
				}
				if rep.Clean != want.Clean || rep.Forced != want.Forced || rep.Gone != want.Gone || rep.Undelivered != want.Undelivered {
					t.Errorf("Drain = %v, want %v", rep, want)
				}
				switch {
				case tt.gone && len(rep.Errors) != 0:
					t.Errorf("Errors = %v, want none: the peer is gone", rep.Errors)
				case !tt.gone && (len(rep.Errors) != 1 || !errors.Is(rep.Errors[0], tt.err)):
					t.Errorf("Errors = %v, want one that wraps %v", rep.Errors, tt.err)
				}
				if got := lines.lines(); len(got) != 1 || !strings.Contains(got[0], level) {
					t.Errorf("log %q, want one line at %s", got, level)
				}
			})
		})
	}
}

// A connection whose peer is gone when it expires is not counted as
// forced either: its line is at Info, with end=gone, and OnDone hears
// the writer's error.
func TestExpiryPeerGone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log, lines := logger(slog.LevelInfo)
		e := newEnds()
		g := shutdown.NewGroup(&shutdown.GroupOptions{Lifetime: 10 * time.Second, OnDone: e.onDone, Logger: log})
		c := newConn(64)
		m, err := g.Add(t.Context(), codedConn{c}, nil)
		if err != nil {
			t.Fatal(err)
		}
		c.queue(t, "unread")
		stuck(m, c)
		time.AfterFunc(11*time.Second, func() { c.leave(sockErr("write", syscall.EPIPE)) })
		id := <-e.ch
		var ue *shutdown.UndeliveredError
		if err := e.only(t, id); !errors.Is(err, shutdown.ErrLifetime) || !errors.Is(err, syscall.EPIPE) || !errors.As(err, &ue) {
			t.Errorf("OnDone error %v, want ErrLifetime and an UndeliveredError wrapping EPIPE", err)
		}
		if got := lines.lines(); len(got) != 1 || !strings.Contains(got[0], "level=INFO") || !strings.Contains(got[0], "end=gone") {
			t.Errorf("log %q, want one INFO line with end=gone", got)
		}
	})
}

// A peer already gone when a drain begins whose deadline already passed:
// the one poll the group still makes finds it gone, and it is counted so,
// not as forced.
func TestDrainGoneAtDeadline(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	g := shutdown.NewGroup(nil)
	c := newConn(64)
	if _, err := g.Add(context.Background(), codedConn{c}, nil); err != nil {
		t.Fatal(err)
	}
	c.queue(t, "0123456789")
	c.leave(sockErr("write", syscall.ECONNRESET))
	if rep := g.Drain(ctx); rep.Gone != 1 || rep.Forced != 0 || len(rep.Errors) != 0 || rep.Undelivered != 10 {
		t.Errorf("Drain = %v, want undelivered=10B errors=0 gone=1", rep)
	}
}
