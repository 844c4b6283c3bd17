package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pollws/pollws/bench/internal/load"
)

// latencyConfig is an open-loop echo: conns connections sending messages
// of size bytes at a common rate, whatever the echoes do.
type latencyConfig struct {
	conns, size      int
	tick             time.Duration
	warmup, duration time.Duration
	// rate is the offered messages a second over all connections; 0
	// chooses it from a calibration (see chooseRate).
	rate float64
	// ref are the servers whose peak sets the rate.
	ref []string
	// load is the fraction of the slowest ref server's peak offered.
	load float64
	// headroom is how far below its own peak a server must find the rate
	// to take part: one that cannot sustain it would only queue.
	headroom float64
}

// latencyResult is what one open-loop run measured.
type latencyResult struct {
	rate
	P50, P99 float64 // µs
}

// runLatency offers s msgsPerSec over cfg.conns connections and measures
// the round trips of the echoes.
func runLatency(ctx context.Context, s *server, cfg latencyConfig, msgsPerSec float64) (latencyResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	conns, err := dialMany(ctx, s, cfg.conns, dialSpec{path: "/ws"})
	defer closeAll(conns)
	if err != nil {
		return latencyResult{}, err
	}
	hists := make([]load.Histogram, len(conns))
	var recording atomic.Bool
	errc := make(chan error, len(conns))
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for i, c := range conns {
		wg.Go(func() {
			err := c.Pace(ctx, &load.PaceOptions{
				Size: cfg.size, Rate: msgsPerSec / float64(len(conns)), Tick: cfg.tick,
				Latency: &hists[i], Recording: &recording,
			})
			if err != nil {
				errc <- fmt.Errorf("%s: connection %d: %w", s.impl, i, err)
			}
		})
	}
	r, err := measure(ctx, s, conns, cfg.warmup, cfg.duration, errc, &recording, false)
	if err != nil {
		return latencyResult{}, err
	}
	cancel()
	wg.Wait()
	var all load.Histogram
	for i := range hists {
		all.Merge(&hists[i])
	}
	return latencyResult{
		rate: r,
		P50:  float64(all.Quantile(0.50)) / 1e3,
		P99:  float64(all.Quantile(0.99)) / 1e3,
	}, nil
}

// chooseRate returns the common rate of the latency runs: cfg.load of the
// lowest peak among the ref servers calibrated (of all of them when none
// is), unless cfg.rate fixes it.
func chooseRate(cfg latencyConfig, peaks map[string]float64) (float64, string) {
	if cfg.rate > 0 {
		return cfg.rate, "fixed by -latrate"
	}
	slowest, by := 0.0, ""
	pick := func(names []string) {
		for _, n := range names {
			if p, ok := peaks[n]; ok && (by == "" || p < slowest) {
				slowest, by = p, n
			}
		}
	}
	pick(cfg.ref)
	if by == "" {
		for n := range peaks {
			pick([]string{n})
		}
	}
	return cfg.load * slowest, fmt.Sprintf("%.0f%% of %s's calibrated peak (%s msgs/s)", 100*cfg.load, by, humanize(slowest))
}
