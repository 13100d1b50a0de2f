package aggregator

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"strconv"
	"testing"
)

// hllSE is the HyperLogLog's relative standard error, 1.04/sqrt(2^14).
var hllSE = 1.04 / math.Sqrt(hllRegisters)

// TestHLLEstimate checks the estimator over the whole range, small counts
// and the 2.5m-5m region where the classic estimator is biased included,
// with uniform 64-bit hashes from fixed seeds: every estimate within 3
// standard errors, and no systematic bias across seeds.
func TestHLLEstimate(t *testing.T) {
	for _, n := range []int{0, 1, 10, 100, 1000, 10_000, 30_000, 50_000, 80_000, 200_000, 1_000_000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			const seeds = 6
			var meanErr float64
			for seed := range uint64(seeds) {
				rng := rand.New(rand.NewPCG(seed, uint64(n)))
				h := new(hll)
				for range n {
					x := rng.Uint64()
					h.add(x)
					h.add(x) // duplicates change nothing
				}
				est := h.estimate()
				if n == 0 {
					if est != 0 {
						t.Fatalf("empty estimate = %v", est)
					}
					return
				}
				rel := (est - float64(n)) / float64(n)
				if math.Abs(rel) > 3*hllSE {
					t.Errorf("seed %d: estimate %.0f, relative error %.4f > 3 SE (%.4f)", seed, est, rel, 3*hllSE)
				}
				meanErr += rel / seeds
			}
			if math.Abs(meanErr) > 3*hllSE/math.Sqrt(seeds) {
				t.Errorf("mean relative error %.4f over %d seeds: biased", meanErr, seeds)
			}
		})
	}
}

func TestHLLRank(t *testing.T) {
	tests := []struct {
		x    uint64
		i    int
		rank uint8
	}{
		{x: 0, i: 0, rank: hllMaxRank},
		{x: 1, i: 0, rank: hllMaxRank - 1},
		{x: 1 << (63 - hllPrecision), i: 0, rank: 1},
		{x: 1 << (62 - hllPrecision), i: 0, rank: 2},
		{x: math.MaxUint64, i: hllRegisters - 1, rank: 1},
		{x: 3 << 62, i: 3 << (hllPrecision - 2), rank: hllMaxRank},
	}
	for _, tc := range tests {
		var h hll
		h.add(tc.x)
		if h[tc.i] != tc.rank {
			t.Errorf("add(%#x): register %d = %d, want %d", tc.x, tc.i, h[tc.i], tc.rank)
		}
	}
}

// TestSetBound checks a set series through the aggregator: exact up to
// MaxSetMembers, estimated past it with memory bounded.
func TestSetBound(t *testing.T) {
	const bound = 1000
	tests := []struct {
		distinct  int
		exact     bool
		tolerance float64 // relative
	}{
		{distinct: 1, exact: true},
		{distinct: bound, exact: true},
		{distinct: bound + 1, exact: false, tolerance: 3 * hllSE},
		// The member hashes come from a random maphash seed: 4 standard
		// errors keep a false failure below 1e-4 (TestHLLEstimate checks 3
		// with fixed hashes).
		{distinct: 1_000_000, exact: false, tolerance: 4 * hllSE},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.distinct), func(t *testing.T) {
			a := New(Config{MaxSetMembers: bound})
			w := a.NewWriter()
			var before runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			var buf []byte
			for rep := range 2 { // every member twice
				for i := range tc.distinct {
					buf = strconv.AppendInt(append(buf[:0], "user-"...), int64(i), 10)
					m := set("s", "")
					m.Member = buf
					if err := w.Add(&m); err != nil {
						t.Fatal(err)
					}
				}
				if rep == 0 && tc.distinct > bound && a.Live() != 1 {
					t.Fatalf("Live = %d", a.Live())
				}
			}
			var after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&after)
			s := only(t, a.Snapshot())
			got := s.Cardinality()
			if s.CardinalityExact() != tc.exact {
				t.Fatalf("CardinalityExact = %v, want %v", s.CardinalityExact(), tc.exact)
			}
			if tc.exact {
				if got != tc.distinct {
					t.Fatalf("Cardinality = %d, want exactly %d", got, tc.distinct)
				}
				return
			}
			if rel := math.Abs(float64(got-tc.distinct)) / float64(tc.distinct); rel > tc.tolerance {
				t.Errorf("Cardinality = %d, want %d ± %.2f%%", got, tc.distinct, 100*tc.tolerance)
			}
			if s.x.members != nil {
				t.Errorf("the exact members (%d) are still kept", len(s.x.members))
			}
			// The exact map of a million members takes over 20 MB.
			if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 1<<20 {
				t.Errorf("live heap grew by %d bytes, want well under 1 MiB", grown)
			}
		})
	}
}

func BenchmarkHLLAdd(b *testing.B) {
	h := new(hll)
	x := uint64(0x9E3779B97F4A7C15)
	b.ReportAllocs()
	for b.Loop() {
		x = x*6364136223846793005 + 1442695040888963407
		h.add(x)
	}
}

func BenchmarkHLLEstimate(b *testing.B) {
	h := new(hll)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 100_000 {
		h.add(rng.Uint64())
	}
	b.ReportAllocs()
	for b.Loop() {
		h.estimate()
	}
}
