package asyncio

// WaitSet is the set of tasks waiting on one kind of progress of a writer
// or reader: every task that got NotReady and still waits is notified when
// progress is possible, so that any number of goroutines may wait on one
// writer and none of them hangs.
//
// The set holds each task once, however often it polls, so it is bounded
// by the number of distinct tasks waiting; a nil task is never added, so a
// poll with no task (what Write does) neither registers nor unregisters
// anyone. Up to two tasks are held without allocating.
//
// A WaitSet is not safe for concurrent use: its owner guards it with its
// own lock. Take the tasks under that lock and notify them after
// releasing it, since a notification may poll again:
//
//	mu.Lock()
//	var wake asyncio.Wakeups
//	readers.TakeInto(&wake)
//	mu.Unlock()
//	wake.Notify()
//
// The zero value is an empty set.
type WaitSet struct {
	inline [2]*Task
	more   *[]*Task // the tasks past two, allocated when a third comes
}

// Add makes t wait. A task already waiting is not added again; a nil t is
// not added.
func (s *WaitSet) Add(t *Task) {
	if t == nil {
		return
	}
	for i, u := range s.inline {
		switch u {
		case t:
			return
		case nil:
			s.inline[i] = t
			return
		}
	}
	if s.more == nil {
		s.more = new([]*Task)
	}
	for _, u := range *s.more {
		if u == t {
			return
		}
	}
	*s.more = append(*s.more, t)
}

// Remove takes t out of the set, if it waits; a task that stops waiting
// (its caller gave up) calls it so that it is not notified for nothing.
func (s *WaitSet) Remove(t *Task) {
	if t == nil {
		return
	}
	for i, u := range s.inline {
		if u == t {
			s.inline[i] = nil
			if i == 0 {
				s.inline[0], s.inline[1] = s.inline[1], nil
			}
			s.refill()
			return
		}
	}
	if s.more == nil {
		return
	}
	more := *s.more
	for i, u := range more {
		if u == t {
			last := len(more) - 1
			more[i], more[last] = more[last], nil
			*s.more = more[:last]
			return
		}
	}
}

// refill keeps the inline slots filled first, so that Add's scan stops at
// the first empty one.
func (s *WaitSet) refill() {
	if s.more == nil {
		return
	}
	for i := range s.inline {
		if more := *s.more; s.inline[i] == nil && len(more) > 0 {
			last := len(more) - 1
			s.inline[i], more[last] = more[last], nil
			*s.more = more[:last]
		}
	}
}

// Len returns the number of tasks waiting.
func (s *WaitSet) Len() int {
	n := 0
	if s.more != nil {
		n = len(*s.more)
	}
	for _, t := range s.inline {
		if t != nil {
			n++
		}
	}
	return n
}

// TakeInto moves every waiting task into w, leaving the set empty. Tasks
// already in w stay, and a task in both is notified once.
func (s *WaitSet) TakeInto(w *Wakeups) {
	for i, t := range s.inline {
		if t != nil {
			w.add(t)
			s.inline[i] = nil
		}
	}
	if s.more == nil {
		return
	}
	for i, t := range *s.more {
		w.add(t)
		(*s.more)[i] = nil
	}
	*s.more = (*s.more)[:0]
}

// Take empties the set and returns its tasks, to notify once no lock is
// held.
func (s *WaitSet) Take() Wakeups {
	var w Wakeups
	s.TakeInto(&w)
	return w
}

// Wakeups are tasks taken from one or more [WaitSet]s, to be notified
// after the lock that guarded them is released. The zero value holds none.
type Wakeups struct {
	inline [4]*Task
	more   []*Task
}

func (w *Wakeups) add(t *Task) {
	for i, u := range w.inline {
		switch u {
		case t:
			return
		case nil:
			w.inline[i] = t
			return
		}
	}
	for _, u := range w.more {
		if u == t {
			return
		}
	}
	w.more = append(w.more, t)
}

// Add adds t to the tasks to notify; a nil t or one already there is not
// added again.
func (w *Wakeups) Add(t *Task) {
	if t != nil {
		w.add(t)
	}
}

// Notify notifies every task, each once, and empties w.
func (w *Wakeups) Notify() {
	for i, t := range w.inline {
		if t == nil {
			break
		}
		w.inline[i] = nil
		t.Notify()
	}
	for i, t := range w.more {
		w.more[i] = nil
		t.Notify()
	}
	w.more = w.more[:0]
}
