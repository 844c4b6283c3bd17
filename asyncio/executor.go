package asyncio

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
)

// ErrExecutorClosed is returned by [Executor.Spawn] after Close began, and
// given to the done function of every task that had not finished when the
// executor closed.
var ErrExecutorClosed = errors.New("asyncio: executor closed")

var (
	errNilPoll      = errors.New("asyncio: Spawn of a nil poll")
	errSpawnedTwice = errors.New("asyncio: SpawnJob of a Job spawned before")
)

// ExecutorOptions configure an [Executor]. A nil *ExecutorOptions gives
// the defaults.
type ExecutorOptions struct {
	// Workers is the most goroutines that poll at once. Default (0 or
	// less): runtime.GOMAXPROCS(0) when the executor is made.
	Workers int
}

// Executor runs tasks: a run queue of tasks to poll, and at most Workers
// goroutines that poll them, which exist only while there is work. A task
// is a poll function, polled once when spawned and again each time its
// [Task] is notified, until it is Ready or fails; a server runs thousands
// of connections' polls this way on a few goroutines, the tasks notified
// by the readers and writers they wait on, a reactor or a timer.
//
// Notify is cheap and coalescing: a task notified any number of times
// before its next poll is polled once; a task notified while it is being
// polled is polled once more after that poll; a task is never polled by
// two workers at once; tasks are polled in the order they were scheduled.
// No lock is held while a task is polled.
//
// A panic in a poll or done function is not recovered: as in any
// goroutine, it ends the program.
//
// An Executor is safe for use by multiple goroutines. Make one with
// [NewExecutor]; stop it with Close, which waits for its workers.
type Executor struct {
	max  int
	work func() // e.run, made once so that starting a worker allocates nothing

	mu      sync.Mutex
	head    *job // the run queue, oldest first, linked through job.next
	tail    *job
	live    *job // the tasks not finished, linked through job.prev and job.succ
	workers int  // goroutines started and not yet exited
	closed  bool
	idle    sync.Cond     // broadcast when the last worker exits after Close began
	closing chan struct{} // closed when Close has finished
}

// NewExecutor returns an executor with the options o (nil for the
// defaults). It starts no goroutine: workers start when tasks are
// scheduled.
func NewExecutor(o *ExecutorOptions) *Executor {
	e := &Executor{max: runtime.GOMAXPROCS(0), closing: make(chan struct{})}
	if o != nil && o.Workers > 0 {
		e.max = o.Workers
	}
	e.idle.L = &e.mu
	e.work = e.run
	return e
}

// A job's state. Only the worker that took a job from the queue moves it
// out of jobScheduled, and only Notify moves it out of jobIdle.
const (
	jobIdle            uint32 = iota // waiting for a Notify
	jobScheduled                     // in the run queue
	jobRunning                       // being polled
	jobRunningNotified               // being polled, and notified since the poll began
	jobDone                          // finished: Notify does nothing
)

// job is a task spawned on an Executor.
type job struct {
	task  Task // task.job is the job itself
	state atomic.Uint32
	e     *Executor // set once spawned
	p     Poller

	// Guarded by e.mu.
	next       *job // in the run queue
	prev, succ *job // in the live list
}

// A Poller is a task as [Executor.SpawnJob] takes it: Poll is polled as
// Spawn's poll function is, and Done called once as its done function.
type Poller interface {
	Poll(t *Task) (Async[struct{}], error)
	Done(err error)
}

// Job is what an Executor keeps of a task while it runs. A task spawned
// with [Executor.SpawnJob] brings its own Job, typically a field of the
// value that implements its [Poller], so that spawning it allocates
// nothing: a server that spawns a task per connection keeps one object
// per connection instead of three. The zero value is ready; a Job is
// spawned once and must not be copied afterwards.
type Job struct{ j job }

// funcJob is a task spawned from functions.
type funcJob struct {
	Job
	poll func(*Task) (Async[struct{}], error)
	done func(error)
}

func (f *funcJob) Poll(t *Task) (Async[struct{}], error) { return f.poll(t) }

func (f *funcJob) Done(err error) {
	if f.done != nil {
		f.done(err)
	}
}

// Spawn schedules poll to be polled on the executor at once, and again
// each time the [Task] it is given is notified, until poll answers Ready or
// an error. Then done, if not nil, is called once on a worker with that
// error (nil when Ready). Spawn returns the task, which other code (a
// reactor, a timer) may notify; it is the Task poll is given.
//
// Spawn fails with [ErrExecutorClosed] once Close began, and with an error
// if poll is nil.
func (e *Executor) Spawn(poll func(t *Task) (Async[struct{}], error), done func(error)) (*Task, error) {
	if poll == nil {
		return nil, errNilPoll
	}
	f := &funcJob{poll: poll, done: done}
	return e.SpawnJob(&f.Job, f)
}

