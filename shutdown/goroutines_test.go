package shutdown_test

import (
	"context"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/shutdown"
)

// gated is a conn whose Shutdown, once a gate is set, holds every poll
// until the gate closes: a stand-in for a poll in progress, so that the
// test can count the goroutines polling at once.
type gated struct {
	*conn
	gate *atomic.Pointer[chan struct{}]
}

func (g gated) Shutdown(t *asyncio.Task) (asyncio.Async[struct{}], error) {
	if gate := g.gate.Load(); gate != nil {
		<-*gate
	}
	return g.conn.Shutdown(t)
}

// An idle group holds no goroutine, even with expiry timers set; a
// draining one holds none while its writers wait for their peers, at most
// the executor's workers (runtime.GOMAXPROCS) while polls run, and none
// once Drain returned.
func TestGroupGoroutines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		workers := runtime.GOMAXPROCS(0)
		n := 4 * workers
		g := shutdown.NewGroup(&shutdown.GroupOptions{Lifetime: time.Hour, Idle: time.Minute})
		var gate atomic.Pointer[chan struct{}]
		conns := make([]*conn, n)
		for i := range conns {
			c := newConn(16)
			conns[i] = c
			m, err := g.Add(t.Context(), gated{c, &gate}, nil)
			if err != nil {
				t.Fatal(err)
			}
			c.queue(t, strings.Repeat("x", 16)) // the pipe is full: the shutdown waits for the peer
			context.AfterFunc(m.Context(), func() { m.Done(nil) })
		}
		synctest.Wait()
		if others := bubbled(t); len(others) != 0 {
			t.Fatalf("an idle group with %d members holds %d goroutines; want none:\n%s", n, len(others), strings.Join(others, "\n\n"))
		}

		drained := make(chan shutdown.Report)
		go func() { drained <- g.Drain(t.Context()) }()
		synctest.Wait()
		for _, s := range bubbled(t) {
			if !strings.Contains(s, "(*Group).Drain") {
				t.Fatalf("a group draining %d writers that wait for their peers holds a goroutine; want none but Drain's caller:\n%s", n, s)
			}
		}

		held := make(chan struct{})
		gate.Store(&held)
		got := make([]<-chan received, n)
		for i, c := range conns {
			got[i] = c.read(64) // each read notifies a shutdown's task
		}
		synctest.Wait()
		if polling := executorWorkers(t); polling != workers {
			t.Fatalf("%d goroutines poll with %d shutdowns ready; want %d, the executor's workers", polling, n, workers)
		}

		close(held)
		rep := <-drained
		if polling := executorWorkers(t); polling != 0 {
			t.Errorf("%d executor workers left when Drain returned; want none", polling)
		}
		if rep.Clean != n || rep.Forced != 0 || rep.Gone != 0 {
			t.Errorf("Drain = %v; want clean=%d", rep, n)
		}
		for i, ch := range got {
			if r := <-ch; !strings.HasSuffix(r.data, "<close 1000>") {
				t.Errorf("peer %d got %q, %v; want its data and then the end", i, r.data, r.err)
			}
		}
		synctest.Wait()
		if others := bubbled(t); len(others) != 0 {
			t.Errorf("a drained group holds %d goroutines; want none:\n%s", len(others), strings.Join(others, "\n\n"))
		}
	})
}

// bubbled returns the stacks of the goroutines in the caller's synctest
// bubble, but for the caller's own and those of package synctest that run
// the bubble.
func bubbled(t *testing.T) []string {
	t.Helper()
	buf := make([]byte, 4<<10)
	self, _, _ := strings.Cut(string(buf[:runtime.Stack(buf, false)]), "\n")
	bubble := bubbleOf(self)
	if bubble == "" {
		t.Fatalf("goroutine header %q names no synctest bubble", self)
	}
	for {
		buf = make([]byte, 2*len(buf))
		if n := runtime.Stack(buf, true); n < len(buf) {
			buf = buf[:n]
			break
		}
	}
	var others []string
	for s := range strings.SplitSeq(string(buf), "\n\n") {
		header, _, _ := strings.Cut(s, "\n")
		if header != self && bubbleOf(header) == bubble && !strings.Contains(s, "testing/synctest.") {
			others = append(others, s)
		}
	}
	return others
}

// bubbleOf returns the synctest bubble a goroutine header names, or "".
func bubbleOf(header string) string {
	_, id, ok := strings.Cut(header, ", synctest bubble ")
	if !ok {
		return ""
	}
	end := strings.IndexFunc(id, func(r rune) bool { return r < '0' || r > '9' })
	if end < 0 {
		return id
	}
	return id[:end]
}

// executorWorkers counts the goroutines of the caller's bubble that are
// executor workers.
func executorWorkers(t *testing.T) int {
	t.Helper()
	n := 0
	for _, s := range bubbled(t) {
		if strings.Contains(s, "asyncio.(*Executor).run") {
			n++
		}
	}
	return n
}
