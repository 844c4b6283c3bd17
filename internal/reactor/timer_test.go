package reactor

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// timed is a registration's Expirer that records its expiries.
type timed struct {
	g     *Registration
	id    int
	fired chan<- int
	again int // how many times Expired sets the deadline again
}

func (e *timed) Expired() {
	e.fired <- e.id
	if e.again > 0 {
		e.again--
		e.g.SetTimer(time.Millisecond)
	}
}

func (e *timed) ReadEdge()  {}
func (e *timed) WriteEdge() {}

// setTimer makes e the Edges of g and sets g's deadline.
func setTimer(g *Registration, d time.Duration, e *timed) {
	e.g = g
	g.r.t.mu.Lock()
	g.edges = e
	g.r.t.mu.Unlock()
	g.SetTimer(d)
}

// timerRegs returns n registrations of r that hold no socket: the
// deadlines need none.
func timerRegs(r *Reactor, n int) []*Registration {
	gs := make([]*Registration, n)
	for i := range gs {
		gs[i] = &Registration{r: r, idx: -1}
	}
	return gs
}

// checkHeap fails unless the heap is ordered and every index is right.
func checkHeap(t *testing.T, r *Reactor) {
	t.Helper()
	r.t.mu.Lock()
	defer r.t.mu.Unlock()
	h := r.t.heap
	for i, g := range h {
		if int(g.idx) != i {
			t.Fatalf("heap[%d] has index %d", i, g.idx)
		}
		if i > 0 && h[(i-1)/2].due > g.due {
			t.Fatalf("heap[%d] is due before its parent", i)
		}
	}
}

func TestTimersExpireOnceNotEarly(t *testing.T) {
	r := newReactor(t)
	const n = 300
	gs := timerRegs(r, n)
	fired := make(chan int, n)
	dues := make([]time.Time, n)
	for i, g := range gs {
		d := time.Duration(rand.IntN(40)) * time.Millisecond
		dues[i] = time.Now().Add(d)
		setTimer(g, d, &timed{g: g, id: i, fired: fired})
	}
	checkHeap(t, r)
	seen := make([]bool, n)
	for range n {
		select {
		case id := <-fired:
			if seen[id] {
				t.Fatalf("deadline %d expired twice", id)
			}
			seen[id] = true
			if time.Now().Before(dues[id]) {
				t.Fatalf("deadline %d expired early", id)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("deadlines did not expire")
		}
	}
	if k := r.Timers(); k != 0 {
		t.Fatalf("%d deadlines left after all expired", k)
	}
}

func TestTimerSetAgainStopAndClose(t *testing.T) {
	r := newReactor(t)
	fired := make(chan int, 8)
	gs := timerRegs(r, 4)
	// 0 moves later, 1 is stopped, 2 is closed, 3 expires: none of the
	// first three may come before 3.
	setTimer(gs[0], time.Millisecond, &timed{id: 0, fired: fired})
	setTimer(gs[0], time.Hour, &timed{id: 0, fired: fired})
	setTimer(gs[1], time.Millisecond, &timed{id: 1, fired: fired})
	gs[1].StopTimer()
	setTimer(gs[2], time.Millisecond, &timed{id: 2, fired: fired})
	gs[2].closeTimer()
	setTimer(gs[2], time.Millisecond, &timed{id: 2, fired: fired}) // closed: ignored
	setTimer(gs[3], 20*time.Millisecond, &timed{id: 3, fired: fired})
	checkHeap(t, r)
	if id := <-fired; id != 3 {
		t.Fatalf("deadline %d expired first, want 3", id)
	}
	if k := r.Timers(); k != 1 {
		t.Fatalf("%d deadlines left, want the hour's", k)
	}
	// Moved earlier, an hour's deadline comes now.
	setTimer(gs[0], time.Millisecond, &timed{id: 0, fired: fired})
	if id := <-fired; id != 0 {
		t.Fatalf("deadline %d expired, want 0", id)
	}
}

func TestTimerSetFromExpired(t *testing.T) {
	r := newReactor(t)
	fired := make(chan int, 8)
	g := timerRegs(r, 1)[0]
	setTimer(g, 0, &timed{g: g, id: 7, fired: fired, again: 3})
	for range 4 {
		select {
		case <-fired:
		case <-time.After(10 * time.Second):
			t.Fatal("a deadline set from Expired did not expire")
		}
	}
}

func TestTimerHeapUnderChurn(t *testing.T) {
	r := newReactor(t)
	gs := timerRegs(r, 200)
	e := &timed{fired: make(chan int, 1<<12)}
	for _, g := range gs {
		g.edges = e
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for range 5000 {
				g := gs[rng.IntN(len(gs))]
				if rng.IntN(3) == 0 {
					g.StopTimer()
				} else {
					g.SetTimer(time.Hour + time.Duration(rng.IntN(1e6)))
				}
			}
		})
	}
	wg.Wait()
	checkHeap(t, r)
	for _, g := range gs {
		g.closeTimer()
	}
	if k := r.Timers(); k != 0 {
		t.Fatalf("%d deadlines left after every registration closed", k)
	}
}
