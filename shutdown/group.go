package shutdown

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pollws/pollws/asyncio"
)

// Reasons a [Group] shuts a connection down before its drain; they are
// the cause of the [Member.Context] and part of the error given to
// [GroupOptions].OnDone. Match them with [errors.Is].
var (
	// ErrLifetime means the connection reached its lifetime. It is shut
	// down with [CodeGoingAway]: the server ends it on schedule, and the
	// client may reconnect at once.
	ErrLifetime = errors.New("shutdown: connection lifetime reached")

	// ErrIdle means the connection was idle for longer than allowed
	// (no [Member.Touch]). It is shut down with [CodePolicyViolation]:
	// the client broke the server's idle policy, which tells it apart
	// from a server going away.
	ErrIdle = errors.New("shutdown: connection idle for too long")
)

const (
	defaultCloseTimeout = 5 * time.Second
	defaultRetryAfter   = 5 * time.Second
)

// GroupOptions configures a [Group]. A nil *GroupOptions means the
// defaults. [NewGroup] copies it: changing it afterwards has no effect.
type GroupOptions struct {
	// Policy decides admission. Default: admit every connection.
	Policy Policy

	// OnDone, if set, is called exactly once per connection added, with
	// how it ended: the error given to [Member.Done] if the connection
	// ended on its own; if the group shut it down (expiry or drain), an
	// error that matches the reason ([ErrLifetime], [ErrIdle],
	// [ErrDraining]), an [*UndeliveredError] if it had to be closed
	// hard or its shutdown failed (also when the peer was gone, see
	// [Report].Gone), and the error given to Done, if any. It is called from the
	// goroutine that ended the connection (a handler calling Done, or one
	// of the group's own), without the group's lock: it must not block for long
	// and must not call [Group.Drain] or [Group.Wait]. Default: none.
	OnDone func(id uint64, err error)

	// Lifetime is how long a connection may live; MemberOptions may set
	// another. Default: 0, no limit.
	Lifetime time.Duration

	// Idle is how long a connection may go without a [Member.Touch];
	// MemberOptions may set another. Default: 0, no limit.
	Idle time.Duration

	// CloseTimeout bounds the graceful shutdown of an expired connection;
	// past it the connection is closed hard. Default: 5s. A drain uses
	// its own deadline.
	CloseTimeout time.Duration

	// ExpiryStopsAdmission makes the first expiry stop admission for good
	// ([ErrStopped]), as for a worker that is recycled once its work
	// starts expiring; the other connections are served to their end.
	// Default: false, an expired connection ends alone.
	ExpiryStopsAdmission bool

	// RetryAfter is what [Group.Handler] asks a client refused with [No]
	// to wait, sent in whole seconds. Default: 5s.
	RetryAfter time.Duration

	// Logger, if set, gets one line per connection that expired (Info,
	// Warn when it was closed hard), and one line per drain, when it
	// completes, with the [Report]'s counts (Info, Warn when some
	// connection was forced or failed). The drain's connections get a
	// line each at Debug only. Default: nil, no logging.
	Logger *slog.Logger
}

// Group tracks a server's live connections: it admits them through a
// [Policy], shuts each down when its lifetime or idle time expires, and
// drains them all when the server shuts down (see [Group.Drain] and
// [Group.RegisterOnShutdown]), reporting each one's end to
// [GroupOptions].OnDone exactly once.
//
// Each connection the group shuts down is a task on the group's own
// [asyncio.Executor]: polled ([asyncio.AsyncWriter.Shutdown]) when the
// shutdown begins and again each time its writer notifies, never waited
// on. So an idle group holds no goroutine, and a draining one at most
// runtime.GOMAXPROCS(0) (the executor's workers), and only while a poll
// runs; [Group.Drain] and [Group.Wait] return only after they have
// exited. Expiry and deadlines are timers ([time.AfterFunc]), not
// goroutines.
//
// A Group is safe for use by multiple goroutines. Lock order: g.mu, then
// the executor's own; no writer method, OnDone or logger is called with
// g.mu held.
type Group struct {
	o          GroupOptions
	retryAfter string
	epoch      time.Time         // Touch times are durations since it (monotonic)
	closer     *asyncio.Executor // polls the shutdowns: one task per member closing

	mu       sync.Mutex
	members  map[uint64]*Member
	nextID   uint64
	reserved int // places reserved by Admit and not yet filled or released
	total    int // connections admitted, including reserved places
	stopped  bool

	callbacks  int // OnDone calls in progress
	draining   bool
	drainStart time.Time
	deadline   error // the drain's deadline passed, with this cause
	drainDone  bool
	drained    chan struct{} // closed when the drain is complete
	report     Report
	hookTimers []*time.Timer
}

