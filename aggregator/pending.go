package aggregator

import (
	"math"
	"sync"
)

// A Writer sums the counter lines of a series it has already added to in
// the current period in its key cache, without the series' shard: the
// sum is pending. Two Writers that add to the same counters (two UDP
// readers) so no longer pass the shard's mutex and the entry between
// their cores for every line. A period's pending sums are published into
// the entries when the period ends: Snapshot and Roll, once they have
// changed the period's number, lock each Writer in turn (see Begin) and
// add what it holds of the period that ended, before that period is
// taken. So a line is still in exactly one period: the one current when
// its Writer's run of Adds began.
//
// A sum is only pending in a series whose entry already holds a value of
// its period (the Writer's first line of the series in the period took
// the shard's lock, reserved the series against Config.MaxSeries, and
// made the value), so publishing it never makes a series, and it never
// overflows: a pending sum stays within maxPending, and the largest
// finite float64 plus that rounds to itself.

// maxPendingLine is the largest magnitude of a counter line's weighted
// value that a Writer sums apart; a larger one is added to its series at
// once, where ErrOverflow is found.
const maxPendingLine = 0x1p512

// maxPending bounds the magnitude of a pending sum (see above): far
// below half a unit in the last place of the largest float64 (2^970).
const maxPending = 0x1p600

// writers is the set of an Aggregator's Writers, for a period's end to
// publish what they hold.
type writers struct {
	mu   sync.Mutex
	all  map[*Writer]struct{}
	list []*Writer // scratch of publishWriters, under the Aggregator's snapMu
}

// register adds w to the Writers a period's end publishes.
func (ws *writers) register(w *Writer) {
	ws.mu.Lock()
	if ws.all == nil {
		ws.all = make(map[*Writer]struct{})
	}
	ws.all[w] = struct{}{}
	ws.mu.Unlock()
}

// unregister removes w.
func (ws *writers) unregister(w *Writer) {
	ws.mu.Lock()
	delete(ws.all, w)
	ws.mu.Unlock()
}

// Begin starts a run of Adds by w, which ends with End: a Snapshot or Roll
// that ends the period waits for the run to end, and the run's lines go
// to the period current when it began (or, a line stamped with "|T", to
// the period of its time). An Add outside such a run is a run of its own.
// A run should be short: a datagram's or a read's lines.
func (w *Writer) Begin() {
	w.mu.Lock()
	w.gen = w.a.genNow.Load()
	w.inRun = true
}

// End ends the run of Adds that Begin started.
func (w *Writer) End() {
	w.inRun = false
	w.mu.Unlock()
}

// Close publishes what w holds into the current period and detaches w
// from its Aggregator; w must not be used again. A Writer that is never
// closed stays attached, and every period's end publishes what it holds.
func (w *Writer) Close() {
	w.mu.Lock()
	w.publishAll(w.a.genNow.Load() + 1)
	w.mu.Unlock()
	w.a.writers.unregister(w)
}

// addPending sums x, a counter line's weighted value, into ce, the cache
// entry of its series, when the series holds a value of the run's period
// already, and reports whether it did; otherwise the caller adds the line
// to its series. It is called in a run (w.mu held).
func (w *Writer) addPending(ce *keyCacheEntry, x float64) bool {
	if ce.pendGen != w.gen {
		return false
	}
	v := ce.pend + x
	if !(math.Abs(x) <= maxPendingLine && math.Abs(v) <= maxPending) { // NaN too
		return false
	}
	ce.pend = v
	if !ce.dirty {
		ce.dirty = true
		w.dirty = append(w.dirty, ce)
	}
	return true
}

// publish adds ce's pending sum to its series' value of the period the
// sum belongs to, and clears it. It is called with w.mu held and with sh,
// the series' shard, locked.
func (w *Writer) publish(sh *shard, ce *keyCacheEntry) {
	g := ce.pendGen
	num, _ := ce.at.entry(sh)
	if num == nil {
		if r, ok := sh.lookup(ce.hash, ce.key); ok && r&objRef == 0 {
			num, _ = ce.at.remember(sh, r)
		}
	}
	if slot := g & 1; num != nil && num.gen[slot] == g {
		num.v[slot] += ce.pend
	} else {
		// Not reached: the entry holds a value of g until g is taken,
		// which is after this Writer's publishAll of g.
		w.a.strays.Add(1)
	}
	ce.pend = 0
}

// publishNow publishes ce's pending sum, locking its shard. It is called
// with w.mu held.
func (w *Writer) publishNow(ce *keyCacheEntry) {
	sh := w.a.shardOf(ce.hash)
	sh.mu.Lock()
	w.publish(sh, ce)
	sh.mu.Unlock()
}

// publishAll publishes every pending sum of a period before now, and
// keeps the others. It is called with w.mu held.
func (w *Writer) publishAll(now uint32) {
	kept := w.dirty[:0]
	for _, ce := range w.dirty {
		if ce.pendGen >= now && ce.pend != 0 {
			kept = append(kept, ce)
			continue
		}
		if ce.pend != 0 {
			w.publishNow(ce)
		}
		ce.dirty = false
	}
	clear(w.dirty[len(kept):])
	w.dirty = kept
}

// publishWriters publishes every Writer's pending sums of the periods
// before the current one, waiting for each Writer's run of Adds to end.
// It is called with snapMu held, after the period's number changed.
func (a *Aggregator) publishWriters() {
	ws := &a.writers
	ws.mu.Lock()
	list := ws.list[:0]
	for w := range ws.all {
		list = append(list, w)
	}
	ws.mu.Unlock()
	now := a.genNow.Load()
	for _, w := range list {
		w.mu.Lock()
		w.publishAll(now)
		w.mu.Unlock()
	}
	clear(list)
	ws.list = list[:0]
}
