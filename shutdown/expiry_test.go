package shutdown_test

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pollws/pollws/shutdown"
)

// ends records OnDone calls.
type ends struct {
	mu   sync.Mutex
	errs map[uint64][]error
	ch   chan uint64 // gets each id as OnDone is called
}

func newEnds() *ends { return &ends{errs: make(map[uint64][]error), ch: make(chan uint64, 4096)} }

func (e *ends) onDone(id uint64, err error) {
	e.mu.Lock()
	e.errs[id] = append(e.errs[id], err)
	e.mu.Unlock()
	e.ch <- id
}

// only returns the one error OnDone got for id, failing if it was called
// other than once.
func (e *ends) only(t *testing.T, id uint64) error {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if n := len(e.errs[id]); n != 1 {
		t.Fatalf("OnDone called %d times for connection %d, want once", n, id)
	}
	return e.errs[id][0]
}

func (e *ends) count() (conns, calls int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, errs := range e.errs {
		conns++
		calls += len(errs)
	}
	return conns, calls
}

// handle is a connection's handler: the peer reads everything, and when
// it has seen the end the handler calls Done.
func handle(m *shutdown.Member, c *conn) <-chan received {
	out := make(chan received, 1)
	go func() {
		r := <-c.read(5)
		out <- r
		m.Done(nil)
	}()
	return out
}

// stuck is the handler of a peer that never reads: the handler's read
// fails only when the group closes the connection.
func stuck(m *shutdown.Member, c *conn) {
	go func() {
		<-c.closed
		m.Done(io.ErrClosedPipe)
	}()
}

// A connection that reaches its lifetime is shut down with 1001 after
// its queued bytes; its context says why, and OnDone reports it.
func TestExpiryLifetime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnds()
		g := shutdown.NewGroup(&shutdown.GroupOptions{Lifetime: 10 * time.Second, OnDone: e.onDone})
		c := newConn(64)
		m, err := g.Add(t.Context(), codedConn{c}, nil)
		if err != nil {
			t.Fatal(err)
		}
		c.queue(t, "last words")
		got := handle(m, c)
		start := time.Now()

		id := <-e.ch
		if d := time.Since(start); d != 10*time.Second {
			t.Errorf("ended after %v, want the 10s lifetime", d)
		}
		if err := e.only(t, id); !errors.Is(err, shutdown.ErrLifetime) {
			t.Errorf("OnDone error %v, want ErrLifetime", err)
		}
		if cause := context.Cause(m.Context()); cause != shutdown.ErrLifetime {
			t.Errorf("context cause %v, want ErrLifetime", cause)
		}
		if r := <-got; r.data != "last words<close 1001>" || r.err != io.EOF {
			t.Errorf("peer got %q, %v; want the data, then close 1001, then EOF", r.data, r.err)
		}
		if code, closes, _ := c.state(); code != shutdown.CodeGoingAway || closes != 1 {
			t.Errorf("code %d, closed %d times; want 1001, once", code, closes)
		}
	})
}

// Idle expiry counts from the last Touch and uses 1008; a member may
// override the group's settings.
func TestExpiryIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnds()
		g := shutdown.NewGroup(&shutdown.GroupOptions{Idle: 5 * time.Second, OnDone: e.onDone})
		start := time.Now()
		add := func(o *shutdown.MemberOptions) (*shutdown.Member, *conn, <-chan received) {
			c := newConn(64)
			m, err := g.Add(t.Context(), codedConn{c}, o)
			if err != nil {
				t.Fatal(err)
			}
			return m, c, handle(m, c)
		}
		touched, tc, tgot := add(nil)
		time.AfterFunc(3*time.Second, touched.Touch)
		never, _, _ := add(&shutdown.MemberOptions{Idle: -1})
		short, _, _ := add(&shutdown.MemberOptions{Idle: time.Second})

		for _, want := range []struct {
			m     *shutdown.Member
			after time.Duration
		}{{short, time.Second}, {touched, 8 * time.Second}} {
			if id := <-e.ch; id != want.m.ID() {
				t.Fatalf("connection %d ended, want %d", id, want.m.ID())
			}
			if d := time.Since(start); d != want.after {
				t.Errorf("connection %d ended after %v, want %v", want.m.ID(), d, want.after)
			}
			if err := e.only(t, want.m.ID()); !errors.Is(err, shutdown.ErrIdle) {
				t.Errorf("OnDone error %v, want ErrIdle", err)
			}
		}
		if r := <-tgot; r.data != "<close 1008>" {
			t.Errorf("peer got %q, want close 1008", r.data)
		}
		if code, _, _ := tc.state(); code != shutdown.CodePolicyViolation {
			t.Errorf("code %d, want 1008", code)
		}
		if err := never.Context().Err(); err != nil {
			t.Errorf("the member without an idle limit is shutting down: %v", err)
		}
		if rep := g.Drain(t.Context()); rep.Clean != 1 {
			t.Errorf("Drain = %v, want the one member left, clean", rep)
		}
	})
}

// An expiry stops admission only when asked to.
func TestExpiryStopsAdmission(t *testing.T) {
	for _, stops := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			e := newEnds()
			g := shutdown.NewGroup(&shutdown.GroupOptions{OnDone: e.onDone, ExpiryStopsAdmission: stops})
			c := newConn(64)
			m, err := g.Add(t.Context(), c, &shutdown.MemberOptions{Lifetime: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			other := newConn(64)
			om, err := g.Add(t.Context(), other, nil)
			if err != nil {
				t.Fatal(err)
			}
			handle(m, c)
			handle(om, other)
			<-e.ch

			late := newConn(64)
			lm, err := g.Add(t.Context(), late, nil)
			if stops {
				if !errors.Is(err, shutdown.ErrStopped) {
					t.Errorf("ExpiryStopsAdmission: Add after an expiry = %v, want ErrStopped", err)
				}
			} else if err != nil {
				t.Errorf("Add after an expiry = %v, want nil", err)
			} else {
				handle(lm, late)
			}
			if err := om.Context().Err(); err != nil {
				t.Errorf("an expiry ended another connection: %v", err)
			}
			want := 2
			if stops {
				want = 1
			}
			if rep := g.Drain(t.Context()); rep.Clean != want {
				t.Errorf("Drain = %v, want %d clean", rep, want)
			}
		})
	}
}

// An expired connection whose peer does not read is closed hard after
// CloseTimeout; OnDone gets the reason, the undelivered bytes, and the
// handler's error.
func TestExpiryStuckPeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnds()
		g := shutdown.NewGroup(&shutdown.GroupOptions{Lifetime: 10 * time.Second, CloseTimeout: 2 * time.Second, OnDone: e.onDone})
		c := newConn(64)
		defer c.r.Close()
		m, err := g.Add(t.Context(), c, nil)
		if err != nil {
			t.Fatal(err)
		}
		c.queue(t, "unread")
		stuck(m, c)
		start := time.Now()
		id := <-e.ch
		if d := time.Since(start); d != 12*time.Second {
			t.Errorf("ended after %v, want lifetime 10s + CloseTimeout 2s", d)
		}
		err = e.only(t, id)
		var ue *shutdown.UndeliveredError
		if !errors.Is(err, shutdown.ErrLifetime) || !errors.As(err, &ue) || !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, io.ErrClosedPipe) {
			t.Fatalf("OnDone error %q, want ErrLifetime, an UndeliveredError at the deadline, and the handler's io.ErrClosedPipe", err)
		}
		if want := int64(len("unread<close 1000>")); ue.Bytes != want {
			t.Errorf("Bytes = %d, want %d (the data and the end)", ue.Bytes, want)
		}
	})
}
