package aggregator

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"testing"

	"github.com/libratod/libratod/parser"
)

// The benchmarks in this file are the instruments of issue 18 (memory per
// live series, CPU per line that creates a series). They use only New,
// NewWriter, Add and Snapshot, so the file can be copied onto older builds
// to compare.

// loadName appends the name the load tool (cmd/statsd-load) gives counter i
// with a run prefix: "load.r1a2b3c.c.<i>", 15 to 21 bytes.
func loadName(dst []byte, i int) []byte {
	return strconv.AppendInt(append(dst, "load.r1a2b3c.c."...), int64(i), 10)
}

// loadTags are the load tool's two default DogStatsD tags of name i.
func loadTags(i int) []byte {
	return fmt.Appendf(nil, "t0:v%d,t1:v%d", i%7, (i+1)%7)
}

// loadCounters returns n counter lines, one per name, as the daemon's parser
// makes them of the load tool's lines (value 1, rate 1, two tags).
func loadCounters(n int) []parser.Metric {
	tags := make([][]byte, 7)
	for i := range tags {
		tags[i] = loadTags(i)
	}
	ms := make([]parser.Metric, n)
	for i := range ms {
		ms[i] = parser.Metric{Name: loadName(nil, i), Tags: tags[i%7], Type: parser.Counter, Value: 1, Rate: 1}
	}
	return ms
}

// procKB returns the field (VmRSS, VmHWM) of /proc/self/status in bytes,
// and false where it cannot be read (not Linux, no /proc).
func procKB(field string) (uint64, bool) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for l := range bytes.SplitSeq(data, []byte("\n")) {
		rest, ok := bytes.CutPrefix(l, []byte(field+":"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, false
		}
		kb, err := strconv.ParseUint(string(f[0]), 10, 64)
		return kb << 10, err == nil
	}
	return 0, false
}

// BenchmarkLiveSeries fills an aggregator with N distinct counter series
// named as the load tool names them (about 20 bytes, two tags), one line
// each, all in one period, and reports:
//
//   - heap-B/series: the heap in use after a runtime.GC, less the heap in
//     use before, over N: what the live series hold;
//   - rss-B/series: the growth of the resident set (VmRSS) from before the
//     fill to its end, before any GC, over N, where /proc/self/status is
//     readable. That is nearer to what a daemon's peak RSS pays (garbage not
//     yet collected included), but noisy in a test binary: what earlier
//     benchmarks left mapped, the GC's pacing and the runtime's scavenger
//     move it by tens of bytes per series. Compare it across runs only with
//     care; heap-B/series is the steady figure.
//
// The lines themselves (the parser's output) are built before the
// measurement and are not counted.
func BenchmarkLiveSeries(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("%dk", n/1000), func(b *testing.B) {
			ms := loadCounters(n)
			var heapPer, rssPer float64
			rssOK := true
			for b.Loop() {
				var before, after runtime.MemStats
				debug.FreeOSMemory() // a GC, and the freed pages back to the OS
				runtime.ReadMemStats(&before)
				rss0, ok0 := procKB("VmRSS")
				a := New(Config{})
				w := a.NewWriter()
				for i := range ms {
					if err := w.Add(&ms[i]); err != nil {
						b.Fatal(err)
					}
				}
				rss1, ok1 := procKB("VmRSS")
				runtime.GC()
				runtime.ReadMemStats(&after)
				if got := a.Live(); got != n {
					b.Fatalf("%d live series, want %d", got, n)
				}
				heapPer = (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / float64(n)
				rssOK = ok0 && ok1
				rssPer = (float64(rss1) - float64(rss0)) / float64(n)
				runtime.KeepAlive(a)
			}
			b.ReportMetric(heapPer, "heap-B/series")
			if rssOK {
				b.ReportMetric(rssPer, "rss-B/series")
			}
		})
	}
}

// addInRuns adds m, the i-th line, with w in runs of 20 Adds (see
// Writer.Begin), a datagram's lines, as ingest adds them: it ends w's run
// and begins the next every 20 lines. The caller begins the first run and
// ends the last.
func addInRuns(w *Writer, m *parser.Metric, i int) error {
	if i%20 == 0 {
		w.End()
		w.Begin()
	}
	return w.Add(m)
}

// newSeriesCycle is how many distinct names BenchmarkNewSeries and
// BenchmarkExistingSeries cycle through: far more than the Writer's key
// cache holds, so each line builds its key, as a line of a name not seen in
// the period does.
const newSeriesCycle = 100_000

// BenchmarkNewSeries measures a line that creates its series: ns and allocs
// per new series, in the steady state of a daemon whose names change every
// period. It cycles through newSeriesCycle names and, after each cycle, takes
// a Snapshot (with the timer stopped), so every line starts a series of the
// new period; the Snapshot's own cost is not counted.
func BenchmarkNewSeries(b *testing.B) {
	ms := loadCounters(newSeriesCycle)
	a := New(Config{})
	w := a.NewWriter()
	for i := range ms { // a first period: the maps reach their size
		_ = w.Add(&ms[i])
	}
	a.Snapshot()
	b.ReportAllocs()
	w.Begin()
	i := 0
	for b.Loop() {
		if i == len(ms) {
			b.StopTimer()
			w.End() // a Snapshot waits for the run to end
			a.Snapshot()
			w.Begin()
			i = 0
			b.StartTimer()
		}
		if err := addInRuns(w, &ms[i], i); err != nil {
			b.Fatal(err)
		}
		i++
	}
	w.End()
}

// BenchmarkExistingSeries is BenchmarkNewSeries's lines without the
// Snapshots: each line adds to a series of the period, after a key built
// (the key cache misses), the cost a line of a name seen in the period
// pays when many names are live.
func BenchmarkExistingSeries(b *testing.B) {
	ms := loadCounters(newSeriesCycle)
	a := New(Config{})
	w := a.NewWriter()
	for i := range ms {
		_ = w.Add(&ms[i])
	}
	b.ReportAllocs()
	w.Begin()
	i := 0
	for b.Loop() {
		if i == len(ms) {
			i = 0
		}
		if err := addInRuns(w, &ms[i], i); err != nil {
			b.Fatal(err)
		}
		i++
	}
	w.End()
}

// BenchmarkChurnSeries measures a line of a name new to the daemon, in the
// steady state of one whose names all change every period: two sets of
// newSeriesCycle names take turns, a period each, and a name absent from
// a whole period is forgotten, so each line makes its series anew (where
// BenchmarkNewSeries's names come back every period). The Snapshots, with
// the timer stopped, are not counted.
func BenchmarkChurnSeries(b *testing.B) {
	ms := loadCounters(2 * newSeriesCycle)
	for i := range ms[newSeriesCycle:] {
		ms[newSeriesCycle+i].Name = append([]byte("churn."), ms[i].Name...)
	}
	a := New(Config{})
	w := a.NewWriter()
	for i := range ms { // two first periods: the maps reach their size
		_ = w.Add(&ms[i])
		if i == newSeriesCycle-1 {
			a.Snapshot()
		}
	}
	a.Snapshot()
	b.ReportAllocs()
	w.Begin()
	i := 0
	for b.Loop() {
		if i%newSeriesCycle == 0 {
			b.StopTimer()
			w.End() // a Snapshot waits for the run to end
			a.Snapshot()
			w.Begin()
			if i == len(ms) {
				i = 0
			}
			b.StartTimer()
		}
		if err := addInRuns(w, &ms[i], i); err != nil {
			b.Fatal(err)
		}
		i++
	}
	w.End()
}
