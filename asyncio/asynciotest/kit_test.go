package asynciotest_test

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"runtime"
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

// brokenReader wraps a Pipe's reader and breaks one rule of the contract.
type brokenReader struct {
	r     *asyncio.PipeReader
	bug   string
	proxy *asyncio.Task // the task the pipe notifies, for the bugs that keep one

	mu     sync.Mutex
	latest *asyncio.Task
	eof    bool
	reads  int
}

func newBrokenReader(r *asyncio.PipeReader, bug string) *brokenReader {
	b := &brokenReader{r: r, bug: bug}
	b.proxy = asyncio.NewTask(func() {
		b.mu.Lock()
		t := b.latest
		b.latest = nil
		b.mu.Unlock()
		t.Notify()
	})
	return b
}

func (b *brokenReader) PollRead(t *asyncio.Task, p []byte) (asyncio.Async[int], error) {
	switch b.bug {
	case "latestonly", "nilclears":
		b.mu.Lock()
		if t != nil || b.bug == "nilclears" {
			b.latest = t
		}
		b.mu.Unlock()
		return b.r.PollRead(b.proxy, p)
	case "lostwakeup": // registers the task after checking for bytes
		r, err := b.r.PollRead(b.proxy, p)
		if !r.Ready && err == nil {
			runtime.Gosched()
			b.mu.Lock()
			b.latest = t
			b.mu.Unlock()
		}
		return r, err
	}
	r, err := b.r.PollRead(t, p)
	switch {
	case b.bug == "selfnotify" && !r.Ready && err == nil:
		t.Notify()
	case b.bug == "ready0" && !r.Ready && err == nil && len(p) > 0:
		return asyncio.Ready(0), nil
	case b.bug == "eofnotsticky" && err == io.EOF:
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.eof {
			return asyncio.NotReady[int](), nil
		}
		b.eof = true
	case b.bug == "hangupeof" && errors.Is(err, errHungUp):
		return r, io.EOF
	case b.bug == "dropbyte" && r.Ready && r.Value > 1:
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.reads++; b.reads%50 == 0 {
			copy(p, p[1:r.Value])
			return asyncio.Ready(r.Value - 1), nil
		}
	}
	return r, err
}

// pipeSource drives a Pipe's writer as the source of its reader.
type pipeSource struct{ w *asyncio.PipeWriter }

var errHungUp = errors.New("the writer hung up")

func (s pipeSource) Deliver(p []byte) error { return asyncio.WriteAll(context.Background(), s.w, p) }
func (s pipeSource) End() error             { return asyncio.Shutdown(context.Background(), s.w) }
func (s pipeSource) HangUp() error          { return s.w.CloseWithError(errHungUp) }

// TestBrokenReader runs the readers' kit on a broken reader; it is meant
// to fail and runs only inside TestKitCatchesBrokenReaders.
func TestBrokenReader(t *testing.T) {
	bug := os.Getenv("POLLWS_KIT_BUG")
	if bug == "" {
		t.Skip("runs only as a child of TestKitCatchesBrokenReaders")
	}
	asynciotest.TestReader(t, func() (asyncio.AsyncReader, asynciotest.Source, func(), error) {
		w, r := asyncio.Pipe(7)
		return newBrokenReader(r, bug), pipeSource{w}, func() { r.Close() }, nil
	})
}

func TestKitCatchesBrokenReaders(t *testing.T) {
	for _, tc := range []struct{ bug, rule, says string }{
		{"selfnotify", "K5_NoSelfNotifyBusyLoop", "busy loop"},
		{"ready0", "K3_NotReadyRegistersTask", "loop forever"},
		{"eofnotsticky", "K9_EOFAfterEveryByteIsSticky", "errors are sticky"},
		{"hangupeof", "K11_HangUpWakesWaitingReaderErrorIsSticky", "not io.EOF"},
		{"dropbyte", "K1_ReadyFillsExactlyThePrefix", "dropped, repeated or reordered"},
		{"latestonly", "K7_EveryWaitingTaskIsNotified", "not only the latest"},
		{"nilclears", "K8_NilTaskPollUnregistersNobody", "still notified"},
		{"lostwakeup", "K4_NoLostWakeupUnderConcurrentDelivery", "not notified"},
	} {
		t.Run(tc.bug+"/"+tc.rule, func(t *testing.T) {
			childFails(t, "TestBrokenReader", tc.bug, tc.rule, tc.says)
		})
	}
}

// childFails runs one subtest of test in a child process with bug set, and
// checks that rule fails saying says.
func childFails(t *testing.T, test, bug, rule, says string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$/^"+rule+"$", "-test.v")
	cmd.Env = append(os.Environ(), "POLLWS_KIT_BUG="+bug)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the kit passed with bug %q:\n%s", bug, out)
	}
	if !strings.Contains(string(out), "--- FAIL: "+test+"/"+rule) || !strings.Contains(string(out), says) {
		t.Fatalf("bug %q: want rule %s to fail saying %q; got:\n%s", bug, rule, says, out)
	}
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
			childFails(t, "TestBrokenWriter", tc.bug, tc.rule, tc.says)
		})
	}
}
