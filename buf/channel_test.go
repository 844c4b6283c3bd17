package buf

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/pollws/pollws/asyncio"
)

// mustWrite sends p and fails the test unless the whole frame went in.
func mustWrite(t *testing.T, w *Writer, p string) {
	t.Helper()
	r, err := w.PollWrite(nil, []byte(p))
	if err != nil || !r.Ready || r.Value != len(p) {
		t.Fatalf("PollWrite(%q) = %+v, %v; want Ready(%d)", p, r, err, len(p))
	}
}

// mustFrame reads a frame and fails the test unless it is want.
func mustFrame(t *testing.T, r *Reader, want string) Frame {
	t.Helper()
	res, err := r.PollFrame(nil)
	if err != nil || !res.Ready || string(res.Value.Data) != want {
		t.Fatalf("PollFrame = %q, %v, %v; want %q", res.Value.Data, res.Ready, err, want)
	}
	return res.Value
}

func mustWait(t *testing.T, r *Reader) {
	t.Helper()
	if res, err := r.PollFrame(nil); err != nil || res.Ready {
		t.Fatalf("PollFrame = %q, %v, %v; want NotReady", res.Value.Data, res.Ready, err)
	}
}

func TestChannelCapRoundsUpToPowerOfTwo(t *testing.T) {
	tests := []struct{ ask, want int }{{1, 1}, {2, 2}, {3, 4}, {1000, 1024}, {1024, 1024}, {1025, 2048}}
	for _, tt := range tests {
		if got := NewChannel(tt.ask, Park).Cap(); got != tt.want {
			t.Errorf("NewChannel(%d): Cap %d, want %d", tt.ask, got, tt.want)
		}
	}
	for _, bad := range []int{0, -1} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewChannel(%d) did not panic", bad)
				}
			}()
			NewChannel(bad, Park)
		}()
	}
}

func TestChannelEveryReaderSeesEveryFrame(t *testing.T) {
	c := NewChannel(64, Park)
	w1, w2 := c.NewWeakWriter(), c.NewWeakWriter()
	readers := []*Reader{c.NewStrongReader(), c.NewWeakReader(), c.NewStrongReader()}
	mustWrite(t, w1, "hello")
	mustWrite(t, w2, "world")
	mustWrite(t, w1, "!")
	for i, r := range readers {
		want := []Frame{{w1.ID(), 0, []byte("hello")}, {w2.ID(), 5, []byte("world")}, {w1.ID(), 10, []byte("!")}}
		for _, fw := range want {
			f := mustFrame(t, r, string(fw.Data))
			if f.Writer != fw.Writer || f.Pos != fw.Pos {
				t.Fatalf("reader %d: frame %q from writer %d at %d, want writer %d at %d", i, f.Data, f.Writer, f.Pos, fw.Writer, fw.Pos)
			}
		}
		mustWait(t, r)
		if r.Pos() != 11 {
			t.Fatalf("reader %d: Pos %d, want 11", i, r.Pos())
		}
	}
	// A reader sees only frames that become readable after it was made.
	late := c.NewStrongReader()
	mustWait(t, late)
	mustWrite(t, w2, "late")
	if f := mustFrame(t, late, "late"); f.Pos != 11 {
		t.Fatalf("late reader: frame at %d, want 11", f.Pos)
	}
}

func TestChannelStrongReaderParksWriters(t *testing.T) {
	c := NewChannel(8, Park)
	w := c.NewWeakWriter()
	r := c.NewStrongReader()
	task := newCounter()
	mustWrite(t, w, "12345")
	if res, err := w.PollWrite(task.task, []byte("6789")); err != nil || res.Ready {
		t.Fatalf("PollWrite past a strong reader = %+v, %v; want NotReady", res, err)
	}
	mustFrame(t, r, "12345")
	if task.count() != 1 {
		t.Fatalf("waiting writer notified %d times after the reader made room, want 1", task.count())
	}
	mustWrite(t, w, "6789")
	mustFrame(t, r, "6789")
}

