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
	// settle, when not zero, has the run measure the servers' memory (see
	// broadcastResult), settle after every subscriber received a first
	// message.
	settle time.Duration
}

// broadcastResult is what one broadcast run measured.
type broadcastResult struct {
	DeliveriesPerSec float64 `json:"deliveries_per_sec"`
	RSS              int64   `json:"server_rss_bytes"`
	// When cfg.settle asked for them: Topic is the growth of each
	// server's resident memory, on average, from no subscriber to its
	// first (the topic opened, its ring and its subscription on a broker
	// made), and PerSub the growth, added up over the servers, from there
	// to all subscribers, per subscriber; both measured after the servers
	// returned their free memory to the system.
	Topic, PerSub float64
}

// runBroadcast publishes through the hub of insts[0] and counts what the
// reading subscribers receive; the subscribers are spread over insts in
// turn, whose hubs share the topic (over a broker) when there are several.
func runBroadcast(ctx context.Context, insts []*server, cfg broadcastConfig) (broadcastResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s := insts[0]
	fail := func(err error) (broadcastResult, error) { return broadcastResult{}, fmt.Errorf("%s: %w", s.impl, err) }
	var conns []*load.Conn
	defer func() { closeAll(conns) }()
	dialSub := func(i int) (*load.Conn, error) {
		c, err := load.Dial(ctx, load.WebSocket, insts[i%len(insts)].addr, &load.DialOptions{Path: "/sub"})
		if err == nil {
			conns = append(conns, c)
		}
		return c, err
	}
	pub, err := load.Dial(ctx, load.WebSocket, s.addr, &load.DialOptions{Path: "/pub"})
	if err != nil {
		return fail(fmt.Errorf("publisher: %w", err))
	}
	conns = append(conns, pub)
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

	readers := cfg.subs - cfg.stalled
	counts := make([]atomic.Int64, readers)
	var wg sync.WaitGroup
	errc := make(chan error, readers+1)
	dialed := 0 // readers dialled
	// dialReaders dials readers until n are, each read by a goroutine
	// that counts its messages.
	dialReaders := func(n int) error {
		for ; dialed < n; dialed++ {
			i := dialed
			c, err := dialSub(i)
			if err != nil {
				return fmt.Errorf("subscriber: %w", err)
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
		return nil
	}
	// minCount is the fewest messages a reader dialled has received.
	minCount := func() int64 {
		m := int64(-1)
		for i := range counts[:dialed] {
			if c := counts[i].Load(); m < 0 || c < m {
				m = c
			}
		}
		return m
	}
	// join dials the readers until n are and the stalled subscribers,
	// and publishes until every reader has received a message.
	join := func(n, stalled int) error {
		if err := dialReaders(n); err != nil {
			return err
		}
		for i := range stalled {
			if _, err := dialSub(readers + i); err != nil {
				return fmt.Errorf("stalled subscriber: %w", err)
			}
		}
		return waitRegistered(send, minCount, errc)
	}

	var res broadcastResult
	if cfg.settle > 0 {
		before, err := freeAll(insts)
		if err != nil {
			return broadcastResult{}, err
		}
		// A first subscriber on each server opens the topic there: what
		// that costs is the server's, not each subscriber's.
		first := min(len(insts), readers)
		if err := join(first, 0); err != nil {
			return fail(err)
		}
		// The topic's ring takes memory page by page as messages fill
		// it: filled once, through the first subscribers, it is the
		// topic's cost, as it is in a server that runs for a while.
		if err := fill(send, minCount, errc, hubCapacity/cfg.size+1); err != nil {
			return fail(err)
		}
		// Those were all delivered: the count starts again, with the
		// readers that join next.
		sent = 0
		for i := range counts[:dialed] {
			counts[i].Store(0)
		}
		base, err := freeAll(insts)
		if err != nil {
			return broadcastResult{}, err
		}
		if err := join(readers, cfg.stalled); err != nil {
			return fail(err)
		}
		time.Sleep(cfg.settle) // the servers' handshakes finish and garbage is collected; nothing to wait on across processes
		after, err := freeAll(insts)
		if err != nil {
			return broadcastResult{}, err
		}
		res.Topic = float64(base-before) / float64(len(insts))
		res.PerSub = float64(after-base) / float64(cfg.subs-first)
	} else if err := join(readers, cfg.stalled); err != nil {
		return fail(err)
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
	if err := publish(time.Now().Add(cfg.warmup)); err != nil {
		return fail(err)
	}
	start, n0 := time.Now(), total()
	if err := publish(start.Add(cfg.duration)); err != nil {
		return fail(err)
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

// hubCapacity is the bytes of messages a topic of wsserver's hub holds
// (wsserver's hubCapacity).
const hubCapacity = 8 << 20

// fill publishes n messages, at most window ahead of the slowest reader,
// and waits until every reader received them.
func fill(send func(k int) error, minCount func() int64, errc chan error, n int) error {
	const window = 256
	start := minCount()
	deadline := time.Now().Add(time.Minute)
	for sent := 0; sent < n || minCount()-start < int64(n); {
		if time.Now().After(deadline) {
			return fmt.Errorf("the first subscribers did not receive %d messages within a minute", n)
		}
		select {
		case err := <-errc:
			return err
		default:
		}
		if k := min(8, n-sent); k > 0 && int64(sent)-(minCount()-start) < window {
			if err := send(k); err != nil {
				return err
			}
			sent += k
			continue
		}
		time.Sleep(time.Millisecond) // the readers catch up; they count in goroutines of their own
	}
	return nil
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
