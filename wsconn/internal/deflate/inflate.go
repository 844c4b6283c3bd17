package deflate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
)

// tail is what RFC 7692 section 7.2.2 has a receiver append to a
// message's payload: the end of the empty stored block that the sender
// removed.
var tail = [4]byte{0x00, 0x00, 0xff, 0xff}

// minHistoryBits is the smallest window a [Decompressor] keeps with
// context takeover. zlib cannot make a raw DEFLATE stream with a 256-byte
// window: asked for 8 bits it uses 9, so peers built on it that agreed to 8
// reach 512 bytes back.
const minHistoryBits = 9

// maxMatch is the longest match DEFLATE copies.
const maxMatch = 258

// Decompressor inflates the messages that one endpoint of a connection
// receives, one at a time, as their frames arrive (RFC 7692 section
// 7.2.2). The bytes of a message go to [Decompressor.Inflate] in as many
// pieces as they arrive in, with no copy of the compressed bytes kept:
// each piece is inflated at once into the caller's buffer, which grows with
// what was inflated and never beyond the limit the caller gives. The end of
// the message goes to [Decompressor.Finish].
//
// Between messages a Decompressor holds no decoding state (that comes from
// a pool for the length of one message, about 14 KiB); with context
// takeover it keeps the peer's window, 1<<max(bits, 9) bytes for its
// agreed window bits (32 KiB by default), allocated with the first
// message. A Decompressor is not safe for use by multiple goroutines.
type Decompressor struct {
	takeover bool
	window   int // the size of hist

	// hist holds the last bytes of earlier messages with context
	// takeover, as a ring: hist[(hpos-k) mod window] is the k-th byte
	// before the message in progress, for 1 <= k <= hlen.
	hist []byte
	hpos int
	hlen int

	st      *inflater // the message in progress; nil between messages
	err     error     // sticky
	maxDist int       // the farthest match of the messages so far, for tests
}

// NewDecompressor returns the decompressor for the messages that the
// endpoint, a client or a server, receives under the agreed p.
func NewDecompressor(p Params, client bool) *Decompressor {
	takeover, bits := !p.ClientNoContextTakeover, p.ClientMaxWindowBits
	if client {
		takeover, bits = !p.ServerNoContextTakeover, p.ServerMaxWindowBits
	}
	if bits == 0 {
		bits = maxWindowBits
	}
	bits = min(max(bits, minHistoryBits), maxWindowBits)
	return &Decompressor{takeover: takeover, window: 1 << bits}
}

// Inflate inflates src, the next bytes of a compressed message's payload,
// into dst: it appends what they give to dst within dst's capacity and
// returns the extended slice and how many bytes of src it consumed. dst
// must end with every byte inflated so far for this message (the caller
// may move them to a larger buffer, never drop them). limit is the most
// bytes the whole message may inflate to.
//
// Inflate consumes all of src unless it returns an error. With
// [ErrShortBuffer], dst is full and more is to come: call again with a
// larger buffer and src[n:] (which may be empty). With [ErrTooBig] the
// message would be longer than limit bytes: dst then holds limit bytes of it
// at most, and nothing more was inflated. A stream that is not DEFLATE
// gives an error wrapping [ErrCorrupt]. Both are sticky, as any error
// but ErrShortBuffer is.
func (d *Decompressor) Inflate(dst, src []byte, limit int) ([]byte, int, error) {
	if d.err != nil {
		return dst, 0, d.err
	}
	if d.st == nil {
		if len(src) == 0 {
			return dst, 0, nil
		}
		d.st = getInflater()
	}
	return d.run(dst, src, limit)
}