// NewGroup returns an empty group with options o (nil for the defaults).
func NewGroup(o *GroupOptions) *Group {
	g := &Group{
		closer:  asyncio.NewExecutor(nil),
		members: make(map[uint64]*Member),
		drained: make(chan struct{}),
		epoch:   time.Now(),
	}
	if o != nil {
		g.o = *o
	}
	if g.o.CloseTimeout <= 0 {
		g.o.CloseTimeout = defaultCloseTimeout
	}
	if g.o.RetryAfter <= 0 {
		g.o.RetryAfter = defaultRetryAfter
	}
	g.retryAfter = retryAfterHeader(g.o.RetryAfter)
	return g
}

// MemberOptions configures one connection added to a [Group]. A nil
// *MemberOptions means the group's defaults. [Group.Add] copies it.
type MemberOptions struct {
	// Lifetime overrides [GroupOptions].Lifetime: 0 keeps the group's, a
	// negative value means no limit.
	Lifetime time.Duration

	// Idle overrides [GroupOptions].Idle: 0 keeps the group's, a negative
	// value means no limit.
	Idle time.Duration
}

type memberState uint8

const (
	stateLive    memberState = iota
	stateClosing             // the group is shutting the writer down
	stateClosed              // the group's shutdown finished; waiting for Done
	stateEnded               // OnDone was called
)

// outcome is how the group's shutdown of a member ended.
type outcome uint8

const (
	outcomeClean  outcome = iota // the shutdown completed
	outcomeForced                // closed hard: at a deadline, or the shutdown failed
	outcomeGone                  // the shutdown failed because the peer is gone
)

func (o outcome) String() string {
	switch o {
	case outcomeForced:
		return "forced"
	case outcomeGone:
		return "gone"
	}
	return "clean"
}

// Member is one connection in a [Group], from [Group.Add] until it ends.
// Its handler watches [Member.Context], calls [Member.Touch] on activity
// when the connection has an idle limit, and calls [Member.Done] when it
// is finished with the connection.
//
// A Member is safe for use by multiple goroutines.
type Member struct {
	g       *Group
	id      uint64
	w       asyncio.AsyncWriter
	ctx     context.Context
	cancel  context.CancelCauseFunc
	idle    time.Duration
	touched atomic.Int64 // when last touched, as a duration since g.epoch

	// Guarded by g.mu.
	state     memberState
	reason    error
	code      int
	text      string
	task      *asyncio.Task // the shutdown's task on g.closer; set when it begins
	polled    bool          // the group polled the writer's shutdown at least once
	force     error         // close hard at the next poll, with this cause
	result    error         // the error of the group's shutdown
	outcome   outcome
	bytes     int64 // undelivered when forced or gone
	doneErr   error
	doneSet   bool
	inDrain   bool
	lifeTimer *time.Timer
	idleTimer *time.Timer
	endTimer  *time.Timer // bounds the shutdown of an expired member
}

// Add adds a connection whose writes go through w, admitting it first:
// if ctx carries a place reserved by [Group.Admit] (as inside
// [Group.Handler]), Add fills it; otherwise it asks the [Policy], and
// returns [ErrRefused], [ErrStopped] or [ErrDraining] if the connection
// is not admitted. A refused writer stays the caller's to close.
//
// From Add on, the group owns w's end: it shuts w down when the
// connection expires or the group drains (with ShutdownCode if w is a
// [CodeShutdowner], else with [asyncio.AsyncWriter]'s Shutdown), and it
// closes w, exactly once, when w is an [io.Closer]. The group calls these,
// and Undelivered or Buffered if w is an [UndeliveredReporter] or a
// [BufferedReporter], from its own goroutines (its executor's workers)
// while the handler may be writing: w must allow that, as the writers in
// this module do.
//
// The member's [Member.Context] carries ctx's values but not its
// cancellation. Add panics if w is nil.
func (g *Group) Add(ctx context.Context, w asyncio.AsyncWriter, o *MemberOptions) (*Member, error) {
	if w == nil {
		panic("shutdown: Add of a nil writer")
	}
	var mo MemberOptions
	if o != nil {
		mo = *o
	}
	lifetime := pick(mo.Lifetime, g.o.Lifetime)
	idle := pick(mo.Idle, g.o.Idle)

	g.mu.Lock()
	defer g.mu.Unlock()
	if g.takeAdmissionLocked(ctx) {
		if g.draining {
			g.total--
			return nil, ErrDraining
		}
	} else {
		if err := g.admitLocked(); err != nil {
			return nil, err
		}
		g.total++
	}
	g.nextID++
	m := &Member{g: g, id: g.nextID, w: w, idle: idle}
	m.ctx, m.cancel = context.WithCancelCause(context.WithoutCancel(ctx))
	g.members[m.id] = m
	if lifetime > 0 {
		m.lifeTimer = time.AfterFunc(lifetime, func() { m.expire(ErrLifetime, CodeGoingAway) })
	}
	if idle > 0 {
		m.touched.Store(int64(time.Since(g.epoch)))
		m.idleTimer = time.AfterFunc(idle, m.checkIdle)
	}
	return m, nil
}

