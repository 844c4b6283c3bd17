package asynciotest_test

import (
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/asyncio/asynciotest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// broken wraps a Pipe's writer and breaks one rule of the contract.
type broken struct {
	*asyncio.PipeWriter
	bug string
}

func (b *broken) Write(p []byte) (int, error) { return asyncio.TryWrite(b, p) }

func (b *broken) PollWrite(t *asyncio.Task, p []byte) (asyncio.Async[int], error) {
	r, err := b.PipeWriter.PollWrite(t, p)
	if r.Ready || err != nil || len(p) == 0 {
		return r, err
	}
	switch b.bug {
	case "ready0":
		return asyncio.Ready(0), nil
	case "wouldblock":
		return r, asyncio.ErrWouldBlock
	case "selfnotify":
		t.Notify()
	}
	return r, err
}

func (b *broken) Shutdown(t *asyncio.Task) (asyncio.Async[struct{}], error) {
	r, err := b.PipeWriter.Shutdown(t)
	if b.bug == "shutdowntwice" && r.Ready {
		b.bug = "done"
	} else if b.bug == "done" {
		return r, asyncio.ErrShutdown
	}
	return r, err
}

// oneWaiter wraps a Pipe's writer the way writers were before wait sets:
// it keeps one task, the latest to poll, and notifies only that one. With
// nilClears, a poll without a task (a Write) forgets it too.
type oneWaiter struct {
	*asyncio.PipeWriter
	nilClears bool
	proxy     *asyncio.Task // the task the pipe notifies

	mu     sync.Mutex
	latest *asyncio.Task
}

func newOneWaiter(w *asyncio.PipeWriter, nilClears bool) *oneWaiter {
	o := &oneWaiter{PipeWriter: w, nilClears: nilClears}
	o.proxy = asyncio.NewTask(func() {
		o.mu.Lock()
		t := o.latest
		o.latest = nil
		o.mu.Unlock()
		t.Notify()
	})
	return o
}

func (o *oneWaiter) keep(t *asyncio.Task) *asyncio.Task {
	o.mu.Lock()
	if t != nil || o.nilClears {
		o.latest = t
	}
	o.mu.Unlock()
	return o.proxy
}

func (o *oneWaiter) Write(p []byte) (int, error) { return asyncio.TryWrite(o, p) }
func (o *oneWaiter) PollWrite(t *asyncio.Task, p []byte) (asyncio.Async[int], error) {
	return o.PipeWriter.PollWrite(o.keep(t), p)
}
func (o *oneWaiter) WriteBuf(t *asyncio.Task, b asyncio.Buf) (asyncio.Async[int], error) {
	return o.PipeWriter.WriteBuf(o.keep(t), b)
}
func (o *oneWaiter) PollFlush(t *asyncio.Task) (asyncio.Async[struct{}], error) {
	return o.PipeWriter.PollFlush(o.keep(t))
}
func (o *oneWaiter) Shutdown(t *asyncio.Task) (asyncio.Async[struct{}], error) {
	return o.PipeWriter.Shutdown(o.keep(t))
}

// growing wraps a Pipe's writer as a socket whose buffers grow: the first
// grows polls that follow a NotReady find that the sink took more bytes
// meanwhile, moved out of the pipe into an overflow the peer reads first.
type growing struct {
	*asyncio.PipeWriter
	r     *asyncio.PipeReader
	task  *asyncio.Task // the peer's
	woken chan struct{}

	mu      sync.Mutex
	over    []byte
	pending bool // the last write answered NotReady
	grows   int
}

func newGrowing(grows int) (*growing, func()) {
	w, r := asyncio.Pipe(4096)
	g := &growing{PipeWriter: w, r: r, grows: grows, woken: make(chan struct{}, 1)}
	g.task = asyncio.NewTask(func() {
		select {
		case g.woken <- struct{}{}:
		default:
		}
	})
	return g, func() { r.Close() }
}

// growLocked moves some of the pipe's bytes to the overflow if the last
// write answered NotReady and the buffers may still grow.
func (g *growing) growLocked() {
	if !g.pending || g.grows == 0 {
		return
	}
	g.pending, g.grows = false, g.grows-1
	buf := make([]byte, 1000)
	if res, _ := g.r.PollRead(nil, buf); res.Ready {
		g.over = append(g.over, buf[:res.Value]...)
	}
}

func (g *growing) Write(p []byte) (int, error) { return asyncio.TryWrite(g, p) }

func (g *growing) PollWrite(t *asyncio.Task, p []byte) (asyncio.Async[int], error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.growLocked()
	r, err := g.PipeWriter.PollWrite(t, p)
	g.pending = !r.Ready && err == nil
	return r, err
}

func (g *growing) WriteBuf(t *asyncio.Task, b asyncio.Buf) (asyncio.Async[int], error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.growLocked()
	r, err := g.PipeWriter.WriteBuf(t, b)
	g.pending = !r.Ready && err == nil
	return r, err
}

// Read is the peer's: the overflow first, then the pipe.
func (g *growing) Read(p []byte) (int, error) {
	for {
		g.mu.Lock()
		if len(g.over) > 0 {
			n := copy(p, g.over)
			g.over = g.over[n:]
			g.mu.Unlock()
			return n, nil
		}
		res, err := g.r.PollRead(g.task, p)
		g.mu.Unlock()
		if err != nil || res.Ready {
			return res.Value, err
		}
		<-g.woken
	}
}

func (g *growing) Close() error { return g.r.Close() }

// growingPeer is the peer of a growing writer.
type growingPeer struct{ g *growing }

func (p growingPeer) Read(b []byte) (int, error) { return p.g.Read(b) }
func (p growingPeer) Close() error               { return p.g.Close() }

// TestKitRetriesWhenTheSinkTakesMore runs the kit on a writer whose sink
// takes more bytes after it answered NotReady: the rules that need a full
// writer refill it and pass.
func TestKitRetriesWhenTheSinkTakesMore(t *testing.T) {
	asynciotest.TestWriter(t, func() (asyncio.AsyncWriter, asynciotest.Peer, func(), error) {
		g, stop := newGrowing(5)
		return g, growingPeer{g}, stop, nil
	})
}

// TestBrokenWriter runs the kit on a broken writer; it is meant to fail and
// runs only inside TestKitCatchesBrokenWriters.
func TestBrokenWriter(t *testing.T) {
	bug := os.Getenv("POLLWS_KIT_BUG")
	if bug == "" {
		t.Skip("runs only as a child of TestKitCatchesBrokenWriters")
	}
	asynciotest.TestWriter(t, func() (asyncio.AsyncWriter, asynciotest.Peer, func(), error) {
		w, r := asyncio.Pipe(4096)
		switch bug {
		case "growsforever":
			r.Close()
			g, stop := newGrowing(1 << 30)
			return g, growingPeer{g}, stop, nil
		case "latestonly", "nilclears":
			return newOneWaiter(w, bug == "nilclears"), r, func() { r.Close() }, nil
		}
		return &broken{w, bug}, r, func() { r.Close() }, nil
	})
}

func TestKitCatchesBrokenWriters(t *testing.T) {
	for _, tc := range []struct{ bug, rule, says string }{
		{"ready0", "B3_EmptyWriteWhenFullIsReady0", "would loop forever"},
		{"wouldblock", "A6_WouldBlockIsNotReadyNeverError", "never an error"},
		{"selfnotify", "A3_NoSelfNotifyBusyLoop", "busy loop"},
		{"shutdowntwice", "D3_ShutdownIsIdempotent", "want Ready at once"},
		{"latestonly", "A2_LatestAndEarlierTasksAreNotified", "not replaced by the later one"},
		{"latestonly", "A8_EveryWaitingTaskIsNotified", "never notified"},
		{"nilclears", "A9_NilTaskPollUnregistersNobody", "still notified"},
		{"growsforever", "B2_NotReadyTakesNothing", "NotReady was never reached again"},
		{"growsforever", "E3_WriteBufNotReadyDoesNotAdvance", "NotReady was never reached again"},
	} {
		t.Run(tc.bug+"/"+tc.rule, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenWriter$/^"+tc.rule+"$", "-test.v")
			cmd.Env = append(os.Environ(), "POLLWS_KIT_BUG="+tc.bug)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the kit passed a writer with bug %q:\n%s", tc.bug, out)
			}
			if !strings.Contains(string(out), "--- FAIL: TestBrokenWriter/"+tc.rule) || !strings.Contains(string(out), tc.says) {
				t.Fatalf("bug %q: want rule %s to fail saying %q; got:\n%s", tc.bug, tc.rule, tc.says, out)
			}
		})
	}
}
