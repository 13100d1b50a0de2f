package flusher

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/libratod/libratod/aggregator"
	"github.com/libratod/libratod/internal/eventually"
	"github.com/libratod/libratod/librato"
	"github.com/libratod/libratod/parser"
)

// gatedRoller is an Aggregator that tells the test each span it is given
// and holds each TakeClosing until the test lets it pass (a value sent on
// hold, or hold closed): what a test adds between a Roll and the take
// lands in the closing period however slow the machine is.
//
// Its Stamped always reports a stamped line, so that Run keeps every
// period open for the grace whatever the test feeds and when
// (TestGraceOnlyWhileStamped tests the real one).
type gatedRoller struct {
	*aggregator.Aggregator
	spans  chan [2]int64 // SetSpan's and each Roll's new current span
	rolled chan struct{} // one value a Roll
	hold   chan struct{}
}

func (g *gatedRoller) Stamped() bool {
	g.Aggregator.Stamped()
	return true
}

func newGatedRoller(cfg aggregator.Config) *gatedRoller {
	return &gatedRoller{Aggregator: aggregator.New(cfg), spans: make(chan [2]int64, 100),
		rolled: make(chan struct{}, 100), hold: make(chan struct{})}
}

func (g *gatedRoller) SetSpan(start, end int64) {
	g.Aggregator.SetSpan(start, end)
	g.spans <- [2]int64{start, end}
}

func (g *gatedRoller) Roll(start, end int64) *aggregator.Snapshot {
	s := g.Aggregator.Roll(start, end)
	g.spans <- [2]int64{start, end}
	g.rolled <- struct{}{}
	return s
}

func (g *gatedRoller) TakeClosing() *aggregator.Snapshot {
	<-g.hold
	return g.Aggregator.TakeClosing()
}

func (g *gatedRoller) span(t *testing.T) [2]int64 {
	t.Helper()
	select {
	case s := <-g.spans:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("no span set within 10s")
	}
	return [2]int64{}
}

// feedStamped adds lines as feed does and returns where the stamped ones
// went.
func feedStamped(t *testing.T, a *aggregator.Aggregator, lines ...string) aggregator.Stamped {
	t.Helper()
	w := a.NewWriter()
	for _, line := range lines {
		ms, err := parser.Parse([]byte(line), nil)
		if err != nil {
			t.Fatalf("parse %q: %v", line, err)
		}
		for i := range ms {
			if err := w.Add(&ms[i]); err != nil {
				t.Fatalf("add %q: %v", line, err)
			}
		}
	}
	return w.Stamped()
}

// points returns the value of every measurement sent, by "name@time".
func points(s *fakeSender) map[string]float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]float64{}
	for _, b := range s.batches {
		for _, m := range b.Measurements {
			out[fmt.Sprintf("%s@%d", m.Name, b.Time)] += m.Value
		}
	}
	return out
}

// startRun runs f.Run until the stop it returns is called, which returns
// Run's result (and fails t if Run takes more than 10s to return).
func startRun(t *testing.T, f *Flusher) (stop func() Result) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	done := make(chan Result, 1)
	go func() { done <- f.Run(ctx) }()
	return func() Result {
		t.Helper()
		cancel()
		select {
		case res := <-done:
			return res
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return within 10s of the stop")
		}
		return Result{}
	}
}

