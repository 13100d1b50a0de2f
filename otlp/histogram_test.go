package otlp

import (
	"math"
	"math/rand/v2"
	"testing"

	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
)

// decodedHist encodes b and returns the data points of its only metric, an
// exponential histogram, as the upstream decoder reads them.
func decodedHist(t *testing.T, b *Batch) []*metricspb.ExponentialHistogramDataPoint {
	t.Helper()
	md, refused := encodeBoth(t, b)
	if len(refused) != 0 {
		t.Fatalf("refused %v", refused)
	}
	return md.ResourceMetrics[0].ScopeMetrics[0].Metrics[0].GetExponentialHistogram().DataPoints
}

// bucketSum returns the zero count plus every bucket count.
func bucketSum(p *metricspb.ExponentialHistogramDataPoint) uint64 {
	n := p.ZeroCount
	for _, c := range p.GetPositive().GetBucketCounts() {
		n += c
	}
	for _, c := range p.GetNegative().GetBucketCounts() {
		n += c
	}
	return n
}

// bounds returns the bounds (lower, upper] of the bucket of v in the decoded
// point: the bucket whose count covers it, found by counting through the
// buckets of v's sign in the order of the sorted values.
func bounds(scale, index int32) (float64, float64) {
	lo := math.Exp2(math.Ldexp(float64(index), -int(scale)))
	hi := math.Exp2(math.Ldexp(float64(index+1), -int(scale)))
	return lo, hi
}

// checkValuesInBuckets checks, for a histogram of the unweighted values,
// that each bucket holds exactly the values within its bounds (relative
// slack 1e-12 for the bounds' own rounding) and that each value is within
// maxErr of its bucket's midpoint, relative.
func checkValuesInBuckets(t *testing.T, p *metricspb.ExponentialHistogramDataPoint, values []float64, maxErr float64) {
	t.Helper()
	const slack = 1e-12
	zeros := uint64(0)
	for _, v := range values {
		if v == 0 {
			zeros++
		}
	}
	if p.ZeroCount != zeros {
		t.Errorf("zero count %d, want %d", p.ZeroCount, zeros)
	}
	for _, side := range []struct {
		bk  *metricspb.ExponentialHistogramDataPoint_Buckets
		neg bool
	}{{p.GetPositive(), false}, {p.GetNegative(), true}} {
		var inBuckets uint64
		for i, c := range side.bk.GetBucketCounts() {
			lo, hi := bounds(p.Scale, side.bk.GetOffset()+int32(i))
			var n uint64
			for _, v := range values {
				if v == 0 || (v < 0) != side.neg {
					continue
				}
				m := math.Abs(v)
				if m > lo*(1+slack) && m <= hi*(1-slack) {
					n++
				}
				if m > lo*(1+slack) && m <= hi*(1-slack) || m > lo*(1-slack) && m <= hi*(1+slack) && c > 0 {
					if mid := (lo + hi) / 2; math.Abs(mid-m)/m > maxErr {
						t.Errorf("value %v in bucket (%v, %v]: midpoint off by %.4f%%", v, lo, hi, 100*math.Abs(mid-m)/m)
					}
				}
			}
			if n > c {
				t.Errorf("bucket %d (%v, %v] holds %d, but %d values lie well inside it", side.bk.GetOffset()+int32(i), lo, hi, c, n)
			}
			inBuckets += c
		}
		var want uint64
		for _, v := range values {
			if v != 0 && (v < 0) == side.neg {
				want++
			}
		}
		if inBuckets != want {
			t.Errorf("negative=%t: buckets hold %d, want %d", side.neg, inBuckets, want)
		}
	}
	// Every value in the bucket BucketIndex gives must be inside its bounds.
	for _, v := range values {
		if v == 0 {
			continue
		}
		i := BucketIndex(v) >> (HistogramScale - p.Scale)
		lo, hi := bounds(p.Scale, i)
		if m := math.Abs(v); !(m > lo*(1-slack) && m <= hi*(1+slack)) {
			t.Errorf("value %v: bucket %d at scale %d is (%v, %v]", v, i, p.Scale, lo, hi)
		}
	}
}

func TestBucketIndexBoundaries(t *testing.T) {
	tests := []struct {
		v    float64
		want int32
	}{
		{1, -1},
		{2, 63},
		{0.5, -65},
		{math.Nextafter(1, 2), 0},
		{math.Nextafter(2, 0), 63},
		{math.Nextafter(2, 4), 64},
		{math.Exp2(1.0 / 64 * 1.0000001), 1},
		{-4, 127},
		{math.MaxFloat64, 1024*64 - 1},
		{math.SmallestNonzeroFloat64, -1074*64 - 1},
		{0x1p-1022, -1022*64 - 1},
	}
	for _, tt := range tests {
		if got := BucketIndex(tt.v); got != tt.want {
			t.Errorf("BucketIndex(%v) = %d, want %d", tt.v, got, tt.want)
		}
	}
}

