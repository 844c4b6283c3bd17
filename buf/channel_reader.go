package buf

import (
	"context"
	"fmt"
	"io"

	"github.com/pollws/pollws/asyncio"
)

// Frame is one frame of a [Channel] as a [Reader] reads it.
type Frame struct {
	Writer uint64 // the id of the Writer that sent it ([Writer.ID])
	Pos    uint64 // the byte position of Data[0] since the channel began
	Data   []byte // the frame's bytes
}

// Reader reads the frames of a [Channel] in order, at its own pace. Make
// one with [Channel.NewWeakReader] or [Channel.NewStrongReader].
//
// A Reader is safe for use by multiple goroutines, but it keeps one task
// and lends one frame at a time: use it from one goroutine at a time.
// Close may be called from any goroutine.
type Reader struct {
	c      *Channel
	strong bool

	// Guarded by c.mu.
	seq    uint64 // next frame to read
	off    int    // bytes of frame seq already read by PollRead
	pos    uint64 // byte position of the next byte to read
	view   *frame // frame lent by the last PollFrame
	at     int    // index+1 in c.strong, 0 when not there
	closed bool
	eof    bool
	w      waiter

	wake []*asyncio.Task // scratch for notifications, owned by the reading goroutine
}

// PollFrame takes the next frame without copying it: the Frame's Data is
// lent to r, shared with every other reader of the frame, and valid until
// r's next read (PollFrame, PollRead, or their blocking forms), even if
// writers overtake r or the channel is terminated meanwhile. Data must not
// be modified. If a
// [Reader.PollRead] stopped inside a frame, PollFrame returns the rest of
// it.
//
// It answers NotReady when r has read every readable frame, having
// arranged for t to be notified when a frame arrives or the channel ends.
// It fails with a [*ReaderBehindError] when r is weak and writers
// overtook it (the next call goes on at the oldest frame left); with
// [io.EOF] when the channel is draining and r has read every frame; with
// [ErrClosed] after r's Close; and with [ErrAborted] after
// [Channel.Terminate].
func (r *Reader) PollFrame(t *asyncio.Task) (asyncio.Async[Frame], error) {
	return r.pollFrame(t, nil, false)
}

// NextFrame takes the next frame without copying it, like
// [Reader.PollFrame], waiting until there is one. When ctx ends first it
// returns ctx's cause.
func (r *Reader) NextFrame(ctx context.Context) (Frame, error) {
	return asyncio.BlockOn(ctx, r.PollFrame)
}

// ReadFrame takes the next frame like [Reader.NextFrame], but copies it:
// Frame.Data is append(dst[:0], frame...), and belongs to the caller. Pass
// the Data of the last ReadFrame as dst to reuse its memory.
func (r *Reader) ReadFrame(ctx context.Context, dst []byte) (Frame, error) {
	return asyncio.BlockOn(ctx, func(t *asyncio.Task) (asyncio.Async[Frame], error) {
		return r.pollFrame(t, dst, true)
	})
}

// PollRead reads the frames' bytes as one stream: it copies into p from
// the next frames, as many bytes as are readable and fit, and answers
// Ready(n). An empty p is Ready(0). Otherwise it answers and fails like
// [Reader.PollFrame].
func (r *Reader) PollRead(t *asyncio.Task, p []byte) (asyncio.Async[int], error) {
	c := r.c
	c.mu.Lock()
	if err := r.begin(); err != nil {
		r.unlock()
		return asyncio.NotReady[int](), err
	}
	n := 0
	for n < len(p) {
		f := r.next()
		if f == nil {
			break
		}
		k := copy(p[n:], f.buf[r.off:f.n])
		n += k
		r.off += k
		r.pos += uint64(k)
		if r.off == f.n {
			r.advance()
		}
	}
	if n == 0 && len(p) > 0 {
		err := r.wait(t)
		r.unlock()
		return asyncio.NotReady[int](), err
	}
	c.readers.remove(&r.w)
	r.unlock()
	return asyncio.Ready(n), nil
}

// Read reads bytes like [Reader.PollRead], waiting until there are some.
// When ctx ends first it returns ctx's cause.
func (r *Reader) Read(ctx context.Context, p []byte) (int, error) {
	return asyncio.BlockOn(ctx, func(t *asyncio.Task) (asyncio.Async[int], error) {
		return r.PollRead(t, p)
	})
}

// Pos returns the byte position of the next byte r reads, counted since
// the channel began.
func (r *Reader) Pos() uint64 {
	r.c.mu.Lock()
	defer r.c.mu.Unlock()
	return r.pos
}

