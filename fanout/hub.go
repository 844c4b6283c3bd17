package fanout

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/wsconn"
)

const (
	defaultCapacity     = 1 << 20
	defaultKickAfter    = 4
	defaultBehindWindow = time.Minute

	// maxTopic is the longest topic name, in bytes.
	maxTopic = 255

	// minSweep is the fewest topics a hub holds before it looks for idle
	// ones to forget.
	minSweep = 64
)

// Errors of a [Hub]. Match them with [errors.Is].
var (
	// ErrClosed is returned by Publish and Subscribe after [Hub.Close].
	ErrClosed = errors.New("fanout: hub closed")

	// ErrTooLarge is returned by Publish for a message larger than
	// [Hub.MaxMessage].
	ErrTooLarge = errors.New("fanout: message larger than the hub's capacity")

	// ErrTopic is returned for a topic that is empty, longer than 255
	// bytes or not valid UTF-8.
	ErrTopic = errors.New("fanout: invalid topic")

	// ErrBus is returned when the [Bus] failed: by Publish, after the
	// message reached this hub's subscribers but not the bus (other
	// instances will count it as missed), and by Subscribe, which then
	// subscribes nobody.
	ErrBus = errors.New("fanout: bus failed")
)

// Options configures a [Hub]. A nil *Options means the defaults.
type Options struct {
	// Capacity is how many bytes of messages the hub holds for the
	// subscribers of each topic, rounded up to a power of two: a
	// subscriber that falls further behind is overtaken. The compressed
	// forms of the messages count too (see the package documentation).
	// Zero or less means 1 MiB.
	Capacity int

	// KickAfter closes a subscriber with status 1008 at its KickAfter-th
	// overtake within BehindWindow. Zero means 4; a negative value means
	// never.
	KickAfter int

	// BehindWindow is the window KickAfter counts overtakes in. Zero or
	// less means a minute.
	BehindWindow time.Duration

	// Workers is the most goroutines that write to subscribers at once.
	// Zero or less means runtime.GOMAXPROCS(0).
	Workers int

	// Bus connects the hub to the hubs of other instances. Nil, the
	// default, means none: the hub serves its own process.
	Bus Bus

	// Logger receives a line per subscriber the hub closes or loses to a
	// write error, and per gap in another instance's messages. Nil means
	// [slog.Default].
	Logger *slog.Logger
}

// Stats counts what a [Hub] did. The counts of subscribers that left are
// kept.
type Stats struct {
	Topics         int    `json:"topics"`          // topics with subscribers now
	Subscribers    int    `json:"subscribers"`     // subscribers now
	Published      uint64 `json:"published"`       // messages published on this hub
	PublishedBytes uint64 `json:"published_bytes"` // their payload bytes
	Delivered      uint64 `json:"delivered"`       // messages handed to subscribers' connections
	MissedFrames   uint64 `json:"missed_frames"`   // messages subscribers missed, as told in notices
	MissedBytes    uint64 `json:"missed_bytes"`    // their payload bytes
	Overtakes      uint64 `json:"overtakes"`       // times a subscriber was overtaken
	Kicked         uint64 `json:"kicked"`          // subscribers closed with 1008
	Buffered       int64  `json:"buffered"`        // bytes subscribers' connections hold, not yet sent
	Capacity       int    `json:"capacity"`        // bytes of messages the hub holds per topic at most

	// Deflated counts compressions of messages for subscribers whose
	// connections compress without context takeover: one per message and
	// form their subscribers share (level and window), made when it is
	// published or received, plus one per message for a subscriber that
	// joined as its message went into the ring without its form.
	// Subscribers with context takeover compress each message for
	// themselves, which this does not count.
	Deflated uint64 `json:"deflated"`

	BusSent     uint64 `json:"bus_sent"`     // messages handed to the bus
	BusErrors   uint64 `json:"bus_errors"`   // messages the bus refused
	BusReceived uint64 `json:"bus_received"` // messages of other instances received for local subscribers
	BusMissed   uint64 `json:"bus_missed"`   // messages of other instances lost on the way
	BusGaps     uint64 `json:"bus_gaps"`     // times messages of another instance were lost
	BusInvalid  uint64 `json:"bus_invalid"`  // messages from the bus that were not a hub's, or out of order, dropped
}

