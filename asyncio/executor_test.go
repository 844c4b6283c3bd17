package asyncio_test

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pollws/pollws/asyncio"
	"go.uber.org/goleak"
)

// doneLog records the done calls of tasks.
type doneLog struct {
	mu   sync.Mutex
	errs map[string][]error
}

func (l *doneLog) fn(name string) func(error) {
	return func(err error) {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.errs == nil {
			l.errs = make(map[string][]error)
		}
		l.errs[name] = append(l.errs[name], err)
	}
}

// once checks that name's done was called exactly once, with want.
func (l *doneLog) once(t *testing.T, name string, want error) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if got := l.errs[name]; len(got) != 1 || !errors.Is(got[0], want) {
		t.Errorf("task %s: done calls %v; want one, with %v", name, got, want)
	}
}

func (l *doneLog) none(t *testing.T, name string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if got := l.errs[name]; len(got) != 0 {
		t.Errorf("task %s: done calls %v; want none yet", name, got)
	}
}

// A task waits on timers: it is polled when spawned and after each
// notification, and no worker goroutine exists while it waits (in a
// synctest bubble, Wait returns only once every other goroutine is durably
// blocked, which a worker never is: it polls or it exits).
func TestExecutorPollsOnSpawnAndEachNotification(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := asyncio.NewExecutor(nil)
		defer e.Close()
		var log doneLog
		var mu sync.Mutex
		var polls []time.Duration
		at := func() []time.Duration {
			mu.Lock()
			defer mu.Unlock()
			return slices.Clone(polls)
		}
		start := time.Now()
		_, err := e.Spawn(func(task *asyncio.Task) (asyncio.Async[struct{}], error) {
			mu.Lock()
			polls = append(polls, time.Since(start))
			n := len(polls)
			mu.Unlock()
			if n == 3 {
				return asyncio.Ready(struct{}{}), nil
			}
			time.AfterFunc(time.Second, task.Notify)
			return asyncio.NotReady[struct{}](), nil
		}, log.fn("t"))
		if err != nil {
			t.Fatalf("Spawn: %v", err)
		}
		synctest.Wait()
		if n := len(at()); n != 1 {
			t.Fatalf("%d polls right after Spawn; want 1", n)
		}
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if polls, want := at(), []time.Duration{0, time.Second, 2 * time.Second}; !slices.Equal(polls, want) {
			t.Fatalf("polled at %v; want %v: on Spawn, then once per notification", polls, want)
		}
		log.once(t, "t", nil)
	})
}

func TestExecutorNotifyDuringPollPollsOnceMore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := asyncio.NewExecutor(&asyncio.ExecutorOptions{Workers: 1})
		defer e.Close()
		var polls atomic.Int32
		task, _ := e.Spawn(func(task *asyncio.Task) (asyncio.Async[struct{}], error) {
			if polls.Add(1) == 1 {
				for range 3 {
					task.Notify()
				}
			}
			return asyncio.NotReady[struct{}](), nil
		}, nil)
		synctest.Wait()
		if n := polls.Load(); n != 2 {
			t.Fatalf("%d polls after three notifications during the first; want 2 (one more, coalesced)", n)
		}
		for range 5 {
			task.Notify()
		}
		synctest.Wait()
		if n := polls.Load(); n != 3 {
			t.Fatalf("%d polls after five notifications of an idle task; want 3", n)
		}
	})
}

func TestExecutorNotifyAfterDoneIsNoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := asyncio.NewExecutor(nil)
		defer e.Close()
		var log doneLog
		var polls atomic.Int32
		boom := errors.New("boom")
		task, _ := e.Spawn(func(*asyncio.Task) (asyncio.Async[struct{}], error) {
			polls.Add(1)
			return asyncio.NotReady[struct{}](), boom
		}, log.fn("t"))
		synctest.Wait()
		for range 3 {
			task.Notify()
		}
		synctest.Wait()
		if n := polls.Load(); n != 1 {
			t.Fatalf("%d polls; want 1: a failed task is not polled again", n)
		}
		log.once(t, "t", boom)
	})
}