// TestGraceLineLandsInItsPeriod: a line stamped in the period just ended,
// arriving within the grace, is sent in that period's point, with its
// time; once the period is taken, such a line is late and goes to the
// open period.
func TestGraceLineLandsInItsPeriod(t *testing.T) {
	g := newGatedRoller(aggregator.Config{})
	s := &fakeSender{got: make(chan struct{}, 10)}
	f := New(Config{API: librato.Tagged, Period: time.Second, TimestampGrace: 500 * time.Millisecond,
		Now: testClock()}, g, s)
	stop := startRun(t, f)
	g.span(t) // set by New
	first := g.span(t)
	feed(t, g.Aggregator, "cur:1|c")
	second := g.span(t) // rolled: the first period is closing
	b := second[0]
	if b != first[1] {
		t.Fatalf("spans %v then %v: want adjacent", first, second)
	}
	if st := feedStamped(t, g.Aggregator, fmt.Sprintf("x:1|c|T%d", b-1), "y:1|c"); st != (aggregator.Stamped{Closing: 1}) {
		t.Errorf("stamped %+v, want one in the closing period", st)
	}
	g.hold <- struct{}{} // the first period is taken and sent
	eventually.Require(t, 10*time.Second, func() bool { return points(s)[fmt.Sprintf("x@%d", first[0])] == 1 },
		"the closing period sent")
	if st := feedStamped(t, g.Aggregator, fmt.Sprintf("x:1|c|T%d", b-1)); st != (aggregator.Stamped{Late: 1}) {
		t.Errorf("after the take: stamped %+v, want one late", st)
	}
	close(g.hold)
	res := stop()
	want := map[string]float64{
		fmt.Sprintf("cur@%d", first[0]): 1,
		fmt.Sprintf("x@%d", first[0]):   1, // within the grace
		fmt.Sprintf("x@%d", b):          1, // late: the open period
		fmt.Sprintf("y@%d", b):          1,
	}
	got := points(s)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("points %v, want %v", got, want)
	}
	if res.Sent != res.Measurements || res.Pending != 0 {
		t.Errorf("result %+v: want every measurement sent", res)
	}
}

// TestGraceFirstPeriod: a line stamped before the first period's time
// (the restart rule: that is the process before's period, sent already)
// is late and goes to the first period, sent with its time.
func TestGraceFirstPeriod(t *testing.T) {
	g := newGatedRoller(aggregator.Config{})
	close(g.hold)
	s := &fakeSender{}
	f := New(Config{API: librato.Tagged, Period: time.Hour, TimestampGrace: time.Second,
		Now: testClock()}, g, s)
	stop := startRun(t, f)
	g.span(t) // set by New
	first := g.span(t)
	st := feedStamped(t, g.Aggregator, fmt.Sprintf("old:1|c|T%d", first[0]-1), fmt.Sprintf("new:1|c|T%d", first[0]))
	if st != (aggregator.Stamped{Late: 1, Current: 1}) {
		t.Errorf("stamped %+v, want one late and one current", st)
	}
	stop()
	got := points(s)
	for _, k := range []string{fmt.Sprintf("old@%d", first[0]), fmt.Sprintf("new@%d", first[0])} {
		if got[k] != 1 {
			t.Errorf("%s = %v, want 1 (all: %v)", k, got[k], got)
		}
	}
}

// TestGraceShutdownSendsBoth stops Run while a period is closing: it is
// sent with its own time, and the open one with its own, both counted as
// the open period is.
func TestGraceShutdownSendsBoth(t *testing.T) {
	g := newGatedRoller(aggregator.Config{})
	s := &fakeSender{}
	f := New(Config{API: librato.Tagged, Period: time.Second, TimestampGrace: time.Second,
		Now: testClock()}, g, s)
	stop := startRun(t, f)
	g.span(t) // set by New
	first := g.span(t)
	second := g.span(t)
	feed(t, g.Aggregator, fmt.Sprintf("x:1|c|T%d", first[1]-1), "y:1|c")
	close(g.hold)
	res := stop() // within the grace of a second
	got := points(s)
	if x, y := got[fmt.Sprintf("x@%d", first[0])], got[fmt.Sprintf("y@%d", second[0])]; x != 1 || y != 1 || len(got) != 2 {
		t.Errorf("points %v, want x at %d and y at %d", got, first[0], second[0])
	}
	if res.Series != 2 || res.Measurements-res.Carried != 2 || res.Sent != res.Measurements || res.Pending != 0 {
		t.Errorf("result %+v: want both periods' measurements counted and sent", res)
	}
}

