package asyncio_test

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
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

// BenchmarkExecutorSpawn is Spawn of a task that is Ready at once, to its
// done call.
func BenchmarkExecutorSpawn(b *testing.B) {
	e := asyncio.NewExecutor(nil)
	defer e.Close()
	done := make(chan struct{}, 1)
	poll := func(*asyncio.Task) (asyncio.Async[struct{}], error) { return asyncio.Ready(struct{}{}), nil }
	finish := func(error) { done <- struct{}{} }
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Spawn(poll, finish); err != nil {
			b.Fatal(err)
		}
		<-done
	}
}

// BenchmarkExecutorNotifyRoundTrip is the Notify of an idle task to its
// poll, which answers over a channel: the wake-up latency of a task.
func BenchmarkExecutorNotifyRoundTrip(b *testing.B) {
	e := asyncio.NewExecutor(nil)
	defer e.Close()
	polled := make(chan struct{}, 1)
	task, err := e.Spawn(func(*asyncio.Task) (asyncio.Async[struct{}], error) {
		polled <- struct{}{}
		return asyncio.NotReady[struct{}](), nil
	}, nil)
	if err != nil {
		b.Fatal(err)
	}
	<-polled
	b.ReportAllocs()
	for b.Loop() {
		task.Notify()
		<-polled
	}
}

// BenchmarkExecutorPingPong is the throughput of tasks that wake each
// other: pairs of tasks pass a ball back and forth, each pass one poll and
// one notification of the partner. An iteration serves every pair and
// waits for all of them to finish their passes.
func BenchmarkExecutorPingPong(b *testing.B) {
	const pairs, passes = 64, 100
	for _, workers := range []int{1, runtime.GOMAXPROCS(0)} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			e := asyncio.NewExecutor(&asyncio.ExecutorOptions{Workers: workers})
			defer e.Close()
			type player struct {
				ball    atomic.Bool
				left    *atomic.Int64 // passes left in this serve, shared by the pair
				partner *player
				task    *asyncio.Task
			}
			var wg sync.WaitGroup
			servers := make([]*player, pairs)
			for i := range servers {
				x, y := &player{left: new(atomic.Int64)}, new(player)
				y.left, x.partner, y.partner = x.left, y, x
				for _, p := range []*player{x, y} {
					p.task, _ = e.Spawn(func(*asyncio.Task) (asyncio.Async[struct{}], error) {
						if !p.ball.CompareAndSwap(true, false) {
							return asyncio.NotReady[struct{}](), nil
						}
						if p.left.Add(-1) == 0 {
							wg.Done()
							return asyncio.NotReady[struct{}](), nil
						}
						p.partner.ball.Store(true)
						p.partner.task.Notify()
						return asyncio.NotReady[struct{}](), nil
					}, nil)
				}
				servers[i] = x
			}
			b.ReportAllocs()
			for b.Loop() {
				wg.Add(pairs)
				for _, p := range servers {
					p.left.Store(passes)
					p.ball.Store(true)
					p.task.Notify()
				}
				wg.Wait()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*pairs*passes), "ns/pass")
		})
	}
}
