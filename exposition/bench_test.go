package exposition

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/libratod/libratod/aggregator"
	"github.com/libratod/libratod/flusher"
	"github.com/libratod/libratod/librato"
)

// benchSeries is the number of series of the benchmarks.
const benchSeries = 100_000

// benchSnapshot returns a period of n series: names of 100 series each,
// told apart by two tags; 70% of the names are counters, 10% gauges, 15%
// timers of 10 values and 5% sets of 3 members.
func benchSnapshot(b *testing.B, n int) *aggregator.Snapshot {
	b.Helper()
	var lines []string
	for i := range n {
		name, tags := i/100, fmt.Sprintf("|#route:/api/v%d,status:%d", i%100, 200+i%7)
		switch r := name % 20; {
		case r < 14:
			lines = append(lines, fmt.Sprintf("app.requests.%d:1|c%s", name, tags))
		case r < 16:
			lines = append(lines, fmt.Sprintf("app.queue.%d:%d|g%s", name, i, tags))
		case r < 19:
			for v := range 10 {
				lines = append(lines, fmt.Sprintf("app.latency.%d:%d|ms%s", name, v*13, tags))
			}
		default:
			for m := range 3 {
				lines = append(lines, fmt.Sprintf("app.users.%d:u%d|s%s", name, m, tags))
			}
		}
	}
	return snapshot(b, aggregator.Config{}, lines...)
}

// BenchmarkObservePeriod measures one period of 100k known series (the
// steady state), as summaries and as histograms.
func BenchmarkObservePeriod(b *testing.B) {
	snap := benchSnapshot(b, benchSeries)
	for _, tt := range []struct {
		name string
		cfg  Config
	}{
		{"summary", Config{Percentiles: []float64{90, 95, 99}, Labels: map[string]string{"env": "prod"}}},
		{"histogram", Config{Histogram: true, Labels: map[string]string{"env": "prod"}}},
	} {
		b.Run(tt.name, func(b *testing.B) {
			s := New(tt.cfg)
			s.ObservePeriod(t0, snap)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				s.ObservePeriod(t0, snap)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchSeries, "ns/series")
		})
	}
}

// BenchmarkObservePeriodNew measures a period of 100k series never seen
// before: each is created.
func BenchmarkObservePeriodNew(b *testing.B) {
	snap := benchSnapshot(b, benchSeries)
	b.ReportAllocs()
	for b.Loop() {
		s := New(Config{Percentiles: []float64{90, 95, 99}})
		s.ObservePeriod(t0, snap)
	}
}

// BenchmarkScrape measures writing 100k series.
func BenchmarkScrape(b *testing.B) {
	snap := benchSnapshot(b, benchSeries)
	s := New(Config{Percentiles: []float64{90, 95, 99}, Labels: map[string]string{"env": "prod"}})
	s.ObservePeriod(t0, snap)
	req := httptest.NewRequest("GET", "/metrics", nil)
	b.ReportAllocs()
	for b.Loop() {
		s.ServeHTTP(discard{httptest.NewRecorder()}, req)
	}
}

// discard is a ResponseWriter whose body goes nowhere.
type discard struct{ *httptest.ResponseRecorder }

func (discard) Write(p []byte) (int, error) { return io.Discard.Write(p) }

// sameSnapshot is a flusher.Source that hands out one snapshot again and
// again.
type sameSnapshot struct{ snap *aggregator.Snapshot }

func (s sameSnapshot) Snapshot() *aggregator.Snapshot { return s.snap }

// BenchmarkFlush measures a whole flush of 100k series, the Librato path
// (measurements, batches, JSON encoding, with a dry-run client), without
// and with the Store as an Observer: the difference is what the
// exposition adds to each period.
func BenchmarkFlush(b *testing.B) {
	snap := benchSnapshot(b, benchSeries)
	client, err := librato.New(librato.Config{API: librato.Tagged, URL: "https://metrics-api.librato.com", DryRun: io.Discard})
	if err != nil {
		b.Fatal(err)
	}
	for _, tt := range []struct {
		name      string
		observers []flusher.Observer
	}{
		{"librato", nil},
		{"librato+prometheus", []flusher.Observer{New(Config{Percentiles: []float64{90, 95, 99}})}},
	} {
		b.Run(tt.name, func(b *testing.B) {
			f := flusher.New(flusher.Config{
				Period: 10 * time.Second, Percentiles: []float64{90, 95, 99}, API: librato.Tagged,
				Observers: tt.observers, Logger: zerolog.Nop(),
			}, sameSnapshot{snap}, client)
			f.Flush(context.Background(), t0)
			b.ReportAllocs()
			for b.Loop() {
				f.Flush(context.Background(), t0)
			}
		})
	}
}
