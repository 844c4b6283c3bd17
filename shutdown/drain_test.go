package shutdown_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/shutdown"
)

// Drain of 100 connections, 10 of whose peers never read: 90 shut down
// cleanly at once with their data, then close 1001 (1000 for a writer
// that is no CodeShutdowner); the 10 are closed hard at the deadline with
// their bytes counted (by Undelivered, or by Buffered for a writer
// without it), and OnDone fires once for each of the 100.
func TestDrain100With10Stuck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n, queued = 100, 100
		e := newEnds()
		g := shutdown.NewGroup(&shutdown.GroupOptions{OnDone: e.onDone})
		type peer struct {
			m    *shutdown.Member
			c    *conn
			want string
			got  <-chan received
		}
		var peers []peer
		for i := range n {
			c := newConn(queued)
			var w asyncio.AsyncWriter
			want := "<close 1001>"
			switch i % 3 {
			case 0:
				w = codedConn{c}
			case 1:
				w, want = bufferedConn{c}, "<close 1000>"
			default:
				w, want = c, "<close 1000>"
			}
			m, err := g.Add(t.Context(), w, nil)
			if err != nil {
				t.Fatal(err)
			}
			data := strings.Repeat(string(rune('a'+i%26)), queued)
			c.queue(t, data)
			p := peer{m: m, c: c, want: data + want}
			if i%10 == 9 {
				stuck(m, c)
			} else {
				p.got = handle(m, c)
			}
			peers = append(peers, p)
		}

		start := time.Now()
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		rep := g.Drain(ctx)

		if d := time.Since(start); d != 5*time.Second {
			t.Errorf("Drain returned after %v, want at the 5s deadline", d)
		}
		if rep.Clean != 90 || rep.Forced != 10 || rep.Undelivered != 10*queued || len(rep.Errors) != 10 {
			t.Errorf("Drain = %v, want clean=90 forced=10 undelivered=%dB errors=10", rep, 10*queued)
		}
		for _, err := range rep.Errors {
			var ue *shutdown.UndeliveredError
			if !errors.As(err, &ue) || ue.Bytes != queued || !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("report error %v, want %d bytes undelivered at the deadline", err, queued)
			}
		}
		if conns, calls := e.count(); conns != n || calls != n {
			t.Errorf("OnDone called %d times for %d connections, want once for each of %d", calls, conns, n)
		}
		for _, p := range peers {
			err := e.only(t, p.m.ID())
			if !errors.Is(err, shutdown.ErrDraining) {
				t.Errorf("OnDone(%d) error %v, want ErrDraining", p.m.ID(), err)
			}
			if context.Cause(p.m.Context()) != shutdown.ErrDraining {
				t.Errorf("context cause %v, want ErrDraining", context.Cause(p.m.Context()))
			}
			if p.got == nil {
				var ue *shutdown.UndeliveredError
				if !errors.As(err, &ue) {
					t.Errorf("stuck connection %d ended with %v, want an UndeliveredError", p.m.ID(), err)
				}
				continue
			}
			if r := <-p.got; r.data != p.want || r.err != io.EOF {
				t.Errorf("peer %d got %q, %v; want %q, EOF", p.m.ID(), r.data, r.err, p.want)
			}
		}
		synctest.Wait() // the stuck handlers' late Done calls
		if conns, calls := e.count(); conns != n || calls != n {
			t.Errorf("after the handlers returned, OnDone called %d times for %d connections, want %d", calls, conns, n)
		}
	})
}

// OnDone is called once, with the handler's error when the connection
// ends on its own; Done closes the writer then.
func TestDoneOnce(t *testing.T) {
	e := newEnds()
	g := shutdown.NewGroup(&shutdown.GroupOptions{OnDone: e.onDone})
	c := newConn(8)
	m, err := g.Add(context.Background(), c, nil)
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("read: connection reset")
	m.Done(boom)
	m.Done(nil)
	if err := e.only(t, m.ID()); err != boom {
		t.Errorf("OnDone error %v, want the handler's %v", err, boom)
	}
	if _, closes, _ := c.state(); closes != 1 {
		t.Errorf("writer closed %d times, want once", closes)
	}
	if m.Context().Err() == nil {
		t.Error("the context of an ended member is not done")
	}
	m.Touch() // harmless after the end
	if rep := g.Drain(context.Background()); rep.Clean+rep.Forced != 0 {
		t.Errorf("Drain = %v, want nothing left", rep)
	}
}

