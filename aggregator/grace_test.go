package aggregator

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/libratod/libratod/parser"
)

func stamped(m parser.Metric, ts int64) parser.Metric {
	m.Timestamp = ts
	return m
}

// counterIn returns the value of counter name in snap, and whether it is
// there.
func counterIn(t *testing.T, snap *Snapshot, name string) (float64, bool) {
	t.Helper()
	s, ok := collect(t, snap)["counter "+name]
	if !ok {
		return 0, false
	}
	return s.Value, true
}

func TestRouting(t *testing.T) {
	// Periods of 10 s: the closing one is [100, 110), the current one
	// [110, 120).
	tests := []struct {
		name    string
		ts      int64
		noClose bool // the closing period was taken already
		closing bool // the line goes to the closing period
		want    Stamped
	}{
		{name: "no timestamp", ts: 0, want: Stamped{}},
		{name: "current start", ts: 110, want: Stamped{Current: 1}},
		{name: "current last second", ts: 119, want: Stamped{Current: 1}},
		{name: "closing start", ts: 100, closing: true, want: Stamped{Closing: 1}},
		{name: "closing last second", ts: 109, closing: true, want: Stamped{Closing: 1}},
		{name: "before closing", ts: 99, want: Stamped{Late: 1}},
		{name: "long ago", ts: 1, want: Stamped{Late: 1}},
		{name: "current end", ts: 120, want: Stamped{Future: 1}},
		{name: "far ahead", ts: 1 << 40, want: Stamped{Future: 1}},
		{name: "closing taken", ts: 105, noClose: true, want: Stamped{Late: 1}},
		{name: "closing taken, current", ts: 115, noClose: true, want: Stamped{Current: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := New(Config{Shards: 4})
			a.SetSpan(100, 110)
			addAll(t, a, counter("before", 1, 1)) // the closing period is not empty
			if prev := a.Roll(110, 120); prev != nil {
				t.Fatalf("Roll returned a closing period: none was open")
			}
			if tc.noClose {
				if n := a.TakeClosing().Len(); n != 1 {
					t.Fatalf("closing period: %d series, want 1", n)
				}
			}
			w := a.NewWriter()
			m := stamped(counter("x", 1, 1), tc.ts)
			if err := w.Add(&m); err != nil {
				t.Fatal(err)
			}
			if got := w.Stamped(); got != tc.want {
				t.Errorf("Stamped() = %+v, want %+v", got, tc.want)
			}
			if got := w.Stamped(); got != (Stamped{}) {
				t.Errorf("second Stamped() = %+v, want zero", got)
			}
			closing, current := a.TakeClosing(), a.Snapshot()
			_, inClosing := counterIn(t, closing, "x")
			_, inCurrent := counterIn(t, current, "x")
			if inClosing != tc.closing || inCurrent == tc.closing {
				t.Errorf("in closing %v, in current %v; want closing %v", inClosing, inCurrent, tc.closing)
			}
		})
	}
}

func TestRoutingOff(t *testing.T) {
	// Without SetSpan or Roll no line is routed or counted.
	a := New(Config{})
	w := a.NewWriter()
	m := stamped(counter("x", 1, 1), 5)
	if err := w.Add(&m); err != nil {
		t.Fatal(err)
	}
	if got := w.Stamped(); got != (Stamped{}) {
		t.Errorf("Stamped() = %+v, want zero", got)
	}
	if v, ok := counterIn(t, a.Snapshot(), "x"); !ok || v != 1 {
		t.Errorf("x = %v (%v), want 1 in the current period", v, ok)
	}
}

func TestRollWithoutSpans(t *testing.T) {
	// A Roll before any span keeps the period's series for TakeClosing.
	a := New(Config{})
	addAll(t, a, counter("x", 2, 1))
	a.Roll(10, 20)
	if v, ok := counterIn(t, a.TakeClosing(), "x"); !ok || v != 2 {
		t.Errorf("x = %v (%v), want 2 in the closing period", v, ok)
	}
}

func TestRollTakesClosingLeftOpen(t *testing.T) {
	a := New(Config{})
	a.SetSpan(0, 10)
	addAll(t, a, counter("x", 1, 1))
	a.Roll(10, 20)
	addAll(t, a, counter("x", 2, 1))
	prev := a.Roll(20, 30)
	if v, ok := counterIn(t, prev, "x"); !ok || v != 1 {
		t.Errorf("Roll returned x = %v (%v), want the first period's 1", v, ok)
	}
	if v, ok := counterIn(t, a.TakeClosing(), "x"); !ok || v != 2 {
		t.Errorf("closing x = %v (%v), want 2", v, ok)
	}
	if n := a.TakeClosing().Len(); n != 0 {
		t.Errorf("TakeClosing with none open: %d series", n)
	}
}

