package wsconn

import (
	"errors"

	"github.com/pollws/pollws/wsconn/internal/deflate"
	"github.com/pollws/pollws/wsconn/internal/handshake"
)

// CompressionOptions configures permessage-deflate (RFC 7692), which
// browsers, Node's ws and most WebSocket libraries offer: set as
// [Options].Compression, it has [Upgrade] accept a client's offer and
// [Dial] make one. A connection that agreed on it compresses the
// messages that [Conn.PollWriteMessage] and [Conn.WriteBuf] send, from
// MinSize bytes on, and inflates the compressed messages it reads.
// Fragments written with a [MessageWriter] and control frames go out
// uncompressed.
//
// Without context takeover, the default, each message is compressed and
// inflated on its own: the compressor's state (90 KB for a message of up
// to 64 KiB at level 1, about 0.8 MB for a larger one) and the
// inflater's (about 14 KiB) come from pools shared by every
// connection for the length of one message, and an idle connection holds
// only what was agreed, about 0.2 KB. With ContextTakeover, a connection
// whose peer agrees keeps its compressor from its first compressed
// message on, about 0.83 MB at level 1 (1.09 MB with a window below 15
// bits), and the peer's window from the first compressed message it
// reads, 1<<bits bytes (32 KiB unless a smaller window was agreed, 512
// bytes at least), for as long as the connection lives: 0.86 MB per
// connection measured, after a message each way. Small messages that
// resemble the ones before them then compress much better: 128-byte
// JSON-like messages to 41 % of their size instead of 85 %.
//
// A message sent to many connections is best sent as a [PreparedMessage]:
// connections that compress without context takeover at the same level
// and window then share one compression of it, where PollWriteMessage
// compresses it once per connection.
//
// Out-of-range fields are brought into range.
type CompressionOptions struct {
	// ContextTakeover lets the connection keep its compressor's window
	// from one message to the next, and lets the peer keep its own, at
	// the cost in memory given above. False, the default, asks for no
	// context takeover in both directions.
	ContextTakeover bool

	// MaxWindowBits bounds the LZ77 window, as a base-2 logarithm from 8
	// to 15, of the connection's compressor and, where the peer allows it,
	// of the peer's. Zero means 15 (32 KiB).
	MaxWindowBits int

	// MinSize is the size in bytes below which a message goes out
	// uncompressed, where DEFLATE saves little. Zero means 256, or 64 with
	// context takeover; a negative value compresses every message.
	MinSize int

	// Level is the compression level, from 1 (fastest) to 9 (smallest
	// output). Zero means 1. A window below 15 bits has a level of its
	// own and ignores this.
	Level int
}

// ErrCorruptMessage: a compressed message from the peer is not DEFLATE
// data ended as permessage-deflate requires. The connection was closed
// with status 1007.
var ErrCorruptMessage = errors.New("wsconn: corrupt compressed message")

// rsv1 is the RSV1 bit of a frame header's Rsv, which marks the first
// frame of a compressed message.
const rsv1 = 0x4

// deflateOptions returns o as the codec's options; nil for nil, which is
// compression off.
func (o *CompressionOptions) deflateOptions() *deflate.Options {
	if o == nil {
		return nil
	}
	return &deflate.Options{ContextTakeover: o.ContextTakeover, MaxWindowBits: o.MaxWindowBits, MinSize: o.MinSize, Level: o.Level}
}

// compression is the permessage-deflate state of a Conn that agreed on
// it. Without context takeover its compressor and decompressor hold
// nothing between messages.
type compression struct {
	params deflate.Params

	// Guarded by the Conn's mu.
	w    deflate.Compressor
	sent int // messages sent compressed

	// Owned by whoever holds the Conn's read side.
	r         deflate.Decompressor
	inflating bool // the message in progress is compressed
	read      int  // messages read compressed
}

func newCompression(p deflate.Params, client bool, o *deflate.Options) *compression {
	return &compression{
		params: p,
		w:      *deflate.NewCompressor(p, client, o),
		r:      *deflate.NewDecompressor(p, client),
	}
}

// negotiated sets up compression on c as agreed in the handshake, when it
// was.
func (c *Conn) negotiated(p deflate.Params, ok bool) {
	if ok {
		c.z = newCompression(p, c.client, &c.cfg.deflate)
	}
}

// extensionsOf returns the extensions of a handshake: e, or none when ok
// is false.
func extensionsOf(e handshake.Extension, ok bool) []handshake.Extension {
	if !ok {
		return nil
	}
	return []handshake.Extension{e}
}
