package broadcast

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"

	"github.com/pollws/pollws/buf"
	"github.com/pollws/pollws/wsconn"
)

const (
	defaultCapacity     = 1 << 20
	defaultKickAfter    = 4
	defaultBehindWindow = time.Minute

	// frameHeader is what the hub puts before each message in the
	// channel: its sequence number and its opcode.
	frameHeader = 9
)

// Errors of a [Hub]. Match them with [errors.Is].
var (
	// ErrClosed is returned by Publish and Subscribe after [Hub.Close].
	ErrClosed = errors.New("broadcast: hub closed")

	// ErrTooLarge is returned by Publish for a message larger than
	// [Hub.MaxMessage].
	ErrTooLarge = errors.New("broadcast: message larger than the hub's capacity")
)

// Options configures a [Hub]. A nil *Options means the defaults.
type Options struct {
	// Capacity is how many bytes of messages the hub holds for its
	// subscribers, rounded up to a power of two: a subscriber that falls
	// further behind is overtaken. Zero or less means 1 MiB.
	Capacity int

	// KickAfter disconnects a subscriber with close code 1008 at its
	// KickAfter-th overtake within BehindWindow. Zero means 4; a
	// negative value means never.
	KickAfter int

	// BehindWindow is the window KickAfter counts overtakes in. Zero or
	// less means a minute.
	BehindWindow time.Duration

	// Workers is the most goroutines that write to subscribers at once.
	// Zero or less means runtime.GOMAXPROCS(0).
	Workers int

	// Logger receives a line per subscriber the hub disconnects or loses
	// to a write error. Nil means [slog.Default].
	Logger *slog.Logger
}

// Stats counts what a [Hub] did. The counters of subscribers that left
// are kept.
type Stats struct {
	Subscribers    int    `json:"subscribers"`     // subscribers now
	Published      uint64 `json:"published"`       // messages published
	PublishedBytes uint64 `json:"published_bytes"` // their payload bytes
	Delivered      uint64 `json:"delivered"`       // messages handed to subscribers' connections
	MissedFrames   uint64 `json:"missed_frames"`   // messages subscribers missed, as told in notices
	MissedBytes    uint64 `json:"missed_bytes"`    // their payload bytes
	Overtakes      uint64 `json:"overtakes"`       // times a subscriber was overtaken
	Kicked         uint64 `json:"kicked"`          // subscribers disconnected with 1008
	Buffered       int64  `json:"buffered"`        // bytes subscribers' connections hold, not yet sent
	Capacity       int    `json:"capacity"`        // bytes of messages the hub holds at most
}

// Hub sends every message published to every subscriber. See the
// package documentation for how.
//
// A Hub is safe for use by multiple goroutines.
type Hub struct {
	ch        *buf.Channel
	kickAfter int
	window    time.Duration
	maxWork   int
	log       *slog.Logger
	now       func() time.Time // the clock overtakes are timed with

	// pubMu orders publishing: frames are numbered in channel order, and
	// a reader made under it starts right after frame seq.
	pubMu    sync.Mutex
	pw       *buf.Writer
	seq      uint64
	pubBytes atomic.Uint64

	mu      sync.Mutex
	subs    map[*Subscriber]struct{}
	queue   []*Subscriber // subscribers to poll, from head on
	head    int
	workers int
	wg      sync.WaitGroup // the workers
	closed  bool
	gone    counters // of subscribers that left

	kicked atomic.Uint64
}

// counters are a subscriber's counts, kept by its pump.
type counters struct {
	delivered, missedFrames, missedBytes, overtakes atomic.Uint64
}

func (c *counters) add(o *counters) {
	c.delivered.Add(o.delivered.Load())
	c.missedFrames.Add(o.missedFrames.Load())
	c.missedBytes.Add(o.missedBytes.Load())
	c.overtakes.Add(o.overtakes.Load())
}

// New returns a hub configured by o (nil for the defaults). It starts no
// goroutine.
func New(o *Options) *Hub {
	if o == nil {
		o = new(Options)
	}
	h := &Hub{
		kickAfter: o.KickAfter,
		window:    o.BehindWindow,
		maxWork:   o.Workers,
		log:       o.Logger,
		subs:      make(map[*Subscriber]struct{}),
		now:       time.Now,
	}
	capacity := o.Capacity
	if capacity <= 0 {
		capacity = defaultCapacity
	}
	if h.kickAfter == 0 {
		h.kickAfter = defaultKickAfter
	}
	if h.window <= 0 {
		h.window = defaultBehindWindow
	}
	if h.maxWork <= 0 {
		h.maxWork = runtime.GOMAXPROCS(0)
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	// No reader is strong, so a write never waits: it evicts the oldest
	// frames, overtaking the subscribers that had not read them.
	h.ch = buf.NewChannel(capacity, buf.Park)
	h.pw = h.ch.NewWeakWriter()
	return h
}

// MaxMessage returns the size of the largest message the hub takes.
func (h *Hub) MaxMessage() int { return h.ch.Cap() - frameHeader }

// Publish sends p as one message of type op (ws.OpText or ws.OpBinary) to
// every subscriber, and returns its sequence number (1 for the first). It
// never waits: subscribers that are too far behind are overtaken. p may
// be reused when Publish returns.
func (h *Hub) Publish(op ws.OpCode, p []byte) (uint64, error) {
	if op != ws.OpText && op != ws.OpBinary {
		return 0, fmt.Errorf("broadcast: publish of opcode %#x", byte(op))
	}
	if len(p) > h.MaxMessage() {
		return 0, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(p), h.MaxMessage())
	}
	h.pubMu.Lock()
	defer h.pubMu.Unlock()
	// With no strong reader and one writer that commits before it
	// unlocks, a reservation that fits the channel is always Ready.
	r, err := h.pw.PollReserveSlice(nil, frameHeader+len(p))
	switch {
	case errors.Is(err, buf.ErrAborted), errors.Is(err, buf.ErrDraining), errors.Is(err, buf.ErrClosed):
		return 0, ErrClosed
	case err != nil:
		return 0, fmt.Errorf("broadcast: publish: %w", err)
	case !r.Ready || len(r.Value) == 0:
		return 0, errors.New("broadcast: publish: the channel refused the message")
	}
	seq := h.seq + 1
	f := r.Value
	binary.BigEndian.PutUint64(f, seq)
	f[8] = byte(op)
	copy(f[frameHeader:], p)
	if err := h.pw.Commit(); err != nil {
		return 0, ErrClosed
	}
	h.seq = seq
	h.pubBytes.Add(uint64(len(p)))
	return seq, nil
}

