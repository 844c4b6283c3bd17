package deflate

import "errors"

// errZeroForm: a compression asked of the zero [Form].
var errZeroForm = errors.New("deflate: compressing with the zero Form")

// Form is what decides the bytes a [Compressor] without context takeover
// makes of a message: its level and its window. Compressors of one Form
// turn a message into the same bytes, which the peer of each of them
// inflates, so a message sent to many connections is compressed once per
// Form. Forms are comparable; the zero Form is none.
type Form struct {
	level uint8 // 0 below 15 bits, where flate has one encoder whatever the level
	bits  uint8
}

// NewForm returns the Form of level and window bits, as a Compressor
// would have it: below 15 bits the level is ignored. ok is false for a
// window outside 8 to 15 or, at 15 bits, a level outside 1 to 9.
func NewForm(level, bits int) (f Form, ok bool) {
	switch {
	case bits < minWindowBits || bits > maxWindowBits:
		return Form{}, false
	case bits < maxWindowBits:
		return Form{bits: uint8(bits)}, true
	case level < 1 || level > maxLevel:
		return Form{}, false
	}
	return Form{level: uint8(level), bits: uint8(bits)}, true
}

// Level returns f's compression level: 1 to 9 with a window of 15 bits,
// else 0.
func (f Form) Level() int { return int(f.level) }

// Bits returns f's window, as a base-2 logarithm from 8 to 15; 0 for the
// zero Form.
func (f Form) Bits() int { return int(f.bits) }

// Form returns the Form of c's messages; ok is false with context
// takeover, where each message's bytes depend on the messages before it.
func (c *Compressor) Form() (f Form, ok bool) {
	if c.takeover {
		return Form{}, false
	}
	return NewForm(c.level, c.bits)
}

// MinSize returns the size in bytes from which [Compressor.ShouldCompress]
// says a message goes out compressed.
func (c *Compressor) MinSize() int { return c.minSize }

// Compress appends to dst the payload of one compressed message holding
// src, the same bytes a Compressor of Form f appends (see
// [Compressor.Compress]): it allocates nothing when dst has room for
// [MaxCompressedLen](len(src)) more bytes. It is safe for use by multiple
// goroutines; the zero Form gives an error.
func (f Form) Compress(dst, src []byte) ([]byte, error) {
	if f.bits == 0 {
		return dst, errZeroForm
	}
	c := Compressor{level: int(f.level), bits: int(f.bits)}
	return c.Compress(dst, src)
}
