package asynciotest

import (
	"errors"
	"fmt"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/pollws/pollws/asyncio"
)

// Source is the far end of a reader under test: the kit drives it to send
// bytes, to end the stream, and to hang up.
//
// The kit calls one method at a time, each from a goroutine of its own
// where it may block, never with an empty p, and calls End or HangUp only
// after every Deliver returned.
type Source interface {
	// Deliver sends p, after every byte delivered before. It may block
	// until the reader has taken earlier bytes (back-pressure), as a
	// socket's Write does; the reader must be notified as soon as any of p
	// can be read.
	Deliver(p []byte) error
	// End ends the stream gracefully (a FIN, TLS close_notify, a close
	// frame with status 1000, a writer's Shutdown): once it has read every
	// byte delivered, the reader answers io.EOF, and again on every later
	// poll.
	End() error
	// HangUp ends the stream abruptly (a reset, a connection dropped
	// without a close frame). The kit calls it only once the reader has
	// read every byte delivered. A reader waiting is notified and then
	// fails with an error other than io.EOF, and with that error again on
	// every later poll.
	HangUp() error
}

// MakeReader returns a fresh reader under test and its source. stop
// releases both (it may be called after End or HangUp) and must unblock a
// Deliver in progress. The kit calls MakeReader once per subtest, from
// that subtest.
//
// A reader of whole messages, such as a WebSocket connection's message
// reads, is run through an adapter that reads the payloads of successive
// messages as one stream: its PollRead answers from the message in hand,
// keeps what p could not hold for the next call, and polls for the next
// message once that one is used up (so a message read that is
// all-or-nothing shows through as NotReady until a whole message is
// there). Its Source sends each Deliver as one binary message whose
// payload is p, End as a close frame with status 1000, and HangUp drops
// the connection without a close frame.
type MakeReader func() (r asyncio.AsyncReader, src Source, stop func(), err error)

// TestReader runs the readers' conformance suite, rule K of the contract,
// against readers made by mk. Every subtest is named after the rule it
// checks. The bytes delivered are a pattern in which each byte depends on
// its position in the stream, so a byte dropped, repeated or reordered
// shows.
func TestReader(t *testing.T, mk MakeReader) {
	for _, r := range readRules {
		t.Run(r.name, func(t *testing.T) {
			rd, src, stop, err := mk()
			if err != nil {
				t.Fatalf("MakeReader: %v", err)
			}
			t.Cleanup(stop)
			r.fn(t, &readHarness{r: rd, src: src})
		})
	}
}

type readRule struct {
	name string
	fn   func(t *testing.T, h *readHarness)
}

// readHarness holds a reader under test, its source, and the positions in
// the pattern stream of what was read and what was handed to deliveries.
type readHarness struct {
	r    asyncio.AsyncReader
	src  Source
	got  int64 // pattern bytes read
	sent int64 // pattern bytes handed to deliveries, delivered or not yet
}

// send delivers the next total pattern bytes in pieces of the given sizes,
// in turn, and then calls then if it is not nil, all on a goroutine of its
// own. The channel gives the first error, or nil once it is done.
func (h *readHarness) send(total int64, sizes []int, then func() error) <-chan error {
	off, end := h.sent, h.sent+total
	h.sent = end
	done := make(chan error, 1)
	go func() {
		for i := 0; off < end; i++ {
			n := int(min(int64(sizes[i%len(sizes)]), end-off))
			if err := h.src.Deliver(pattern(off, n)); err != nil {
				done <- fmt.Errorf("source: Deliver of %d bytes at offset %d: %w", n, off, err)
				return
			}
			off += int64(n)
		}
		if then != nil {
			done <- then()
			return
		}
		done <- nil
	}()
	return done
}

// joined waits for what send started.
func joined(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitLimit):
		t.Fatalf("the source's deliveries did not complete within %v while the reader read", waitLimit)
	}
}

