package shutdown

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"
)

// Errors returned when a [Group] does not admit a connection. Match them
// with [errors.Is].
var (
	// ErrRefused means the group's [Policy] answered [No]: the group is
	// full for now, and a later attempt may succeed.
	ErrRefused = errors.New("shutdown: connection refused, try again later")

	// ErrStopped means the group stopped admitting for good: its
	// [Policy] answered [Never], or a connection expired and
	// [GroupOptions].ExpiryStopsAdmission is set.
	ErrStopped = errors.New("shutdown: admission stopped")

	// ErrDraining means the group is draining (see [Group.Drain]); it
	// admits nothing more. It is also the reason a drained connection
	// reports to [GroupOptions].OnDone.
	ErrDraining = errors.New("shutdown: group is draining")
)

// Accept is a [Policy]'s answer to one more connection.
type Accept int

const (
	// Yes admits the connection.
	Yes Accept = iota
	// No refuses this connection; the policy is asked again for the next.
	No
	// Never refuses this connection and stops admission for good: the
	// policy is not asked again.
	Never
)

// String returns "Yes", "No" or "Never".
func (a Accept) String() string {
	switch a {
	case Yes:
		return "Yes"
	case No:
		return "No"
	case Never:
		return "Never"
	}
	return "Accept(" + strconv.Itoa(int(a)) + ")"
}

// Policy decides whether a [Group] admits one more connection.
//
// ShouldAccept is given the number of connections the group holds now
// (including places reserved by [Group.Admit] and not yet filled) and the
// total it has admitted so far (the same, plus every connection that has
// ended). It is called with the group's lock held, once per admission, so
// it sees consistent counts; it must be quick and must not call back into
// the group. An answer other than [Yes], [No] or [Never] counts as [No].
// A group never calls its Policy concurrently, but a Policy shared by
// several groups must be safe for use by multiple goroutines.
type Policy interface {
	ShouldAccept(concurrent, total int) Accept
}

// PolicyFunc adapts an ordinary function to a [Policy]. The function is
// called as a Policy is: never concurrently by one group.
type PolicyFunc func(concurrent, total int) Accept

// ShouldAccept returns f(concurrent, total).
func (f PolicyFunc) ShouldAccept(concurrent, total int) Accept { return f(concurrent, total) }

// Limits is the stock [Policy]: at most MaxConcurrent connections at a
// time ([No] past it) and at most MaxTotal over the group's life ([Never]
// once reached: a worker that serves a fixed number of connections, then
// drains and is replaced). Zero means no limit. Limits holds no state, so
// one value may serve any number of groups at once.
type Limits struct {
	MaxConcurrent int
	MaxTotal      int
}

// ShouldAccept answers [Never] once total reached MaxTotal, else [No]
// while concurrent is at MaxConcurrent, else [Yes].
func (l Limits) ShouldAccept(concurrent, total int) Accept {
	switch {
	case l.MaxTotal > 0 && total >= l.MaxTotal:
		return Never
	case l.MaxConcurrent > 0 && concurrent >= l.MaxConcurrent:
		return No
	}
	return Yes
}

var _ Policy = Limits{}

// admissionKey is the context key of a place reserved by [Group.Admit].
type admissionKey struct{}

// admission is a place reserved by [Group.Admit]; used and released are
// guarded by g.mu.
type admission struct {
	g    *Group
	used bool
}

// Admit asks the group's [Policy] whether one more connection may join
// and, if so, reserves its place, so that a connection admitted before a
// WebSocket upgrade is not refused after it. It returns a context derived
// from ctx that carries the reservation: give it (or one derived from it)
// to [Group.Add], which then fills the place without asking the policy
// again. Call release when the connection will not be added (the upgrade
// failed); after Add it does nothing, and it may be called more than once.
//
// A refused admission returns [ErrRefused], [ErrStopped] or [ErrDraining]
// and a nil release. [Group.Handler] is Admit for an [http.Handler].
func (g *Group) Admit(ctx context.Context) (_ context.Context, release func(), err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.admitLocked(); err != nil {
		return ctx, nil, err
	}
	g.reserved++
	g.total++
	a := &admission{g: g}
	return context.WithValue(ctx, admissionKey{}, a), func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if !a.used {
			a.used = true
			g.reserved--
			g.total--
		}
	}, nil
}

// admitLocked asks the policy for one more connection; it counts nothing.
func (g *Group) admitLocked() error {
	switch {
	case g.draining:
		return ErrDraining
	case g.stopped:
		return ErrStopped
	case g.o.Policy == nil:
		return nil
	}
	switch g.o.Policy.ShouldAccept(len(g.members)+g.reserved, g.total) {
	case Yes:
		return nil
	case Never:
		g.stopped = true
		return ErrStopped
	}
	return ErrRefused
}

// takeAdmissionLocked fills a place that ctx reserved in g, reporting whether
// there was one.
func (g *Group) takeAdmissionLocked(ctx context.Context) bool {
	a, _ := ctx.Value(admissionKey{}).(*admission)
	if a == nil || a.g != g || a.used {
		return false
	}
	a.used = true
	g.reserved--
	return true
}

// Handler admits each request through [Group.Admit] before next sees it.
// A refused request gets 503 Service Unavailable, with a Retry-After
// header ([GroupOptions].RetryAfter) when the policy answered [No] and
// without one when the group stopped admitting or is draining. An
// admitted request reaches next with the reservation in its context:
// next upgrades the connection and calls [Group.Add] with r.Context(),
// and the place is given back if next returns without doing so.
//
// Wrap WebSocket endpoints with it, not whole sites: a plain HTTP request
// through Handler holds a place until next returns.
func (g *Group) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, release, err := g.Admit(r.Context())
		if err != nil {
			if errors.Is(err, ErrRefused) {
				w.Header().Set("Retry-After", g.retryAfter)
			}
			http.Error(w, http.StatusText(http.StatusServiceUnavailable), http.StatusServiceUnavailable)
			return
		}
		defer release()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// retryAfterHeader returns d in whole seconds, rounded up, at least 1.
func retryAfterHeader(d time.Duration) string {
	s := int64((d + time.Second - 1) / time.Second)
	return strconv.FormatInt(max(s, 1), 10)
}
