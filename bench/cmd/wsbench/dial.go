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
	// then runs on each connection once it is up (an exchange, say).
	then func(*load.Conn) error
}

// dialMany opens n connections to s, dialers at a time, and runs sp.then
// on each. It stops at the first error and returns it with the
// connections that are up, in no particular order.
func dialMany(ctx context.Context, s *server, n int, sp dialSpec) ([]*load.Conn, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	var conns []*load.Conn
	var first error
	idx := make(chan int)
	var wg sync.WaitGroup
	for range min(dialers, n) {
		wg.Go(func() {
			for i := range idx {
				c, err := dialOne(ctx, s, i, sp)
				mu.Lock()
				if err != nil && first == nil {
					first = fmt.Errorf("%s: connection %d: %w", s.impl, i, err)
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
	o := &load.DialOptions{Path: sp.path, TLS: s.tls, ReadBuffer: sp.readBuffer}
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
