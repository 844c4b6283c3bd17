//go:build !race

package wsconn

import (
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
)

// TestCompressEchoAllocs: compression adds no allocation to the steady
// path of an echo, with context takeover or without: a round trip of a
// compressed 1 KiB message allocates no more than one of a plain one.
func TestCompressEchoAllocs(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	msgs := make([][]byte, 16)
	for i := range msgs {
		msgs[i] = zJSON(r, 1024)
	}
	allocs := func(o *CompressionOptions) float64 {
		opts := Options{Compression: o}
		srv, cli := zPair(t, &UpgradeOptions{Options: opts}, &DialOptions{Options: opts})
		var wg sync.WaitGroup
		wg.Go(func() { zEchoLoop(srv) })
		defer wg.Wait()
		defer cli.Close()
		for _, m := range msgs {
			zRoundTrip(t, cli, m)
		}
		i := 0
		return testing.AllocsPerRun(200, func() {
			zRoundTrip(t, cli, msgs[i%len(msgs)])
			i++
		})
	}
	plain := allocs(nil)
	for _, o := range []CompressionOptions{{}, {ContextTakeover: true}} {
		if got := allocs(&o); got > plain {
			t.Errorf("%+v: %v allocations per compressed round trip, %v per plain one", o, got, plain)
		}
	}
	t.Logf("%v allocations per round trip, compressed or not", plain)
}

// TestCompressIdleMemory measures the heap that a pair of connected Conns
// holds, idle after one 1 KiB message each way (each waiting in a read),
// without compression, with it and with context takeover: without takeover compression holds next
// to nothing; with it each side keeps its compressor and the peer's
// window (see CompressionOptions).
func TestCompressIdleMemory(t *testing.T) {
	msg := zJSON(rand.New(rand.NewPCG(1, 1)), 1024)
	// Pools, which connections share, are emptied by two collections.
	gc := func(m *runtime.MemStats) {
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(m)
	}
	// measure returns the heap per pair while the pairs are open, and
	// once they are closed, still held by the application.
	measure := func(o *CompressionOptions, pairs int) (open, closed float64) {
		opts := Options{Compression: o}
		var conns []*Conn
		var wg sync.WaitGroup
		var before, after, done runtime.MemStats
		gc(&before)
		for range pairs {
			srv, cli := zPair(t, &UpgradeOptions{Options: opts}, &DialOptions{Options: opts})
			wg.Go(func() { zEchoLoop(srv) })
			zRoundTrip(t, cli, msg)
			wg.Go(func() { zEchoLoop(cli) }) // waits for bytes, holding no message
			conns = append(conns, srv, cli)
		}
		gc(&after)
		for _, c := range conns {
			c.Close()
		}
		wg.Wait()
		gc(&done)
		runtime.KeepAlive(conns)
		per := func(m *runtime.MemStats) float64 {
			return float64(int64(m.HeapAlloc)-int64(before.HeapAlloc)) / float64(pairs)
		}
		return per(&after), per(&done)
	}
	plain, plainClosed := measure(nil, 200)
	deflate, _ := measure(&CompressionOptions{}, 200)
	takeover, takeoverClosed := measure(&CompressionOptions{ContextTakeover: true}, 8)
	t.Logf("heap per pair of Conns after a message each way: plain %.0f B, deflate %+.0f B, deflate with context takeover %+.0f B; closed and still held: plain %.0f B, takeover %+.0f B",
		plain, deflate-plain, takeover-plain, plainClosed, takeoverClosed-plainClosed)
	if deflate-plain > 2048 {
		t.Errorf("compression without context takeover costs %.0f B per idle pair of connections", deflate-plain)
	}
	if takeover-plain < 1<<20 {
		t.Errorf("context takeover costs %.0f B per pair: it keeps no compressor?", takeover-plain)
	}
	if takeoverClosed-plainClosed > 64<<10 {
		t.Errorf("a closed pair with context takeover still holds %.0f B more than without: its compression state", takeoverClosed-plainClosed)
	}
}
