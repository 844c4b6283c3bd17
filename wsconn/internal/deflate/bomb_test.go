package deflate

import (
	"bytes"
	"compress/flate"
	"errors"
	"io"
	"testing"
)

// bitWriter writes a DEFLATE bit stream, least significant bit first.
type bitWriter struct {
	out  []byte
	bits uint64
	n    uint
}

func (w *bitWriter) put(v uint64, n uint) {
	w.bits |= v << w.n
	w.n += n
	for w.n >= 8 {
		w.out = append(w.out, byte(w.bits))
		w.bits >>= 8
		w.n -= 8
	}
}

// code writes a Huffman code of n bits, most significant bit first.
func (w *bitWriter) code(c uint64, n uint) {
	for i := int(n) - 1; i >= 0; i-- {
		w.put(c>>uint(i)&1, 1)
	}
}

// flush ends the stream with a sync flush whose last four bytes are
// removed, as a permessage-deflate sender does.
func (w *bitWriter) flush() []byte {
	w.put(0, 3) // BFINAL 0, stored
	if w.n > 0 {
		w.put(0, 8-w.n)
	}
	return w.out
}

// bomb returns the payload of a message that inflates to one zero byte
// and then matches of 258 zeros: a dynamic block where the length code
// 285 and the distance code 0 have one bit each, so that each match costs
// two bits, the best DEFLATE can do (1032 to 1).
func bomb(matches int) []byte {
	var w bitWriter
	w.put(0, 1)       // BFINAL
	w.put(2, 2)       // dynamic
	w.put(286-257, 5) // HLIT: 286 literal/length codes
	w.put(0, 5)       // HDIST: 1 distance code
	w.put(18-4, 4)    // HCLEN: 18 code-length codes
	// Code-length code: 18 -> 1 bit, 1 -> 2 bits, 2 and 0 -> 3 bits.
	clens := map[int]uint64{18: 1, 1: 2, 2: 3, 0: 3}
	for _, sym := range codeLenOrder[:18] {
		w.put(clens[int(sym)], 3)
	}
	// Canonical codes: 18 = 0, 1 = 10, 0 = 110, 2 = 111.
	zeros := func(n int) { // with symbol 18, 11 to 138 at a time
		for n > 0 {
			k := min(n, 138)
			w.code(0, 1)
			w.put(uint64(k-11), 7)
			n -= k
		}
	}
	w.code(7, 3) // literal 0: 2 bits
	zeros(255)   // literals 1-255
	w.code(7, 3) // 256 (end of block): 2 bits
	zeros(28)    // lengths 257-284
	w.code(2, 2) // 285: 1 bit
	w.code(2, 2) // distance 0: 1 bit
	// Literal/length codes: 285 = 0, literal 0 = 10, end of block = 11.
	w.code(2, 2) // the literal 0
	for range matches {
		w.code(0, 1) // length 258
		w.code(0, 1) // distance 1
	}
	w.code(3, 2) // end of block
	return w.flush()
}

func TestBombModel(t *testing.T) {
	p := bomb(1000)
	got, err := io.ReadAll(flate.NewReader(bytes.NewReader(append(append(p, tail[:]...), 1, 0, 0, 0xff, 0xff))))
	if err != nil || len(got) != 1+258*1000 || bytes.ContainsFunc(got, func(r rune) bool { return r != 0 }) {
		t.Fatalf("compress/flate reads the bomb as %d bytes, %v; want %d zeros", len(got), err, 1+258*1000)
	}
	d := NewDecompressor(Params{}, false)
	defer d.Release()
	out, err := inflateMessage(d, split(p, 100), 1<<20)
	if err != nil || !bytes.Equal(out, got) {
		t.Fatalf("inflated %d bytes, %v; want %d", len(out), err, len(got))
	}
}

