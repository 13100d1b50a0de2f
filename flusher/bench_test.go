package flusher

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/libratod/libratod/aggregator"
	"github.com/libratod/libratod/librato"
	"github.com/libratod/libratod/otlp"
	"github.com/libratod/libratod/parser"
)

// BenchmarkFlush measures one flush of many counter series with two tags
// each, to Librato (JSON encoding included: a dry-run client writing to
// io.Discard), to OTLP (protobuf encoding included, to a sender that takes
// every request), or to both at once:
// the time from the end of a period to its last request; alloc-B/series,
// the bytes the flush allocates in all (most is garbage within a batch);
// and peak-heap-B/series, the heap the flush needs on top of the series:
// the most the heap's objects (live or not yet collected) grew over their
// size before it, sampled every millisecond while it runs.
func BenchmarkFlush(b *testing.B) {
	for _, out := range []string{"librato", "otlp", "both"} {
		for _, n := range []int{10_000, 1_000_000} {
			b.Run(fmt.Sprintf("%s/%d", out, n), func(b *testing.B) { benchmarkFlush(b, out, n) })
		}
	}
}

// discardOTLP takes every OTLP request.
type discardOTLP struct{}

func (discardOTLP) Send(context.Context, []byte) (otlp.Result, error) {
	return otlp.Result{StatusCode: 200}, nil
}

func benchmarkFlush(b *testing.B, out string, n int) {
	{
		{
			if n > 100_000 && testing.Short() {
				b.Skip("large")
			}
			client, err := librato.New(librato.Config{API: librato.Tagged, URL: "https://metrics-api.librato.com", DryRun: io.Discard})
			if err != nil {
				b.Fatal(err)
			}
			a := aggregator.New(aggregator.Config{})
			cfg := Config{API: librato.Tagged, Period: 10 * time.Second, Tags: []librato.Tag{{Name: "host", Value: "h"}}}
			outputs := 1
			switch out {
			case "otlp":
				cfg.LibratoOff = true
				fallthrough
			case "both":
				cfg.OTLP = &OTLPConfig{OTLPMapping: OTLPMapping{Temporality: otlp.Delta, BatchSize: 1000}, Sender: discardOTLP{}}
				if out == "both" {
					outputs = 2
				}
			}
			f := New(cfg, a, client)
			w := a.NewWriter()
			names := make([][]byte, n)
			for i := range names {
				names[i] = fmt.Appendf(nil, "app.requests.%d", i)
			}
			fill := func() {
				for i := range names {
					m := parser.Metric{Name: names[i], Tags: []byte("env:prod,region:eu"), Type: parser.Counter, Value: 1, Rate: 1}
					_ = w.Add(&m)
				}
			}
			var peak, peakHeap uint64
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				fill()
				runtime.GC()
				var before runtime.MemStats
				runtime.ReadMemStats(&before)
				heap := startHeapSampler()
				b.StartTimer()
				res := f.Flush(context.Background(), t0)
				b.StopTimer()
				peakHeap = max(peakHeap, heap())
				var after runtime.MemStats
				runtime.ReadMemStats(&after)
				if res.Sent != n*outputs {
					b.Fatalf("sent %d of %d", res.Sent, n*outputs)
				}
				if d := after.TotalAlloc - before.TotalAlloc; d > peak {
					peak = d
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(peak)/float64(n), "alloc-B/series")
			b.ReportMetric(float64(peakHeap)/float64(n), "peak-heap-B/series")
		}
	}
}

// startHeapSampler reads the bytes of heap objects now and every
// millisecond until the function it returns is called, which stops it and
// returns the most they grew over the first reading.
func startHeapSampler() (stop func() uint64) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 {
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	base := read()
	done, result := make(chan struct{}), make(chan uint64)
	go func() {
		top := base
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				result <- max(top, read()) - base
				return
			case <-tick.C:
				top = max(top, read())
			}
		}
	}()
	return func() uint64 {
		close(done)
		return <-result
	}
}
