package reactor

import (
	"sync"
	"time"
)

// Expirer is told that the deadline set with [Registration.SetTimer]
// passed. A registration's Edges that are an Expirer are told so.
type Expirer interface {
	Expired()
}

// timers is a reactor's deadlines: a min-heap of the registrations that
// have one, on a single runtime timer set for the earliest. A
// registration with a deadline costs its place in the heap, not a timer
// of the runtime's and the function it calls.
type timers struct {
	mu    sync.Mutex
	heap  []*Registration
	timer *time.Timer // nil until the first deadline
	at    int64       // when timer fires, as since timerEpoch; 0: stopped
}

// timerEpoch is what deadlines are measured from, monotonically.
var timerEpoch = time.Now()

func sinceEpoch() int64 { return int64(time.Since(timerEpoch)) }

// SetTimer calls the Expired method of the registration's Edges once, on
// a goroutine of the reactor's, d from now, unless the deadline is set
// again or stopped before; the Edges must be an [Expirer]. A registration
// has one deadline: setting it replaces the one before. Expired runs with
// no lock of the reactor's held, and may set the next deadline. Nothing
// is called once the registration is closed.
func (g *Registration) SetTimer(d time.Duration) {
	if _, ok := g.edges.(Expirer); !ok {
		panic("reactor: SetTimer of a registration whose Edges are no Expirer")
	}
	r := g.r
	t := &r.t
	due := sinceEpoch() + int64(max(d, 0))
	t.mu.Lock()
	defer t.mu.Unlock()
	if g.closedTimer {
		return
	}
	g.due = due
	if g.idx < 0 {
		g.idx = int32(len(t.heap))
		t.heap = append(t.heap, g)
		t.up(int(g.idx))
	} else if !t.down(int(g.idx)) {
		t.up(int(g.idx))
	}
	r.armLocked()
}

// StopTimer takes the registration's deadline away, if it has one.
func (g *Registration) StopTimer() {
	t := &g.r.t
	t.mu.Lock()
	defer t.mu.Unlock()
	t.removeLocked(g)
}

// closeTimer stops the registration's deadline for good.
func (g *Registration) closeTimer() {
	t := &g.r.t
	t.mu.Lock()
	defer t.mu.Unlock()
	g.closedTimer = true
	t.removeLocked(g)
}

func (t *timers) removeLocked(g *Registration) {
	i := int(g.idx)
	if i < 0 {
		return
	}
	last := len(t.heap) - 1
	if i != last {
		t.swap(i, last)
	}
	t.heap[last] = nil
	t.heap = t.heap[:last]
	g.idx = -1
	if i != last && !t.down(i) {
		t.up(i)
	}
	// The runtime timer may stay set for the removed deadline: firing
	// early finds nothing due, and sets it for the next.
}

// armLocked sets the runtime timer for the earliest deadline, when it is
// not set for it already. t.mu is held.
func (r *Reactor) armLocked() {
	t := &r.t
	if len(t.heap) == 0 {
		return
	}
	due := t.heap[0].due
	if t.at != 0 && t.at <= due {
		return // it fires no later, and sets itself for what remains
	}
	t.at = due
	d := time.Duration(max(due-sinceEpoch(), 0))
	if t.timer == nil {
		t.timer = time.AfterFunc(d, r.fireTimers)
		return
	}
	t.timer.Reset(d)
}

// fireTimers takes the deadlines that passed out of the heap and tells
// their expirers.
func (r *Reactor) fireTimers() {
	t := &r.t
	var due []Expirer
	t.mu.Lock()
	at := sinceEpoch()
	for len(t.heap) > 0 && t.heap[0].due <= at {
		g := t.heap[0]
		due = append(due, g.edges.(Expirer))
		t.removeLocked(g)
	}
	t.at = 0
	r.armLocked()
	t.mu.Unlock()
	for i, e := range due {
		e.Expired()
		due[i] = nil
	}
}

// Timers returns the number of registrations with a deadline.
func (r *Reactor) Timers() int {
	r.t.mu.Lock()
	defer r.t.mu.Unlock()
	return len(r.t.heap)
}

func (t *timers) less(i, j int) bool { return t.heap[i].due < t.heap[j].due }

func (t *timers) swap(i, j int) {
	h := t.heap
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = int32(i), int32(j)
}

func (t *timers) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !t.less(i, p) {
			return
		}
		t.swap(i, p)
		i = p
	}
}

// down moves the element at i down to its place, and reports whether it
// moved.
func (t *timers) down(i int) bool {
	start, n := i, len(t.heap)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		c := l
		if r := l + 1; r < n && t.less(r, l) {
			c = r
		}
		if !t.less(c, i) {
			break
		}
		t.swap(i, c)
		i = c
	}
	return i > start
}