func TestHistogramValues(t *testing.T) {
	tests := []struct {
		name   string
		values []float64
		scale  int32
	}{
		{"one value", []float64{42}, 6},
		{"powers of two", []float64{0.25, 0.5, 1, 2, 4, 1024}, 6},
		{"zeros and negatives", []float64{0, 0, -1, -2.5, -1e-9, 3, 0, 1e9}, 6},
		{"only zeros", []float64{0, 0, 0}, 6},
		{"only negatives", []float64{-3, -3, -300}, 6},
		{"spread 2^63", []float64{1, 0x1p63}, 6},
		{"spread 2^64.1 downscales once", []float64{1, 0x1p64 * 1.1}, 5},
		{"spread 1e-30..1e30", []float64{1e-30, 1, -1e30, 1e30}, 4},
		{"signs scale alone", []float64{1e300, -1e-300}, 6},
		{"one sign spread", []float64{-1e300, -1e-300, 1}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := testBatch()
			var h HistogramBuilder
			h.Reset()
			h.Add(tt.values...)
			sum := 0.0
			for _, v := range tt.values {
				sum += v
			}
			if !finite(sum) {
				sum = 0
			}
			if err := h.Append(b, Point{Name: "h", Time: t1}, float64(len(tt.values)), sum, h.Min(), h.Max()); err != nil {
				t.Fatal(err)
			}
			p := decodedHist(t, b)[0]
			if p.Scale != tt.scale {
				t.Errorf("scale %d, want %d", p.Scale, tt.scale)
			}
			if n := len(p.GetPositive().GetBucketCounts()); n > MaxHistogramBuckets {
				t.Errorf("%d positive buckets", n)
			}
			if n := len(p.GetNegative().GetBucketCounts()); n > MaxHistogramBuckets {
				t.Errorf("%d negative buckets", n)
			}
			if p.Count != uint64(len(tt.values)) || bucketSum(p) != p.Count {
				t.Errorf("count %d, buckets %d, want %d", p.Count, bucketSum(p), len(tt.values))
			}
			lo, hi := tt.values[0], tt.values[0]
			for _, v := range tt.values {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
			if p.GetMin() != lo || p.GetMax() != hi || p.GetSum() != sum {
				t.Errorf("min %v max %v sum %v, want %v %v %v", p.GetMin(), p.GetMax(), p.GetSum(), lo, hi, sum)
			}
			base := math.Exp2(math.Ldexp(1, -int(p.Scale)))
			checkValuesInBuckets(t, p, tt.values, (base-1)/(base+1)*(1+1e-9))
		})
	}
}

// TestHistogramWeightedProperty checks over random values and weights that
// the buckets add up exactly to the weighted count, that each bucket is its
// unweighted count scaled, rounded down or up, and that at scale 6 every
// value is within 1% of its bucket's midpoint.
func TestHistogramWeightedProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var h HistogramBuilder
	b := testBatch()
	for iter := range 300 {
		n := 1 + rng.IntN(200)
		values := make([]float64, n)
		for i := range values {
			switch rng.IntN(6) {
			case 0:
				values[i] = 0
			case 1:
				values[i] = -math.Exp(rng.NormFloat64() * 5)
			default:
				values[i] = math.Exp(rng.NormFloat64() * 5)
			}
		}
		weight := []float64{1, 0.5, 0.1, 0.01, 1 / 3.0, 7.3, 100}[rng.IntN(7)]
		count := float64(n) / weight
		if rng.IntN(10) == 0 {
			count = rng.Float64() // below 1: still at least 1 sent
		}
		h.Reset()
		h.Add(values...)
		b.Reset()
		if err := h.Append(b, Point{Name: "h", Time: t1}, count, 1, h.Min(), h.Max()); err != nil {
			t.Fatal(err)
		}
		p := decodedHist(t, b)[0]
		want := max(uint64(math.Round(count)), 1)
		if p.Count != want || bucketSum(p) != want {
			t.Fatalf("iter %d: count %v: sent %d, buckets add to %d, want %d", iter, count, p.Count, bucketSum(p), want)
		}
		// Unweighted counts, by bucket, from the values themselves.
		raw := map[[2]int32]uint64{}
		for _, v := range values {
			if v == 0 {
				raw[[2]int32{2, 0}]++
				continue
			}
			s := int32(0)
			if v < 0 {
				s = 1
			}
			raw[[2]int32{s, BucketIndex(v)}]++
		}
		check := func(key [2]int32, got uint64) {
			exact := float64(raw[key]) * float64(want) / float64(n)
			if math.Abs(float64(got)-exact) >= 1 {
				t.Fatalf("iter %d: bucket %v holds %d, scaled count %v", iter, key, got, exact)
			}
		}
		check([2]int32{2, 0}, p.ZeroCount)
		for i, c := range p.GetPositive().GetBucketCounts() {
			check([2]int32{0, p.GetPositive().GetOffset() + int32(i)}, c)
		}
		for i, c := range p.GetNegative().GetBucketCounts() {
			check([2]int32{1, p.GetNegative().GetOffset() + int32(i)}, c)
		}
		if weight == 1 && count == float64(n) {
			checkValuesInBuckets(t, p, values, 0.01)
		}
	}
}