// Close closes r: its later reads fail with [ErrClosed], one that is
// waiting returns, and a strong reader stops holding writers back. A frame
// lent by [Reader.PollFrame] stays valid until r's next read. Close always
// returns nil; closing again does nothing.
func (r *Reader) Close() error {
	c := r.c
	c.mu.Lock()
	if r.closed {
		c.mu.Unlock()
		return nil
	}
	r.closed = true
	// A frame lent to r stays lent: Close may come from another goroutine
	// while r's own is still reading it. r's next call ends the lend.
	var wake []*asyncio.Task
	if own := c.readers.remove(&r.w); own != nil {
		wake = append(wake, own)
	}
	if r.at > 0 {
		i, last := r.at-1, len(c.strong)-1
		c.strong[i] = c.strong[last]
		c.strong[i].at = i + 1
		c.strong[last] = nil
		c.strong = c.strong[:last]
		r.at = 0
		if c.leaveMin(r.seq) {
			wake = c.writers.take(wake)
		}
	}
	c.mu.Unlock()
	notify(wake)
	return nil
}

// String describes r, for %v.
func (r *Reader) String() string {
	r.c.mu.Lock()
	defer r.c.mu.Unlock()
	kind := "weak"
	if r.strong {
		kind = "strong"
	}
	state := "open"
	switch {
	case r.c.terminated:
		state = "aborted"
	case r.closed:
		state = "closed"
	case r.eof:
		state = "at end"
	}
	return fmt.Sprintf("buf.Reader(%s, %s, at byte %d)", kind, state, r.pos)
}

func (r *Reader) pollFrame(t *asyncio.Task, dst []byte, copyOut bool) (asyncio.Async[Frame], error) {
	c := r.c
	c.mu.Lock()
	if err := r.begin(); err != nil {
		r.unlock()
		return asyncio.NotReady[Frame](), err
	}
	f := r.next()
	if f == nil {
		err := r.wait(t)
		r.unlock()
		return asyncio.NotReady[Frame](), err
	}
	fr := Frame{Writer: f.writer, Pos: f.pos + uint64(r.off)}
	if copyOut {
		fr.Data = append(dst[:0], f.buf[r.off:f.n]...)
	} else {
		fr.Data = f.buf[r.off:f.n:f.n]
		f.refs++
		r.view = f
	}
	r.pos = f.pos + uint64(f.n)
	r.advance()
	c.readers.remove(&r.w)
	r.unlock()
	return asyncio.Ready(fr), nil
}

// unlock releases c.mu and then notifies the tasks r collected while
// holding it. Every read unlocks through it, whatever its answer: a read
// that answers NotReady or fails may still have made room for writers.
func (r *Reader) unlock() {
	r.c.mu.Unlock()
	r.wake = notify(r.wake)
}

// begin ends the previous lend and checks that r may read, with c.mu held.
// A weak reader that was overtaken moves to the oldest frame left. Frames
// given up are skipped.
func (r *Reader) begin() error {
	c := r.c
	if r.view != nil {
		r.view.unref()
		r.view = nil
	}
	switch {
	case c.terminated:
		return ErrAborted
	case r.closed:
		return ErrClosed
	case r.seq < c.lo: // only weak readers fall behind lo
		resume := c.posOf(c.lo)
		lost := resume - r.pos
		r.seq, r.off, r.pos = c.lo, 0, resume
		if lost > 0 { // else only frames given up were evicted
			return &ReaderBehindError{Lost: lost, Pos: resume}
		}
	}
	r.next()
	return nil
}

// next returns the frame r reads next, skipping frames given up, or nil
// when r has read every readable frame. c.mu is held.
func (r *Reader) next() *frame {
	c := r.c
	for r.seq < c.pub {
		if f := c.slot(r.seq); f.state != frameVoid {
			return f
		}
		r.advance()
	}
	return nil
}

// advance moves r past frame r.seq and any readable frames given up after
// it, with c.mu held. When that lets writers make room, it adds their
// tasks to r.wake.
func (r *Reader) advance() {
	c := r.c
	for {
		if r.strong && c.leaveMin(r.seq) && c.writers.len() > 0 {
			r.wake = c.writers.take(r.wake)
		}
		r.seq++
		r.off = 0
		if r.seq >= c.pub || c.slot(r.seq).state != frameVoid {
			return
		}
	}
}

// wait answers a read that found nothing, with c.mu held: io.EOF when the
// channel is draining and r has read every frame, else it registers t.
func (r *Reader) wait(t *asyncio.Task) error {
	c := r.c
	if c.draining && r.seq == c.hi {
		c.readers.remove(&r.w)
		r.eof = true
		return io.EOF
	}
	c.readers.add(&r.w, t)
	return nil
}