func TestChannelStrongReaderCloseReleasesWriters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := NewChannel(4, Park)
		w := c.NewWeakWriter()
		r := c.NewStrongReader()
		mustWrite(t, w, "abcd")
		done := make(chan error)
		go func() {
			_, err := w.Write(t.Context(), []byte("efgh"))
			done <- err
		}()
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("Write past a strong reader returned %v, want it to wait", err)
		default:
		}
		r.Close()
		if err := <-done; err != nil {
			t.Fatalf("Write after the strong reader closed: %v", err)
		}
	})
}

func TestChannelDropRefusesWholeFrames(t *testing.T) {
	c := NewChannel(8, Drop)
	w := c.NewWeakWriter()
	r := c.NewStrongReader()
	task := newCounter()
	mustWrite(t, w, "123456")
	for range 2 {
		if res, err := w.PollWrite(task.task, []byte("789")); err != nil || !res.Ready || res.Value != 0 {
			t.Fatalf("PollWrite that does not fit = %+v, %v; want Ready(0)", res, err)
		}
	}
	if s, err := w.PollReserveSlice(task.task, 3); err != nil || !s.Ready || len(s.Value) != 0 {
		t.Fatalf("PollReserveSlice that does not fit = %v, %v; want Ready(empty)", s, err)
	}
	mustWrite(t, w, "78")
	mustFrame(t, r, "123456")
	mustFrame(t, r, "78")
	mustWait(t, r)
	if task.count() != 0 {
		t.Fatalf("dropped writes arranged %d notifications", task.count())
	}
}

func TestChannelWeakReaderIsOvertaken(t *testing.T) {
	for _, bp := range []Backpressure{Park, Drop} {
		t.Run(bp.String(), func(t *testing.T) {
			c := NewChannel(8, bp)
			w := c.NewWeakWriter()
			r := c.NewWeakReader()
			mustWrite(t, w, "abc") // 0-3
			mustFrame(t, r, "abc")
			mustWrite(t, w, "def")  // 3-6
			mustWrite(t, w, "ghi")  // 6-9: evicts abc
			mustWrite(t, w, "jklm") // 9-13: evicts def
			_, err := r.PollFrame(nil)
			var behind *ReaderBehindError
			if !errors.As(err, &behind) || behind.Lost != 3 || behind.Pos != 6 {
				t.Fatalf("PollFrame of an overtaken reader: %v, want lost 3, resuming at 6", err)
			}
			if got := r.Pos(); got != 6 {
				t.Fatalf("Pos after being overtaken = %d, want 6", got)
			}
			if f := mustFrame(t, r, "ghi"); f.Pos != 6 {
				t.Fatalf("frame after resuming at %d, want 6", f.Pos)
			}
			mustFrame(t, r, "jklm")
			mustWait(t, r)
		})
	}
}

func TestChannelWeakReaderOvertakenInsideFrame(t *testing.T) {
	c := NewChannel(8, Park)
	w := c.NewWeakWriter()
	r := c.NewWeakReader()
	mustWrite(t, w, "abcd")
	p := make([]byte, 3)
	if res, err := r.PollRead(nil, p); err != nil || res.Value != 3 || string(p) != "abc" {
		t.Fatalf("PollRead = %+v, %v, %q; want 3 bytes abc", res, err, p)
	}
	mustWrite(t, w, "efgh")
	mustWrite(t, w, "ij") // evicts abcd
	_, err := r.PollRead(nil, p)
	var behind *ReaderBehindError
	if !errors.As(err, &behind) || behind.Lost != 1 || behind.Pos != 4 {
		t.Fatalf("PollRead of an overtaken reader: %v, want lost 1, resuming at 4", err)
	}
	if res, err := r.PollRead(nil, p); err != nil || res.Value != 3 || string(p) != "efg" {
		t.Fatalf("PollRead = %+v, %v, %q; want efg", res, err, p)
	}
	// PollFrame goes on with the rest of the frame PollRead stopped in.
	if f := mustFrame(t, r, "h"); f.Pos != 7 {
		t.Fatalf("rest of frame at %d, want 7", f.Pos)
	}
	mustFrame(t, r, "ij")
}

