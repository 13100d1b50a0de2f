package aggregator

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"

	"github.com/libratod/libratod/otlp"
	"github.com/libratod/libratod/parser"
)

func TestSketchConstants(t *testing.T) {
	if got := math.Pow(2, 1.0/(1<<SketchScale)); got != sketchGamma {
		t.Errorf("sketchGamma = %v, 2^(1/64) = %v", sketchGamma, got)
	}
	if got := math.Log(2) / (1 << SketchScale); math.Abs(got-sketchLnGamma) > 1e-15*got {
		t.Errorf("sketchLnGamma = %v, ln 2 / 64 = %v", sketchLnGamma, got)
	}
	if got := math.Log1p(-sketchAlpha); math.Abs(got-sketchLnOneMinusAlpha) > -1e-14*got {
		t.Errorf("sketchLnOneMinusAlpha = %v, math.Log(1-α) = %v", sketchLnOneMinusAlpha, got)
	}
	if got := (sketchGamma - 1) / (sketchGamma + 1); math.Abs(got-0.005415159415902569) > 1e-15 {
		t.Errorf("α = %v, want 0.5415%%", got)
	}
}

// TestSketchIndexIsOTLP checks that sketch bucket i, (γ^(i-1), γ^i], is
// OTLP's bucket i-1 at scale 6, (b^(i-1), b^i]: the two index rules agree
// on powers of two (bucket bounds), their neighbours and random values over
// the whole range of normal numbers, and every value lies within its
// bucket's bounds. Subnormal numbers are only checked against the bounds:
// otlp.BucketIndex takes math.Log of them as they are, which on amd64 is
// wrong (golang/go#56600).
func TestSketchIndexIsOTLP(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	var vals []float64
	for e := -1022; e <= 1023; e++ {
		p := math.Ldexp(1, e)
		vals = append(vals, p, math.Nextafter(p, 0), math.Nextafter(p, math.Inf(1)))
	}
	for j := range 64 {
		vals = append(vals, math.Pow(sketchGamma, float64(j)))
	}
	for range 200000 {
		vals = append(vals, math.Ldexp(0.5+rng.Float64()/2, rng.IntN(2046)-1021))
	}
	vals = append(vals, 1.0101, 42.5, 1e3, math.MaxFloat64)
	for _, v := range vals {
		if v < 0x1p-1022 || math.IsInf(v, 0) {
			continue
		}
		i := sketchIndex(v)
		if want := int(otlp.BucketIndex(v)) + 1; i != want {
			t.Fatalf("sketchIndex(%v) = %d, otlp.BucketIndex+1 = %d", v, i, want)
		}
		checkInBucket(t, v, i)
	}
	for _, v := range []float64{math.SmallestNonzeroFloat64, 1e-320, 1e-310, 0x1p-1023, math.Nextafter(0x1p-1022, 0)} {
		checkInBucket(t, v, sketchIndex(v))
	}
}

// checkInBucket fails unless v is within the bounds of bucket i,
// (2^((i-1)/64), 2^(i/64)], but for rounding (1e-14 relative).
func checkInBucket(t *testing.T, v float64, i int) {
	t.Helper()
	lo := math.Exp2(float64(i-1) / (1 << SketchScale))
	hi := math.Exp2(float64(i) / (1 << SketchScale))
	if i == 1<<(SketchScale+10) { // hi is 2^1024
		hi = math.MaxFloat64
	}
	if !(v > lo*(1-1e-14) && v <= hi*(1+1e-14)) {
		t.Fatalf("%v in bucket %d, (%v, %v]", v, i, lo, hi)
	}
}

// TestSketchValueAccuracy checks the bound every estimate rests on: a
// value's bucket estimate is within α of it, relatively.
func TestSketchValueAccuracy(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	vals := []float64{math.SmallestNonzeroFloat64, 1e-300, 1e-9, 0.5, 1, 1.0101, 2, 1e3, 1e300, math.MaxFloat64}
	for range 100000 {
		vals = append(vals, math.Exp(rng.Float64()*1400-700))
	}
	worst := 0.0
	for _, v := range vals {
		est := sketchValue(sketchIndex(v))
		worst = max(worst, math.Abs(est-v)/v)
	}
	if worst > sketchAlpha*(1+1e-9) {
		t.Fatalf("worst relative error %v, want <= %v", worst, sketchAlpha)
	}
	if worst < sketchAlpha/2 {
		t.Fatalf("worst relative error %v: buckets narrower than documented", worst)
	}
}