// Tasks are polled in the order they were scheduled.
func TestExecutorPollsInOrderOfScheduling(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := asyncio.NewExecutor(&asyncio.ExecutorOptions{Workers: 1})
		defer e.Close()
		var mu sync.Mutex
		var order []int
		taken := func() []int {
			mu.Lock()
			defer mu.Unlock()
			o := order
			order = nil
			return o
		}
		tasks := make([]*asyncio.Task, 8)
		for i := range tasks {
			tasks[i], _ = e.Spawn(func(*asyncio.Task) (asyncio.Async[struct{}], error) {
				mu.Lock()
				order = append(order, i)
				mu.Unlock()
				return asyncio.NotReady[struct{}](), nil
			}, nil)
		}
		synctest.Wait()
		if order, want := taken(), []int{0, 1, 2, 3, 4, 5, 6, 7}; !slices.Equal(order, want) {
			t.Fatalf("first polls in order %v; want the order of Spawn, %v", order, want)
		}

		// While the only worker is busy, notify in a scrambled order.
		release := make(chan struct{})
		e.Spawn(func(*asyncio.Task) (asyncio.Async[struct{}], error) {
			<-release
			return asyncio.Ready(struct{}{}), nil
		}, nil)
		synctest.Wait()
		notified := []int{5, 2, 7, 0, 3, 6, 1, 4}
		for _, i := range notified {
			tasks[i].Notify()
			tasks[i].Notify()
		}
		close(release)
		synctest.Wait()
		if order := taken(); !slices.Equal(order, notified) {
			t.Fatalf("polled in order %v; want the order of notification, %v", order, notified)
		}
	})
}

func TestExecutorBoundsWorkers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const workers, tasks = 3, 20
		e := asyncio.NewExecutor(&asyncio.ExecutorOptions{Workers: workers})
		defer e.Close()
		var now, most, finished atomic.Int32
		release := make(chan struct{})
		for range tasks {
			e.Spawn(func(*asyncio.Task) (asyncio.Async[struct{}], error) {
				n := now.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				<-release
				now.Add(-1)
				return asyncio.Ready(struct{}{}), nil
			}, func(error) { finished.Add(1) })
		}
		synctest.Wait()
		if n := now.Load(); n != workers {
			t.Fatalf("%d polls at once with %d tasks queued; want %d, the most workers", n, tasks, workers)
		}
		close(release)
		synctest.Wait()
		if most.Load() != workers || finished.Load() != tasks {
			t.Fatalf("at most %d polls at once, %d tasks finished; want %d and %d", most.Load(), finished.Load(), workers, tasks)
		}
	})
}

