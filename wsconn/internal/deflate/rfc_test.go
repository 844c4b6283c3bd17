package deflate

import (
	"bytes"
	"compress/flate"
	"errors"
	"math/rand/v2"
	"testing"
)

// TestRFCExamples inflates the payloads of RFC 7692 section 7.2.3.
func TestRFCExamples(t *testing.T) {
	hello := []byte("Hello")
	tests := []struct {
		name     string
		takeover bool
		messages [][][]byte // messages, each in frames
		want     [][]byte
	}{
		{"7.2.3.1 a message in one frame", false,
			[][][]byte{{{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}}}, [][]byte{hello}},
		{"7.2.3.1 a message in two frames", false,
			[][][]byte{{{0xf2, 0x48, 0xcd}, {0xc9, 0xc9, 0x07, 0x00}}}, [][]byte{hello}},
		{"7.2.3.2 sharing the window", true,
			[][][]byte{{{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}}, {{0xf2, 0x00, 0x11, 0x00, 0x00}}}, [][]byte{hello, hello}},
		{"7.2.3.3 a stored block", false,
			[][][]byte{{{0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00}}}, [][]byte{hello}},
		{"7.2.3.4 a block with BFINAL", false,
			[][][]byte{{{0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00}}}, [][]byte{hello}},
		{"7.2.3.4 then the next message", true,
			[][][]byte{{{0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00}}, {{0xf2, 0x00, 0x11, 0x00, 0x00}}}, [][]byte{hello, hello}},
		{"7.2.3.5 two blocks", false,
			[][][]byte{{{0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00}}}, [][]byte{hello}},
		{"7.2.3.6 an empty message", false, [][][]byte{{{0x00}}}, [][]byte{{}}},
		{"a message of no bytes", false, [][][]byte{{}, {{}}}, [][]byte{{}, {}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Params{ClientNoContextTakeover: !tt.takeover, ServerNoContextTakeover: !tt.takeover}
			d := NewDecompressor(p, true)
			defer d.Release()
			for i, frames := range tt.messages {
				got, err := inflateMessage(d, frames, 100)
				if err != nil || !bytes.Equal(got, tt.want[i]) {
					t.Fatalf("message %d: got %q, %v; want %q", i, got, err, tt.want[i])
				}
			}
		})
	}
	t.Run("7.2.3.2 without context takeover", func(t *testing.T) {
		d := NewDecompressor(Params{ServerNoContextTakeover: true}, true)
		defer d.Release()
		if _, err := inflateMessage(d, [][]byte{{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}}, 100); err != nil {
			t.Fatal(err)
		}
		if got, err := inflateMessage(d, [][]byte{{0xf2, 0x00, 0x11, 0x00, 0x00}}, 100); err == nil {
			t.Fatalf("the second message reads %q without the first's window", got)
		}
	})
}

// TestInflateStdlibStreams reads what compress/flate writes, an
// implementation independent of both sides of this package: every level,
// with a writer kept across messages (context takeover: matches reach
// into earlier messages, 32 KiB back) or reset for each, the payloads
// arriving in pieces.
func TestInflateStdlibStreams(t *testing.T) {
	for _, level := range []int{flate.HuffmanOnly, flate.NoCompression, flate.BestSpeed, flate.DefaultCompression, flate.BestCompression} {
		for _, takeover := range []bool{false, true} {
			r := rand.New(rand.NewPCG(uint64(level+2), 3))
			var z bytes.Buffer
			w, _ := flate.NewWriter(&z, level)
			p := Params{ClientNoContextTakeover: !takeover}
			d := NewDecompressor(p, false)
			for i := range 300 {
				n := r.IntN(2000)
				if i%50 == 0 {
					n = 70000
				}
				msg := kinds[i%len(kinds)].make(r, n)
				z.Reset()
				if !takeover {
					w.Reset(&z)
				}
				w.Write(msg)
				w.Flush()
				payload := z.Bytes()[:z.Len()-4]
				got, err := inflateMessage(d, split(payload, 1+i%13), 1<<20)
				if err != nil || !bytes.Equal(got, msg) {
					t.Fatalf("level %d, takeover %v, message %d of %d bytes: got %d bytes, %v", level, takeover, i, n, len(got), err)
				}
			}
			d.Release()
		}
	}
}

// TestFinishShortBuffer: the tail can carry data (here, the content of a
// stored block whose header ends the payload), which Finish writes
// within the buffer's capacity, asking for room as Inflate does.
func TestFinishShortBuffer(t *testing.T) {
	d := NewDecompressor(Params{}, false)
	defer d.Release()
	out := make([]byte, 0, 2)
	out, n, err := d.Inflate(out, []byte{0x00, 0x04, 0x00, 0xfb, 0xff}, 10)
	if err != nil || n != 5 || len(out) != 0 {
		t.Fatalf("Inflate: %q, %d, %v", out, n, err)
	}
	out, err = d.Finish(out, 10)
	if !errors.Is(err, ErrShortBuffer) || !bytes.Equal(out, []byte{0, 0}) {
		t.Fatalf("Finish into 2 bytes: %q, %v; want 2 bytes and ErrShortBuffer", out, err)
	}
	out = append(make([]byte, 0, 8), out...)
	out, err = d.Finish(out, 10)
	if err != nil || !bytes.Equal(out, tail[:]) {
		t.Fatalf("Finish again: %x, %v; want %x", out, err, tail)
	}
	// The limit holds in Finish too.
	d2 := NewDecompressor(Params{}, false)
	defer d2.Release()
	out, _, _ = d2.Inflate(make([]byte, 0, 8), []byte{0x00, 0x04, 0x00, 0xfb, 0xff}, 3)
	if out, err = d2.Finish(out, 3); !errors.Is(err, ErrTooBig) || len(out) != 3 {
		t.Fatalf("Finish within 3 bytes: %x, %v; want ErrTooBig", out, err)
	}
}
