package wsconn

import (
	"log/slog"
	"sync"
	"time"

	"github.com/pollws/pollws/wsconn/internal/deflate"
)

const (
	defaultMaxMessageSize = 32 << 20
	defaultCloseTimeout   = 5 * time.Second
	defaultPingInterval   = 30 * time.Second
	defaultIdleTimeout    = 2 * time.Minute
	readBufferSize        = 8 << 10
)

// Options configures a [Conn]. A nil *Options means the defaults.
type Options struct {
	// BufferSize is how many bytes of frames the connection holds before
	// a write answers NotReady. Zero or less means 64 KiB.
	BufferSize int

	// MaxMessageSize is the largest message a read accepts, in bytes; a
	// larger one closes the connection with status 1009. A read never
	// holds more than what arrived of a message, whatever its frames
	// claim. Zero or less means 32 MiB.
	MaxMessageSize int64

	// PingInterval is how long the peer may send nothing before the
	// connection sends a ping, which a live peer answers. Zero means 30
	// seconds; a negative value sends no pings.
	PingInterval time.Duration

	// IdleTimeout closes the connection, with status 1008 (policy violation) and [ErrIdle],
	// when nothing came from the peer, not even a pong, for this long.
	// Zero means 2 minutes; a negative value never closes an idle
	// connection.
	IdleTimeout time.Duration

	// CloseTimeout bounds the closing handshake: how long a shutdown
	// waits for the peer's close frame after sending its own, and for the
	// socket to take the close frame when it is full. Zero or less means
	// 5 seconds.
	CloseTimeout time.Duration

	// WriteTimeout fails the connection when the peer takes none of the
	// pending bytes for this long. Zero, the default, means no limit: a
	// full buffer makes writes answer NotReady, and IdleTimeout and the
	// application decide when a peer that does not read is gone.
	WriteTimeout time.Duration

	// Logger receives at most one line per connection, when a read closes
	// it because of bad input from the peer. Nil means [slog.Default].
	Logger *slog.Logger

	// Compression turns on permessage-deflate (RFC 7692) for the
	// connections that [Upgrade] and [Dial] make: Upgrade accepts a
	// client's offer, Dial makes one, and the connection compresses when
	// both sides agree. Nil, the default, is off: Upgrade declines every
	// offer and Dial offers nothing. [Server] and [Client], which make no
	// handshake, never compress. See [CompressionOptions] for what it
	// costs.
	Compression *CompressionOptions
}

// config is the Options of connections with the defaults filled in,
// shared by the connections made with equal options.
type config struct {
	bufferSize   int
	maxMessage   int64
	ping, idle   time.Duration
	closeTimeout time.Duration
	writeTimeout time.Duration
	log          *slog.Logger
	deflate      deflate.Options // Compression, for the handshake's agreement
}

// configs holds the configs in use, so that connections with equal
// options share one; at most maxConfigs of them, in case an application
// makes options per connection. A map under a lock rather than a
// sync.Map: its lookups take the key unboxed, so a connection's config
// costs no garbage.
var (
	configsMu  sync.RWMutex
	configs    = map[config]*config{}
	maxConfigs = 64
)

func newConfig(o *Options) *config {
	c := makeConfig(o)
	configsMu.RLock()
	p := configs[c]
	configsMu.RUnlock()
	if p != nil {
		return p
	}
	configsMu.Lock()
	defer configsMu.Unlock()
	if p := configs[c]; p != nil {
		return p
	}
	p = new(config) // not &c, which would put every lookup's c on the heap
	*p = c
	if len(configs) < maxConfigs {
		configs[c] = p
	}
	return p
}

func makeConfig(o *Options) config {
	var c config
	if o != nil {
		c = config{bufferSize: o.BufferSize, maxMessage: o.MaxMessageSize, ping: o.PingInterval, idle: o.IdleTimeout,
			closeTimeout: o.CloseTimeout, writeTimeout: o.WriteTimeout, log: o.Logger}
		if d := o.Compression.deflateOptions(); d != nil {
			c.deflate = *d
		}
	}
	if c.maxMessage <= 0 {
		c.maxMessage = defaultMaxMessageSize
	}
	switch {
	case c.ping == 0:
		c.ping = defaultPingInterval
	case c.ping < 0:
		c.ping = 0
	}
	switch {
	case c.idle == 0:
		c.idle = defaultIdleTimeout
	case c.idle < 0:
		c.idle = 0
	}
	if c.closeTimeout <= 0 {
		c.closeTimeout = defaultCloseTimeout
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	return c
}
