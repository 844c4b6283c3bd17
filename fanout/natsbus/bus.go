package natsbus

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pollws/pollws/fanout"
)

const (
	defaultPrefix          = "fanout"
	defaultName            = "pollws-fanout"
	defaultReconnectWait   = 500 * time.Millisecond
	defaultReconnectBuffer = 8 << 20
	defaultPendingBytes    = 64 << 20

	// subscribeTimeout bounds the round trip that confirms a subscription.
	subscribeTimeout = time.Second
)

// Errors of a [Bus]. Match them with [errors.Is].
var (
	// ErrDisconnected: the connection to the broker is lost. The bus
	// reconnects by itself; [Bus.Err] returns an error that wraps it until
	// then, and [Options].OnError gets one for each outage. Publish
	// returns it when a message cannot be held for the reconnection.
	ErrDisconnected = errors.New("natsbus: disconnected from the broker")

	// ErrSlowConsumer: the client dropped messages of a subscription that
	// the instance did not take fast enough ([Options].PendingBytes).
	ErrSlowConsumer = errors.New("natsbus: slow consumer: messages dropped")

	// ErrClosed is returned by Publish and Subscribe after [Bus.Close].
	ErrClosed = errors.New("natsbus: bus closed")
)

// Options configures a [Bus]. A nil *Options means the defaults.
type Options struct {
	// Prefix is the first tokens of the subjects of the topics, such as
	// "chat" or "app.fanout": instances share topics when they use the
	// same prefix. Empty means "fanout".
	Prefix string

	// Name is the connection's name, as the broker shows it. Empty means
	// "pollws-fanout".
	Name string

	// ReconnectWait is how long the bus waits between attempts to
	// reconnect to a broker. Zero or less means half a second.
	ReconnectWait time.Duration

	// ReconnectBuffer is how many bytes of published messages the bus
	// holds while it is disconnected, to send when it is back; a message
	// that does not fit is refused with ErrDisconnected. Zero means 8 MiB;
	// a negative value holds none.
	ReconnectBuffer int

	// PendingBytes is how many bytes of a subscription's messages may
	// wait for the instance to take them before the client drops messages
	// (a slow consumer). Zero or less means 64 MiB.
	PendingBytes int

	// OnError, if set, is called with an error that wraps ErrDisconnected
	// at each outage, ErrSlowConsumer when messages were dropped, or
	// another error the broker reported; nil means the bus logs them at
	// level Warn. It is called from one goroutine of the bus, one call at
	// a time, and must not block for long.
	OnError func(err error)

	// OnReconnect, if set, is called when the connection is back after an
	// outage and the broker has the subscriptions again (a message
	// published elsewhere from then on reaches the bus), from the
	// goroutine OnError is called from; nil means the bus logs it at
	// level Info.
	OnReconnect func()

	// Logger receives the lines of the default OnError and OnReconnect.
	// Nil means [slog.Default].
	Logger *slog.Logger
}

// Stats counts what a [Bus] did and what went wrong.
type Stats struct {
	Connected     bool   `json:"connected"`      // connected to a broker now
	Subscriptions int    `json:"subscriptions"`  // topics subscribed to now
	Published     uint64 `json:"published"`      // messages sent or held for the reconnection
	PublishErrors uint64 `json:"publish_errors"` // messages refused
	Received      uint64 `json:"received"`       // messages delivered to the hub
	Dropped       uint64 `json:"dropped"`        // messages the client dropped for a slow consumer
	SlowConsumers uint64 `json:"slow_consumers"` // times a subscription became a slow consumer
	Disconnects   uint64 `json:"disconnects"`    // outages
	Reconnects    uint64 `json:"reconnects"`     // reconnections after an outage
	Errors        uint64 `json:"errors"`         // other errors the broker reported
}

// Bus is a [fanout.Bus] over the subjects of a NATS broker. Make one with
// [Connect], give it to [fanout.Options].Bus, and close it after the hub.
//
// A Bus is safe for use by multiple goroutines.
type Bus struct {
	nc          *nats.Conn
	prefix      string
	pending     int
	log         *slog.Logger
	onError     func(error)
	onReconnect func()

	mu      sync.Mutex
	subs    map[*nats.Subscription]struct{}
	dropped uint64 // by subscriptions that ended
	err     error  // the outage under way
	closed  bool

	published, publishErrors, received atomic.Uint64
	slowConsumers, disconnects         atomic.Uint64
	reconnects, errors                 atomic.Uint64
}

var _ fanout.Bus = (*Bus)(nil)

