package deflate

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestFormCompressesAsTheCompressor: for every window and level, a
// Compressor without context takeover has a Form, whose Compress makes
// exactly the Compressor's bytes; they inflate to the message without a
// match beyond the window. With context takeover there is no Form.
func TestFormCompressesAsTheCompressor(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	msgs := [][]byte{jsonMessage(r, 1024), jsonMessage(r, 40000), binaryMessage(r, 5000, false), binaryMessage(r, 3000, true), {}}
	for bits := minWindowBits; bits <= maxWindowBits; bits++ {
		for _, level := range []int{1, 5, 9} {
			t.Run(fmt.Sprintf("bits=%d/level=%d", bits, level), func(t *testing.T) {
				p := Params{ServerNoContextTakeover: true, ClientNoContextTakeover: true, ServerMaxWindowBits: bits, ClientMaxWindowBits: bits}
				c := NewCompressor(p, false, &Options{Level: level, MinSize: -1})
				f, ok := c.Form()
				if !ok || f.Bits() != bits {
					t.Fatalf("Form() = %+v, %v; want one of %d bits", f, ok, bits)
				}
				if wantLevel := map[bool]int{true: level, false: 0}[bits == maxWindowBits]; f.Level() != wantLevel {
					t.Errorf("Form().Level() = %d, want %d", f.Level(), wantLevel)
				}
				d := NewDecompressor(p, true)
				defer d.Release()
				for _, msg := range msgs {
					want, err := c.Compress(nil, msg)
					if err != nil {
						t.Fatal(err)
					}
					got, err := f.Compress([]byte("x"), msg)
					if err != nil || !bytes.Equal(got[1:], want) || got[0] != 'x' {
						t.Fatalf("Form.Compress of %d bytes: %d bytes (equal: %v), %v", len(msg), len(got)-1, bytes.Equal(got[1:], want), err)
					}
					back, err := inflateMessage(d, [][]byte{got[1:]}, 1<<20)
					if err != nil || !bytes.Equal(back, msg) {
						t.Fatalf("%d bytes inflate to %d, %v", len(msg), len(back), err)
					}
				}
				if d.maxDist > 1<<bits || d.maxDist == 0 {
					t.Errorf("the farthest match is %d bytes back, window %d", d.maxDist, 1<<bits)
				}
			})
		}
	}
	c := NewCompressor(Params{}, false, &Options{ContextTakeover: true})
	if f, ok := c.Form(); ok {
		t.Errorf("a Compressor with context takeover has Form %+v", f)
	}
}

// TestFormEqualityAndBounds: Forms of windows below 15 bits ignore the
// level; out-of-range Forms do not exist; the zero Form does not
// compress.
func TestFormEqualityAndBounds(t *testing.T) {
	a, _ := NewForm(1, 10)
	b, _ := NewForm(9, 10)
	c, _ := NewForm(1, 15)
	d, _ := NewForm(9, 15)
	if a != b || c == d || a == c {
		t.Errorf("forms %+v %+v %+v %+v: want the first two equal, the others apart", a, b, c, d)
	}
	for _, tc := range []struct{ level, bits int }{{1, 7}, {1, 16}, {0, 15}, {10, 15}, {-1, 15}} {
		if f, ok := NewForm(tc.level, tc.bits); ok {
			t.Errorf("NewForm(%d, %d) = %+v, want none", tc.level, tc.bits, f)
		}
	}
	if _, err := (Form{}).Compress(nil, []byte("abc")); err == nil {
		t.Error("the zero Form compressed")
	}
	if raceEnabled {
		return // the race detector drops pooled compressors at random
	}
	msg := jsonMessage(rand.New(rand.NewPCG(1, 1)), 1024)
	dst := make([]byte, 0, MaxCompressedLen(len(msg)))
	if n := testing.AllocsPerRun(20, func() { c.Compress(dst, msg) }); n != 0 {
		t.Errorf("Form.Compress into a large enough buffer: %v allocations, want 0", n)
	}
}
