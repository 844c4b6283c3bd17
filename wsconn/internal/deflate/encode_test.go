package deflate

import (
	"bytes"
	"compress/flate"
	"container/heap"
	"io"
	"math/rand/v2"
	"testing"
)

// encoderInputs are messages that take each path of the encoder: no
// match, matches of every length and distance, a block per 16 Ki tokens,
// one distance code only, runs, and frequencies skewed enough that
// Huffman codes would be longer than 15 bits.
func encoderInputs(r *rand.Rand) map[string][]byte {
	in := map[string][]byte{
		"empty":      {},
		"one byte":   {'x'},
		"short":      []byte("abc"),
		"seven":      []byte("abcabca"),
		"run":        bytes.Repeat([]byte{'a'}, 70000)[:encMaxInput],
		"two runs":   append(bytes.Repeat([]byte{'a'}, 300), bytes.Repeat([]byte{'b'}, 300)...),
		"period 3":   bytes.Repeat([]byte("abc"), 1000),
		"noise 64Ki": binaryMessage(r, encMaxInput, true),
		"text 64Ki":  jsonMessage(r, encMaxInput),
		"mixed 40Ki": binaryMessage(r, 40<<10, false),
		"text 1Ki":   jsonMessage(r, 1024),
		"noise 300":  binaryMessage(r, 300, true),
	}
	// Literal frequencies in a Fibonacci sequence: a Huffman code for
	// them is as deep as there are symbols.
	var fib []byte
	a, b := 1, 1
	for sym := range 24 {
		fib = append(fib, bytes.Repeat([]byte{byte('A' + sym)}, a)...)
		a, b = b, a+b
		if len(fib) > 60000 {
			break
		}
	}
	r.Shuffle(len(fib), func(i, j int) { fib[i], fib[j] = fib[j], fib[i] })
	in["fibonacci"] = fib[:min(len(fib), encMaxInput)]
	// Matches at every distance up to 32 KiB, and of every length.
	var far []byte
	block := binaryMessage(r, 300, true)
	for d := 1; len(far) < 60000; d = d*3 + 1 {
		far = append(far, block[:min(d%290+3, len(block))]...)
		far = append(far, binaryMessage(r, min(d, 32000), true)...)
		far = append(far, block[:min(d%290+3, len(block))]...)
	}
	in["far"] = far[:min(len(far), encMaxInput)]
	return in
}

// TestEncoderRoundTrip compresses each input with every window and checks
// that compress/flate, an independent reader, and this package's inflater
// both give the input back, with no match beyond the window.
func TestEncoderRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 14))
	for name, msg := range encoderInputs(r) {
		for bits := minWindowBits; bits <= maxWindowBits; bits++ {
			z := compressSmall([]byte("prefix"), msg, 1<<bits)
			if string(z[:6]) != "prefix" {
				t.Fatalf("%s: the prefix is lost", name)
			}
			z = z[6:]
			if len(z) > MaxCompressedLen(len(msg)) {
				t.Errorf("%s, %d bits: %d bytes compress to %d, above MaxCompressedLen", name, bits, len(msg), len(z))
			}
			model, err := io.ReadAll(flate.NewReader(io.MultiReader(bytes.NewReader(z), bytes.NewReader(tail[:]), bytes.NewReader([]byte{1, 0, 0, 0xff, 0xff}))))
			if err != nil || !bytes.Equal(model, msg) {
				t.Fatalf("%s, %d bits: compress/flate reads %d bytes (equal: %v), %v", name, bits, len(model), bytes.Equal(model, msg), err)
			}
			d := NewDecompressor(Params{}, false)
			got, err := inflateMessage(d, split(z, 1000), len(msg))
			if err != nil || !bytes.Equal(got, msg) {
				t.Fatalf("%s, %d bits: inflated %d bytes (equal: %v), %v", name, bits, len(got), bytes.Equal(got, msg), err)
			}
			if d.maxDist > 1<<bits {
				t.Errorf("%s: a match %d bytes back, beyond the window of %d", name, d.maxDist, 1<<bits)
			}
			d.Release()
		}
	}
}

