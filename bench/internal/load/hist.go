package load

import (
	"math"
	"math/bits"
	"time"
)

const (
	histSubBits = 6
	histSub     = 1 << histSubBits
	histMaxBits = 40 // 2^40 ns is about 18 minutes
	histBuckets = 2*histSub + (histMaxBits-histSubBits-1)*histSub
)

// Histogram counts durations in buckets of about 1.5 % relative width
// (exact below 128 ns), up to about 18 minutes; recording allocates
// nothing. A Histogram is used by one goroutine at a time; join them with
// [Histogram.Merge].
type Histogram struct {
	counts [histBuckets]uint64
	n      uint64
}

// Record counts one duration of d nanoseconds; a negative one counts as 0.
func (h *Histogram) Record(d int64) {
	h.counts[histBucket(d)]++
	h.n++
}

// Count is how many durations were recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Merge adds o's counts to h's.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
}

// Quantile returns the duration below which a fraction q of those
// recorded fall (the middle of its bucket), or 0 when none were.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		if seen += c; seen >= rank {
			lo, width := histBounds(i)
			return time.Duration(lo + width/2)
		}
	}
	panic("unreachable: counts sum to n")
}

func histBucket(d int64) int {
	if d < 2*histSub {
		return int(max(d, 0))
	}
	v := min(uint64(d), 1<<histMaxBits-1)
	shift := bits.Len64(v) - histSubBits - 1 // v>>shift is in [histSub, 2*histSub)
	return 2*histSub + (shift-1)*histSub + int(v>>shift) - histSub
}

// histBounds returns the lowest value of bucket i and its width.
func histBounds(i int) (lo, width int64) {
	if i < 2*histSub {
		return int64(i), 1
	}
	shift := (i-2*histSub)/histSub + 1
	m := int64((i-2*histSub)%histSub + histSub)
	return m << shift, 1 << shift
}
