package asynciotest

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/pollws/pollws/asyncio"
)

var rules = []rule{
	{"A1_NotReadyRegistersTask", a1NotReadyRegistersTask},
	{"A2_LatestAndEarlierTasksAreNotified", a2LatestAndEarlierTasksAreNotified},
	{"A3_NoSelfNotifyBusyLoop", a3NoSelfNotifyBusyLoop},
	{"A4_SpuriousPollsAndNotifiesAreHarmless", a4SpuriousPollsAndNotifies},
	{"A5_NotifyAfterCompletionIsNoop", a5NotifyAfterCompletion},
	{"A6_WouldBlockIsNotReadyNeverError", a6WouldBlockIsNotReady},
	{"A7_NoLostWakeupUnderConcurrentNotify", a7NoLostWakeup},
	{"A8_EveryWaitingTaskIsNotified", a8EveryWaitingTaskIsNotified},
	{"A9_NilTaskPollUnregistersNobody", a9NilTaskPollUnregistersNobody},
	{"B1_ReadyTakesExactlyThePrefix", b1ReadyTakesPrefix},
	{"B2_NotReadyTakesNothing", b2NotReadyTakesNothing},
	{"B3_EmptyWriteWhenFullIsReady0", b3EmptyWriteWhenFull},
	{"B4_EmptyWriteIsReady0", b4EmptyWrite},
	{"B5_WriteNeverBlocks", b5WriteNeverBlocks},
	{"B6_WriteAfterShutdownBeganIsErrShutdown", b6WriteAfterShutdown},
	{"B7_PeerGoneWakesWaitingWriter", b7PeerGoneWakesWaiter},
	{"C1_FlushOfNothingIsReady", c1FlushEmpty},
	{"C2_FlushDeliversEveryAcceptedByte", c2FlushDelivers},
	{"C3_FlushWaitsForStalledPeer", c3FlushWaitsForStalledPeer},
	{"D1_ShutdownFlushesFirst", d1ShutdownFlushes},
	{"D2_ShutdownResumesAfterNotReadyWithOneEnd", d2ShutdownResumes},
	{"D3_ShutdownIsIdempotent", d3ShutdownIdempotent},
	{"D4_ShutdownErrorIsSticky", d4ShutdownErrorSticky},
	{"E1_WriteBufOfEmptyBufIsReady0", e1WriteBufEmpty},
	{"E2_WriteBufAdvancesByExactlyN", e2WriteBufAdvances},
	{"E3_WriteBufNotReadyDoesNotAdvance", e3WriteBufNotReady},
	{"S1_ErrorsAreSticky", s1ErrorsAreSticky},
}

func a1NotReadyRegistersTask(t *testing.T, h *harness) {
	p := newProbe()
	h.fill(t, p.task)
	rd := h.startReader(64 << 10)
	p.wait(t, "the peer read, so the writer that answered NotReady can make progress")
	rd.waitFor(t, h.sent)
}

// a2LatestAndEarlierTasksAreNotified: a second task that polls a full
// writer does not take the first one's place; both are notified.
func a2LatestAndEarlierTasksAreNotified(t *testing.T, h *harness) {
	first, later := newProbe(), newProbe()
	h.untilNotReady(t, func() bool {
		h.fill(t, first.task)
		r, err := h.pollWrite(t, later.task, 1)
		if err != nil {
			t.Fatalf("second PollWrite on a full writer: %v", err)
		}
		return !r.Ready
	})
	h.startReader(64 << 10)
	later.wait(t, "the task of the latest NotReady poll is notified")
	first.wait(t, "an earlier task that still waits is notified too, not replaced by the later one")
}

func a3NoSelfNotifyBusyLoop(t *testing.T, h *harness) {
	p := newProbe()
	h.fill(t, p.task)
	const polls = 100
	for range polls {
		r, err := h.pollWrite(t, p.task, 64<<10)
		if err != nil {
			t.Fatalf("PollWrite on a full writer: %v", err)
		}
		if r.Ready {
			h.fill(t, p.task) // the writer drained into its sink meanwhile
		}
	}
	if n := p.n.Load(); n > polls/2 {
		t.Fatalf("%d notifications in %d polls of a writer whose peer reads nothing: a poll notifies its own task (busy loop)", n, polls)
	}
}

