package pool

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestGetLengthAndClass(t *testing.T) {
	for _, n := range []int{1, 2, 3, 63, 64, 65, 4095, 4096, 4097, 1 << 20} {
		p := Get(n)
		if len(*p) != n {
			t.Errorf("Get(%d): len %d", n, len(*p))
		}
		if c := cap(*p); c < n || c&(c-1) != 0 || c >= 2*n && n > 1 {
			t.Errorf("Get(%d): cap %d, want the power of two that rounds %d up", n, c, n)
		}
		(*p)[n-1] = 1
		Put(p)
	}
}

func TestPutForeignSliceIsDropped(t *testing.T) {
	b := make([]byte, 100)
	Put(&b) // capacity 100 is no size class: dropped, not pooled
	for range 10 {
		if p := Get(100); cap(*p) != 128 {
			t.Fatalf("Get(100) cap %d after a foreign Put, want 128", cap(*p))
		}
	}
}

func TestReuseDoesNotAllocate(t *testing.T) {
	Put(Get(4096))
	allocs := testing.AllocsPerRun(100, func() { Put(Get(3000)) })
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under -race")
	}
	if allocs != 0 {
		t.Fatalf("Get and Put of a warm class: %v allocations, want 0", allocs)
	}
}
