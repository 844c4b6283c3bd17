package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"time"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/buf"
	"github.com/pollws/pollws/wsconn"
)

// runStream sends each line of stdin as a message, as runLines does, but
// pulled rather than pushed:
//
//	stdin → feedLines (a goroutine) → buf.Stream → streamProducer → wsconn.Pump → Conn
//
// A goroutine reads stdin and queues each line in a buf.Stream, waiting
// while the stream is full. The pump pulls lines from the stream only
// when the connection can take more, so a slow server holds back the
// reading of stdin instead of growing a buffer. The exchange's receiver
// writes each echo to stdout, as in runLines.
//
// A read of stdin cannot be interrupted: when the connection fails, run
// returns once the feeding goroutine's next write fails, after the next
// line (or the end) of stdin.
func runStream(ctx context.Context, cfg config, stdin io.Reader, stdout io.Writer) (summary, error) {
	s := summary{conns: 1}
	c, err := dial(ctx, cfg)
	if err != nil {
		return s, err
	}
	x := newLineExchange(ctx, c, cfg, stdout)
	start := time.Now()

	w, r := buf.NewStream()
	fed := make(chan error, 1)
	go func() { fed <- feedLines(ctx, x, stdin, w) }()

	p := wsconn.NewPump(&streamProducer{r: r}, wsconn.MessageSinkOf(c, x.op), nil)
	perr := p.Run(ctx) // the pump flushes the connection while it waits for a line
	r.Close()          // after a failure, the feeder's next write fails
	ferr := <-fed
	return s, x.finish(ctx, &s, start, errors.Join(perr, ferr))
}

// feedLines queues each line of stdin in the stream, after putting it in
// flight in x (waiting for room in x's window), and closes w at the end
// of stdin: the producer then ends the stream.
func feedLines(ctx context.Context, x *exchange, stdin io.Reader, w *buf.StreamWriter) error {
	defer w.Close()
	sc := newLineScanner(stdin)
	for seq := 0; sc.Scan(); seq++ {
		line := bytes.Clone(sc.Bytes()) // the stream keeps the chunk itself
		if err := x.admit(ctx, inFlight{seq: seq, p: line, sent: time.Now()}); err != nil {
			return err
		}
		// The line is in flight: it must reach the stream even if ctx
		// ends now, or its echo would be waited for in vain. The write
		// waits only while the pump does not pull, and fails once the
		// reader is closed.
		if err := w.Write(context.WithoutCancel(ctx), line); err != nil {
			return err
		}
		x.sent++
	}
	return sc.Err()
}

// streamProducer is the pull side of a buf.Stream: an
// asyncio.StreamProducer of the chunks queued in it, for a wsconn.Pump.
type streamProducer struct {
	r    *buf.StreamReader
	held []byte // taken from the stream by a readiness probe
	has  bool   // held is set (an empty chunk is a message too)
}

var _ asyncio.StreamProducer[[]byte] = (*streamProducer)(nil)

// PollProduce gives the pump every chunk queued, up to what it can take;
// it answers NotReady when none is queued, having arranged (through the
// stream) for t to be notified when one arrives, and Dropped once every
// writer closed and every chunk was given.
func (p *streamProducer) PollProduce(t *asyncio.Task, dst *asyncio.Destination[[]byte], finish bool) (asyncio.Async[asyncio.StreamResult], error) {
	if !p.has {
		r, err := p.r.PollRead(t)
		switch {
		case errors.Is(err, io.EOF):
			return asyncio.Ready(asyncio.Dropped), nil
		case err != nil:
			return asyncio.NotReady[asyncio.StreamResult](), err
		case !r.Ready && finish:
			return asyncio.Ready(asyncio.Cancelled), nil
		case !r.Ready:
			return asyncio.NotReady[asyncio.StreamResult](), nil
		}
		p.held, p.has = r.Value, true
	}
	if n, known := dst.Remaining(); known && n == 0 {
		// A probe: the connection is full, and a chunk is ready for
		// when it drains. The stream cannot be peeked, so the chunk is
		// held until the next poll.
		return asyncio.Ready(asyncio.Completed), nil
	}
	dst.Write(p.held)
	p.held, p.has = nil, false
	for more(dst) {
		r, err := p.r.PollRead(nil) // no wait: the pump polls again after these
		switch {
		case errors.Is(err, io.EOF):
			return asyncio.Ready(asyncio.Dropped), nil // what was written is the last
		case err != nil:
			return asyncio.NotReady[asyncio.StreamResult](), err
		case !r.Ready:
			return asyncio.Ready(asyncio.Completed), nil
		}
		dst.Write(r.Value)
	}
	return asyncio.Ready(asyncio.Completed), nil
}

// more reports whether dst takes more items.
func more(dst *asyncio.Destination[[]byte]) bool {
	n, known := dst.Remaining()
	return !known || n > 0
}
