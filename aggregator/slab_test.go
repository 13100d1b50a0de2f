package aggregator

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/libratod/libratod/parser"
)

// TestNewSeriesAllocsAmortised checks that a line creating a series does
// not pay an allocation of its own in the steady state of a daemon whose
// names change every period: series and keys come from per-shard blocks.
func TestNewSeriesAllocsAmortised(t *testing.T) {
	const n = 20_000
	ms := make([]parser.Metric, 2*n+2)
	for i := range ms {
		ms[i] = tagged(counter(fmt.Sprint("load.r1a2b3c.c.", i), 1, 1), "", fmt.Sprintf("t0:v%d,t1:v%d", i%7, (i+1)%7))
	}
	a := New(Config{Shards: 4})
	w := a.NewWriter()
	for i := range ms[:n] { // a first period: maps and cache reach their size
		if err := w.Add(&ms[i]); err != nil {
			t.Fatal(err)
		}
	}
	a.Snapshot()
	i := n
	allocs := testing.AllocsPerRun(n, func() {
		if err := w.Add(&ms[i]); err != nil {
			t.Fatal(err)
		}
		i++
	})
	if got := a.Live(); got != n+1 {
		t.Fatalf("%d live series, want %d (each line a new series)", got, n+1)
	}
	if allocs > 0.25 {
		t.Errorf("a line creating a series: %v allocs, want at most 0.25 amortised", allocs)
	}
}

// TestSnapshotSurvivesNextPeriod checks that the series of a Snapshot keep
// their names, tags and values while the next period creates series in the
// same shards (which must not reuse the snapshot's memory).
func TestSnapshotSurvivesNextPeriod(t *testing.T) {
	const n = 3000
	line := func(period, i int) parser.Metric {
		m := tagged(counter(fmt.Sprintf("p%d.name.%d", period, i), float64(i+1), 1), "", fmt.Sprintf("k:v%d", i))
		if i%5 == 0 { // names of every period
			m.Name = fmt.Appendf(nil, "common.%d", i)
		}
		return m
	}
	a := New(Config{Shards: 2, GaugeDeltas: true})
	w := a.NewWriter()
	for i := range n {
		m := line(1, i)
		if err := w.Add(&m); err != nil {
			t.Fatal(err)
		}
		g := gauge(fmt.Sprint("g.", i), 1, true)
		if err := w.Add(&g); err != nil {
			t.Fatal(err)
		}
	}
	snap := a.Snapshot()
	for i := range n {
		m := line(2, i)
		m.Value = -1
		if err := w.Add(&m); err != nil {
			t.Fatal(err)
		}
		g := gauge(fmt.Sprint("g.", i), 2, true)
		if err := w.Add(&g); err != nil {
			t.Fatal(err)
		}
	}
	want := make(map[string]float64, 2*n)
	for i := range n {
		m := line(1, i)
		want[fmt.Sprintf("c %s k=v%d", m.Name, i)] = float64(i + 1)
		want[fmt.Sprintf("g g.%d", i)] = 1
	}
	snap.Each(func(s *Series) {
		k := string(s.Kind.String()[0]) + " " + s.Name
		for _, tg := range s.Tags() {
			k += " " + tg.Name + "=" + tg.Value
		}
		v, ok := want[k]
		switch {
		case !ok:
			t.Errorf("snapshot holds %q, not a series of its period", k)
		case v != s.Value:
			t.Errorf("%q = %v, want %v", k, s.Value, v)
		}
		delete(want, k)
	})
	if len(want) != 0 {
		t.Errorf("%d series missing from the snapshot", len(want))
	}
	// The next period's gauges started from the bases the first left.
	a.Snapshot().Each(func(s *Series) {
		if s.Kind == Gauge && s.Value != 3 {
			t.Errorf("gauge %s = %v, want 3 (1 then +2)", s.Name, s.Value)
		}
	})
}

// TestSnapshotFreedWithoutNextPeriod checks that a Snapshot's series, and
// what they hold, are freed once the Snapshot is dropped, even though the
// Writer that made them goes on making series in the next period.
func TestSnapshotFreedWithoutNextPeriod(t *testing.T) {
	a := New(Config{})
	w := a.NewWriter()
	tm := timer("latency", 1, 1)
	if err := w.Add(&tm); err != nil {
		t.Fatal(err)
	}
	freed := make(chan struct{})
	a.Snapshot().Each(func(s *Series) {
		runtime.AddCleanup(s.TimerStats, func(ch chan struct{}) { close(ch) }, freed)
	})
	c := counter("hits", 1, 1)
	if err := w.Add(&c); err != nil { // a series of the next period
		t.Fatal(err)
	}
	for range 50 {
		runtime.GC()
		select {
		case <-freed:
			runtime.KeepAlive(a)
			runtime.KeepAlive(w)
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Error("the dropped snapshot's timer is still alive: something of the next period holds it")
}

// TestHashCollisions checks that series whose keys' hashes collide stay
// apart and exact: the same lines give the same series with hashes made to
// collide (16 values in 4 shards) as without, through periods, gauge
// deltas and MaxSeries.
func TestHashCollisions(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const names = 300
	var periods [3][]parser.Metric
	for p := range periods {
		for range 4000 {
			i := rng.IntN(names)
			name := fmt.Sprint("n.", i)
			tags := fmt.Sprintf("host:h%d", i%3)
			var m parser.Metric
			switch i % 4 {
			case 0:
				m = counter(name, float64(rng.IntN(10)), 1)
			case 1:
				m = gauge(name, float64(rng.IntN(10)), rng.IntN(2) == 0)
			case 2:
				m = timer(name, float64(rng.IntN(1000)), 1)
			case 3:
				m = set(name, fmt.Sprint("m", rng.IntN(50)))
			}
			// Absent from a period, a gauge's delta starts from its base.
			if p == 1 && i%5 == 0 {
				continue
			}
			periods[p] = append(periods[p], tagged(m, "", tags))
		}
	}
	for _, maxSeries := range []int{0, 100} {
		cfg := Config{Shards: 4, GaugeDeltas: true, MaxSeries: maxSeries}
		plain, collide := New(cfg), New(cfg)
		collide.hashMask = 0xc000_0000_0000_0003
		wp, wc := plain.NewWriter(), collide.NewWriter()
		for p, ms := range periods {
			for i := range ms {
				ep, ec := wp.Add(&ms[i]), wc.Add(&ms[i])
				if ep != ec {
					t.Fatalf("max %d, period %d, line %d: error %v, want %v", maxSeries, p, i, ec, ep)
				}
			}
			sp, sc := plain.Snapshot(), collide.Snapshot()
			if sp.Len() != sc.Len() {
				t.Errorf("max %d, period %d: Len %d with collisions, want %d", maxSeries, p, sc.Len(), sp.Len())
			}
			want, got := collect(t, sp), collect(t, sc)
			if len(got) != len(want) {
				t.Errorf("max %d, period %d: %d series with collisions, want %d", maxSeries, p, len(got), len(want))
			}
			for id, w := range want {
				g := got[id]
				switch {
				case g == nil:
					t.Errorf("max %d, period %d: %s missing", maxSeries, p, id)
				case g.Value != w.Value || g.Cardinality() != w.Cardinality() ||
					(w.TimerStats != nil && (g.Count != w.Count || g.Sum != w.Sum)):
					t.Errorf("max %d, period %d: %s differs with collisions", maxSeries, p, id)
				}
			}
		}
	}
}
