package asyncio

import (
	"fmt"
	"io"
	"sync"

	"github.com/pollws/pollws/internal/ring"
)

// Pipe returns an in-memory pipe whose writer holds at most capacity bytes
// that the reader has not taken: the reference [AsyncWriter], and the
// simplest one to test against. It panics if capacity is less than 1.
//
// PollWrite copies into the pipe's buffer and answers NotReady when it is
// full. PollFlush is Ready when the reader has taken every byte. Shutdown
// flushes, then gives the reader io.EOF. Closing the reader fails the
// writer with io.ErrClosedPipe and notifies a task waiting on it.
//
// The writer is meant for one goroutine at a time (like any io.Writer);
// the reader may be used from another; Close and Task notifications are
// safe from any goroutine.
func Pipe(capacity int) (AsyncWriter, io.ReadCloser) {
	if capacity < 1 {
		panic(fmt.Sprintf("asyncio: Pipe capacity %d, must be at least 1", capacity))
	}
	p := &pipe{buf: ring.New(make([]byte, capacity))}
	p.readable.L = &p.mu
	return &PipeWriter{p}, &PipeReader{p}
}

type pipeState uint8

const (
	pipeOpen pipeState = iota
	pipeShuttingDown
	pipeClosed // Shutdown completed: the reader sees io.EOF once drained
)

type pipe struct {
	mu       sync.Mutex
	readable sync.Cond // signalled when bytes arrive, the writer closes, or the reader closes
	buf      ring.Ring
	state    pipeState
	err      error // sticky writer error; set when the reader closes
	rclosed  bool
	waiter   *Task // the writer's latest task
}

// PipeWriter is the write half of a [Pipe].
type PipeWriter struct{ p *pipe }

// PipeReader is the read half of a [Pipe].
type PipeReader struct{ p *pipe }

var (
	_ AsyncWriter = (*PipeWriter)(nil)
	_ BufWriter   = (*PipeWriter)(nil)
)

// Write is [TryWrite]: it never blocks.
func (w *PipeWriter) Write(p []byte) (int, error) { return TryWrite(w, p) }

// PollWrite copies as much of p as fits into the pipe's buffer.
func (w *PipeWriter) PollWrite(t *Task, b []byte) (Async[int], error) {
	p := w.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if r, done, err := p.admit(t, len(b)); done {
		return r, err
	}
	n := p.buf.Write(b)
	p.readable.Signal()
	return Ready(n), nil
}

// WriteBuf copies as much of b as fits into the pipe's buffer.
func (w *PipeWriter) WriteBuf(t *Task, b Buf) (Async[int], error) {
	p := w.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if r, done, err := p.admit(t, b.Remaining()); done {
		return r, err
	}
	n := 0
	for b.Remaining() > 0 && p.buf.Free() > 0 {
		c := p.buf.Write(b.Chunk())
		b.Advance(c)
		n += c
	}
	p.readable.Signal()
	return Ready(n), nil
}

// admit answers a write of n bytes that cannot copy anything: the sticky
// error, Ready(0) for an empty write, or NotReady (registering t) when the
// buffer is full. done is false when the write may go ahead.
func (p *pipe) admit(t *Task, n int) (r Async[int], done bool, err error) {
	switch {
	case p.writable() != nil:
		return NotReady[int](), true, p.writable()
	case n == 0:
		return Ready(0), true, nil
	case p.buf.Free() == 0:
		p.waiter = t
		return NotReady[int](), true, nil
	}
	return r, false, nil
}

func (p *pipe) writable() error {
	if p.err != nil {
		return p.err
	}
	if p.state != pipeOpen {
		return ErrShutdown
	}
	return nil
}

// PollFlush is Ready when the reader has taken every byte written.
func (w *PipeWriter) PollFlush(t *Task) (Async[struct{}], error) {
	p := w.p
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.flush(t)
}

func (p *pipe) flush(t *Task) (Async[struct{}], error) {
	if p.err != nil {
		return NotReady[struct{}](), p.err
	}
	if p.buf.Len() > 0 {
		p.waiter = t
		return NotReady[struct{}](), nil
	}
	return Ready(struct{}{}), nil
}

// Shutdown refuses further writes, waits until the reader has taken every
// byte, then gives the reader io.EOF.
func (w *PipeWriter) Shutdown(t *Task) (Async[struct{}], error) {
	p := w.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state == pipeClosed {
		return Ready(struct{}{}), nil
	}
	if p.state == pipeOpen && p.err == nil {
		p.state = pipeShuttingDown
	}
	if r, err := p.flush(t); err != nil || !r.Ready {
		return r, err
	}
	p.state = pipeClosed
	p.readable.Broadcast()
	return Ready(struct{}{}), nil
}

// Buffered returns how many written bytes the reader has not taken yet.
func (w *PipeWriter) Buffered() int {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.buf.Len()
}

// Read blocks until bytes are available, the writer has shut down (io.EOF
// once every byte was read), or the reader is closed (io.ErrClosedPipe).
func (r *PipeReader) Read(b []byte) (int, error) {
	p := r.p
	p.mu.Lock()
	for {
		switch {
		case p.rclosed:
			p.mu.Unlock()
			return 0, io.ErrClosedPipe
		case len(b) == 0:
			p.mu.Unlock()
			return 0, nil
		case p.buf.Len() > 0:
			n := p.buf.Read(b)
			t := p.takeWaiter()
			p.mu.Unlock()
			t.Notify()
			return n, nil
		case p.state == pipeClosed:
			p.mu.Unlock()
			return 0, io.EOF
		}
		p.readable.Wait()
	}
}

// Close closes the reader: a blocked Read returns, and the writer fails
// with io.ErrClosedPipe (its waiting task is notified). Bytes not yet read
// are dropped. Close is safe to call more than once.
func (r *PipeReader) Close() error {
	p := r.p
	p.mu.Lock()
	p.rclosed = true
	if p.err == nil && p.state != pipeClosed {
		p.err = io.ErrClosedPipe
	}
	p.buf.Discard(p.buf.Len())
	t := p.takeWaiter()
	p.readable.Broadcast()
	p.mu.Unlock()
	t.Notify()
	return nil
}

func (p *pipe) takeWaiter() *Task {
	t := p.waiter
	p.waiter = nil
	return t
}
