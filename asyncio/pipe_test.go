package asyncio_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/asyncio/asynciotest"
)

func TestPipeConformance(t *testing.T) {
	for _, capacity := range []int{4096, 1 << 20} {
		t.Run(fmtCap(capacity), func(t *testing.T) {
			asynciotest.TestWriter(t, func() (asyncio.AsyncWriter, asynciotest.Peer, func(), error) {
				w, r := asyncio.Pipe(capacity)
				return w, r, func() { r.Close() }, nil
			})
		})
	}
}

// pipeSource drives a Pipe's writer as the source of its reader.
type pipeSource struct{ w *asyncio.PipeWriter }

var errHungUp = errors.New("the writer hung up")

func (s pipeSource) Deliver(p []byte) error { return asyncio.WriteAll(context.Background(), s.w, p) }
func (s pipeSource) End() error             { return asyncio.Shutdown(context.Background(), s.w) }
func (s pipeSource) HangUp() error          { return s.w.CloseWithError(errHungUp) }

func TestPipeReaderConformance(t *testing.T) {
	for _, capacity := range []int{7, 64 << 10} {
		t.Run(fmt.Sprintf("cap%d", capacity), func(t *testing.T) {
			asynciotest.TestReader(t, func() (asyncio.AsyncReader, asynciotest.Source, func(), error) {
				w, r := asyncio.Pipe(capacity)
				return r, pipeSource{w}, func() { r.Close() }, nil
			})
		})
	}
}

func fmtCap(n int) string {
	switch {
	case n >= 1<<20:
		return "cap1MiB"
	case n >= 1<<10:
		return "cap4KiB"
	}
	return "cap1B"
}

func TestPipeFlushWaitsForReader(t *testing.T) {
	w, r := asyncio.Pipe(8)
	defer r.Close()
	if res, err := w.PollWrite(nil, []byte("hello")); err != nil || res.Value != 5 {
		t.Fatalf("PollWrite = %+v, %v", res, err)
	}
	woken := make(chan struct{}, 1)
	task := asyncio.NewTask(func() { woken <- struct{}{} })
	if res, err := w.PollFlush(task); err != nil || res.Ready {
		t.Fatalf("PollFlush with 5 unread bytes = %+v, %v; want NotReady", res, err)
	}
	buf := make([]byte, 3)
	if n, err := r.Read(buf); n != 3 || err != nil {
		t.Fatalf("Read = %d, %v", n, err)
	}
	<-woken
	if res, _ := w.PollFlush(task); res.Ready {
		t.Fatal("PollFlush Ready with 2 unread bytes")
	}
	if n, _ := r.Read(buf); n != 2 {
		t.Fatalf("Read = %d, want 2", n)
	}
	if res, err := w.PollFlush(task); err != nil || !res.Ready {
		t.Fatalf("PollFlush after the reader took every byte = %+v, %v; want Ready", res, err)
	}
}

func TestPipeReaderCloseFailsWriter(t *testing.T) {
	w, r := asyncio.Pipe(1)
	woken := make(chan struct{}, 1)
	task := asyncio.NewTask(func() { woken <- struct{}{} })
	w.PollWrite(task, []byte("ab"))
	if res, _ := w.PollWrite(task, []byte("b")); res.Ready {
		t.Fatal("PollWrite on a full pipe is Ready")
	}
	r.Close()
	<-woken
	for range 2 {
		if _, err := w.PollWrite(task, []byte("b")); !errors.Is(err, io.ErrClosedPipe) {
			t.Fatalf("PollWrite after reader Close: %v; want io.ErrClosedPipe", err)
		}
	}
	if n, err := r.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("Read after Close = %d, %v", n, err)
	}
}

func TestPipeShutdownGivesEOFAfterData(t *testing.T) {
	w, r := asyncio.Pipe(16)
	ctx := context.Background()
	done := make(chan error, 1)
	go func() {
		if err := asyncio.WriteAll(ctx, w, []byte("a message longer than the pipe")); err != nil {
			done <- err
			return
		}
		done <- asyncio.Shutdown(ctx, w)
	}()
	got, err := io.ReadAll(r)
	if err != nil || string(got) != "a message longer than the pipe" {
		t.Fatalf("ReadAll = %q, %v", got, err)
	}
	if err := <-done; err != nil {
		t.Fatalf("writer: %v", err)
	}
}

func TestPipeBadCapacityPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("Pipe(0) did not panic")
		}
	}()
	asyncio.Pipe(0)
}

// waiter is a task that counts its notifications.
type waiter struct {
	task *asyncio.Task
	n    atomic.Int64
}

func newWaiter() *waiter {
	w := new(waiter)
	w.task = asyncio.NewTask(func() { w.n.Add(1) })
	return w
}

