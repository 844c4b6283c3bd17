package deflate

import (
	"encoding/binary"
	"math"
	"math/bits"
	"slices"
	"sync"
)

// The encoder compresses a message of up to 64 KiB on its own, which is
// what every message is without context takeover: the default. Such a
// message is small, so the fixed costs of a general compressor weigh:
// flate's level 1 spends about 40 % of its time on a 1 KiB message
// building and writing Huffman codes, and looks matches up in a table of
// 128 KiB sized for long streams. This encoder does what level 1 does,
// sized for a message: a greedy LZ77 matcher (matches of 4 bytes or more,
// found through a hash of 5) over a table sized to the message (16 KiB
// at most, 1 KiB for 256 bytes) and cleared for each one, so that a
// message always compresses to the same bytes; literals kept as runs of
// the message; Huffman code lengths computed in place for the symbols
// used only (Moffat and Katajainen's algorithm) and limited to 15 bits
// the way miniz does it; and for each block the smallest of a dynamic,
// fixed or stored encoding.
const (
	encMaxInput    = 1 << 16 // positions fit the table's uint16 entries
	encHashBits    = 13      // at most; bits.Len(len(src)) for a smaller message
	encMinHashBits = 8
	encBlockTokens = 1 << 14 // a block's tokens, each a run of literals or a match
	encMaxRun      = 1<<15 - 1
	// After 1<<encSkipLog bytes without a match the matcher looks at
	// every second position, then every third, and so on: incompressible
	// data costs little.
	encSkipLog = 5
)

// A token is a run of literal bytes, run length<<16 | offset in the
// message, or a match: tokenMatch | distance code<<23 | (length-3)<<15 |
// (distance-1).
const tokenMatch = 1 << 31

// An hcode is a Huffman code as it is written, bit-reversed, in its low
// 16 bits, and its length above them.
type hcode = uint32

// encoder is the state of compressing one message, pooled.
type encoder struct {
	table  [1 << encHashBits]uint16
	tokens [encBlockTokens]uint32
	ntok   int

	litFreq  [maxLitSymbols]uint32
	distFreq [maxDistSymbols]uint32
	// The symbols of each code that the block uses: the codes are built
	// from these alone, not from every symbol.
	syms     [maxLitSymbols]uint16
	distSyms [maxDistSymbols + 1]uint16
	clSymSet [numCodeLens + 1]uint16

	litLens   [maxLitSymbols]uint8
	distLens  [maxDistSymbols]uint8
	litCodes  [512]hcode // 286 used: a power of two spares bounds checks
	distCodes [32]hcode

	// The code lengths of a dynamic block, run-length coded (RFC 1951
	// section 3.2.7): a symbol and its extra bits each.
	allLens  [maxLitSymbols + maxDistSymbols + 8]uint8
	clSyms   [maxLitSymbols + maxDistSymbols]uint8
	clExtra  [maxLitSymbols + maxDistSymbols]uint8
	nclSyms  int
	clFreq   [numCodeLens]uint32
	clLens   [numCodeLens]uint8
	clCodes  [numCodeLens]hcode
	huffKeys [maxLitSymbols]uint32
	huffA    [maxLitSymbols + 1]uint32

	src        []byte
	blockStart int // where in src the block being tokenized begins
	pos        int // how far src is tokenized

	out   []byte // the whole capacity of the destination
	o     int    // bytes written to out
	acc   uint64 // bits not yet written, the first in the lowest bits
	nbits uint
}

var encoders = sync.Pool{New: func() any { return new(encoder) }}

// compressSmall appends to dst src compressed on its own, as Compress
// does, with no match further back than maxDist: a DEFLATE stream ended
// by a sync flush without its last four bytes. len(src) must be at most
// encMaxInput.
func compressSmall(dst, src []byte, maxDist int) []byte {
	e := encoders.Get().(*encoder)
	dst = e.compress(dst, src, maxDist)
	e.src, e.out = nil, nil
	encoders.Put(e)
	return dst
}

func (e *encoder) compress(dst, src []byte, maxDist int) []byte {
	dst = slices.Grow(dst, MaxCompressedLen(len(src)))
	e.out, e.o = dst[:cap(dst)], len(dst)
	e.acc, e.nbits = 0, 0
	e.src, e.blockStart, e.pos = src, 0, 0
	e.startBlock()
	e.tokenize(maxDist)
	if e.ntok > 0 {
		e.writeBlock()
	}
	// The sync flush: an empty stored block, whose length fields are the
	// 0x00 0x00 0xff 0xff that RFC 7692 removes.
	e.writeBits(0, 3)
	e.flush()
	if e.nbits > 0 {
		e.o++
	}
	return e.out[:e.o]
}

