package otlp

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
)

// HistogramScale is the scale of the buckets HistogramBuilder counts values
// in: base 2^(1/64), so a bucket is 1.09% wide and its midpoint is within
// 0.54% of every value in it.
const HistogramScale = 6

// MaxHistogramBuckets is the most buckets of each sign a histogram gets.
// Values spread over more than 2^64 (at scale 6: 4096 buckets of 2^(1/64))
// lower the scale by one per doubling of that spread (see HistogramBuilder).
const MaxHistogramBuckets = 4096

// maxCount is the largest weighted count a histogram takes (2^53: beyond it
// a float64 count has no integer precision).
const maxCount = 1 << 53

// scaleFactor is log2(e) * 2^HistogramScale: ln(v) times it is the index.
const scaleFactor = math.Log2E * (1 << HistogramScale)

// BucketIndex returns the index at HistogramScale of the bucket of the
// magnitude |v| > 0: the i with |v| in (base^i, base^(i+1)], base =
// 2^(2^-HistogramScale). Powers of two are exact (they are bucket upper
// bounds); elsewhere the logarithm may put a value within about 1e-15
// relative of a boundary in the neighbouring bucket, as the OTLP
// reference mapping does. v must be finite and non-zero.
func BucketIndex(v float64) int32 {
	v = math.Abs(v)
	frac, exp := math.Frexp(v) // v = frac * 2^exp, frac in [0.5, 1)
	if frac == 0.5 {
		// v = 2^(exp-1), the upper bound of bucket ((exp-1) << scale) - 1.
		return int32((exp-1)<<HistogramScale) - 1
	}
	if v < 0x1p-1022 {
		// A subnormal: math.Log is not exact enough for them on every
		// platform; scale into the normal range first.
		return int32(math.Ceil((math.Log(v*0x1p54)-54*math.Ln2)*scaleFactor)) - 1
	}
	return int32(math.Ceil(math.Log(v)*scaleFactor)) - 1
}

// entry is one counted bucket of a HistogramBuilder.
type entry struct {
	index int32
	neg   bool
	count uint64
}

// HistogramBuilder counts values in exponential buckets at HistogramScale
// and appends the histogram to a Batch. Its zero value is ready; it keeps
// its memory across Reset, so one builder serves any number of histograms
// without allocating in steady state. It is not safe for concurrent use.
//
// When the values of one sign need more than MaxHistogramBuckets buckets,
// the histogram is downscaled (neighbouring buckets merged) by the fewest
// steps that make both signs fit: at scale s a bucket's midpoint is within
// (2^(2^-s)-1)/(2^(2^-s)+1) of each value in it, 0.54% at scale 6, 1.08% at
// 5, 2.17% at 4. Scale 6 holds values within a factor 2^64 of each other.
type HistogramBuilder struct {
	entries []entry
	zero    uint64
	total   uint64 // zero plus every entry's count
	added   uint64 // values given to Add
	min     float64
	max     float64
	err     error

	rem   []uint64 // scratch of Append: remainders of the scaled counts
	order []int32  // scratch of Append: bucket positions by remainder
}

// Reset forgets the counted values, keeping the memory.
func (h *HistogramBuilder) Reset() {
	h.entries = h.entries[:0]
	h.zero, h.total, h.added = 0, 0, 0
	h.min, h.max = math.Inf(1), math.Inf(-1)
	h.err = nil
}

// Add counts each value once (unweighted) and tracks their minimum and
// maximum. A NaN or infinite value is not counted and makes Append fail.
func (h *HistogramBuilder) Add(values ...float64) {
	for _, v := range values {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			if h.err == nil {
				h.err = fmt.Errorf("otlp: histogram value %v is not finite", v)
			}
			continue
		}
		if h.added == 0 {
			h.min, h.max = v, v
		}
		h.min = math.Min(h.min, v)
		h.max = math.Max(h.max, v)
		h.added++
		h.total++
		if v == 0 {
			h.zero++
			continue
		}
		h.entries = append(h.entries, entry{index: BucketIndex(v), neg: v < 0, count: 1})
	}
}

// AddBucket counts count values already counted in the bucket of the given
// index at HistogramScale (see BucketIndex), negative values' bucket when
// negative is set. Min and max are not tracked for them: Append takes them
// from the caller when it has them.
func (h *HistogramBuilder) AddBucket(index int32, negative bool, count uint64) {
	if count == 0 || !h.count(count) {
		return
	}
	h.entries = append(h.entries, entry{index: index, neg: negative, count: count})
}

// AddZero counts count zero values already counted.
func (h *HistogramBuilder) AddZero(count uint64) {
	if h.count(count) {
		h.zero += count
	}
}

// count adds n to the total; false, and an error for Append, when the total
// would exceed 2^63 (the scaling of counts needs room).
func (h *HistogramBuilder) count(n uint64) bool {
	if n > 1<<63 || h.total > 1<<63-n {
		if h.err == nil {
			h.err = errors.New("otlp: histogram count overflows")
		}
		return false
	}
	h.total += n
	return true
}

// Min returns the smallest value given to Add since the last Reset; NaN if
// none.
func (h *HistogramBuilder) Min() float64 {
	if h.added == 0 {
		return math.NaN()
	}
	return h.min
}

