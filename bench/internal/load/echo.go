package load

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

const (
	defaultSize   = 128
	defaultWindow = 1
	defaultRate   = 1000
	defaultTick   = time.Millisecond
	paceBatch     = 64
)

// aLongTimeAgo is a deadline in the past: it ends blocked reads and
// writes at once.
var aLongTimeAgo = time.Unix(1, 0)

// EchoOptions configures [Conn.Echo]; nil means the defaults.
type EchoOptions struct {
	// Size is each message's size in bytes, at least [MinSize]; default 128.
	Size int
	// Window is how many messages are kept in flight; default 1.
	Window int
	// Messages ends the loop after this many echoes; default 0 (or less),
	// when ctx is done.
	Messages int64
	// Latency, when not nil, records the round trip of every echo received
	// while Recording reports true (always when Recording is nil);
	// default nil.
	Latency *Histogram
	// Recording opens and closes the measured window; default nil.
	Recording *atomic.Bool
	// Corpus, when not nil, has the loop send its messages in turn as
	// text messages, compressed on a connection that agreed on
	// permessage-deflate, instead of stamped ones of Size bytes, and check
	// each echo against the message sent, inflated when it came
	// compressed; default nil. Such messages carry no send time: Latency
	// must be nil.
	Corpus *Corpus
}

// Echo keeps Window messages in flight until ctx is done, Messages have
// come back, or the connection fails: it writes a window of messages, then
// for each batch of echoes one read brings in, as many new messages in one
// write. Every echo is checked ([ErrWrongEcho]). When ctx ends the loop
// ends with a nil error and the connection's deadline is in the past: it
// is left for closing.
func (c *Conn) Echo(ctx context.Context, o *EchoOptions) error {
	opt := o.withDefaults()
	f, ck, err := c.loop(&opt)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(aLongTimeAgo) })
	defer stop()
	if _, err := c.Write(f.Stamp(opt.first(), Now())); err != nil {
		return ended(ctx, err)
	}
	for {
		if err := c.rd.Fill(); err != nil {
			return ended(ctx, err)
		}
		now := Now()
		rec := opt.Latency != nil && (opt.Recording == nil || opt.Recording.Load())
		k, err := c.drain(ck, now, rec, opt.Latency)
		if err != nil {
			return err
		}
		if k == 0 {
			continue
		}
		if k = opt.more(k, ck, f); k < 0 {
			return nil
		}
		if k > 0 {
			if _, err := c.Write(f.Stamp(k, now)); err != nil {
				return ended(ctx, err)
			}
		}
	}
}

// sender makes the frames of the messages a loop sends: [Frames] or
// corpusFrames.
type sender interface {
	Stamp(k int, now int64) []byte
	Sent() uint64
}

// verifier checks a loop's echoes in order: checker or corpusChecker.
type verifier interface {
	// verify checks that m is the echo of the next message sent and
	// returns its send time.
	verify(m []byte) (sent int64, err error)
	// checked is how many echoes were verified.
	checked() uint64
}

// loop returns the frames and the checker of a loop on c with opt.
func (c *Conn) loop(opt *EchoOptions) (sender, verifier, error) {
	if opt.Corpus == nil {
		f, err := NewFrames(c.proto, opt.Size, opt.Window)
		if err != nil {
			return nil, nil, err
		}
		return f, newChecker(opt.Size), nil
	}
	if opt.Latency != nil {
		return nil, nil, errors.New("load: a corpus's messages carry no send time to record round trips with")
	}
	if c.proto != WebSocket {
		return nil, nil, fmt.Errorf("load: a corpus over %v", c.proto)
	}
	f, err := newCorpusFrames(opt.Corpus, opt.Window, c.deflate)
	if err != nil {
		return nil, nil, err
	}
	return f, &corpusChecker{cp: opt.Corpus}, nil
}

func (o *EchoOptions) withDefaults() EchoOptions {
	var opt EchoOptions
	if o != nil {
		opt = *o
	}
	if opt.Size == 0 {
		opt.Size = defaultSize
	}
	if opt.Window <= 0 {
		opt.Window = defaultWindow
	}
	return opt
}

// first is how many messages the loop starts with: a window, or fewer
// when that is more than it is to send.
func (o *EchoOptions) first() int {
	if o.Messages > 0 {
		return int(min(int64(o.Window), o.Messages))
	}
	return o.Window
}

// more is how many messages to send after k echoes came back: k, fewer
// near the end of Messages, or -1 when all have come back.
func (o *EchoOptions) more(k int, ck verifier, f sender) int {
	if o.Messages <= 0 {
		return k
	}
	if int64(ck.checked()) >= o.Messages {
		return -1
	}
	return int(min(int64(k), o.Messages-int64(f.Sent())))
}

// drain checks every echo buffered and records their round trips when
// rec is true, and returns how many there were.
func (c *Conn) drain(ck verifier, now int64, rec bool, h *Histogram) (int, error) {
	k := 0
	for {
		m, ok, err := c.rd.Next()
		if err != nil {
			return k, err
		}
		if !ok {
			break
		}
		sent, err := ck.verify(m)
		if err != nil {
			return k, err
		}
		if rec {
			h.Record(now - sent)
		}
		k++
	}
	c.received.Add(int64(k))
	return k, nil
}

