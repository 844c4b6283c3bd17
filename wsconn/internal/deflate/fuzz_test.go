package deflate

import (
	"bytes"
	"compress/flate"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
)

// stdlibInflate is the model: compress/flate reading a message's payload
// with the tail, then an empty final block so that a stream which ends
// cleanly ends with io.EOF, with dict as the window of earlier messages.
// It reads at most limit+1 bytes.
func stdlibInflate(dict, payload []byte, limit int) ([]byte, error) {
	in := append(append(append([]byte(nil), payload...), tail[:]...), 0x01, 0x00, 0x00, 0xff, 0xff)
	r := flate.NewReaderDict(bytes.NewReader(in), dict)
	return io.ReadAll(io.LimitReader(r, int64(limit)+1))
}

// checkAgainstModel inflates payload in chunks of k bytes within limit
// and compares the outcome with the model's. With dict, the payload is
// the second message of a connection with context takeover whose first
// message was dict.
func checkAgainstModel(t *testing.T, dict, payload []byte, k, limit int) {
	if dict != nil && !bytes.Equal(dict, fuzzDict) {
		t.Fatal("the first message can only be fuzzDict")
	}
	t.Helper()
	takeover := dict != nil
	d := NewDecompressor(Params{ServerNoContextTakeover: !takeover, ClientNoContextTakeover: !takeover}, false)
	defer d.Release()
	if takeover {
		if got, err := inflateMessage(d, [][]byte{fuzzDictPayload()}, len(dict)); err != nil || !bytes.Equal(got, dict) {
			t.Fatalf("the first message: %v", err)
		}
	}
	got, err := inflateMessage(d, split(payload, k), limit)
	if len(got) > limit {
		t.Fatalf("inflated %d bytes, beyond the limit of %d", len(got), limit)
	}
	if err != nil && !errors.Is(err, ErrTooBig) && !errors.Is(err, ErrCorrupt) {
		t.Fatalf("error %v is neither ErrTooBig nor ErrCorrupt", err)
	}
	if len(payload) == 0 {
		if err != nil || len(got) != 0 {
			t.Fatalf("empty payload: got %d bytes, %v; want the empty message", len(got), err)
		}
		return
	}
	want, werr := stdlibInflate(dict, payload, limit)
	switch {
	case err == nil:
		if werr != nil || !bytes.Equal(got, want) {
			t.Fatalf("inflated %d bytes; compress/flate: %d bytes, %v (same: %v)", len(got), len(want), werr, bytes.Equal(got, want))
		}
	case errors.Is(err, ErrTooBig):
		if len(want) <= limit || !bytes.Equal(got, want[:len(got)]) {
			t.Fatalf("%v after %d bytes; compress/flate: %d bytes, %v", err, len(got), len(want), werr)
		}
	default:
		// The end of a message is the one place the two may differ:
		// this package wants the tail to end an empty stored block,
		// where compress/flate reads on into the final block the model
		// appends. And past the limit, compress/flate was not asked to
		// read far enough to find what is wrong (a block with no
		// end-of-block code, which it does not check up front, is such).
		if werr == nil && len(want) <= limit && !strings.Contains(err.Error(), "does not end") {
			t.Fatalf("%v; compress/flate inflated %d bytes without an error", err, len(want))
		}
		n := min(len(got), len(want))
		if !bytes.Equal(got[:n], want[:n]) {
			t.Fatalf("%v: the %d bytes inflated differ from compress/flate's", err, len(got))
		}
	}
}

// seeds are compressed messages of several kinds, for the fuzz corpus and
// the mutation test.
func seeds() [][]byte {
	r := rand.New(rand.NewPCG(7, 7))
	out := [][]byte{
		{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00},                                     // RFC 7692 7.2.3.1
		{0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00},             // 7.2.3.3
		{0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00},                               // 7.2.3.4
		{0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00}, // 7.2.3.5
		{0x00},
	}
	for _, level := range []int{flate.HuffmanOnly, flate.BestSpeed, flate.DefaultCompression, flate.BestCompression} {
		for _, n := range []int{1, 40, 300, 3000} {
			var b bytes.Buffer
			w, _ := flate.NewWriter(&b, level)
			w.Write(jsonMessage(r, n))
			w.Flush()
			out = append(out, b.Bytes()[:b.Len()-4])
		}
	}
	c := NewCompressor(Params{}, false, &Options{MinSize: -1})
	for _, m := range [][]byte{binaryMessage(r, 500, false), binaryMessage(r, 200, true)} {
		z, _ := c.Compress(nil, m)
		out = append(out, z)
	}
	return out
}

// TestInflateMutations runs the model comparison over mutations of valid
// streams: flipped bits, cut ends, inserted and deleted bytes.
func TestInflateMutations(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, s := range seeds() {
		for range 300 {
			p := append([]byte(nil), s...)
			switch r.IntN(4) {
			case 0:
				p[r.IntN(len(p))] ^= 1 << r.IntN(8)
			case 1:
				p = p[:r.IntN(len(p))]
			case 2:
				i := r.IntN(len(p) + 1)
				p = append(p[:i], append([]byte{byte(r.Uint32())}, p[i:]...)...)
			default:
				i := r.IntN(len(p))
				p = append(p[:i], p[i+1:]...)
			}
			var dict []byte
			if r.IntN(4) == 0 {
				dict = fuzzDict
			}
			checkAgainstModel(t, dict, p, 1+r.IntN(9), 1+r.IntN(5000))
		}
		checkAgainstModel(t, nil, s, 0, 1<<20)
	}
	for range 2000 {
		p := make([]byte, r.IntN(64))
		for i := range p {
			p[i] = byte(r.Uint32())
		}
		var dict []byte
		if r.IntN(4) == 0 {
			dict = fuzzDict
		}
		checkAgainstModel(t, dict, p, 1+r.IntN(5), 1+r.IntN(300))
	}
}

// fuzzDict is the first message of a connection with context takeover:
// 40 KiB, more than the window, so that matches into it reach the
// window's start and beyond.
var fuzzDict = jsonMessage(rand.New(rand.NewPCG(8, 8)), 40<<10)

// fuzzDictPayload is fuzzDict compressed.
var fuzzDictPayload = sync.OnceValue(func() []byte {
	c := NewCompressor(Params{}, true, &Options{MinSize: -1})
	z, _ := c.Compress(nil, fuzzDict)
	return z
})

// FuzzInflate: any input, in any chunks, within any limit, with or
// without the window of an earlier message, inflates as compress/flate
// does, never beyond the limit, and never panics.
func FuzzInflate(f *testing.F) {
	for _, s := range seeds() {
		f.Add(s, uint8(0), uint16(4096), false)
		f.Add(s, uint8(1), uint16(7), true)
	}
	f.Fuzz(func(t *testing.T, payload []byte, k uint8, limit uint16, takeover bool) {
		var dict []byte
		if takeover {
			dict = fuzzDict
		}
		checkAgainstModel(t, dict, payload, int(k), int(limit))
	})
}
