package frame

import "unicode/utf8"

// UTF8 checks that a text message is valid UTF-8 as it is read, a piece
// at a time: a character may be split across pieces. The zero value is
// at the start of a message.
type UTF8 struct {
	part [utf8.UTFMax]byte // the start of a character split across pieces
	n    uint8
}

// Reset starts a new message.
func (u *UTF8) Reset() { u.n = 0 }

// Done reports whether the text so far ends at a character boundary.
func (u *UTF8) Done() bool { return u.n == 0 }

// Write reports whether p continues valid UTF-8 text. It fails at the
// first byte that no valid text can continue with.
func (u *UTF8) Write(p []byte) bool {
	if u.n > 0 {
		for len(p) > 0 && !utf8.FullRune(u.part[:u.n]) {
			u.part[u.n] = p[0]
			u.n++
			p = p[1:]
		}
		if !utf8.FullRune(u.part[:u.n]) {
			return validPrefix(u.part[:u.n])
		}
		if r, size := utf8.DecodeRune(u.part[:u.n]); r == utf8.RuneError && size <= 1 {
			return false
		}
		u.n = 0
	}
	tail := 0
	for i := len(p) - 1; i >= 0 && i > len(p)-utf8.UTFMax; i-- {
		if utf8.RuneStart(p[i]) {
			if !utf8.FullRune(p[i:]) {
				tail = len(p) - i
			}
			break
		}
	}
	if !utf8.Valid(p[:len(p)-tail]) {
		return false
	}
	if tail > 0 && !validPrefix(p[len(p)-tail:]) {
		return false
	}
	u.n = uint8(copy(u.part[:], p[len(p)-tail:]))
	return true
}

// Check is Write that also says where the text went wrong: it returns
// len(p), true when p continues valid text, else the index in p of the
// first byte that no valid text can continue with, and false. Finding
// that byte goes a byte at a time, which only invalid text pays for.
func (u *UTF8) Check(p []byte) (int, bool) {
	before := *u
	if u.Write(p) {
		return len(p), true
	}
	*u = before
	for i := range p {
		if !u.Write(p[i : i+1]) {
			return i, false
		}
	}
	return len(p), true // not reached: some byte of p failed above
}

// validPrefix reports whether p, an incomplete character, can still
// become a valid one: its first byte starts a sequence of more bytes,
// the rest are continuation bytes, and the second byte is in the range
// the first allows (no overlong forms, no surrogates, nothing past
// U+10FFFF). Failing here is what lets a reader close at the first
// invalid byte instead of at the message's end.
func validPrefix(p []byte) bool {
	if len(p) == 0 {
		return true
	}
	lo, hi := byte(0x80), byte(0xbf)
	switch b := p[0]; {
	case b >= 0xc2 && b <= 0xdf:
	case b == 0xe0:
		lo = 0xa0
	case b >= 0xe1 && b <= 0xec, b == 0xee, b == 0xef:
	case b == 0xed:
		hi = 0x9f
	case b == 0xf0:
		lo = 0x90
	case b >= 0xf1 && b <= 0xf3:
	case b == 0xf4:
		hi = 0x8f
	default:
		return false
	}
	for i, c := range p[1:] {
		if i == 0 && (c < lo || c > hi) || c < 0x80 || c > 0xbf {
			return false
		}
	}
	return true
}