// Connect connects to the NATS broker at url (nats://host:port, or
// several URLs separated by commas, for a cluster; tls:// for TLS; user
// and password, or a token, in the URL) and returns a bus over it. It
// fails when no broker answers; once connected, the bus reconnects by
// itself after an outage.
func Connect(url string, o *Options) (*Bus, error) {
	if o == nil {
		o = new(Options)
	}
	b := &Bus{
		prefix:      o.Prefix,
		pending:     o.PendingBytes,
		log:         o.Logger,
		onError:     o.OnError,
		onReconnect: o.OnReconnect,
		subs:        make(map[*nats.Subscription]struct{}),
	}
	if b.prefix == "" {
		b.prefix = defaultPrefix
	}
	if err := checkPrefix(b.prefix); err != nil {
		return nil, err
	}
	if b.pending <= 0 {
		b.pending = defaultPendingBytes
	}
	if b.log == nil {
		b.log = slog.Default()
	}
	name, wait, rbuf := o.Name, o.ReconnectWait, o.ReconnectBuffer
	if name == "" {
		name = defaultName
	}
	if wait <= 0 {
		wait = defaultReconnectWait
	}
	switch {
	case rbuf == 0:
		rbuf = defaultReconnectBuffer
	case rbuf < 0:
		rbuf = -1 // what nats.go takes for none
	}
	nc, err := nats.Connect(url,
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(wait),
		nats.ReconnectBufSize(rbuf),
		nats.DisconnectErrHandler(b.disconnected),
		nats.ReconnectHandler(b.reconnected),
		nats.ErrorHandler(b.asyncError),
	)
	if err != nil {
		return nil, fmt.Errorf("natsbus: connect to %s: %w", url, err)
	}
	b.nc = nc
	return b, nil
}

// Publish sends msg on topic's subject. While the bus is disconnected it
// holds msg for the reconnection, or fails with [ErrDisconnected] when it
// cannot; after Close it fails with [ErrClosed].
func (b *Bus) Publish(topic string, msg []byte) error {
	err := b.nc.Publish(subject(b.prefix, topic), msg)
	if err != nil {
		b.publishErrors.Add(1)
		return b.wrap(err)
	}
	b.published.Add(1)
	return nil
}

// Subscribe has deliver called with every message on topic's subject,
// one call at a time and in the order each publisher sent them, on a
// goroutine of the subscription's own, until stop is called. While the
// bus is connected, Subscribe returns once the broker has the
// subscription (one round trip, at most a second), so that every message
// published afterwards is delivered; during an outage it returns at once,
// and the subscription reaches the broker on reconnection.
func (b *Bus) Subscribe(topic string, deliver func(msg []byte)) (stop func(), err error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, ErrClosed
	}
	sub, err := b.nc.Subscribe(subject(b.prefix, topic), func(m *nats.Msg) {
		b.received.Add(1)
		deliver(m.Data)
	})
	if err == nil {
		if err = sub.SetPendingLimits(-1, b.pending); err != nil {
			sub.Unsubscribe()
		}
	}
	if err != nil {
		b.mu.Unlock()
		return nil, b.wrap(err)
	}
	b.subs[sub] = struct{}{}
	b.mu.Unlock()
	if b.nc.IsConnected() {
		// An outage that begins meanwhile fails the flush; the client
		// sends the subscription again on reconnection.
		b.nc.FlushTimeout(subscribeTimeout)
	}
	var once sync.Once
	return func() { once.Do(func() { b.unsubscribe(sub) }) }, nil
}

// unsubscribe ends sub, keeping the count of what it dropped.
func (b *Bus) unsubscribe(sub *nats.Subscription) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.subs[sub]; !ok {
		return // the bus closed
	}
	delete(b.subs, sub)
	b.dropped += dropped(sub)
	sub.Unsubscribe()
}

// dropped returns the messages the client dropped for sub.
func dropped(sub *nats.Subscription) uint64 {
	n, err := sub.Dropped()
	if err != nil || n < 0 {
		return 0
	}
	return uint64(n)
}

// Err returns nil while the bus is connected; during an outage, an error
// that wraps [ErrDisconnected] and says why; after Close, [ErrClosed].
func (b *Bus) Err() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return ErrClosed
	case b.err != nil:
		return b.err
	}
	return nil
}

// Stats returns the bus's counters.
func (b *Bus) Stats() Stats {
	st := Stats{
		Connected:     b.nc.IsConnected(),
		Published:     b.published.Load(),
		PublishErrors: b.publishErrors.Load(),
		Received:      b.received.Load(),
		SlowConsumers: b.slowConsumers.Load(),
		Disconnects:   b.disconnects.Load(),
		Reconnects:    b.reconnects.Load(),
		Errors:        b.errors.Load(),
	}
	b.mu.Lock()
	st.Subscriptions = len(b.subs)
	st.Dropped = b.dropped
	for sub := range b.subs {
		st.Dropped += dropped(sub)
	}
	b.mu.Unlock()
	return st
}

// Close ends the subscriptions and closes the connection to the broker,
// after sending the messages published before. Close a hub that uses the
// bus first. Closing again does nothing.
func (b *Bus) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	for sub := range b.subs {
		b.dropped += dropped(sub)
	}
	clear(b.subs)
	b.mu.Unlock()
	if b.nc.IsConnected() {
		b.nc.FlushTimeout(time.Second)
	}
	b.nc.Close()
	return nil
}

// wrap returns the error of a call to the client, in this package's
// terms.
func (b *Bus) wrap(err error) error {
	switch {
	case errors.Is(err, nats.ErrConnectionClosed):
		return fmt.Errorf("%w: %w", ErrClosed, err)
	case errors.Is(err, nats.ErrReconnectBufExceeded), errors.Is(err, nats.ErrConnectionReconnecting), errors.Is(err, nats.ErrNoServers):
		return fmt.Errorf("%w: %w", ErrDisconnected, err)
	}
	return fmt.Errorf("natsbus: %w", err)
}
