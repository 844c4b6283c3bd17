package asyncio

// Task is what a poll that answers [NotReady] arranges to notify: the
// handle of whoever will poll again. A writer or reader keeps every Task
// that is waiting on it (see [WaitSet]) and notifies each when it can make
// progress; an [Executor] hands its tasks to the polls it runs.
//
// A Task is safe for use by multiple goroutines. The nil *Task is valid
// and its Notify does nothing.
type Task struct {
	notify func()
	job    *job // the executor's task this is, when spawned on an Executor
}

// NewTask returns a Task whose Notify calls notify. notify may be called
// from any goroutine, concurrently, any number of times, also long after
// the poll that stored the Task has completed; it must not block, and it
// should coalesce (one pending wake-up is enough). Writers in this module
// never call it while holding their own locks, so notify may poll again.
func NewTask(notify func()) *Task { return &Task{notify: notify} }

// Notify asks the task's owner to poll again. It is safe to call any
// number of times, at any time, from any goroutine. A spurious Notify is
// harmless: the next poll answers NotReady again and re-registers.
func (t *Task) Notify() {
	switch {
	case t == nil:
	case t.job != nil:
		t.job.wake()
	case t.notify != nil:
		t.notify()
	}
}
