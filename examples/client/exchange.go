package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/wsconn"
)

// errNoEcho is the error of an exchange whose echo did not come in time.
var errNoEcho = errors.New("no echo in time")

// inFlight is a message sent and not yet echoed.
type inFlight struct {
	seq  int
	p    []byte // what was sent, when it cannot be made again from seq
	sent time.Time
}

// exchange sends messages over one connection and receives their
// echoes: the caller's goroutine sends, at most window messages ahead of
// the echoes, and a goroutine of its own receives. Its counters are the
// receiver's until wait returns.
type exchange struct {
	c       *wsconn.Conn
	op      wsconn.MessageType
	check   bool
	timeout time.Duration                       // for each echo
	expect  func(m inFlight, buf []byte) []byte // what m's echo must be
	echo    func(p []byte) error                // called with each echo, if set

	inflight chan inFlight  // sent, oldest first; closed after the last
	failed   chan struct{}  // closed when the receiver fails
	wg       sync.WaitGroup // the receiver

	sent       int
	received   int
	mismatches int
	latencies  []time.Duration
	err        error // the receiver's
}

// newExchange starts the receiver of an exchange over c.
func newExchange(ctx context.Context, c *wsconn.Conn, cfg config) *exchange {
	x := &exchange{
		c:        c,
		op:       wsconn.Binary,
		check:    cfg.check,
		timeout:  cfg.timeout,
		inflight: make(chan inFlight, cfg.window-1), // and one the receiver holds
		failed:   make(chan struct{}),
	}
	if cfg.textMessages() {
		x.op = wsconn.Text
	}
	// The receiver collects the echoes of what was sent even after an
	// interrupt: each within the timeout.
	x.wg.Go(func() { x.receive(context.WithoutCancel(ctx)) })
	return x
}

// send sends p as message seq, keeping p for the check when keep is set,
// after waiting for room in the window. It flushes before it waits, so
// that the echoes it waits for can come.
func (x *exchange) send(ctx context.Context, seq int, p []byte, keep bool) error {
	m := inFlight{seq: seq, sent: time.Now()}
	if keep {
		m.p = p
	}
	select {
	case x.inflight <- m:
	default:
		if err := asyncio.Flush(ctx, x.c); err != nil {
			return err
		}
		m.sent = time.Now()
		if err := x.admit(ctx, m); err != nil {
			return err
		}
	}
	// m is in flight: p must go out, even if ctx ends now, or its echo
	// would be waited for in vain.
	r, err := x.c.PollWriteMessage(nil, x.op, p)
	if err == nil && !r.Ready {
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), x.timeout)
		_, err = asyncio.BlockOn(wctx, func(t *asyncio.Task) (asyncio.Async[int], error) {
			return x.c.PollWriteMessage(t, x.op, p)
		})
		cancel()
	}
	if err != nil {
		return err
	}
	x.sent++
	return nil
}

// admit puts m in flight, waiting for room in the window: for the
// receiver to take an echo.
func (x *exchange) admit(ctx context.Context, m inFlight) error {
	select {
	case x.inflight <- m:
		return nil
	case <-x.failed:
		return errors.New("the receiver failed")
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// wait ends the exchange: it flushes what was sent, waits for the
// echoes, and returns the receiver's error. It does so even when ctx has
// ended (the sender was interrupted), within the exchange's timeout.
func (x *exchange) wait(ctx context.Context) error {
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), x.timeout)
	ferr := asyncio.Flush(fctx, x.c)
	cancel()
	close(x.inflight)
	if ferr != nil {
		x.c.Close() // the receiver may wait for an echo that cannot come
	}
	x.wg.Wait()
	return errors.Join(ferr, x.err)
}

// receive reads an echo for every message sent until the sender is done.
func (x *exchange) receive(ctx context.Context) {
	var want []byte
	for m := range x.inflight {
		rctx, cancel := context.WithTimeoutCause(ctx, x.timeout, errNoEcho)
		msg, err := x.c.ReadMessage(rctx)
		op, p := msg.Type, msg.Data
		cancel()
		if err != nil {
			x.err = fmt.Errorf("waiting for echo %d: %w", m.seq+1, err)
			close(x.failed)
			for range x.inflight { // let the sender finish
			}
			return
		}
		x.latencies = append(x.latencies, time.Since(m.sent))
		x.received++
		if x.check {
			want = x.expect(m, want[:0])
			if op != x.op || !bytes.Equal(p, want) {
				x.mismatches++
			}
		}
		if x.echo != nil {
			if err := x.echo(p); err != nil {
				x.err = err
				close(x.failed)
				for range x.inflight {
				}
				return
			}
		}
	}
}