func TestGraceExactConcurrent(t *testing.T) {
	// Writers add lines stamped in the period before and the current one
	// while the flusher rolls and takes periods: every unit is in exactly
	// one snapshot, and each in its own period's or, late, a later one.
	const (
		goroutines = 6
		perG       = 4000
		periods    = 40
	)
	a := New(Config{Shards: 8})
	// Spans from 1000 on: a timestamp is never 0 (none).
	a.SetSpan(1000, 1010)
	var curMu sync.Mutex
	cur := [2]int64{1000, 1010} // the current span, under curMu
	type taken struct {
		span [2]int64
		snap *Snapshot
	}
	var snaps []taken
	stop := make(chan struct{})
	var roller sync.WaitGroup
	roller.Add(1)
	go func() {
		defer roller.Done()
		for p := int64(1); ; p++ {
			select {
			case <-stop:
				return
			default:
			}
			curMu.Lock()
			old := cur
			cur = [2]int64{1000 + 10*p, 1010 + 10*p}
			curMu.Unlock()
			a.Roll(cur[0], cur[1])
			snaps = append(snaps, taken{old, a.TakeClosing()})
			if p > periods {
				p = 0 // bounded spans, endless loop until stop
			}
		}
	}()
	var wg sync.WaitGroup
	var late, closing, current, future int
	var countMu sync.Mutex
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := a.NewWriter()
			for i := range perG {
				curMu.Lock()
				span := cur
				curMu.Unlock()
				ts := span[0] + int64(i%10)
				if i%3 == 0 {
					ts -= 10 // the period before
				}
				m := stamped(tagged(counter(fmt.Sprintf("c%d", i%7), 1, 1), "", fmt.Sprintf("g:%d", g)), ts)
				if err := w.Add(&m); err != nil {
					t.Error(err)
					return
				}
			}
			s := w.Stamped()
			countMu.Lock()
			late, closing, current, future = late+s.Late, closing+s.Closing, current+s.Current, future+s.Future
			countMu.Unlock()
		}()
	}
	wg.Wait()
	close(stop)
	roller.Wait()
	snaps = append(snaps, taken{snap: a.TakeClosing()}, taken{snap: a.Snapshot()})
	var total float64
	for _, s := range snaps {
		s.snap.Each(func(x *Series) { total += x.Value })
	}
	if want := float64(goroutines * perG); total != want {
		t.Errorf("counted %v units, want %v", total, want)
	}
	if n := late + closing + current + future; n != goroutines*perG {
		t.Errorf("Stamped counts %d lines (late %d, closing %d, current %d, future %d), want %d",
			n, late, closing, current, future, goroutines*perG)
	}
}

func TestGraceMaxSeriesPerPeriod(t *testing.T) {
	a := New(Config{MaxSeries: 2})
	a.SetSpan(0, 10)
	addAll(t, a, counter("a", 1, 1), counter("b", 1, 1))
	a.Roll(10, 20)
	// The current period has room for two new series of its own.
	addAll(t, a, counter("c", 1, 1), counter("d", 1, 1))
	w := a.NewWriter()
	m := counter("e", 1, 1)
	if err := w.Add(&m); !errors.Is(err, ErrMaxSeries) {
		t.Errorf("a third series in the current period: %v, want ErrMaxSeries", err)
	}
	// The closing period is full: its existing series take lines, a new
	// one is refused.
	old := stamped(counter("a", 1, 1), 5)
	if err := w.Add(&old); err != nil {
		t.Errorf("an existing closing series: %v", err)
	}
	m = stamped(counter("f", 1, 1), 5)
	if err := w.Add(&m); !errors.Is(err, ErrMaxSeries) {
		t.Errorf("a third series in the closing period: %v, want ErrMaxSeries", err)
	}
	closing := a.TakeClosing()
	if closing.Len() != 2 {
		t.Errorf("closing period: %d series, want 2", closing.Len())
	}
	if v, _ := counterIn(t, closing, "a"); v != 2 {
		t.Errorf("closing a = %v, want 2", v)
	}
	// The next closing period holds the current one's two series and
	// their count: full, but for its own series.
	a.Roll(20, 30)
	m = stamped(counter("g", 1, 1), 15)
	if err := w.Add(&m); !errors.Is(err, ErrMaxSeries) {
		t.Errorf("a third series in the next closing period: %v, want ErrMaxSeries", err)
	}
	m = stamped(counter("c", 1, 1), 15)
	if err := w.Add(&m); err != nil {
		t.Errorf("an existing series of the next closing period: %v", err)
	}
	if a.Live() != 0 {
		t.Errorf("Live() = %d after Roll, want 0", a.Live())
	}
}

