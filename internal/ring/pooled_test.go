package ring

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

func peekString(r *Pooled) string {
	a, b := r.Peek()
	return string(a) + string(b)
}

func TestPooledHoldsStorageOnlyWhilePending(t *testing.T) {
	r := NewPooled(8)
	if r.Held() {
		t.Fatal("new Ring holds storage")
	}
	if n := r.Write(nil); n != 0 || r.Held() {
		t.Fatalf("Write(nil) = %d, Held %v; want 0, false", n, r.Held())
	}
	if n := r.Write([]byte("abc")); n != 3 || !r.Held() {
		t.Fatalf("Write(abc) = %d, Held %v; want 3, true", n, r.Held())
	}
	r.Discard(2)
	if !r.Held() {
		t.Fatal("Ring with 1 pending byte released its storage")
	}
	r.Discard(1)
	if r.Held() {
		t.Fatal("drained Ring still holds storage")
	}
	r.Write([]byte("x"))
	r.Reset()
	if r.Held() || r.Len() != 0 || r.Free() != 8 {
		t.Fatalf("after Reset: Held %v, Len %d, Free %d; want false, 0, 8", r.Held(), r.Len(), r.Free())
	}
}

func TestPooledWriteAndPeek(t *testing.T) {
	// Each step writes w, then discards d; the ring has capacity 5.
	tests := []struct {
		w    string
		d    int
		n    int    // bytes Write took
		a, b string // Peek before the discard
		len  int    // Len after the discard
	}{
		{w: "abc", d: 2, n: 3, a: "abc", len: 1},
		{w: "defgh", d: 0, n: 4, a: "cde", b: "fg", len: 5},
		{w: "z", d: 5, n: 0, a: "cde", b: "fg", len: 0},
		{w: "12345", d: 3, n: 5, a: "12345", len: 2},
		{w: "678", d: 1, n: 3, a: "45", b: "678", len: 4},
	}
	r := NewPooled(5)
	for i, tt := range tests {
		if n := r.Write([]byte(tt.w)); n != tt.n {
			t.Fatalf("step %d: Write(%q) = %d, want %d", i, tt.w, n, tt.n)
		}
		a, b := r.Peek()
		if string(a) != tt.a || string(b) != tt.b {
			t.Fatalf("step %d: Peek = %q, %q; want %q, %q", i, a, b, tt.a, tt.b)
		}
		r.Discard(tt.d)
		if r.Len() != tt.len || r.Free() != 5-tt.len || r.Cap() != 5 {
			t.Fatalf("step %d: Len/Free/Cap = %d/%d/%d, want %d/%d/5", i, r.Len(), r.Free(), r.Cap(), tt.len, 5-tt.len)
		}
	}
}

func TestPooledPanics(t *testing.T) {
	tests := []struct {
		name string
		f    func()
		want string
	}{
		{"NewPooled(0)", func() { NewPooled(0) }, "capacity 0"},
		{"Discard past Len", func() { r := NewPooled(4); r.Write([]byte("ab")); r.Discard(3) }, "Discard(3)"},
		{"Discard negative", func() { NewPooled(4).Discard(-1) }, "Discard(-1)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				got := fmt.Sprint(recover())
				if !strings.Contains(got, tt.want) {
					t.Fatalf("panic %q, want one that mentions %q", got, tt.want)
				}
			}()
			tt.f()
		})
	}
}

func TestPooledSteadyPathDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	r := NewPooled(4096)
	p := make([]byte, 1000)
	allocs := testing.AllocsPerRun(100, func() {
		r.Write(p)
		r.Write(p)
		a, b := r.Peek()
		r.Discard(len(a) + len(b))
	})
	if allocs != 0 {
		t.Fatalf("write/peek/discard: %v allocs per run, want 0", allocs)
	}
}