// Max returns the largest value given to Add since the last Reset; NaN if
// none.
func (h *HistogramBuilder) Max() float64 {
	if h.added == 0 {
		return math.NaN()
	}
	return h.max
}

// ErrEmptyHistogram is returned by Append for a histogram with no value.
var ErrEmptyHistogram = errors.New("otlp: histogram has no values")

// Append appends to b a KindExponentialHistogram point for p (its Kind and
// Index are set here) holding the counted values. count is the weighted
// number of values they stand for (a StatsD sample rate of 0.1 makes each
// value count 10 times); the count sent is round(count), at least 1, and
// every bucket count is scaled by it over the number of values counted,
// rounded by largest remainder so that the buckets add up exactly to the
// count sent (ties to the lower bucket). sum is the weighted sum; min and
// max are the extremes of the values (Min and Max after Add). Append fails,
// leaving b as it was, when nothing was counted, a value or sum, min or max
// is not finite, or count is not in [0, 2^53].
func (h *HistogramBuilder) Append(b *Batch, p Point, count, sum, minV, maxV float64) error {
	switch {
	case h.err != nil:
		return h.err
	case h.total == 0:
		return ErrEmptyHistogram
	case !(count >= 0 && count <= maxCount):
		return fmt.Errorf("otlp: histogram count %v out of range", count)
	case !finite(sum) || !finite(minV) || !finite(maxV):
		return fmt.Errorf("otlp: histogram sum %v, min %v or max %v not finite", sum, minV, maxV)
	}
	target := max(uint64(math.Round(count)), 1)

	// The fewest downscaling steps that fit each sign in MaxHistogramBuckets.
	var lo, hi [2]int32
	var seen [2]bool
	for _, e := range h.entries {
		s := sign(e.neg)
		if !seen[s] {
			lo[s], hi[s], seen[s] = e.index, e.index, true
			continue
		}
		lo[s], hi[s] = min(lo[s], e.index), max(hi[s], e.index)
	}
	shift := 0
	for s := range 2 {
		// In 64 bits: AddBucket takes any index.
		for seen[s] && int64(hi[s]>>shift)-int64(lo[s]>>shift) >= MaxHistogramBuckets {
			shift++
		}
	}

	hist := ExponentialHistogram{
		Count:     target,
		Sum:       sum,
		Min:       minV,
		Max:       maxV,
		Scale:     HistogramScale - int32(shift),
		ZeroCount: h.zero,
	}
	start := len(b.Counts)
	for s := range 2 {
		bk := &hist.Positive
		if s == 1 {
			bk = &hist.Negative
		}
		if !seen[s] {
			bk.Counts.Off = uint32(len(b.Counts))
			continue
		}
		n := int((hi[s] >> shift) - (lo[s] >> shift) + 1)
		bk.Offset = lo[s] >> shift
		bk.Counts = Span{Off: uint32(len(b.Counts)), Len: uint32(n)}
		b.Counts = slices.Grow(b.Counts, n)[:len(b.Counts)+n]
		clear(b.Counts[bk.Counts.Off:])
	}
	for _, e := range h.entries {
		bk := &hist.Positive
		if e.neg {
			bk = &hist.Negative
		}
		b.Counts[int(bk.Counts.Off)+int((e.index>>shift)-bk.Offset)] += e.count
	}
	if target != h.total {
		hist.ZeroCount = h.scale(b.Counts[start:], h.zero, target)
	}
	p.Kind = KindExponentialHistogram
	p.Index = uint32(len(b.Histograms))
	b.Histograms = append(b.Histograms, hist)
	b.Points = append(b.Points, p)
	return nil
}

// scale scales the counts of the buckets (counts, then the zero bucket, of
// h.total values in all) to add up to target, by largest remainder, in
// place. It returns the scaled zero count.
func (h *HistogramBuilder) scale(counts []uint64, zero, target uint64) uint64 {
	n := len(counts) + 1 // the zero bucket is last
	h.rem = slices.Grow(h.rem[:0], n)[:n]
	h.order = h.order[:0]
	var sum uint64
	at := func(i int) *uint64 {
		if i == len(counts) {
			return &zero
		}
		return &counts[i]
	}
	for i := range n {
		c := at(i)
		// c * target / total, exactly: c <= total, so the quotient fits.
		hi, lo := bits.Mul64(*c, target)
		q, r := bits.Div64(hi, lo, h.total)
		*c = q
		sum += q
		h.rem[i] = r
		if r > 0 {
			h.order = append(h.order, int32(i))
		}
	}
	// sum <= target and target - sum < the number of remainders.
	slices.SortFunc(h.order, func(a, b int32) int {
		ra, rb := h.rem[a], h.rem[b]
		switch {
		case ra > rb:
			return -1
		case ra < rb:
			return 1
		}
		return int(a - b)
	})
	d := int(min(target-sum, uint64(len(h.order)))) // the first bound holds
	for _, i := range h.order[:d] {
		*at(int(i))++
	}
	return zero
}

// finite reports whether v is neither NaN nor infinite.
func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// sign returns 1 for negative values' buckets, 0 for positive ones'.
func sign(neg bool) int {
	if neg {
		return 1
	}
	return 0
}
