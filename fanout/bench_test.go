package fanout

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pollws/pollws/wsconn"
)

// Publishing costs the same whatever the number of subscribers: one copy
// into the topic's ring.
func BenchmarkPublish(b *testing.B) {
	h := New(nil)
	defer h.Close()
	s, c := wsconnPair(b)
	defer c.Close()
	sub, err := h.Subscribe("t", s)
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Close()
	h.mu.Lock()
	t := h.topics["t"]
	h.mu.Unlock()
	for range 100 {
		t.ch.NewWeakReader() // subscribers that never read
	}
	p := make([]byte, 1<<10)
	b.ReportAllocs()
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		if err := h.Publish("t", wsconn.Binary, p); err != nil {
			b.Fatal(err)
		}
	}
}

// Receiving from the bus costs a check of the envelope and one copy into
// the topic's ring.
func BenchmarkReceive(b *testing.B) {
	h := New(&Options{Bus: newMemBus()})
	defer h.Close()
	h.mu.Lock()
	t := h.addTopicLocked("t")
	h.mu.Unlock()
	t.mu.Lock()
	t.open(1<<20, 1)
	t.mu.Unlock()
	e := envelope{hub: h.id + 1, stream: 1, payload: make([]byte, 1<<10), typ: wsconn.Binary}
	var msg []byte
	b.ReportAllocs()
	b.SetBytes(int64(len(e.payload)))
	for b.Loop() {
		e.seq++
		msg = appendEnvelope(msg[:0], &e)
		h.receive(t, 1, msg)
	}
	if st := h.Stats(); st.BusReceived != uint64(b.N) {
		b.Fatalf("received %d of %d", st.BusReceived, b.N)
	}
}

// BenchmarkBroadcast publishes 1 KiB messages to 100 subscribers over
// loopback, at most 256 messages ahead of the slowest, and reports
// deliveries per second.
func BenchmarkBroadcast(b *testing.B) {
	const subs, window = 100, 256
	s := newHubServer(b, nil, nil, 0, 0)
	var total atomic.Int64
	progress := make(chan struct{}, 1)
	var wg sync.WaitGroup
	n := b.N
	for range subs {
		c, _ := s.dial(b, "t", 0)
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
		if err := s.hub.Publish("t", wsconn.Binary, p); err != nil {
			b.Fatal(err)
		}
	}
	wg.Wait()
	b.ReportMetric(float64(n*subs)/time.Since(start).Seconds(), "deliveries/s")
}

// Sending to the bus costs one encoding of the envelope into a pooled
// buffer, and the bus's Publish.
func BenchmarkPublishToBus(b *testing.B) {
	bus := newMemBus() // no subscription: it takes and drops each message
	h := New(&Options{Bus: bus})
	defer h.Close()
	p := make([]byte, 1<<10)
	b.ReportAllocs()
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		if err := h.Publish("t", wsconn.Binary, p); err != nil {
			b.Fatal(err)
		}
	}
}
