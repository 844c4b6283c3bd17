package deflate

import (
	"bytes"
	stdflate "compress/flate"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"

	kpflate "github.com/klauspost/compress/flate"
)

// The benchmarks compare this package's compression (impl=pollws: its own
// encoder where it applies), klauspost/compress/flate (which it uses for
// the rest) and compress/flate used the same way, and this package's
// inflater with both libraries' readers. Run them with
//
//	go test -run '^$' -bench . -benchtime 2000x ./wsconn/internal/deflate/
//
// Messages are JSON-like text, the kind WebSocket applications send;
// with context takeover, enough of them to fill the window several times
// over, so that each refers to its predecessors as real traffic would.

var benchSizes = []int{16, 128, 1024, 8192, 131072}

func benchMessages(n int) [][]byte {
	r := rand.New(rand.NewPCG(uint64(n), 42))
	count := min(max(64, (256<<10)/n), 4096)
	msgs := make([][]byte, count)
	for i := range msgs {
		msgs[i] = jsonMessage(r, n)
	}
	return msgs
}

// stdCompressor is Compressor's shape over compress/flate: a pooled
// writer per message, or one kept with context takeover.
type stdCompressor struct {
	takeover bool
	w        *stdWriter
}

type stdWriter struct {
	*stdflate.Writer
	sink appendWriter
}

var stdWriters sync.Pool

func (c *stdCompressor) Compress(dst, src []byte) ([]byte, error) {
	w := c.w
	if w == nil {
		var ok bool
		if w, ok = stdWriters.Get().(*stdWriter); !ok {
			w = new(stdWriter)
			w.Writer, _ = stdflate.NewWriter(&w.sink, stdflate.BestSpeed)
		}
		if c.takeover {
			c.w = w
		}
	}
	w.sink.b = dst
	w.Write(src)
	err := w.Flush()
	out := w.sink.b
	w.sink.b = nil
	if !c.takeover {
		w.Reset(&w.sink)
		stdWriters.Put(w)
	}
	return out[:len(out)-4], err
}

// flateOnly compresses every message with klauspost's flate, as
// Compressor does those its own encoder does not take.
type flateOnly struct{ c *Compressor }

func (f flateOnly) Compress(dst, src []byte) ([]byte, error) { return f.c.compressFlate(dst, src) }

type compressor interface {
	Compress(dst, src []byte) ([]byte, error)
}

func BenchmarkCompress(b *testing.B) {
	for _, n := range benchSizes {
		msgs := benchMessages(n)
		for _, takeover := range []bool{false, true} {
			for _, impl := range []string{"pollws", "klauspost", "stdlib"} {
				b.Run(fmt.Sprintf("size=%d/takeover=%v/impl=%s", n, takeover, impl), func(b *testing.B) {
					var c compressor = &stdCompressor{takeover: takeover}
					if impl != "stdlib" {
						kc, _ := pair(takeover, 15)
						defer kc.Release()
						c = kc
						if impl == "klauspost" {
							c = flateOnly{kc}
						}
					}
					dst := make([]byte, 0, MaxCompressedLen(n))
					var in, out int
					b.SetBytes(int64(n))
					b.ReportAllocs()
					i := 0
					for b.Loop() {
						z, err := c.Compress(dst, msgs[i%len(msgs)])
						if err != nil {
							b.Fatal(err)
						}
						in += n
						out += len(z)
						i++
					}
					b.ReportMetric(float64(out)/float64(in), "out/in")
				})
			}
		}
	}
}

