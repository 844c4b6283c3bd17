package asynciotest

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"sync"
	"testing"

	"github.com/pollws/pollws/asyncio"
)

var readRules = []readRule{
	{"K1_ReadyFillsExactlyThePrefix", k1ReadyFillsPrefix},
	{"K2_EmptyReadIsReady0", k2EmptyReadIsReady0},
	{"K3_NotReadyRegistersTask", k3NotReadyRegistersTask},
	{"K4_NoLostWakeupUnderConcurrentDelivery", k4NoLostWakeup},
	{"K5_NoSelfNotifyBusyLoop", k5NoSelfNotifyBusyLoop},
	{"K6_SpuriousPollsAndNotifiesAreHarmless", k6SpuriousPollsAndNotifies},
	{"K7_EveryWaitingTaskIsNotified", k7EveryWaitingTaskIsNotified},
	{"K8_NilTaskPollUnregistersNobody", k8NilTaskPollUnregistersNobody},
	{"K9_EOFAfterEveryByteIsSticky", k9EOFAfterEveryByte},
	{"K10_EndWakesWaitingReader", k10EndWakesWaitingReader},
	{"K11_HangUpWakesWaitingReaderErrorIsSticky", k11HangUp},
	{"K12_SmallPiecesAnyBufferSizesArriveIntact", k12SmallPieces},
}

// k1ReadyFillsPrefix: large and odd-sized deliveries read with buffers of
// every size arrive whole and in order; each Ready(n) holds the next n
// bytes of the stream in p[:n].
func k1ReadyFillsPrefix(t *testing.T, h *readHarness) {
	const total = 256 << 10
	done := h.send(total, []int{1, 1000, 4096, 65536, 7, 100_000, 3}, h.src.End)
	p := newProbe()
	h.readTo(t, p, total, []int{1, 2, 3, 1000, 65536, 7, 4096, 200_000})
	joined(t, done)
	if err := h.readErr(t, p, "the stream ended"); !errors.Is(err, io.EOF) {
		t.Fatalf("PollRead after every byte and the end = %v; want io.EOF", err)
	}
}

// k2EmptyReadIsReady0: an empty p is Ready(0) at once, with nothing to
// read and with bytes waiting, and takes none of them.
func k2EmptyReadIsReady0(t *testing.T, h *readHarness) {
	p := newProbe()
	empty := func(when string) {
		t.Helper()
		for _, task := range []*asyncio.Task{nil, p.task} {
			for _, b := range [][]byte{nil, {}} {
				if r, err := h.pollRead(t, task, b); err != nil || !r.Ready || r.Value != 0 {
					t.Fatalf("PollRead(%#v) %s = %+v, %v; want Ready(0)", b, when, r, err)
				}
			}
		}
	}
	empty("with nothing delivered")
	done := h.send(10, []int{10}, nil)
	h.readTo(t, p, 1, []int{1}) // the bytes have arrived
	empty("with bytes waiting")
	h.readTo(t, p, 10, []int{100}) // the empty reads took none of them
	joined(t, done)
}

// k3NotReadyRegistersTask: a NotReady read registers its task, which a
// later delivery notifies.
func k3NotReadyRegistersTask(t *testing.T, h *readHarness) {
	p := newProbe()
	h.notReady(t, p.task, 100)
	done := h.send(100, []int{100}, nil)
	p.wait(t, "bytes were delivered to a reader that answered NotReady")
	h.readTo(t, p, 100, []int{64})
	joined(t, done)
}

// k4NoLostWakeup: with deliveries racing the reads, a reader that waits
// only for its task's notifications reads the whole stream and its end. No
// other goroutine notifies the task here, so a wake-up lost between a
// poll's last check and its registration hangs the rule.
func k4NoLostWakeup(t *testing.T, h *readHarness) {
	const total = 256 << 10
	p := newProbe()
	done := h.send(total, []int{1500, 1, 4096, 17}, h.src.End)
	h.readTo(t, p, total, []int{1500, 100, 8192})
	joined(t, done)
	if err := h.readErr(t, p, "the stream ended"); !errors.Is(err, io.EOF) {
		t.Fatalf("PollRead after every byte and the end = %v; want io.EOF", err)
	}
}

// k5NoSelfNotifyBusyLoop: a NotReady read does not notify its own task.
func k5NoSelfNotifyBusyLoop(t *testing.T, h *readHarness) {
	p := newProbe()
	const polls = 100
	for range polls {
		h.notReady(t, p.task, 4096)
	}
	if n := p.n.Load(); n > polls/2 {
		t.Fatalf("%d notifications in %d polls of a reader with nothing to read: a poll notifies its own task (busy loop)", n, polls)
	}
}

// k6SpuriousPollsAndNotifies: notifications and polls with nothing to read
// change nothing; the bytes delivered after them arrive intact.
func k6SpuriousPollsAndNotifies(t *testing.T, h *readHarness) {
	p := newProbe()
	for range 10 {
		p.task.Notify()
		h.notReady(t, p.task, 100)
	}
	done := h.send(1000, []int{300}, nil)
	h.readTo(t, p, 1000, []int{128})
	joined(t, done)
}

