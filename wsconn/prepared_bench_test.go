//go:build unix

package wsconn

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/wsconn/internal/wstest"
)

// BenchmarkBroadcastCompressed sends one JSON-like message of 1 KiB to
// 1,000 connections that agreed on compression without context takeover,
// and flushes them, after every message or every 16: "prepared" writes one PreparedMessage to all of them
// and compresses it once; "each" writes it with PollWriteMessage, which
// compresses it once per connection. Both put the same bytes on the
// wire, which the peers read and drop in the same process. cpu-µs/op is
// the process's CPU time (user and system) per message sent to all,
// the figure to compare on a machine whose cores are shared.
func BenchmarkBroadcastCompressed(b *testing.B) {
	const conns = 1000
	r := rand.New(rand.NewPCG(61, 62))
	data := zJSON(r, 1024)
	o := zOn(CompressionOptions{})
	srvs := make([]*Conn, conns)
	var readers sync.WaitGroup
	defer readers.Wait() // after the connections closed
	for i := range srvs {
		s, c, err := wstest.NewTCP(false)
		if err != nil {
			b.Fatal(err)
		}
		srv, cli, err := zPairOver(s, c, &UpgradeOptions{Options: o}, &DialOptions{Options: o})
		if err != nil {
			b.Fatal(err)
		}
		srvs[i] = srv
		readers.Go(func() { io.Copy(io.Discard, c) })
		defer cli.Close()
		defer srv.Close()
	}

	writers := []struct {
		name  string
		write func(c *Conn, m *PreparedMessage) (asyncio.Async[int], error)
	}{
		{"prepared", func(c *Conn, m *PreparedMessage) (asyncio.Async[int], error) { return c.PollWritePrepared(nil, m) }},
		{"each", func(c *Conn, m *PreparedMessage) (asyncio.Async[int], error) {
			return c.PollWriteMessage(nil, m.Type(), m.Data())
		}},
	}
	for _, every := range []int{1, 16} {
		for _, w := range writers {
			b.Run(fmt.Sprintf("flush=%d/%s", every, w.name), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(data) * conns)) // payload delivered
				m := NewPreparedMessage(Text, data)
				sent := zCountsOf(srvs[0]).sent
				start := cpuTime()
				i := 0
				for b.Loop() {
					m.Reset(Text, data) // a new message: its forms are made again
					i++
					for _, c := range srvs {
						res, err := w.write(c, m)
						if err == nil && !res.Ready {
							_, err = asyncio.BlockOn(context.Background(), func(t *asyncio.Task) (asyncio.Async[int], error) { return w.write(c, m) })
						}
						if err == nil && i%every == 0 {
							_, err = c.PollFlush(nil)
						}
						if err != nil {
							b.Fatal(err)
						}
					}
				}
				b.ReportMetric(float64((cpuTime()-start).Microseconds())/float64(b.N), "cpu-µs/op")
				b.ReportMetric(float64(zCountsOf(srvs[0]).sent-sent)/float64(b.N), "compressed/op/conn")
			})
		}
	}
}

// cpuTime returns the CPU time the process used so far, in user and
// system mode.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