func FuzzPooled(f *testing.F) {
	f.Add(uint16(7), []byte{0, 3, 1, 2, 0, 9, 1, 200, 2, 0, 0, 7})
	f.Add(uint16(1), []byte{0, 1, 0, 1, 1, 1})
	f.Add(uint16(300), []byte{0, 255, 0, 255, 1, 100, 0, 255, 1, 255})
	f.Fuzz(func(t *testing.T, size uint16, ops []byte) {
		capacity := int(size%4096) + 1
		r := NewPooled(capacity)
		var model bytes.Buffer
		next := byte(0)
		for len(ops) >= 2 {
			op, arg := ops[0]%3, int(ops[1])
			ops = ops[2:]
			switch op {
			case 0: // write arg bytes (a multiple of 7, for size)
				p := make([]byte, arg*7%(2*capacity+1))
				for i := range p {
					p[i] = next + byte(i)
				}
				n := r.Write(p)
				if want := min(len(p), capacity-model.Len()); n != want {
					t.Fatalf("Write of %d bytes with %d free took %d, want %d", len(p), capacity-model.Len(), n, want)
				}
				model.Write(p[:n])
				next += byte(n)
			case 1: // peek, then discard up to arg bytes
				if got := peekString(r); got != model.String() {
					t.Fatalf("Peek = %q, want %q", got, model.String())
				}
				if a, b := r.Peek(); len(a) == 0 && len(b) != 0 {
					t.Fatal("Peek: second slice without a first")
				}
				n := min(arg*13%(capacity+1), model.Len())
				r.Discard(n)
				model.Next(n)
			case 2:
				if arg%8 == 0 {
					r.Reset()
					model.Reset()
				}
			}
			if r.Len() != model.Len() || r.Free() != capacity-model.Len() || r.Cap() != capacity {
				t.Fatalf("Len/Free/Cap = %d/%d/%d, want %d/%d/%d", r.Len(), r.Free(), r.Cap(), model.Len(), capacity-model.Len(), capacity)
			}
			if r.Held() != (model.Len() > 0) {
				t.Fatalf("Held = %v with %d bytes pending", r.Held(), model.Len())
			}
		}
		if got := peekString(r); got != model.String() {
			t.Fatalf("Peek = %q, want %q", got, model.String())
		}
	})
}

// BenchmarkPooled measures a writer's buffer: copy in, peek, discard. In
// "drain" every op empties the ring, so its storage goes back to the pool
// and comes out again; in "held" a byte stays pending and the storage
// stays held.
func BenchmarkPooled(b *testing.B) {
	for _, size := range []int{128, 1 << 10, 16 << 10} {
		b.Run(fmt.Sprintf("drain/%dB", size), func(b *testing.B) {
			r := NewPooled(64 << 10)
			p := make([]byte, size)
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				r.Write(p)
				x, y := r.Peek()
				r.Discard(len(x) + len(y))
			}
		})
		b.Run(fmt.Sprintf("held/%dB", size), func(b *testing.B) {
			r := NewPooled(64 << 10)
			p := make([]byte, size)
			r.Write(p[:1])
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				r.Write(p)
				x, y := r.Peek()
				r.Discard(min(len(x)+len(y), size))
			}
		})
	}
}

// TestPooledWriteAllIsWritesInTurn: WriteAll of a head and a body leaves
// the ring as Writes of each piece in turn would, at every offset of the
// pending bytes (wrapped or not) and for pieces that fill it or overflow
// it; it takes storage only for bytes.
func TestPooledWriteAllIsWritesInTurn(t *testing.T) {
	pieces := []struct {
		head string
		body []string
	}{
		{"", nil},
		{"", []string{"", ""}},
		{"h", nil},
		{"hd", []string{"abc"}},
		{"", []string{"ab", "", "cd"}},
		{"hh", []string{"abcdefgh", "ij"}}, // more than fits
	}
	for pre := 0; pre < 8; pre++ {
		for skip := 0; skip <= pre; skip++ {
			for _, p := range pieces {
				a, b := NewPooled(8), NewPooled(8)
				for _, r := range []*Pooled{a, b} {
					r.Write([]byte(strings.Repeat("x", pre)))
					r.Discard(skip)
				}
				var body [][]byte
				for _, s := range p.body {
					body = append(body, []byte(s))
				}
				n := a.WriteAll([]byte(p.head), body)
				want := b.Write([]byte(p.head))
				for _, s := range body {
					want += b.Write(s)
				}
				if n != want || peekString(a) != peekString(b) || a.Held() != b.Held() {
					t.Fatalf("%d pending after %d discarded, WriteAll(%q, %q) = %d, %q, held %v; Writes: %d, %q, held %v",
						pre, skip, p.head, p.body, n, peekString(a), a.Held(), want, peekString(b), b.Held())
				}
			}
		}
	}
}
