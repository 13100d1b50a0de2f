package flusher

import (
	"sync"

	"github.com/libratod/libratod/aggregator"
	"github.com/libratod/libratod/otlp"
)

// cumulative holds what cumulative temporality needs of each series from
// one period to the next: its start time and running totals. It is
// bounded: past limit series, a new series is sent as a reset (its own
// period as its start) and counted in overflow. A series unseen for
// cumulativeTTL periods is forgotten; if it comes back it starts again
// (a reset that backends take as such).
type cumulative struct {
	mu       sync.Mutex
	limit    int
	period   int
	m        map[string]*cumState
	overflow int64
}

// cumState is one series' running state.
type cumState struct {
	start     int64   // unix nanoseconds; never moves while the series lives
	total     float64 // counter: running total; timer: weighted count
	monotonic bool    // counter: no delta so far was negative
	seen      int     // the period it was last seen in
	// Timers: running sum, extremes, and unweighted bucket counts at
	// otlp.HistogramScale.
	sum, min, max float64
	pos, neg      map[int32]uint64
	zero          uint64
}

// cumulativeTTL is how many periods a series' state survives unseen.
const cumulativeTTL = 8640

func newCumulative(limit int) *cumulative {
	if limit <= 0 {
		limit = 1_000_000
	}
	return &cumulative{limit: limit, m: make(map[string]*cumState)}
}

// counts returns the series kept and the resets counted since the last
// call, which it clears.
func (c *cumulative) counts() (series int, resets int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	resets, c.overflow = c.overflow, 0
	return len(c.m), resets
}

// beginPeriod starts a period, forgetting once in a while the series
// unseen for cumulativeTTL periods.
func (c *cumulative) beginPeriod() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.period++
	if c.period%360 == 0 {
		for k, st := range c.m {
			if c.period-st.seen > cumulativeTTL {
				delete(c.m, k)
			}
		}
	}
}

// state returns the state of key, made with start when new; a state not
// kept (the bound is reached) when kept is false.
func (c *cumulative) state(key []byte, start int64) (st *cumState, kept bool) {
	if st = c.m[string(key)]; st != nil {
		st.seen = c.period
		return st, true
	}
	st = &cumState{start: start, monotonic: true, seen: c.period}
	if len(c.m) >= c.limit {
		c.overflow++
		return st, false
	}
	c.m[string(key)] = st
	return st, true
}

// counter adds a period's delta v to the counter key and returns its
// state after.
func (c *cumulative) counter(key []byte, start int64, v float64) cumState {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, _ := c.state(key, start)
	st.total += v
	st.monotonic = st.monotonic && v >= 0
	return *st
}

// histogram adds a period's timer values (unweighted: sr's Values, or the
// buckets of its sketch past aggregate.max_timer_samples) and their
// weighted count, sum and extremes to the timer key and returns its state
// after. The returned state shares its bucket maps with the kept one: the
// caller reads them before the next call.
func (c *cumulative) histogram(key []byte, start int64, sr *aggregator.Series, count, sum, lo, hi float64) cumState {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, _ := c.state(key, start)
	if st.pos == nil {
		st.pos, st.neg = map[int32]uint64{}, map[int32]uint64{}
		st.min, st.max = lo, hi
	}
	st.total += count
	st.sum += sum
	st.min, st.max = min(st.min, lo), max(st.max, hi)
	if !sr.PercentilesExact() {
		st.zero += sr.EachBucket(func(i int32, neg bool, n uint64) {
			if neg {
				st.neg[i] += n
			} else {
				st.pos[i] += n
			}
		})
	}
	for _, v := range sr.Values {
		switch {
		case v > 0:
			st.pos[otlp.BucketIndex(v)]++
		case v < 0:
			st.neg[otlp.BucketIndex(-v)]++
		default:
			st.zero++
		}
	}
	return *st
}
