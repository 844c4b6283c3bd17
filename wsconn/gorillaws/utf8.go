package gorillaws

import "unicode/utf8"

// validator checks that a stream of bytes is UTF-8 as it arrives, in
// pieces of any size, and finds the first byte that no valid text can
// contain at its place (an overlong form, a surrogate, a code point past
// U+10FFFF, a stray continuation byte), so that a reader can fail on that
// byte without waiting for the rest of the message. Its zero value is at
// the start of a text.
type validator struct {
	need   uint8 // continuation bytes still expected in the current sequence
	lo, hi byte  // the range of the next continuation byte
}

// write checks p, the next piece of the text. It returns len(p), true if
// p may be followed by more bytes to make valid text, or the index of the
// first byte that cannot, and false.
func (v *validator) write(p []byte) (int, bool) {
	i := 0
	for ; v.need > 0 && i < len(p); i++ {
		if !v.step(p[i]) {
			return i, false
		}
	}
	if i == len(p) {
		return i, true
	}
	// Most pieces are valid: check all but a sequence cut at the end at
	// once, and go byte by byte only over that sequence, or to find the
	// byte where an invalid piece goes wrong.
	end := len(p)
	for j := len(p) - 1; j >= i && j >= len(p)-3; j-- {
		if p[j] >= 0xc0 {
			end = j
			break
		}
		if p[j] < 0x80 {
			break
		}
	}
	if utf8.Valid(p[i:end]) {
		i = end
	}
	for ; i < len(p); i++ {
		if !v.step(p[i]) {
			return i, false
		}
	}
	return i, true
}

// complete reports whether the text so far ends at a character's end.
func (v *validator) complete() bool { return v.need == 0 }

// step takes one byte: the ranges are those of the Unicode Standard's
// table 3-7, "Well-Formed UTF-8 Byte Sequences".
func (v *validator) step(b byte) bool {
	if v.need > 0 {
		if b < v.lo || b > v.hi {
			return false
		}
		v.need--
		v.lo, v.hi = 0x80, 0xbf
		return true
	}
	v.lo, v.hi = 0x80, 0xbf
	switch {
	case b < 0x80:
	case b < 0xc2:
		return false
	case b < 0xe0:
		v.need = 1
	case b == 0xe0:
		v.need, v.lo = 2, 0xa0
	case b == 0xed:
		v.need, v.hi = 2, 0x9f
	case b < 0xf0:
		v.need = 2
	case b == 0xf0:
		v.need, v.lo = 3, 0x90
	case b < 0xf4:
		v.need = 3
	case b == 0xf4:
		v.need, v.hi = 3, 0x8f
	default:
		return false
	}
	return true
}