func a4SpuriousPollsAndNotifies(t *testing.T, h *harness) {
	p := newProbe()
	h.fill(t, p.task)
	for range 10 {
		p.task.Notify()
		if r, err := h.pollWrite(t, p.task, 100); err != nil {
			t.Fatalf("spurious PollWrite = %+v, %v", r, err)
		}
		if _, err := h.w.PollFlush(p.task); err != nil {
			t.Fatalf("spurious PollFlush: %v", err)
		}
	}
	rd := h.startReader(64 << 10)
	if err := asyncio.Flush(ctxTimeout(t), h.w); err != nil {
		t.Fatalf("Flush after spurious polls: %v", err)
	}
	rd.waitFor(t, h.sent)
}

func a5NotifyAfterCompletion(t *testing.T, h *harness) {
	p := newProbe()
	rd := h.startReader(64 << 10)
	h.writeAll(t, 10_000)
	if err := p.until(t, "shutdown", func(task *asyncio.Task) (bool, error) {
		r, err := h.w.Shutdown(task)
		return r.Ready, err
	}); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				p.task.Notify()
			}
		})
	}
	wg.Wait()
	if r, err := h.w.Shutdown(nil); err != nil || !r.Ready {
		t.Fatalf("Shutdown after completion and stray notifies = %+v, %v; want Ready", r, err)
	}
	rd.waitEOF(t, h.sent)
}

func a6WouldBlockIsNotReady(t *testing.T, h *harness) {
	p := newProbe()
	h.fill(t, p.task)
	for range 3 {
		r, err := h.pollWrite(t, p.task, 10)
		if errors.Is(err, asyncio.ErrWouldBlock) {
			t.Fatal("PollWrite returned ErrWouldBlock: would-block is NotReady, never an error")
		}
		if err != nil {
			t.Fatalf("PollWrite on a full writer: %v", err)
		}
		if r.Ready {
			return // the sink took more meanwhile; fine
		}
	}
}

func a7NoLostWakeup(t *testing.T, h *harness) {
	const total = 1 << 20
	rd := h.startReader(1500)
	p := newProbe()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { // notifies from another goroutine, racing the polls
		for {
			select {
			case <-stop:
				return
			default:
				p.task.Notify()
				runtime.Gosched()
			}
		}
	})
	defer wg.Wait()
	defer close(stop)
	for end := h.sent + total; h.sent < end; {
		r, err := h.pollWrite(t, p.task, int(min(32<<10, end-h.sent)))
		if err != nil {
			t.Fatalf("PollWrite: %v", err)
		}
		if !r.Ready {
			p.wait(t, "the peer keeps reading")
		}
	}
	if err := p.until(t, "shutdown with a reading peer", func(task *asyncio.Task) (bool, error) {
		r, err := h.w.Shutdown(task)
		return r.Ready, err
	}); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	rd.waitEOF(t, h.sent)
}