// TestEncoderRatio: the encoder compresses about as well as flate's level
// 1, which it replaces: on text, within 5 %; incompressible data costs at
// most the stored blocks' headers.
func TestEncoderRatio(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 92))
	for _, n := range []int{256, 1024, 8192, encMaxInput} {
		var own, ref int
		for range 20 {
			msg := jsonMessage(r, n)
			own += len(compressSmall(nil, msg, 1<<15))
			c := NewCompressor(Params{}, false, nil)
			z, err := c.compressFlate(nil, msg)
			if err != nil {
				t.Fatal(err)
			}
			ref += len(z)
		}
		if own*100 > ref*105 {
			t.Errorf("%d-byte text: %d bytes against flate's %d", n, own, ref)
		}
	}
	noise := binaryMessage(r, encMaxInput, true)
	if z := compressSmall(nil, noise, 1<<15); len(z) > len(noise)+5*5+1 {
		t.Errorf("%d bytes of noise compress to %d: not stored", len(noise), len(z))
	}
}

// TestHuffLengths checks the code lengths for random and skewed
// frequencies: every used symbol and no other has a length, none is
// longer than the limit, the code is complete (Kraft's sum is exactly
// 1), and where the limit does not bind the code is optimal, costing
// what a Huffman code built with a heap costs.
func TestHuffLengths(t *testing.T) {
	r := rand.New(rand.NewPCG(65, 35))
	var keys [maxLitSymbols]uint32
	var a [maxLitSymbols + 1]uint32
	var buf [maxLitSymbols]uint16
	for i := range 3000 {
		n := []int{maxLitSymbols, maxDistSymbols, numCodeLens}[i%3]
		maxBits := []int{maxCodeBits, maxCodeBits, 7}[i%3]
		freq := make([]uint32, n)
		used := 1 + r.IntN(n)
		switch i % 4 {
		case 0: // uniform
			for range used {
				freq[r.IntN(n)] = 1 + r.Uint32N(1000)
			}
		case 1: // skewed: a few symbols dominate
			for range used {
				freq[r.IntN(n)] = 1 << r.IntN(14)
			}
		case 2: // Fibonacci: as deep as there are symbols
			f0, f1 := uint32(1), uint32(1)
			for _, s := range r.Perm(n)[:min(used, 25)] {
				freq[s] = f0
				f0, f1 = f1, f0+f1
			}
		default: // one or two symbols
			freq[r.IntN(n)] = 1 + r.Uint32N(5)
			if r.IntN(2) == 0 {
				freq[r.IntN(n)] = 1 + r.Uint32N(5)
			}
		}
		lens := make([]uint8, n)
		for j := range lens {
			lens[j] = 9 // garbage from an earlier block
		}
		syms := symbols(freq, buf[:])
		count, syms := huffLengths(freq, syms, lens, maxBits, keys[:], a[:])
		kraft, cost, nonzero := 0, 0, 0
		var got lengthCounts
		for s, l := range lens {
			if freq[s] > 0 {
				nonzero++
				if l == 0 {
					t.Fatalf("case %d: symbol %d of frequency %d has no code", i, s, freq[s])
				}
			}
			if int(l) > maxBits {
				t.Fatalf("case %d: a code of %d bits, limit %d", i, l, maxBits)
			}
			if l > 0 {
				kraft += 1 << (maxBits - int(l))
				cost += int(freq[s]) * int(l)
				got[l]++
			}
		}
		if kraft != 1<<maxBits {
			t.Fatalf("case %d: Kraft's sum is %d/%d, not 1: %v", i, kraft, 1<<maxBits, lens)
		}
		if got != count {
			t.Fatalf("case %d: returned counts %v, lengths have %v", i, count, got)
		}
		if len(syms) != max(nonzero, 2) {
			t.Fatalf("case %d: %d symbols listed for %d used", i, len(syms), nonzero)
		}
		for j, s := range syms {
			if lens[s] == 0 || j > 0 && syms[j-1] >= s {
				t.Fatalf("case %d: the symbols listed are not those with a code, in order: %v", i, syms)
			}
		}
		if want, depth := heapHuffman(freq); depth <= maxBits && nonzero > 1 && cost != want {
			t.Fatalf("case %d: the code costs %d bits, a Huffman code %d", i, cost, want)
		}
	}
}