func load32(b []byte, i int) uint32 { return binary.LittleEndian.Uint32(b[i:]) }
func load64(b []byte, i int) uint64 { return binary.LittleEndian.Uint64(b[i:]) }

// hash5 hashes the low 5 bytes of u: one more byte than a match needs
// spares a look at most candidates that would not match.
func hash5(u uint64, shift uint) uint32 {
	return uint32(((u << 24) * 0xcf1bbcdcb7a56463) >> (shift & 63))
}

// tokenize turns e.src into literals and matches, writing a block each
// time the tokens fill up.
func (e *encoder) tokenize(maxDist int) {
	src := e.src
	n := len(src)
	s, emit := 0, 0
	sLimit := n - 8 // the last position whose 8 bytes can be loaded
	hb := min(max(bits.Len(uint(n)), encMinHashBits), encHashBits)
	table := e.table[:1<<hb]
	clear(table)
	shift := uint(64 - hb)
	for s <= sLimit {
		cv := load64(src, s)
		h := hash5(cv, shift)
		c := int(table[h])
		table[h] = uint16(s)
		if c >= s || s-c > maxDist || load32(src, c) != uint32(cv) {
			s += 1 + (s-emit)>>encSkipLog
			continue
		}
		// A match: extend it back over the bytes not yet emitted, then
		// forward.
		for c > 0 && s > emit && src[c-1] == src[s-1] {
			c--
			s--
		}
		l := matchLen(src[c:], src[s:min(n, s+maxMatch)])
		e.literals(src[emit:s])
		e.match(l, s-c)
		s += l
		emit = s
		if s-2 <= sLimit {
			table[hash5(load64(src, s-2), shift)] = uint16(s - 2)
		}
	}
	e.literals(src[emit:])
}