// pollRead polls one read into p and checks what holds for every answer:
// would-block is not an error, an error reads nothing, Ready(n) is within
// bounds and n is 0 only for an empty p, and the bytes read are the next
// ones of the stream.
func (h *readHarness) pollRead(t *testing.T, task *asyncio.Task, p []byte) (asyncio.Async[int], error) {
	t.Helper()
	r, err := h.r.PollRead(task, p)
	if errors.Is(err, asyncio.ErrWouldBlock) || errors.Is(err, syscall.EAGAIN) {
		t.Fatalf("PollRead returned %v: would-block is NotReady, never an error", err)
	}
	if err != nil {
		if r.Ready && r.Value != 0 {
			t.Fatalf("PollRead = Ready(%d) with error %v: an error reads nothing, or those bytes are lost", r.Value, err)
		}
		return r, err
	}
	if !r.Ready {
		return r, nil
	}
	n := r.Value
	switch {
	case len(p) == 0 && n != 0:
		t.Fatalf("PollRead of an empty p = Ready(%d); want Ready(0)", n)
	case len(p) > 0 && n == 0:
		t.Fatalf("PollRead of %d bytes = Ready(0): a caller would loop forever; answer NotReady, io.EOF or an error", len(p))
	case n < 0 || n > len(p):
		t.Fatalf("PollRead of %d bytes = Ready(%d): out of [1, %d]", len(p), n, len(p))
	case h.got+int64(n) > h.sent:
		t.Fatalf("PollRead = Ready(%d) after %d bytes read: only %d were delivered", n, h.got, h.sent)
	}
	want := pattern(h.got, n)
	for i := range n {
		if p[i] != want[i] {
			t.Fatalf("byte %d of the stream (p[%d] of Ready(%d)) is not the one delivered: a byte dropped, repeated or reordered", h.got+int64(i), i, n)
		}
	}
	h.got += int64(n)
	return r, nil
}

// readTo reads until n bytes of the stream were read, with buffers of the
// given sizes in turn (never past n), waiting for a notification of p
// between NotReady answers.
func (h *readHarness) readTo(t *testing.T, p *probe, n int64, sizes []int) {
	t.Helper()
	buf := make([]byte, max(1, slices.Max(sizes)))
	for i := 0; h.got < n; i++ {
		size := int(min(int64(sizes[i%len(sizes)]), n-h.got))
		r, err := h.pollRead(t, p.task, buf[:size])
		if err != nil {
			t.Fatalf("PollRead after %d of %d bytes delivered: %v", h.got, n, err)
		}
		if !r.Ready {
			p.wait(t, "bytes were delivered that the reader has not read")
		}
	}
}

// readErr polls until the reader answers an error, waiting for
// notifications of p between NotReady answers, and returns the error. A
// byte read past what was delivered fails the rule.
func (h *readHarness) readErr(t *testing.T, p *probe, why string) error {
	t.Helper()
	buf := make([]byte, 4096)
	return p.until(t, why, func(task *asyncio.Task) (bool, error) {
		_, err := h.pollRead(t, task, buf)
		return false, err
	})
}

// notReady polls once into a buffer of n bytes and fails unless the answer
// is NotReady: nothing was delivered that was not read.
func (h *readHarness) notReady(t *testing.T, task *asyncio.Task, n int) {
	t.Helper()
	r, err := h.pollRead(t, task, make([]byte, n))
	if err != nil || r.Ready {
		t.Fatalf("PollRead with every delivered byte read = %+v, %v; want NotReady", r, err)
	}
}

// sticky checks that the reader answers err again, with a task and
// without.
func (h *readHarness) sticky(t *testing.T, task *asyncio.Task, err error) {
	t.Helper()
	for i, tk := range []*asyncio.Task{task, nil, task} {
		r, again := h.pollRead(t, tk, make([]byte, 10))
		if r.Ready || !errors.Is(again, err) {
			t.Fatalf("PollRead #%d after %v = %+v, %v; want the same error (errors are sticky)", i+2, err, r, again)
		}
	}
}