// Published returns the number of messages published so far.
func (h *Hub) Published() uint64 {
	h.pubMu.Lock()
	defer h.pubMu.Unlock()
	return h.seq
}

// Subscribe makes c a subscriber: it gets every message published from
// now on, written by the hub; nothing else may write to c but through the
// returned [Subscriber]. The hub does not read c: the caller keeps
// reading it, to answer pings and see the peer's close, and when the
// connection ends closes the Subscriber (or has a shutdown.Group, which
// takes it as the connection's writer, do it).
func (h *Hub) Subscribe(c *wsconn.Conn) (*Subscriber, error) {
	s := &Subscriber{h: h, c: c}
	s.task = newTask(h, s)
	h.pubMu.Lock()
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		h.pubMu.Unlock()
		return nil, ErrClosed
	}
	s.r = h.ch.NewWeakReader()
	s.last = h.seq
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	h.pubMu.Unlock()
	h.schedule(s) // the first poll registers the task with the reader
	return s, nil
}

// Stats returns the hub's counters.
func (h *Hub) Stats() Stats {
	st := Stats{Capacity: h.ch.Cap(), Kicked: h.kicked.Load(), PublishedBytes: h.pubBytes.Load()}
	st.Published = h.Published()
	var c counters
	h.mu.Lock()
	c.add(&h.gone)
	st.Subscribers = len(h.subs)
	for s := range h.subs {
		c.add(&s.n)
		st.Buffered += s.c.Undelivered()
	}
	h.mu.Unlock()
	st.Delivered = c.delivered.Load()
	st.MissedFrames = c.missedFrames.Load()
	st.MissedBytes = c.missedBytes.Load()
	st.Overtakes = c.overtakes.Load()
	return st
}

// Close stops the hub: publishing fails with [ErrClosed], and the hub
// stops writing to its subscribers, whose connections stay open (their
// owners close them). Close waits for the hub's goroutines to exit.
// Closing again does nothing.
func (h *Hub) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	subs := make([]*Subscriber, 0, len(h.subs))
	for s := range h.subs {
		subs = append(subs, s)
	}
	h.mu.Unlock()
	h.ch.Terminate()
	for _, s := range subs {
		s.Stop()
	}
	h.wg.Wait()
	return nil
}

// remove takes s out of the hub once its pump stopped, keeping its
// counts.
func (h *Hub) remove(s *Subscriber) {
	h.mu.Lock()
	if _, ok := h.subs[s]; ok {
		delete(h.subs, s)
		h.gone.add(&s.n)
	}
	h.mu.Unlock()
}

// schedule queues s to be polled by a worker, starting one if fewer than
// maxWork run. A notification while s is being polled makes the worker
// poll it again, so none is lost and no two workers poll s at once.
func (h *Hub) schedule(s *Subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case s.running:
		s.again = true
	case s.queued:
	default:
		s.queued = true
		h.queue = append(h.queue, s)
		if h.workers < h.maxWork && !h.closed {
			h.workers++
			h.wg.Add(1) // under h.mu with closed unset: before Close's Wait
			go h.work()
		}
	}
}

// work is a worker: it polls queued subscribers until none is left.
func (h *Hub) work() {
	defer h.wg.Done()
	h.mu.Lock()
	for h.head < len(h.queue) {
		s := h.pop()
		s.queued, s.running = false, true
		h.mu.Unlock()
		more := s.step()
		h.mu.Lock()
		s.running = false
		if more || s.again {
			s.again = false
			s.queued = true
			h.queue = append(h.queue, s)
		}
	}
	h.workers--
	h.mu.Unlock()
}

// pop takes the first subscriber off the queue, with h.mu held. The queue
// is compacted as it drains, so it never holds more than every
// subscriber once.
func (h *Hub) pop() *Subscriber {
	s := h.queue[h.head]
	h.queue[h.head] = nil
	h.head++
	switch {
	case h.head == len(h.queue):
		h.queue, h.head = h.queue[:0], 0
	case h.head >= 64 && h.head >= len(h.queue)/2:
		n := copy(h.queue, h.queue[h.head:])
		clear(h.queue[n:])
		h.queue, h.head = h.queue[:n], 0
	}
	return s
}
