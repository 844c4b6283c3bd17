package load

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func TestHistogramBuckets(t *testing.T) {
	for _, v := range []int64{0, 1, 127, 128, 129, 255, 256, 1000, 1 << 20, 1<<40 - 1} {
		i := histBucket(v)
		lo, width := histBounds(i)
		if v < lo || v >= lo+width {
			t.Errorf("%d in bucket %d of [%d, %d)", v, i, lo, lo+width)
		}
		if v >= 128 && float64(width)/float64(lo) > 1.0/64 {
			t.Errorf("bucket %d of %d: width %d is over 1/64 of %d", i, v, width, lo)
		}
	}
	if i := histBucket(1 << 50); i != histBuckets-1 {
		t.Errorf("2^50 in bucket %d, want the last, %d", i, histBuckets-1)
	}
	if i := histBucket(-5); i != 0 {
		t.Errorf("-5 in bucket %d, want 0", i)
	}
}

func TestHistogramQuantiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var a, b Histogram
	var all []int64
	for i := range 100000 {
		v := int64(rng.ExpFloat64() * 50000) // a long tail of nanoseconds
		all = append(all, v)
		if i%2 == 0 {
			a.Record(v)
		} else {
			b.Record(v)
		}
	}
	a.Merge(&b)
	slices.Sort(all)
	for _, q := range []float64{0.01, 0.5, 0.9, 0.99, 0.999, 1} {
		want := float64(all[int(q*float64(len(all)))-1])
		got := float64(a.Quantile(q))
		if d := (got - want) / want; d > 0.01 || d < -0.01 {
			t.Errorf("quantile %v: %v, want %v within 1%%", q, got, want)
		}
	}
	var empty Histogram
	if q := empty.Quantile(0.5); q != 0 {
		t.Errorf("an empty histogram's median is %v, want 0", q)
	}
	if a.Count() != 100000 {
		t.Errorf("count %d, want 100000", a.Count())
	}
}