// a8EveryWaitingTaskIsNotified: goroutines that each BlockOn a PollWrite
// of one full writer, each with a task of its own, all complete once the
// peer reads; none hangs because another goroutine polled after it.
func a8EveryWaitingTaskIsNotified(t *testing.T, h *harness) {
	const goroutines = 8
	h.fill(t, nil)
	ctx := ctxTimeout(t)
	var (
		mu    sync.Mutex
		tasks = make(map[*asyncio.Task]int)
		taken int64
	)
	waiting := make(chan struct{}, goroutines)
	errs := make(chan error, goroutines)
	for i := range goroutines {
		chunk := make([]byte, 64<<10)
		for j := range chunk {
			chunk[j] = byte(i)
		}
		go func() {
			waited := false
			_, err := asyncio.BlockOn(ctx, func(task *asyncio.Task) (asyncio.Async[int], error) {
				// Write until this goroutine has had to wait once, so that
				// all of them wait on the full writer at the same time;
				// then until its write is taken.
				for n := 0; n < fillLimit; {
					r, err := h.w.PollWrite(task, chunk)
					if err != nil {
						return r, err
					}
					if r.Ready && r.Value == 0 {
						return r, errors.New("PollWrite of a non-empty chunk answered Ready(0)")
					}
					if r.Ready {
						mu.Lock()
						taken += int64(r.Value)
						mu.Unlock()
					}
					switch {
					case r.Ready && waited:
						return r, nil
					case r.Ready:
						n += r.Value
					case task == nil:
						return r, nil // BlockOn polls again with its own task
					default:
						if !waited {
							waited = true
							mu.Lock()
							tasks[task]++
							mu.Unlock()
							waiting <- struct{}{}
						}
						return r, nil
					}
				}
				return asyncio.Async[int]{}, fmt.Errorf("writer took %d bytes from a peer that does not read without answering NotReady: it is not bounded", fillLimit)
			})
			errs <- err
		}()
	}
	// A goroutine completes only after it waited, so it may complete
	// before the others wait if the writer's sink takes more meanwhile.
	completed := 0
	for waited := 0; waited < goroutines; {
		select {
		case <-waiting:
			waited++
		case err := <-errs:
			if err != nil {
				t.Fatalf("%d of %d goroutines waited on the full writer; then: %v", waited, goroutines, err)
			}
			completed++
		}
	}
	mu.Lock()
	distinct := len(tasks)
	mu.Unlock()
	if completed == 0 && distinct != goroutines {
		// All of them wait at once, each in a BlockOn of its own.
		t.Fatalf("%d goroutines waited at once with %d distinct tasks; want one each", goroutines, distinct)
	}
	rd := h.startCounter(64 << 10)
	for ; completed < goroutines; completed++ {
		if err := <-errs; err != nil {
			t.Fatalf("%d of %d goroutines waiting on the writer completed; then: %v (a waiting task was never notified)", completed, goroutines, err)
		}
	}
	if err := asyncio.Flush(ctx, h.w); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	mu.Lock()
	h.sent += taken
	mu.Unlock()
	rd.waitFor(t, h.sent)
}

// a9NilTaskPollUnregistersNobody: a Write (a poll without a task) from
// another goroutine does not cost a waiting task its notification.
func a9NilTaskPollUnregistersNobody(t *testing.T, h *harness) {
	p := newProbe()
	h.fill(t, p.task)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 3 {
			n, err := h.w.Write(pattern(h.sent, 64<<10))
			h.sent += int64(n)
			if err != nil && !errors.Is(err, asyncio.ErrWouldBlock) {
				t.Errorf("Write on a full writer = %d, %v; want ErrWouldBlock", n, err)
				return
			}
		}
		if _, err := h.w.PollFlush(nil); err != nil {
			t.Errorf("PollFlush(nil) on a full writer: %v", err)
		}
	}()
	<-done
	if t.Failed() {
		return
	}
	rd := h.startReader(64 << 10)
	p.wait(t, "a task that waited before a Write from another goroutine is still notified")
	if err := asyncio.Flush(ctxTimeout(t), h.w); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	rd.waitFor(t, h.sent)
}

func b1ReadyTakesPrefix(t *testing.T, h *harness) {
	rd := h.startReader(3000)
	p := newProbe()
	sizes := []int{1, 2, 3, 1000, 65536, 200000, 7, 4096}
	for i := range 200 {
		n := sizes[i%len(sizes)]
		for {
			r, err := h.pollWrite(t, p.task, n)
			if err != nil {
				t.Fatalf("PollWrite: %v", err)
			}
			if r.Ready {
				break
			}
			p.wait(t, "the peer keeps reading")
		}
	}
	if err := asyncio.Flush(ctxTimeout(t), h.w); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	rd.waitFor(t, h.sent)
}

// b2NotReadyTakesNothing: polls that answer NotReady offer the next
// pattern bytes; had the writer taken any, the stream would hold them
// twice, since the writes after repeat them.
func b2NotReadyTakesNothing(t *testing.T, h *harness) {
	p := newProbe()
	h.untilNotReady(t, func() bool {
		h.fill(t, p.task)
		for _, n := range []int{1, 100, 64 << 10} {
			r, err := h.pollWrite(t, p.task, n)
			if err != nil {
				t.Fatalf("PollWrite: %v", err)
			}
			if r.Ready {
				return false
			}
		}
		return true
	})
	rd := h.startReader(64 << 10)
	if err := asyncio.Flush(ctxTimeout(t), h.w); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	h.writeAll(t, 1000) // bytes after the refused ones must follow the accepted ones directly
	if err := asyncio.Flush(ctxTimeout(t), h.w); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	rd.waitFor(t, h.sent)
}

