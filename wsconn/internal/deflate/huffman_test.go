package deflate

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

// randomCodeLens returns the code lengths of a random complete prefix
// code of n symbols (some of them unused, length 0) no longer than
// maxCodeBits: a full binary tree grown by splitting random leaves.
func randomCodeLens(rng *rand.Rand, n, used int) []uint8 {
	leaves := []uint8{0}
	for len(leaves) < used {
		i := rng.IntN(len(leaves))
		if leaves[i] == maxCodeBits {
			continue
		}
		leaves[i]++
		leaves = append(leaves, leaves[i])
	}
	lens := make([]uint8, n)
	for i, sym := range rng.Perm(n)[:used] {
		lens[sym] = leaves[i]
	}
	return lens
}

// TestBuildTableDecodesEveryCode builds tables over garbage left by an
// earlier build, for random complete codes of every shape a dynamic
// block may send, and checks that each symbol's canonical code looks up
// its own entry with its length, whatever bits follow it.
func TestBuildTableDecodesEveryCode(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	tables := []struct {
		name string
		n    int
		root uint
		size int
		what []entry
	}{
		{"literal/length", maxLitSymbols, litRootBits, litTableSize, litEntries},
		{"distance", maxDistSymbols, distRootBits, distTableSize, distEntries},
		{"code length", numCodeLens, clenRootBits, 1 << clenRootBits, symbolEntries},
	}
	for _, tb := range tables {
		tab := make([]entry, tb.size)
		for round := range 2000 {
			used := 2 + rng.IntN(tb.n-1)
			lens := randomCodeLens(rng, tb.n, used)
			if tb.root == clenRootBits && maxLen(lens) > 7 {
				continue // code-length codes are at most 7 bits
			}
			for i := range tab {
				tab[i] = entry(rng.Uint32()) // what an earlier block left
			}
			if !buildTable(tab, lens, tb.root, tb.what) {
				t.Fatalf("%s, round %d: a complete code %v does not build", tb.name, round, lens)
			}
			var count [maxCodeBits + 2]int
			for _, l := range lens {
				count[l]++
			}
			count[0] = 0
			var next [maxCodeBits + 2]int
			for l := 1; l <= maxCodeBits; l++ {
				next[l] = (next[l-1] + count[l-1]) << 1
			}
			for sym, l := range lens {
				if l == 0 {
					continue
				}
				code := reverse(next[l], l)
				next[l]++
				for range 4 {
					b := uint64(code) | rng.Uint64()<<l
					want := tb.what[sym] | entry(l)
					if got := lookup(tab, b, tb.root); got != want {
						t.Fatalf("%s, round %d: symbol %d (length %d) looks up %#x, want %#x", tb.name, round, sym, l, got, want)
					}
				}
			}
		}
	}
}

// TestBuildTableOneCode: the single code of one bit DEFLATE allows decodes
// its symbol from a 0 bit and answers invalid, after one bit, for a 1.
func TestBuildTableOneCode(t *testing.T) {
	tab := make([]entry, distTableSize)
	for i := range tab {
		tab[i] = kindDist | 5 // garbage
	}
	lens := make([]uint8, maxDistSymbols)
	lens[3] = 1
	if !buildTable(tab, lens, distRootBits, distEntries) {
		t.Fatal("one code of one bit does not build")
	}
	for b := range uint64(1 << distRootBits) {
		want := distEntries[3] | 1
		if b&1 == 1 {
			want = kindInvalid | 1
		}
		if got := lookup(tab, b, distRootBits); got != want {
			t.Fatalf("bits %08b look up %#x, want %#x", b, got, want)
		}
	}
}

// TestBuildTableRejects: over-subscribed and incomplete codes (other than
// one code of one bit) build nothing.
func TestBuildTableRejects(t *testing.T) {
	tab := make([]entry, litTableSize)
	for _, lens := range [][]uint8{
		{1, 1, 1},    // over-subscribed
		{1, 2},       // incomplete
		{2, 2, 2},    // incomplete
		{1, 0, 0, 2}, // incomplete
		{1, 1, 2, 0}, // over-subscribed
	} {
		if buildTable(tab, lens, litRootBits, litEntries) {
			t.Errorf("lengths %v build a table", lens)
		}
	}
}

func maxLen(lens []uint8) uint8 {
	m := uint8(0)
	for _, l := range lens {
		m = max(m, l)
	}
	return m
}

// TestInflateAnyRoom: a message of literal pairs between matches of the
// longest length inflates the same whatever room its buffer has left at
// each step, the room running out anywhere, inside a run of literals or
// a match of 258 bytes included.
func TestInflateAnyRoom(t *testing.T) {
	var msg []byte
	rng := rand.New(rand.NewPCG(3, 3))
	for range 12 {
		msg = append(msg, byte('a'+rng.IntN(26)), byte('a'+rng.IntN(26)))
		msg = append(msg, bytes.Repeat([]byte{byte('A' + rng.IntN(26))}, 259+rng.IntN(300))...)
	}
	c := NewCompressor(Params{}, false, &Options{MinSize: -1})
	z, err := c.Compress(nil, msg)
	if err != nil {
		t.Fatal(err)
	}
	for first := 1; first <= 300; first++ {
		for _, step := range []int{1, 7, 259} {
			d := NewDecompressor(Params{ClientNoContextTakeover: true}, false)
			out := make([]byte, 0, first)
			src := z
			for {
				var n int
				out, n, err = d.Inflate(out, src, len(msg))
				src = src[n:]
				if !errors.Is(err, ErrShortBuffer) {
					break
				}
				out = append(make([]byte, 0, cap(out)+step), out...)
			}
			if err == nil {
				out, err = d.Finish(append(make([]byte, 0, len(msg)), out...), len(msg))
			}
			d.Release()
			if err != nil || !bytes.Equal(out, msg) {
				t.Fatalf("first room %d, then %d more each time: %d bytes, %v", first, step, len(out), err)
			}
		}
	}
}
