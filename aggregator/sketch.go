package aggregator

import "math"

// A sketch holds a timer's values once there are more than
// Config.MaxTimerSamples of them. It is a DDSketch-style histogram
// (Masson, Rim and Lee, VLDB 2019): a positive value v is counted in bucket
// i = ceil(log_γ v), which holds (γ^(i-1), γ^i], with γ = 2^(1/64), the
// base of OTLP's exponential histograms at scale 6: bucket i is OTLP's
// bucket i-1 (see SketchScale and Series.EachBucket). Every value of
// bucket i is estimated by 2γ^i/(γ+1), which is within α = (γ-1)/(γ+1)
// (0.54%) of it relatively: |estimate - v| <= α·|v|. Negative values are
// counted by their absolute value in a second store and zeros in a count
// of their own.
//
// Each store keeps at most sketchMaxBuckets contiguous buckets. Past that,
// the lowest buckets are merged into the lowest kept one, so values more
// than γ^sketchMaxBuckets (2^32, about 4.3e9, 9.6 decades) below the
// largest of their sign are over-estimated in absolute value: a positive
// one is reported as the smallest value that still has its own bucket, a
// negative one comes out too far from zero (too low). Values within that
// span keep the ±α bound.
//
// Counts are unweighted (a sample rate does not change them), as for the
// exact percentiles.
const (
	// sketchGamma is γ = 2^(1/64), the ratio between the bounds of a
	// bucket.
	sketchGamma = 1.010889286051700460020409790561860524388
	// sketchAlpha is the relative accuracy α = (γ-1)/(γ+1) of every
	// value estimate.
	sketchAlpha = (sketchGamma - 1) / (sketchGamma + 1)
	// sketchLnGamma is ln γ and sketchLnOneMinusAlpha ln(1-α) (a test
	// checks them against math.Log).
	sketchLnGamma         = math.Ln2 / (1 << SketchScale)
	sketchLnOneMinusAlpha = -0.00542987453885212741833664060607817553705
	// sketchIndexFactor is 1/ln γ: ln v times it is log_γ v.
	sketchIndexFactor = math.Log2E * (1 << SketchScale)
	// sketchMaxBuckets bounds the buckets of each store: at most 16 KiB
	// of counts a store, 32 octaves.
	sketchMaxBuckets = 2048
	// sketchMinBuckets is the size of a store's first allocation.
	sketchMinBuckets = 64
	// sketchMaxIndex bounds bucket indexes; every finite float64 has
	// |index| <= 1074·64 = 68,736, and the bound keeps NaN and
	// infinities harmless.
	sketchMaxIndex = 1 << 17
)

// SketchScale is the scale, in OTLP's terms, of the buckets in which a
// timer past Config.MaxTimerSamples counts its values: a bucket holds the
// magnitudes in (2^(i/2^SketchScale), 2^((i+1)/2^SketchScale)] for some
// index i (see Series.EachBucket).
const SketchScale = 6

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

// sketchIndex returns the bucket of v > 0: ceil(log_γ v). It is computed
// as OTLP's reference mapping computes its index (otlp.BucketIndex), plus
// one: a power of two is exact (it is a bucket's upper bound), elsewhere
// the logarithm may put a value within about 1e-15 relative of a bound in
// the neighbouring bucket. Subnormal numbers are scaled first: on amd64
// math.Log returns about -709 for every one of them (golang/go#56600).
func sketchIndex(v float64) int {
	frac, exp := math.Frexp(v) // v = frac·2^exp, frac in [0.5, 1)
	var f float64
	switch {
	case frac == 0.5: // v = 2^(exp-1)
		f = float64((exp - 1) << SketchScale)
	case v < 0x1p-1022:
		f = math.Ceil((math.Log(v*0x1p54) - 54*math.Ln2) * sketchIndexFactor)
	default:
		f = math.Ceil(math.Log(v) * sketchIndexFactor)
	}
	if !(f > -sketchMaxIndex) { // also NaN
		return -sketchMaxIndex
	}
	if f > sketchMaxIndex {
		return sketchMaxIndex
	}
	return int(f)
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
