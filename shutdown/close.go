package shutdown

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/pollws/pollws/asyncio"
)

// Close shuts w down gracefully and releases it. It works by first
// flushing every byte w accepted, then having w send its own end (a
// WebSocket close frame, TLS close_notify, TCP FIN), then waiting for both
// to complete or for ctx to end, and last closing w if it is an
// [io.Closer].
//
// If ctx ends first, Close closes w hard (if w is an [io.Closer]) and
// returns an [*UndeliveredError] that says how many bytes w accepted that
// its peer will not get (as w reports them: see [UndeliveredReporter])
// and wraps ctx's cause; if w's shutdown fails, it does the same with w's
// error. Close never waits past the end of ctx, and it returns nil only
// when the shutdown completed: every accepted byte left w, and so did the
// end. Even when ctx is already done, Close polls w once, so a writer
// with nothing pending still shuts down cleanly.
//
// After a clean shutdown, an error from closing w is returned as it is
// (wrapped), unless it only says w was already closed.
func Close(ctx context.Context, w asyncio.AsyncWriter) error {
	var err error
	if ctx.Err() != nil {
		r, perr := w.Shutdown(nil)
		switch {
		case perr != nil:
			err = perr
		case !r.Ready:
			err = context.Cause(ctx)
		}
	} else {
		err = asyncio.Shutdown(ctx, w)
	}
	if err != nil {
		return closeHard(w, err)
	}
	return release(w)
}

// UndeliveredError is returned by [Close], and reported by [Group.Drain],
// when a writer was closed hard: its deadline passed, or its shutdown
// failed, before every byte it accepted had left. It is not changed after
// it is returned, so it may be shared between goroutines.
type UndeliveredError struct {
	// Bytes is how many bytes the writer accepted that its peer will
	// not get, as the writer reports them: through
	// [UndeliveredReporter], asked after the close, which counts what
	// the writer's buffer and, where the writer can read it, the
	// kernel's send queue held; or else through [BufferedReporter],
	// asked just before the close, which counts the writer's buffer
	// alone (a lower bound). It may include the writer's own end (a
	// queued close frame). It is -1 when the writer reports neither.
	Bytes int64

	// Err says why: the context's cause, or the writer's error, together
	// with the error from closing the writer if that failed too.
	Err error
}

// Error says how many bytes were not delivered, and why.
func (e *UndeliveredError) Error() string {
	if e.Bytes < 0 {
		return fmt.Sprintf("shutdown: closed hard with an unknown number of bytes undelivered: %v", e.Err)
	}
	return fmt.Sprintf("shutdown: closed hard with %d bytes undelivered: %v", e.Bytes, e.Err)
}

// Unwrap returns e.Err, so that [errors.Is] matches the context's cause
// (say, [context.DeadlineExceeded]) or the writer's error.
func (e *UndeliveredError) Unwrap() error { return e.Err }

// closeHard closes w at once and counts what it did not deliver: an
// [UndeliveredReporter] after the close, when its count is final, or a
// [BufferedReporter] before it, since closing may discard the buffer.
func closeHard(w asyncio.AsyncWriter, cause error) *UndeliveredError {
	n := int64(-1)
	if b, ok := w.(BufferedReporter); ok {
		n = int64(b.Buffered())
	}
	var cerr error
	if c, ok := w.(io.Closer); ok {
		if err := c.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			cerr = err
		}
	}
	if u, ok := w.(UndeliveredReporter); ok {
		n = u.Undelivered()
	}
	return &UndeliveredError{Bytes: n, Err: join(cause, cerr)}
}

// release closes w after a clean shutdown.
func release(w asyncio.AsyncWriter) error {
	c, ok := w.(io.Closer)
	if !ok {
		return nil
	}
	if err := c.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("shutdown: close after a clean shutdown: %w", err)
	}
	return nil
}

// join returns the errors that are not nil as one error that
// [errors.Is] and [errors.As] see through, or nil if there are none.
func join(errs ...error) error {
	n := 0
	for _, err := range errs {
		if err != nil {
			errs[n] = err
			n++
		}
	}
	switch n {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return causes(errs[:n:n])
}

// causes is several errors as one, printed on one line.
type causes []error

func (e causes) Error() string {
	var b strings.Builder
	for i, err := range e {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(err.Error())
	}
	return b.String()
}

func (e causes) Unwrap() []error { return e }