// pick returns a member's setting: its own if positive, none if negative,
// else the group's.
func pick(own, group time.Duration) time.Duration {
	switch {
	case own > 0:
		return own
	case own < 0:
		return 0
	}
	return group
}

// ID returns the member's identifier in its group, unique and never 0:
// the id given to [GroupOptions].OnDone.
func (m *Member) ID() uint64 { return m.id }

// Context returns a context that is done when the group starts shutting
// the connection down, with [ErrLifetime], [ErrIdle] or [ErrDraining] as
// its cause (see [context.Cause]), or when the member ends. A handler may
// watch it to stop starting new work, but its read loop should go on
// reading: the peer's answer to the close frame arrives there, and the
// group closes the writer once the handshake is over (or its deadline
// passed), which ends the read loop.
func (m *Member) Context() context.Context { return m.ctx }

// Touch records activity on the connection: its idle time starts again.
// It is cheap (no lock, no allocation) and may be called on every message.
func (m *Member) Touch() { m.touched.Store(int64(time.Since(m.g.epoch))) }

// Done reports that the handler is finished with the connection, and how
// it ended (nil for a normal end). If the group is not shutting the
// connection down, Done closes the writer (if it is an [io.Closer]) and
// calls [GroupOptions].OnDone with err; if it is, the group finishes that
// shutdown and then calls OnDone, with err among the causes. Either way
// the group closes the writer: the handler does not. Only the first call
// counts, and a Done after the group ended the member itself (at a
// drain's deadline) does nothing.
func (m *Member) Done(err error) {
	g := m.g
	g.mu.Lock()
	if m.doneSet || m.state == stateEnded {
		g.mu.Unlock()
		return
	}
	m.doneSet, m.doneErr = true, err
	switch m.state {
	case stateLive:
		m.state = stateEnded // the group will not start a shutdown now
		g.mu.Unlock()
		release(m.w)
		g.mu.Lock()
		g.endLocked(m)
		g.mu.Unlock()
		g.finish(m, err)
	case stateClosed:
		end := m.endErr()
		g.endLocked(m)
		g.mu.Unlock()
		g.finish(m, end)
	default: // stateClosing: the closer ends the member when it is done
		g.mu.Unlock()
	}
}

// endErr is the error OnDone gets for a member the group shut down.
func (m *Member) endErr() error { return join(m.reason, m.result, m.doneErr) }

// checkIdle runs when the idle timer fires: it expires the member, or
// sets the timer again if the member was touched meanwhile.
func (m *Member) checkIdle() {
	g := m.g
	g.mu.Lock()
	if m.state != stateLive {
		g.mu.Unlock()
		return
	}
	if left := m.idle - (time.Since(g.epoch) - time.Duration(m.touched.Load())); left > 0 {
		m.idleTimer.Reset(left)
		g.mu.Unlock()
		return
	}
	g.mu.Unlock()
	m.expire(ErrIdle, CodePolicyViolation)
}

// expire starts the shutdown of a live member for reason, bounded by
// CloseTimeout.
func (m *Member) expire(reason error, code int) {
	g := m.g
	g.mu.Lock()
	defer g.mu.Unlock()
	if m.state != stateLive {
		return
	}
	if g.o.ExpiryStopsAdmission {
		g.stopped = true
	}
	g.beginCloseLocked(m, reason, code)
	m.endTimer = time.AfterFunc(g.o.CloseTimeout, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		g.forceLocked(m, context.DeadlineExceeded)
	})
}

// closeText is the reason sent in the close frame for each group reason.
func closeText(reason error) string {
	switch reason {
	case ErrLifetime:
		return "connection lifetime reached"
	case ErrIdle:
		return "idle timeout"
	}
	return "server shutting down"
}