// Drain waits for the handler's Done after a clean shutdown, and OnDone
// carries the handler's error too.
func TestDrainWaitsForDone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnds()
		g := shutdown.NewGroup(&shutdown.GroupOptions{OnDone: e.onDone})
		c := newConn(8)
		m, err := g.Add(t.Context(), c, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := c.read(8)
		late := errors.New("handler: late")
		go func() {
			<-got
			time.AfterFunc(time.Second, func() { m.Done(late) }) // the handler takes a second to finish
		}()
		start := time.Now()
		rep := g.Drain(t.Context())
		if d := time.Since(start); d != time.Second || rep.Clean != 1 {
			t.Errorf("Drain = %v after %v, want clean=1 after the handler's second", rep, d)
		}
		if err := e.only(t, m.ID()); !errors.Is(err, shutdown.ErrDraining) || !errors.Is(err, late) {
			t.Errorf("OnDone error %v, want ErrDraining and the handler's error", err)
		}
	})
}

// A handler that never calls Done does not hold the drain past its
// deadline; its member is ended by the group, once.
func TestDrainHandlerNeverDone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnds()
		g := shutdown.NewGroup(&shutdown.GroupOptions{OnDone: e.onDone})
		c := newConn(8)
		m, err := g.Add(t.Context(), c, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := c.read(8)
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
		defer cancel()
		start := time.Now()
		rep := g.Drain(ctx)
		if d := time.Since(start); d != 3*time.Second || rep.Clean != 1 || rep.Forced != 0 {
			t.Errorf("Drain = %v after %v, want clean=1 at the 3s deadline", rep, d)
		}
		<-got
		m.Done(errors.New("too late"))
		if err := e.only(t, m.ID()); err != shutdown.ErrDraining {
			t.Errorf("OnDone error %v, want ErrDraining", err)
		}
	})
}

// A connection already shutting down after an expiry joins the drain
// and its earlier deadline; the report counts it.
func TestDrainJoinsExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnds()
		g := shutdown.NewGroup(&shutdown.GroupOptions{Lifetime: time.Second, CloseTimeout: time.Minute, OnDone: e.onDone})
		c := newConn(8)
		m, err := g.Add(t.Context(), c, nil)
		if err != nil {
			t.Fatal(err)
		}
		c.queue(t, "unread")
		stuck(m, c)
		<-m.Context().Done() // expired at 1s, shutting down for up to a minute
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		rep := g.Drain(ctx)
		if rep.Forced != 1 || rep.Undelivered != 8 {
			t.Errorf("Drain = %v, want forced=1 undelivered=8B", rep)
		}
		if err := e.only(t, m.ID()); !errors.Is(err, shutdown.ErrLifetime) || errors.Is(err, shutdown.ErrDraining) {
			t.Errorf("OnDone error %v, want ErrLifetime, the reason it began shutting down", err)
		}
	})
}

// A drain with a context already done still shuts down cleanly what can
// shut down at once, and closes the rest hard.
func TestDrainContextAlreadyDone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	g := shutdown.NewGroup(nil)
	empty, r1 := asyncio.Pipe(8)
	defer r1.Close()
	full := newConn(8)
	full.queue(t, "pending")
	for _, w := range []asyncio.AsyncWriter{empty, full} {
		if _, err := g.Add(context.Background(), w, nil); err != nil {
			t.Fatal(err)
		}
	}
	if rep := g.Drain(ctx); rep.Clean != 1 || rep.Forced != 1 {
		t.Errorf("Drain = %v, want clean=1 forced=1", rep)
	}
}