// k7EveryWaitingTaskIsNotified: every distinct task waiting on the reader
// is notified when bytes arrive; goroutines that each wait to read one
// byte all complete when one delivery brings enough for all.
func k7EveryWaitingTaskIsNotified(t *testing.T, h *readHarness) {
	const waiters = 8
	probes := make([]*probe, waiters)
	for i := range probes {
		probes[i] = newProbe()
		h.notReady(t, probes[i].task, 1)
	}
	done := h.send(waiters, []int{waiters}, nil)
	for _, p := range probes {
		p.wait(t, "bytes arrived while several tasks waited: each is notified, not only the latest")
	}
	h.readTo(t, probes[0], waiters, []int{waiters})
	joined(t, done)

	// Goroutines that share the reader share its stream: each reads one
	// byte, so the pattern is checked here on the bytes they got together.
	ctx := ctxTimeout(t)
	var mu sync.Mutex
	tasks := make(map[*asyncio.Task]bool)
	waiting := make(chan struct{}, waiters)
	type result struct {
		b   byte
		err error
	}
	results := make(chan result, waiters)
	for range waiters {
		go func() {
			var b [1]byte
			waited := false
			_, err := asyncio.BlockOn(ctx, func(task *asyncio.Task) (asyncio.Async[int], error) {
				r, err := h.r.PollRead(task, b[:])
				if err == nil && !r.Ready && task != nil && !waited {
					waited = true
					mu.Lock()
					tasks[task] = true
					mu.Unlock()
					waiting <- struct{}{}
				}
				return r, err
			})
			results <- result{b[0], err}
		}()
	}
	for range waiters {
		select {
		case <-waiting:
		case r := <-results:
			t.Fatalf("a goroutine read before anything was delivered: %q, %v", r.b, r.err)
		}
	}
	mu.Lock()
	distinct := len(tasks)
	mu.Unlock()
	// Each goroutine waits through asyncio.BlockOn with a task of its own:
	// this checks the kit's own premise, so that what follows tests the
	// reader with that many distinct waiters.
	if distinct != waiters {
		t.Fatalf("%d goroutines waited at once with %d distinct tasks; want one each", waiters, distinct)
	}
	want := pattern(h.sent, waiters)
	done = h.send(waiters, []int{waiters}, nil)
	got := make([]byte, 0, waiters)
	for i := range waiters {
		r := <-results
		if r.err != nil {
			t.Fatalf("%d of %d goroutines waiting on the reader completed; then: %v (a waiting task was never notified)", i, waiters, r.err)
		}
		got = append(got, r.b)
	}
	joined(t, done)
	slices.Sort(got)
	slices.Sort(want)
	if !bytes.Equal(got, want) {
		t.Fatalf("the goroutines read %x together; want the bytes delivered, %x", got, want)
	}
	h.got += waiters
}

// k8NilTaskPollUnregistersNobody: a poll without a task from another
// goroutine does not cost a waiting task its notification.
func k8NilTaskPollUnregistersNobody(t *testing.T, h *readHarness) {
	p := newProbe()
	h.notReady(t, p.task, 100)
	other := make(chan error, 1)
	go func() {
		r, err := h.r.PollRead(nil, make([]byte, 100))
		if err == nil && r.Ready {
			err = errors.New("PollRead(nil task) read bytes that were never delivered")
		}
		other <- err
	}()
	if err := <-other; err != nil {
		t.Fatalf("PollRead with a nil task: %v", err)
	}
	done := h.send(100, []int{100}, nil)
	p.wait(t, "a task that waited before a poll without a task from another goroutine is still notified")
	h.readTo(t, p, 100, []int{100})
	joined(t, done)
}

// k9EOFAfterEveryByte: the end of the stream is io.EOF, after every byte
// delivered before it, and again on every later poll.
func k9EOFAfterEveryByte(t *testing.T, h *readHarness) {
	p := newProbe()
	done := h.send(5000, []int{1000, 1, 999}, h.src.End)
	h.readTo(t, p, 5000, []int{512})
	joined(t, done)
	err := h.readErr(t, p, "the stream ended")
	if !errors.Is(err, io.EOF) {
		t.Fatalf("PollRead after every byte and the end = %v; want io.EOF", err)
	}
	h.sticky(t, p.task, io.EOF)
}

// k10EndWakesWaitingReader: a reader waiting when the stream ends is
// notified and then answers io.EOF.
func k10EndWakesWaitingReader(t *testing.T, h *readHarness) {
	p := newProbe()
	h.notReady(t, p.task, 100)
	done := h.send(0, []int{1}, h.src.End)
	p.wait(t, "the stream ended while the reader waited")
	joined(t, done)
	if err := h.readErr(t, p, "the stream ended"); !errors.Is(err, io.EOF) {
		t.Fatalf("PollRead after the end = %v; want io.EOF", err)
	}
}

// k11HangUp: a reader waiting when the source hangs up is notified and
// then fails with an error that is not io.EOF (the stream did not end
// cleanly), and with that error again on every later poll.
func k11HangUp(t *testing.T, h *readHarness) {
	p := newProbe()
	done := h.send(100, []int{100}, nil)
	h.readTo(t, p, 100, []int{100})
	joined(t, done)
	h.notReady(t, p.task, 100)
	done = h.send(0, []int{1}, h.src.HangUp)
	p.wait(t, "the source hung up while the reader waited")
	joined(t, done)
	err := h.readErr(t, p, "the source hung up")
	if errors.Is(err, io.EOF) {
		t.Fatalf("PollRead after a hang-up = %v; want an error that is not io.EOF: the stream did not end cleanly", err)
	}
	h.sticky(t, p.task, err)
}

// k12SmallPieces: many small deliveries read with buffers of many sizes
// arrive intact, then the end.
func k12SmallPieces(t *testing.T, h *readHarness) {
	const total = 64 << 10
	p := newProbe()
	done := h.send(total, []int{1, 2, 3, 5, 8, 13, 100, 1000, 1, 1}, h.src.End)
	h.readTo(t, p, total, []int{1, 7, 64, 1000, 4096, 65536, 3, 2})
	joined(t, done)
	err := h.readErr(t, p, "the stream ended")
	if !errors.Is(err, io.EOF) {
		t.Fatalf("PollRead after every byte and the end = %v; want io.EOF", err)
	}
}