// Many tasks notified from many goroutines: every task sees every event
// published before a notification, so none hangs; a task is never polled
// by two workers at once; it is polled at most once per notification, plus
// the poll on Spawn; done is called once.
func TestExecutorManyTasksManyNotifiers(t *testing.T) {
	const (
		tasks     = 200
		notifiers = 8
		events    = 50 // per task and notifier
	)
	type state struct {
		task     *asyncio.Task
		sent     atomic.Int64
		notifies atomic.Int64
		polls    atomic.Int64
		inPoll   atomic.Bool
	}
	e := asyncio.NewExecutor(&asyncio.ExecutorOptions{Workers: 4})
	defer e.Close()
	states := make([]*state, tasks)
	var finished sync.WaitGroup
	var bad atomic.Value
	for i := range states {
		s := new(state)
		states[i] = s
		finished.Add(1)
		var doneCalls atomic.Int32
		task, err := e.Spawn(func(*asyncio.Task) (asyncio.Async[struct{}], error) {
			if !s.inPoll.CompareAndSwap(false, true) {
				bad.Store(fmt.Sprintf("task %d polled by two workers at once", i))
			}
			defer s.inPoll.Store(false)
			s.polls.Add(1)
			runtime.Gosched() // so that notifications land during polls too
			if s.sent.Load() == notifiers*events {
				return asyncio.Ready(struct{}{}), nil
			}
			return asyncio.NotReady[struct{}](), nil
		}, func(err error) {
			if doneCalls.Add(1) != 1 || err != nil {
				bad.Store(fmt.Sprintf("task %d: done called again, or with %v", i, err))
			}
			finished.Done()
		})
		if err != nil {
			t.Fatalf("Spawn: %v", err)
		}
		s.task = task
	}
	var wg sync.WaitGroup
	for range notifiers {
		wg.Go(func() {
			for range events {
				for _, s := range states {
					s.sent.Add(1)
					s.notifies.Add(1)
					s.task.Notify()
				}
			}
		})
	}
	wg.Wait()
	all := make(chan struct{})
	go func() { finished.Wait(); close(all) }()
	select {
	case <-all:
	case <-time.After(30 * time.Second):
		t.Fatal("tasks still not finished 30s after their last notification: a notification was lost")
	}
	if b := bad.Load(); b != nil {
		t.Fatal(b)
	}
	var polls int64
	for i, s := range states {
		if p, n := s.polls.Load(), s.notifies.Load(); p > n+1 {
			t.Fatalf("task %d polled %d times for %d notifications; want at most one more poll than notifications", i, p, n)
		}
		polls += s.polls.Load()
	}
	t.Logf("%d notifications, %d polls", tasks*notifiers*events, polls)
}

// pingPong spawns pairs of tasks on e that pass a ball back and forth
// rounds times each; every pass is a notification of a task that is often
// still being polled, since its partner notifies it as soon as it handed
// the ball on. A notification lost stalls a pair. done is called once per
// task.
func pingPong(e *asyncio.Executor, pairs, rounds int, done func(error)) {
	type player struct {
		ball    atomic.Bool
		passes  int
		partner *player
		task    atomic.Pointer[asyncio.Task] // stored before the ball is looked at
	}
	for range pairs {
		a, b := new(player), new(player)
		a.partner, b.partner = b, a
		a.ball.Store(true)
		for _, p := range []*player{a, b} {
			e.Spawn(func(task *asyncio.Task) (asyncio.Async[struct{}], error) {
				p.task.Store(task)
				if !p.ball.CompareAndSwap(true, false) {
					return asyncio.NotReady[struct{}](), nil
				}
				p.passes++
				p.partner.ball.Store(true)
				p.partner.task.Load().Notify() // nil until the partner's first poll, which sees the ball
				if p.passes == rounds {
					return asyncio.Ready(struct{}{}), nil
				}
				return asyncio.NotReady[struct{}](), nil
			}, done)
		}
	}
}

func TestExecutorPingPongLosesNoNotification(t *testing.T) {
	const pairs, rounds = 50, 1000
	e := asyncio.NewExecutor(&asyncio.ExecutorOptions{Workers: 4})
	defer e.Close()
	var wg sync.WaitGroup
	wg.Add(2 * pairs)
	pingPong(e, pairs, rounds, func(err error) {
		if err != nil {
			t.Errorf("done(%v)", err)
		}
		wg.Done()
	})
	all := make(chan struct{})
	go func() { wg.Wait(); close(all) }()
	select {
	case <-all:
	case <-time.After(30 * time.Second):
		t.Fatal("pairs still playing after 30s: a notification was lost")
	}
}

// Once the queue drains no worker is left, without Close.
func TestExecutorWorkersExitWhenIdle(t *testing.T) {
	e := asyncio.NewExecutor(nil)
	var wg sync.WaitGroup
	for range 100 {
		wg.Add(1)
		e.Spawn(func(*asyncio.Task) (asyncio.Async[struct{}], error) {
			return asyncio.Ready(struct{}{}), nil
		}, func(error) { wg.Done() })
	}
	wg.Wait()
	goleak.VerifyNone(t)
	e.Close()
}

func TestExecutorClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := asyncio.NewExecutor(&asyncio.ExecutorOptions{Workers: 1})
		var log doneLog
		var mu sync.Mutex
		polled := make(map[string]int)
		spawn := func(name string, poll func() bool) *asyncio.Task {
			task, err := e.Spawn(func(*asyncio.Task) (asyncio.Async[struct{}], error) {
				mu.Lock()
				polled[name]++
				mu.Unlock()
				if poll() {
					return asyncio.Ready(struct{}{}), nil
				}
				return asyncio.NotReady[struct{}](), nil
			}, log.fn(name))
			if err != nil {
				t.Fatalf("Spawn %s: %v", name, err)
			}
			return task
		}
		idle := spawn("idle", func() bool { return false })
		synctest.Wait()
		release := make(chan struct{})
		spawn("busy", func() bool { <-release; return true })
		synctest.Wait()
		spawn("queued", func() bool { return true })

		closed := make(chan struct{})
		go func() {
			e.Close()
			close(closed)
		}()
		synctest.Wait()
		select {
		case <-closed:
			t.Fatal("Close returned while a poll was in progress")
		default:
		}
		if _, err := e.Spawn(func(*asyncio.Task) (asyncio.Async[struct{}], error) { return asyncio.Ready(struct{}{}), nil }, nil); !errors.Is(err, asyncio.ErrExecutorClosed) {
			t.Fatalf("Spawn after Close began: %v; want ErrExecutorClosed", err)
		}
		idle.Notify()
		log.none(t, "idle")
		close(release)
		<-closed
		log.once(t, "busy", nil)
		log.once(t, "idle", asyncio.ErrExecutorClosed)
		log.once(t, "queued", asyncio.ErrExecutorClosed)
		idle.Notify()
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if want := map[string]int{"idle": 1, "busy": 1}; !maps.Equal(polled, want) {
			t.Fatalf("polls %v; want %v: nothing is polled after Close began", polled, want)
		}
		if err := e.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		log.once(t, "idle", asyncio.ErrExecutorClosed)
	})
}

// A notification and the poll it causes allocate nothing, nor does a
// worker that starts for it.
func TestExecutorNotifyAndPollAllocateNothing(t *testing.T) {
	e := asyncio.NewExecutor(nil)
	defer e.Close()
	polled := make(chan struct{}, 1)
	task, _ := e.Spawn(func(*asyncio.Task) (asyncio.Async[struct{}], error) {
		polled <- struct{}{}
		return asyncio.NotReady[struct{}](), nil
	}, nil)
	<-polled
	allocs := testing.AllocsPerRun(1000, func() {
		task.Notify()
		<-polled
	})
	if allocs != 0 {
		t.Fatalf("Notify to poll: %v allocations, want 0", allocs)
	}
}

func TestExecutorSpawnNilPoll(t *testing.T) {
	e := asyncio.NewExecutor(nil)
	defer e.Close()
	if task, err := e.Spawn(nil, nil); err == nil || task != nil {
		t.Fatalf("Spawn(nil) = %v, %v; want an error", task, err)
	}
}

// countdown is a task that brings its own Job: Ready after n polls, each
// of which notifies the task again.
type countdown struct {
	job   asyncio.Job
	n     int
	polls int
	dones int
	err   error // of the last Done
	ended chan struct{}
}

func (c *countdown) Poll(t *asyncio.Task) (asyncio.Async[struct{}], error) {
	c.polls++
	if c.polls == c.n {
		return asyncio.Ready(struct{}{}), nil
	}
	t.Notify()
	return asyncio.NotReady[struct{}](), nil
}

func (c *countdown) Done(err error) {
	c.dones++
	c.err = err
	close(c.ended)
}