// beginCloseLocked starts the group's shutdown of a live member: a task
// on g.closer that polls it.
func (g *Group) beginCloseLocked(m *Member, reason error, code int) {
	if m.state != stateLive {
		return
	}
	m.state = stateClosing
	m.reason, m.code, m.text = reason, code, closeText(reason)
	m.cancel(reason)
	// Spawn cannot fail: the poll is not nil and g.closer is closed only
	// once the drain is complete, when no member is left to shut down.
	m.task, _ = g.closer.Spawn(func(t *asyncio.Task) (asyncio.Async[struct{}], error) {
		return g.pollClose(t, m), nil
	}, nil)
}

// forceLocked makes the next poll of a shutting-down member close it
// hard.
func (g *Group) forceLocked(m *Member, cause error) {
	if m.state == stateClosing && m.force == nil {
		m.force = cause
		m.task.Notify()
	}
}

// pollClose is the task of a member's shutdown. It polls the shutdown;
// when that is complete, or has failed, or the member is forced, it
// closes the writer, records the outcome and answers Ready: a shutdown
// that failed because the peer is gone ([peerGone]) is not forced, even
// past a deadline. Only this task moves a member out of stateClosing, and
// the executor never runs it on two workers at once.
func (g *Group) pollClose(t *asyncio.Task, m *Member) asyncio.Async[struct{}] {
	g.mu.Lock()
	cause, polled := m.force, m.polled
	m.polled = true
	g.mu.Unlock()

	// A forced member is still polled once, so that its writer refuses
	// new bytes before it is counted, and one with nothing pending ends
	// cleanly.
	out := outcomeForced
	if cause == nil || !polled {
		r, err := shutdownCode(t, m.w, m.code, m.text)
		switch {
		case err == nil && r.Ready:
			g.closed(m, release(m.w), outcomeClean, 0)
			return asyncio.Ready(struct{}{})
		case err != nil:
			cause = err
			if peerGone(err) {
				out = outcomeGone
			}
		case cause == nil:
			return asyncio.NotReady[struct{}]() // the writer notifies t
		}
	}
	ue := closeHard(m.w, cause)
	g.closed(m, ue, out, ue.Bytes)
	return asyncio.Ready(struct{}{})
}

// closed records the outcome of a member's shutdown and ends the member
// if its handler is done or the drain's deadline passed.
func (g *Group) closed(m *Member, result error, out outcome, bytes int64) {
	g.mu.Lock()
	m.state = stateClosed
	m.result, m.outcome, m.bytes = result, out, bytes
	if m.endTimer != nil {
		m.endTimer.Stop()
	}
	if !m.doneSet && g.deadline == nil {
		g.mu.Unlock()
		return
	}
	end := m.endErr()
	g.endLocked(m)
	g.mu.Unlock()
	g.finish(m, end)
}

// endLocked removes a member whose end is final and counts it in the
// drain's report. The caller calls g.finish after unlocking.
func (g *Group) endLocked(m *Member) {
	m.state = stateEnded
	delete(g.members, m.id)
	for _, t := range []*time.Timer{m.lifeTimer, m.idleTimer, m.endTimer} {
		if t != nil {
			t.Stop()
		}
	}
	if m.inDrain {
		switch m.outcome {
		case outcomeClean:
			g.report.Clean++
		case outcomeForced:
			g.report.Forced++
		case outcomeGone:
			g.report.Gone++
		}
		g.report.Undelivered += max(m.bytes, 0)
		if m.result != nil && m.outcome != outcomeGone {
			g.report.Errors = append(g.report.Errors, m.result)
		}
	}
	g.callbacks++
}

// finish runs the end of a member outside the lock: its context, its log
// line, and OnDone.
func (g *Group) finish(m *Member, end error) {
	defer func() { // even if OnDone panics, so that a drain can complete
		g.mu.Lock()
		g.callbacks--
		drained := g.drainedLocked()
		g.mu.Unlock()
		if drained {
			g.endDrain()
		}
	}()
	m.cancel(nil)
	if l := g.o.Logger; l != nil && m.reason != nil {
		// A drain's connections are summed up in its one line (endDrain).
		level := slog.LevelInfo
		switch {
		case m.inDrain:
			level = slog.LevelDebug
		case m.outcome == outcomeForced:
			level = slog.LevelWarn
		}
		l.LogAttrs(context.Background(), level, "shutdown: connection shut down by its group",
			slog.Uint64("id", m.id), slog.Any("err", end), slog.String("end", m.outcome.String()))
	}
	if g.o.OnDone != nil {
		g.o.OnDone(m.id, end)
	}
}
