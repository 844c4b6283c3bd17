package wsconn

import (
	"fmt"
	"time"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/internal/reactor"
	"github.com/pollws/pollws/wsconn/internal/frame"
)

// One timer per connection keeps it alive and bounds its waits: it sends
// a ping when the peer has been quiet for PingInterval, closes the
// connection when it has been silent for IdleTimeout, and ends a closing
// handshake the peer does not answer within CloseTimeout. It is a
// time.AfterFunc, so no goroutine waits for it; reads only note when
// bytes came, and the timer, when it fires, works out what is due and
// sets itself for the next thing.

// startTimer arms the timer for the first check, if the connection has
// anything to check.
func (c *Conn) startTimer() {
	c.mu.Lock()
	c.armLocked() // under c.mu: the timer may fire before AfterFunc returns
	c.mu.Unlock()
}

// nextDue returns how long until the next check, or -1 when nothing is to
// be checked. c.mu is held, or the connection is new.
func (c *Conn) nextDue(at int64) int64 {
	next := int64(-1)
	due := func(when int64) {
		if d := max(when-at, 0); next < 0 || d < next {
			next = d
		}
	}
	if c.state == stateOpen {
		last := c.lastRecv.Load()
		if c.cfg.ping > 0 {
			due(max(last, c.lastPing) + int64(c.cfg.ping))
		}
		if c.cfg.idle > 0 {
			due(last + int64(c.cfg.idle))
		}
	}
	if c.cl != nil && c.cl.by != 0 {
		due(c.cl.by)
	}
	return next
}

// armLocked sets the timer for the next check.
func (c *Conn) armLocked() {
	d := c.nextDue(now())
	if g := c.treg; g != nil {
		if d < 0 {
			g.StopTimer()
		} else {
			g.SetTimer(time.Duration(d))
		}
		return
	}
	if d < 0 {
		c.stopTimerLocked()
		return
	}
	switch b := c.blocking(); {
	case b.timer == nil:
		b.timer = time.AfterFunc(time.Duration(d), c.tick)
	default:
		b.timer.Reset(time.Duration(d))
	}
}

// moveTimer makes the deadline of g, the connection's registration with
// a reactor, its timer from now on: a runtime timer and the function it
// calls (about 140 bytes) become a place in the reactor's heap.
func (c *Conn) moveTimer(g *reactor.Registration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if b := c.blk.Load(); b != nil && b.timer != nil {
		b.timer.Stop() // a tick under way finds treg set
		b.timer = nil
	}
	c.treg = g
	if c.state != stateClosed {
		c.armLocked()
	}
}

// tick runs when the timer fires.
func (c *Conn) tick() {
	var wake asyncio.Wakeups
	closeNow := false
	at := now()
	c.mu.Lock()
	if c.state == stateClosed {
		c.mu.Unlock()
		return
	}
	last := c.lastRecv.Load()
	idle := c.state == stateOpen && c.cfg.idle > 0 && at-last >= int64(c.cfg.idle)
	ping := !idle && c.state == stateOpen && c.cfg.ping > 0 && at-max(last, c.lastPing) >= int64(c.cfg.ping)
	timedOut := c.cl != nil && c.cl.by != 0 && at >= c.cl.by && c.state > stateOpen && c.state < stateClosed &&
		!(c.state >= stateCloseSent && c.peerDone)
	switch {
	case idle:
		c.beginCloseLocked(StatusPolicyViolation, "idle timeout", &wake)
		if c.endErr == nil {
			c.endErr = fmt.Errorf("%w: nothing for %v", ErrIdle, c.cfg.idle)
		}
		c.flags.Or(flagDoomed)
	case ping:
		c.lastPing = at
		if _, err := c.controlLocked(nil, frame.OpPing, nil, &wake); err == nil {
			c.flushTLSLocked()
			c.out.Kick(&wake)
		}
	case timedOut:
		c.timedOut = true
		c.cl.by = 0
		closeNow = c.closedLocked(c.closeTimeoutErr())
		c.takeShutWaitLocked(&wake)
	}
	c.armLocked()
	c.mu.Unlock()
	wake.Notify()
	if closeNow {
		c.closeSocket()
	}
	switch {
	case idle:
		c.wakeReaders()
		_ = c.out.Conn().SetReadDeadline(connPast) // a blocked read returns, and finds the end
		c.endLater(false)
	}
}