// SpawnJob is [Executor.Spawn] of p.Poll and p.Done, with j as the
// executor's record of the task (see [Job]). It fails with
// [ErrExecutorClosed] once Close began, and with an error if p is nil or
// j was spawned before.
func (e *Executor) SpawnJob(j *Job, p Poller) (*Task, error) {
	if p == nil {
		return nil, errNilPoll
	}
	jb := &j.j
	if jb.e != nil {
		return nil, errSpawnedTwice
	}
	jb.e, jb.p = e, p
	jb.task.job = jb
	jb.state.Store(jobScheduled)
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, ErrExecutorClosed
	}
	if e.live != nil {
		e.live.prev = jb
	}
	jb.succ, e.live = e.live, jb
	start := e.pushLocked(jb)
	e.mu.Unlock()
	if start {
		go e.work()
	}
	return &jb.task, nil
}

// wake is Notify of a spawned task: one atomic load when the task is
// already scheduled or done, one compare-and-swap otherwise.
func (j *job) wake() {
	for {
		switch j.state.Load() {
		case jobIdle:
			if j.state.CompareAndSwap(jobIdle, jobScheduled) {
				j.e.schedule(j)
				return
			}
		case jobRunning:
			if j.state.CompareAndSwap(jobRunning, jobRunningNotified) {
				return
			}
		default: // scheduled, running and notified, or done
			return
		}
	}
}

// schedule queues a job that has just become scheduled, and starts a
// worker if fewer than the most are running.
func (e *Executor) schedule(j *job) {
	e.mu.Lock()
	start := !e.closed && e.pushLocked(j) // once closed, Close finishes j
	e.mu.Unlock()
	if start {
		go e.work()
	}
}

// pushLocked appends j to the run queue and reports whether a worker
// should be started for it, counting it as started.
func (e *Executor) pushLocked(j *job) bool {
	e.enqueueLocked(j)
	if e.workers < e.max {
		e.workers++
		return true
	}
	return false
}

// enqueueLocked appends j to the run queue.
func (e *Executor) enqueueLocked(j *job) {
	if e.tail == nil {
		e.head = j
	} else {
		e.tail.next = j
	}
	e.tail = j
}

// popLocked takes the oldest job from the run queue; nil when it is empty
// or Close began.
func (e *Executor) popLocked() *job {
	j := e.head
	if j == nil || e.closed {
		return nil
	}
	e.head, j.next = j.next, nil
	if e.head == nil {
		e.tail = nil
	}
	return j
}

// run is a worker: it polls jobs from the run queue until the queue is
// empty, then exits.
func (e *Executor) run() {
	for {
		e.mu.Lock()
		j := e.popLocked()
		if j == nil {
			e.workers--
			if e.workers == 0 && e.closed {
				e.idle.Broadcast()
			}
			e.mu.Unlock()
			return
		}
		e.mu.Unlock()
		e.poll(j)
	}
}

// poll polls j once and settles its state: done, idle, or scheduled again
// when it was notified during the poll.
func (e *Executor) poll(j *job) {
	j.state.Store(jobRunning)
	r, err := j.p.Poll(&j.task)
	if err != nil || r.Ready {
		e.finish(j, err)
		return
	}
	if j.state.CompareAndSwap(jobRunning, jobIdle) {
		return
	}
	// Notified during the poll: once more, behind the tasks already queued.
	j.state.Store(jobScheduled)
	e.mu.Lock()
	if !e.closed {
		e.enqueueLocked(j) // the worker polling j polls the queue on
	}
	e.mu.Unlock()
}

// finish marks j done, forgets it, and calls its done function.
func (e *Executor) finish(j *job, err error) {
	j.state.Store(jobDone)
	e.mu.Lock()
	e.unlinkLocked(j)
	e.mu.Unlock()
	p := j.p
	j.p = nil // a Task kept by a writer holds nothing more
	p.Done(err)
}

func (e *Executor) unlinkLocked(j *job) {
	if j.prev != nil {
		j.prev.succ = j.succ
	} else {
		e.live = j.succ
	}
	if j.succ != nil {
		j.succ.prev = j.prev
	}
	j.prev, j.succ = nil, nil
}

// Close refuses new Spawns ([ErrExecutorClosed]), waits until no worker
// runs (the polls and done calls in progress return), and then calls
// done(ErrExecutorClosed) for every task that had not finished, on the
// goroutine that called Close. Tasks queued or notified after Close began
// are not polled again.
//
// Close must not be called from a poll or done function of the same
// executor: it would wait for itself. Later calls wait for the first to
// finish and return nil. Close always returns nil.
func (e *Executor) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		<-e.closing
		return nil
	}
	e.closed = true
	for e.workers > 0 {
		e.idle.Wait()
	}
	for j := e.head; j != nil; {
		next := j.next
		j.next = nil
		j = next
	}
	e.head, e.tail = nil, nil
	live := e.live
	e.live = nil
	e.mu.Unlock()
	for j := live; j != nil; {
		next := j.succ
		j.prev, j.succ = nil, nil
		if p := j.p; j.state.Swap(jobDone) != jobDone {
			p.Done(ErrExecutorClosed)
		}
		j.p = nil
		j = next
	}
	close(e.closing)
	return nil
}
