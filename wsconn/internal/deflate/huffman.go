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

// The entries of the symbols of each code, before their lengths are set.
var litEntries, distEntries, symbolEntries = entries(288, litEntry), entries(32, distEntry), entries(numCodeLens, symbolEntry)

func entries(n int, what func(int) entry) []entry {
	e := make([]entry, n)
	for i := range e {
		e[i] = what(i)
	}
	return e
}

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

// fixedLengths returns the code lengths of the fixed literal/length code,
// and in the first 32 those of the fixed distance code.
func fixedLengths() (lit, dist [288]uint8) {
	for i := range lit {
		switch {
		case i < 144:
			lit[i] = 8
		case i < 256:
			lit[i] = 9
		case i < 280:
			lit[i] = 7
		default:
			lit[i] = 8
		}
	}
	for i := range 32 {
		dist[i] = 5
	}
	return lit, dist
}

func buildFixed() (lit, dist []entry) {
	lens, dlens := fixedLengths()
	lit = make([]entry, litTableSize)
	if !buildTable(lit, lens[:], litRootBits, litEntries) {
		panic("deflate: fixed literal/length code does not build")
	}
	dist = make([]entry, distTableSize)
	if !buildTable(dist, dlens[:32], distRootBits, distEntries) {
		panic("deflate: fixed distance code does not build")
	}
	return lit, dist
}

// buildTable fills t with the canonical Huffman code of the code lengths
// lens (section 3.2.2), symbol i's entry being what[i] with its length
// set. It reports false for lengths that make no prefix code: an
// over-subscribed set, or an incomplete one other than a single code of one
// bit (which DEFLATE allows, and compress/flate accepts). A code with no
// symbols at all builds a table where every entry is invalid.
//
// The root is filled the way libdeflate fills it: in the order of the
// codes, shortest first, each entry stored once, the table doubled by a
// copy of itself each time the codes grow by a bit (a code of l bits
// decides every index whose low l bits are its own). A dynamic block of
// a small message is mostly this table, so a copy that moves the 4 KiB
// in a few wide strides beats an entry stored at each of its places.
func buildTable(t []entry, lens []uint8, root uint, what []entry) bool {
	// Two histograms, alternately, halve the chains of increments of
	// one counter that wait for each other (lengths are at most 15).
	var c0, c1 [maxCodeBits + 1]int
	n := len(lens) &^ 1
	for i := 0; i < n; i += 2 {
		c0[lens[i]&15]++
		c1[lens[i+1]&15]++
	}
	if n < len(lens) {
		c0[lens[n]&15]++
	}
	var count [maxCodeBits + 1]int
	maxLen, minLen := 0, maxCodeBits+1
	for l := 1; l <= maxCodeBits; l++ {
		count[l] = c0[l] + c1[l]
		if count[l] > 0 {
			maxLen = l
			minLen = min(minLen, l)
		}
	}
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
	if left > 0 && (maxLen != 1 || count[1] != 1) {
		return false // incomplete
	}

	// The symbols in the order of their codes: by length, then by symbol.
	var start [maxCodeBits + 2]int
	for l := 1; l <= maxCodeBits; l++ {
		start[l+1] = start[l] + count[l]
	}
	var sorted [maxLitSymbols + maxDistSymbols]uint16
	pos := start
	for sym, l := range lens {
		if l > 0 {
			sorted[pos[l]] = uint16(sym)
			pos[l]++
		}
	}

	code := 0 // the next code, most significant bit first
	if minLen <= int(root) {
		size := 1 << minLen
		if left > 0 {
			// One code of one bit: the other bit is invalid, and says
			// so after one bit.
			t[0], t[1] = kindInvalid|1, kindInvalid|1
		}
		for l := minLen; l <= int(root); l++ {
			if l > minLen {
				copy(t[size:2*size], t[:size])
				size *= 2
			}
			for _, sym := range sorted[start[l]:start[l+1]] {
				t[reverse(code, uint8(l))] = what[sym] | entry(l)
				code++
			}
			code <<= 1
		}
	}
	if maxLen <= int(root) {
		return true
	}

	// The codes longer than the root: a link at the root entry of their
	// first root bits to a subtable big enough for the longest code under
	// it, each entry stored at every index its code decides.
	var next [maxCodeBits + 2]int
	next[root+1] = code
	for l := int(root) + 2; l <= maxCodeBits; l++ {
		next[l] = (next[l-1] + count[l-1]) << 1
	}
	var sub [1 << litRootBits]uint8
	c := next
	for _, sym := range sorted[start[root+1]:start[maxLen+1]] {
		l := lens[sym]
		p := reverse(c[l], l) & (rootSize - 1)
		c[l]++
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
	for _, sym := range sorted[start[root+1]:start[maxLen+1]] {
		l := lens[sym]
		rev := reverse(next[l], l)
		next[l]++
		e := what[sym] | entry(l)
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