func TestPipePollReadWaitsForBytes(t *testing.T) {
	w, r := asyncio.Pipe(8)
	defer r.Close()
	wt := newWaiter()
	buf := make([]byte, 8)
	if res, err := r.PollRead(wt.task, buf); err != nil || res.Ready {
		t.Fatalf("PollRead of an empty pipe = %+v, %v; want NotReady", res, err)
	}
	if res, err := r.PollRead(wt.task, nil); err != nil || !res.Ready || res.Value != 0 {
		t.Fatalf("PollRead(nil) of an empty pipe = %+v, %v; want Ready(0)", res, err)
	}
	if wt.n.Load() != 0 {
		t.Fatal("the reader's task was notified before any byte arrived")
	}
	if _, err := w.Write([]byte("abc")); err != nil {
		t.Fatal(err)
	}
	if got := wt.n.Load(); got != 1 {
		t.Fatalf("reader's task notified %d times by one write, want 1", got)
	}
	if res, err := r.PollRead(wt.task, buf[:2]); err != nil || res.Value != 2 || string(buf[:2]) != "ab" {
		t.Fatalf("PollRead = %+v, %v, %q; want Ready(2) \"ab\"", res, err, buf[:2])
	}
	if res, err := r.PollRead(wt.task, buf); err != nil || res.Value != 1 || buf[0] != 'c' {
		t.Fatalf("PollRead = %+v, %v, %q; want Ready(1) \"c\"", res, err, buf[:1])
	}
}

// TestPipeNotifiesEveryWaiter checks both halves' wait sets: one read wakes
// every task waiting on the writer, one write every task waiting on the
// reader, and a poll without a task unregisters none of them.
func TestPipeNotifiesEveryWaiter(t *testing.T) {
	w, r := asyncio.Pipe(4)
	defer r.Close()
	readers := []*waiter{newWaiter(), newWaiter(), newWaiter()}
	for _, wt := range readers {
		if res, err := r.PollRead(wt.task, make([]byte, 1)); err != nil || res.Ready {
			t.Fatalf("PollRead of an empty pipe = %+v, %v; want NotReady", res, err)
		}
	}
	if res, err := r.PollRead(nil, make([]byte, 1)); err != nil || res.Ready {
		t.Fatalf("PollRead(nil task) of an empty pipe = %+v, %v; want NotReady", res, err)
	}
	if _, err := w.Write([]byte("full")); err != nil {
		t.Fatal(err)
	}
	for i, wt := range readers {
		if got := wt.n.Load(); got != 1 {
			t.Errorf("reader task %d notified %d times by a write, want 1", i, got)
		}
	}

	writers := []*waiter{newWaiter(), newWaiter(), newWaiter()}
	for _, wt := range writers[:2] {
		if res, err := w.PollWrite(wt.task, []byte("x")); err != nil || res.Ready {
			t.Fatalf("PollWrite on a full pipe = %+v, %v; want NotReady", res, err)
		}
	}
	if res, err := w.PollFlush(writers[2].task); err != nil || res.Ready {
		t.Fatalf("PollFlush of unread bytes = %+v, %v; want NotReady", res, err)
	}
	if n, err := w.Write([]byte("x")); n != 0 || !errors.Is(err, asyncio.ErrWouldBlock) {
		t.Fatalf("Write on a full pipe = %d, %v; want 0, ErrWouldBlock", n, err)
	}
	if n, err := r.Read(make([]byte, 1)); n != 1 || err != nil {
		t.Fatalf("Read = %d, %v", n, err)
	}
	for i, wt := range writers {
		if got := wt.n.Load(); got != 1 {
			t.Errorf("writer task %d notified %d times by a read, want 1", i, got)
		}
	}
}

func TestPipeCloseWithError(t *testing.T) {
	hangUp := errors.New("hung up")
	w, r := asyncio.Pipe(8)
	defer r.Close()
	wt := newWaiter()
	buf := make([]byte, 8)
	if res, err := r.PollRead(wt.task, buf); err != nil || res.Ready {
		t.Fatalf("PollRead of an empty pipe = %+v, %v; want NotReady", res, err)
	}
	if _, err := w.Write([]byte("bye")); err != nil {
		t.Fatal(err)
	}
	w.CloseWithError(hangUp)
	w.CloseWithError(nil) // the first end stays
	if got := wt.n.Load(); got < 1 {
		t.Fatal("a waiting reader was not notified")
	}
	if _, err := w.PollWrite(nil, []byte("x")); !errors.Is(err, asyncio.ErrShutdown) {
		t.Fatalf("PollWrite after CloseWithError: %v; want ErrShutdown", err)
	}
	if res, err := r.PollRead(nil, buf); err != nil || res.Value != 3 {
		t.Fatalf("PollRead after CloseWithError = %+v, %v; want the 3 bytes written before it", res, err)
	}
	for range 2 {
		if res, err := r.PollRead(nil, buf); !errors.Is(err, hangUp) || res.Ready {
			t.Fatalf("PollRead after the bytes = %+v, %v; want %v, sticky", res, err, hangUp)
		}
	}
	if res, err := w.PollFlush(nil); err != nil || !res.Ready {
		t.Fatalf("PollFlush once the reader took every byte = %+v, %v; want Ready", res, err)
	}

	w, r = asyncio.Pipe(8)
	w.CloseWithError(nil)
	if n, err := r.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("Read after CloseWithError(nil) = %d, %v; want io.EOF", n, err)
	}
}

func TestPipeReaderCloseWakesBlockedRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, r := asyncio.Pipe(8)
		done := make(chan error)
		go func() {
			_, err := r.Read(make([]byte, 1))
			done <- err
		}()
		synctest.Wait() // the Read is parked
		r.Close()
		if err := <-done; !errors.Is(err, io.ErrClosedPipe) {
			t.Fatalf("Read blocked when the reader closed: %v; want io.ErrClosedPipe", err)
		}
	})
}
