package shutdown

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"
)

// Report is what a [Group]'s drain did to the connections it found.
// [Group.Drain] and [Group.Wait] return a copy of their own, so a Report
// shares nothing with the group or with other callers.
type Report struct {
	// Clean counts connections whose shutdown completed before the
	// deadline: every accepted byte and the close frame left.
	Clean int

	// Forced counts connections closed hard: their shutdown was still
	// running at the deadline, or it failed.
	Forced int

	// Undelivered is the bytes the forced connections' writers accepted
	// that their peers will not get, as far as they report them (see
	// [UndeliveredError].Bytes, [UndeliveredReporter]).
	Undelivered int64

	// Errors holds an [*UndeliveredError] per forced connection, and the
	// error of any clean connection whose writer failed to close.
	Errors []error
}

// String returns the counts on one line, as "clean=90 forced=10
// undelivered=4096B errors=10".
func (r Report) String() string {
	return fmt.Sprintf("clean=%d forced=%d undelivered=%dB errors=%d", r.Clean, r.Forced, r.Undelivered, len(r.Errors))
}

// Drain shuts the group down. It works by first stopping admission
// ([ErrDraining]), then starting the shutdown of every connection with
// [CodeGoingAway], in which each writer flushes what it
// accepted and then sends its close frame, and then waiting for each
// shutdown to complete (the writer is then closed) and each handler to
// call [Member.Done]. When ctx ends first, Drain closes hard every
// connection still shutting down, ends every member whose handler has not
// called Done, and returns: nothing admitted is left behind. It returns
// the [Report] of the drain; by then [GroupOptions].OnDone has been called
// for every connection.
//
// A connection that is already shutting down because it expired joins
// the drain and its deadline. Drain may be called again, and
// concurrently with a drain begun by [Group.RegisterOnShutdown]: every
// call shares the one drain, which ends at the earliest deadline, and
// returns its report. With a ctx that never ends, Drain waits for every
// connection however long that takes.
func (g *Group) Drain(ctx context.Context) Report {
	g.mu.Lock()
	g.startDrainLocked()
	g.mu.Unlock()
	stop := context.AfterFunc(ctx, func() { g.expireDrain(context.Cause(ctx)) })
	defer stop()
	<-g.drained
	return g.snapshot()
}

// Wait waits for a drain begun elsewhere, typically by the hook that
// [Group.RegisterOnShutdown] installs, to complete, and returns its
// [Report]. If ctx ends first, Wait returns the report so far and ctx's
// cause; the drain goes on. Wait does not start a drain: before one
// starts, it waits for it.
func (g *Group) Wait(ctx context.Context) (Report, error) {
	select {
	case <-g.drained:
		return g.snapshot(), nil
	case <-ctx.Done():
		return g.snapshot(), context.Cause(ctx)
	}
}

// RegisterOnShutdown makes srv.Shutdown drain the group, since
// [http.Server.Shutdown] neither closes nor waits for hijacked
// connections such as WebSockets. The hook starts a drain whose deadline
// is timeout after srv.Shutdown was called (no deadline if timeout is 0
// or less) and returns at once, as [http.Server.RegisterOnShutdown]
// requires; call [Group.Wait] after srv.Shutdown to wait for the drain
// and get its report:
//
//	g.RegisterOnShutdown(srv, 5*time.Second)
//	…
//	err := srv.Shutdown(ctx)     // stops the listeners, drains plain HTTP, starts the WebSocket drain
//	report, err := g.Wait(ctx)   // waits for the WebSocket drain
func (g *Group) RegisterOnShutdown(srv *http.Server, timeout time.Duration) {
	srv.RegisterOnShutdown(func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		g.startDrainLocked()
		if timeout > 0 && !g.drainDone {
			g.hookTimers = append(g.hookTimers, time.AfterFunc(timeout, func() {
				g.expireDrain(context.DeadlineExceeded)
			}))
		}
	})
}

// snapshot returns a copy of the report so far.
func (g *Group) snapshot() Report {
	g.mu.Lock()
	defer g.mu.Unlock()
	r := g.report
	r.Errors = slices.Clone(r.Errors)
	return r
}

// startDrainLocked stops admission and starts the shutdown of every
// member. It does nothing after the first call.
func (g *Group) startDrainLocked() {
	if g.draining {
		return
	}
	g.draining = true
	for _, m := range g.members {
		if m.state == stateEnded {
			continue // its handler's Done is ending it
		}
		m.inDrain = true
		g.beginCloseLocked(m, ErrDraining, CodeGoingAway)
	}
	g.checkDrainedLocked()
}

// expireDrain is the drain's deadline: members still shutting down are
// closed hard, and members whose handler has not called Done are ended.
func (g *Group) expireDrain(cause error) {
	g.mu.Lock()
	if g.deadline != nil || g.drainDone {
		g.mu.Unlock()
		return
	}
	g.deadline = cause
	type end struct {
		m   *Member
		err error
	}
	var ended []end
	for _, m := range g.members {
		switch m.state {
		case stateClosing:
			g.forceLocked(m, cause)
		case stateClosed:
			err := m.endErr()
			g.endLocked(m)
			ended = append(ended, end{m, err})
		}
	}
	g.mu.Unlock()
	for _, e := range ended {
		g.finish(e.m, e.err)
	}
}

// checkDrainedLocked completes the drain once no member is left, the
// closer goroutine has returned and every OnDone call has returned.
func (g *Group) checkDrainedLocked() {
	if !g.draining || g.drainDone || len(g.members) > 0 || g.loop || g.callbacks > 0 {
		return
	}
	g.drainDone = true
	for _, t := range g.hookTimers {
		t.Stop()
	}
	g.hookTimers = nil
	close(g.drained)
}