func BenchmarkInflate(b *testing.B) {
	for _, n := range benchSizes {
		msgs := benchMessages(n)
		c, _ := pair(false, 15)
		payloads := make([][]byte, len(msgs))
		for i, m := range msgs {
			payloads[i], _ = c.Compress(nil, m)
		}
		c.Release()
		out := make([]byte, 0, n)
		b.Run(fmt.Sprintf("size=%d/impl=pollws", n), func(b *testing.B) {
			d := NewDecompressor(Params{ClientNoContextTakeover: true}, false)
			defer d.Release()
			b.SetBytes(int64(n))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				got, _, err := d.Inflate(out, payloads[i%len(payloads)], n)
				if err == nil {
					got, err = d.Finish(got, n)
				}
				if err != nil || len(got) != n {
					b.Fatalf("%d bytes, %v", len(got), err)
				}
				i++
			}
		})
		b.Run(fmt.Sprintf("size=%d/impl=pollws-frames-of-1KiB", n), func(b *testing.B) {
			d := NewDecompressor(Params{ClientNoContextTakeover: true}, false)
			defer d.Release()
			b.SetBytes(int64(n))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				got := out
				var err error
				for p := payloads[i%len(payloads)]; len(p) > 0 && err == nil; {
					k := min(len(p), 1024)
					got, _, err = d.Inflate(got, p[:k], n)
					p = p[k:]
				}
				if err == nil {
					got, err = d.Finish(got, n)
				}
				if err != nil || len(got) != n {
					b.Fatalf("%d bytes, %v", len(got), err)
				}
				i++
			}
		})
		// The libraries' readers need the whole message (they pull from
		// an io.Reader), ended by an empty final block, and room past
		// its end to read io.EOF into.
		out = make([]byte, 0, n+1)
		whole := make([][]byte, len(payloads))
		for i, p := range payloads {
			whole[i] = append(append(append([]byte(nil), p...), tail[:]...), 1, 0, 0, 0xff, 0xff)
		}
		for _, impl := range []string{"stdlib", "klauspost"} {
			b.Run(fmt.Sprintf("size=%d/impl=%s", n, impl), func(b *testing.B) {
				src := bytes.NewReader(nil)
				r := stdflate.NewReader(src)
				if impl == "klauspost" {
					r = kpflate.NewReader(src)
				}
				b.SetBytes(int64(n))
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					src.Reset(whole[i%len(whole)])
					r.(stdflate.Resetter).Reset(src, nil)
					got := out[:0]
					for {
						k, err := r.Read(got[len(got):cap(got)])
						got = got[:len(got)+k]
						if errors.Is(err, io.EOF) {
							break
						}
						if err != nil {
							b.Fatal(err)
						}
					}
					if len(got) != n {
						b.Fatalf("%d bytes", len(got))
					}
					i++
				}
			})
		}
	}
}

// heldBytes is the heap that n values made by mk hold, each: a first
// value made before counting fills the pools mk uses, which values do not
// hold between messages.
func heldBytes(n int, mk func() any) float64 {
	keep := make([]any, n)
	runtime.KeepAlive(mk())
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := range keep {
		keep[i] = mk()
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(keep)
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n)
}

// BenchmarkMemoryHeld reports the heap each compressor or decompressor
// holds once it has handled a 1 KiB message, as a connection holds it
// between messages.
func BenchmarkMemoryHeld(b *testing.B) {
	msg := jsonMessage(rand.New(rand.NewPCG(1, 1)), 1024)
	z, _ := NewCompressor(Params{}, false, &Options{MinSize: -1}).Compress(nil, msg)
	whole := append(append(append([]byte(nil), z...), tail[:]...), 1, 0, 0, 0xff, 0xff)
	use := func(w interface {
		io.Writer
		Flush() error
	}) {
		w.Write(msg)
		w.Flush()
	}
	cases := []struct {
		name string
		mk   func() any
	}{
		{"compressor/pollws-no-takeover", func() any {
			c, _ := pair(false, 15)
			c.Compress(nil, msg)
			return c
		}},
		{"compressor/pollws-takeover", func() any {
			c, _ := pair(true, 15)
			c.Compress(nil, msg)
			return c
		}},
		{"compressor/pollws-takeover-window-10", func() any {
			c, _ := pair(true, 10)
			c.Compress(nil, msg)
			return c
		}},
		{"compressor/klauspost-level-1", func() any {
			w, _ := kpflate.NewWriter(io.Discard, 1)
			use(w)
			return w
		}},
		{"compressor/stdlib-level-1", func() any {
			w, _ := stdflate.NewWriter(io.Discard, 1)
			use(w)
			return w
		}},
		{"decompressor/pollws-no-takeover", func() any {
			_, d := pair(false, 15)
			inflateMessage(d, [][]byte{z}, 2048)
			return d
		}},
		{"decompressor/pollws-takeover", func() any {
			_, d := pair(true, 15)
			inflateMessage(d, [][]byte{z}, 2048)
			return d
		}},
		{"decompressor/klauspost", func() any {
			r := kpflate.NewReader(bytes.NewReader(whole))
			io.Copy(io.Discard, r)
			return r
		}},
		{"decompressor/stdlib", func() any {
			r := stdflate.NewReader(bytes.NewReader(whole))
			io.Copy(io.Discard, r)
			return r
		}},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			var held float64
			for b.Loop() {
				held = heldBytes(16, tc.mk)
			}
			b.ReportMetric(held, "B/held")
		})
	}
}
