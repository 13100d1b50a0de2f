package aggregator

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/libratod/libratod/parser"
)

// naive is the baseline the sharded aggregator is measured against: one
// map keyed by a string built per line, behind one mutex.
type naive struct {
	mu sync.Mutex
	m  map[string]float64
}

func (n *naive) add(m *parser.Metric) {
	tags := strings.Split(string(m.Tags), ",")
	sort.Strings(tags)
	key := string(m.Name) + "|" + strings.Join(tags, ",")
	n.mu.Lock()
	n.m[key] += m.Value / m.Rate
	n.mu.Unlock()
}

func benchMetrics(series int) []parser.Metric {
	ms := make([]parser.Metric, series)
	for i := range ms {
		ms[i] = tagged(counter(fmt.Sprintf("app.requests.%d", i), 1, 1), "", "env:prod,host:web-1")
	}
	return ms
}

// BenchmarkAdd measures adding counters to existing series from parallel
// goroutines; run with -cpu 1,2 to see the scaling.
func BenchmarkAdd(b *testing.B) {
	for _, series := range []int{1, 1000} {
		ms := benchMetrics(series)
		b.Run(fmt.Sprintf("sharded/series=%d", series), func(b *testing.B) {
			a := New(Config{})
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				w := a.NewWriter()
				i := 0
				for pb.Next() {
					_ = w.Add(&ms[i%len(ms)])
					i++
				}
			})
		})
		b.Run(fmt.Sprintf("naive/series=%d", series), func(b *testing.B) {
			n := &naive{m: make(map[string]float64)}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					n.add(&ms[i%len(ms)])
					i++
				}
			})
		})
	}
}

// BenchmarkSnapshot measures the swap and walk of a period with many series.
func BenchmarkSnapshot(b *testing.B) {
	ms := benchMetrics(100000)
	a := New(Config{})
	w := a.NewWriter()
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		for i := range ms {
			_ = w.Add(&ms[i])
		}
		b.StartTimer()
		n := 0
		a.Snapshot().Each(func(*Series) { n++ })
		if n != len(ms) {
			b.Fatalf("walked %d series", n)
		}
	}
}

// BenchmarkTimerAdd measures adding to one timer series while its values
// are kept (exact) and once they are in the sketch.
func BenchmarkTimerAdd(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	ms := make([]parser.Metric, 4096)
	for i := range ms {
		ms[i] = tagged(timer("latency", math.Exp(rng.NormFloat64()*2+3), 1), "", "env:prod,host:web-1")
	}
	for _, mode := range []struct {
		name  string
		bound int
	}{{"exact", 1 << 30}, {"sketch", 1}} {
		b.Run(mode.name, func(b *testing.B) {
			a := New(Config{MaxTimerSamples: mode.bound})
			w := a.NewWriter()
			for i := range ms {
				_ = w.Add(&ms[i])
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				_ = w.Add(&ms[i&(len(ms)-1)])
				i++
			}
		})
	}
}

// BenchmarkSeriesMemory reports the live heap taken by a million counter
// series named app.requests.<i> with two tags, as "B/series", and the
// length of their keys, as "key-B/series".
func BenchmarkSeriesMemory(b *testing.B) {
	const n = 1_000_000
	var perSeries, keyLen float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		a := New(Config{})
		w := a.NewWriter()
		m := tagged(counter("", 1, 1), "", "env:prod,host:web-1")
		var name []byte
		for i := range n {
			name = strconv.AppendInt(append(name[:0], "app.requests."...), int64(i), 10)
			m.Name = name
			if err := w.Add(&m); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perSeries = float64(after.HeapAlloc-before.HeapAlloc) / n
		keyLen = 0
		snap := a.Snapshot()
		snap.Each(func(s *Series) { keyLen += float64(len(s.key)) / n })
		if snap.Len() != n {
			b.Fatalf("%d series", snap.Len())
		}
	}
	b.ReportMetric(perSeries, "B/series")
	b.ReportMetric(keyLen, "key-B/series")
}

// BenchmarkAddKeyMiss measures Adds that miss the Writer's key cache (more
// distinct lines than it holds, cycled), so that each builds its key:
// without a Sanitizer, and with one on names and tags already clean and
// on names and tags that need cleaning.
func BenchmarkAddKeyMiss(b *testing.B) {
	for _, c := range []struct {
		name, format string
		san          Sanitizer
	}{
		{"plain", "app.requests.%d", nil},
		{"sanitized-clean", "app.requests.%d", testSanitizer{limit: 255, maxTags: 50}},
		{"sanitized-dirty", "app requests!%d", testSanitizer{limit: 255, maxTags: 50}},
	} {
		b.Run(c.name, func(b *testing.B) {
			a := New(Config{Sanitizer: c.san})
			w := a.NewWriter()
			ms := make([]parser.Metric, 4*keyCacheSize)
			for i := range ms {
				ms[i] = tagged(counter(fmt.Sprintf(c.format, i), 1, 1), "", "env:prod,host:web-1")
				_ = w.Add(&ms[i])
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				_ = w.Add(&ms[i%len(ms)])
				i++
			}
		})
	}
}
