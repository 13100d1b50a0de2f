package flusher

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/libratod/libratod/aggregator"
)

// keptSource is a Source that keeps the snapshots it hands out.
type keptSource struct {
	a     *aggregator.Aggregator
	snaps []*aggregator.Snapshot
}

func (s *keptSource) Snapshot() *aggregator.Snapshot {
	snap := s.a.Snapshot()
	s.snaps = append(s.snaps, snap)
	return snap
}

// countingObserver counts the series of each period it observes.
type countingObserver struct{ n []int }

func (o *countingObserver) ObservePeriod(_ time.Time, snap *aggregator.Snapshot) {
	n := 0
	snap.Each(func(*aggregator.Series) { n++ })
	o.n = append(o.n, n)
}

// TestFlushReleasesSnapshot checks that a flush releases its snapshot's
// series as the outputs read them (see aggregator.Snapshot.Drain), after
// the observers have seen every one, and that each output still gets
// every series once, with the accounting right.
func TestFlushReleasesSnapshot(t *testing.T) {
	const n = 1000
	for _, outputs := range []string{"librato", "librato+otlp"} {
		t.Run(outputs, func(t *testing.T) {
			a := aggregator.New(aggregator.Config{})
			src := &keptSource{a: a}
			lib, ot := &scripted{}, &fakeOTLP{}
			obs := &countingObserver{}
			cfg := fastConfig(newMetrics(t))
			cfg.BatchSize = 50
			cfg.Concurrency = 2
			cfg.Observers = []Observer{obs}
			if outputs != "librato" {
				cfg.OTLP = otlpConfig(ot)
			}
			f := New(cfg, src, lib)
			lines := make([]string, n)
			for i := range lines {
				lines[i] = fmt.Sprintf("c.%d:%d|c", i, i+1)
			}
			feed(t, a, lines...)
			res := f.Flush(context.Background(), t0)

			if len(obs.n) != 1 || obs.n[0] != n {
				t.Errorf("the observer saw %v series, want [%d]", obs.n, n)
			}
			got := lib.totals()[t0.Unix()]
			if len(got) != n {
				t.Errorf("Librato got %d names, want %d", len(got), n)
			}
			for i := range n {
				if v := got[fmt.Sprint("c.", i)]; v != float64(i+1) {
					t.Fatalf("Librato got c.%d = %v, want %d once", i, v, i+1)
				}
			}
			lr := resultOf(t, res, "librato")
			if res.Series != n || lr.Measurements != n || lr.Sent != n || lr.Pending != 0 {
				t.Errorf("librato result %+v, series %d", lr, res.Series)
			}
			if outputs != "librato" {
				pts, sent := ot.got()
				if sent != n || len(pts) != n || pts["c.7"] != 8 {
					t.Errorf("OTLP got %d points over %d names (c.7 = %v), want %d, 8", sent, len(pts), pts["c.7"], n)
				}
				if or := resultOf(t, res, "otlp"); or.Measurements != n || or.Sent != n {
					t.Errorf("otlp result %+v", or)
				}
			}
			left := 0
			src.snaps[0].Each(func(*aggregator.Series) { left++ })
			if left != 0 {
				t.Errorf("the flushed snapshot still holds %d of its %d series", left, n)
			}
		})
	}
}