// Finish ends the message: it inflates the tail that the sender removed
// (RFC 7692 section 7.2.2) and checks that the stream ended there, at the
// end of a block. It returns dst with what the tail gave, which is
// nothing for a valid stream. Its errors are Inflate's: with
// [ErrShortBuffer], call Finish again with a larger buffer. After Finish,
// the next Inflate starts the next message.
//
// A message of no bytes at all is the empty message, as zlib reads it.
func (d *Decompressor) Finish(dst []byte, limit int) ([]byte, error) {
	if d.err != nil {
		return dst, d.err
	}
	s := d.st
	if s == nil {
		return dst, nil
	}
	out, n, err := d.run(dst, tail[s.tail:], limit)
	if err != nil {
		if errors.Is(err, ErrShortBuffer) { // else s went back to the pool
			s.tail += n
		}
		return out, err
	}
	if s.state != stateEnd && (s.state != stateHeader || s.nb != 0) {
		return out, d.fail(corrupt("the message does not end with an empty stored block"))
	}
	if d.takeover {
		d.remember(out[len(out)-s.produced:])
	}
	d.maxDist = max(d.maxDist, s.maxDist)
	putInflater(s)
	d.st = nil
	return out, nil
}

// Release gives back what d holds: the state of a message in progress and
// the window kept with context takeover. Later calls return
// [ErrReleased].
func (d *Decompressor) Release() {
	if d.st != nil {
		putInflater(d.st)
		d.st = nil
	}
	d.hist, d.hlen, d.hpos = nil, 0, 0
	if d.err == nil {
		d.err = ErrReleased
	}
}

// run inflates src into dst, within its capacity and within limit bytes of
// message.
func (d *Decompressor) run(dst, src []byte, limit int) ([]byte, int, error) {
	s := d.st
	if len(dst) < s.produced {
		return dst, 0, d.fail(fmt.Errorf("deflate: dst holds %d bytes of a message that has %d", len(dst), s.produced))
	}
	byCap := cap(dst) - len(dst)
	byMax := limit - s.produced
	room := min(byCap, byMax)
	if room < 0 {
		room = 0
	}
	out, n, full, err := s.run(dst[:len(dst):len(dst)+room], src, d)
	out = dst[:len(out)]
	switch {
	case err != nil:
		return out, n, d.fail(err)
	case full && byMax <= byCap:
		return out, n, d.fail(fmt.Errorf("%w: more than %d bytes", ErrTooBig, limit))
	case full:
		return out, n, ErrShortBuffer
	}
	return out, n, nil
}

func (d *Decompressor) fail(err error) error {
	d.err = err
	if d.st != nil {
		putInflater(d.st)
		d.st = nil
	}
	return err
}

// remember keeps the end of msg as the window of the next message.
func (d *Decompressor) remember(msg []byte) {
	w := d.window
	if d.hist == nil {
		d.hist = make([]byte, w)
	}
	if len(msg) >= w {
		copy(d.hist, msg[len(msg)-w:])
		d.hpos, d.hlen = 0, w
		return
	}
	n := copy(d.hist[d.hpos:], msg)
	copy(d.hist, msg[n:])
	d.hpos = (d.hpos + len(msg)) % w
	d.hlen = min(w, d.hlen+len(msg))
}

// histAt returns the k-th byte before the message, 1 <= k <= hlen.
func (d *Decompressor) histAt(k int) byte {
	return d.hist[(d.hpos-k+d.window)%d.window]
}

func corrupt(why string) error { return fmt.Errorf("%w: %s", ErrCorrupt, why) }

// The states of an inflater: where in the stream the next bits belong.
const (
	stateHeader      = iota // before a block's 3-bit header
	stateStoredLen          // byte-aligned, before a stored block's LEN and NLEN
	stateStored             // inside a stored block; stored counts its bytes left
	stateSizes              // before a dynamic block's HLIT, HDIST and HCLEN
	stateCodeLenLens        // reading the code-length code's lengths; i counts them
	stateCodeLens           // reading the literal/length and distance code lengths; i counts them
	stateLit                // inside a Huffman block, before a literal/length code
	stateDist               // after a match's length, before its distance code
	stateCopy               // copying a match: length bytes from dist back
	stateEnd                // after the block with BFINAL: the rest of the message is ignored
)

