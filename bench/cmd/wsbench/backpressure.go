package main

import (
	"context"
	"fmt"
	"sync"
	"time"
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
	var conns []*clientConn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range n {
		c, err := dial(ctx, protoOf(s.impl), s.addr, "/ws")
		if err != nil {
			return 0, fmt.Errorf("%s: dial: %w", s.impl, err)
		}
		conns = append(conns, c)
	}
	var wg sync.WaitGroup
	for _, c := range conns {
		c.SetWriteDeadline(time.Now().Add(d))
		wg.Go(func() {
			msg := make([]byte, size)
			for ctx.Err() == nil {
				if c.writeMsg(msg) != nil || c.bw.Flush() != nil {
					return // the write deadline ended a write blocked by back-pressure
				}
			}
		})
	}
	<-ctx.Done()
	after, err := s.rss()
	for _, c := range conns {
		c.Close()
	}
	wg.Wait()
	if err != nil {
		return 0, err
	}
	return float64(after-before) / float64(n), nil
}
