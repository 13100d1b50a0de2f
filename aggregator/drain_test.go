package aggregator

import (
	"fmt"
	"runtime"
	"testing"
	"weak"
)

// snapshotOf returns a snapshot of n timers (whose Series are the
// snapshot's own, unlike a counter's, which Each lends) made by a Writer
// that is dropped before it returns.
func snapshotOf(t *testing.T, a *Aggregator, n int) *Snapshot {
	t.Helper()
	w := a.NewWriter()
	for i := range n {
		m := tagged(timer(fmt.Sprint("load.r1a2b3c.t.", i), 1, 1), "", fmt.Sprintf("t0:v%d", i%7))
		if err := w.Add(&m); err != nil {
			t.Fatal(err)
		}
	}
	return a.Snapshot()
}

// alive returns how many of ps still point to something after a GC.
func alive(ps []weak.Pointer[Series]) int {
	runtime.GC()
	n := 0
	for _, p := range ps {
		if p.Value() != nil {
			n++
		}
	}
	return n
}

// TestDrainReleasesWalkedSeries checks that the series a Drain has walked
// can be freed while the rest of the snapshot is still being walked: the
// memory of a series (its block of series, its key's block) holds only
// series of its own part of the snapshot.
func TestDrainReleasesWalkedSeries(t *testing.T) {
	for _, shards := range []int{64, 256} {
		t.Run(fmt.Sprint(shards, " shards"), func(t *testing.T) {
			const n = 4000
			snap := snapshotOf(t, New(Config{Shards: shards, ReleaseParts: maxParts}), n)
			snap.Share(1)
			var seen []weak.Pointer[Series]
			names := map[string]bool{}
			left := -1
			snap.Drain(func(s *Series) {
				seen = append(seen, weak.Make(s))
				if names[s.Name] {
					t.Errorf("%s walked twice", s.Name)
				}
				names[s.Name] = true
				if len(seen) == n { // the last one: every other part released
					left = alive(seen)
				}
			})
			if len(names) != n {
				t.Fatalf("Drain walked %d series, want %d", len(names), n)
			}
			// The last part holds about n/maxParts series; were blocks
			// shared between parts, most blocks would hold one of them.
			if most := n / maxParts * 3 / 2; left > most {
				t.Errorf("%d of %d series still alive at the last one, want at most %d (its own part)", left, n, most)
			}
			if got := alive(seen); got != 0 {
				t.Errorf("%d series alive after the Drain, want 0", got)
			}
			if snap.Len() != n {
				t.Errorf("Len = %d after the Drain, want %d", snap.Len(), n)
			}
			snap.Each(func(*Series) { t.Fatal("Each walked a released series") })
		})
	}
}

// TestDrainWaitsForEveryReader checks that a snapshot shared by two
// readers keeps every series until both have walked it, and that each
// reader sees every series.
func TestDrainWaitsForEveryReader(t *testing.T) {
	const n = 2000
	snap := snapshotOf(t, New(Config{ReleaseParts: maxParts}), n)
	snap.Share(2)
	var seen []weak.Pointer[Series]
	snap.Drain(func(s *Series) { seen = append(seen, weak.Make(s)) })
	if len(seen) != n {
		t.Fatalf("first Drain walked %d series, want %d", len(seen), n)
	}
	if got := alive(seen); got != n {
		t.Fatalf("%d of %d series alive after one of two readers, want all", got, n)
	}
	walked := 0
	snap.Drain(func(s *Series) { walked++ })
	if walked != n {
		t.Fatalf("second Drain walked %d series, want %d", walked, n)
	}
	if got := alive(seen); got != 0 {
		t.Errorf("%d series alive after both readers, want 0", got)
	}
	runtime.KeepAlive(snap)
}

// TestDrainWithoutShare checks that a snapshot not shared keeps its
// series: Drain is then Each.
func TestDrainWithoutShare(t *testing.T) {
	const n = 500
	snap := snapshotOf(t, New(Config{ReleaseParts: maxParts}), n)
	for range 2 {
		walked := 0
		snap.Drain(func(*Series) { walked++ })
		if walked != n {
			t.Fatalf("Drain walked %d series, want %d", walked, n)
		}
	}
}

func TestReleaseParts(t *testing.T) {
	tests := []struct{ shards, want, parts int }{
		{64, 0, maxParts}, {64, 1, 1}, {64, 2, 2}, {64, 3, 4}, {64, 4, 4}, {64, 100, maxParts}, {256, 100, maxParts}, {2, 4, 2}, {1, 4, 1}, {64, -1, maxParts}, {128, 0, maxParts},
	}
	for _, tc := range tests {
		if got := releaseParts(tc.shards, tc.want); got != tc.parts {
			t.Errorf("releaseParts(%d shards, %d) = %d, want %d", tc.shards, tc.want, got, tc.parts)
		}
		a := New(Config{Shards: tc.shards, ReleaseParts: tc.want})
		if s := a.newSnapshot(); s.per*tc.parts != len(a.shards) {
			t.Errorf("%d shards, %d parts: a snapshot part is %d shards", tc.shards, tc.want, s.per)
		}
	}
}

// held returns the number of counters and gauges snap still holds.
func held(snap *Snapshot) int {
	n := 0
	for _, r := range snap.nums {
		n += len(r)
	}
	return n
}

// TestDrainReleasesWalkedCounters checks that the counters a Drain has
// walked are dropped from the snapshot part by part, and only once every
// reader has walked them.
func TestDrainReleasesWalkedCounters(t *testing.T) {
	const n = 4000
	a := New(Config{Shards: 64, ReleaseParts: maxParts})
	w := a.NewWriter()
	for i := range n {
		m := counter(fmt.Sprint("load.c.", i), 1, 1)
		if err := w.Add(&m); err != nil {
			t.Fatal(err)
		}
	}
	snap := a.Snapshot()
	snap.Share(2)
	walked := 0
	snap.Drain(func(*Series) { walked++ })
	if got := held(snap); walked != n || got != n {
		t.Fatalf("first of two Drains walked %d, left %d held; want %d and all", walked, got, n)
	}
	walked = 0
	snap.Drain(func(*Series) {
		if walked++; walked == n {
			if got, most := held(snap), n/maxParts*3/2; got > most {
				t.Errorf("%d of %d counters held at the last one, want at most %d (its own part)", got, n, most)
			}
		}
	})
	if got := held(snap); walked != n || got != 0 {
		t.Errorf("second Drain walked %d, left %d held; want %d and 0", walked, got, n)
	}
}
