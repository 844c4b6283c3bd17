package asyncio_test

import (
	"context"
	"errors"
	"io"
	"testing"

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