// Hub sends every message published to a topic to the topic's
// subscribers, here and, through its [Bus], on other instances. See the
// package documentation for how.
//
// A Hub is safe for use by multiple goroutines. Lock order: a
// subscriber's pump lock, then h.mu, then a topic's lock; a topic's
// sending lock is never held with another.
type Hub struct {
	id        uint64 // names the hub on the bus
	capacity  int
	kickAfter int
	window    time.Duration
	bus       Bus
	log       *slog.Logger
	now       func() time.Time // the clock overtakes are timed with
	exec      *asyncio.Executor

	mu      sync.Mutex
	topics  map[string]*topic
	subs    int // subscribers of every topic
	closed  bool
	gone    counters // of subscribers that left
	sweepAt int      // how many topics make Publish look for idle ones

	published, publishedBytes, kicked, deflated atomic.Uint64
	busSent, busErrors, busReceived, busMissed  atomic.Uint64
	busGaps, busInvalid                         atomic.Uint64
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
// goroutine: the hub's goroutines run only while subscribers have
// messages to write.
func New(o *Options) *Hub {
	if o == nil {
		o = new(Options)
	}
	h := &Hub{
		id:        rand.Uint64(),
		capacity:  o.Capacity,
		kickAfter: o.KickAfter,
		window:    o.BehindWindow,
		bus:       o.Bus,
		log:       o.Logger,
		now:       time.Now,
		exec:      asyncio.NewExecutor(&asyncio.ExecutorOptions{Workers: o.Workers}),
		topics:    make(map[string]*topic),
		sweepAt:   minSweep,
	}
	if h.capacity <= 0 {
		h.capacity = defaultCapacity
	}
	if h.kickAfter == 0 {
		h.kickAfter = defaultKickAfter
	}
	if h.window <= 0 {
		h.window = defaultBehindWindow
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	return h
}

// MaxMessage returns the size of the largest message the hub takes.
func (h *Hub) MaxMessage() int { return roundCap(h.capacity) - frameHeader }

// Publish sends p as one message of type typ to every subscriber of
// topic: at once to this hub's subscribers, and through the bus, if the
// hub has one, to other instances'. It never waits for a subscriber:
// subscribers that are too far behind are overtaken. p may be reused when
// Publish returns.
//
// When the bus refuses the message, Publish returns an error that wraps
// [ErrBus]: this hub's subscribers got the message, other instances will
// count it as missed.
func (h *Hub) Publish(topic string, typ wsconn.MessageType, p []byte) error {
	if typ != wsconn.Text && typ != wsconn.Binary {
		return fmt.Errorf("fanout: publish of message type %v", typ)
	}
	if len(p) > h.MaxMessage() {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(p), h.MaxMessage())
	}
	if err := checkTopic(topic); err != nil {
		return err
	}
	t, err := h.publishTopic(topic)
	if err != nil {
		return err
	}
	h.published.Add(1)
	h.publishedBytes.Add(uint64(len(p)))
	if t == nil {
		return nil // no subscriber and no bus
	}
	m := t.prepare(h, typ, p)
	t.mu.Lock()
	t.write(m)
	t.mu.Unlock()
	release(m)
	if h.bus == nil {
		return nil
	}
	if err := t.send(h, typ, p); err != nil {
		h.busErrors.Add(1)
		return fmt.Errorf("%w: publish on %q: %w", ErrBus, topic, err)
	}
	h.busSent.Add(1)
	return nil
}

// publishTopic returns the topic to publish on: the one that has
// subscribers or, with a bus, that numbers what this hub sends; nil when
// neither is needed.
func (h *Hub) publishTopic(name string) (*topic, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	t := h.topics[name]
	if t == nil && h.bus != nil {
		t = h.addTopicLocked(name)
	}
	if t != nil {
		t.used = true
	}
	return t, nil
}

// addTopicLocked makes topic name, with h.mu held, first forgetting the
// topics that have neither subscribers nor been published to since the
// last time it looked, once there are many.
func (h *Hub) addTopicLocked(name string) *topic {
	if len(h.topics) >= h.sweepAt {
		for k, t := range h.topics {
			if len(t.subs) == 0 && !t.used {
				delete(h.topics, k)
			}
			t.used = false
		}
		h.sweepAt = max(minSweep, 2*len(h.topics))
	}
	t := newTopic(name)
	h.topics[name] = t
	return t
}

// Subscribe makes c a subscriber of topic: it gets every message
// published to the topic from now on, written by the hub; nothing else
// may write to c but through the returned [Subscriber]. The hub does not
// read c: the caller keeps reading it, to answer pings and see the peer's
// close, and when the connection ends closes the Subscriber (or has a
// shutdown.Group, which takes it as the connection's writer, do it).
//
// The first subscriber of a topic subscribes the hub to it on the bus;
// when the bus fails, Subscribe returns an error that wraps [ErrBus].
func (h *Hub) Subscribe(topic string, c *wsconn.Conn) (*Subscriber, error) {
	if err := checkTopic(topic); err != nil {
		return nil, err
	}
	if c == nil {
		return nil, errors.New("fanout: Subscribe of a nil connection")
	}
	s := &Subscriber{h: h, c: c, key: c.PrepareKey()}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, ErrClosed
	}
	t := h.topics[topic]
	if t == nil {
		t = h.addTopicLocked(topic)
	}
	if len(t.subs) == 0 {
		if err := h.open(t); err != nil {
			h.mu.Unlock()
			return nil, err
		}
	}
	s.t = t
	t.addKey(s.key)
	t.mu.Lock()
	s.r = t.ch.NewWeakReader()
	s.next, s.nextOff = t.index, t.off
	t.mu.Unlock()
	t.subs[s] = struct{}{}
	h.subs++
	h.mu.Unlock()

	task, err := h.exec.SpawnJob(&s.job, (*pump)(s)) // the first poll registers the task with the reader
	if err != nil {                                  // Close began
		s.Stop()
		return nil, ErrClosed
	}
	s.mu.Lock()
	s.task = task
	s.mu.Unlock()
	return s, nil
}

