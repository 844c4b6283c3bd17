package asyncio

import (
	"context"
	"fmt"
	"io"
	"sync"
)

// A parker is a Task whose notification wakes one parked goroutine.
//
// Parkers are pooled: a writer may keep a Task after the call that used it
// returned and notify it later; that notification then reaches another
// call as a spurious wake-up, which every poll loop here tolerates. A
// parker holds no channel, so one made inside a testing/synctest bubble may
// be used outside it, and waiting on its sync.Cond is durably blocking
// inside a bubble.
type parker struct {
	mu    sync.Mutex
	cond  sync.Cond
	woken bool
	task  Task
	stop  func() bool // stops the context.AfterFunc that wakes a parked call
}

var parkers = sync.Pool{New: func() any {
	p := new(parker)
	p.cond.L = &p.mu
	p.task.notify = p.notify
	return p
}}

func (p *parker) notify() {
	p.mu.Lock()
	p.woken = true
	p.mu.Unlock()
	p.cond.Signal()
}

// park blocks until the task is notified or ctx ends. A notification that
// came during the last poll is already recorded, so it is never lost. The
// first park of a call arranges for ctx's end to wake it.
func (p *parker) park(ctx context.Context) error {
	if p.stop == nil && ctx.Done() != nil {
		p.stop = context.AfterFunc(ctx, p.notify)
	}
	p.mu.Lock()
	for !p.woken && ctx.Err() == nil {
		p.cond.Wait()
	}
	p.woken = false
	p.mu.Unlock()
	return context.Cause(ctx)
}

// getParker returns a parker from the pool. It may carry a notification
// meant for an earlier call; that costs the new call one spurious poll,
// cheaper than taking the lock to clear it on every call.
func getParker() *parker { return parkers.Get().(*parker) }

func putParker(p *parker) {
	if p.stop != nil {
		p.stop()
		p.stop = nil
	}
	parkers.Put(p)
}

// BlockOn polls until the poll is ready, fails, or ctx ends, parking the
// goroutine between notifications of the task it passes to poll: there is
// no busy loop and no timer. If ctx is already done it returns at once
// without polling. When ctx ends first it returns ctx's cause.
//
// The first poll is passed the nil Task, so that a poll that completes at
// once, the common case, costs no parker. If it answers NotReady, BlockOn
// polls again at once with a Task of its own, since a nil task registers
// nothing.
func BlockOn[T any](ctx context.Context, poll func(*Task) (Async[T], error)) (T, error) {
	var zero T
	if err := context.Cause(ctx); err != nil {
		return zero, err
	}
	if r, err := poll(nil); err != nil {
		return zero, err
	} else if r.Ready {
		return r.Value, nil
	}
	p := getParker()
	defer putParker(p)
	for {
		r, err := poll(&p.task)
		if err != nil {
			return zero, err
		}
		if r.Ready {
			return r.Value, nil
		}
		if err := p.park(ctx); err != nil {
			return zero, err
		}
	}
}

// Read reads up to len(p) bytes from r into p, parking between
// notifications until r answers Ready, fails, or ctx ends: it is the
// blocking io.Reader form of [AsyncReader.PollRead]. It returns n > 0 with
// a nil error, or 0 and an error: [io.EOF] at the end of the stream, ctx's
// cause when ctx ends first, [io.ErrNoProgress] if r answers Ready(0) to a
// non-empty p. An empty p reads nothing and returns 0 and r's answer.
//
// Like [BlockOn] it polls first with the nil Task, so a read of bytes that
// are already there costs no parker and no allocation.
func Read(ctx context.Context, r AsyncReader, p []byte) (int, error) {
	return BlockOn(ctx, func(t *Task) (Async[int], error) { return pollRead(r, t, p) })
}

// pollRead is one PollRead that turns an answer breaking rule K into an
// error, so that Read neither loops forever nor hands back a count beyond
// p.
func pollRead(r AsyncReader, t *Task, p []byte) (Async[int], error) {
	res, err := r.PollRead(t, p)
	switch {
	case err != nil:
		return Async[int]{}, err
	case !res.Ready:
		return res, nil
	case res.Value == 0 && len(p) > 0:
		return Async[int]{}, io.ErrNoProgress
	case res.Value < 0 || res.Value > len(p):
		return Async[int]{}, fmt.Errorf("asyncio: PollRead answered Ready(%d) for a %d-byte buffer", res.Value, len(p))
	}
	return res, nil
}

// WriteAll writes all of p to w, parking between notifications. It returns
// [ErrWriteZero] if w answers Ready(0) to a non-empty write, and when ctx
// ends first an error that wraps ctx's cause and says how many bytes were
// taken. Bytes taken are in w's buffer; call [Flush] to push them out.
func WriteAll(ctx context.Context, w AsyncWriter, p []byte) error {
	if len(p) == 0 {
		return nil
	}
	if err := context.Cause(ctx); err != nil {
		return fmt.Errorf("asyncio: write: 0 of %d bytes taken: %w", len(p), err)
	}
	pk := getParker()
	defer putParker(pk)
	for n := 0; n < len(p); {
		r, err := w.PollWrite(&pk.task, p[n:])
		switch {
		case err != nil:
			return err
		case !r.Ready:
			if err := pk.park(ctx); err != nil {
				return fmt.Errorf("asyncio: write: %d of %d bytes taken: %w", n, len(p), err)
			}
		case r.Value == 0:
			return ErrWriteZero
		default:
			n += r.Value
		}
	}
	return nil
}

// Flush drives w.PollFlush to completion, parking between notifications.
// When ctx ends first it returns ctx's cause.
func Flush(ctx context.Context, w AsyncWriter) error {
	return finish(ctx, w, false)
}

// Shutdown drives w.Shutdown to completion, parking between notifications:
// every accepted byte is flushed, then w sends its end. When ctx ends first
// it returns ctx's cause and w is left mid-shutdown; package shutdown's
// Close also closes hard and reports what was not delivered.
func Shutdown(ctx context.Context, w AsyncWriter) error {
	return finish(ctx, w, true)
}

// finish is BlockOn for PollFlush or Shutdown, without the method value
// that would cost an allocation per call; like BlockOn, it polls first
// without a task.
func finish(ctx context.Context, w AsyncWriter, shutdown bool) error {
	if err := context.Cause(ctx); err != nil {
		return err
	}
	if r, err := finishPoll(w, shutdown, nil); err != nil || r.Ready {
		return err
	}
	p := getParker()
	defer putParker(p)
	for {
		if r, err := finishPoll(w, shutdown, &p.task); err != nil || r.Ready {
			return err
		}
		if err := p.park(ctx); err != nil {
			return err
		}
	}
}

func finishPoll(w AsyncWriter, shutdown bool, t *Task) (Async[struct{}], error) {
	if shutdown {
		return w.Shutdown(t)
	}
	return w.PollFlush(t)
}
