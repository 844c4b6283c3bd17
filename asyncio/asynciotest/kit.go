// Package asynciotest holds the conformance kits for [asyncio.AsyncWriter]
// and [asyncio.AsyncReader] implementations, twins of
// golang.org/x/net/nettest's TestConn. Give [TestWriter] a constructor for
// a writer over a [Peer] the kit can drive, or [TestReader] one for a
// reader fed by a [Source], and it runs every rule of the contract that can
// be checked from outside as a named subtest, under the rule's letter and
// number (A1_..., K1_...), so that a failure names the rule it breaks.
package asynciotest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pollws/pollws/asyncio"
)

// Peer is the far end of a writer under test, seen as the byte stream the
// writer delivers. For a WebSocket writer that is the concatenation of the
// payloads of the messages it sends.
type Peer interface {
	// Read reads delivered bytes in order, blocking until some arrive. It
	// returns io.EOF once the writer's end (FIN, close_notify, close
	// frame) has arrived and every byte before it was read, and io.EOF
	// again on every later call.
	io.Reader
	// Close makes the peer go away, like a client that disconnects without
	// reading what was sent: the writer must then fail, and notify a task
	// waiting on it.
	Close() error
}

// MakeWriter returns a fresh writer under test and its peer. stop releases
// both (it may be called after Peer.Close) and must unblock a Read in
// progress. The kit calls MakeWriter once per subtest, from that subtest.
type MakeWriter func() (w asyncio.AsyncWriter, peer Peer, stop func(), err error)

// Timeout bounds every wait in the kit: a writer or reader that has not
// made the progress a rule requires by then fails the rule.
const Timeout = 30 * time.Second

// waitLimit is the bound the kit uses: Timeout, shortened by the kit's own
// tests where a rule is meant to fail by waiting in vain.
var waitLimit = Timeout

// fillLimit bounds how much a writer may take from a peer that does not
// read before it answers NotReady: past it the writer is not bounded.
const fillLimit = 256 << 20

// TestWriter runs the writers' conformance suite against writers made by
// mk. Every subtest is named after the rule it checks (A: tasks, B:
// PollWrite, C: PollFlush, D: Shutdown, E: WriteBuf, S: sticky errors).
// Several rules have goroutines wait on one writer at once, each with a
// task of its own: every one must be notified.
func TestWriter(t *testing.T, mk MakeWriter) {
	for _, r := range rules {
		t.Run(r.name, func(t *testing.T) {
			w, peer, stop, err := mk()
			if err != nil {
				t.Fatalf("MakeWriter: %v", err)
			}
			t.Cleanup(stop)
			r.fn(t, &harness{w: w, peer: peer})
		})
	}
}

type rule struct {
	name string
	fn   func(t *testing.T, h *harness)
}

// harness holds a writer under test, its peer, and the position of the
// pattern stream the writer has accepted so far.
type harness struct {
	w    asyncio.AsyncWriter
	peer Peer
	sent int64 // pattern bytes accepted by the writer
}

// pattern returns the n stream bytes starting at offset off. Every byte
// depends on its position, so a dropped, repeated or reordered byte shows.
func pattern(off int64, n int) []byte {
	p := make([]byte, n)
	for i := range p {
		x := uint64(off+int64(i)) * 0x9E3779B97F4A7C15
		p[i] = byte(x>>56) ^ byte(x>>29)
	}
	return p
}

// poison returns n bytes that differ from pattern(off, n) in every place.
func poison(off int64, n int) []byte {
	p := pattern(off, n)
	for i := range p {
		p[i] = ^p[i]
	}
	return p
}

// pollWrite polls one write of the next n pattern bytes and checks what
// holds for every answer: would-block is not an error, Ready(n) is within
// bounds, and Ready(0) only answers an empty write.
func (h *harness) pollWrite(t *testing.T, task *asyncio.Task, n int) (asyncio.Async[int], error) {
	t.Helper()
	r, err := h.w.PollWrite(task, pattern(h.sent, n))
	if errors.Is(err, asyncio.ErrWouldBlock) {
		t.Fatal("PollWrite returned ErrWouldBlock: would-block is NotReady, never an error")
	}
	if err != nil {
		return r, err
	}
	if r.Ready {
		if r.Value < 0 || r.Value > n {
			t.Fatalf("PollWrite of %d bytes = Ready(%d): out of [0, %d]", n, r.Value, n)
		}
		if r.Value == 0 && n > 0 {
			t.Fatalf("PollWrite of %d bytes = Ready(0): a caller would loop forever (tokio #497); answer NotReady or an error", n)
		}
		h.sent += int64(r.Value)
	}
	return r, err
}

