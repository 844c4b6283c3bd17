package deflate

import (
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
)

// messageSizes are the sizes of Autobahn's compression cases, 16 B to
// 128 KiB, with the edges of flate's blocks and of a frame's length
// field.
var messageSizes = []int{0, 1, 16, 64, 125, 126, 256, 1024, 4096, 8192, 16384, 32768, 65535, 65536, 131072}

// kinds of messages: text, and binary both compressible and not.
var kinds = []struct {
	name string
	make func(r *rand.Rand, n int) []byte
}{
	{"text", jsonMessage},
	{"binary", func(r *rand.Rand, n int) []byte { return binaryMessage(r, n, false) }},
	{"noise", func(r *rand.Rand, n int) []byte { return binaryMessage(r, n, true) }},
}

// pair returns the compressor of one endpoint and the decompressor of
// the other, for a connection with context takeover or not and a window
// of bits both ways.
func pair(takeover bool, bits int) (*Compressor, *Decompressor) {
	p := Params{ServerNoContextTakeover: !takeover, ClientNoContextTakeover: !takeover, ServerMaxWindowBits: bits, ClientMaxWindowBits: bits}
	o := &Options{ContextTakeover: takeover, MaxWindowBits: bits, MinSize: -1}
	return NewCompressor(p, false, o), NewDecompressor(p, true)
}

// TestRoundTrip sends messages of every size and kind from a compressor
// to a decompressor, with and without context takeover, with every window
// size, and the payload arriving in pieces of 1 byte up to whole. Each
// payload is also inflated by compress/flate, an independent reader, and
// no match reaches back further than the window agreed.
func TestRoundTrip(t *testing.T) {
	for _, takeover := range []bool{false, true} {
		for bits := minWindowBits; bits <= maxWindowBits; bits++ {
			t.Run(fmt.Sprintf("takeover=%v/bits=%d", takeover, bits), func(t *testing.T) {
				t.Parallel()
				r := rand.New(rand.NewPCG(uint64(bits), 1))
				c, d := pair(takeover, bits)
				defer c.Release()
				defer d.Release()
				// The independent reader sees the messages as one stream
				// when the window carries across them.
				var stream bytes.Buffer
				model := flate.NewReader(&stream)
				splits := []int{0, 1, 2, 3, 7, 100, 4096}
				i := 0
				for _, kind := range kinds {
					for _, n := range messageSizes {
						msg := kind.make(r, n)
						z, err := c.Compress(nil, msg)
						if err != nil {
							t.Fatal(err)
						}
						k := splits[i%len(splits)]
						i++
						got, err := inflateMessage(d, split(z, k), 1<<20)
						if err != nil || !bytes.Equal(got, msg) {
							t.Fatalf("%s of %d bytes in pieces of %d: got %d bytes (equal: %v), %v", kind.name, n, k, len(got), bytes.Equal(got, msg), err)
						}
						if !takeover {
							stream.Reset()
							model.(flate.Resetter).Reset(&stream, nil)
						}
						stream.Write(z)
						stream.Write(tail[:])
						want := make([]byte, len(msg))
						if _, err := io.ReadFull(model, want); err != nil || !bytes.Equal(want, msg) {
							t.Fatalf("%s of %d bytes: compress/flate reads it as %d other bytes, %v", kind.name, n, len(want), err)
						}
					}
				}
				if d.maxDist > 1<<bits {
					t.Errorf("a match reaches %d bytes back, beyond the window of %d", d.maxDist, 1<<bits)
				}
				if d.maxDist == 0 {
					t.Errorf("no message had a match: the window was not exercised")
				}
			})
		}
	}
}

// TestRoundTripTakeoverSmaller: with context takeover small similar
// messages compress to a fraction of what they do on their own, because
// they refer to earlier ones.
func TestRoundTripTakeoverSmaller(t *testing.T) {
	size := func(takeover bool) int {
		r := rand.New(rand.NewPCG(5, 5))
		c, d := pair(takeover, 15)
		defer c.Release()
		defer d.Release()
		total := 0
		for range 50 {
			msg := jsonMessage(r, 200)
			z, err := c.Compress(nil, msg)
			if err != nil {
				t.Fatal(err)
			}
			got, err := inflateMessage(d, split(z, 5), 1<<20)
			if err != nil || !bytes.Equal(got, msg) {
				t.Fatalf("got %q, %v; want %q", got, err, msg)
			}
			total += len(z)
		}
		return total
	}
	with, without := size(true), size(false)
	if with*10 > without*9 {
		t.Errorf("50 messages: %d bytes with context takeover, %d without; want at least 10%% less", with, without)
	}
}