func TestChannelEvictingGivenUpFrameLosesNothing(t *testing.T) {
	c := NewChannel(8, Park)
	w1, w2, w3 := c.NewWeakWriter(), c.NewWeakWriter(), c.NewWeakWriter()
	r := c.NewWeakReader()
	w1.PollReserveSlice(nil, 4)
	w1.Close()                  // frame 0 is given up
	w2.PollReserveSlice(nil, 8) // frame 1 fills the channel
	if res, err := w3.PollWrite(nil, []byte("x")); err != nil || res.Ready {
		t.Fatalf("PollWrite = %+v, %v; want NotReady", res, err) // after evicting frame 0
	}
	mustWait(t, r)
	if c.lo != 1 || r.seq != 1 {
		t.Fatalf("lo %d, reader at %d; want both 1", c.lo, r.seq)
	}
}

// TestChannelSkippingGivenUpFrameKeepsWakeUps: a strong reader that moves
// past a frame given up, and then finds nothing to read, must still
// notify the writers it took out of the wait set, or a writer waiting on
// it is never told when it closes.
func TestChannelSkippingGivenUpFrameKeepsWakeUps(t *testing.T) {
	c := NewChannel(4, Park)
	r := c.NewStrongReader()
	w1, w2, w3 := c.NewWeakWriter(), c.NewWeakWriter(), c.NewWeakWriter()
	w1.PollReserveSlice(nil, 1)
	w1.Close() // frame 0 is given up
	s, _ := w3.PollReserveSlice(nil, 4)
	task := newCounter()
	if res, err := w2.PollWrite(task.task, []byte("x")); err != nil || res.Ready {
		t.Fatalf("PollWrite = %+v, %v; want NotReady", res, err)
	}
	mustWait(t, r) // moves past frame 0
	copy(s.Value, "abcd")
	w3.Commit()
	r.Close() // with no strong reader left, w2 can evict "abcd"
	if task.count() == 0 {
		t.Fatal("waiting writer not notified when it could go on")
	}
	mustWrite(t, w2, "x")
}

func TestChannelLentFrameSurvivesOvertaking(t *testing.T) {
	c := NewChannel(16, Park)
	w := c.NewWeakWriter()
	slow, fast := c.NewWeakReader(), c.NewWeakReader()
	mustWrite(t, w, "0123456789abcdef")
	lent := mustFrame(t, slow, "0123456789abcdef")
	mustFrame(t, fast, "0123456789abcdef")
	for i := range 100 {
		p := bytes.Repeat([]byte{byte('A' + i%26)}, 16)
		mustWrite(t, w, string(p))
		mustFrame(t, fast, string(p))
	}
	if string(lent.Data) != "0123456789abcdef" {
		t.Fatalf("frame lent to an overtaken reader changed to %q", lent.Data)
	}
	if _, err := slow.PollFrame(nil); !errors.As(err, new(*ReaderBehindError)) {
		t.Fatalf("overtaken reader: %v, want a *ReaderBehindError", err)
	}
}

func TestChannelCloseKeepsLend(t *testing.T) {
	c := NewChannel(16, Park)
	w := c.NewWeakWriter()
	r, other := c.NewWeakReader(), c.NewWeakReader()
	mustWrite(t, w, "lent")
	lent := mustFrame(t, r, "lent")
	var wg sync.WaitGroup
	wg.Go(func() { r.Close() }) // from another goroutine
	for i := range 100 {
		p := bytes.Repeat([]byte{byte('a' + i%26)}, 16)
		mustWrite(t, w, string(p))
		if _, err := other.PollFrame(nil); err != nil && !errors.As(err, new(*ReaderBehindError)) {
			t.Fatal(err)
		}
	}
	if string(lent.Data) != "lent" {
		t.Fatalf("frame lent to a closed reader changed to %q", lent.Data)
	}
	wg.Wait()
	if _, err := r.PollFrame(nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("PollFrame after Close: %v", err)
	}
}

