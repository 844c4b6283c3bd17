package main

import (
	"context"
	"sync"
	"time"

	"github.com/pollws/pollws/bench/internal/load"
)

// runBackpressure opens n connections that send size-byte messages as fast
// as TCP lets them and never read the echoes, for d. It returns the growth
// of the server's resident memory per connection: bounded buffers keep it
// small whatever the clients do.
func runBackpressure(ctx context.Context, s *server, n, size int, d time.Duration) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	before, err := s.rss()
	if err != nil {
		return 0, err
	}
	conns, err := dialMany(ctx, s, n, dialSpec{path: "/ws"})
	defer closeAll(conns)
	if err != nil {
		return 0, err
	}
	var wg sync.WaitGroup
	for _, c := range conns {
		c.SetWriteDeadline(time.Now().Add(d))
		wg.Go(func() {
			f, err := load.NewFrames(c.Proto(), size, 1)
			if err != nil {
				return
			}
			for ctx.Err() == nil {
				if _, err := c.Write(f.Stamp(1, load.Now())); err != nil {
					return // the write deadline ended a write blocked by back-pressure
				}
			}
		})
	}
	<-ctx.Done()
	after, err := s.rss()
	closeAll(conns)
	wg.Wait()
	if err != nil {
		return 0, err
	}
	return float64(after-before) / float64(n), nil
}