// refLowest returns the reference Percentile of vals at p and the sums of
// the absolute values and squares of the lowest k values, the scale of the
// sketch's error bounds.
func refLowest(vals []float64, p float64) (Percentile, bool, float64) {
	want, ok := refPercentile(vals, p)
	s := slices.Clone(vals)
	sort.Float64s(s)
	var abs float64
	for _, v := range s[:want.Count] {
		abs += math.Abs(v)
	}
	return want, ok, abs
}

func TestSketchPercentiles(t *testing.T) {
	const n = 20000
	ps := []float64{0.1, 1, 10, 50, 90, 95, 99, 99.9, 99.99}
	gen := map[string]func(*rand.Rand) float64{
		"uniform":   func(r *rand.Rand) float64 { return r.Float64() * 1000 },
		"lognormal": func(r *rand.Rand) float64 { return math.Exp(r.NormFloat64()*2 + 3) },
		"negative":  func(r *rand.Rand) float64 { return -math.Exp(r.NormFloat64()*2 + 3) },
		"mixed":     func(r *rand.Rand) float64 { return r.NormFloat64() * 100 },
		"all equal": func(*rand.Rand) float64 { return 42.5 },
		"zeros":     func(*rand.Rand) float64 { return 0 },
		"zeros and positives": func(r *rand.Rand) float64 {
			if r.IntN(3) == 0 {
				return 0
			}
			return r.Float64() * 10
		},
		"integers": func(r *rand.Rand) float64 { return float64(r.IntN(50)) },
		// 9 decades: within the span of a full store (9.6).
		"wide": func(r *rand.Rand) float64 { return math.Exp(r.Float64()*20.7 - 10.35) },
	}
	for name, g := range gen {
		t.Run(name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(5, 6))
			a := New(Config{MaxTimerSamples: 1000})
			w := a.NewWriter()
			vals := make([]float64, n)
			for i := range vals {
				vals[i] = g(rng)
				m := timer("t", vals[i], 0.5)
				if err := w.Add(&m); err != nil {
					t.Fatal(err)
				}
			}
			s := only(t, a.Snapshot())
			if s.PercentilesExact() || s.Values != nil {
				t.Fatalf("PercentilesExact = %v, %d Values; want the sketch past the bound", s.PercentilesExact(), len(s.Values))
			}
			got, ok := s.Percentiles(ps, nil, nil)
			for i, p := range ps {
				want, wantOK, abs := refLowest(vals, p)
				if ok[i] != wantOK {
					t.Fatalf("p%v: ok = %v, want %v", p, ok[i], wantOK)
				}
				g := got[i]
				if g.Count != want.Count || g.Min != want.Min {
					t.Errorf("p%v: Count, Min = %d, %v; want exactly %d, %v", p, g.Count, g.Min, want.Count, want.Min)
				}
				checkRel(t, fmt.Sprintf("p%v Max", p), g.Max, want.Max, math.Abs(want.Max), sketchAlpha)
				checkRel(t, fmt.Sprintf("p%v Sum", p), g.Sum, want.Sum, abs, sketchAlpha)
				checkRel(t, fmt.Sprintf("p%v SumSquares", p), g.SumSquares, want.SumSquares, want.SumSquares,
					2*sketchAlpha+sketchAlpha*sketchAlpha)
			}
		})
	}
}

// checkRel fails unless got is within rel·scale of want (with room for
// floating-point rounding).
func checkRel(t *testing.T, what string, got, want, scale, rel float64) {
	t.Helper()
	if math.Abs(got-want) > rel*scale*(1+1e-9)+1e-12 {
		t.Errorf("%s = %v, want %v ± %v", what, got, want, rel*scale)
	}
}

