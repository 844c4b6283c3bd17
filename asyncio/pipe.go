package asyncio

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/pollws/pollws/internal/ring"
)

// Pipe returns an in-memory pipe whose writer holds at most capacity bytes
// that the reader has not taken: the reference [AsyncWriter] and
// [AsyncReader], and the simplest ones to test against. It panics if
// capacity is less than 1.
//
// PollWrite copies into the pipe's buffer and answers NotReady when it is
// full. PollFlush is Ready when the reader has taken every byte. Shutdown
// flushes, then gives the reader io.EOF. PollRead takes bytes from the
// buffer and answers NotReady when it is empty. Each half keeps a
// [WaitSet]: every task waiting on the writer is notified when the reader
// takes bytes, and every task waiting on the reader when bytes or the end
// arrive. Closing the reader fails the writer with io.ErrClosedPipe and
// notifies every task waiting on it.
func Pipe(capacity int) (*PipeWriter, *PipeReader) {
	if capacity < 1 {
		panic(fmt.Sprintf("asyncio: Pipe capacity %d, must be at least 1", capacity))
	}
	p := &pipe{buf: ring.New(make([]byte, capacity))}
	return &PipeWriter{p}, &PipeReader{p}
}

type pipeState uint8

const (
	pipeOpen         pipeState = iota
	pipeShuttingDown           // Shutdown began: no more writes, the reader drains
	pipeClosed                 // the writer's end: the reader sees rerr once it took every byte
)

// pipe is the state both halves share, guarded by mu. Tasks are taken from
// the wait sets under mu and notified after it is released.
type pipe struct {
	mu      sync.Mutex
	buf     ring.Ring
	state   pipeState
	werr    error // sticky writer error: io.ErrClosedPipe once the reader closed
	rerr    error // what the reader gets after the bytes once state is pipeClosed
	rclosed bool  // the reader closed: reads fail with io.ErrClosedPipe
	writers WaitSet
	readers WaitSet
}

// PipeWriter is the write half of a [Pipe]. It is safe for use by multiple
// goroutines; the bytes of one PollWrite stay together, and writes from
// several goroutines interleave in the order they took the pipe's lock.
type PipeWriter struct{ p *pipe }

// PipeReader is the read half of a [Pipe]: an io.ReadCloser and an
// [AsyncReader]. It is safe for use by multiple goroutines, which then
// share one stream of bytes.
type PipeReader struct{ p *pipe }

var (
	_ AsyncWriter   = (*PipeWriter)(nil)
	_ BufWriter     = (*PipeWriter)(nil)
	_ AsyncReader   = (*PipeReader)(nil)
	_ io.ReadCloser = (*PipeReader)(nil)
)

// Write is [TryWrite]: it never blocks.
func (w *PipeWriter) Write(p []byte) (int, error) { return TryWrite(w, p) }

// PollWrite copies as much of b as fits into the pipe's buffer.
func (w *PipeWriter) PollWrite(t *Task, b []byte) (Async[int], error) {
	p := w.p
	var wake Wakeups
	p.mu.Lock()
	r, done, err := p.admit(t, len(b))
	if !done {
		r = Ready(p.buf.Write(b))
		p.readers.TakeInto(&wake)
	}
	p.mu.Unlock()
	wake.Notify()
	return r, err
}

// WriteBuf copies as much of b as fits into the pipe's buffer.
func (w *PipeWriter) WriteBuf(t *Task, b Buf) (Async[int], error) {
	p := w.p
	var wake Wakeups
	p.mu.Lock()
	r, done, err := p.admit(t, b.Remaining())
	if !done {
		n := 0
		for b.Remaining() > 0 && p.buf.Free() > 0 {
			c := p.buf.Write(b.Chunk())
			b.Advance(c)
			n += c
		}
		r = Ready(n)
		p.readers.TakeInto(&wake)
	}
	p.mu.Unlock()
	wake.Notify()
	return r, err
}

// admit answers a write of n bytes that cannot copy anything: the sticky
// error, Ready(0) for an empty write, or NotReady (t waits) when the
// buffer is full. done is false when the write may go ahead.
func (p *pipe) admit(t *Task, n int) (r Async[int], done bool, err error) {
	switch {
	case p.writable() != nil:
		return NotReady[int](), true, p.writable()
	case n == 0:
		return Ready(0), true, nil
	case p.buf.Free() == 0:
		p.writers.Add(t)
		return NotReady[int](), true, nil
	}
	return r, false, nil
}

