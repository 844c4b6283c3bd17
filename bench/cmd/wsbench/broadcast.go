package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pollws/pollws/bench/internal/load"
)

// broadcastConfig is the broadcast scenario: one publisher, subs
// subscribers of which stalled never read, messages of size bytes, and at
// most window messages published ahead of the slowest reading subscriber.
type broadcastConfig struct {
	subs, stalled, size, window int
	warmup, duration            time.Duration
}

// broadcastResult is what one broadcast run measured.
type broadcastResult struct {
	DeliveriesPerSec float64 `json:"deliveries_per_sec"`
	RSS              int64   `json:"server_rss_bytes"`
}

// runBroadcast publishes through s's hub and counts what the reading
// subscribers receive.
func runBroadcast(ctx context.Context, s *server, cfg broadcastConfig) (broadcastResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var conns []*load.Conn
	defer func() { closeAll(conns) }()
	dialSub := func() (*load.Conn, error) {
		c, err := load.Dial(ctx, load.WebSocket, s.addr, &load.DialOptions{Path: "/sub"})
		if err == nil {
			conns = append(conns, c)
		}
		return c, err
	}
	readers := cfg.subs - cfg.stalled
	counts := make([]atomic.Int64, readers)
	var wg sync.WaitGroup
	errc := make(chan error, readers+1)
	for i := range readers {
		c, err := dialSub()
		if err != nil {
			return broadcastResult{}, fmt.Errorf("%s: subscriber: %w", s.impl, err)
		}
		wg.Go(func() {
			for {
				m, err := c.ReadMessage()
				if err != nil {
					if ctx.Err() == nil {
						errc <- fmt.Errorf("subscriber %d: %w", i, err)
					}
					return
				}
				if len(m) != cfg.size {
					errc <- fmt.Errorf("subscriber %d: message of %d bytes, want %d", i, len(m), cfg.size)
					return
				}
				counts[i].Add(1)
			}
		})
	}
	for range cfg.stalled {
		if _, err := dialSub(); err != nil {
			return broadcastResult{}, fmt.Errorf("%s: stalled subscriber: %w", s.impl, err)
		}
	}
	pub, err := load.Dial(ctx, load.WebSocket, s.addr, &load.DialOptions{Path: "/pub"})
	if err != nil {
		return broadcastResult{}, fmt.Errorf("%s: publisher: %w", s.impl, err)
	}
	conns = append(conns, pub)
	// Subscribers register with the hub when their upgrade completes; a
	// first message that every reader receives proves they all have.
	minCount := func() int64 {
		m := int64(-1)
		for i := range counts {
			if c := counts[i].Load(); m < 0 || c < m {
				m = c
			}
		}
		return m
	}
	frames, err := load.NewFrames(load.WebSocket, cfg.size, 8)
	if err != nil {
		return broadcastResult{}, err
	}
	var sent int64
	// send writes k messages, at most 8, in one write.
	send := func(k int) error {
		_, err := pub.Write(frames.Stamp(k, load.Now()))
		sent += int64(k)
		return err
	}
	publish := func(deadline time.Time) error {
		for time.Now().Before(deadline) {
			for sent-minCount() >= int64(cfg.window) {
				select {
				case err := <-errc:
					return err
				case <-ctx.Done():
					return ctx.Err()
				default:
				}
				if time.Now().After(deadline) {
					return nil
				}
				time.Sleep(50 * time.Microsecond) // the counters live in other goroutines; poll them
			}
			if err := send(int(min(8, int64(cfg.window)-(sent-minCount())))); err != nil {
				return err
			}
		}
		return nil
	}
	total := func() (n int64) {
		for i := range counts {
			n += counts[i].Load()
		}
		return n
	}
	if err := waitRegistered(send, minCount, errc); err != nil {
		return broadcastResult{}, fmt.Errorf("%s: %w", s.impl, err)
	}
	if err := publish(time.Now().Add(cfg.warmup)); err != nil {
		return broadcastResult{}, fmt.Errorf("%s: %w", s.impl, err)
	}
	start, n0 := time.Now(), total()
	if err := publish(start.Add(cfg.duration)); err != nil {
		return broadcastResult{}, fmt.Errorf("%s: %w", s.impl, err)
	}
	elapsed, n1 := time.Since(start), total()
	rss, _ := s.rss()
	cancel()
	closeAll(conns)
	wg.Wait()
	return broadcastResult{DeliveriesPerSec: float64(n1-n0) / elapsed.Seconds(), RSS: rss}, nil
}

// waitRegistered publishes probe messages until every reading subscriber
// has received one, so no subscriber is still registering when the run
// starts.
func waitRegistered(send func(k int) error, minCount func() int64, errc chan error) error {
	deadline := time.Now().Add(30 * time.Second)
	for minCount() == 0 {
		if time.Now().After(deadline) {
			return fmt.Errorf("subscribers did not all receive a message within 30 s")
		}
		select {
		case err := <-errc:
			return err
		default:
		}
		if err := send(1); err != nil {
			return err
		}
		time.Sleep(20 * time.Millisecond) // let the hub deliver before probing again
	}
	return nil
}