func only(t *testing.T, snap *Snapshot) *Series {
	t.Helper()
	var s *Series
	n := 0
	snap.Each(func(x *Series) { s = x; n++ })
	if n != 1 {
		t.Fatalf("snapshot has %d series, want 1", n)
	}
	return s
}

// TestTimerBound checks the switch from exact values to the sketch: exact up
// to MaxTimerSamples values, estimated past it, with the streaming
// statistics identical either way.
func TestTimerBound(t *testing.T) {
	const bound = 100
	for _, n := range []int{1, bound - 1, bound, bound + 1, 10 * bound} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			bounded := New(Config{MaxTimerSamples: bound})
			exact := New(Config{MaxTimerSamples: 1 << 30})
			var ms []parser.Metric
			for i := range n {
				ms = append(ms, timer("t", float64((i*37)%101)-20, 0.25))
			}
			addAll(t, bounded, ms...)
			addAll(t, exact, ms...)
			b, e := only(t, bounded.Snapshot()), only(t, exact.Snapshot())
			if wantExact := n <= bound; b.PercentilesExact() != wantExact || (b.Values != nil) != wantExact {
				t.Fatalf("PercentilesExact = %v with %d Values, want %v", b.PercentilesExact(), len(b.Values), wantExact)
			}
			if cap(b.Values) > bound {
				t.Errorf("cap(Values) = %d, past the bound %d", cap(b.Values), bound)
			}
			if b.samples() != n {
				t.Errorf("samples = %d, want %d", b.samples(), n)
			}
			gb := [...]float64{b.Count, b.Sum, b.Min, b.Max, b.Last}
			ge := [...]float64{e.Count, e.Sum, e.Min, e.Max, e.Last}
			if gb != ge {
				t.Errorf("count, sum, min, max, last = %v, want %v", gb, ge)
			}
			// Past the bound the variance is the running one, not the
			// two-pass one: equal but for rounding.
			checkRel(t, "variance", b.Variance(), e.Variance(), e.Variance(), 1e-12)
		})
	}
}

// TestSketchBounded feeds a sketch a million values spanning 295 decades (as
// far as a million squares stay finite for the variance): each store keeps at
// most sketchMaxBuckets buckets, no value is lost, the top percentiles keep the
// ±α bound and collapsed low values are over-estimated, as documented.
func TestSketchBounded(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	a := New(Config{MaxTimerSamples: 10})
	w := a.NewWriter()
	const n = 1_000_000
	vals := make([]float64, n)
	for i := range vals {
		v := math.Exp(rng.Float64()*680 - 340)
		switch rng.IntN(10) {
		case 0:
			v = -v
		case 1:
			v = 0
		}
		vals[i] = v
		m := timer("t", v, 1)
		if err := w.Add(&m); err != nil {
			t.Fatal(err)
		}
	}
	s := only(t, a.Snapshot())
	k := s.x.sketch
	if len(k.pos.counts) > sketchMaxBuckets || len(k.neg.counts) > sketchMaxBuckets {
		t.Fatalf("buckets: %d positive, %d negative; want at most %d each", len(k.pos.counts), len(k.neg.counts), sketchMaxBuckets)
	}
	if k.count() != n {
		t.Fatalf("count = %d, want %d", k.count(), n)
	}
	got, _ := s.Percentiles([]float64{99, 99.9}, nil, nil)
	for i, p := range []float64{99, 99.9} {
		want, _ := refPercentile(vals, p)
		checkRel(t, fmt.Sprintf("p%v Max", p), got[i].Max, want.Max, want.Max, sketchAlpha)
	}
	// The median is far below the kept span: over-estimated, never under.
	got, _ = s.Percentiles([]float64{60}, nil, nil)
	want, _ := refPercentile(vals, 60)
	if want.Max <= 0 || got[0].Max < want.Max*(1-sketchAlpha) {
		t.Fatalf("p60 = %v, want a positive over-estimate of %v", got[0].Max, want.Max)
	}
}

