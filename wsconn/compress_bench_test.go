package wsconn

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
)

// zEchoLoop echoes every message of c until a read fails, writing
// without a task while the buffer has room, so that the steady path
// allocates nothing of its own.
func zEchoLoop(c *Conn) {
	ctx := context.Background()
	for {
		m, err := c.ReadMessage(ctx)
		if err != nil {
			return
		}
		if r, err := c.PollWriteMessage(nil, m.Type, m.Data); err != nil {
			return
		} else if !r.Ready && zWrite(c, m.Type, m.Data) != nil {
			return
		}
	}
}

// zRoundTrip sends msg on c and reads the echo.
func zRoundTrip(tb testing.TB, c *Conn, msg []byte) {
	if r, err := c.PollWriteMessage(nil, Text, msg); err != nil {
		tb.Fatal(err)
	} else if !r.Ready {
		if err := zWrite(c, Text, msg); err != nil {
			tb.Fatal(err)
		}
	}
	m, err := c.ReadMessage(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	if len(m.Data) != len(msg) {
		tb.Fatalf("echo of %d bytes has %d", len(msg), len(m.Data))
	}
}

// zEchoBench runs round trips of JSON-like 1 KiB messages between a
// client and an echo server of this package, both under o (nil: no
// compression).
func zEchoBench(b *testing.B, o *CompressionOptions) {
	opts := Options{Compression: o}
	srv, cli := zPair(b, &UpgradeOptions{Options: opts}, &DialOptions{Options: opts})
	var wg sync.WaitGroup
	wg.Go(func() { zEchoLoop(srv) })
	defer wg.Wait()
	defer cli.Close()

	r := rand.New(rand.NewPCG(9, 10))
	msgs := make([][]byte, 64)
	for i := range msgs {
		msgs[i] = zJSON(r, 1024)
	}
	for _, m := range msgs[:8] {
		zRoundTrip(b, cli, m) // fill the pools
	}
	written := cli.Stats().Written
	b.ReportAllocs()
	b.SetBytes(1024)
	n := 0
	for b.Loop() {
		zRoundTrip(b, cli, msgs[n%len(msgs)])
		n++
	}
	b.ReportMetric(float64(cli.Stats().Written-written)/float64(n), "wire-B/msg")
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkConnEchoCompressed: round trips of JSON-like 1 KiB messages
// through a Conn pair on loopback TCP, uncompressed, compressed without
// context takeover (the default) and with it. wire-B/msg is what the
// client wrote per message, frame header and mask included.
func BenchmarkConnEchoCompressed(b *testing.B) {
	b.Run("plain", func(b *testing.B) { zEchoBench(b, nil) })
	b.Run("deflate", func(b *testing.B) { zEchoBench(b, &CompressionOptions{}) })
	b.Run("deflate-takeover", func(b *testing.B) { zEchoBench(b, &CompressionOptions{ContextTakeover: true}) })
}