// After a drain began, nothing is admitted; every Drain returns the one
// report.
func TestDrainTwice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := shutdown.NewGroup(nil)
		c := newConn(8)
		m, err := g.Add(t.Context(), c, nil)
		if err != nil {
			t.Fatal(err)
		}
		handle(m, c)
		first := g.Drain(t.Context())
		if _, err := g.Add(t.Context(), newConn(8), nil); !errors.Is(err, shutdown.ErrDraining) {
			t.Errorf("Add after Drain = %v, want ErrDraining", err)
		}
		if second := g.Drain(t.Context()); first.String() != "clean=1 forced=0 undelivered=0B errors=0 gone=0" || second.String() != first.String() {
			t.Errorf("Drain = %v, then %v; want clean=1 twice", first, second)
		}
	})
}

// srv.Shutdown starts the drain through the hook; Wait waits for it,
// and the hook's timeout is the deadline.
func TestRegisterOnShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnds()
		g := shutdown.NewGroup(&shutdown.GroupOptions{OnDone: e.onDone})
		srv := &http.Server{}
		g.RegisterOnShutdown(srv, 2*time.Second)
		for i := range 3 {
			c := newConn(8)
			m, err := g.Add(t.Context(), codedConn{c}, nil)
			if err != nil {
				t.Fatal(err)
			}
			c.queue(t, "12345678")
			if i == 0 {
				stuck(m, c)
			} else {
				handle(m, c)
			}
		}

		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		start := time.Now()
		if err := srv.Shutdown(ctx); err != nil {
			t.Fatalf("srv.Shutdown = %v", err)
		}
		rep, err := g.Wait(ctx)
		if err != nil || rep.Clean != 2 || rep.Forced != 1 || rep.Undelivered != 8 {
			t.Errorf("Wait = %v, %v; want clean=2 forced=1 undelivered=8B", rep, err)
		}
		if d := time.Since(start); d != 2*time.Second {
			t.Errorf("drain took %v, want the hook's 2s", d)
		}
		if conns, calls := e.count(); conns != 3 || calls != 3 {
			t.Errorf("OnDone called %d times for %d connections, want 3", calls, conns)
		}
	})
}

// Wait returns at its context's end when no drain completes, with the
// report so far.
func TestWaitBeforeDrain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := shutdown.NewGroup(nil)
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		rep, err := g.Wait(ctx)
		if !errors.Is(err, context.DeadlineExceeded) || rep.Clean+rep.Forced != 0 {
			t.Errorf("Wait = %v, %v; want an empty report and context.DeadlineExceeded", rep, err)
		}
	})
}

// The logger gets one line per drain, when it completes, at Warn when a
// connection was forced; the drain's connections get a Debug line each,
// and a connection that ended on its own gets none.
func TestLogger(t *testing.T) {
	// undelivered_bytes=8: "unread" and the 2 bytes of the end marker that
	// fit in the writer.
	for _, tt := range []struct {
		level slog.Level
		want  []string // a part of each line, in order
	}{
		{slog.LevelDebug, []string{"level=DEBUG msg=\"shutdown: connection shut down by its group\" id=1", "level=DEBUG msg=\"shutdown: connection shut down by its group\" id=2",
			"level=WARN msg=\"shutdown: drain complete\" clean=1 forced=1 gone=0 undelivered_bytes=8 errors=1 took=1s first_error="}},
		{slog.LevelInfo, []string{"level=WARN msg=\"shutdown: drain complete\" clean=1 forced=1 gone=0 undelivered_bytes=8 errors=1 took=1s"}},
	} {
		t.Run(tt.level.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				log, lines := logger(tt.level)
				g := shutdown.NewGroup(&shutdown.GroupOptions{Logger: log})
				clean, stuckC, own := newConn(8), newConn(8), newConn(8)
				stuckC.queue(t, "unread")
				for _, c := range []*conn{clean, stuckC, own} {
					m, err := g.Add(t.Context(), c, nil)
					if err != nil {
						t.Fatal(err)
					}
					switch c {
					case clean:
						handle(m, c)
					case stuckC:
						stuck(m, c)
					case own:
						m.Done(nil) // ended on its own: no line
					}
				}
				ctx, cancel := context.WithTimeout(t.Context(), time.Second)
				defer cancel()
				g.Drain(ctx)
				got := lines.lines()
				ok := len(got) == len(tt.want)
				for i := 0; ok && i < len(got); i++ {
					ok = strings.Contains(got[i], tt.want[i])
				}
				if !ok {
					t.Errorf("log:\n%s\nwant lines with:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
				}
			})
		})
	}
}

