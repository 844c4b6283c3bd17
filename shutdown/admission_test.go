package shutdown_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/pollws/pollws/shutdown"
)

func TestLimits(t *testing.T) {
	for _, tt := range []struct {
		l                 shutdown.Limits
		concurrent, total int
		want              shutdown.Accept
	}{
		{shutdown.Limits{}, 1000, 1000000, shutdown.Yes},
		{shutdown.Limits{MaxConcurrent: 2}, 1, 50, shutdown.Yes},
		{shutdown.Limits{MaxConcurrent: 2}, 2, 50, shutdown.No},
		{shutdown.Limits{MaxTotal: 3}, 0, 2, shutdown.Yes},
		{shutdown.Limits{MaxTotal: 3}, 0, 3, shutdown.Never},
		{shutdown.Limits{MaxConcurrent: 1, MaxTotal: 3}, 1, 3, shutdown.Never},
	} {
		if got := tt.l.ShouldAccept(tt.concurrent, tt.total); got != tt.want {
			t.Errorf("%+v.ShouldAccept(%d, %d) = %v, want %v", tt.l, tt.concurrent, tt.total, got, tt.want)
		}
	}
}

func TestAcceptString(t *testing.T) {
	for a, want := range map[shutdown.Accept]string{shutdown.Yes: "Yes", shutdown.No: "No", shutdown.Never: "Never", 7: "Accept(7)"} {
		if got := a.String(); got != want {
			t.Errorf("Accept(%d).String() = %q, want %q", int(a), got, want)
		}
	}
}

// recorder is a Policy that records what it was asked.
type recorder struct {
	mu    sync.Mutex
	asked [][2]int
	p     shutdown.Policy
}

func (r *recorder) ShouldAccept(concurrent, total int) shutdown.Accept {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.asked = append(r.asked, [2]int{concurrent, total})
	return r.p.ShouldAccept(concurrent, total)
}

func (r *recorder) calls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.asked)
}

// No refuses one connection and the next is asked again; Never refuses
// for good, without asking again.
func TestAdmissionNoAndNever(t *testing.T) {
	pol := &recorder{p: shutdown.Limits{MaxConcurrent: 2, MaxTotal: 3}}
	g := shutdown.NewGroup(&shutdown.GroupOptions{Policy: pol})
	ctx := context.Background()
	add := func(wantErr error) *shutdown.Member {
		t.Helper()
		m, err := g.Add(ctx, newConn(8), nil)
		if !errors.Is(err, wantErr) || (err == nil) != (m != nil) {
			t.Fatalf("Add = %v, %v; want error %v", m, err, wantErr)
		}
		return m
	}
	a := add(nil)
	b := add(nil)
	add(shutdown.ErrRefused) // 2 live: No
	a.Done(nil)
	c := add(nil)            // 1 live, 2 so far: Yes
	add(shutdown.ErrStopped) // 3 so far: Never
	b.Done(nil)
	c.Done(nil)
	add(shutdown.ErrStopped) // for good
	want := [][2]int{{0, 0}, {1, 1}, {2, 2}, {1, 2}, {2, 3}}
	if got := pol.asked; !equalPairs(got, want) {
		t.Fatalf("policy asked %v, want %v (and not again after Never)", got, want)
	}
	if a.ID() == 0 || a.ID() == b.ID() || b.ID() == c.ID() {
		t.Fatalf("IDs %d %d %d are not unique and non-zero", a.ID(), b.ID(), c.ID())
	}
}

