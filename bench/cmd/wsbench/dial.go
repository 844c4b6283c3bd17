package main

import (
	"context"
	"fmt"
	"net"
	"sync"

	"github.com/pollws/pollws/bench/internal/load"
)

// dialers is how many connections are dialled at once.
const dialers = 32

// dialSpec is how a scenario connects to its server.
type dialSpec struct {
	path string
	// perIP is how many connections dial from one source address before
	// the next (127.0.0.1, 127.0.0.2, …); 0 leaves the source to the
	// kernel.
	perIP int
	// readBuffer is the client's read buffer per connection; 0 for
	// load's default.
	readBuffer int
	// deflate offers permessage-deflate, which the server must agree to.
	deflate bool
	// then runs on each connection once it is up (an exchange, say).
	then func(*load.Conn) error
}

// dialMany opens n connections to s, dialers at a time, and runs sp.then
// on each. It stops at the first error and returns it with the
// connections that are up, in no particular order.
func dialMany(ctx context.Context, s *server, n int, sp dialSpec) ([]*load.Conn, error) {
	conns, err := dialN(ctx, n, func(ctx context.Context, i int) (*load.Conn, error) { return dialOne(ctx, s, i, sp) })
	if err != nil {
		err = fmt.Errorf("%s: %w", s.impl, err)
	}
	return conns, err
}

// dialN runs dial for 0 to n-1, dialers at a time. It stops at the first
// error and returns it with what the calls before returned, in no
// particular order.
func dialN[C any](ctx context.Context, n int, dial func(ctx context.Context, i int) (C, error)) ([]C, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	var conns []C
	var first error
	idx := make(chan int)
	var wg sync.WaitGroup
	for range min(dialers, n) {
		wg.Go(func() {
			for i := range idx {
				c, err := dial(ctx, i)
				mu.Lock()
				if err != nil && first == nil {
					first = fmt.Errorf("connection %d: %w", i, err)
					cancel()
				}
				if err == nil {
					conns = append(conns, c)
				}
				mu.Unlock()
			}
		})
	}
feed:
	for i := range n {
		select {
		case idx <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(idx)
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		first = ctx.Err()
	}
	return conns, first
}

func dialOne(ctx context.Context, s *server, i int, sp dialSpec) (*load.Conn, error) {
	o := &load.DialOptions{Path: sp.path, TLS: s.tls, ReadBuffer: sp.readBuffer, Deflate: sp.deflate}
	if sp.perIP > 0 {
		o.LocalIP = net.IPv4(127, 0, 0, byte(1+i/sp.perIP))
	}
	c, err := load.Dial(ctx, s.proto(), s.addr, o)
	if err != nil {
		return nil, err
	}
	if sp.then != nil {
		if err := sp.then(c); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

func closeAll(conns []*load.Conn) {
	for _, c := range conns {
		c.Close()
	}
}

func received(conns []*load.Conn) (n int64) {
	for _, c := range conns {
		n += c.Received()
	}
	return n
}
