package buf

import (
	"context"
	"fmt"

	"github.com/pollws/pollws/asyncio"
)

// copyUnderLock is the largest frame PollWrite copies while holding the
// channel's lock, saving a second lock round; larger frames are copied
// between reserving and committing.
const copyUnderLock = 4 << 10

// Writer appends frames to a [Channel]. Make one with
// [Channel.NewWeakWriter] or [Channel.NewStrongWriter].
//
// A Writer is safe for use by multiple goroutines, but it keeps one task
// and at most one reserved slice: use it from one goroutine at a time.
// Close may be called from any goroutine.
type Writer struct {
	c      *Channel
	id     uint64
	strong bool

	// Guarded by c.mu.
	hold   uint64 // strong writers: readers see no frame from hold on
	res    *frame // the reserved frame, until Commit
	resSeq uint64
	closed bool
	w      waiter

	wake []*asyncio.Task // scratch for notifications, owned by the writing goroutine
}

// ID returns w's id, which every frame it sends carries ([Frame].Writer).
// Ids are unique within a channel and start at 1.
func (w *Writer) ID() uint64 { return w.id }

// PollWrite sends p as one frame, all or nothing. It answers Ready(len(p))
// when the frame is in the channel. When it does not fit, it answers
// NotReady with [Park] back-pressure, having arranged for t to be notified
// when there may be room, and Ready(0) with [Drop]. An empty p is Ready(0)
// at once and sends nothing.
//
// It fails with [ErrTooLarge] when p is larger than the channel,
// [ErrDraining] after [Channel.Drain], [ErrClosed] after w's Close and
// [ErrAborted] after [Channel.Terminate]. It panics while w has a slice
// reserved.
func (w *Writer) PollWrite(t *asyncio.Task, p []byte) (asyncio.Async[int], error) {
	c := w.c
	c.mu.Lock()
	if len(p) == 0 {
		err := w.err()
		c.mu.Unlock()
		if err != nil {
			return asyncio.NotReady[int](), err
		}
		return asyncio.Ready(0), nil
	}
	f, r, err := w.reserve(t, len(p))
	if f == nil {
		w.unlock()
		return r, err
	}
	if len(p) > copyUnderLock {
		w.unlock()
		copy(f.buf, p) // the reservation is w's alone
		c.mu.Lock()
	} else {
		copy(f.buf, p)
	}
	err = w.commit(f)
	w.unlock()
	if err != nil {
		return asyncio.NotReady[int](), err
	}
	return asyncio.Ready(len(p)), nil
}

// Write sends p as one frame like [Writer.PollWrite], waiting for room
// with [Park] back-pressure. It returns len(p), or 0 when the frame was
// dropped ([Drop]) or p is empty; or an error like PollWrite, or ctx's
// cause when ctx ends first.
func (w *Writer) Write(ctx context.Context, p []byte) (int, error) {
	return asyncio.BlockOn(ctx, func(t *asyncio.Task) (asyncio.Async[int], error) {
		return w.PollWrite(t, p)
	})
}

// PollReserveSlice reserves the channel's next frame, n bytes long, for w
// to fill in place, and answers Ready with its bytes, zeroed. Reserving is
// atomic: the frame keeps its place in the order, and no other writer's
// frame interleaves with it. Readers see it, and every frame reserved
// after it, once w calls [Writer.Commit]; until then the frame counts
// against the channel's capacity, so a writer that never commits stalls
// the channel (until it closes, which gives the frame up).
//
// When the frame does not fit, PollReserveSlice answers NotReady with
// [Park] back-pressure, having arranged for t to be notified, and Ready
// with an empty slice with [Drop]: then nothing is reserved. It fails like
// [Writer.PollWrite]. It panics if n is less than 1 or w already has a
// slice reserved.
func (w *Writer) PollReserveSlice(t *asyncio.Task, n int) (asyncio.Async[[]byte], error) {
	if n < 1 {
		panic(fmt.Sprintf("buf: PollReserveSlice of %d bytes", n))
	}
	w.c.mu.Lock()
	f, r, err := w.reserve(t, n)
	w.unlock()
	if f == nil {
		if r.Ready {
			return asyncio.Ready([]byte{}), nil
		}
		return asyncio.NotReady[[]byte](), err
	}
	p := f.buf[:n:n]
	clear(p)
	return asyncio.Ready(p), nil
}

// ReserveSlice reserves a frame like [Writer.PollReserveSlice], waiting
// for room with [Park] back-pressure. It returns an empty slice when the
// frame was dropped ([Drop]), or ctx's cause when ctx ends first.
func (w *Writer) ReserveSlice(ctx context.Context, n int) ([]byte, error) {
	return asyncio.BlockOn(ctx, func(t *asyncio.Task) (asyncio.Async[[]byte], error) {
		return w.PollReserveSlice(t, n)
	})
}

