// Package frame is the WebSocket framing of RFC 6455 section 5, with no
// I/O: frame headers encoded into and parsed from caller buffers without
// allocating, masking, incremental UTF-8 validation, and the rules for
// close status codes.
package frame

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/pollws/pollws/internal/mask"
)

// Opcodes (RFC 6455 section 5.2).
const (
	OpContinuation byte = 0x0
	OpText         byte = 0x1
	OpBinary       byte = 0x2
	OpClose        byte = 0x8
	OpPing         byte = 0x9
	OpPong         byte = 0xA
)

// Sizes.
const (
	MaxHeader         = 14  // 2 + 8 bytes of length + 4 bytes of mask
	MaxControlPayload = 125 // a control frame's payload
	MaxCloseReason    = MaxControlPayload - 2
)

// IsControl reports whether op is a control opcode.
func IsControl(op byte) bool { return op&0x8 != 0 }

// IsReserved reports whether op is one RFC 6455 reserves.
func IsReserved(op byte) bool { return op > OpBinary && op < OpClose || op > OpPong }

// Header is a frame header.
type Header struct {
	Fin    bool
	Rsv    byte // the three reserved bits, RSV1 as 0x4
	Op     byte
	Masked bool
	Mask   [4]byte
	Length int64
}

// Put encodes h into b and returns its length.
func Put(b *[MaxHeader]byte, h *Header) int {
	b[0] = h.Rsv<<4 | h.Op
	if h.Fin {
		b[0] |= 0x80
	}
	n := 2
	switch {
	case h.Length <= MaxControlPayload:
		b[1] = byte(h.Length)
	case h.Length <= 0xffff:
		b[1] = 126
		binary.BigEndian.PutUint16(b[2:], uint16(h.Length))
		n = 4
	default:
		b[1] = 127
		binary.BigEndian.PutUint64(b[2:], uint64(h.Length))
		n = 10
	}
	if h.Masked {
		b[1] |= 0x80
		n += copy(b[n:], h.Mask[:])
	}
	return n
}

// ErrLength is the parse error of a 64-bit length with its top bit set.
var ErrLength = errors.New("a frame length with the most significant bit set")

// Parse parses the header at the start of p. It returns the header's
// length, or 0 when p does not hold all of it yet.
func Parse(p []byte) (h Header, n int, err error) {
	if len(p) < 2 {
		return h, 0, nil
	}
	n = 2
	switch p[1] & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if p[1]&0x80 != 0 {
		n += 4
	}
	if len(p) < n {
		return h, 0, nil
	}
	h.Fin = p[0]&0x80 != 0
	h.Rsv = p[0] >> 4 & 0x7
	h.Op = p[0] & 0x0f
	k := 2
	switch l := p[1] & 0x7f; l {
	case 126:
		h.Length, k = int64(binary.BigEndian.Uint16(p[2:])), 4
	case 127:
		u := binary.BigEndian.Uint64(p[2:])
		if u>>63 != 0 {
			return h, 0, ErrLength
		}
		h.Length, k = int64(u), 10
	default:
		h.Length = int64(l)
	}
	if p[1]&0x80 != 0 {
		h.Masked = true
		copy(h.Mask[:], p[k:])
	}
	return h, n, nil
}

// Mask applies the masking key to p in place; off is the offset of p[0]
// in the frame's payload. Masking twice unmasks.
func Mask(p []byte, key [4]byte, off int) { mask.XOR(p, key, off) }

// ValidCloseCode reports whether code may be sent in a close frame: the
// codes RFC 6455 and the IANA registry define for use, and the
// application and private ranges.
func ValidCloseCode(code uint16) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// ClosePayload encodes a close frame's payload into b: the code, then the
// reason, which must be at most MaxCloseReason bytes.
func ClosePayload(b *[MaxControlPayload]byte, code uint16, reason string) int {
	binary.BigEndian.PutUint16(b[:], code)
	return 2 + copy(b[2:], reason)
}

// CheckReason returns an error if reason may not be sent in a close frame.
func CheckReason(reason string) error {
	if len(reason) > MaxCloseReason {
		return fmt.Errorf("a close reason of %d bytes, more than %d", len(reason), MaxCloseReason)
	}
	return nil
}