func TestHistogramAddBucket(t *testing.T) {
	values := []float64{0, 1.5, 1.5, 3, -7, 1e6}
	var h HistogramBuilder
	b := testBatch()
	h.Reset()
	h.Add(values...)
	if err := h.Append(b, Point{Name: "h", Time: t1}, 12, 10, -7, 1e6); err != nil {
		t.Fatal(err)
	}
	h.Reset()
	h.AddZero(1)
	h.AddBucket(BucketIndex(1.5), false, 2)
	h.AddBucket(BucketIndex(3), false, 1)
	h.AddBucket(BucketIndex(-7), true, 1)
	h.AddBucket(BucketIndex(1e6), false, 1)
	h.AddBucket(5, false, 0) // nothing
	if err := h.Append(b, Point{Name: "h", Time: t1}, 12, 10, -7, 1e6); err != nil {
		t.Fatal(err)
	}
	ps := decodedHist(t, b)
	if d := diff(ps[0], ps[1]); d != "" {
		t.Errorf("from values (want) and from buckets (got):\n%s", d)
	}
	if ps[0].Count != 12 || bucketSum(ps[0]) != 12 {
		t.Errorf("count %d, buckets %d, want 12", ps[0].Count, bucketSum(ps[0]))
	}
}

func TestHistogramAppendErrors(t *testing.T) {
	var h HistogramBuilder
	b := testBatch()
	h.Reset()
	if err := h.Append(b, Point{Name: "h"}, 1, 0, 0, 0); err == nil {
		t.Error("empty histogram appended")
	}
	h.Add(1, math.NaN())
	if err := h.Append(b, Point{Name: "h"}, 2, 1, 1, 1); err == nil {
		t.Error("histogram with NaN appended")
	}
	h.Reset()
	h.Add(1)
	for _, c := range [][4]float64{
		{-1, 1, 1, 1}, {math.NaN(), 1, 1, 1}, {math.Inf(1), 1, 1, 1}, {1 << 54, 1, 1, 1},
		{1, math.NaN(), 1, 1}, {1, 1, math.Inf(-1), 1}, {1, 1, 1, math.Inf(1)},
	} {
		if err := h.Append(b, Point{Name: "h"}, c[0], c[1], c[2], c[3]); err == nil {
			t.Errorf("count, sum, min, max %v appended", c)
		}
	}
	if len(b.Points)+len(b.Histograms)+len(b.Counts) != 0 {
		t.Errorf("failed appends changed the batch: %d points", len(b.Points))
	}
	if !math.IsNaN(new(HistogramBuilder).Min()) || !math.IsNaN(new(HistogramBuilder).Max()) {
		t.Error("Min or Max of no values is not NaN")
	}
}

func TestHistogramBuilderAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under -race; scripts/test runs this without it")
	}
	values := make([]float64, 500)
	for i := range values {
		values[i] = float64(i*i) - 1000
	}
	var h HistogramBuilder
	b := testBatch()
	run := func() {
		b.Reset()
		for range 10 {
			h.Reset()
			h.Add(values...)
			if err := h.Append(b, Point{Name: "h"}, 1234.5, 1, h.Min(), h.Max()); err != nil {
				t.Fatal(err)
			}
		}
	}
	run()
	if n := testing.AllocsPerRun(20, run); n != 0 {
		t.Errorf("%v allocations", n)
	}
}

// TestHistogramExtremeBuckets gives AddBucket the extreme indices and
// counts: no panic, at most MaxHistogramBuckets buckets, counts kept.
func TestHistogramExtremeBuckets(t *testing.T) {
	var h HistogramBuilder
	b := testBatch()
	h.Reset()
	h.AddBucket(math.MinInt32, false, 1)
	h.AddBucket(math.MaxInt32, false, 2)
	h.AddBucket(math.MaxInt32, true, 3)
	if err := h.Append(b, Point{Name: "h", Time: t1}, 6, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	p := decodedHist(t, b)[0]
	if n := len(p.GetPositive().GetBucketCounts()); n > MaxHistogramBuckets || bucketSum(p) != 6 {
		t.Errorf("%d positive buckets, %d counted", n, bucketSum(p))
	}
	h.Reset()
	h.AddBucket(1, false, 1<<63)
	h.AddZero(1 << 63)
	if err := h.Append(b, Point{Name: "h", Time: t1}, 1, 0, 0, 0); err == nil {
		t.Error("overflowing count appended")
	}
}

// TestBucketIndexSubnormal: a subnormal value lies within the bounds of
// its bucket, (base^i, base^(i+1)], as every other value does.
func TestBucketIndexSubnormal(t *testing.T) {
	for _, v := range []float64{math.SmallestNonzeroFloat64, 3e-324, 1e-320, 1.5e-315, 2.2e-310, 0x1p-1023 * 1.7, 0x1p-1022 - 0x1p-1074} {
		i := BucketIndex(v)
		lo := math.Exp2(float64(i) / (1 << HistogramScale))
		hi := math.Exp2(float64(i+1) / (1 << HistogramScale))
		if !(lo < v && v <= hi) {
			t.Errorf("BucketIndex(%g) = %d: bounds (%g, %g] do not hold it", v, i, lo, hi)
		}
	}
}