// heapHuffman returns the cost in bits of an optimal prefix code for freq,
// built the textbook way, and its depth.
func heapHuffman(freq []uint32) (cost, depth int) {
	h := &nodeHeap{}
	for _, f := range freq {
		if f > 0 {
			heap.Push(h, node{w: int(f)})
		}
	}
	for h.Len() > 1 {
		x, y := heap.Pop(h).(node), heap.Pop(h).(node)
		cost += x.w + y.w
		heap.Push(h, node{w: x.w + y.w, depth: max(x.depth, y.depth) + 1})
	}
	return cost, (*h)[0].depth
}

type node struct{ w, depth int }
type nodeHeap []node

func (h nodeHeap) Len() int           { return len(h) }
func (h nodeHeap) Less(i, j int) bool { return h[i].w < h[j].w }
func (h nodeHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *nodeHeap) Push(x any)        { *h = append(*h, x.(node)) }
func (h *nodeHeap) Pop() any {
	x := (*h)[len(*h)-1]
	*h = (*h)[:len(*h)-1]
	return x
}

// TestEncoderCodeTables: the length and distance codes the encoder looks
// up are those of RFC 1951's tables, for every length and distance.
func TestEncoderCodeTables(t *testing.T) {
	for l := 3; l <= maxMatch; l++ {
		c := lengthCode[l-3]
		hi := int(lengthBase[c]) + 1<<lengthExtra[c]
		if c == 28 || c == 27 {
			hi = min(hi, maxMatch+1)
		}
		if l < int(lengthBase[c]) || l >= hi || (l == maxMatch) != (c == 28) {
			t.Fatalf("length %d has code %d (base %d)", l, c, lengthBase[c])
		}
		if x := lengthExtras[l-3]; int(x&0xff) != l-int(lengthBase[c]) || x>>8 != uint16(lengthExtra[c]) {
			t.Fatalf("length %d: extra bits %#x", l, x)
		}
	}
	for d := 1; d <= 1<<15; d++ {
		c := distCode(d - 1)
		if d < int(distBase[c]) || d >= int(distBase[c])+1<<distExtra[c] {
			t.Fatalf("distance %d has code %d (base %d)", d, c, distBase[c])
		}
	}
}

// FuzzCompress: whatever the message and window, compress/flate reads
// the encoder's output back as the message, and no match reaches beyond
// the window.
func FuzzCompress(f *testing.F) {
	r := rand.New(rand.NewPCG(1, 2))
	f.Add([]byte("hello hello hello"), uint8(15))
	f.Add(jsonMessage(r, 2000), uint8(8))
	f.Add(binaryMessage(r, 3000, false), uint8(11))
	f.Fuzz(func(t *testing.T, msg []byte, bits uint8) {
		if len(msg) > encMaxInput {
			msg = msg[:encMaxInput]
		}
		bits = minWindowBits + bits%(maxWindowBits-minWindowBits+1)
		z := compressSmall(nil, msg, 1<<bits)
		model, err := io.ReadAll(flate.NewReader(io.MultiReader(bytes.NewReader(z), bytes.NewReader(tail[:]), bytes.NewReader([]byte{1, 0, 0, 0xff, 0xff}))))
		if err != nil || !bytes.Equal(model, msg) {
			t.Fatalf("compress/flate reads %d bytes (equal: %v), %v", len(model), bytes.Equal(model, msg), err)
		}
		d := NewDecompressor(Params{}, false)
		defer d.Release()
		got, err := inflateMessage(d, [][]byte{z}, len(msg))
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("inflated %d bytes, %v", len(got), err)
		}
		if d.maxDist > 1<<bits {
			t.Fatalf("a match %d bytes back, window %d", d.maxDist, 1<<bits)
		}
	})
}
