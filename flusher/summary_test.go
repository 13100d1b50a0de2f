package flusher

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/libratod/libratod/aggregator"
	"github.com/libratod/libratod/librato"
)

// flushed feeds lines to a fresh aggregator and returns the measurements
// one flush sends, by name.
func flushed(t *testing.T, cfg Config, lines ...string) map[string]librato.Measurement {
	t.Helper()
	a := aggregator.New(aggregator.Config{})
	feed(t, a, lines...)
	s := &fakeSender{}
	New(cfg, a, s).Flush(context.Background(), t0)
	out := make(map[string]librato.Measurement)
	for _, m := range s.all() {
		out[m.Name] = m
	}
	return out
}

// TestSampledTimerSummary checks the summary of sampled timers: an integer
// count, with sum and sum of squares scaled to it, so that the mean stays
// the weighted mean and the standard deviation the weighted one.
func TestSampledTimerSummary(t *testing.T) {
	tests := map[string]struct {
		lines []string
		want  librato.Measurement
	}{
		"one sampled value": {
			lines: []string{"t:100|ms|@0.3"},
			want:  librato.Measurement{Count: 3, Sum: 300, Min: 100, Max: 100, SumSquares: 30000},
		},
		"two sampled values": {
			lines: []string{"t:1|ms|@0.3", "t:2|ms|@0.3"},
			want:  librato.Measurement{Count: 7, Sum: 10.5, Min: 1, Max: 2, SumSquares: 7 * 2.5, StdDev: 0.5},
		},
		"large close values": {
			lines: []string{"t:1000000000|ms", "t:1000000001|ms"},
			want:  librato.Measurement{Count: 2, Sum: 2000000001, Min: 1e9, Max: 1e9 + 1, SumSquares: 2 * (0.25 + (1e9+0.5)*(1e9+0.5)), StdDev: 0.5},
		},
		"weight below one half is one value": {
			lines: []string{"t:5|ms|@0.9", "t:5|ms|@1"},
			want:  librato.Measurement{Count: 2, Sum: 10, Min: 5, Max: 5, SumSquares: 50},
		},
		"never a count of zero": {
			lines: []string{},
			want:  librato.Measurement{},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, ok := flushed(t, Config{API: librato.Tagged}, tc.lines...)["t"]
			if len(tc.lines) == 0 {
				if ok {
					t.Fatalf("a timer without values was sent: %+v", got)
				}
				return
			}
			w := tc.want
			if got.Count != w.Count || got.Sum != w.Sum || got.Min != w.Min || got.Max != w.Max ||
				math.Abs(got.SumSquares-w.SumSquares) > 1e-12*w.SumSquares ||
				math.Abs(got.StdDev-w.StdDev) > 1e-12 || !got.HasStdDev {
				t.Errorf("got count %d sum %v min %v max %v sumsq %v stddev %v (%v)\nwant count %d sum %v min %v max %v sumsq %v stddev %v",
					got.Count, got.Sum, got.Min, got.Max, got.SumSquares, got.StdDev, got.HasStdDev,
					w.Count, w.Sum, w.Min, w.Max, w.SumSquares, w.StdDev)
			}
		})
	}
}

// TestSummariesConsistent sends timers of random values at random rates
// and checks every summary, main and percentile: a count of at least 1,
// min <= sum/count <= max, and a sum of squares that gives back the
// standard deviation sent.
func TestSummariesConsistent(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	rates := []string{"", "|@0.3", "|@0.1", "|@0.7", "|@0.999", "|@0.01"}
	for i := range 200 {
		n := 1 + rng.IntN(6)
		var lines []string
		base := []float64{0, 1e-3, 1, 1e6, 1e9, -1e9}[rng.IntN(6)]
		for range n {
			v := base + math.Round(rng.NormFloat64()*1000)/100
			lines = append(lines, fmt.Sprintf("t:%v|ms%s", v, rates[rng.IntN(len(rates))]))
		}
		ms := flushed(t, Config{API: librato.Tagged, Percentiles: []float64{10, 50, 90, 100}}, lines...)
		if len(ms) == 0 {
			t.Fatalf("%d: nothing sent for %q", i, lines)
		}
		for _, m := range ms {
			mean := m.Sum / float64(m.Count)
			// Within the bounds but for the last bits of the division.
			top := math.Max(math.Abs(m.Min), math.Abs(m.Max))
			ulps := 4 * (math.Nextafter(top, math.Inf(1)) - top)
			if m.Count < 1 || mean < m.Min-ulps || mean > m.Max+ulps || !m.HasStdDev || m.StdDev < 0 {
				t.Fatalf("%d: %s: count %d sum %v (mean %v) min %v max %v stddev %v, for %q",
					i, m.Name, m.Count, m.Sum, mean, m.Min, m.Max, m.StdDev, lines)
			}
			if m.Max-m.Min < 1e3 && math.Abs(m.Min) < 1e3 { // no cancellation to fear
				sd := math.Sqrt(math.Max(0, m.SumSquares/float64(m.Count)-mean*mean))
				if math.Abs(sd-m.StdDev) > 1e-6*(1+m.StdDev) {
					t.Fatalf("%d: %s: stddev from sum_squares %v, sent %v, for %q", i, m.Name, sd, m.StdDev, lines)
				}
			}
		}
	}
}
