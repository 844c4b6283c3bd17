package broadcast

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// Publishing costs the same whatever the number of subscribers: one copy
// into the channel.
func BenchmarkPublish(b *testing.B) {
	h := New(nil)
	defer h.Close()
	for range 100 {
		h.ch.NewWeakReader() // subscribers that never read
	}
	p := make([]byte, 1<<10)
	b.ReportAllocs()
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		if _, err := h.Publish(ws.OpBinary, p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBroadcast publishes 1 KiB messages to 100 subscribers over
// loopback, at most 256 messages ahead of the slowest, and reports
// deliveries per second.
func BenchmarkBroadcast(b *testing.B) {
	const subs, window = 100, 256
	s := newHubServer(b, nil, 0, 0)
	var total atomic.Int64
	progress := make(chan struct{}, 1)
	var wg sync.WaitGroup
	n := b.N
	for range subs {
		c, _ := s.dial(b, 0)
		wg.Go(func() {
			c.SetReadDeadline(time.Now().Add(time.Minute))
			for i := 1; i <= n; i++ {
				if _, _, err := c.ReadMessage(); err != nil {
					b.Error(err)
					return
				}
				total.Add(1)
				if i%64 == 0 || i == n {
					select {
					case progress <- struct{}{}:
					default:
					}
				}
			}
		})
	}
	p := make([]byte, 1<<10)
	b.ReportAllocs()
	b.SetBytes(int64(len(p)) * subs)
	b.ResetTimer()
	start := time.Now()
	for i := 1; i <= n; i++ {
		for int64(i-window)*subs > total.Load() {
			<-progress
		}
		if _, err := s.hub.Publish(ws.OpBinary, p); err != nil {
			b.Fatal(err)
		}
	}
	wg.Wait()
	b.ReportMetric(float64(n*subs)/time.Since(start).Seconds(), "deliveries/s")
}
