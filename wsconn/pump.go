package wsconn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sync/atomic"

	"github.com/pollws/pollws/asyncio"
)

// MessageSink is what a [Pump] writes messages to.
//
// PollWriteMessage takes one whole message (Ready(len(p))) or nothing
// (NotReady, having arranged to notify t), as [Conn.PollWriteMessage] and the
// gorillaws adapter's do; an empty p is an empty message. PollFlush
// is Ready when every message taken has been written out.
//
// [MessageSinkOf] makes a MessageSink of a [*Conn] (or of the gorillaws
// adapter's writer) for one message type.
type MessageSink interface {
	PollWriteMessage(t *asyncio.Task, p []byte) (asyncio.Async[int], error)
	PollFlush(t *asyncio.Task) (asyncio.Async[struct{}], error)
}

// TypedMessageWriter is a writer of messages of type M: a [*Conn] is a
// TypedMessageWriter[MessageType], the gorillaws adapter's writer a
// TypedMessageWriter[int] (gorilla's message types).
type TypedMessageWriter[M any] interface {
	PollWriteMessage(t *asyncio.Task, typ M, p []byte) (asyncio.Async[int], error)
	PollFlush(t *asyncio.Task) (asyncio.Async[struct{}], error)
}

// MessageSinkOf returns a [MessageSink] that writes every message to w as
// type typ, for instance MessageSinkOf(gw, websocket.BinaryMessage) or
// MessageSinkOf(conn, wsconn.Text). When w has an Available method, as
// [Conn.Available], the sink reports it to the [Pump].
func MessageSinkOf[M any](w TypedMessageWriter[M], typ M) MessageSink {
	return &typedSink[M]{w: w, typ: typ}
}

type typedSink[M any] struct {
	w   TypedMessageWriter[M]
	typ M
}

func (s *typedSink[M]) PollWriteMessage(t *asyncio.Task, p []byte) (asyncio.Async[int], error) {
	return s.w.PollWriteMessage(t, s.typ, p)
}

func (s *typedSink[M]) PollFlush(t *asyncio.Task) (asyncio.Async[struct{}], error) {
	return s.w.PollFlush(t)
}

func (s *typedSink[M]) Available() int {
	if a, ok := s.w.(pumpSpace); ok {
		return a.Available()
	}
	return math.MaxInt
}

// pumpSpace is implemented by sinks that can tell how many bytes they
// would take now; 0 or less means they are full.
type pumpSpace interface{ Available() int }

// PumpOptions configures a [Pump]. The zero value and nil give the
// defaults written on each field.
type PumpOptions struct {
	// Batch is the most messages one pull asks the producer for.
	// Default 16.
	Batch int
}

const pumpDefaultBatch = 16

// Pump drives an [asyncio.StreamProducer] of messages into a [MessageSink],
// pulling only when the sink can take more, so a slow peer holds the
// producer back instead of growing a buffer.
//
// Each pull asks for at most [PumpOptions.Batch] messages. The pump does
// not pull again before the sink took every message of the last pull;
// when the sink reports (through an Available method, as a
// [Conn] has) that it is full, the pump only probes the producer
// (capacity 0), which tells it whether the stream ended or was cancelled,
// and waits for the sink to drain. Pulls go through an [asyncio.Puller],
// which checks the rules a producer must keep: a producer that breaks them
// ends the pump with a *[asyncio.ProducerError], never a hang.
//
// Messages go to the sink as the producer gave them, not copied: a
// producer must leave a message unchanged until the sink took it (a
// [Conn] copies it then), that is, until the pump polls the
// producer again or ends.
//
// [Pump.Finish] says that the connection is closing: from then on pulls
// pass finish = true, and a producer that answers Cancelled ends the pump
// cleanly.
//
// Poll and Run drive the pump from one goroutine at a time; Finish is
// safe to call from any goroutine, at any time.
type Pump struct {
	pl    *asyncio.Puller[[]byte]
	sink  MessageSink
	space pumpSpace // nil when the sink cannot tell
	batch int

	msgs  [][]byte // pulled, not yet taken by the sink; valid until the next Pull
	cur   []byte   // what is left of msgs[0] after the sink took part of it
	ended bool     // the producer ended the stream or answered Cancelled
	done  bool
	err   error // sticky

	task   atomic.Pointer[asyncio.Task] // the latest task, for Finish to wake
	finish atomic.Bool
}

// NewPump returns a pump from p into sink, configured by o (nil: the
// defaults).
func NewPump(p asyncio.StreamProducer[[]byte], sink MessageSink, o *PumpOptions) *Pump {
	pm := &Pump{pl: asyncio.NewPuller(p), sink: sink, batch: pumpDefaultBatch}
	if o != nil && o.Batch > 0 {
		pm.batch = o.Batch
	}
	pm.space, _ = sink.(pumpSpace)
	return pm
}

