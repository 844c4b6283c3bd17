package deflate

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/klauspost/compress/flate"
)

// Compressor compresses the messages that one endpoint of a connection
// sends (RFC 7692 section 7.2.1), each one whole into a caller buffer.
//
// Without context takeover a Compressor holds no compressor between
// messages: one comes from a pool for each message and goes back after
// it. With context takeover it keeps one for the connection's life,
// created with the first compressed message (about 0.8 MiB at level 1,
// 1.1 MiB with a window below 15 bits; see the package doc), and its
// window carries from each message to the next. A Compressor is not safe
// for use by multiple goroutines.
type Compressor struct {
	takeover bool
	bits     int
	level    int
	minSize  int

	w   *writer // kept with context takeover, else nil between messages
	err error   // sticky
}

// NewCompressor returns the compressor for the messages that the endpoint,
// a client or a server, sends under the agreed p and its own options o
// (nil means the defaults). It uses context takeover only where both p
// and o allow it, and a window no larger than both allow.
func NewCompressor(p Params, client bool, o *Options) *Compressor {
	c := newConfig(o)
	noTakeover, bits := p.ServerNoContextTakeover, p.ServerMaxWindowBits
	if client {
		noTakeover, bits = p.ClientNoContextTakeover, p.ClientMaxWindowBits
	}
	if bits == 0 {
		bits = maxWindowBits
	}
	takeover := c.takeover && !noTakeover
	minSize := c.minSize
	switch {
	case minSize >= 0:
	case takeover:
		minSize = defaultMinSizeTakeover
	default:
		minSize = defaultMinSize
	}
	return &Compressor{
		takeover: takeover,
		bits:     min(max(bits, minWindowBits), c.bits),
		level:    c.level,
		minSize:  minSize,
	}
}

// ShouldCompress reports whether a message of n bytes is to go out
// compressed (with RSV1), or as it is: messages below the options'
// MinSize are not worth compressing.
func (c *Compressor) ShouldCompress(n int) bool { return n >= c.minSize }

// Compress appends to dst the payload of one compressed message holding
// src: a DEFLATE stream ended by a sync flush whose last four bytes, 0x00
// 0x00 0xff 0xff, are removed as RFC 7692 section 7.2.1 requires. It
// allocates nothing when dst has room for [MaxCompressedLen](len(src))
// more bytes. With context takeover the message is then part of the
// window, so it must be sent: compress only once the message is sure to
// be accepted. An error is sticky; it is not expected from a working
// compressor.
func (c *Compressor) Compress(dst, src []byte) ([]byte, error) {
	if c.err != nil {
		return dst, c.err
	}
	if !c.takeover && len(src) <= encMaxInput && (c.level == defaultLevel || c.bits < maxWindowBits) {
		return compressSmall(dst, src, 1<<c.bits), nil
	}
	return c.compressFlate(dst, src)
}

// compressFlate is Compress with klauspost's flate, for a message the
// encoder does not take: one with context takeover, above 64 KiB, or at a
// level above 1 with a window of 15 bits.
func (c *Compressor) compressFlate(dst, src []byte) ([]byte, error) {
	w := c.w
	if w == nil {
		w = getWriter(c.level, c.bits)
		if c.takeover {
			c.w = w
		}
	}
	w.sink.b = dst
	_, err := w.Write(src)
	if err == nil {
		err = w.Flush()
	}
	out := w.sink.b
	w.sink.b = nil
	if !c.takeover {
		putWriter(w, c.level, c.bits)
	}
	if err == nil && (len(out) < len(dst)+len(tail) || !bytes.Equal(out[len(out)-len(tail):], tail[:])) {
		err = fmt.Errorf("deflate: the compressor's flush does not end with %x", tail)
	}
	if err != nil {
		c.err = err
		c.w = nil
		return dst, err
	}
	return out[:len(out)-len(tail)], nil
}

// Release gives back a compressor kept with context takeover. The
// Compressor stays usable: its next message starts a new window, which a
// peer reads like any other. Release without context takeover does
// nothing.
func (c *Compressor) Release() {
	if c.w != nil {
		putWriter(c.w, c.level, c.bits)
		c.w = nil
	}
}

// MaxCompressedLen is the most bytes [Compressor.Compress] appends for a
// message of n bytes. flate falls back to stored blocks for data it
// cannot compress: 5 bytes of header for each block (16 KiB at least),
// plus a partial byte and the flush.
func MaxCompressedLen(n int) int {
	return n + 5*(n>>14+2) + 8
}

// writers pools compressors by level and window bits: flate makes a window
// below 15 bits with an encoder of its own, whatever the level (pooled
// under level 0).
var writers [maxLevel + 1][maxWindowBits + 1]sync.Pool

// writer is a flate compressor that writes to its own sink.
type writer struct {
	*flate.Writer
	sink appendWriter
}

func getWriter(level, bits int) *writer {
	if bits < maxWindowBits {
		level = 0
	}
	if w, ok := writers[level][bits].Get().(*writer); ok {
		return w
	}
	w := new(writer)
	if bits < maxWindowBits {
		w.Writer, _ = flate.NewWriterWindow(&w.sink, 1<<bits)
	} else {
		w.Writer, _ = flate.NewWriter(&w.sink, level)
	}
	return w
}

// putWriter resets w, which then starts a new stream, and pools it.
func putWriter(w *writer, level, bits int) {
	if bits < maxWindowBits {
		level = 0
	}
	w.Reset(&w.sink)
	writers[level][bits].Put(w)
}

// appendWriter appends what is written to b.
type appendWriter struct{ b []byte }

func (a *appendWriter) Write(p []byte) (int, error) {
	a.b = append(a.b, p...)
	return len(p), nil
}
