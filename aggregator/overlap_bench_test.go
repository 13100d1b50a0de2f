package aggregator

import (
	"runtime"
	"runtime/debug"
	"testing"
)

// BenchmarkFlushOverlap is the two-generation case of issue 18: a period
// of 1M counter series (the load tool's names) is flushed while the next
// period fills with the same names, the flush keeping pace with the fill
// (a flush as long as a period). It reports peak-heap-B/series: the most
// heap in use after a GC, at 16 points of the flush, less the heap before
// the first period, over 1M. "each" reads the snapshot with Each, as the
// flusher did (the whole snapshot alive until the flush ends: two
// periods at the end, before series outlived the period); "drain" with
// Drain (see Snapshot.Share) and the default Config.ReleaseParts
// (released part by part as read), "drain1" with 1 part (released whole
// at the end).
func BenchmarkFlushOverlap(b *testing.B) {
	const n = 1_000_000
	ms := loadCounters(n)
	for _, mode := range []string{"each", "drain1", "drain"} {
		b.Run(mode, func(b *testing.B) {
			var peak float64
			for b.Loop() {
				var st runtime.MemStats
				debug.FreeOSMemory()
				runtime.ReadMemStats(&st)
				base := st.HeapInuse
				a := New(Config{ReleaseParts: map[string]int{"drain1": 1}[mode]})
				w := a.NewWriter()
				for i := range ms {
					if err := w.Add(&ms[i]); err != nil {
						b.Fatal(err)
					}
				}
				snap := a.Snapshot()
				read := snap.Each
				if mode != "each" {
					snap.Share(1)
					read = snap.Drain
				}
				var most uint64
				seen, next := 0, 0
				read(func(*Series) {
					if seen++; seen%(n/16) != 0 {
						return
					}
					for ; next < seen; next++ { // the next period
						if err := w.Add(&ms[next]); err != nil {
							b.Fatal(err)
						}
					}
					runtime.GC()
					runtime.ReadMemStats(&st)
					most = max(most, st.HeapInuse)
				})
				if seen != n {
					b.Fatalf("walked %d series, want %d", seen, n)
				}
				peak = (float64(most) - float64(base)) / n
				runtime.KeepAlive(snap)
				runtime.KeepAlive(a)
			}
			b.ReportMetric(peak, "peak-heap-B/series")
		})
	}
}