// Poll makes all the progress it can: it writes the messages it holds to
// the sink and pulls more while the sink takes them. When the producer has
// nothing, the sink is flushed, so that a message goes out as soon as it
// was produced. It is Ready when the
// producer ended the stream (Dropped, or Cancelled after [Pump.Finish]),
// the sink took every message, and, unless Finish was called, the sink
// flushed them: after Finish the flush is left to the sink's Shutdown,
// which a closing connection runs next. NotReady means the producer or the
// sink will notify t.
//
// An error of the producer or the sink ends the pump and is sticky; a
// producer that breaks the rules gives a *[asyncio.ProducerError].
func (p *Pump) Poll(t *asyncio.Task) (asyncio.Async[struct{}], error) {
	if p.err != nil {
		return asyncio.NotReady[struct{}](), p.err
	}
	if p.done {
		return asyncio.Ready(struct{}{}), nil
	}
	p.task.Store(t)
	// A Finish after this load notifies t, which was stored before it.
	finish := p.finish.Load()
	drained := false // the sink just drained: pull even if it still says it is full
	for {
		if r, err := p.write(t); err != nil || !r.Ready {
			return r, err
		}
		if p.ended {
			if !finish {
				if r, err := p.sink.PollFlush(t); err != nil || !r.Ready {
					return r, p.fail(err)
				}
			}
			p.done = true
			p.task.Store(nil)
			return asyncio.Ready(struct{}{}), nil
		}
		n := p.batch
		if p.space != nil && !drained && p.space.Available() <= 0 {
			n = 0
		}
		drained = false
		r, err := p.pl.Pull(t, n, finish)
		switch {
		case errors.Is(err, io.EOF), errors.Is(err, asyncio.ErrCancelled):
			p.ended = true
		case err != nil:
			return asyncio.NotReady[struct{}](), p.fail(err)
		case !r.Ready:
			// The producer has nothing now: what was written goes out
			// while it waits, as a read flushes before it waits.
			if _, err := p.sink.PollFlush(t); err != nil {
				return asyncio.NotReady[struct{}](), p.fail(err)
			}
			return asyncio.NotReady[struct{}](), nil
		case n == 0:
			// The producer has messages and the sink is full.
			if r, err := p.sink.PollFlush(t); err != nil || !r.Ready {
				return r, p.fail(err)
			}
			drained = true
		default:
			p.msgs = r.Value
		}
	}
}

// write hands the messages pulled to the sink, in order.
func (p *Pump) write(t *asyncio.Task) (asyncio.Async[struct{}], error) {
	for len(p.msgs) > 0 {
		m := p.msgs[0]
		if p.cur != nil {
			m = p.cur
		}
		r, err := p.sink.PollWriteMessage(t, m)
		switch {
		case err != nil:
			return asyncio.NotReady[struct{}](), p.fail(err)
		case !r.Ready:
			// The sink is full: push out what it holds, so that room
			// comes; t is notified when it does.
			if _, err := p.sink.PollFlush(t); err != nil {
				return asyncio.NotReady[struct{}](), p.fail(err)
			}
			return asyncio.NotReady[struct{}](), nil
		case r.Value == len(m):
			p.msgs, p.cur = p.msgs[1:], nil
		case r.Value <= 0 || r.Value > len(m):
			return asyncio.NotReady[struct{}](), p.fail(asyncio.ErrWriteZero)
		default:
			p.cur = m[r.Value:] // a byte-stream sink: the rest follows
		}
	}
	return asyncio.Ready(struct{}{}), nil
}

func (p *Pump) fail(err error) error {
	if err != nil {
		p.err = fmt.Errorf("wsconn: pump: %w", err)
		p.task.Store(nil)
	}
	return p.err
}

// Run drives [Pump.Poll] to completion, parking between notifications. It
// returns nil when the stream ended and was delivered, the pump's error,
// or ctx's cause when ctx ends first; the pump then keeps the messages it
// pulled and the sink did not take, and Run or Poll resumes it.
func (p *Pump) Run(ctx context.Context) error {
	_, err := asyncio.BlockOn(ctx, p.Poll)
	return err
}

// Finish tells the pump that the connection is closing: the next polls
// pass finish = true to the producer, which should answer promptly, with
// Cancelled when it has nothing more to give. A pump waiting on the
// producer is woken. Messages already pulled are still written.
func (p *Pump) Finish() {
	p.finish.Store(true)
	p.task.Load().Notify()
}
