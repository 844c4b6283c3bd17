package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
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
	var conns []*clientConn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	dialSub := func() (*clientConn, error) {
		c, err := dial(ctx, protoWS, s.addr, "/sub")
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
				m, err := c.readMsg()
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
	pub, err := dial(ctx, protoWS, s.addr, "/pub")
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
	msg := make([]byte, cfg.size)
	var sent int64
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
			if err := pub.writeMsg(msg); err != nil {
				return err
			}
			sent++
			if sent%8 == 0 || sent-minCount() >= int64(cfg.window) {
				if err := pub.bw.Flush(); err != nil {
					return err
				}
			}
		}
		return pub.bw.Flush()
	}
	total := func() (n int64) {
		for i := range counts {
			n += counts[i].Load()
		}
		return n
	}
	if err := waitRegistered(pub, msg, &sent, minCount, errc); err != nil {
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
	for _, c := range conns {
		c.Close()
	}
	wg.Wait()
	return broadcastResult{DeliveriesPerSec: float64(n1-n0) / elapsed.Seconds(), RSS: rss}, nil
}

// waitRegistered publishes probe messages until every reading subscriber
// has received one, so no subscriber is still registering when the run
// starts.
func waitRegistered(pub *clientConn, msg []byte, sent *int64, minCount func() int64, errc chan error) error {
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
		if err := pub.writeMsg(msg); err != nil {
			return err
		}
		if err := pub.bw.Flush(); err != nil {
			return err
		}
		*sent++
		time.Sleep(20 * time.Millisecond) // let the hub deliver before probing again
	}
	return nil
}
