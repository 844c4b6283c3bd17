package load

import (
	"context"
	"errors"
	"sync"
)

// errNoReactor says the connections cannot be served by a reactor: a
// goroutine each serves them instead.
var errNoReactor = errors.New("load: no reactor for these connections")

// EchoAll runs the closed loop of [Conn.Echo] on every connection until
// ctx is done, Messages have come back on each, or one fails, and returns
// the first error. Over plain TCP on Linux, a reactor serves them: one
// goroutine per CPU with an epoll set of its own, which reads each
// connection once it is readable and writes its new messages at once, so
// that no goroutine wakes per connection and the client costs less per
// message than a server that has one; over TLS, each connection gets a
// goroutine running Echo. Round trips are not recorded (Latency must be
// nil). Afterwards the connections are for closing only.
func EchoAll(ctx context.Context, conns []*Conn, o *EchoOptions) error {
	opt := o.withDefaults()
	if opt.Latency != nil {
		return errors.New("load: EchoAll records no round trips; Echo does")
	}
	if opt.Corpus == nil {
		if _, err := NewFrames(WebSocket, opt.Size, 1); err != nil {
			return err
		}
	}
	if err := reactorEcho(ctx, conns, opt); err != errNoReactor {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for _, c := range conns {
		wg.Go(func() {
			if err := c.Echo(ctx, &opt); err != nil {
				once.Do(func() { first = err })
				cancel()
			}
		})
	}
	wg.Wait()
	return first
}
