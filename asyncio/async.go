package asyncio

import (
	"errors"
	"io"
)

// Async is the result of a poll: either Ready with a Value, or NotReady.
// The zero value is NotReady.
type Async[T any] struct {
	Value T
	Ready bool
}

// Ready returns a ready result carrying v.
func Ready[T any](v T) Async[T] { return Async[T]{Value: v, Ready: true} }

// NotReady returns a result that is not ready. A poll that returns it has
// arranged for the [Task] it was given to be notified when progress is
// possible.
func NotReady[T any]() Async[T] { return Async[T]{} }

// Errors shared by every writer in this module. Match them with [errors.Is].
var (
	// ErrWouldBlock is returned by an [AsyncWriter]'s Write when it could
	// not take all of p without blocking. A poll never returns it: a poll
	// that would block answers [NotReady] instead.
	ErrWouldBlock = errors.New("asyncio: write would block")

	// ErrShutdown is returned by writes that come after Shutdown began.
	ErrShutdown = errors.New("asyncio: writer is shut down")

	// ErrWriteZero is returned when an inner writer took 0 bytes of a
	// non-empty write without an error, and by [WriteAll] when a writer
	// answers Ready(0) to a non-empty write: retrying would loop forever.
	ErrWriteZero = errors.New("asyncio: write returned zero bytes")
)

// AsyncWriter is a writer whose operations never block: each either makes
// progress at once or answers [NotReady] and arranges for the given [Task]
// to be notified when it can make progress.
//
// The rules every implementation keeps (the kit in package asynciotest
// checks them):
//
//   - PollWrite answers Ready(n) with 0 ≤ n ≤ len(p) when it took exactly
//     p[:n] (into its buffer: only PollFlush and Shutdown promise that bytes
//     left), or NotReady having taken nothing. An empty p is Ready(0) at
//     once. Once a byte is taken the answer is Ready, never NotReady.
//   - PollFlush is Ready only when every accepted byte has reached the
//     inner writer and its flush is done.
//   - Shutdown implies PollFlush; then it sends the writer's own end and
//     shuts down the inner writer. A NotReady Shutdown resumes when called
//     again; after Ready it answers Ready at once. Writes after Shutdown
//     began fail with [ErrShutdown].
//   - Write is io.Writer's Write that never blocks: when the writer is full
//     it returns (n, [ErrWouldBlock]) with n < len(p). See [TryWrite].
//   - Errors are sticky: after a write error every later poll returns it.
//   - Every distinct task that got NotReady and still waits is notified
//     when progress is possible, so any number of goroutines may wait on
//     one writer (a [WaitSet] keeps them).
//   - A nil *Task is allowed in every poll; the poll then registers
//     nothing and unregisters nobody: a Write from one goroutine does not
//     cost a task waiting in another its notification.
type AsyncWriter interface {
	io.Writer
	PollWrite(t *Task, p []byte) (Async[int], error)
	PollFlush(t *Task) (Async[struct{}], error)
	Shutdown(t *Task) (Async[struct{}], error)
}

// AsyncReader is a reader whose reads never block: each either takes bytes
// at once and answers [Ready], or answers [NotReady] having arranged for
// the given [Task] to be notified when it can make progress.
//
// The rules every implementation keeps (the readers' kit in package
// asynciotest checks them):
//
//   - PollRead answers Ready(n) with 0 < n ≤ len(p) when it filled exactly
//     p[:n] with the next n bytes of the stream. An empty p is Ready(0) at
//     once, whether or not bytes are waiting.
//   - NotReady means nothing was read, and the task was registered before
//     the reader checked its state for the last time, so that bytes, the
//     end of the stream or an error arriving in between still notify it (no
//     lost wake-up). A poll never notifies its own task unconditionally.
//   - Every distinct task that got NotReady and still waits is notified
//     when progress is possible: any number of goroutines may wait on one
//     reader (each gets the bytes it reads, so they share one stream).
//   - A nil *Task is allowed; the poll then registers nothing and
//     unregisters nobody.
//   - At the end of the stream, after every byte, PollRead returns
//     [io.EOF], and again on every later call. Any other error is sticky
//     too.
//
// A reader of whole messages (a WebSocket connection) keeps the same rules
// for its message reads, which are all-or-nothing: a whole message or
// NotReady.
type AsyncReader interface {
	PollRead(t *Task, p []byte) (Async[int], error)
}

// TryWrite is the Write of every [AsyncWriter] in this module: it polls w
// with no task until all of p is taken or w is full, and never blocks. When
// w is full it returns the bytes taken so far and [ErrWouldBlock].
//
// TryWrite is to [WriteAll] what TryAcquire is to Acquire in
// golang.org/x/sync/semaphore.
func TryWrite(w AsyncWriter, p []byte) (int, error) {
	n := 0
	for n < len(p) {
		r, err := w.PollWrite(nil, p[n:])
		if err != nil {
			return n, err
		}
		if !r.Ready {
			return n, ErrWouldBlock
		}
		if r.Value == 0 {
			return n, ErrWriteZero
		}
		n += r.Value
	}
	return n, nil
}