func TestChannelReserveSliceKeepsOrder(t *testing.T) {
	c := NewChannel(64, Park)
	w1, w2 := c.NewWeakWriter(), c.NewWeakWriter()
	r := c.NewStrongReader()
	s, err := w1.PollReserveSlice(nil, 5)
	if err != nil || !s.Ready || len(s.Value) != 5 {
		t.Fatalf("PollReserveSlice(5) = %v, %v", s, err)
	}
	mustWrite(t, w2, "second")
	mustWait(t, r) // the reserved frame holds back the frames after it
	copy(s.Value, "first")
	if err := w1.Commit(); err != nil {
		t.Fatal(err)
	}
	if f := mustFrame(t, r, "first"); f.Writer != w1.ID() || f.Pos != 0 {
		t.Fatalf("first frame from %d at %d", f.Writer, f.Pos)
	}
	if f := mustFrame(t, r, "second"); f.Writer != w2.ID() || f.Pos != 5 {
		t.Fatalf("second frame from %d at %d", f.Writer, f.Pos)
	}
}

func TestChannelCloseGivesUpReservedSlice(t *testing.T) {
	c := NewChannel(16, Park)
	w1, w2 := c.NewWeakWriter(), c.NewWeakWriter()
	r := c.NewStrongReader()
	if _, err := w1.PollReserveSlice(nil, 8); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, w2, "after")
	w1.Close()
	if f := mustFrame(t, r, "after"); f.Pos != 0 {
		t.Fatalf("frame after a given-up slice at %d, want 0", f.Pos)
	}
	if err := w1.Commit(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Commit after Close: %v, want ErrClosed", err)
	}
	// The given-up slice no longer takes room.
	mustWrite(t, w2, "0123456789a")
}

func TestChannelIdleStrongWriterHoldsReadersBack(t *testing.T) {
	c := NewChannel(64, Park)
	gate := c.NewStrongWriter()
	w := c.NewWeakWriter()
	r := c.NewWeakReader()

	mustWrite(t, w, "a")
	mustWait(t, r) // the idle strong writer holds "a" back
	mustWrite(t, gate, "G1")
	mustFrame(t, r, "a")
	mustFrame(t, r, "G1")

	mustWrite(t, w, "b")
	mustWait(t, r)
	gate.Close()
	mustFrame(t, r, "b")

	mustWrite(t, w, "c") // no strong writer left
	mustFrame(t, r, "c")
}

// TestChannelStrongWriterReleaseWakesWriters: frames a strong writer
// releases become readable, so evictable; a writer waiting for room must
// hear of it.
func TestChannelStrongWriterReleaseWakesWriters(t *testing.T) {
	c := NewChannel(8, Park)
	gate, w := c.NewStrongWriter(), c.NewWeakWriter()
	mustWrite(t, w, "12345") // held back by the gate, so not evictable
	task := newCounter()
	if res, err := w.PollReserveSlice(task.task, 4); err != nil || res.Ready {
		t.Fatalf("PollReserveSlice = %v, %v; want NotReady", res, err)
	}
	if _, err := gate.PollReserveSlice(nil, 2); err != nil { // releases "12345"
		t.Fatal(err)
	}
	if task.count() == 0 {
		t.Fatal("waiting writer not notified when frames it may evict became readable")
	}
	if res, err := w.PollReserveSlice(task.task, 4); err != nil || !res.Ready {
		t.Fatalf("PollReserveSlice = %v, %v; want Ready", res, err)
	}
}

func TestChannelTerminate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := NewChannel(4, Park)
		w := c.NewWeakWriter()
		rs, rs2, rw := c.NewStrongReader(), c.NewStrongReader(), c.NewWeakReader()
		mustWrite(t, w, "1234")
		lent := mustFrame(t, rw, "1234")
		mustFrame(t, rs2, "1234")
		ctx := t.Context()
		errs := make(chan error, 3)
		go func() { _, err := w.Write(ctx, []byte("5")); errs <- err }() // held back by rs
		go func() { _, err := rw.NextFrame(ctx); errs <- err }()
		go func() { _, err := rs2.ReadFrame(ctx, nil); errs <- err }()
		synctest.Wait()
		c.Terminate()
		for range 3 {
			if err := <-errs; !errors.Is(err, ErrAborted) {
				t.Fatalf("waiting call after Terminate: %v, want ErrAborted", err)
			}
		}
		if string(lent.Data) != "1234" {
			t.Fatalf("lent frame changed to %q", lent.Data)
		}
		for range 2 { // sticky
			if _, err := w.PollWrite(nil, []byte("x")); !errors.Is(err, ErrAborted) {
				t.Fatalf("PollWrite: %v", err)
			}
			if _, err := rs.PollFrame(nil); !errors.Is(err, ErrAborted) {
				t.Fatalf("PollFrame: %v", err)
			}
			if _, err := c.NewWeakReader().PollRead(nil, make([]byte, 1)); !errors.Is(err, ErrAborted) {
				t.Fatalf("PollRead of a new reader: %v", err)
			}
			if err := c.Drain(); !errors.Is(err, ErrAborted) {
				t.Fatalf("Drain: %v", err)
			}
		}
		c.Terminate()
		w.Close()
		rs.Close()
		rs2.Close()
		rw.Close()
	})
}