// PaceOptions configures [Conn.Pace]; nil means the defaults.
type PaceOptions struct {
	// Size is each message's size in bytes, at least [MinSize]; default 128.
	Size int
	// Rate is how many messages a second are sent; default 1000.
	Rate float64
	// Tick is how often the messages that have fallen due are written,
	// together; default 1 ms.
	Tick time.Duration
	// Messages ends the loop after this many echoes; default 0 (or less),
	// when ctx is done.
	Messages int64
	// Latency and Recording are as in [EchoOptions].
	Latency   *Histogram
	Recording *atomic.Bool
}

// Pace sends messages at a fixed rate whatever the echoes do (an open
// loop: a slow server is not offered less), until ctx is done, Messages
// have come back, or the connection fails, and checks every echo. The
// round trip recorded runs from the write that sent a message to the read
// that brought its echo. A goroutine of its own writes; Pace waits for it.
// When ctx ends the connection is left for closing, as by [Conn.Echo].
func (c *Conn) Pace(ctx context.Context, o *PaceOptions) error {
	var opt PaceOptions
	if o != nil {
		opt = *o
	}
	if opt.Size == 0 {
		opt.Size = defaultSize
	}
	if opt.Rate <= 0 {
		opt.Rate = defaultRate
	}
	if opt.Tick <= 0 {
		opt.Tick = defaultTick
	}
	f, err := NewFrames(c.proto, opt.Size, paceBatch)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(aLongTimeAgo) })
	defer stop()
	werr := make(chan error, 1)
	go func() {
		err := c.paceWrites(ctx, f, &opt)
		if err != nil {
			cancel() // the reads end too
		}
		werr <- err
	}()
	ck := newChecker(opt.Size)
	err = func() error {
		for opt.Messages <= 0 || int64(ck.next) < opt.Messages {
			if err := c.rd.Fill(); err != nil {
				return ended(ctx, err)
			}
			now := Now()
			rec := opt.Latency != nil && (opt.Recording == nil || opt.Recording.Load())
			if _, err := c.drain(ck, now, rec, opt.Latency); err != nil {
				return err
			}
		}
		return nil
	}()
	cancel()
	if werr := <-werr; err == nil {
		err = werr
	}
	return err
}

// paceWrites writes, once a tick, the messages that have fallen due since
// the start at opt.Rate, in one write when they fit one batch.
func (c *Conn) paceWrites(ctx context.Context, f *Frames, opt *PaceOptions) error {
	t := time.NewTicker(opt.Tick)
	defer t.Stop()
	start := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		due := int64(time.Since(start).Seconds() * opt.Rate)
		if opt.Messages > 0 {
			due = min(due, opt.Messages)
		}
		for k := due - int64(f.Sent()); k > 0; k = due - int64(f.Sent()) {
			if _, err := c.Write(f.Stamp(int(min(k, paceBatch)), Now())); err != nil {
				return ended(ctx, err)
			}
		}
		if opt.Messages > 0 && int64(f.Sent()) == opt.Messages {
			return nil
		}
	}
}

// Exchange sends one message of size bytes and reads its echo, checked,
// then lets the read buffer go: what a connection does before it idles.
func (c *Conn) Exchange(size int) error {
	return c.exchange(&EchoOptions{Size: size, Window: 1})
}

// ExchangeCorpus is [Conn.Exchange] with the first message of cp,
// compressed on a connection that agreed on permessage-deflate.
func (c *Conn) ExchangeCorpus(cp *Corpus) error {
	return c.exchange(&EchoOptions{Window: 1, Corpus: cp})
}

func (c *Conn) exchange(opt *EchoOptions) error {
	f, ck, err := c.loop(opt)
	if err != nil {
		return err
	}
	if _, err := c.Write(f.Stamp(1, Now())); err != nil {
		return err
	}
	m, err := c.rd.ReadMessage()
	if err != nil {
		return err
	}
	if _, err := ck.verify(m); err != nil {
		return err
	}
	c.received.Add(1)
	c.rd.Release()
	return nil
}

// ended is the error a loop returns for err: none when ctx is done, as
// the deadline ctx set explains err.
func ended(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// checker verifies the echoes of one connection in order.
type checker struct {
	size int
	tail []byte
	next uint64
}

func newChecker(size int) *checker { return &checker{size: size, tail: pattern(size)} }

// verify checks that m is the next message sent and returns its send time.
func (ck *checker) verify(m []byte) (sent int64, err error) {
	if len(m) != ck.size {
		return 0, fmt.Errorf("%w: message %d of %d bytes, want %d", ErrWrongEcho, ck.next, len(m), ck.size)
	}
	if seq := binary.LittleEndian.Uint64(m); seq != ck.next {
		return 0, fmt.Errorf("%w: message %d where %d was due", ErrWrongEcho, seq, ck.next)
	}
	if !bytes.Equal(m[MinSize:], ck.tail) {
		return 0, fmt.Errorf("%w: message %d: its bytes differ from those sent", ErrWrongEcho, ck.next)
	}
	ck.next++
	return int64(binary.LittleEndian.Uint64(m[8:])), nil
}

func (ck *checker) checked() uint64 { return ck.next }

// corpusChecker verifies the echoes of a corpus's messages in order.
type corpusChecker struct {
	cp   *Corpus
	next uint64
}

// verify checks that m is the next message sent, byte for byte; the
// messages carry no send time.
func (ck *corpusChecker) verify(m []byte) (int64, error) {
	want := ck.cp.Message(int(ck.next % uint64(ck.cp.Len())))
	if !bytes.Equal(m, want) {
		return 0, fmt.Errorf("%w: message %d: %d bytes where the %d sent were due", ErrWrongEcho, ck.next, len(m), len(want))
	}
	ck.next++
	return 0, nil
}

func (ck *corpusChecker) checked() uint64 { return ck.next }