func TestGraceMaxSeriesClosingLeavesCurrent(t *testing.T) {
	// A closing period with room does not take the current one's.
	a := New(Config{MaxSeries: 1})
	a.SetSpan(0, 10)
	a.Roll(10, 20)
	addAll(t, a, stamped(counter("old", 1, 1), 5))
	addAll(t, a, counter("new", 1, 1))
	if n := a.TakeClosing().Len(); n != 1 {
		t.Errorf("closing period: %d series, want 1", n)
	}
	if n := a.Snapshot().Len(); n != 1 {
		t.Errorf("current period: %d series, want 1", n)
	}
}

func TestGraceGaugeDeltas(t *testing.T) {
	a := New(Config{GaugeDeltas: true})
	a.SetSpan(0, 10)
	addAll(t, a, gauge("g", 10, false), gauge("h", 5, false))
	a.Snapshot() // h's base is 5
	a.SetSpan(10, 20)
	addAll(t, a, gauge("g", 20, false))
	a.Roll(20, 30)
	// A late delta to the closing period's gauge; one to a gauge new to
	// the closing period starts from its base.
	addAll(t, a, stamped(gauge("g", 1, true), 15), stamped(gauge("h", 2, true), 15))
	// A delta to a gauge new to the current period starts from the
	// closing period's value (21), not from the base (10).
	addAll(t, a, gauge("g", 3, true))
	closing := collect(t, a.TakeClosing())
	if g, h := closing["gauge g"], closing["gauge h"]; g == nil || g.Value != 21 || h == nil || h.Value != 7 {
		t.Fatalf("closing period: g %v, h %v; want 21 and 7", g, h)
	}
	// After the take, a delta to a gauge new to the current period starts
	// from the closing period's value, recorded as the base.
	addAll(t, a, gauge("h", 1, true))
	current := collect(t, a.Snapshot())
	if g, h := current["gauge g"], current["gauge h"]; g == nil || g.Value != 24 || h == nil || h.Value != 8 {
		t.Errorf("current period: g %v, h %v; want 24 and 8", g, h)
	}
}

func TestAddStampedDoesNotAllocate(t *testing.T) {
	a := New(Config{GaugeDeltas: true})
	a.SetSpan(100, 110)
	w := a.NewWriter()
	ms := []parser.Metric{
		stamped(counter("hits", 1, 1), 105),
		stamped(gauge("temp", 3, true), 105),
	}
	for i := range ms {
		if err := w.Add(&ms[i]); err != nil {
			t.Fatal(err)
		}
	}
	a.Roll(110, 120)
	cur := []parser.Metric{
		stamped(counter("hits", 1, 1), 115),
		stamped(gauge("temp", 3, true), 115),
		stamped(counter("hits", 1, 1), 99),  // late
		stamped(counter("hits", 1, 1), 130), // future
	}
	for i := range cur {
		if err := w.Add(&cur[i]); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range append(ms, cur...) {
		if n := testing.AllocsPerRun(200, func() { _ = w.Add(&m) }); n != 0 {
			t.Errorf("Add(%s |T%d) on an existing series: %v allocs, want 0", m.Name, m.Timestamp, n)
		}
	}
}

// TestTakeClosingDrains: the closing period's snapshot, read with Share
// and Drain as the flusher reads every period, yields each of its series
// once, those made before the Roll and those made in the grace.
func TestTakeClosingDrains(t *testing.T) {
	for _, shards := range []int{1, 64, 256} {
		t.Run(fmt.Sprint(shards, " shards"), func(t *testing.T) {
			a := New(Config{Shards: shards})
			a.SetSpan(100, 110)
			const n = 500
			for i := range n {
				addAll(t, a, counter(fmt.Sprintf("before.%d", i), 1, 1))
			}
			a.Roll(110, 120)
			for i := range n {
				addAll(t, a, stamped(counter(fmt.Sprintf("grace.%d", i), 1, 1), 105))
			}
			snap := a.TakeClosing()
			snap.Share(2)
			for range 2 {
				names := map[string]bool{}
				snap.Drain(func(s *Series) {
					if names[s.Name] {
						t.Errorf("%s walked twice", s.Name)
					}
					names[s.Name] = true
				})
				if len(names) != 2*n {
					t.Errorf("Drain walked %d series, want %d", len(names), 2*n)
				}
			}
		})
	}
}