// A drain with nothing to drain still logs its line, at Info.
func TestLoggerEmptyDrain(t *testing.T) {
	log, lines := logger(slog.LevelDebug)
	g := shutdown.NewGroup(&shutdown.GroupOptions{Logger: log})
	g.Drain(context.Background())
	g.Drain(context.Background())
	if got := lines.lines(); len(got) != 1 || !strings.Contains(got[0], "level=INFO msg=\"shutdown: drain complete\" clean=0 forced=0 gone=0") {
		t.Errorf("log %q, want one INFO line for the one drain", got)
	}
}

// Expiry keeps a line per connection: Info, or Warn when it was closed
// hard.
func TestLoggerExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log, lines := logger(slog.LevelInfo)
		e := newEnds()
		g := shutdown.NewGroup(&shutdown.GroupOptions{Lifetime: time.Second, CloseTimeout: time.Second, Logger: log, OnDone: e.onDone})
		clean, stuckC := newConn(8), newConn(8)
		stuckC.queue(t, "unread")
		for _, c := range []*conn{clean, stuckC} {
			m, err := g.Add(t.Context(), c, nil)
			if err != nil {
				t.Fatal(err)
			}
			if c == clean {
				handle(m, c)
			} else {
				stuck(m, c)
			}
		}
		<-e.ch
		<-e.ch
		want := []string{"level=INFO msg=\"shutdown: connection shut down by its group\" id=1", "level=WARN msg=\"shutdown: connection shut down by its group\" id=2"}
		got := lines.lines()
		if len(got) != 2 || !strings.Contains(got[0], want[0]) || !strings.Contains(got[1], want[1]) || !strings.Contains(got[1], "end=forced") {
			t.Errorf("log:\n%s\nwant lines with:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
}

// Connections join and leave while a drain runs: each one admitted is
// either drained or ended by its handler, and OnDone fires once for each.
func TestDrainRacesAddAndDone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnds()
		g := shutdown.NewGroup(&shutdown.GroupOptions{OnDone: func(id uint64, err error) {
			e.mu.Lock()
			e.errs[id] = append(e.errs[id], err)
			e.mu.Unlock()
		}})
		var wg sync.WaitGroup
		var mu sync.Mutex
		admitted := 0
		busy := make(chan struct{}) // closed once 200 were admitted
		for i := range 20 {
			wg.Go(func() {
				for j := 0; ; j++ {
					c := newConn(8)
					m, err := g.Add(t.Context(), c, nil)
					if err != nil {
						if !errors.Is(err, shutdown.ErrDraining) {
							t.Errorf("Add = %v", err)
						}
						return
					}
					mu.Lock()
					if admitted++; admitted == 200 {
						close(busy)
					}
					mu.Unlock()
					if (i+j)%2 == 0 {
						c.read(5) // the client reads on
						m.Done(fmt.Errorf("handler %d/%d", i, j))
					} else {
						handle(m, c)
					}
				}
			})
		}
		<-busy
		g.Drain(t.Context())
		wg.Wait()
		synctest.Wait()
		if admitted < 200 {
			t.Fatalf("%d admitted, want at least 200", admitted)
		}
		if conns, calls := e.count(); conns != admitted || calls != admitted {
			t.Errorf("OnDone called %d times for %d connections, want once for each of %d admitted", calls, conns, admitted)
		}
	})
}