// TestStoreAgainstReference drives a store with random walks and jumps
// (growing both ways, sliding a full store up and down, collapsing) and
// compares it, after every add, with a map that applies the documented
// rule directly: every bucket more than sketchMaxBuckets-1 below the
// highest one is counted in the lowest kept bucket.
func TestStoreAgainstReference(t *testing.T) {
	for seed := range uint64(8) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 99))
			var s store
			ref := map[int]uint64{}
			hi, i := math.MinInt, rng.IntN(2000)-1000
			for step := range 5000 {
				switch r := rng.IntN(100); {
				case r < 3:
					i += rng.IntN(6000) - 3000 // jump
				case r < 6:
					i -= rng.IntN(300) // drift down
				default:
					i += rng.IntN(41) - 20
				}
				s.add(i)
				hi = max(hi, i)
				floor := hi - sketchMaxBuckets + 1
				ref[max(i, floor)]++
				for j, c := range ref {
					if j < floor {
						ref[floor] += c
						delete(ref, j)
					}
				}
				if len(s.counts) > sketchMaxBuckets {
					t.Fatalf("step %d: %d buckets", step, len(s.counts))
				}
				got := map[int]uint64{}
				for j, c := range s.counts {
					if c > 0 {
						got[s.offset+j] = c
					}
				}
				if len(got) != len(ref) {
					t.Fatalf("step %d (add %d): %d buckets, want %d", step, i, len(got), len(ref))
				}
				for j, c := range ref {
					if got[j] != c {
						t.Fatalf("step %d (add %d): bucket %d = %d, want %d", step, i, j, got[j], c)
					}
				}
				if len(got) > 0 && (got[s.lo] == 0 || got[s.hi] == 0) {
					t.Fatalf("step %d: lo, hi = %d, %d are not both non-empty", step, s.lo, s.hi)
				}
			}
		})
	}
}

func BenchmarkSketchAdd(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	vals := make([]float64, 4096)
	for i := range vals {
		vals[i] = math.Exp(rng.NormFloat64()*2 + 3) // latencies, ms
	}
	var k sketch
	for _, v := range vals {
		k.add(v)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k.add(vals[i&(len(vals)-1)])
		i++
	}
}

// TestEachBucket checks the accessor the OTLP output builds its histograms
// from: nothing while the values are exact; past the bound, each value
// counted once in its OTLP bucket of its sign, zeros apart, in increasing
// order of index, positive buckets first.
func TestEachBucket(t *testing.T) {
	vals := []float64{0, 1, 2, 3, -3, -0.5, 0, 1e6, 1.0001, 1, -1e-9}
	type bucket struct {
		index int32
		neg   bool
	}
	run := func(bound int) (map[bucket]uint64, []bucket, uint64) {
		a := New(Config{MaxTimerSamples: bound})
		for _, v := range vals {
			addAll(t, a, timer("t", v, 0.5))
		}
		got := map[bucket]uint64{}
		var order []bucket
		zero := only(t, a.Snapshot()).EachBucket(func(i int32, neg bool, c uint64) {
			got[bucket{i, neg}] += c
			order = append(order, bucket{i, neg})
		})
		return got, order, zero
	}
	if got, _, zero := run(100); len(got) != 0 || zero != 0 {
		t.Errorf("exact values: buckets %v, zero %d; want none", got, zero)
	}
	got, order, zero := run(5)
	want := map[bucket]uint64{}
	for _, v := range vals {
		if v != 0 {
			want[bucket{otlp.BucketIndex(v), v < 0}]++
		}
	}
	if zero != 2 || !maps.Equal(got, want) {
		t.Errorf("buckets %v, zero %d; want %v, 2", got, zero, want)
	}
	if !slices.IsSortedFunc(order, func(a, b bucket) int {
		if a.neg != b.neg {
			return cmp.Compare(sign(a.neg), sign(b.neg))
		}
		return cmp.Compare(a.index, b.index)
	}) {
		t.Errorf("buckets in order %v", order)
	}
}

func sign(neg bool) int {
	if neg {
		return 1
	}
	return 0
}