// TestBomb: a message of 1 MiB that inflates to 1 GiB, arriving in
// frames of 4 KiB, stops with ErrTooBig with no more than the limit
// inflated, after a few KiB of its input, in a buffer that never grew
// past the limit. (DEFLATE inflates 1032 times at most: 1 KiB inflates to
// 1 MiB, the next test.)
func TestBomb(t *testing.T) {
	for _, tt := range []struct {
		name    string
		matches int
		limit   int
	}{
		{"1 MiB to 1 GiB, limit 1 MiB", (1 << 30) / 258, 1 << 20},
		{"1 KiB to 1 MiB, limit 64 KiB", 4000, 64 << 10},
		{"1 KiB to 1 MiB, limit 1", 4000, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := bomb(tt.matches)
			t.Logf("payload %d bytes, inflating to %d", len(p), 1+258*tt.matches)
			d := NewDecompressor(Params{}, false)
			defer d.Release()
			var out []byte
			consumed := 0
			var err error
			for _, frame := range split(p, 4096) {
				for len(frame) > 0 && err == nil {
					var n int
					out, n, err = d.Inflate(out, frame, tt.limit)
					frame = frame[n:]
					consumed += n
					if errors.Is(err, ErrShortBuffer) {
						grown := make([]byte, len(out), min(2*cap(out)+64, tt.limit))
						copy(grown, out)
						out, err = grown, nil
					}
				}
				if err != nil {
					break
				}
			}
			if !errors.Is(err, ErrTooBig) {
				t.Fatalf("got %v after %d bytes inflated; want ErrTooBig", err, len(out))
			}
			if len(out) > tt.limit || cap(out) > tt.limit {
				t.Fatalf("inflated %d bytes into a buffer of %d, beyond the limit of %d", len(out), cap(out), tt.limit)
			}
			if want := tt.limit/1032 + 4096; consumed > want {
				t.Fatalf("consumed %d bytes of input before stopping, want %d at most", consumed, want)
			}
			if _, _, again := d.Inflate(out, p, tt.limit); !errors.Is(again, ErrTooBig) {
				t.Fatalf("the error is not sticky: then %v", again)
			}
			if _, again := d.Finish(out, tt.limit); !errors.Is(again, ErrTooBig) {
				t.Fatalf("the error is not sticky: Finish then %v", again)
			}
		})
	}
}

// matchFirst returns a fixed block that starts with a match: there is no
// byte before it to copy.
func matchFirst() []byte {
	var w bitWriter
	w.put(0, 1)  // BFINAL
	w.put(1, 2)  // fixed
	w.code(1, 7) // 257: length 3
	w.code(0, 5) // distance 1
	w.code(0, 7) // end of block
	return w.flush()
}

// TestCorruptInput: inputs that are not DEFLATE give ErrCorrupt, whole or
// in pieces, and never a panic.
func TestCorruptInput(t *testing.T) {
	for _, tt := range []struct {
		name string
		p    []byte
	}{
		{"reserved block type", []byte{0x07}},
		{"stored length mismatch", []byte{0x00, 0x05, 0x00, 0xfa, 0xfe, 'h', 'e', 'l', 'l', 'o'}},
		{"match before the start", matchFirst()},
		{"too many length codes", []byte{0xfc, 0xff}},
		{"ends inside a block", []byte{0xf2, 0x48, 0xcd}},
		{"ends inside a stored block", []byte{0x00, 0x05, 0x00, 0xfa, 0xff, 'h', 'e'}},
		{"the tail is not removed", []byte{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00, 0x00, 0xff, 0xff}},
		{"garbage", []byte("this is not deflate")},
	} {
		for _, k := range []int{0, 1, 2} {
			d := NewDecompressor(Params{}, false)
			out, err := inflateMessage(d, split(tt.p, k), 1<<20)
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("%s in pieces of %d: got %q, %v; want ErrCorrupt", tt.name, k, out, err)
			}
			if _, again := d.Finish(nil, 1<<20); !errors.Is(again, ErrCorrupt) {
				t.Errorf("%s: the error is not sticky: then %v", tt.name, again)
			}
			d.Release()
		}
	}
}