func (p *pipe) writable() error {
	if p.werr != nil {
		return p.werr
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
	if p.werr != nil {
		return NotReady[struct{}](), p.werr
	}
	if p.buf.Len() > 0 {
		p.writers.Add(t)
		return NotReady[struct{}](), nil
	}
	return Ready(struct{}{}), nil
}

// Shutdown refuses further writes, waits until the reader has taken every
// byte, then gives the reader io.EOF.
func (w *PipeWriter) Shutdown(t *Task) (Async[struct{}], error) {
	p := w.p
	var wake Wakeups
	p.mu.Lock()
	r, err := p.shutdown(t, &wake)
	p.mu.Unlock()
	wake.Notify()
	return r, err
}

func (p *pipe) shutdown(t *Task, wake *Wakeups) (Async[struct{}], error) {
	if p.state == pipeClosed {
		return Ready(struct{}{}), nil
	}
	if p.state == pipeOpen && p.werr == nil {
		p.state = pipeShuttingDown
	}
	if r, err := p.flush(t); err != nil || !r.Ready {
		return r, err
	}
	p.closeWrite(io.EOF, wake)
	return Ready(struct{}{}), nil
}

// closeWrite ends the writer: the reader gets err once it took every byte.
func (p *pipe) closeWrite(err error, wake *Wakeups) {
	p.state = pipeClosed
	p.rerr = err
	p.readers.TakeInto(wake)
	p.writers.TakeInto(wake)
}

// CloseWithError ends the writer at once, without waiting for the reader:
// the reader takes the bytes already written, then gets err (io.EOF if
// err is nil), like a peer that hangs up. Writes after it fail with
// [ErrShutdown]; every task waiting on either half is notified. A pipe
// whose writer has already ended keeps its first end, as with
// io.PipeWriter. CloseWithError always returns nil.
func (w *PipeWriter) CloseWithError(err error) error {
	if err == nil {
		err = io.EOF
	}
	p := w.p
	var wake Wakeups
	p.mu.Lock()
	if p.state != pipeClosed && p.werr == nil {
		p.closeWrite(err, &wake)
	}
	p.mu.Unlock()
	wake.Notify()
	return nil
}

// Buffered returns how many written bytes the reader has not taken yet.
func (w *PipeWriter) Buffered() int {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.buf.Len()
}

// PollRead takes up to len(b) bytes from the pipe's buffer. When it is
// empty it answers NotReady (t waits) while the writer is open, and after
// the writer's end the end's error: io.EOF after Shutdown, or the error
// given to [PipeWriter.CloseWithError]. After Close it fails with
// io.ErrClosedPipe.
func (r *PipeReader) PollRead(t *Task, b []byte) (Async[int], error) {
	p := r.p
	var wake Wakeups
	p.mu.Lock()
	res, err := p.read(t, b, &wake)
	p.mu.Unlock()
	wake.Notify()
	return res, err
}

func (p *pipe) read(t *Task, b []byte, wake *Wakeups) (Async[int], error) {
	switch {
	case p.rclosed:
		return NotReady[int](), io.ErrClosedPipe
	case len(b) == 0:
		return Ready(0), nil
	case p.buf.Len() > 0:
		n := p.buf.Read(b)
		p.writers.TakeInto(wake)
		return Ready(n), nil
	case p.state == pipeClosed:
		return NotReady[int](), p.rerr
	}
	p.readers.Add(t)
	return NotReady[int](), nil
}

// Read blocks until bytes are available, the writer has ended (io.EOF once
// every byte was read, after Shutdown), or the reader is closed
// (io.ErrClosedPipe). It is [Read] without a deadline.
func (r *PipeReader) Read(b []byte) (int, error) {
	return Read(context.Background(), r, b)
}

// Close closes the reader: a blocked Read returns, and the writer fails
// with io.ErrClosedPipe unless it had ended and the reader had taken every
// byte. Bytes not yet read are dropped. Every task waiting on either half
// is notified. Close is safe to call more than once.
func (r *PipeReader) Close() error {
	p := r.p
	var wake Wakeups
	p.mu.Lock()
	p.rclosed = true
	if p.werr == nil && (p.state != pipeClosed || p.buf.Len() > 0) {
		p.werr = io.ErrClosedPipe
	}
	p.buf.Discard(p.buf.Len())
	p.writers.TakeInto(&wake)
	p.readers.TakeInto(&wake)
	p.mu.Unlock()
	wake.Notify()
	return nil
}
