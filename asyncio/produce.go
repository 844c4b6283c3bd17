package asyncio

import (
	"errors"
	"fmt"
	"io"
)

// StreamResult is what a [StreamProducer] says about the stream after a
// poll that did not answer NotReady.
type StreamResult int

const (
	// Completed: items were written (or, for a zero-capacity probe, items
	// can be produced at once) and more may follow.
	Completed StreamResult = iota
	// Dropped: the stream has ended; items written by this poll, if any,
	// are its last.
	Dropped
	// Cancelled: the poll was asked to finish and gave no items.
	Cancelled
)

// String returns the result's name, such as "Completed".
func (r StreamResult) String() string {
	switch r {
	case Completed:
		return "Completed"
	case Dropped:
		return "Dropped"
	case Cancelled:
		return "Cancelled"
	}
	return fmt.Sprintf("StreamResult(%d)", int(r))
}

// StreamProducer is the pull side of a stream of items (wasmtime's
// StreamProducer): the consumer polls it whenever it can take more.
//
// A poll either writes one or more items to dst and answers
// Ready(Completed) (more may follow) or Ready(Dropped) (the end); or, with
// nothing to give and finish false, answers NotReady without writing and
// notifies t later. With finish true (the consumer is closing) it should
// answer promptly, with Ready(Cancelled) if it has nothing. When dst's
// capacity is a known 0 the poll is a readiness probe: Ready(Completed)
// without items means "items can be produced at once".
//
// Writing items and then answering NotReady, answering Completed with no
// items when capacity was above 0, and answering Cancelled when finish was
// false are producer errors: a [Puller] reports them as a *[ProducerError]
// and ends the stream.
type StreamProducer[T any] interface {
	PollProduce(t *Task, dst *Destination[T], finish bool) (Async[StreamResult], error)
}

// Destination is where a [StreamProducer] writes items during one poll.
// It is owned by the consumer and valid only during that poll.
type Destination[T any] struct {
	capacity int // < 0: unknown
	items    []T
}

// Remaining returns how many more items the consumer can take at once, and
// whether that is known. Unknown means "as many as you like".
func (d *Destination[T]) Remaining() (n int, known bool) {
	if d.capacity < 0 {
		return 0, false
	}
	return max(d.capacity-len(d.items), 0), true
}

// Write appends as many of items as Remaining allows (all of them when it
// is unknown) and returns how many it took.
func (d *Destination[T]) Write(items ...T) int {
	if n, known := d.Remaining(); known && len(items) > n {
		items = items[:n]
	}
	d.items = append(d.items, items...)
	return len(items)
}

// SetBuffer hands items to the consumer regardless of capacity: those past
// it are kept and delivered before the producer is polled again. Use it to
// give a batch that is cheaper to hand over whole than to split.
func (d *Destination[T]) SetBuffer(items []T) {
	d.items = append(d.items, items...)
}

// ErrCancelled is returned by [Puller.Pull] when the producer answered
// Cancelled to a finishing poll: it has nothing more to give now.
var ErrCancelled = errors.New("asyncio: produce cancelled")

// ProducerError reports a [StreamProducer] that broke the contract. It ends
// the stream: every later Pull returns it.
type ProducerError struct {
	Rule string // which rule was broken
}

// Error says which rule the producer broke.
func (e *ProducerError) Error() string { return "asyncio: producer error: " + e.Rule }

// Puller drives a [StreamProducer] for a consumer, checking the rules the
// producer must keep and keeping items past the consumer's capacity for
// the next Pull. A Puller is not safe for concurrent use.
type Puller[T any] struct {
	p       StreamProducer[T]
	dst     Destination[T]
	pending []T // items written past capacity, delivered before the next poll
	ended   bool
	err     error
}

// NewPuller returns a Puller over p.
func NewPuller[T any](p StreamProducer[T]) *Puller[T] {
	return &Puller[T]{p: p}
}

// Pull asks for up to n items (n < 0: any number; n == 0: a readiness
// probe). It answers:
//   - Ready(items): between 1 and n items (any number when n < 0). A probe
//     answers Ready with no items when the producer can produce at once.
//     The slice is valid until the next Pull.
//   - NotReady: the producer has nothing now and will notify t.
//   - io.EOF once the producer ended the stream and every item was pulled.
//   - [ErrCancelled] when finish was set and the producer gave nothing.
//   - a *[ProducerError] when the producer broke the contract; sticky, as
//     is an error the producer returned.
//
// Items kept from an earlier poll are delivered first, without polling.
func (pl *Puller[T]) Pull(t *Task, n int, finish bool) (Async[[]T], error) {
	switch {
	case pl.err != nil:
		return NotReady[[]T](), pl.err
	case len(pl.pending) > 0:
		return Ready(pl.takePending(n)), nil
	case pl.ended:
		return NotReady[[]T](), io.EOF
	}
	pl.dst.capacity = n
	clear(pl.dst.items)
	pl.dst.items = pl.dst.items[:0]
	r, err := pl.p.PollProduce(t, &pl.dst, finish)
	got := len(pl.dst.items)
	switch {
	case err != nil:
		pl.err = err
	case !r.Ready && got > 0:
		pl.err = &ProducerError{Rule: "NotReady after writing items"}
	case !r.Ready:
		return NotReady[[]T](), nil
	case r.Value < Completed || r.Value > Cancelled:
		pl.err = &ProducerError{Rule: "unknown result " + r.Value.String()}
	case r.Value == Cancelled && !finish:
		pl.err = &ProducerError{Rule: "Cancelled without finish"}
	case r.Value == Completed && got == 0 && n != 0:
		pl.err = &ProducerError{Rule: "Completed with no items for capacity > 0"}
	}
	if pl.err != nil {
		return NotReady[[]T](), pl.err
	}
	pl.pending = pl.dst.items
	if r.Value == Dropped {
		pl.ended = true
	}
	switch {
	case got > 0:
		return Ready(pl.takePending(n)), nil
	case r.Value == Cancelled:
		return NotReady[[]T](), ErrCancelled
	case r.Value == Dropped:
		return NotReady[[]T](), io.EOF
	}
	return Ready[[]T](nil), nil // a probe answered Completed
}

// takePending returns up to n pending items (any number when n < 0; none
// for a probe, which leaves them pending).
func (pl *Puller[T]) takePending(n int) []T {
	k := len(pl.pending)
	if n >= 0 && n < k {
		k = n
	}
	if k == 0 {
		return nil
	}
	out := pl.pending[:k:k]
	pl.pending = pl.pending[k:]
	return out
}
