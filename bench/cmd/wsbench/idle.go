package main

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"time"
)

// runIdle opens n idle connections to s and returns the growth of the
// server's resident memory per connection, in bytes.
func runIdle(ctx context.Context, s *server, n int, settle time.Duration) (float64, error) {
	before, err := s.rss()
	if err != nil {
		return 0, err
	}
	p := protoOf(s.impl)
	conns := make([]*clientConn, n)
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4*runtime.NumCPU())
	for i := range conns {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c, err := dial(ctx, p, s.addr, "/ws")
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = fmt.Errorf("%s: dial %d: %w", s.impl, i, err)
			}
			conns[i] = c
		})
	}
	wg.Wait()
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	if firstErr != nil {
		return 0, firstErr
	}
	time.Sleep(settle) // the server's handshakes finish and its garbage is collected; nothing to wait on across processes
	after, err := s.rss()
	if err != nil {
		return 0, err
	}
	return float64(after-before) / float64(n), nil
}