// TestCompressAppends: Compress appends to dst and leaves what dst held.
func TestCompressAppends(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	for _, takeover := range []bool{false, true} {
		c, d := pair(takeover, 15)
		msg := jsonMessage(r, 1024)
		dst := make([]byte, 3, 3+MaxCompressedLen(len(msg)))
		copy(dst, "abc")
		z, err := c.Compress(dst, msg)
		if err != nil || string(z[:3]) != "abc" || &z[0] != &dst[0] {
			t.Fatalf("takeover=%v: Compress did not append in place: %q..., %v", takeover, z[:3], err)
		}
		got, err := inflateMessage(d, [][]byte{z[3:]}, 1<<20)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("takeover=%v: round trip: %v", takeover, err)
		}
		c.Release()
		d.Release()
	}
}

// TestSteadyStateDoesNotAllocate: once warm, compressing into a buffer
// with room and inflating into one allocate nothing, with pooled
// compressors and with kept ones.
func TestSteadyStateDoesNotAllocate(t *testing.T) {
	r := rand.New(rand.NewPCG(10, 10))
	msg := jsonMessage(r, 1024)
	for _, takeover := range []bool{false, true} {
		c, d := pair(takeover, 15)
		z := make([]byte, 0, MaxCompressedLen(len(msg)))
		out := make([]byte, 0, len(msg))
		roundTrip := func() {
			z, err := c.Compress(z[:0], msg)
			if err != nil {
				t.Fatal(err)
			}
			got, _, err := d.Inflate(out[:0], z, len(msg))
			if err == nil {
				got, err = d.Finish(got, len(msg))
			}
			if err != nil || !bytes.Equal(got, msg) {
				t.Fatalf("takeover=%v: round trip: %v", takeover, err)
			}
		}
		roundTrip()
		allocs := testing.AllocsPerRun(100, roundTrip)
		c.Release()
		d.Release()
		if raceEnabled {
			t.Skip("sync.Pool drops items at random under -race")
		}
		if allocs != 0 {
			t.Errorf("takeover=%v: %v allocations per message, want 0", takeover, allocs)
		}
	}
}

// TestMaxCompressedLen: no message, however incompressible, comes out
// longer than MaxCompressedLen says, at any level or window.
func TestMaxCompressedLen(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 11))
	opts := []Options{{MaxWindowBits: 8, MinSize: -1}, {MaxWindowBits: 12, MinSize: -1}, {ContextTakeover: true, MinSize: -1},
		{ContextTakeover: true, MaxWindowBits: 9, MinSize: -1}}
	for level := 1; level <= maxLevel; level++ {
		opts = append(opts, Options{Level: level, MinSize: -1})
	}
	for _, o := range opts {
		p := Params{ServerMaxWindowBits: 15, ClientMaxWindowBits: 15}
		c := NewCompressor(p, false, &o)
		for _, n := range []int{0, 1, 5, 31, 32, 33, 127, 128, 1000, 65535, 65536, 65537, 200000} {
			for _, noisy := range []bool{true, false} {
				msg := binaryMessage(r, n, noisy)
				z, err := c.Compress(nil, msg)
				if err != nil {
					t.Fatal(err)
				}
				if len(z) > MaxCompressedLen(n) {
					t.Errorf("%+v: %d bytes compress to %d, above MaxCompressedLen %d", o, n, len(z), MaxCompressedLen(n))
				}
			}
		}
		c.Release()
	}
}

// TestIdleHoldsNothing: between messages, without context takeover,
// neither side holds a compressor, decoding state or window; with it,
// each holds what the package doc says until Release.
func TestIdleHoldsNothing(t *testing.T) {
	msg := jsonMessage(rand.New(rand.NewPCG(2, 2)), 2000)
	for _, takeover := range []bool{false, true} {
		c, d := pair(takeover, 15)
		z, err := c.Compress(nil, msg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := inflateMessage(d, split(z, 100), 1<<20); err != nil {
			t.Fatal(err)
		}
		if d.st != nil {
			t.Errorf("takeover=%v: the decompressor holds decoding state between messages", takeover)
		}
		if got := c.w != nil; got != takeover {
			t.Errorf("takeover=%v: the compressor holds one: %v", takeover, got)
		}
		if got, want := len(d.hist), 0; takeover {
			if got != 1<<15 {
				t.Errorf("takeover=%v: the decompressor holds a window of %d bytes, want %d", takeover, got, 1<<15)
			}
		} else if got != want {
			t.Errorf("takeover=%v: the decompressor holds a window of %d bytes", takeover, got)
		}
		c.Release()
		d.Release()
		if c.w != nil || d.hist != nil {
			t.Errorf("takeover=%v: Release kept the compressor or the window", takeover)
		}
		if _, _, err := d.Inflate(nil, z, 1<<20); !errors.Is(err, ErrReleased) {
			t.Errorf("takeover=%v: Inflate after Release: %v", takeover, err)
		}
		// A released compressor starts a new window, which a new reader
		// reads.
		z, err = c.Compress(nil, msg)
		if err != nil {
			t.Fatal(err)
		}
		_, d2 := pair(takeover, 15)
		if got, err := inflateMessage(d2, [][]byte{z}, 1<<20); err != nil || !bytes.Equal(got, msg) {
			t.Errorf("takeover=%v: after Release: %v", takeover, err)
		}
		c.Release()
		d2.Release()
	}
}
