package ring

import (
	"bytes"
	"testing"
)

func FuzzRing(f *testing.F) {
	f.Add(7, []byte{3, 200, 5, 1, 9, 0, 4})
	f.Fuzz(func(t *testing.T, capacity int, ops []byte) {
		if capacity < 0 || capacity > 1<<12 {
			return
		}
		r := New(make([]byte, capacity))
		var model bytes.Buffer
		next := byte(0)
		for i, op := range ops {
			if i%2 == 0 {
				p := make([]byte, int(op))
				for j := range p {
					p[j] = next
					next++
				}
				n := r.Write(p)
				want := min(len(p), capacity-model.Len())
				if n != want {
					t.Fatalf("Write(%d) = %d, want %d", len(p), n, want)
				}
				model.Write(p[:n])
				next -= byte(len(p) - n)
			} else {
				a, b := r.Peek()
				if got := append(append([]byte{}, a...), b...); !bytes.Equal(got, model.Bytes()) {
					t.Fatalf("Peek = %v, want %v", got, model.Bytes())
				}
				if len(a) == 0 && len(b) != 0 {
					t.Fatal("Peek: second slice without first")
				}
				n := min(int(op), model.Len())
				r.Discard(n)
				model.Next(n)
			}
			if r.Len() != model.Len() || r.Free() != capacity-model.Len() {
				t.Fatalf("Len/Free = %d/%d, want %d/%d", r.Len(), r.Free(), model.Len(), capacity-model.Len())
			}
		}
	})
}

func TestDiscardPanicsPastLen(t *testing.T) {
	r := New(make([]byte, 4))
	r.Write([]byte("ab"))
	defer func() {
		if recover() == nil {
			t.Fatal("Discard(3) of 2 pending bytes did not panic")
		}
	}()
	r.Discard(3)
}

func TestReadDrains(t *testing.T) {
	r := New(make([]byte, 4))
	r.Write([]byte("abc"))
	r.Discard(2)
	r.Write([]byte("def")) // wraps
	p := make([]byte, 8)
	if n := r.Read(p); string(p[:n]) != "cdef" {
		t.Fatalf("Read = %q, want %q", p[:n], "cdef")
	}
	if r.Len() != 0 {
		t.Fatalf("Len after Read = %d, want 0", r.Len())
	}
}
