package buf

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

// BenchmarkStream measures a chunk through a stream: in "poll" one
// goroutine writes and reads it with polls, in "goroutines" a writer
// goroutine blocks on a full stream and the reader on an empty one.
func BenchmarkStream(b *testing.B) {
	chunk := make([]byte, 1<<10)
	b.Run("poll", func(b *testing.B) {
		w, r := NewStream()
		b.ReportAllocs()
		b.SetBytes(int64(len(chunk)))
		for b.Loop() {
			w.PollWrite(nil, chunk)
			r.PollRead(nil)
		}
	})
	b.Run("goroutines", func(b *testing.B) {
		w, r := NewStream()
		ctx := context.Background()
		var wg sync.WaitGroup
		wg.Go(func() {
			for w.Write(ctx, chunk) == nil {
			}
		})
		b.ReportAllocs()
		b.SetBytes(int64(len(chunk)))
		for b.Loop() {
			if _, err := r.Read(ctx); err != nil {
				b.Fatal(err)
			}
		}
		r.Close()
		wg.Wait()
	})
}

// BenchmarkChannel sends 1 KiB frames from one writer to 1, 8 and 64
// readers; bytes/s counts bytes delivered, to all readers.
//
//   - "poll": weak readers polled by the writing goroutine, each frame
//     read by every reader before the next: the channel's own cost.
//   - "park": strong readers in their own goroutines; the writer waits for
//     the slowest (Park), and no frame is lost.
//   - "broadcast": weak readers in their own goroutines; the writer never
//     waits and slow readers are overtaken. Bytes/s counts bytes sent, and
//     it reports the share of frames each reader got.
func BenchmarkChannel(b *testing.B) {
	msg := make([]byte, 1<<10)
	for _, n := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("poll/readers=%d", n), func(b *testing.B) {
			c := NewChannel(64<<10, Park)
			w := c.NewWeakWriter()
			readers := make([]*Reader, n)
			for i := range readers {
				readers[i] = c.NewWeakReader()
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(msg) * n))
			for b.Loop() {
				w.PollWrite(nil, msg)
				for _, r := range readers {
					r.PollFrame(nil)
				}
			}
		})
		b.Run(fmt.Sprintf("park/readers=%d", n), func(b *testing.B) {
			benchChannel(b, n, true, msg)
		})
		b.Run(fmt.Sprintf("broadcast/readers=%d", n), func(b *testing.B) {
			benchChannel(b, n, false, msg)
		})
	}
}

func benchChannel(b *testing.B, readers int, strong bool, msg []byte) {
	c := NewChannel(64<<10, Park)
	w := c.NewWeakWriter()
	ctx := context.Background()
	var wg sync.WaitGroup
	var delivered atomic.Int64
	for range readers {
		newReader := c.NewWeakReader
		if strong {
			newReader = c.NewStrongReader
		}
		r := newReader()
		wg.Go(func() {
			var n int64
			for {
				_, err := r.NextFrame(ctx)
				if err != nil && !errors.As(err, new(*ReaderBehindError)) {
					break
				}
				if err == nil {
					n++
				}
			}
			delivered.Add(n)
		})
	}
	b.ReportAllocs()
	if strong {
		b.SetBytes(int64(len(msg) * readers))
	} else {
		b.SetBytes(int64(len(msg))) // bytes sent; not every reader gets them
	}
	for b.Loop() {
		if _, err := w.Write(ctx, msg); err != nil {
			b.Fatal(err)
		}
	}
	c.Drain()
	wg.Wait()
	if !strong {
		b.ReportMetric(float64(delivered.Load())/float64(b.N*readers), "delivered/frame")
	}
}
