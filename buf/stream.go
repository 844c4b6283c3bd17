package buf

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/pollws/pollws/asyncio"
)

const defaultStreamCapacity = 16

// stream is the state the two ends of a stream share.
type stream struct {
	mu      sync.Mutex
	chunks  [][]byte // a ring of chunks: chunks[head] is the oldest
	head, n int
	writers int // open writer handles
	rclosed bool
	rtask   *asyncio.Task // the reader's latest task while it waits
	waiting waitSet       // writers waiting for room
}

// StreamWriter is the write end of a stream made by [NewStream]. Its methods may be called
// from any goroutine, but it keeps one task: use it from one goroutine at
// a time and give each other goroutine its own writer with
// [StreamWriter.Clone]. Close is safe at any time.
type StreamWriter struct {
	s      *stream
	closed bool // guarded by s.mu
	w      waiter
}

// StreamReader is the read end of a stream made by [NewStream]. Use it from one goroutine at
// a time; Close is safe at any time.
type StreamReader struct {
	s    *stream
	wake []*asyncio.Task
}

// NewStream returns the two ends of a bounded stream of byte chunks that
// holds up to 16 chunks.
//
// A writer that finds the stream full waits (back-pressure), so production
// cannot outrun a slow reader. Chunk boundaries and each writer's order
// are kept, and an empty chunk is data like any other. Writers added with
// [StreamWriter.Clone] fan into the same stream; the reader sees [io.EOF]
// once every writer is closed and every chunk read. When the reader is
// closed, every write fails with a [*WriteError] that hands the chunk
// back, also a write that was already waiting.
func NewStream() (*StreamWriter, *StreamReader) {
	return NewStreamSize(defaultStreamCapacity)
}

// NewStreamSize is like [NewStream] with room for capacity chunks. A
// capacity less than 1 is taken as 1.
func NewStreamSize(capacity int) (*StreamWriter, *StreamReader) {
	s := &stream{chunks: make([][]byte, max(capacity, 1)), writers: 1}
	return &StreamWriter{s: s}, &StreamReader{s: s}
}

// PollWrite queues chunk. It answers Ready when the chunk is queued, and
// NotReady when the stream is full, having arranged for t to be notified
// when there is room or the reader is gone. The stream keeps chunk itself,
// not a copy: the caller must not change it afterwards.
//
// When the reader is closed, or w is, it fails with a [*WriteError]
// carrying chunk, whose Err is [ErrNoReader] or [ErrClosed].
func (w *StreamWriter) PollWrite(t *asyncio.Task, chunk []byte) (asyncio.Async[struct{}], error) {
	s := w.s
	s.mu.Lock()
	var err error
	switch {
	case w.closed:
		err = ErrClosed
	case s.rclosed:
		err = ErrNoReader
	case s.n == len(s.chunks):
		s.waiting.add(&w.w, t)
		s.mu.Unlock()
		return asyncio.NotReady[struct{}](), nil
	}
	if err != nil {
		s.mu.Unlock()
		return asyncio.NotReady[struct{}](), &WriteError{Chunk: chunk, Err: err}
	}
	s.waiting.remove(&w.w)
	i := s.head + s.n
	if i >= len(s.chunks) {
		i -= len(s.chunks)
	}
	s.chunks[i] = chunk
	s.n++
	rt := s.rtask
	s.rtask = nil
	s.mu.Unlock()
	rt.Notify()
	return asyncio.Ready(struct{}{}), nil
}

// Write queues chunk, waiting while the stream is full. It fails like
// [StreamWriter.PollWrite], or with ctx's cause when ctx ends first.
func (w *StreamWriter) Write(ctx context.Context, chunk []byte) error {
	_, err := asyncio.BlockOn(ctx, func(t *asyncio.Task) (asyncio.Async[struct{}], error) {
		return w.PollWrite(t, chunk)
	})
	return err
}

// Clone returns a new writer into the same stream. The reader sees the end
// of the stream only after every writer, w and its clones, is closed.
// Cloning a closed writer gives a closed writer.
func (w *StreamWriter) Clone() *StreamWriter {
	s := w.s
	s.mu.Lock()
	defer s.mu.Unlock()
	c := &StreamWriter{s: s, closed: w.closed}
	if !c.closed {
		s.writers++
	}
	return c
}

