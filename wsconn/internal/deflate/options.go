package deflate

const (
	minWindowBits = 8
	maxWindowBits = 15

	defaultLevel = 1
	maxLevel     = 9

	// Below these sizes JSON-like text compresses by a sixth or less on
	// its own, at a few microseconds a message; with the window of
	// earlier messages to refer to, by half already at 128 bytes.
	defaultMinSize         = 256
	defaultMinSizeTakeover = 64
)

// Options configures permessage-deflate on one endpoint. A nil *Options
// means compression is off: a server declines every offer and a client
// offers nothing.
type Options struct {
	// ContextTakeover lets this endpoint keep its compressor's window
	// from one message to the next, and lets the peer keep its own, which
	// compresses a run of similar small messages much better at a cost in
	// memory per connection: this endpoint then holds a compressor (about
	// 0.8 MiB at level 1, 1.1 MiB with a window below 15 bits) and the
	// peer's window (up to 32 KiB) for as long as the connection lives.
	// False, the default, asks for no context takeover in both directions
	// (server_no_context_takeover and client_no_context_takeover): each
	// message is compressed on its own, compressors come from a pool for
	// the length of one message, and an idle connection holds none.
	ContextTakeover bool

	// MaxWindowBits bounds the LZ77 window, as a base-2 logarithm from 8
	// to 15, of this endpoint's compressor and, where the peer's offer
	// allows it (client_max_window_bits), of the peer's. Zero means 15
	// (32 KiB).
	MaxWindowBits int

	// MinSize is the size in bytes below which a message goes out
	// uncompressed (without RSV1), where DEFLATE saves little and costs a
	// compressor's start. Zero means 256, or 64 when this endpoint
	// compresses with context takeover; a negative value compresses every
	// message.
	MinSize int

	// Level is the compression level, from 1 (fastest) to 9 (smallest
	// output). Zero means 1. A window below 15 bits has one level of its
	// own and ignores this.
	Level int
}

// config is Options with the defaults filled in and the fields in range.
type config struct {
	takeover bool
	bits     int
	minSize  int // -1 for the default
	level    int
}

func newConfig(o *Options) config {
	c := config{bits: maxWindowBits, minSize: -1, level: defaultLevel}
	if o == nil {
		return c
	}
	c.takeover = o.ContextTakeover
	if o.MaxWindowBits != 0 {
		c.bits = min(max(o.MaxWindowBits, minWindowBits), maxWindowBits)
	}
	switch {
	case o.MinSize < 0:
		c.minSize = 0
	case o.MinSize > 0:
		c.minSize = o.MinSize
	}
	if o.Level > 0 {
		c.level = min(o.Level, maxLevel)
	}
	return c
}
