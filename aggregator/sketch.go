package aggregator

import "math"

// A sketch holds a timer's values once there are more than
// Config.MaxTimerSamples of them. It is a DDSketch-style histogram
// (Masson, Rim and Lee, VLDB 2019): a positive value v is counted in bucket
// i = ceil(log_γ v), which holds (γ^(i-1), γ^i], with γ = (1+α)/(1-α).
// Every value of bucket i is estimated by 2γ^i/(γ+1), which is within α of
// it relatively: |estimate - v| <= α·|v|. Negative values are counted by
// their absolute value in a second store and zeros in a count of their own.
//
// Each store keeps at most sketchMaxBuckets contiguous buckets. Past that,
// the lowest buckets are merged into the lowest kept one, so values more
// than γ^sketchMaxBuckets (about 5.9e17, 17.8 decades) below the largest of
// their sign are over-estimated in absolute value: a positive one is
// reported as the smallest value that still has its own bucket, a negative
// one comes out too far from zero (too low). Values within that span keep
// the ±α bound.
//
// Counts are unweighted (a sample rate does not change them), as for the
// exact percentiles.
const (
	// sketchAlpha is the relative accuracy α of every value estimate.
	sketchAlpha = 0.01
	// sketchGamma is γ, the ratio between the bounds of a bucket.
	sketchGamma = (1 + sketchAlpha) / (1 - sketchAlpha)
	// sketchLnGamma is ln γ and sketchLnOneMinusAlpha ln(1-α) (a test
	// checks them against math.Log).
	sketchLnGamma         = 0.020000666706669435052
	sketchLnOneMinusAlpha = -0.010050335853501450589
	// sketchMaxBuckets bounds the buckets of each store: at most 16 KiB
	// of counts a store.
	sketchMaxBuckets = 2048
	// sketchMinBuckets is the size of a store's first allocation.
	sketchMinBuckets = 64
	// sketchMaxIndex bounds bucket indexes; every finite float64 has
	// |index| < 37,300, and the bound keeps NaN and infinities harmless.
	sketchMaxIndex = 1 << 16
)

type sketch struct {
	pos, neg store // positive values, and negative ones by absolute value
	zero     uint64
}

// add counts v.
func (k *sketch) add(v float64) {
	switch {
	case v > 0:
		k.pos.add(sketchIndex(v))
	case v < 0:
		k.neg.add(sketchIndex(-v))
	default: // zero, and NaN, which the parser never produces
		k.zero++
	}
}

// count returns the number of values counted.
func (k *sketch) count() uint64 { return k.pos.n + k.neg.n + k.zero }

// lowest returns estimates of the sum and sum of squares of the k lowest
// values and of the k-th lowest value, for 1 <= k <= count.
func (k *sketch) lowest(n uint64) (sum, sumSquares, kth float64) {
	acc := lowestAcc{left: n}
	for i := len(k.neg.counts) - 1; i >= 0 && acc.left > 0; i-- {
		acc.take(-sketchValue(k.neg.offset+i), k.neg.counts[i])
	}
	if acc.left > 0 {
		acc.take(0, k.zero)
	}
	for i := 0; i < len(k.pos.counts) && acc.left > 0; i++ {
		acc.take(sketchValue(k.pos.offset+i), k.pos.counts[i])
	}
	return acc.sum, acc.sumSquares, acc.kth
}

// lowestAcc accumulates buckets in increasing order of value until left
// values have been taken.
type lowestAcc struct {
	left            uint64
	sum, sumSquares float64
	kth             float64
}

func (a *lowestAcc) take(v float64, count uint64) {
	if count == 0 {
		return
	}
	c := min(count, a.left)
	a.sum += float64(c) * v
	a.sumSquares += float64(c) * v * v
	a.left -= c
	if a.left == 0 {
		a.kth = v
	}
}

// sketchIndex returns the bucket of v > 0.
func sketchIndex(v float64) int {
	var f float64
	if v < 0x1p-1022 {
		// On amd64 math.Log returns about -709 for every subnormal
		// number (golang/go#56600): scale them first.
		f = (math.Log(v*0x1p54) - 54*math.Ln2) / sketchLnGamma
	} else {
		f = math.Log(v) / sketchLnGamma
	}
	if !(f > -sketchMaxIndex) { // also NaN
		return -sketchMaxIndex
	}
	if f > sketchMaxIndex {
		return sketchMaxIndex
	}
	return int(math.Ceil(f))
}

// sketchValue returns the estimate of every value of bucket i,
// 2γ^i/(γ+1) = (1-α)γ^i, at most math.MaxFloat64.
func sketchValue(i int) float64 {
	return min(math.Exp(float64(i)*sketchLnGamma+sketchLnOneMinusAlpha), math.MaxFloat64)
}

// A store counts values by bucket: counts[j] is the count of bucket
// offset+j. It covers at most sketchMaxBuckets buckets.
type store struct {
	counts []uint64
	offset int
	lo, hi int // the lowest and highest non-empty buckets, when n > 0
	n      uint64
}

func (s *store) add(i int) {
	if i < s.offset || i >= s.offset+len(s.counts) {
		i = s.extend(i)
	}
	s.counts[i-s.offset]++
	if s.n == 0 {
		s.lo, s.hi = i, i
	} else {
		s.lo, s.hi = min(s.lo, i), max(s.hi, i)
	}
	s.n++
}

// extend makes room for bucket i and returns the bucket to count it in: i,
// or the lowest bucket when covering i would take too many buckets.
func (s *store) extend(i int) int {
	if s.n == 0 {
		size := max(len(s.counts), sketchMinBuckets)
		s.move(i-size/2, size)
		return i
	}
	lo, hi := min(s.lo, i), max(s.hi, i)
	if span := hi - lo + 1; span <= sketchMaxBuckets {
		size := min(sketchMaxBuckets, max(2*span, len(s.counts)))
		off := lo // room above, for a store growing upwards
		if i < s.lo {
			off = hi - size + 1 // room below
		}
		s.move(off, size)
		return i
	}
	// Collapse: keep the top sketchMaxBuckets buckets, count the lower
	// ones in the lowest kept bucket.
	off := hi - sketchMaxBuckets + 1
	s.move(off, sketchMaxBuckets)
	s.lo = max(s.lo, off)
	return max(i, off)
}

// move makes the store cover buckets [off, off+size), which must include
// s.hi. Counts of buckets below off are added to bucket off. The counts
// are moved in place when the size does not change: a full store slides
// without allocating.
func (s *store) move(off, size int) {
	old, shift := s.counts, off-s.offset
	if s.n == 0 {
		if len(old) != size {
			s.counts = make([]uint64, size)
		}
		s.offset = off
		return
	}
	if len(old) != size {
		s.counts = make([]uint64, size)
		var below uint64
		for j, c := range old {
			switch k := j - shift; {
			case k < 0:
				below += c
			case k < size:
				s.counts[k] = c
			}
		}
		s.counts[0] += below
		s.offset = off
		return
	}
	switch {
	case shift > 0: // slide down, merging the buckets that fall off
		var below uint64
		for _, c := range old[:min(shift, len(old))] {
			below += c
		}
		if shift < len(old) {
			copy(old, old[shift:])
			clear(old[len(old)-shift:])
		} else {
			clear(old)
		}
		old[0] += below
	case shift < 0: // slide up; the buckets that fall off are empty
		if -shift < len(old) {
			copy(old[-shift:], old)
			clear(old[:-shift])
		} else {
			clear(old)
		}
	}
	s.offset = off
}