func b3EmptyWriteWhenFull(t *testing.T, h *harness) {
	p := newProbe()
	h.fill(t, p.task)
	for _, empty := range [][]byte{nil, {}} {
		if r, err := h.w.PollWrite(p.task, empty); err != nil || !r.Ready || r.Value != 0 {
			t.Fatalf("PollWrite(%#v) on a full writer = %+v, %v; want Ready(0)", empty, r, err)
		}
	}
}

func b4EmptyWrite(t *testing.T, h *harness) {
	if r, err := h.w.PollWrite(nil, nil); err != nil || !r.Ready || r.Value != 0 {
		t.Fatalf("PollWrite(nil) = %+v, %v; want Ready(0)", r, err)
	}
	if n, err := h.w.Write(nil); n != 0 || err != nil {
		t.Fatalf("Write(nil) = %d, %v; want 0, nil", n, err)
	}
}

func b5WriteNeverBlocks(t *testing.T, h *harness) {
	h.fill(t, nil)
	// A writer that answered NotReady may take more a moment later, once
	// it has moved its buffer into the connection's (a socket's buffers
	// grow): a Write that takes all of p is no fault then. Write on until
	// one comes back short, as it must before fillLimit.
	const size = 256 << 10
	for start := h.sent; ; {
		done := make(chan struct{})
		var n int
		var err error
		go func() {
			defer close(done)
			n, err = h.w.Write(poison(h.sent, size))
		}()
		select {
		case <-done:
		case <-ctxTimeout(t).Done():
			t.Fatal("Write on a full writer blocked")
		}
		switch {
		case errors.Is(err, asyncio.ErrWouldBlock) && n < size:
			return
		case err != nil || n != size:
			t.Fatalf("Write of 256 KiB on a full writer = %d, %v; want n < len(p) and ErrWouldBlock", n, err)
		}
		if h.sent += int64(n); h.sent-start >= fillLimit {
			t.Fatalf("writer took %d bytes in Writes after answering NotReady, from a peer that does not read: it is not bounded", h.sent-start)
		}
	}
}

func b6WriteAfterShutdown(t *testing.T, h *harness) {
	p := newProbe()
	h.fill(t, p.task)
	if r, err := h.w.Shutdown(p.task); err != nil || r.Ready {
		t.Fatalf("Shutdown with a stalled peer = %+v, %v; want NotReady", r, err)
	}
	if _, err := h.w.PollWrite(p.task, []byte("x")); !errors.Is(err, asyncio.ErrShutdown) {
		t.Fatalf("PollWrite after Shutdown began: %v; want ErrShutdown", err)
	}
	if _, err := h.w.Write([]byte("x")); !errors.Is(err, asyncio.ErrShutdown) {
		t.Fatalf("Write after Shutdown began: %v; want ErrShutdown", err)
	}
	rd := h.startReader(64 << 10)
	if err := p.until(t, "shutdown with a reading peer", func(task *asyncio.Task) (bool, error) {
		r, err := h.w.Shutdown(task)
		return r.Ready, err
	}); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if _, err := h.w.PollWrite(nil, []byte("x")); !errors.Is(err, asyncio.ErrShutdown) {
		t.Fatalf("PollWrite after Shutdown completed: %v; want ErrShutdown", err)
	}
	rd.waitEOF(t, h.sent)
}

// fail fills the writer, makes the peer go away, and polls until the writer
// reports the error, which it returns.
func (h *harness) fail(t *testing.T, p *probe) error {
	t.Helper()
	h.fill(t, p.task)
	if err := h.peer.Close(); err != nil {
		t.Fatalf("peer Close: %v", err)
	}
	p.wait(t, "the peer went away while the writer waited (tokio #3756)")
	err := p.until(t, "the peer went away", func(task *asyncio.Task) (bool, error) {
		// Everything accepted may have left before the peer's end came:
		// a writer learns of a gone peer only when it writes, so write
		// again until the error shows.
		for range 1000 {
			r, err := h.w.PollFlush(task)
			if err != nil || !r.Ready {
				return false, err
			}
			if _, err := h.pollWrite(t, task, 1024); err != nil {
				return false, err
			}
		}
		t.Fatal("the writer flushed 1000 writes to a peer that went away, without an error")
		return false, nil
	})
	if err == nil {
		t.Fatal("no error after the peer went away")
	}
	return err
}

func b7PeerGoneWakesWaiter(t *testing.T, h *harness) {
	h.fail(t, newProbe())
}