// TestGraceSpool: a closing period that cannot be delivered is spooled
// with its own time, and delivered with it by the next process.
func TestGraceSpool(t *testing.T) {
	dir := t.TempDir()
	sp := openSpool(t, dir)
	g := newGatedRoller(aggregator.Config{})
	s := &scripted{answer: func(int, *librato.Batch) error { return down }}
	cfg := fastConfig(newMetrics(t))
	cfg.Spool, cfg.Period, cfg.TimestampGrace = sp, time.Second, 500*time.Millisecond
	cfg.ShutdownTimeout = 200 * time.Millisecond
	f := New(cfg, g, s)
	stop := startRun(t, f)
	g.span(t) // set by New
	first := g.span(t)
	g.span(t)
	feed(t, g.Aggregator, fmt.Sprintf("x:1|c|T%d", first[1]-1))
	close(g.hold)
	eventually.Require(t, 10*time.Second, func() bool { return sp.Stats().Pending.Measurements >= 1 },
		"the closing period spooled")
	stop()
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}

	good := &scripted{}
	cfg.Spool, cfg.Metrics = openSpool(t, dir), newMetrics(t)
	f2 := New(cfg, aggregator.New(aggregator.Config{}), good)
	ctx2, cancel2 := context.WithCancel(context.Background())
	cancel2()
	f2.Run(ctx2) // stopped at once: the shutdown drains the spool
	if got := arrivals(good); got[fmt.Sprintf("x@%d", first[0])] != 1 {
		t.Errorf("arrivals %v, want x once at %d", got, first[0])
	}
}

// timedRoller is an Aggregator that reports, for each period Run rolls,
// when it was taken: after the Roll (which may itself come late, on a busy
// machine) and after the period's end.
type timedRoller struct {
	*aggregator.Aggregator
	now    func() time.Time
	rolled time.Time // when the last Roll came
	end    time.Time // the end of the period the last Roll closed
	spans  chan [2]int64
	took   chan took // one value a period
}

type took struct{ afterRoll, afterEnd time.Duration }

func (r *timedRoller) SetSpan(start, end int64) {
	r.Aggregator.SetSpan(start, end)
	r.spans <- [2]int64{start, end}
}

func (r *timedRoller) Roll(start, end int64) *aggregator.Snapshot {
	r.rolled, r.end = r.now(), time.Unix(start, 0)
	return r.Aggregator.Roll(start, end)
}

func (r *timedRoller) TakeClosing() *aggregator.Snapshot {
	now := r.now()
	r.took <- took{afterRoll: now.Sub(r.rolled), afterEnd: now.Sub(r.end)}
	return r.Aggregator.TakeClosing()
}

// TestGraceOnlyWhileStamped: a period is kept open for the grace only
// once a line stamped with a time was added, and again at once an hour
// (graceIdle) after the last one.
func TestGraceOnlyWhileStamped(t *testing.T) {
	clock := testClock()
	r := &timedRoller{Aggregator: aggregator.New(aggregator.Config{}), now: clock,
		spans: make(chan [2]int64, 2), took: make(chan took, 100)}
	f := New(Config{API: librato.Tagged, Period: time.Second, TimestampGrace: time.Second,
		Now: clock}, r, &fakeSender{})
	f.graceIdle = 3 * time.Second
	stop := startRun(t, f)
	first := <-r.spans
	next := func() took {
		t.Helper()
		select {
		case tk := <-r.took:
			return tk
		case <-time.After(10 * time.Second):
			t.Fatal("no period taken within 10s")
		}
		return took{}
	}
	// No stamped line: taken as it is rolled, at its end.
	if tk := next(); tk.afterRoll >= time.Second/2 {
		t.Errorf("no |T line yet: period taken %v after it was rolled, want at once", tk.afterRoll)
	}
	feedStamped(t, r.Aggregator, fmt.Sprintf("x:1|c|T%d", first[0]))
	// The period that saw the stamped line (or the one after it, should
	// the line have been added just after a boundary) waits the grace.
	t1, t2 := next(), next()
	if max(t1.afterEnd, t2.afterEnd) < time.Second {
		t.Errorf("after a |T line: periods taken %v and %v after their end, want one a grace (1s) later", t1.afterEnd, t2.afterEnd)
	}
	// graceIdle (3 s here) after the last stamped line: at once again.
	var last took
	for range 6 {
		last = next()
	}
	if last.afterRoll >= time.Second/2 {
		t.Errorf("%v after the last |T line: period taken %v after it was rolled, want at once", f.graceIdle, last.afterRoll)
	}
	stop()
}
