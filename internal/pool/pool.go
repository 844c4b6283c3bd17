// Package pool holds byte slices by power-of-two size class, so that
// buffers of any size are reused by every buffer that rounds up to the
// same class: the pool behind pollws's write rings, read buffers and
// message buffers. (A buf.Channel pools its frames with their storage
// attached, in classes of the same sizes, so a frame costs one Get.)
package pool

import (
	"math/bits"
	"sync"
)

// pools[k] holds *[]byte of length 1<<k. They hold pointers, so Put does
// not allocate.
var pools [bits.UintSize]sync.Pool

// Class returns the size class of n: the smallest k with 1<<k >= n, for
// n >= 1.
func Class(n int) int { return bits.Len(uint(n - 1)) }

// Get returns a slice of length exactly n (n >= 1) whose capacity is its
// size class, 1<<Class(n).
func Get(n int) *[]byte {
	k := Class(n)
	if p, ok := pools[k].Get().(*[]byte); ok {
		*p = (*p)[:n]
		return p
	}
	b := make([]byte, n, 1<<k)
	return &b
}

// Put gives back a slice taken with Get. Its length may have changed; its
// capacity must not have.
func Put(p *[]byte) {
	c := cap(*p)
	if c == 0 || c&(c-1) != 0 {
		return // not from Get: let it go
	}
	*p = (*p)[:c]
	pools[Class(c)].Put(p)
}