func equalPairs(a, b [][2]int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Admit reserves a place that Add fills without asking the policy again;
// release gives an unused place back, once.
func TestAdmitReserves(t *testing.T) {
	pol := &recorder{p: shutdown.Limits{MaxConcurrent: 1}}
	g := shutdown.NewGroup(&shutdown.GroupOptions{Policy: pol})
	ctx, release, err := g.Admit(context.Background())
	if err != nil {
		t.Fatalf("Admit = %v", err)
	}
	if _, _, err := g.Admit(context.Background()); !errors.Is(err, shutdown.ErrRefused) {
		t.Fatalf("second Admit = %v, want ErrRefused: the place is reserved", err)
	}
	m, err := g.Add(ctx, newConn(8), nil)
	if err != nil {
		t.Fatalf("Add with the reservation = %v", err)
	}
	if n := pol.calls(); n != 2 {
		t.Fatalf("policy asked %d times, want 2: Add used the reservation", n)
	}
	release() // after Add: nothing
	if _, err := g.Add(context.Background(), newConn(8), nil); !errors.Is(err, shutdown.ErrRefused) {
		t.Fatalf("Add = %v, want ErrRefused", err)
	}
	m.Done(nil)

	_, release, err = g.Admit(context.Background())
	if err != nil {
		t.Fatalf("Admit = %v", err)
	}
	release()
	release()
	if _, _, err := g.Admit(context.Background()); err != nil {
		t.Fatalf("Admit after release = %v, want nil", err)
	}
	if got, want := pol.asked[len(pol.asked)-1], [2]int{0, 1}; got != want {
		t.Fatalf("policy last asked %v, want %v: a released place counts in neither", got, want)
	}
}

// A place reserved before a drain began is refused at Add.
func TestAdmitThenDrain(t *testing.T) {
	g := shutdown.NewGroup(nil)
	ctx, release, err := g.Admit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if rep := g.Drain(context.Background()); rep.Clean+rep.Forced != 0 {
		t.Fatalf("Drain = %v, want nothing to drain", rep)
	}
	if _, err := g.Add(ctx, newConn(8), nil); !errors.Is(err, shutdown.ErrDraining) {
		t.Fatalf("Add = %v, want ErrDraining", err)
	}
}

// The middleware answers a refused upgrade with 503, and Retry-After
// only when a later attempt may succeed.
func TestHandler(t *testing.T) {
	pol := &recorder{p: shutdown.Limits{MaxConcurrent: 1, MaxTotal: 2}}
	g := shutdown.NewGroup(&shutdown.GroupOptions{Policy: pol, RetryAfter: 1500e6})
	var members []*shutdown.Member
	upgrade := true
	h := g.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !upgrade {
			http.Error(w, "bad handshake", http.StatusBadRequest)
			return
		}
		m, err := g.Add(r.Context(), newConn(8), nil)
		if err != nil {
			t.Errorf("Add in an admitted request = %v", err)
			return
		}
		members = append(members, m)
	}))
	serve := func(wantCode int, wantRetry string) {
		t.Helper()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/ws", nil))
		if rec.Code != wantCode || rec.Header().Get("Retry-After") != wantRetry {
			t.Fatalf("response %d with Retry-After %q, want %d with %q", rec.Code, rec.Header().Get("Retry-After"), wantCode, wantRetry)
		}
	}

	upgrade = false
	serve(http.StatusBadRequest, "") // no upgrade: the place is given back
	upgrade = true
	serve(http.StatusOK, "")
	serve(http.StatusServiceUnavailable, "2") // full: No
	if n := pol.calls(); n != 3 {
		t.Fatalf("policy asked %d times, want once per request", n)
	}
	members[0].Done(nil)
	serve(http.StatusOK, "")
	members[1].Done(nil)
	serve(http.StatusServiceUnavailable, "") // MaxTotal: Never
	g.Drain(context.Background())

	d := shutdown.NewGroup(nil)
	d.Drain(context.Background())
	h = d.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Error("a draining group let a request through") }))
	serve(http.StatusServiceUnavailable, "")
}

// A PolicyFunc is a Policy; an answer that is not Yes, No or Never
// refuses like No.
func TestPolicyFunc(t *testing.T) {
	answer := shutdown.Accept(7)
	g := shutdown.NewGroup(&shutdown.GroupOptions{Policy: shutdown.PolicyFunc(func(int, int) shutdown.Accept { return answer })})
	if _, err := g.Add(context.Background(), newConn(8), nil); !errors.Is(err, shutdown.ErrRefused) {
		t.Fatalf("Add with answer %v = %v, want ErrRefused", answer, err)
	}
	answer = shutdown.Yes
	m, err := g.Add(context.Background(), newConn(8), nil)
	if err != nil {
		t.Fatalf("Add with answer Yes = %v", err)
	}
	m.Done(nil)
}
