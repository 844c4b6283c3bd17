package main

import (
	"context"
	"fmt"
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
// message. The connections are served by load.EchoAll: over plain TCP a
// reactor, so the client costs less per message than the servers.
func runEcho(ctx context.Context, s *server, cfg echoConfig) (rate, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	conns, err := dialMany(ctx, s, cfg.conns, dialSpec{path: "/ws", readBuffer: echoReadBuffer(cfg.size, cfg.window)})
	defer closeAll(conns)
	if err != nil {
		return rate{}, err
	}
	errc := make(chan error, 1)
	done := make(chan struct{})
	defer func() { cancel(); <-done }()
	go func() {
		defer close(done)
		if err := load.EchoAll(ctx, conns, &load.EchoOptions{Size: cfg.size, Window: cfg.window}); err != nil {
			errc <- fmt.Errorf("%s: %w", s.impl, err)
		}
	}()
	return measure(ctx, s, conns, cfg.warmup, cfg.duration, errc, nil, false)
}

// echoReadBuffer is a read buffer that holds a window of echoes twice
// over, so that a read is never cut short by the buffer: small enough for
// thousands of connections, large enough for one read per batch.
func echoReadBuffer(size, window int) int {
	return max(4<<10, 2*window*(size+14))
}