// matchLen returns how many bytes a and b have in common at their start,
// b being no longer than a.
func matchLen(a, b []byte) int {
	n := 0
	for len(b)-n >= 8 {
		x := binary.LittleEndian.Uint64(a[n:]) ^ binary.LittleEndian.Uint64(b[n:])
		if x != 0 {
			return n + bits.TrailingZeros64(x)>>3
		}
		n += 8
	}
	for n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

func (e *encoder) startBlock() {
	e.ntok = 0
	clear(e.litFreq[:])
	clear(e.distFreq[:])
}

// symbols lists into buf, in order, the symbols whose frequency is not
// 0. It sets a bit for each symbol without a branch, a branch on each
// symbol being hard to predict, and then lists the bits.
func symbols(freq []uint32, buf []uint16) []uint16 {
	syms := buf[:0]
	for w := 0; w < len(freq); w += 64 {
		var used uint64
		for j, f := range freq[w:min(w+64, len(freq))] {
			used |= uint64((f|-f)>>31) << (j & 63)
		}
		for used != 0 {
			syms = append(syms, uint16(w+bits.TrailingZeros64(used)))
			used &= used - 1
		}
	}
	return syms
}

// literals adds the bytes p, which are e.src[e.pos:e.pos+len(p)], as
// literals.
func (e *encoder) literals(p []byte) {
	for len(p) > 0 {
		k := min(len(p), encMaxRun)
		for _, b := range p[:k] {
			e.litFreq[b]++
		}
		e.tokens[e.ntok] = uint32(k)<<16 | uint32(e.pos)
		e.ntok++
		e.pos += k
		p = p[k:]
		if e.ntok == encBlockTokens {
			e.writeBlock()
			e.startBlock()
		}
	}
}

func (e *encoder) match(length, dist int) {
	dc := distCode(dist - 1)
	e.tokens[e.ntok] = tokenMatch | uint32(dc)<<23 | uint32(length-3)<<15 | uint32(dist-1)
	e.litFreq[257+int(lengthCode[length-3])]++
	e.distFreq[dc]++
	e.ntok++
	e.pos += length
	if e.ntok == encBlockTokens {
		e.writeBlock()
		e.startBlock()
	}
}

// lengthCode maps a match length less 3 to its code less 257, and
// distCodes a distance less 1 to its code: directly below 256, else by
// the distance's bits above the lowest 7 (codes from 16 on cover whole
// multiples of 128).
var lengthCode, distCodes = codeTables()

// lengthExtras maps a match length less 3 to its extra bits: their value,
// and their count from bit 8 on.
var lengthExtras = func() (x [256]uint16) {
	for l := range x {
		c := lengthCode[l]
		x[l] = uint16(l+3-int(lengthBase[c])) | uint16(lengthExtra[c])<<8
	}
	return x
}()

// The distance codes' bases less 1 and extra bits, by code, 32 of them
// to spare bounds checks.
var distBase1, distExtra32 = func() (b [32]uint32, x [32]uint8) {
	for c := range distBase {
		b[c], x[c] = uint32(distBase[c])-1, distExtra[c]
	}
	return b, x
}()

func codeTables() (lc [256]uint8, dc [512]uint8) {
	for c := range lengthBase {
		for l := int(lengthBase[c]); l < int(lengthBase[c])+1<<lengthExtra[c] && l <= maxMatch; l++ {
			lc[l-3] = uint8(c)
		}
	}
	for c := range distBase {
		for d := int(distBase[c]) - 1; d < int(distBase[c])-1+1<<distExtra[c]; d++ {
			if d < 256 {
				dc[d] = uint8(c)
			} else {
				dc[256+d>>7] = uint8(c)
			}
		}
	}
	return lc, dc
}

func distCode(d int) int {
	if d < 256 {
		return int(distCodes[d])
	}
	return int(distCodes[256+d>>7])
}

// The fixed code (section 3.2.6), for writing: the literal/length
// symbols' lengths (for the cost of a fixed block) and codes, and the
// distance codes, all of 5 bits.
var fixedLitLens, fixedLitCodes, fixedDistCodes = fixedCodes()

func fixedCodes() (ll [maxLitSymbols]uint8, lc [512]hcode, dc [32]hcode) {
	lit, dist := fixedLengths()
	canonicalCodes(allSymbols[:288], lit[:], lc[:], counts(lit[:]))
	canonicalCodes(allSymbols[:32], dist[:32], dc[:], counts(dist[:32]))
	copy(ll[:], lit[:])
	return ll, lc, dc
}

// writeBlock writes the tokens as one non-final block, in whichever of
// the three encodings is smallest.
func (e *encoder) writeBlock() {
	e.litFreq[256] = 1 // the end of the block
	extra := 0
	for c := range lengthExtra {
		extra += int(e.litFreq[257+c]) * int(lengthExtra[c])
	}
	for c := range distExtra {
		extra += int(e.distFreq[c]) * int(distExtra[c])
	}

	litSyms := symbols(e.litFreq[:], e.syms[:])
	litCount, litSyms := huffLengths(e.litFreq[:], litSyms, e.litLens[:], maxCodeBits, e.huffKeys[:], e.huffA[:])
	distSyms := symbols(e.distFreq[:], e.distSyms[:])
	distCount, distSyms := huffLengths(e.distFreq[:], distSyms, e.distLens[:], maxCodeBits, e.huffKeys[:], e.huffA[:])
	hlit := max(257, int(litSyms[len(litSyms)-1])+1)
	hdist := 1
	if len(distSyms) > 0 {
		hdist = int(distSyms[len(distSyms)-1]) + 1
	}
	e.codeLengthSymbols(hlit, hdist)
	clSyms := symbols(e.clFreq[:], e.clSymSet[:])
	clCount, clSyms := huffLengths(e.clFreq[:], clSyms, e.clLens[:], 7, e.huffKeys[:], e.huffA[:])
	hclen := 4
	for i := numCodeLens; i > 4; i-- {
		if e.clLens[codeLenOrder[i-1]] != 0 {
			hclen = i
			break
		}
	}

	dynamic := 3 + 5 + 5 + 4 + 3*hclen + extra
	fixed := 3 + extra
	for _, s := range litSyms {
		f := int(e.litFreq[s])
		dynamic += f * int(e.litLens[s])
		fixed += f * int(fixedLitLens[s])
	}
	for _, s := range distSyms {
		f := int(e.distFreq[s])
		dynamic += f * int(e.distLens[s])
		fixed += f * 5
	}
	for _, s := range clSyms {
		dynamic += int(e.clFreq[s]) * int(e.clLens[s])
	}
	for s := 16; s < numCodeLens; s++ {
		dynamic += int(e.clFreq[s]) * int(clExtraBits[s])
	}
	raw := e.src[e.blockStart:e.pos]
	chunks := max((len(raw)+0xffff-1)/0xffff, 1)
	stored := chunks*(3+7+32) + 8*len(raw)

	best := min(dynamic, fixed, stored)
	e.room((int(e.nbits) + best + 7) / 8)
	switch best {
	case stored:
		e.writeStored(raw)
	case fixed:
		e.writeBits(1<<1, 3)
		e.writeTokens(&fixedLitCodes, &fixedDistCodes)
	default:
		canonicalCodes(litSyms, e.litLens[:], e.litCodes[:], &litCount)
		canonicalCodes(distSyms, e.distLens[:], e.distCodes[:], &distCount)
		canonicalCodes(clSyms, e.clLens[:], e.clCodes[:], &clCount)
		e.writeBits(2<<1, 3)
		e.writeBits(uint64(hlit-257), 5)
		e.writeBits(uint64(hdist-1), 5)
		e.writeBits(uint64(hclen-4), 4)
		for _, s := range codeLenOrder[:hclen] {
			e.writeBits(uint64(e.clLens[s]), 3)
			e.flush()
		}
		for i, s := range e.clSyms[:e.nclSyms] {
			e.writeCode(e.clCodes[s])
			e.writeBits(uint64(e.clExtra[i]), uint(clExtraBits[s]))
			e.flush()
		}
		e.writeTokens(&e.litCodes, &e.distCodes)
	}
	e.blockStart = e.pos
}

// clExtraBits is how many extra bits follow each code-length symbol: 16
// repeats the last length 3 to 6 times, 17 and 18 write 3 to 10 and 11 to
// 138 zeros (section 3.2.7).
var clExtraBits = [numCodeLens]uint8{16: 2, 17: 3, 18: 7}

// codeLengthSymbols run-length codes the code lengths of the first hlit
// literal/length symbols and hdist distance symbols, and counts the
// symbols.
func (e *encoder) codeLengthSymbols(hlit, hdist int) {
	clear(e.clFreq[:])
	n := hlit + hdist
	all := e.allLens[:n+8]
	copy(all, e.litLens[:hlit])
	copy(all[hlit:], e.distLens[:hdist])
	// 8 bytes that no length equals end the runs: a run is measured 8
	// lengths at a time.
	binary.LittleEndian.PutUint64(all[n:], math.MaxUint64)
	syms, extra, k := &e.clSyms, &e.clExtra, 0
	for i := 0; i < n; {
		v := all[i]
		rep := uint64(v) * 0x0101010101010101
		run := 1
		for {
			x := load64(all, i+run) ^ rep
			if x != 0 {
				run += bits.TrailingZeros64(x) >> 3
				break
			}
			run += 8
		}
		i += run
		if v == 0 {
			for run >= 11 {
				r := min(run, 138)
				syms[k], extra[k] = 18, uint8(r-11)
				k++
				run -= r
			}
			if run >= 3 {
				syms[k], extra[k] = 17, uint8(run-3)
				k++
				run = 0
			}
		} else {
			syms[k], extra[k] = v, 0
			k++
			run--
			for run >= 3 {
				r := min(run, 6)
				syms[k], extra[k] = 16, uint8(r-3)
				k++
				run -= r
			}
		}
		for ; run > 0; run-- {
			syms[k], extra[k] = v, 0
			k++
		}
	}
	for _, s := range syms[:k] {
		e.clFreq[s]++
	}
	e.nclSyms = k
}

// writeTokens writes the block's tokens in the given codes, and the end
// of the block.
func (e *encoder) writeTokens(litCodes *[512]hcode, distCodes *[32]hcode) {
	out, o, acc, nbits := e.out, e.o, e.acc, e.nbits
	// Three literals add at most 45 bits, a match 48, to the at most 7
	// left over: the whole bytes are stored after each, without a
	// branch. Shifts are masked to 63, which they are below anyway, so
	// that none needs a check of its range.
	src := e.src
	for _, t := range e.tokens[:e.ntok] {
		if t < tokenMatch {
			run := src[t&0xffff : t&0xffff+t>>16]
			for len(run) >= 3 {
				c0, c1, c2 := litCodes[run[0]], litCodes[run[1]], litCodes[run[2]]
				acc |= uint64(c0&0xffff) << (nbits & 63)
				nbits += uint(c0 >> 16)
				acc |= uint64(c1&0xffff) << (nbits & 63)
				nbits += uint(c1 >> 16)
				acc |= uint64(c2&0xffff) << (nbits & 63)
				nbits += uint(c2 >> 16)
				binary.LittleEndian.PutUint64(out[o:], acc)
				k := nbits >> 3
				o += int(k)
				acc >>= (k << 3) & 63
				nbits &= 7
				run = run[3:]
			}
			for _, b := range run {
				c := litCodes[b]
				acc |= uint64(c&0xffff) << (nbits & 63)
				nbits += uint(c >> 16)
			}
		} else {
			x := lengthExtras[(t>>15)&0xff]
			c := litCodes[(257+uint(lengthCode[(t>>15)&0xff]))&511]
			acc |= (uint64(c&0xffff) | uint64(x&0xff)<<((c>>16)&63)) << (nbits & 63)
			nbits += uint(c>>16) + uint(x>>8)
			dc := (t >> 23) & 31
			c = distCodes[dc]
			acc |= (uint64(c&0xffff) | uint64(t&0x7fff-distBase1[dc])<<((c>>16)&63)) << (nbits & 63)
			nbits += uint(c>>16) + uint(distExtra32[dc])
		}
		binary.LittleEndian.PutUint64(out[o:], acc)
		k := nbits >> 3
		o += int(k)
		acc >>= (k << 3) & 63
		nbits &= 7
	}
	e.o, e.acc, e.nbits = o, acc, nbits
	e.writeCode(litCodes[256])
	e.flush()
}

// writeStored writes raw as stored blocks of up to 65535 bytes each.
func (e *encoder) writeStored(raw []byte) {
	for first := true; first || len(raw) > 0; first = false {
		k := min(len(raw), 0xffff)
		e.writeBits(0, 3)
		e.flush()
		if e.nbits > 0 {
			e.o++
			e.acc, e.nbits = 0, 0
		}
		binary.LittleEndian.PutUint16(e.out[e.o:], uint16(k))
		binary.LittleEndian.PutUint16(e.out[e.o+2:], ^uint16(k))
		e.o += 4
		e.o += copy(e.out[e.o:], raw[:k])
		raw = raw[k:]
	}
}

// writeCode adds the bits of c.
func (e *encoder) writeCode(c hcode) { e.writeBits(uint64(c&0xffff), uint(c>>16)) }

// writeBits adds the n low bits of b, n at most 32 with the bits pending
// flushed.
func (e *encoder) writeBits(b uint64, n uint) {
	e.acc |= b << e.nbits
	e.nbits += n
}

// flush writes the whole bytes of the bits pending; at most 7 bits stay.
func (e *encoder) flush() {
	binary.LittleEndian.PutUint64(e.out[e.o:], e.acc)
	k := e.nbits >> 3
	e.o += int(k)
	e.acc >>= k << 3
	e.nbits &= 7
}

// room makes sure out has n bytes past what is written, and 8 more for
// the whole words flush stores.
func (e *encoder) room(n int) {
	if e.o+n+8 > len(e.out) {
		grown := make([]byte, 2*len(e.out)+n+8)
		copy(grown, e.out[:e.o])
		e.out = grown
	}
}

// lengthCounts counts a code's lengths: how many codes of each length.
type lengthCounts = [maxCodeBits + 1]uint16

// allSymbols lists the symbols 0 to 287.
var allSymbols = func() (a [288]uint16) {
	for i := range a {
		a[i] = uint16(i)
	}
	return a
}()

// counts returns the lengthCounts of lens.
func counts(lens []uint8) *lengthCounts {
	var c lengthCounts
	for _, l := range lens {
		c[l]++
	}
	c[0] = 0
	return &c
}

// sortBuckets is how many frequencies huffLengths sorts by counting; the
// few symbols more frequent than that are sorted by comparison.
const sortBuckets = 128

// huffLengths sets lens to the lengths of a Huffman code of at most
// maxBits bits for the symbols syms, listed in order, of frequencies
// freq, and 0 for every other symbol. It returns how many codes there are
// of each length, and the symbols that have one: syms, or with a single
// symbol, syms and a second symbol beside it (the code is complete: a
// single symbol gets a code of one bit, and so does the second). syms
// has room for one more symbol; keys and a are scratch of len(freq) and
// len(freq)+1 at least.
func huffLengths(freq []uint32, syms []uint16, lens []uint8, maxBits int, keys, a []uint32) (count lengthCounts, _ []uint16) {
	clear(lens)
	n := len(syms)
	switch n {
	case 0:
		return count, syms
	case 1:
		s := syms[0]
		other := min(s, 1) ^ 1 // 1 beside 0, 0 beside any other
		lens[s], lens[other] = 1, 1
		count[1] = 2
		if other < s {
			return count, append(syms[:0], other, s)
		}
		return count, append(syms, other)
	}
	// The symbols by frequency, then by symbol: counted into buckets by
	// frequency, the last bucket holding every frequency from
	// sortBuckets-1 on.
	var bucket [sortBuckets]uint16
	top := uint32(0) // the last bucket used
	for _, s := range syms {
		b := min(freq[s], sortBuckets-1)
		bucket[b]++
		top = max(top, b)
	}
	at := uint16(0)
	for b, k := range bucket[:top+1] {
		bucket[b] = at
		at += k
	}
	for _, s := range syms {
		f := freq[s]
		b := min(f, sortBuckets-1)
		keys[bucket[b]] = f<<9 | uint32(s)
		bucket[b]++
	}
	keys = keys[:n]
	if last := keys[bucket[sortBuckets-2]:]; len(last) > 1 {
		slices.Sort(last)
	}
	a = a[:n]
	for i, k := range keys {
		a[i] = k >> 9
	}
	// Lengths beyond maxBits are cut to it, and the code, now
	// over-subscribed, is made complete again: one code of maxBits
	// bits at a time goes, and the longest shorter one is split in two.
	count = huffmanDepths(a, maxBits)
	total := 0
	for l := 1; l <= maxBits; l++ {
		total += int(count[l]) << (maxBits - l)
	}
	for total > 1<<maxBits {
		count[maxBits]--
		for l := maxBits - 1; l > 0; l-- {
			if count[l] > 0 {
				count[l]--
				count[l+1] += 2
				break
			}
		}
		total--
	}
	// The longest codes go to the rarest symbols.
	i := 0
	for l := maxBits; l > 0; l-- {
		for range count[l] {
			lens[keys[i]&511] = uint8(l)
			i++
		}
	}
	return count, syms
}

// huffmanDepths returns how many leaves of a Huffman tree for the n
// weights of a, sorted ascending, are at each depth, the depths beyond
// maxBits counted at maxBits. It overwrites a, which must have room for
// one more weight (Moffat and Katajainen, "In-place calculation of
// minimum-redundancy codes", 1995: weights become parents, then depths).
func huffmanDepths(a []uint32, maxBits int) (count lengthCounts) {
	const none = math.MaxUint32 // heavier than any weight: no node there
	n := len(a)
	a = a[:n+1]
	a[n] = none
	// Left to right: each internal node's weight, and each merged node's
	// parent. Each child is the lighter of the next internal node and the
	// next leaf, chosen without a branch (the choice is hard to predict);
	// a store that does not apply writes back what was there.
	a[0] += a[1]
	root, leaf := 0, 2
	for next := 1; next < n-1; next++ {
		r, l := a[root], a[leaf]
		v, w, t := l, r, 0
		if r < l {
			v, w, t = r, uint32(next), 1
		}
		a[root] = w
		a[next] = v
		root += t
		leaf += 1 - t

		r, l = a[root], a[leaf]
		if root >= next {
			r = none // the internal node being built is no child
		}
		v, w, t = l, a[root], 0
		if r < l {
			v, w, t = r, uint32(next), 1
		}
		a[root] = w
		a[next] += v
		root += t
		leaf += 1 - t
	}
	// Right to left: internal nodes' depths.
	a[n-2] = 0
	for next := n - 3; next >= 0; next-- {
		a[next] = a[a[next]] + 1
	}
	// Depth by depth: the nodes there that are not internal are leaves.
	avail, used, depth := 1, 0, uint32(0)
	root = n - 2
	for avail > 0 {
		for root >= 0 && a[root] == depth {
			used++
			root--
		}
		count[min(int(depth), maxBits)] += uint16(avail - used)
		avail = 2 * used
		depth++
		used = 0
	}
	return count
}

// canonicalCodes sets the codes of the symbols syms, listed in order, to
// the canonical Huffman code of lens (section 3.2.2), each code
// bit-reversed, as it is written; count is how many codes there are of
// each length. Every symbol with a length must be in syms.
func canonicalCodes(syms []uint16, lens []uint8, codes []hcode, count *lengthCounts) {
	var next [maxCodeBits + 1]int
	code := 0
	for l := 1; l <= maxCodeBits; l++ {
		code = (code + int(count[l-1])) << 1
		next[l] = code
	}
	for _, s := range syms {
		l := lens[s]
		codes[s] = hcode(reverse(next[l], l)) | hcode(l)<<16
		next[l]++
	}
}
