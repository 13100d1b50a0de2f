package aggregator

import "sync/atomic"

// spans are the time spans, in unix seconds [start, end), of the open
// periods, by which a line stamped with a DogStatsD "|T" timestamp finds
// its period. Every field but closingLive changes only with every shard
// locked, so that under one shard's lock they are exact.
type spans struct {
	set         bool     // SetSpan or Roll was called: lines are routed
	cur         [2]int64 // the current period's span
	closing     [2]int64 // the closing period's span, while closingOpen
	closingOpen bool
	// closingLive counts the series of the closing period, as live does
	// those of the current one, against Config.MaxSeries.
	closingLive atomic.Int64
	// seen is set when a Writer routes a stamped metric; see Stamped.
	seen atomic.Bool
}

// Stamped counts the metrics with a DogStatsD "|T" timestamp a Writer
// added (or tried to add), by the period they went to.
type Stamped struct {
	// Current counts those whose time lies in the current period's span.
	Current int
	// Closing counts those whose time lies in the closing period's span,
	// which went to that period (see Aggregator.Roll).
	Closing int
	// Late counts those whose time lies before every open period's span;
	// they went to the current period.
	Late int
	// Future counts those whose time lies at or after the current
	// period's end; they went to the current period.
	Future int
}

// Stamped returns the metrics with a "|T" timestamp added since the last
// call, by the period they went to, and starts counting again. Before
// the Aggregator's first SetSpan or Roll no metric is counted: every one
// goes to the current period.
func (w *Writer) Stamped() Stamped {
	s := w.stamped
	w.stamped = Stamped{}
	return s
}

// Stamped reports whether a metric stamped with "|T" was routed by its
// time since the last call (lines are routed once SetSpan or Roll was
// called), and starts watching again: a flusher keeps each period open
// for such lines only while clients send them.
func (a *Aggregator) Stamped() bool {
	return a.spans.seen.Swap(false)
}

// SetSpan sets the span, in unix seconds [start, end), of the current
// period, by which lines stamped with "|T" are routed: a time before
// start is late, at or after end is in the future; both go to the current
// period all the same, and are counted (see Writer.Stamped).
func (a *Aggregator) SetSpan(start, end int64) {
	a.snapMu.Lock()
	defer a.snapMu.Unlock()
	a.lockAll()
	a.spans.set = true
	a.spans.cur = [2]int64{start, end}
	a.unlockAll()
}

// Roll ends the current period, which becomes the closing period, and
// starts a new, empty current period of span [start, end) in unix
// seconds. Until TakeClosing, the closing period still takes the lines
// whose "|T" time lies in its span (that of the period just ended, as
// set by SetSpan or the Roll before): a client's last lines of a period
// reach that period though they arrive after its end. Lines without a
// timestamp go to the current period. Config.MaxSeries bounds each period
// on its own.
//
// With gauge deltas, a delta on a gauge new to the current period starts
// from the gauge's value in the closing period when it is there, as it
// is at that instant.
//
// The counter sums the Writers hold of the period that ends join it as
// Snapshot's do: Roll waits for each Writer's run of Adds to end, so a
// goroutine must not call Roll inside a run.
//
// A closing period still open (no TakeClosing since the last Roll), or
// taken by Snapshot and not yet returned, is returned; otherwise Roll
// returns nil.
func (a *Aggregator) Roll(start, end int64) *Snapshot {
	a.snapMu.Lock()
	defer a.snapMu.Unlock()
	var prev *Snapshot
	if a.spans.closingOpen || a.pending != nil {
		prev = a.takeClosing()
	}
	a.lockAll()
	// With every shard locked no reservation is pending.
	a.spans.closingLive.Store(a.live.Load())
	a.live.Store(0)
	a.spans.closing = a.spans.cur
	a.spans.closingOpen = true
	a.spans.cur = [2]int64{start, end}
	a.spans.set = true
	a.gen++
	a.genNow.Store(a.gen)
	a.unlockAll()
	a.publishWriters()
	return prev
}

// TakeClosing ends the closing period (see Roll) and returns its series;
// the snapshot is empty when no closing period is open. From then on a
// line stamped in its span is late. With gauge deltas, the period's gauge
// values are recorded as Snapshot records them.
func (a *Aggregator) TakeClosing() *Snapshot {
	a.snapMu.Lock()
	defer a.snapMu.Unlock()
	return a.takeClosing()
}

// takeClosing is TakeClosing, called with snapMu held.
func (a *Aggregator) takeClosing() *Snapshot {
	if p := a.pending; p != nil {
		a.pending = nil
		return p
	}
	if !a.spans.closingOpen {
		return a.newSnapshot()
	}
	a.lockAll()
	a.spans.closingOpen = false
	a.spans.closingLive.Store(0)
	a.unlockAll()
	return a.taken(a.take(a.gen-1, a.gen))
}

func (a *Aggregator) lockAll() {
	for i := range a.shards {
		a.shards[i].mu.Lock()
	}
}

func (a *Aggregator) unlockAll() {
	for i := range a.shards {
		a.shards[i].mu.Unlock()
	}
}

// route counts a metric stamped at ts (unix seconds) by the period its
// time lies in, and reports whether it goes to the closing period. It is
// called with a shard locked.
func (w *Writer) route(ts int64) bool {
	sp := &w.a.spans
	if !sp.seen.Load() { // a read shared by every core; a write once
		sp.seen.Store(true)
	}
	switch {
	case sp.closingOpen && ts >= sp.closing[0] && ts < sp.closing[1]:
		w.stamped.Closing++
		return true
	case ts >= sp.cur[1]:
		w.stamped.Future++
	case ts >= sp.cur[0]:
		w.stamped.Current++
	default:
		w.stamped.Late++
	}
	return false
}

// deltaBase returns the value a gauge delta on e starts from, a gauge
// with no value yet in period g: its value in the period before g while
// the entry's other slot holds it (that period closing, or just taken),
// else its last flushed value, else 0. It is called with sh, the entry's
// shard, locked.
func (a *Aggregator) deltaBase(sh *shard, e *numEntry, g uint32) float64 {
	if o := g&1 ^ 1; e.gen[o] == g-1 {
		return e.v[o]
	}
	sh.baseMu.Lock()
	defer sh.baseMu.Unlock()
	return sh.base[sh.keys.at(e.off, e.n)].value
}
