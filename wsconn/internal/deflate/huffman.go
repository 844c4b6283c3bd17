package deflate

import "math/bits"

// A decoding table maps the next bits of the stream (least significant
// first, as DEFLATE packs them) to an entry:
//
//	bits  0-3   the code's length in bits, or for a link the bits of its subtable
//	bits  4-7   how many extra bits follow the code (lengths and distances)
//	bits  8-15  the kind of the entry
//	bits 16-31  the value: a literal byte, a base length or distance, a
//	            code-length symbol, or for a link its subtable's offset
//
// A table has a root of 1<<rootBits entries indexed by the next rootBits
// bits; a code longer than that goes through a link to a subtable indexed
// by the bits after the root's. Every entry, an invalid one too, has the
// length of the bits that decide it, so a decoder short of input can tell
// "need more bits" from "invalid".
type entry = uint32

const (
	kindInvalid = 0
	kindLiteral = 1 << 8
	kindLength  = 2 << 8
	kindEnd     = 3 << 8 // end of block
	kindDist    = 4 << 8
	kindSymbol  = 5 << 8 // a code-length symbol
	kindLink    = 6 << 8
	kindMask    = 0xff << 8
)

const (
	maxCodeBits = 15

	litRootBits  = 10
	distRootBits = 8
	clenRootBits = 7 // code-length codes are at most 7 bits: no links

	// Bounds on a table's size, root and subtables: a subtable of 1<<k
	// entries needs at least k+1 symbols (a full binary tree of depth k
	// has k+1 leaves at least), so 286 symbols fill at most 47 subtables
	// of 32 entries (15-10 bits) and one of 8, and 30 distance symbols 3
	// of 128 (15-8 bits) and one of 32.
	litTableSize  = 1<<litRootBits + 47*32 + 8
	distTableSize = 1<<distRootBits + 3*128 + 32

	maxLitSymbols  = 286 // HLIT at most, RFC 1951 section 3.2.7
	maxDistSymbols = 30
	numCodeLens    = 19
)

func litEntry(sym int) entry {
	switch {
	case sym < 256:
		return kindLiteral | entry(sym)<<16
	case sym == 256:
		return kindEnd
	case sym < 286:
		i := sym - 257
		return kindLength | entry(lengthExtra[i])<<4 | entry(lengthBase[i])<<16
	}
	return kindInvalid // 286 and 287 take part in the fixed code only
}

func distEntry(sym int) entry {
	if sym < maxDistSymbols {
		return kindDist | entry(distExtra[sym])<<4 | entry(distBase[sym])<<16
	}
	return kindInvalid // 30 and 31 take part in the fixed code only
}

func symbolEntry(sym int) entry { return kindSymbol | entry(sym)<<16 }

// RFC 1951 section 3.2.5.
var (
	lengthBase = [29]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31,
		35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lengthExtra = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2,
		3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	distBase = [30]uint16{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193,
		257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	distExtra = [30]uint8{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6,
		7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}

	// The order code-length code lengths come in (section 3.2.7).
	codeLenOrder = [numCodeLens]uint8{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}
)

// The tables of the fixed Huffman code (section 3.2.6), built once.
var fixedLit, fixedDist = buildFixed()

func buildFixed() (lit, dist []entry) {
	var lens [288]uint8
	for i := range lens {
		switch {
		case i < 144:
			lens[i] = 8
		case i < 256:
			lens[i] = 9
		case i < 280:
			lens[i] = 7
		default:
			lens[i] = 8
		}
	}
	lit = make([]entry, litTableSize)
	if !buildTable(lit, lens[:], litRootBits, litEntry) {
		panic("deflate: fixed literal/length code does not build")
	}
	for i := range 32 {
		lens[i] = 5
	}
	dist = make([]entry, distTableSize)
	if !buildTable(dist, lens[:32], distRootBits, distEntry) {
		panic("deflate: fixed distance code does not build")
	}
	return lit, dist
}

// buildTable fills t with the canonical Huffman code of the code lengths
// lens (section 3.2.2), symbol i's entry being what(i) with its length
// set. It reports false for lengths that make no prefix code: an
// over-subscribed set, or an incomplete one other than a single code of one
// bit (which DEFLATE allows, and compress/flate accepts). A code with no
// symbols at all builds a table where every entry is invalid.
func buildTable(t []entry, lens []uint8, root uint, what func(int) entry) bool {
	var count [maxCodeBits + 1]int
	maxLen := 0
	for _, l := range lens {
		count[l]++
		maxLen = max(maxLen, int(l))
	}
	count[0] = 0
	rootSize := 1 << root
	if maxLen == 0 {
		clear(t[:rootSize])
		return true
	}
	left := 1
	for l := 1; l <= maxCodeBits; l++ {
		left = left<<1 - count[l]
		if left < 0 {
			return false // over-subscribed
		}
	}
	if left > 0 {
		if maxLen != 1 || count[1] != 1 {
			return false // incomplete
		}
		// One code of one bit: the other bit is invalid, and says so
		// after one bit.
		for i := range rootSize {
			t[i] = kindInvalid | 1
		}
	}

	var next [maxCodeBits + 2]int
	code := 0
	for l := 1; l <= maxCodeBits; l++ {
		code = (code + count[l-1]) << 1
		next[l] = code
	}

	// Subtable sizes first: for each root prefix of a long code, the
	// longest code under it.
	if maxLen > int(root) {
		var sub [1 << litRootBits]uint8
		c := next
		for _, l := range lens {
			if int(l) <= int(root) {
				if l > 0 {
					c[l]++
				}
				continue
			}
			rev := reverse(c[l], l)
			c[l]++
			p := rev & (rootSize - 1)
			sub[p] = max(sub[p], l-uint8(root))
		}
		off := rootSize
		for p := range rootSize {
			if k := sub[p]; k > 0 {
				if off+1<<k > len(t) {
					return false
				}
				t[p] = kindLink | entry(k) | entry(off)<<16
				off += 1 << k
			}
		}
	}

	for sym, l := range lens {
		if l == 0 {
			continue
		}
		rev := reverse(next[l], l)
		next[l]++
		e := what(sym) | entry(l)
		if int(l) <= int(root) {
			for i := rev; i < rootSize; i += 1 << l {
				t[i] = e
			}
			continue
		}
		link := t[rev&(rootSize-1)]
		k := uint(link & 0xf)
		base := int(link >> 16)
		for i := rev >> root; i < 1<<k; i += 1 << (uint(l) - root) {
			t[base+i] = e
		}
	}
	return true
}

// reverse returns the n low bits of code in reverse order: DEFLATE sends
// Huffman codes most significant bit first into a stream read least
// significant bit first.
func reverse(code int, n uint8) int {
	return int(bits.Reverse16(uint16(code)) >> (16 - n))
}

// lookup returns t's entry for the bits b, through a link if there is one.
func lookup(t []entry, b uint64, root uint) entry {
	e := t[b&(1<<root-1)]
	if e&kindMask == kindLink {
		e = t[int(e>>16)+int(b>>root)&(1<<(e&0xf)-1)]
	}
	return e
}