// Commit hands the reserved frame to readers; w must not touch its bytes
// afterwards. It fails with [ErrAborted] after [Channel.Terminate] and
// with [ErrClosed] when w was closed meanwhile (the frame was given up).
// It panics if w has no slice reserved.
func (w *Writer) Commit() error {
	c := w.c
	c.mu.Lock()
	f := w.res
	if f == nil {
		var err error
		switch {
		case c.terminated:
			err = ErrAborted
		case w.closed:
			err = ErrClosed
		}
		c.mu.Unlock()
		if err == nil {
			panic("buf: Commit without a reserved slice")
		}
		return err
	}
	err := w.commit(f)
	w.unlock()
	return err
}

// Close closes w: its later operations fail with [ErrClosed], and one of
// its writes that is waiting returns. A slice w reserved and did not
// commit is given up: readers skip it. A strong writer stops holding
// readers back. Close always returns nil; closing again does nothing.
func (w *Writer) Close() error {
	c := w.c
	c.mu.Lock()
	if w.closed {
		c.mu.Unlock()
		return nil
	}
	w.closed = true
	var wake []*asyncio.Task
	if own := c.writers.remove(&w.w); own != nil {
		wake = append(wake, own)
	}
	if f := w.res; f != nil {
		// The frame is given up, but w's reference stays: another
		// goroutine may still be filling it, so its storage must not be
		// reused. A PollWrite drops the reference when it ends; a slice
		// from PollReserveSlice is left to the garbage collector.
		w.res = nil
		if !c.terminated {
			f.state = frameVoid
			c.used -= f.n
			f.n = 0
		}
	}
	for i, h := range c.holding {
		if h == w {
			c.holding = append(c.holding[:i], c.holding[i+1:]...)
			break
		}
	}
	if !c.terminated {
		c.publish()
		wake = c.readers.take(wake)
		wake = c.writers.take(wake)
	}
	c.mu.Unlock()
	notify(wake)
	return nil
}

// String describes w, for %v.
func (w *Writer) String() string {
	w.c.mu.Lock()
	defer w.c.mu.Unlock()
	kind := "weak"
	if w.strong {
		kind = "strong"
	}
	state := "open"
	switch {
	case w.c.terminated:
		state = "aborted"
	case w.closed:
		state = "closed"
	case w.res != nil:
		state = fmt.Sprintf("%d-byte slice reserved", w.res.n)
	}
	return fmt.Sprintf("buf.Writer(%s, id %d, %s)", kind, w.id, state)
}

// unlock releases c.mu and then notifies the tasks w collected while
// holding it. Every write unlocks through it, whatever its answer.
func (w *Writer) unlock() {
	w.c.mu.Unlock()
	w.wake = notify(w.wake)
}

// err returns why w cannot reserve a frame now, with c.mu held.
func (w *Writer) err() error {
	switch {
	case w.c.terminated:
		return ErrAborted
	case w.closed:
		return ErrClosed
	case w.c.draining:
		return ErrDraining
	}
	return nil
}

// reserve reserves a frame of n >= 1 bytes, with c.mu held. It returns
// the frame, or the answer when there is none: NotReady having registered
// t, Ready(0) when dropped, or an error. Tasks to notify once c.mu is
// released are added to w.wake.
func (w *Writer) reserve(t *asyncio.Task, n int) (*frame, asyncio.Async[int], error) {
	c := w.c
	if err := w.err(); err != nil {
		return nil, asyncio.NotReady[int](), err
	}
	if w.res != nil {
		panic("buf: Writer used while it has a reserved slice")
	}
	if n > c.size {
		return nil, asyncio.NotReady[int](), ErrTooLarge
	}
	if !c.makeRoom(n) {
		if c.bp == Drop {
			c.writers.remove(&w.w)
			return nil, asyncio.Ready(0), nil
		}
		c.writers.add(&w.w, t)
		return nil, asyncio.NotReady[int](), nil
	}
	c.writers.remove(&w.w)
	f := getFrame(n)
	f.writer = w.id
	f.refs = 2 // the channel's and w's
	w.res, w.resSeq = f, c.push(f)
	if w.strong {
		// The frames between w's last one and this one need wait no more.
		w.hold = w.resSeq
		w.wake = c.publishAndWake(w.wake)
	}
	return f, asyncio.Ready(n), nil
}

// commit hands f, w's reserved frame, to readers, with c.mu held.
func (w *Writer) commit(f *frame) error {
	c := w.c
	if w.res != f {
		f.unref() // Close gave the frame up
		return ErrClosed
	}
	w.res = nil
	if c.terminated {
		f.unref()
		return ErrAborted
	}
	f.state = frameCommitted
	f.unref()
	if w.strong {
		w.hold = w.resSeq + 1
	}
	w.wake = c.publishAndWake(w.wake)
	return nil
}
