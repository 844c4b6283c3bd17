package shutdown

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"
)

// Report is what a [Group]'s drain did to the connections it found.
// Every one of them is counted in exactly one of Clean, Forced and Gone.
// [Group.Drain] and [Group.Wait] return a copy of their own, so a Report
// shares nothing with the group or with other callers.
type Report struct {
	// Clean counts connections whose shutdown completed before the
	// deadline: the writer said every byte it accepted, and then its end
	// (the close frame), had left it.
	Clean int

	// Forced counts connections closed hard: their shutdown was still
	// running at the deadline, or it failed for a reason other than the
	// peer being gone.
	Forced int

	// Gone counts connections whose shutdown failed because the peer had
	// already left. That is not an error of the drain: they are not in
	// Errors, though their undelivered bytes are in Undelivered, and
	// [GroupOptions].OnDone still gets an [*UndeliveredError] that wraps
	// the writer's error. The peer had left when that error matches, with
	// [errors.Is], one of these:
	//   - [syscall.ECONNRESET], [syscall.ECONNABORTED], [syscall.EPIPE],
	//     [syscall.ETIMEDOUT] (on Windows WSAECONNRESET, WSAECONNABORTED,
	//     WSAETIMEDOUT and ERROR_NETNAME_DELETED; on Plan 9 ETIMEDOUT):
	//     the peer reset or closed the connection, or stopped answering
	//     TCP;
	//   - [io.EOF], [io.ErrUnexpectedEOF]: the peer ended the stream,
	//     with or without a close frame;
	//   - [io.ErrClosedPipe]: the peer closed an in-memory pipe;
	//   - [net.ErrClosed]: the writer closed itself during its shutdown,
	//     as a writer does when its read side finds the peer gone (the
	//     group closes a writer only after its shutdown ended).
	Gone int

	// Undelivered is the bytes the writers of the forced and gone
	// connections accepted that their peers will not get, summed over
	// the writers that report them (see [UndeliveredError].Bytes; a
	// writer that reports neither count adds nothing). An
	// [UndeliveredReporter] over a socket includes what the kernel's send
	// queue still held when it was closed (read with SIOCOUTQ on Linux;
	// where it cannot be read, its count is a lower bound): closing a
	// socket whose peer left input unread sends a reset, which destroys
	// that queue. The group closes hard only at the deadline or after a
	// failed shutdown, when nothing can get those bytes out any more: it
	// does not claim to save them, it counts them here. Clean connections
	// add nothing.
	Undelivered int64

	// Errors holds an [*UndeliveredError] per forced connection, and the
	// error of any clean connection whose writer failed to close. It
	// holds nothing for gone connections.
	Errors []error
}

// String returns the counts on one line, as "clean=90 forced=10
// undelivered=4096B errors=10 gone=3".
func (r Report) String() string {
	return fmt.Sprintf("clean=%d forced=%d undelivered=%dB errors=%d gone=%d", r.Clean, r.Forced, r.Undelivered, len(r.Errors), r.Gone)
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
// for every connection, and the drain's one line was logged
// ([GroupOptions].Logger).
//
// A connection that is already shutting down because it expired joins
// the drain and its deadline. Drain may be called again, and
// concurrently with a drain begun by [Group.RegisterOnShutdown]: every
// call shares the one drain, which ends at the earliest deadline, and
// returns its report. With a ctx that never ends, Drain waits for every
// connection however long that takes.
func (g *Group) Drain(ctx context.Context) Report {
	g.mu.Lock()
	drained := g.startDrainLocked()
	g.mu.Unlock()
	if drained {
		g.endDrain()
	}
	stop := context.AfterFunc(ctx, func() { g.expireDrain(context.Cause(ctx)) })
	defer stop()
	<-g.drained
	g.closer.Close() // waits for the workers that ran the last polls
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
		g.closer.Close() // waits for the workers that ran the last polls
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
		drained := g.startDrainLocked()
		if timeout > 0 && !g.drainDone {
			g.hookTimers = append(g.hookTimers, time.AfterFunc(timeout, func() {
				g.expireDrain(context.DeadlineExceeded)
			}))
		}
		g.mu.Unlock()
		if drained {
			g.endDrain()
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
// member. It does nothing after the first call. It reports whether the
// drain completed at once (see drainedLocked).
func (g *Group) startDrainLocked() bool {
	if g.draining {
		return false
	}
	g.draining, g.drainStart = true, time.Now()
	for _, m := range g.members {
		if m.state == stateEnded {
			continue // its handler's Done is ending it
		}
		m.inDrain = true
		g.beginCloseLocked(m, ErrDraining, CodeGoingAway)
	}
	return g.drainedLocked()
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

// drainedLocked marks the drain complete once no member is left and
// every OnDone call has returned; no task of g.closer is then left but
// the one, if any, whose poll is returning. It returns true once, to the
// caller that marked it; that caller calls g.endDrain after unlocking.
// The report does not change after.
func (g *Group) drainedLocked() bool {
	if !g.draining || g.drainDone || len(g.members) > 0 || g.callbacks > 0 {
		return false
	}
	g.drainDone = true
	for _, t := range g.hookTimers {
		t.Stop()
	}
	g.hookTimers = nil
	return true
}

// endDrain logs the drain's one line and releases Drain and Wait. It runs
// once, without the lock, so that the logger does not hold up the group.
func (g *Group) endDrain() {
	defer close(g.drained) // even if the logger panics
	if l := g.o.Logger; l != nil {
		r := g.snapshot()
		level := slog.LevelInfo
		if r.Forced > 0 || len(r.Errors) > 0 {
			level = slog.LevelWarn
		}
		attrs := []slog.Attr{
			slog.Int("clean", r.Clean),
			slog.Int("forced", r.Forced),
			slog.Int("gone", r.Gone),
			slog.Int64("undelivered_bytes", r.Undelivered),
			slog.Int("errors", len(r.Errors)),
			slog.Duration("took", time.Since(g.drainStart)),
		}
		if len(r.Errors) > 0 {
			attrs = append(attrs, slog.Any("first_error", r.Errors[0]))
		}
		l.LogAttrs(context.Background(), level, "shutdown: drain complete", attrs...)
	}
}