// inflater is the decoding state of one message: a resumable DEFLATE
// decoder (RFC 1951) that stops wherever its input or its output room
// runs out and goes on from there when called again.
type inflater struct {
	b  uint64 // bits read and not consumed, the next in the low bits; zeros above nb
	nb uint

	state  uint8
	final  bool // the block in progress has BFINAL set
	tail   int  // bytes of tail that Finish fed
	stored int  // bytes left of a stored block
	length int  // of the match in progress
	dist   int

	nlit, ndist, nclen, i int

	produced int // bytes inflated for the message so far
	maxDist  int // the farthest match seen, for tests

	litT, distT []entry // the tables of the block in progress
	litDyn      [litTableSize]entry
	distDyn     [distTableSize]entry
	clen        [1 << clenRootBits]entry
	lens        [maxLitSymbols + maxDistSymbols]uint8
	clens       [numCodeLens]uint8
}

var inflaters sync.Pool

func getInflater() *inflater {
	s, ok := inflaters.Get().(*inflater)
	if !ok {
		s = new(inflater)
	}
	s.b, s.nb = 0, 0
	s.state, s.final, s.tail = stateHeader, false, 0
	s.produced, s.maxDist = 0, 0
	s.litT, s.distT = nil, nil
	return s
}

func putInflater(s *inflater) {
	s.litT, s.distT = nil, nil
	inflaters.Put(s)
}