func c1FlushEmpty(t *testing.T, h *harness) {
	if r, err := h.w.PollFlush(nil); err != nil || !r.Ready {
		t.Fatalf("PollFlush of a new writer = %+v, %v; want Ready", r, err)
	}
}

func c2FlushDelivers(t *testing.T, h *harness) {
	rd := h.startReader(64 << 10)
	h.writeAll(t, 1<<20)
	if err := asyncio.Flush(ctxTimeout(t), h.w); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	rd.waitFor(t, h.sent) // with no further poll of the writer
}

func c3FlushWaitsForStalledPeer(t *testing.T, h *harness) {
	p := newProbe()
	h.fill(t, p.task)
	if r, err := h.w.PollFlush(p.task); err != nil || r.Ready {
		t.Fatalf("PollFlush of a full writer with a stalled peer = %+v, %v; want NotReady", r, err)
	}
	rd := h.startReader(64 << 10)
	if err := p.until(t, "flush with a reading peer", func(task *asyncio.Task) (bool, error) {
		r, err := h.w.PollFlush(task)
		return r.Ready, err
	}); err != nil {
		t.Fatalf("PollFlush: %v", err)
	}
	rd.waitFor(t, h.sent)
}

func d1ShutdownFlushes(t *testing.T, h *harness) {
	rd := h.startReader(64 << 10)
	h.writeAll(t, 300_000)
	if err := asyncio.Shutdown(ctxTimeout(t), h.w); err != nil {
		t.Fatalf("Shutdown without a Flush before it: %v", err)
	}
	rd.waitEOF(t, h.sent)
}

func d2ShutdownResumes(t *testing.T, h *harness) {
	p := newProbe()
	h.fill(t, p.task)
	polls := 0
	r, err := h.w.Shutdown(p.task)
	if err != nil || r.Ready {
		t.Fatalf("Shutdown with a stalled peer = %+v, %v; want NotReady", r, err)
	}
	rd := h.startReader(64 << 10)
	if err := p.until(t, "shutdown resumed with a reading peer", func(task *asyncio.Task) (bool, error) {
		polls++
		r, err := h.w.Shutdown(task)
		return r.Ready, err
	}); err != nil {
		t.Fatalf("Shutdown resumed: %v", err)
	}
	rd.waitEOF(t, h.sent)
	var b [1]byte
	if n, err := h.peer.Read(b[:]); n != 0 || err == nil {
		t.Fatalf("peer Read after the end = %d, %v; want the end once (one FIN, one close frame)", n, err)
	}
}

func d3ShutdownIdempotent(t *testing.T, h *harness) {
	rd := h.startReader(64 << 10)
	h.writeAll(t, 1000)
	if err := asyncio.Shutdown(ctxTimeout(t), h.w); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for i := range 3 {
		if r, err := h.w.Shutdown(nil); err != nil || !r.Ready {
			t.Fatalf("Shutdown #%d after completion = %+v, %v; want Ready at once", i+2, r, err)
		}
	}
	rd.waitEOF(t, h.sent)
}

func d4ShutdownErrorSticky(t *testing.T, h *harness) {
	p := newProbe()
	h.fill(t, p.task)
	if r, err := h.w.Shutdown(p.task); err != nil || r.Ready {
		t.Fatalf("Shutdown with a stalled peer = %+v, %v; want NotReady", r, err)
	}
	if err := h.peer.Close(); err != nil {
		t.Fatalf("peer Close: %v", err)
	}
	err := p.until(t, "the peer went away during shutdown", func(task *asyncio.Task) (bool, error) {
		r, err := h.w.Shutdown(task)
		if r.Ready && err == nil {
			t.Fatal("Shutdown Ready though the peer went away with bytes undelivered")
		}
		return false, err
	})
	for range 2 {
		r, again := h.w.Shutdown(p.task)
		if again == nil || r.Ready || !errors.Is(again, err) {
			t.Fatalf("Shutdown after it failed with %v = %+v, %v; want the same error", err, r, again)
		}
	}
}

