package buf

import "github.com/pollws/pollws/asyncio"

// A waiter is one handle's place among those waiting: the task its latest
// poll passed, and its index in the waitSet.
type waiter struct {
	task *asyncio.Task
	at   int // index+1 in the set, 0 when absent
}

// A waitSet holds the handles waiting for one kind of progress. It is
// keyed by handle: a handle that polls again replaces its task instead of
// adding one, so the set never holds more entries than there are handles,
// however many spurious polls there are. The owner's lock guards it.
type waitSet struct{ ws []*waiter }

// add makes w wait with t, replacing the task w waited with before. A nil
// t arranges no notification, so it takes w out.
func (s *waitSet) add(w *waiter, t *asyncio.Task) {
	if t == nil {
		s.remove(w)
		return
	}
	w.task = t
	if w.at == 0 {
		s.ws = append(s.ws, w)
		w.at = len(s.ws)
	}
}

// remove takes w out of the set and returns the task it waited with.
func (s *waitSet) remove(w *waiter) *asyncio.Task {
	t := w.task
	w.task = nil
	if w.at == 0 {
		return t
	}
	i, last := w.at-1, len(s.ws)-1
	s.ws[i] = s.ws[last]
	s.ws[i].at = i + 1
	s.ws[last] = nil
	s.ws = s.ws[:last]
	w.at = 0
	return t
}

// take empties the set, appending every task to dst.
func (s *waitSet) take(dst []*asyncio.Task) []*asyncio.Task {
	for i, w := range s.ws {
		dst = append(dst, w.task)
		w.task, w.at = nil, 0
		s.ws[i] = nil
	}
	s.ws = s.ws[:0]
	return dst
}

func (s *waitSet) len() int { return len(s.ws) }

// notify notifies every task in ts and returns ts emptied for reuse. Call
// it after releasing the lock that guards the tasks' owner: a notification
// may poll again.
func notify(ts []*asyncio.Task) []*asyncio.Task {
	for i, t := range ts {
		t.Notify()
		ts[i] = nil
	}
	return ts[:0]
}
