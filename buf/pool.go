package buf

import (
	"math/bits"
	"sync"
)

// Storage is pooled by size class: class k holds buffers of 1<<k bytes, so
// a buffer of any size is reused by every buffer that rounds up to it.
// Pools hold pointers, so Put does not allocate.
var bytePools [bits.UintSize]sync.Pool

// sizeClass returns the smallest k with 1<<k >= n, for n >= 1.
func sizeClass(n int) int { return bits.Len(uint(n - 1)) }

// getBytes returns storage of at least n bytes (n >= 1).
func getBytes(n int) *[]byte {
	k := sizeClass(n)
	if p, ok := bytePools[k].Get().(*[]byte); ok {
		return p
	}
	b := make([]byte, 1<<k)
	return &b
}

// putBytes returns storage taken with getBytes.
func putBytes(p *[]byte) {
	bytePools[sizeClass(len(*p))].Put(p)
}