func e1WriteBufEmpty(t *testing.T, h *harness) {
	for _, b := range []asyncio.Buf{asyncio.NewBytesBuf(), asyncio.NewBytesBuf(nil, []byte{})} {
		if r, err := asyncio.WriteBuf(nil, h.w, b); err != nil || !r.Ready || r.Value != 0 {
			t.Fatalf("WriteBuf of an empty Buf = %+v, %v; want Ready(0)", r, err)
		}
	}
	if r, err := h.w.PollFlush(nil); err != nil || !r.Ready {
		t.Fatalf("PollFlush after empty WriteBufs = %+v, %v; want Ready (nothing written)", r, err)
	}
}

func e2WriteBufAdvances(t *testing.T, h *harness) {
	rd := h.startReader(64 << 10)
	p := newProbe()
	for round := range 50 {
		sizes := []int{round, 1, 0, 3000, 70000 * (round % 3), 17}
		var chunks [][]byte
		off := h.sent
		for _, n := range sizes {
			chunks = append(chunks, pattern(off, n))
			off += int64(n)
		}
		b := asyncio.NewBytesBuf(chunks...)
		for b.Remaining() > 0 {
			before := b.Remaining()
			r, err := asyncio.WriteBuf(p.task, h.w, b)
			if err != nil {
				t.Fatalf("WriteBuf: %v", err)
			}
			switch {
			case !r.Ready && b.Remaining() != before:
				t.Fatalf("WriteBuf NotReady advanced the Buf by %d", before-b.Remaining())
			case !r.Ready:
				p.wait(t, "the peer keeps reading")
			case r.Value <= 0 || r.Value > before:
				t.Fatalf("WriteBuf of %d bytes = Ready(%d)", before, r.Value)
			case before-b.Remaining() != r.Value:
				t.Fatalf("WriteBuf = Ready(%d) but advanced the Buf by %d", r.Value, before-b.Remaining())
			}
			if r.Ready {
				h.sent += int64(r.Value)
			}
		}
	}
	if err := asyncio.Flush(ctxTimeout(t), h.w); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	rd.waitFor(t, h.sent)
}

func e3WriteBufNotReady(t *testing.T, h *harness) {
	p := newProbe()
	h.untilNotReady(t, func() bool {
		h.fill(t, p.task)
		b := asyncio.NewBytesBuf(pattern(h.sent, 10), pattern(h.sent+10, 5000))
		r, err := asyncio.WriteBuf(p.task, h.w, b)
		switch {
		case err != nil:
			t.Fatalf("WriteBuf on a full writer: %v", err)
		case !r.Ready && b.Remaining() != 5010:
			t.Fatalf("WriteBuf NotReady left Remaining %d, want 5010", b.Remaining())
		case r.Ready && (r.Value <= 0 || r.Value != 5010-b.Remaining()):
			t.Fatalf("WriteBuf of 5010 bytes = Ready(%d) and advanced the Buf by %d", r.Value, 5010-b.Remaining())
		case r.Ready:
			h.sent += int64(r.Value)
		}
		return !r.Ready
	})
	rd := h.startReader(64 << 10)
	p.wait(t, "WriteBuf NotReady registers the task")
	if err := asyncio.Flush(ctxTimeout(t), h.w); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	rd.waitFor(t, h.sent)
}

func s1ErrorsAreSticky(t *testing.T, h *harness) {
	first := h.fail(t, newProbe())
	for i := range 2 {
		if _, err := h.w.PollWrite(nil, []byte("x")); err == nil {
			t.Fatalf("PollWrite #%d after %v: no error", i+1, first)
		}
		if _, err := h.w.PollFlush(nil); !errors.Is(err, first) {
			t.Fatalf("PollFlush #%d after %v = %v; want the same error", i+1, first, err)
		}
	}
	if r, err := h.w.Shutdown(nil); err == nil || r.Ready {
		t.Fatalf("Shutdown after %v = %+v, %v; want an error", first, r, err)
	}
}

// refills bounds how often a rule refills a writer whose sink took more
// bytes meanwhile (a socket's buffers grow) before it gives up on reaching
// NotReady again.
const refills = 100

// untilNotReady runs try, which refills the writer and polls it, until try
// reports that the writer answered NotReady; it fails the rule if that never
// happens within refills attempts.
func (h *harness) untilNotReady(t *testing.T, try func() bool) {
	t.Helper()
	for range refills {
		if try() {
			return
		}
	}
	t.Fatalf("the writer took more bytes after each of %d refills from a peer that does not read: NotReady was never reached again", refills)
}

func ctxTimeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	t.Cleanup(cancel)
	return ctx
}