// Close closes w: its later writes fail with [ErrClosed], and a write of
// w's that is waiting returns. When w is the last open writer, the reader
// sees [io.EOF] after the chunks already queued. Close always returns nil;
// closing again does nothing.
func (w *StreamWriter) Close() error {
	s := w.s
	s.mu.Lock()
	if w.closed {
		s.mu.Unlock()
		return nil
	}
	w.closed = true
	own := s.waiting.remove(&w.w)
	s.writers--
	var rt *asyncio.Task
	if s.writers == 0 {
		rt, s.rtask = s.rtask, nil
	}
	s.mu.Unlock()
	own.Notify()
	rt.Notify()
	return nil
}

// String describes the stream as w sees it, for %v.
func (w *StreamWriter) String() string {
	s := w.s
	s.mu.Lock()
	defer s.mu.Unlock()
	state := "open"
	switch {
	case w.closed:
		state = "closed"
	case s.rclosed:
		state = "reader closed"
	}
	return fmt.Sprintf("buf.StreamWriter(%s, %d/%d chunks, %d writers)", state, s.n, len(s.chunks), s.writers)
}

// PollRead takes the oldest chunk. It answers Ready with the chunk, fails
// with [io.EOF] once every writer is closed and no chunk is left, and
// answers NotReady otherwise, having arranged for t to be notified when a
// chunk arrives or the last writer closes. After Close it fails with
// [ErrClosed].
func (r *StreamReader) PollRead(t *asyncio.Task) (asyncio.Async[[]byte], error) {
	s := r.s
	s.mu.Lock()
	switch {
	case s.rclosed:
		s.mu.Unlock()
		return asyncio.NotReady[[]byte](), ErrClosed
	case s.n > 0:
		c := s.chunks[s.head]
		s.chunks[s.head] = nil
		s.head++
		if s.head == len(s.chunks) {
			s.head = 0
		}
		s.n--
		s.rtask = nil
		r.wake = s.waiting.take(r.wake)
		s.mu.Unlock()
		r.wake = notify(r.wake)
		return asyncio.Ready(c), nil
	case s.writers == 0:
		s.mu.Unlock()
		return asyncio.NotReady[[]byte](), io.EOF
	}
	s.rtask = t
	s.mu.Unlock()
	return asyncio.NotReady[[]byte](), nil
}

// Read takes the oldest chunk, waiting until one arrives. It fails like
// [StreamReader.PollRead], or with ctx's cause when ctx ends first.
func (r *StreamReader) Read(ctx context.Context) ([]byte, error) {
	return asyncio.BlockOn(ctx, r.PollRead)
}

// Len returns the number of chunks queued.
func (r *StreamReader) Len() int {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	return r.s.n
}

// Cap returns the stream's capacity in chunks.
func (r *StreamReader) Cap() int { return len(r.s.chunks) }

// Close closes the reader: queued chunks are dropped, and every write,
// also one already waiting, fails with a [*WriteError] that hands its
// chunk back. Close always returns nil; closing again does nothing.
func (r *StreamReader) Close() error {
	s := r.s
	s.mu.Lock()
	if s.rclosed {
		s.mu.Unlock()
		return nil
	}
	s.rclosed = true
	for s.n > 0 {
		s.chunks[s.head] = nil
		s.head = (s.head + 1) % len(s.chunks)
		s.n--
	}
	rt := s.rtask
	s.rtask = nil
	wake := s.waiting.take(nil)
	s.mu.Unlock()
	rt.Notify()
	notify(wake)
	return nil
}

// String describes the stream as r sees it, for %v.
func (r *StreamReader) String() string {
	s := r.s
	s.mu.Lock()
	defer s.mu.Unlock()
	state := "open"
	switch {
	case s.rclosed:
		state = "closed"
	case s.writers == 0:
		state = "writers closed"
	}
	return fmt.Sprintf("buf.StreamReader(%s, %d/%d chunks, %d writers)", state, s.n, len(s.chunks), s.writers)
}