// fill writes pattern bytes until the writer answers NotReady, which it
// must do within fillLimit bytes since the peer is not reading.
func (h *harness) fill(t *testing.T, task *asyncio.Task) {
	t.Helper()
	const chunk = 64 << 10
	for start := h.sent; h.sent-start < fillLimit; {
		r, err := h.pollWrite(t, task, chunk)
		if err != nil {
			t.Fatalf("PollWrite while filling, after %d bytes: %v", h.sent-start, err)
		}
		if !r.Ready {
			return
		}
	}
	t.Fatalf("writer took %d bytes from a peer that does not read without answering NotReady: it is not bounded", fillLimit)
}

// writeAll writes n pattern bytes in writes of random-ish sizes, parking on
// task between notifications.
func (h *harness) writeAll(t *testing.T, n int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	sizes := []int{1, 700, 4096, 13, 65536, 100000, 0, 3}
	for end, i := h.sent+n, 0; h.sent < end; i++ {
		size := int(min(int64(sizes[i%len(sizes)]), end-h.sent))
		p := pattern(h.sent, size)
		if err := asyncio.WriteAll(ctx, h.w, p); err != nil {
			t.Fatalf("WriteAll of %d bytes at offset %d: %v", size, h.sent, err)
		}
		h.sent += int64(size)
	}
}

// reader reads the peer in the background and checks every byte against
// the pattern.
type reader struct {
	mu   sync.Mutex
	got  int64
	err  error // io.EOF after the writer's end
	bad  string
	more chan struct{} // signalled after each read
	done chan struct{} // closed when Read returned an error
}

// startReader starts reading the peer with reads of at most size bytes.
func (h *harness) startReader(size int) *reader { return h.read(size, true) }

// startCounter starts reading the peer like startReader, but only counts
// the bytes: for rules where several goroutines write at once, so that the
// stream is no longer the pattern.
func (h *harness) startCounter(size int) *reader { return h.read(size, false) }

func (h *harness) read(size int, check bool) *reader {
	rd := &reader{more: make(chan struct{}, 1), done: make(chan struct{})}
	go func() {
		defer close(rd.done)
		buf := make([]byte, size)
		for {
			n, err := h.peer.Read(buf)
			rd.mu.Lock()
			if n > 0 && check && rd.bad == "" {
				want := pattern(rd.got, n)
				for i := range n {
					if buf[i] != want[i] {
						rd.bad = fmt.Sprintf("byte %d of the stream is not the one written (a byte taken that was not reported, or one lost)", rd.got+int64(i))
						break
					}
				}
			}
			rd.got += int64(n)
			if err != nil {
				rd.err = err
			}
			rd.mu.Unlock()
			select {
			case rd.more <- struct{}{}:
			default:
			}
			if err != nil {
				return
			}
		}
	}()
	return rd
}

// waitFor waits until the reader has received n bytes.
func (rd *reader) waitFor(t *testing.T, n int64) {
	t.Helper()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for {
		rd.mu.Lock()
		got, err, bad := rd.got, rd.err, rd.bad
		rd.mu.Unlock()
		if bad != "" {
			t.Fatal(bad)
		}
		if got > n {
			t.Fatalf("peer received %d bytes, more than the %d accepted", got, n)
		}
		if got == n {
			return
		}
		if err != nil {
			t.Fatalf("peer read %d of %d accepted bytes, then: %v", got, n, err)
		}
		select {
		case <-rd.more:
		case <-deadline.C:
			t.Fatalf("peer received %d of %d accepted bytes within %v", got, n, waitLimit)
		}
	}
}

// waitEOF waits until the reader has seen the writer's end after exactly n
// bytes.
func (rd *reader) waitEOF(t *testing.T, n int64) {
	t.Helper()
	select {
	case <-rd.done:
	case <-time.After(waitLimit):
		t.Fatalf("peer saw no end of stream within %v", waitLimit)
	}
	if rd.bad != "" {
		t.Fatal(rd.bad)
	}
	if rd.got != n || !errors.Is(rd.err, io.EOF) {
		t.Fatalf("peer read %d bytes then %v; want the %d accepted bytes then io.EOF", rd.got, rd.err, n)
	}
}

// probe is a Task that counts its notifications.
type probe struct {
	task  *asyncio.Task
	n     atomic.Int64
	woken chan struct{}
}

func newProbe() *probe {
	p := &probe{woken: make(chan struct{}, 1)}
	p.task = asyncio.NewTask(func() {
		p.n.Add(1)
		select {
		case p.woken <- struct{}{}:
		default:
		}
	})
	return p
}

// wait waits for a notification since the last wait.
func (p *probe) wait(t *testing.T, why string) {
	t.Helper()
	select {
	case <-p.woken:
	case <-time.After(waitLimit):
		t.Fatalf("task not notified within %v: %s", waitLimit, why)
	}
}

// until polls until poll answers Ready or an error, waiting for a
// notification of p between polls; it returns the error.
func (p *probe) until(t *testing.T, why string, poll func(*asyncio.Task) (bool, error)) error {
	t.Helper()
	for {
		ready, err := poll(p.task)
		if err != nil || ready {
			return err
		}
		p.wait(t, why)
	}
}