func TestChannelTerminateFailsReservedSlice(t *testing.T) {
	c := NewChannel(8, Park)
	w := c.NewStrongWriter()
	if _, err := w.PollReserveSlice(nil, 4); err != nil {
		t.Fatal(err)
	}
	c.Terminate()
	if err := w.Commit(); !errors.Is(err, ErrAborted) {
		t.Fatalf("Commit after Terminate: %v, want ErrAborted", err)
	}
}

func TestChannelDrain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := NewChannel(64, Park)
		gate := c.NewStrongWriter()
		w1, w2 := c.NewWeakWriter(), c.NewWeakWriter()
		r1, r2 := c.NewStrongReader(), c.NewWeakReader()
		ctx := t.Context()

		mustWrite(t, w1, "held") // held back by the idle strong writer
		s, err := w2.ReserveSlice(ctx, 4)
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan string)
		go func() {
			var all []string
			for {
				f, err := r1.NextFrame(ctx)
				if err != nil {
					all = append(all, err.Error())
					break
				}
				all = append(all, string(f.Data))
			}
			got <- strings.Join(all, ",")
		}()
		synctest.Wait()
		if err := c.Drain(); err != nil {
			t.Fatal(err)
		}
		if err := c.Drain(); err != nil {
			t.Fatalf("second Drain: %v", err)
		}
		for _, w := range []*Writer{w1, gate} {
			if _, err := w.PollWrite(nil, []byte("x")); !errors.Is(err, ErrDraining) {
				t.Fatalf("PollWrite while draining: %v, want ErrDraining", err)
			}
		}
		synctest.Wait()
		select {
		case s := <-got:
			t.Fatalf("reader ended (%s) before a reserved slice was committed", s)
		default:
		}
		copy(s, "last")
		if err := w2.Commit(); err != nil {
			t.Fatalf("Commit while draining: %v", err)
		}
		if s, want := <-got, "held,last,EOF"; s != want {
			t.Fatalf("strong reader saw %s, want %s", s, want)
		}
		mustFrame(t, r2, "held")
		mustFrame(t, r2, "last")
		for range 2 {
			if _, err := r2.PollFrame(nil); err != io.EOF {
				t.Fatalf("weak reader at the end of a drained channel: %v, want io.EOF", err)
			}
		}
		// Terminate cuts a drain short.
		c.Terminate()
		if _, err := r2.PollFrame(nil); !errors.Is(err, ErrAborted) {
			t.Fatalf("after Terminate: %v, want ErrAborted", err)
		}
	})
}

func TestChannelErrors(t *testing.T) {
	c := NewChannel(8, Park)
	w := c.NewWeakWriter()
	r := c.NewWeakReader()
	if _, err := w.PollWrite(nil, make([]byte, 9)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("PollWrite of 9 bytes into 8: %v, want ErrTooLarge", err)
	}
	if res, err := w.PollWrite(nil, nil); err != nil || !res.Ready || res.Value != 0 {
		t.Fatalf("PollWrite(nil) = %+v, %v; want Ready(0)", res, err)
	}
	w.Close()
	r.Close()
	for range 2 {
		if _, err := w.PollWrite(nil, []byte("x")); !errors.Is(err, ErrClosed) {
			t.Fatalf("PollWrite after Close: %v, want ErrClosed", err)
		}
		if _, err := r.PollFrame(nil); !errors.Is(err, ErrClosed) {
			t.Fatalf("PollFrame after Close: %v, want ErrClosed", err)
		}
	}
	behind := &ReaderBehindError{Lost: 3, Pos: 10}
	if got, want := behind.Error(), "buf: reader overtaken: 3 bytes lost, resuming at byte 10"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
}