// open gives topic t, which has no subscriber, its ring and its
// subscription to the bus, with h.mu held.
func (h *Hub) open(t *topic) error {
	gen := t.gen + 1
	var stop func()
	if h.bus != nil {
		var err error
		stop, err = h.bus.Subscribe(t.name, func(msg []byte) { h.receive(t, gen, msg) })
		if err != nil {
			return fmt.Errorf("%w: subscribe to %q: %w", ErrBus, t.name, err)
		}
	}
	t.stopBus = stop
	t.mu.Lock()
	t.open(roundCap(h.capacity), gen)
	t.mu.Unlock()
	return nil
}

// remove takes s out of its topic once its pump stopped, keeping its
// counts. The topic's last subscriber closes its ring and its
// subscription to the bus.
func (h *Hub) remove(s *Subscriber) {
	h.mu.Lock()
	t := s.t
	if _, ok := t.subs[s]; !ok {
		h.mu.Unlock()
		return
	}
	delete(t.subs, s)
	t.dropKey(s.key)
	h.subs--
	h.gone.add(&s.n)
	var stop func()
	if len(t.subs) == 0 {
		stop, t.stopBus = t.stopBus, nil
		t.mu.Lock()
		t.close()
		t.mu.Unlock()
		if h.bus == nil {
			delete(h.topics, t.name)
		}
	}
	h.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// Stats returns the hub's counters.
func (h *Hub) Stats() Stats {
	st := Stats{
		Capacity:       roundCap(h.capacity),
		Published:      h.published.Load(),
		PublishedBytes: h.publishedBytes.Load(),
		Kicked:         h.kicked.Load(),
		Deflated:       h.deflated.Load(),
		BusSent:        h.busSent.Load(),
		BusErrors:      h.busErrors.Load(),
		BusReceived:    h.busReceived.Load(),
		BusMissed:      h.busMissed.Load(),
		BusGaps:        h.busGaps.Load(),
		BusInvalid:     h.busInvalid.Load(),
	}
	var c counters
	h.mu.Lock()
	c.add(&h.gone)
	st.Subscribers = h.subs
	for _, t := range h.topics {
		if len(t.subs) > 0 {
			st.Topics++
		}
		for s := range t.subs {
			c.add(&s.n)
			st.Buffered += s.c.Undelivered()
		}
	}
	h.mu.Unlock()
	st.Delivered = c.delivered.Load()
	st.MissedFrames = c.missedFrames.Load()
	st.MissedBytes = c.missedBytes.Load()
	st.Overtakes = c.overtakes.Load()
	return st
}

// Close stops the hub: publishing and subscribing fail with [ErrClosed],
// the hub unsubscribes from the bus and stops writing to its
// subscribers, whose connections stay open (their owners close them).
// Close waits for the hub's goroutines to exit. It does not close the
// bus, which the caller made. Closing again does nothing.
func (h *Hub) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	var subs []*Subscriber
	for _, t := range h.topics {
		for s := range t.subs {
			subs = append(subs, s)
		}
	}
	h.mu.Unlock()
	for _, s := range subs {
		s.Stop()
	}
	return h.exec.Close()
}

// checkTopic returns an error wrapping ErrTopic for a topic name a hub
// does not take.
func checkTopic(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty", ErrTopic)
	case len(name) > maxTopic:
		return fmt.Errorf("%w: %d bytes, at most %d", ErrTopic, len(name), maxTopic)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: %q is not UTF-8", ErrTopic, name)
	}
	return nil
}