// SpawnJob polls a Poller as Spawn polls its function, calls Done once,
// refuses a Job spawned before, and spawns without allocating.
func TestExecutorSpawnJob(t *testing.T) {
	e := asyncio.NewExecutor(&asyncio.ExecutorOptions{Workers: 1})
	defer e.Close()
	c := &countdown{n: 3, ended: make(chan struct{})}
	task, err := e.SpawnJob(&c.job, c)
	if err != nil || task == nil {
		t.Fatalf("SpawnJob = %v, %v", task, err)
	}
	<-c.ended
	if c.polls != 3 || c.dones != 1 || c.err != nil {
		t.Fatalf("%d polls, %d done calls (%v); want 3 polls and one done with nil", c.polls, c.dones, c.err)
	}
	task.Notify() // done: nothing more
	if _, err := e.SpawnJob(&c.job, c); err == nil {
		t.Fatal("a Job spawned twice: no error")
	}
	if _, err := e.SpawnJob(new(asyncio.Job), nil); err == nil {
		t.Fatal("SpawnJob of a nil Poller: no error")
	}

	cs := make([]countdown, 101)
	i := 0
	allocs := testing.AllocsPerRun(100, func() {
		c := &cs[i]
		i++
		c.n, c.ended = 1, make(chan struct{})
		if _, err := e.SpawnJob(&c.job, c); err != nil {
			t.Fatal(err)
		}
		<-c.ended
	})
	// The channel the test waits on is the one allocation.
	if allocs > 1 {
		t.Fatalf("SpawnJob: %v allocations with the test's channel, want 1", allocs)
	}
}

// Close ends a Job that had not finished with ErrExecutorClosed, and
// SpawnJob fails afterwards.
func TestExecutorCloseEndsJobs(t *testing.T) {
	e := asyncio.NewExecutor(nil)
	c := &countdown{n: 0, ended: make(chan struct{})} // never Ready: it notifies itself
	idle := &idleJob{ended: make(chan error, 1)}
	if _, err := e.SpawnJob(&idle.job, idle); err != nil {
		t.Fatal(err)
	}
	e.Close()
	if err := <-idle.ended; !errors.Is(err, asyncio.ErrExecutorClosed) {
		t.Fatalf("Done(%v) after Close; want ErrExecutorClosed", err)
	}
	if _, err := e.SpawnJob(&c.job, c); !errors.Is(err, asyncio.ErrExecutorClosed) {
		t.Fatalf("SpawnJob after Close: %v; want ErrExecutorClosed", err)
	}
}

// idleJob is never Ready and never notified.
type idleJob struct {
	job   asyncio.Job
	ended chan error
}

func (j *idleJob) Poll(*asyncio.Task) (asyncio.Async[struct{}], error) {
	return asyncio.NotReady[struct{}](), nil
}

func (j *idleJob) Done(err error) { j.ended <- err }

// TestExecutorPanicChild panics in a poll; it runs only inside
// TestExecutorPanicEndsTheProgram.
func TestExecutorPanicChild(t *testing.T) {
	if os.Getenv("POLLWS_EXECUTOR_PANIC") == "" {
		t.Skip("runs only as a child of TestExecutorPanicEndsTheProgram")
	}
	e := asyncio.NewExecutor(nil)
	e.Spawn(func(*asyncio.Task) (asyncio.Async[struct{}], error) {
		panic("poll went wrong")
	}, nil)
	time.Sleep(time.Minute) // the panic ends the program first
}

func TestExecutorPanicEndsTheProgram(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestExecutorPanicChild$")
	cmd.Env = append(os.Environ(), "POLLWS_EXECUTOR_PANIC=1")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "panic: poll went wrong") || !strings.Contains(string(out), "TestExecutorPanicChild") {
		t.Fatalf("a panic in a poll: %v; want the program to end with the panic and the poll's stack; got:\n%s", err, out)
	}
}
