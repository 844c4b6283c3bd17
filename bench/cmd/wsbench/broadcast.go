package main

import (
	"bytes"
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
	// settle, when not zero, has the run measure the servers' memory per
	// subscriber: settle after every subscriber received a first message,
	// and again once the servers freed what they could.
	settle time.Duration
}

// broadcastResult is what one broadcast run measured.
type broadcastResult struct {
	DeliveriesPerSec float64 `json:"deliveries_per_sec"`
	RSS              int64   `json:"server_rss_bytes"`
	// Settled and Freed are the growth of the servers' resident memory
	// per subscriber, when cfg.settle asked for it.
	Settled, Freed float64
}

// runBroadcast publishes through the hub of insts[0] and counts what the
// reading subscribers receive; the subscribers are spread over insts in
// turn, whose hubs share the topic (over a broker) when there are several.
func runBroadcast(ctx context.Context, insts []*server, cfg broadcastConfig) (broadcastResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s := insts[0]
	var before int64
	if cfg.settle > 0 {
		var err error
		if before, err = freeAll(insts); err != nil {
			return broadcastResult{}, err
		}
	}
	var conns []*load.Conn
	defer func() { closeAll(conns) }()
	dialSub := func(i int) (*load.Conn, error) {
		c, err := load.Dial(ctx, load.WebSocket, insts[i%len(insts)].addr, &load.DialOptions{Path: "/sub"})
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
		c, err := dialSub(i)
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
					if bytes.HasPrefix(m, []byte(`{"type":"missed"`)) {
						errc <- fmt.Errorf("subscriber %d was told of messages lost: %s", i, m)
					} else {
						errc <- fmt.Errorf("subscriber %d: message of %d bytes, want %d", i, len(m), cfg.size)
					}
					return
				}
				counts[i].Add(1)
			}
		})
	}
	for i := range cfg.stalled {
		if _, err := dialSub(readers + i); err != nil {
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
	var res broadcastResult
	if cfg.settle > 0 {
		time.Sleep(cfg.settle) // the servers' garbage is collected; nothing to wait on across processes
		settled, err := rssAll(insts)
		if err != nil {
			return broadcastResult{}, err
		}
		freed, err := freeAll(insts)
		if err != nil {
			return broadcastResult{}, err
		}
		res.Settled = float64(settled-before) / float64(cfg.subs)
		res.Freed = float64(freed-before) / float64(cfg.subs)
	}
	if err := publish(time.Now().Add(cfg.warmup)); err != nil {
		return broadcastResult{}, fmt.Errorf("%s: %w", s.impl, err)
	}
	start, n0 := time.Now(), total()
	if err := publish(start.Add(cfg.duration)); err != nil {
		return broadcastResult{}, fmt.Errorf("%s: %w", s.impl, err)
	}
	elapsed, n1 := time.Since(start), total()
	rss, _ := rssAll(insts)
	cancel()
	closeAll(conns)
	wg.Wait()
	res.DeliveriesPerSec, res.RSS = float64(n1-n0)/elapsed.Seconds(), rss
	return res, nil
}

// rssAll returns the resident memory of the servers, added up.
func rssAll(insts []*server) (int64, error) {
	var sum int64
	for _, s := range insts {
		n, err := s.rss()
		if err != nil {
			return 0, err
		}
		sum += n
	}
	return sum, nil
}

// freeAll has each server return its free memory to the system, and
// returns their resident memory then, added up.
func freeAll(insts []*server) (int64, error) {
	for _, s := range insts {
		if err := s.freeOSMemory(); err != nil {
			return 0, err
		}
	}
	return rssAll(insts)
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
