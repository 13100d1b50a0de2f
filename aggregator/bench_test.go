package aggregator

import (
	"fmt"
	"sort"
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
