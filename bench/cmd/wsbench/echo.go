package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// echoConfig is the echo scenario: conns connections, each keeping window
// messages of size bytes in flight.
type echoConfig struct {
	conns, size, window int
	warmup, duration    time.Duration
}

// echoResult is what one echo run measured.
type echoResult struct {
	MsgsPerSec float64 `json:"msgs_per_sec"`
	P50        float64 `json:"p50_us"`
	P99        float64 `json:"p99_us"`
}

// runEcho drives the echo on s and measures messages per second and the
// round-trip latency of a sample of messages.
func runEcho(ctx context.Context, s *server, cfg echoConfig) (echoResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p := protoOf(s.impl)
	var conns []*clientConn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range cfg.conns {
		c, err := dial(ctx, p, s.addr, "/ws")
		if err != nil {
			return echoResult{}, fmt.Errorf("%s: dial: %w", s.impl, err)
		}
		conns = append(conns, c)
	}
	base := time.Now()
	var measuring atomic.Bool
	counts := make([]atomic.Int64, len(conns))
	samples := make([][]float64, len(conns))
	var wg sync.WaitGroup
	errc := make(chan error, 2*len(conns))
	for i, c := range conns {
		tokens := make(chan struct{}, cfg.window)
		for range cfg.window {
			tokens <- struct{}{}
		}
		wg.Go(func() { // writer: as many messages as the window allows, one flush per batch
			msg := make([]byte, max(cfg.size, 8))[:cfg.size]
			for {
				select {
				case <-tokens:
				case <-ctx.Done():
					return
				}
				n := 1
			more:
				for n < cfg.window {
					select {
					case <-tokens:
						n++
					default:
						break more
					}
				}
				for range n {
					if cfg.size >= 8 {
						binary.LittleEndian.PutUint64(msg, uint64(time.Since(base)))
					}
					if err := c.writeMsg(msg); err != nil {
						errc <- err
						return
					}
				}
				if err := c.bw.Flush(); err != nil {
					if ctx.Err() == nil {
						errc <- err
					}
					return
				}
			}
		})
		wg.Go(func() { // reader
			for k := 0; ; k++ {
				m, err := c.readMsg()
				if err != nil {
					if ctx.Err() == nil {
						errc <- err
					}
					return
				}
				if len(m) != cfg.size {
					errc <- fmt.Errorf("%s: echo of %d bytes, want %d", s.impl, len(m), cfg.size)
					return
				}
				counts[i].Add(1)
				if k%8 == 0 && cfg.size >= 8 && measuring.Load() {
					sent := time.Duration(binary.LittleEndian.Uint64(m))
					samples[i] = append(samples[i], float64(time.Since(base)-sent)/1e3)
				}
				tokens <- struct{}{}
			}
		})
	}
	total := func() (n int64) {
		for i := range counts {
			n += counts[i].Load()
		}
		return n
	}
	var err error
	select {
	case <-time.After(cfg.warmup):
	case err = <-errc:
	}
	start, n0 := time.Now(), total()
	measuring.Store(true)
	if err == nil {
		select {
		case <-time.After(cfg.duration):
		case err = <-errc:
		}
	}
	measuring.Store(false)
	elapsed, n1 := time.Since(start), total()
	cancel()
	for _, c := range conns {
		c.Close()
	}
	wg.Wait()
	if err != nil {
		return echoResult{}, fmt.Errorf("%s: %w", s.impl, err)
	}
	all := slices.Concat(samples...)
	slices.Sort(all)
	return echoResult{
		MsgsPerSec: float64(n1-n0) / elapsed.Seconds(),
		P50:        quantile(all, 0.50),
		P99:        quantile(all, 0.99),
	}, nil
}

func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(q*float64(len(sorted)-1))]
}
