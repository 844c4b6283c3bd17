package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/pollws/pollws/bench/internal/load"
)

// echoConfig is a closed-loop echo: conns connections, each keeping window
// messages of size bytes in flight.
type echoConfig struct {
	conns, size, window int
	warmup, duration    time.Duration
}

// runEcho drives the echo on s and measures messages a second and CPU per
// message.
func runEcho(ctx context.Context, s *server, cfg echoConfig) (rate, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	conns, err := dialMany(ctx, s, cfg.conns, dialSpec{path: "/ws", readBuffer: echoReadBuffer(cfg.size, cfg.window)})
	defer closeAll(conns)
	if err != nil {
		return rate{}, err
	}
	errc := make(chan error, len(conns))
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for i, c := range conns {
		wg.Go(func() {
			if err := c.Echo(ctx, &load.EchoOptions{Size: cfg.size, Window: cfg.window}); err != nil {
				errc <- fmt.Errorf("%s: connection %d: %w", s.impl, i, err)
			}
		})
	}
	return measure(ctx, s, conns, cfg.warmup, cfg.duration, errc, nil)
}

// echoReadBuffer is a read buffer that holds a window of echoes twice
// over, so that a read is never cut short by the buffer: small enough for
// thousands of connections, large enough for one read per batch.
func echoReadBuffer(size, window int) int {
	return max(4<<10, 2*window*(size+14))
}
