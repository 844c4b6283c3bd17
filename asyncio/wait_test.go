package asyncio_test

import (
	"slices"
	"sync/atomic"
	"testing"

	"github.com/pollws/pollws/asyncio"
)

// counted returns n tasks and the notification count of each.
func counted(n int) ([]*asyncio.Task, []*atomic.Int64) {
	ts := make([]*asyncio.Task, n)
	cs := make([]*atomic.Int64, n)
	for i := range ts {
		c := new(atomic.Int64)
		ts[i], cs[i] = asyncio.NewTask(func() { c.Add(1) }), c
	}
	return ts, cs
}

func TestWaitSetNotifiesEveryTaskOnce(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 8} {
		ts, cs := counted(n)
		var s asyncio.WaitSet
		for range 3 { // polling again does not add a task twice
			for _, task := range ts {
				s.Add(task)
			}
			s.Add(nil)
		}
		if got := s.Len(); got != n {
			t.Fatalf("%d tasks added thrice: Len = %d, want %d", n, got, n)
		}
		w := s.Take()
		if s.Len() != 0 {
			t.Fatalf("Len after Take = %d, want 0", s.Len())
		}
		w.Notify()
		w.Notify() // emptied: notifies nobody again
		for i, c := range cs {
			if got := c.Load(); got != 1 {
				t.Errorf("%d tasks: task %d notified %d times, want 1", n, i, got)
			}
		}
	}
}

func TestWaitSetRemove(t *testing.T) {
	ts, cs := counted(5)
	for _, gone := range [][]int{{0}, {1}, {4}, {0, 1}, {0, 1, 2, 3, 4}, {3, 0}} {
		var s asyncio.WaitSet
		for _, task := range ts {
			s.Add(task)
		}
		for _, i := range gone {
			s.Remove(ts[i])
			s.Remove(ts[i]) // removing a task that does not wait does nothing
		}
		s.Remove(nil)
		for _, c := range cs {
			c.Store(0)
		}
		// Removed tasks may wait again, and each waits once.
		s.Add(ts[gone[0]])
		w := s.Take()
		w.Notify()
		for i, c := range cs {
			want := int64(1)
			if slices.Contains(gone, i) && i != gone[0] {
				want = 0
			}
			if got := c.Load(); got != want {
				t.Errorf("removed %v, added %d back: task %d notified %d times, want %d", gone, gone[0], i, got, want)
			}
		}
	}
}

func TestWakeupsMergeSets(t *testing.T) {
	ts, cs := counted(6)
	var a, b asyncio.WaitSet
	for _, task := range ts[:4] {
		a.Add(task)
	}
	for _, task := range ts[2:] {
		b.Add(task) // ts[2] and ts[3] wait in both
	}
	var w asyncio.Wakeups
	a.TakeInto(&w)
	b.TakeInto(&w)
	w.Add(ts[5])
	w.Add(nil)
	w.Notify()
	for i, c := range cs {
		if got := c.Load(); got != 1 {
			t.Errorf("task %d notified %d times, want 1", i, got)
		}
	}
}

func TestWaitSetAllocs(t *testing.T) {
	ts, _ := counted(2)
	var s asyncio.WaitSet
	allocs := testing.AllocsPerRun(100, func() {
		s.Add(ts[0])
		s.Add(ts[1])
		s.Add(ts[0])
		w := s.Take()
		w.Notify()
	})
	if allocs != 0 {
		t.Fatalf("two waiters: %v allocations per wait and wake-up, want 0", allocs)
	}
}

func BenchmarkWaitSet(b *testing.B) {
	ts, _ := counted(2)
	var s asyncio.WaitSet
	b.ReportAllocs()
	for b.Loop() {
		s.Add(ts[0])
		s.Add(ts[1])
		w := s.Take()
		w.Notify()
	}
}