func TestChannelMisusePanics(t *testing.T) {
	tests := []struct {
		name string
		f    func(w *Writer)
	}{
		{"Commit without a slice", func(w *Writer) { w.Commit() }},
		{"reserve 0 bytes", func(w *Writer) { w.PollReserveSlice(nil, 0) }},
		{"write with a slice reserved", func(w *Writer) {
			w.PollReserveSlice(nil, 1)
			w.PollWrite(nil, []byte("x"))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			tt.f(NewChannel(8, Park).NewWeakWriter())
		})
	}
}

func TestChannelTasks(t *testing.T) {
	c := NewChannel(4, Park)
	w := c.NewWeakWriter()
	r := c.NewStrongReader()
	a, b := newCounter(), newCounter()

	// Spurious polls keep one waiter per reader; the latest task wins.
	for range 100 {
		r.PollFrame(a.task)
		r.PollRead(b.task, make([]byte, 1))
	}
	if n := c.readers.len(); n != 1 {
		t.Fatalf("%d readers waiting after 200 polls of one reader", n)
	}
	mustWrite(t, w, "1234")
	if a.count() != 0 || b.count() != 1 {
		t.Fatalf("reader tasks notified %d, %d times; want 0, 1", a.count(), b.count())
	}

	for range 100 {
		w.PollWrite(a.task, []byte("5"))
		w.PollReserveSlice(b.task, 1)
	}
	if n := c.writers.len(); n != 1 {
		t.Fatalf("%d writers waiting after 200 polls of one writer", n)
	}
	mustFrame(t, r, "1234")
	if a.count() != 0 || b.count() != 2 {
		t.Fatalf("writer tasks notified %d, %d times; want 0, 2", a.count(), b.count())
	}

	// A nil task takes the handle out: nothing is notified.
	r.PollFrame(a.task)
	r.PollFrame(nil)
	mustWrite(t, w, "5")
	if a.count() != 0 {
		t.Fatal("task replaced by nil was notified")
	}
}

func TestChannelString(t *testing.T) {
	c := NewChannel(100, Drop)
	w, sw := c.NewWeakWriter(), c.NewStrongWriter()
	r, sr := c.NewWeakReader(), c.NewStrongReader()
	sw.PollReserveSlice(nil, 3)
	mustWrite(t, w, "abc")
	tests := []struct{ got, want string }{
		{fmt.Sprint(c), "buf.Channel(open, Drop, 6/128 bytes, 2 frames)"},
		{fmt.Sprint(w), "buf.Writer(weak, id 1, open)"},
		{fmt.Sprint(sw), "buf.Writer(strong, id 2, 3-byte slice reserved)"},
		{fmt.Sprint(r), "buf.Reader(weak, open, at byte 0)"},
		{fmt.Sprint(sr), "buf.Reader(strong, open, at byte 0)"},
		{fmt.Sprint(Backpressure(7)), "Backpressure(7)"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %s, want %s", tt.got, tt.want)
		}
	}
}

