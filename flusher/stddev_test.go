package flusher

import (
	"context"
	"testing"
	"time"

	"github.com/libratod/libratod/aggregator"
	"github.com/libratod/libratod/librato"
)

// TestSpoolKeepsStdDev: a timer of 1e9 and 1e9+1 ms, whose standard
// deviation (0.5) cannot be derived from its sum of squares, is spooled
// while Librato is down and delivered by the next process with it.
func TestSpoolKeepsStdDev(t *testing.T) {
	dir := t.TempDir()
	sp := openSpool(t, dir)
	a := aggregator.New(aggregator.Config{})
	cfg := fastConfig(newMetrics(t))
	cfg.Spool, cfg.MaxAge = sp, 24*time.Hour*365*100
	f := New(cfg, a, &scripted{answer: func(int, *librato.Batch) error { return down }})
	feed(t, a, "t:1000000000|ms", "t:1000000001|ms")
	if res := f.Flush(context.Background(), t0); res.Pending == 0 {
		t.Fatalf("result %+v, want the timer kept", res)
	}
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	cfg.Spool, cfg.Metrics = openSpool(t, dir), newMetrics(t)
	good := &scripted{}
	New(cfg, aggregator.New(aggregator.Config{}), good).drainAll(context.Background())
	found := false
	for _, b := range good.accepted {
		for _, m := range b.Measurements {
			if m.Name == "t" && m.Count == 2 {
				found = true
				if !m.HasStdDev || m.StdDev != 0.5 {
					t.Errorf("replayed timer: stddev %v (set %v), want 0.5", m.StdDev, m.HasStdDev)
				}
			}
		}
	}
	if !found {
		t.Fatalf("no timer t of 2 samples among %+v", good.accepted)
	}
}