// run inflates src into out[len(out):cap(out)]. It returns when it needs
// more input (having consumed all of src), when out is full and it has
// more to write (full), or at an error. d provides the window of earlier
// messages.
func (s *inflater) run(out, src []byte, d *Decompressor) (_ []byte, n int, full bool, err error) {
	b, nb, i := s.b, s.nb, 0
	base := len(out) - s.produced // where the message starts in out
loop:
	for {
		switch s.state {
		case stateHeader:
			for nb < 3 && i < len(src) {
				b |= uint64(src[i]) << nb
				nb += 8
				i++
			}
			if nb < 3 {
				break loop
			}
			s.final = b&1 != 0
			typ := b >> 1 & 3
			b >>= 3
			nb -= 3
			switch typ {
			case 0:
				b >>= nb & 7
				nb -= nb & 7
				s.state = stateStoredLen
			case 1:
				s.litT, s.distT = fixedLit, fixedDist
				s.state = stateLit
			case 2:
				s.state = stateSizes
			default:
				err = corrupt("a block of reserved type 3")
				break loop
			}

		case stateStoredLen:
			for nb < 32 && i < len(src) {
				b |= uint64(src[i]) << nb
				nb += 8
				i++
			}
			if nb < 32 {
				break loop
			}
			ln, nln := uint16(b), uint16(b>>16)
			b >>= 32
			nb -= 32
			if ln != ^nln {
				err = corrupt("a stored block's length does not match its complement")
				break loop
			}
			s.stored = int(ln)
			s.state = stateStored

		case stateStored:
			for s.stored > 0 {
				if len(out) == cap(out) {
					full = true
					break loop
				}
				if nb >= 8 {
					out = append(out, byte(b))
					b >>= 8
					nb -= 8
					s.stored--
					continue
				}
				if i == len(src) {
					break loop
				}
				k := min(s.stored, len(src)-i, cap(out)-len(out))
				out = append(out, src[i:i+k]...)
				i += k
				s.stored -= k
			}
			s.endBlock()

		case stateSizes:
			for nb < 14 && i < len(src) {
				b |= uint64(src[i]) << nb
				nb += 8
				i++
			}
			if nb < 14 {
				break loop
			}
			s.nlit = 257 + int(b&31)
			s.ndist = 1 + int(b>>5&31)
			s.nclen = 4 + int(b>>10&15)
			b >>= 14
			nb -= 14
			if s.nlit > maxLitSymbols || s.ndist > maxDistSymbols {
				err = corrupt(fmt.Sprintf("a dynamic block with %d literal/length and %d distance codes", s.nlit, s.ndist))
				break loop
			}
			s.i = 0
			clear(s.clens[:])
			s.state = stateCodeLenLens

		case stateCodeLenLens:
			for ; s.i < s.nclen; s.i++ {
				for nb < 3 && i < len(src) {
					b |= uint64(src[i]) << nb
					nb += 8
					i++
				}
				if nb < 3 {
					break loop
				}
				s.clens[codeLenOrder[s.i]] = uint8(b & 7)
				b >>= 3
				nb -= 3
			}
			if !buildTable(s.clen[:], s.clens[:], clenRootBits, symbolEntries) {
				err = corrupt("an invalid code-length code")
				break loop
			}
			s.i = 0
			s.state = stateCodeLens

		case stateCodeLens:
			total := s.nlit + s.ndist
			for s.i < total {
				for nb < 56 && i < len(src) {
					b |= uint64(src[i]) << nb
					nb += 8
					i++
				}
				e := s.clen[b&(1<<clenRootBits-1)]
				l := uint(e & 0xf)
				if nb < l {
					break loop
				}
				if e&kindMask == kindInvalid {
					err = corrupt("an invalid code-length symbol")
					break loop
				}
				sym := int(e >> 16)
				if sym < 16 {
					b >>= l
					nb -= l
					s.lens[s.i] = uint8(sym)
					s.i++
					continue
				}
				var x uint
				var rep int
				var val uint8
				switch sym {
				case 16:
					x, rep = 2, 3
					if s.i == 0 {
						err = corrupt("a repeated code length with none before it")
						break loop
					}
					val = s.lens[s.i-1]
				case 17:
					x, rep = 3, 3
				default:
					x, rep = 7, 11
				}
				if nb < l+x {
					break loop
				}
				b >>= l
				rep += int(b & (1<<x - 1))
				b >>= x
				nb -= l + x
				if s.i+rep > total {
					err = corrupt("code lengths repeated past the end")
					break loop
				}
				for range rep {
					s.lens[s.i] = val
					s.i++
				}
			}
			if s.lens[256] == 0 {
				err = corrupt("a dynamic block without an end-of-block code")
				break loop
			}
			if !buildTable(s.litDyn[:], s.lens[:s.nlit], litRootBits, litEntries) {
				err = corrupt("an invalid literal/length code")
				break loop
			}
			if !buildTable(s.distDyn[:], s.lens[s.nlit:total], distRootBits, distEntries) {
				err = corrupt("an invalid distance code")
				break loop
			}
			s.litT, s.distT = s.litDyn[:], s.distDyn[:]
			s.state = stateLit

		case stateLit:
			lit, dist := s.litT, s.distT
			// The fast loop: with 8 bytes of input and room for two
			// literals and the longest match, one refill covers a
			// literal/length code with its extra bits and a distance
			// code with its own (at most 48 bits).
			for len(src)-i >= 8 && cap(out)-len(out) >= maxMatch+2 {
				b |= binary.LittleEndian.Uint64(src[i:]) << nb
				i += int(63-nb) >> 3
				nb |= 56
				e := lookup(lit, b, litRootBits)
				if e&kindMask == kindLiteral {
					// Literals come in runs: a second one needs no
					// refill (a code is at most 15 bits), and what
					// follows is looked up before the refill, which adds
					// bits above the ones it reads.
					l := uint(e & 0xf)
					b >>= l
					nb -= l
					out = append(out, byte(e>>16))
					e = lookup(lit, b, litRootBits)
					if e&kindMask == kindLiteral {
						l = uint(e & 0xf)
						b >>= l
						nb -= l
						out = append(out, byte(e>>16))
						continue
					}
					if len(src)-i < 8 {
						continue
					}
					b |= binary.LittleEndian.Uint64(src[i:]) << nb
					i += int(63-nb) >> 3
					nb |= 56
				}
				l := uint(e & 0xf)
				switch e & kindMask {
				case kindLength:
				case kindEnd:
					b >>= l
					nb -= l
					b &= 1<<nb - 1
					s.endBlock()
					continue loop
				default:
					err = corrupt("an invalid literal/length code")
					break loop
				}
				x := uint(e >> 4 & 0xf)
				b >>= l
				length := int(e>>16) + int(b&(1<<x-1))
				b >>= x
				nb -= l + x
				e = lookup(dist, b, distRootBits)
				if e&kindMask != kindDist {
					err = corrupt("an invalid distance code")
					break loop
				}
				l, x = uint(e&0xf), uint(e>>4&0xf)
				b >>= l
				dd := int(e>>16) + int(b&(1<<x-1))
				b >>= x
				nb -= l + x
				s.maxDist = max(s.maxDist, dd)
				pos := len(out)
				if dd > pos-base {
					if dd > pos-base+d.hlen {
						err = corrupt(fmt.Sprintf("a match %d bytes back, %d after the window's start", dd, pos-base+d.hlen))
						break loop
					}
					b &= 1<<nb - 1
					s.length, s.dist = length, dd
					s.state = stateCopy
					continue loop
				}
				out = out[:pos+length]
				if dd >= length {
					copy(out[pos:], out[pos-dd:pos-dd+length])
				} else {
					for j := pos; j < pos+length; {
						j += copy(out[j:pos+length], out[pos-dd:j])
					}
				}
			}
			b &= 1<<nb - 1 // the fast loop may leave the next input's bits above nb

			// One code at a time, near the end of the input or of the
			// room.
			for nb < 56 && i < len(src) {
				b |= uint64(src[i]) << nb
				nb += 8
				i++
			}
			e := lookup(lit, b, litRootBits)
			l := uint(e & 0xf)
			if nb < l {
				break loop
			}
			switch e & kindMask {
			case kindLiteral:
				if len(out) == cap(out) {
					full = true
					break loop
				}
				b >>= l
				nb -= l
				out = append(out, byte(e>>16))
			case kindEnd:
				b >>= l
				nb -= l
				s.endBlock()
			case kindLength:
				x := uint(e >> 4 & 0xf)
				if nb < l+x {
					break loop
				}
				b >>= l
				s.length = int(e>>16) + int(b&(1<<x-1))
				b >>= x
				nb -= l + x
				s.state = stateDist
			default:
				err = corrupt("an invalid literal/length code")
				break loop
			}

		case stateDist:
			for nb < 56 && i < len(src) {
				b |= uint64(src[i]) << nb
				nb += 8
				i++
			}
			e := lookup(s.distT, b, distRootBits)
			l, x := uint(e&0xf), uint(e>>4&0xf)
			if nb < l {
				break loop
			}
			if e&kindMask != kindDist {
				err = corrupt("an invalid distance code")
				break loop
			}
			if nb < l+x {
				break loop
			}
			b >>= l
			dd := int(e>>16) + int(b&(1<<x-1))
			b >>= x
			nb -= l + x
			s.maxDist = max(s.maxDist, dd)
			if back := len(out) - base + d.hlen; dd > back {
				err = corrupt(fmt.Sprintf("a match %d bytes back, %d after the window's start", dd, back))
				break loop
			}
			s.dist = dd
			s.state = stateCopy

		case stateCopy:
			for s.length > 0 {
				room := cap(out) - len(out)
				if room == 0 {
					full = true
					break loop
				}
				pos := len(out)
				if back := s.dist - (pos - base); back > 0 {
					// From the window of earlier messages.
					k := min(s.length, back, room)
					for j := range k {
						out = append(out, d.histAt(back-j))
					}
					s.length -= k
					continue
				}
				k := min(s.length, room)
				out = out[:pos+k]
				for j := pos; j < pos+k; {
					j += copy(out[j:pos+k], out[pos-s.dist:j])
				}
				s.length -= k
			}
			s.state = stateLit

		case stateEnd:
			// RFC 7692 section 7.2.3.4: a sender may end a message with
			// a final block; what follows it, the tail appended on
			// receipt included, is not DEFLATE data.
			i = len(src)
			b, nb = 0, 0
			break loop
		}
	}
	s.b, s.nb = b, nb
	s.produced = len(out) - base
	return out, i, full, err
}

func (s *inflater) endBlock() {
	if s.final {
		s.state = stateEnd
	} else {
		s.state = stateHeader
	}
}