// stressChannel runs writers and readers on c at full speed. Each frame
// says who wrote it and how many frames of that writer went in before it;
// each reader checks that every writer's frames arrive in order, strong
// readers that none is missing, and weak readers that the bytes they read
// plus the bytes they lost add up to how far they moved.
func stressChannel(t *testing.T, c *Channel, writers, strong, weak, attempts int) {
	ctx := t.Context()
	var ws []*Writer
	accepted := make(map[uint64]int) // written before Drain, read after EOF
	for range writers {
		ws = append(ws, c.NewWeakWriter())
	}
	check := func(r *Reader, strong bool) {
		defer r.Close()
		start := r.Pos()
		next := make(map[uint64]int)
		var read, lost uint64
		buf := make([]byte, 0, 64)
		for {
			f, err := r.ReadFrame(ctx, buf)
			var behind *ReaderBehindError
			switch {
			case err == io.EOF:
				if read+lost != r.Pos()-start {
					t.Errorf("read %d + lost %d != %d bytes moved", read, lost, r.Pos()-start)
				}
				for _, w := range ws {
					if strong && next[w.ID()] != accepted[w.ID()] {
						t.Errorf("strong reader: %d frames of writer %d, want %d", next[w.ID()], w.ID(), accepted[w.ID()])
					}
				}
				return
			case errors.As(err, &behind) && !strong:
				lost += behind.Lost
				continue
			case err != nil:
				t.Errorf("reader: %v", err)
				return
			}
			buf = f.Data
			read += uint64(len(f.Data))
			var id uint64
			var n int
			fmt.Sscanf(string(f.Data), "%d:%d:", &id, &n)
			if id != f.Writer || n < next[id] || (strong && n != next[id]) {
				t.Errorf("frame %q from writer %d after %d frames of it", f.Data, f.Writer, next[id])
				return
			}
			next[id] = n + 1
		}
	}
	var rwg sync.WaitGroup
	for range strong {
		r := c.NewStrongReader()
		rwg.Go(func() { check(r, true) })
	}
	for range weak {
		r := c.NewWeakReader()
		rwg.Go(func() { check(r, false) })
	}
	var wwg sync.WaitGroup
	var mu sync.Mutex
	for _, w := range ws {
		wwg.Go(func() {
			defer w.Close()
			n := 0
			defer func() {
				mu.Lock()
				accepted[w.ID()] = n
				mu.Unlock()
			}()
			for i := range attempts {
				p := fmt.Appendf(nil, "%d:%d:%s", w.ID(), n, strings.Repeat("x", i%40))
				if i%3 == 0 {
					s, err := w.ReserveSlice(ctx, len(p))
					if err != nil {
						t.Errorf("ReserveSlice: %v", err)
						return
					}
					if len(s) == 0 {
						continue // dropped
					}
					copy(s, p)
					if err := w.Commit(); err != nil {
						t.Errorf("Commit: %v", err)
						return
					}
					n++
					continue
				}
				k, err := w.Write(ctx, p)
				if err != nil {
					t.Errorf("Write: %v", err)
					return
				}
				if k > 0 {
					n++
				}
			}
		})
	}
	wwg.Wait()
	mu.Lock() // publishes accepted to the readers, which read it after Drain
	if err := c.Drain(); err != nil {
		t.Error(err)
	}
	mu.Unlock()
	rwg.Wait()
}

func TestChannelStressPark(t *testing.T) {
	stressChannel(t, NewChannel(1<<10, Park), 4, 3, 3, 3000)
}

func TestChannelStressDrop(t *testing.T) {
	stressChannel(t, NewChannel(256, Drop), 4, 2, 4, 3000)
}

func TestChannelStressWeakOnly(t *testing.T) {
	stressChannel(t, NewChannel(128, Park), 3, 0, 8, 3000)
}

// TestChannelStressTerminate terminates a busy channel and checks that
// every blocked call returns.
func TestChannelStressTerminate(t *testing.T) {
	c := NewChannel(64, Park)
	ctx := t.Context()
	var wg sync.WaitGroup
	for range 4 {
		w := c.NewWeakWriter()
		wg.Go(func() {
			for {
				if _, err := w.Write(ctx, []byte("0123456789")); err != nil {
					if !errors.Is(err, ErrAborted) {
						t.Errorf("Write: %v", err)
					}
					return
				}
			}
		})
	}
	var started sync.WaitGroup
	for i := range 4 {
		newReader := c.NewWeakReader
		if i%2 == 1 {
			newReader = c.NewStrongReader
		}
		r := newReader()
		started.Add(1)
		wg.Go(func() {
			first := true
			for {
				_, err := r.NextFrame(ctx)
				if first {
					started.Done()
					first = false
				}
				if err != nil && !errors.As(err, new(*ReaderBehindError)) {
					if !errors.Is(err, ErrAborted) {
						t.Errorf("NextFrame: %v", err)
					}
					return
				}
			}
		})
	}
	started.Wait()
	c.Terminate()
	wg.Wait()
}

var _ = asyncio.Ready[int]
var _ = context.Background
