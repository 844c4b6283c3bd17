package asyncio_test

import (
	"context"
	"io"
	"testing"

	"github.com/pollws/pollws/asyncio"
)

// BenchmarkPipePollWriteRead is one 128-byte PollWrite and the read that
// drains it, on one goroutine.
func BenchmarkPipePollWriteRead(b *testing.B) {
	w, r := asyncio.Pipe(64 << 10)
	defer r.Close()
	msg := make([]byte, 128)
	dst := make([]byte, 128)
	task := asyncio.NewTask(func() {})
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if res, err := w.PollWrite(task, msg); err != nil || res.Value != len(msg) {
			b.Fatalf("PollWrite = %+v, %v", res, err)
		}
		if _, err := io.ReadFull(r, dst); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPipeWriteBuf is a vectored write of three chunks and its read.
func BenchmarkPipeWriteBuf(b *testing.B) {
	w, r := asyncio.Pipe(64 << 10)
	defer r.Close()
	hdr, body, tail := make([]byte, 14), make([]byte, 1000), make([]byte, 10)
	dst := make([]byte, 1024)
	var bb asyncio.BytesBuf
	b.SetBytes(1024)
	b.ReportAllocs()
	for b.Loop() {
		bb.Reset(hdr, body, tail)
		if res, err := asyncio.WriteBuf(nil, w, &bb); err != nil || res.Value != 1024 {
			b.Fatalf("WriteBuf = %+v, %v", res, err)
		}
		if _, err := io.ReadFull(r, dst); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTaskNotify is one notification of a coalescing task.
func BenchmarkTaskNotify(b *testing.B) {
	ch := make(chan struct{}, 1)
	task := asyncio.NewTask(func() {
		select {
		case ch <- struct{}{}:
		default:
		}
	})
	b.ReportAllocs()
	for b.Loop() {
		task.Notify()
	}
}

// BenchmarkBlockOnReady is BlockOn of a poll that is ready at once: the
// cost of the blocking form when nothing has to wait.
func BenchmarkBlockOnReady(b *testing.B) {
	ctx := context.Background()
	poll := func(*asyncio.Task) (asyncio.Async[int], error) { return asyncio.Ready(1), nil }
	b.ReportAllocs()
	for b.Loop() {
		if _, err := asyncio.BlockOn(ctx, poll); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBlockOnRoundTrip is a full park and wake-up: the poll answers
// NotReady and hands its task to another goroutine, which notifies it.
// BlockOn's first poll, without a task, answers NotReady too.
func BenchmarkBlockOnRoundTrip(b *testing.B) {
	for _, name := range []string{"Background", "WithCancel"} {
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			if name == "WithCancel" {
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(ctx)
				defer cancel()
			}
			tasks := make(chan *asyncio.Task)
			done := make(chan struct{})
			go func() {
				for t := range tasks {
					t.Notify()
				}
				close(done)
			}()
			parked := false
			poll := func(t *asyncio.Task) (asyncio.Async[int], error) {
				if t == nil {
					return asyncio.NotReady[int](), nil
				}
				if parked = !parked; parked {
					tasks <- t
					return asyncio.NotReady[int](), nil
				}
				return asyncio.Ready(1), nil
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := asyncio.BlockOn(ctx, poll); err != nil {
					b.Fatal(err)
				}
			}
			close(tasks)
			<-done
		})
	}
}

// BenchmarkWriteAllFlushPipe is WriteAll and Flush of 4 KiB through a
// 1 KiB pipe drained by another goroutine.
func BenchmarkWriteAllFlushPipe(b *testing.B) {
	w, r := asyncio.Pipe(1 << 10)
	go io.Copy(io.Discard, r)
	defer r.Close()
	ctx := context.Background()
	msg := make([]byte, 4<<10)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if err := asyncio.WriteAll(ctx, w, msg); err != nil {
			b.Fatal(err)
		}
		if err := asyncio.Flush(ctx, w); err != nil {
			b.Fatal(err)
		}
	}
}
