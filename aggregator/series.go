package aggregator

import (
	"math"
	"sync/atomic"
)

// Snapshot holds the series of one finished period. It belongs to whoever
// took it; the Aggregator no longer touches it.
type Snapshot struct {
	// By shard: the counters and gauges, and the timers and sets.
	nums [][]numRec
	objs [][]*Series
	n    int
	// per is the number of shards in a part, what Drain releases at once
	// (see releaseParts); pending counts, by part, the Drains yet to walk
	// it (nil until Share).
	per     int
	pending []atomic.Int32
}

// numRec is a counter's or gauge's value in a Snapshot.
type numRec struct {
	key string
	v   float64
}

// Len returns the number of series in the snapshot.
func (s *Snapshot) Len() int { return s.n }

// Each calls fn for every series in the snapshot, in no particular order.
// The Series of a counter or gauge is lent to fn for the call only (the
// next one reuses it): fn must copy what it keeps. A timer's or set's is
// the snapshot's own.
func (s *Snapshot) Each(fn func(*Series)) {
	view := new(Series)
	for i := range s.nums {
		s.eachOf(i, view, fn)
	}
}

// eachOf calls fn for every series of shard i, lending view to each
// counter and gauge.
func (s *Snapshot) eachOf(i int, view *Series, fn func(*Series)) {
	for _, r := range s.nums[i] {
		*view = Series{Name: keyName(r.key), Kind: Kind(r.key[0]), Value: r.v, key: r.key}
		fn(view)
	}
	for _, x := range s.objs[i] {
		fn(x)
	}
}

// Share declares that the snapshot will be read by n Drains (n >= 1), the
// last reads of it: once all of them have walked a part of the snapshot,
// that part's series are dropped from it, so that their memory can be
// reclaimed while the rest is still being read. It must be called before
// any Drain, once. Without it, Drain is Each.
func (s *Snapshot) Share(n int) {
	s.pending = make([]atomic.Int32, len(s.nums)/max(s.per, 1))
	for i := range s.pending {
		s.pending[i].Store(int32(n))
	}
}

// Drain calls fn for every series in the snapshot, as Each, part by part,
// and drops each part the last of the Drains declared by Share has walked.
// Drains may run at once; fn must not keep a series past the Drain's end
// (what it points to stays valid, but the snapshot no longer holds it).
// After the last Drain, Each walks nothing, and Len is unchanged.
func (s *Snapshot) Drain(fn func(*Series)) {
	if s.pending == nil {
		s.Each(fn)
		return
	}
	view := new(Series)
	for p := range s.pending {
		for i := p * s.per; i < (p+1)*s.per; i++ {
			s.eachOf(i, view, fn)
		}
		// The last Drain out of a part drops it: the others have done
		// reading it (the atomic orders their reads before this).
		if s.pending[p].Add(-1) == 0 {
			for i := p * s.per; i < (p+1)*s.per; i++ {
				s.nums[i], s.objs[i] = nil, nil
			}
		}
	}
}

// SortValues sorts the Values of every timer, as Percentiles would: the
// snapshot's series can then be read by several goroutines at once, which
// Percentiles, sorting in place, would not allow.
func (s *Snapshot) SortValues() {
	for _, objs := range s.objs {
		for _, x := range objs {
			if x.TimerStats != nil && !x.sorted {
				sortFloats(x.Values)
				x.sorted = true
			}
		}
	}
}

// Tag is one tag of a series.
type Tag struct {
	Name, Value string
}

// Series is one metric name with one tag set over one period.
type Series struct {
	// Name is the metric name as received, or as Config.Sanitizer
	// cleaned it.
	Name string
	// Kind is the series kind.
	Kind Kind
	// Value is the sum of value/rate for a counter and the last value for a
	// gauge.
	Value float64
	// TimerStats holds a timer's statistics; nil for other kinds, so that
	// counter and gauge series stay small.
	*TimerStats

	// x holds what only sets and estimating timers need, so that counter
	// and gauge series stay small.
	x   *extra
	key string
}

// TimerStats are the statistics of a timer series over one period. Each
// value counts 1/rate times (its weight); see also Series.Mean and
// Series.Variance.
type TimerStats struct {
	// Count is the number of timer values, each weighted by 1/rate.
	Count float64
	// Sum is the weighted sum of the timer values.
	Sum float64
	// Min, Max and Last are the smallest, largest and last timer values.
	Min, Max, Last float64
	// Values are the timer values as received, unweighted, in arrival
	// order, while there are at most Config.MaxTimerSamples of them. Past
	// that bound the values are in a sketch and Values is nil (see
	// PercentilesExact).
	Values []float64

	// While every value is in Values with the same weight w0, the
	// variance comes from them; once not (running), from mean and m2, the
	// running weighted mean and sum of squared deviations.
	w0       float64
	running  bool
	mean, m2 float64
	// sorted: Values are sorted (by Percentiles or SortValues).
	sorted bool
}

// startRunning sets the running mean and sum of squared deviations from
// Values, all of weight w0, exactly.
func (t *TimerStats) startRunning() {
	t.running = true
	if len(t.Values) == 0 {
		return
	}
	var v float64
	t.mean, v = meanVariance(t.Values)
	t.m2 = v * t.Count
}

// Mean returns the weighted mean of a timer's values, Sum/Count kept
// within [Min, Max] against rounding; 0 for other kinds or no values.
func (s *Series) Mean() float64 {
	if s.TimerStats == nil || s.Count == 0 {
		return 0
	}
	return min(max(s.Sum/s.Count, s.Min), s.Max)
}

// Variance returns the population variance of a timer's values, each
// weighted by 1/rate: sum(w*(v-mean)^2)/sum(w). While every value is kept
// (PercentilesExact) and all came with the same rate it is computed
// exactly from them, in two passes; otherwise it comes from a running
// (West's weighted Welford) update, which does not lose precision to
// cancellation as sum(w*v^2)/sum(w)-mean^2 does. 0 for other kinds.
func (s *Series) Variance() float64 {
	if s.TimerStats == nil || s.Count == 0 {
		return 0
	}
	if !s.running {
		_, v := meanVariance(s.Values)
		return v
	}
	return max(s.m2/s.Count, 0)
}

// meanVariance returns the mean and population variance of vals (not
// empty), by the corrected two-pass algorithm.
func meanVariance(vals []float64) (mean, variance float64) {
	n := float64(len(vals))
	var sum float64
	for _, v := range vals {
		sum += v
	}
	mean = sum / n
	var sq, dev float64
	for _, v := range vals {
		d := v - mean
		sq += d * d
		dev += d
	}
	return mean, max((sq-dev*dev/n)/n, 0)
}

// Key returns the series' identity: its kind, name and tags, in a form
// of their own. Two series of one snapshot never share a key; a series
// has the same key in every period.
func (s *Series) Key() string { return s.key }

// Tags returns the series' tags, sorted by name, one per name (the last
// one written on the line wins). A bare DogStatsD tag has Value "" (with
// Config.Sanitizer, the value it makes of an empty one).
func (s *Series) Tags() []Tag { return s.AppendTags(nil) }

// AppendTags appends the series' tags (see Tags) to dst. The strings share
// the series' memory: it does not allocate but to grow dst.
func (s *Series) AppendTags(dst []Tag) []Tag { return appendKeyTags(dst, s.key) }

// extra is the part of a Series that only some series need.
type extra struct {
	sketch  *sketch             // timer values past MaxTimerSamples
	members map[uint64]struct{} // set member hashes, up to MaxSetMembers
	hll     *hll                // set members past MaxSetMembers
}

// Cardinality returns the number of distinct members of a set: exact up to
// Config.MaxSetMembers, a HyperLogLog estimate past it (see
// CardinalityExact).
func (s *Series) Cardinality() int {
	switch {
	case s.x == nil:
		return 0
	case s.x.hll != nil:
		return int(math.Round(s.x.hll.estimate()))
	}
	return len(s.x.members)
}

// CardinalityExact reports whether Cardinality is exact: false for a set
// that received more than Config.MaxSetMembers distinct members.
func (s *Series) CardinalityExact() bool { return s.x == nil || s.x.hll == nil }

// PercentilesExact reports whether Percentiles are exact: false for a timer
// that received more than Config.MaxTimerSamples values.
func (s *Series) PercentilesExact() bool { return s.x == nil || s.x.sketch == nil }

// EachBucket calls fn for each non-empty bucket of a timer's sketch (when
// PercentilesExact is false; otherwise it does nothing and returns 0), in
// increasing order of index, positive values' buckets first, and returns
// the number of zero values. A bucket of the given index holds the values
// whose magnitude is in (2^(index/64), 2^((index+1)/64)] (the bucket of
// that index at OTLP scale SketchScale), of negative values when negative
// is set; count is how many values it holds, unweighted (the sample rates
// scale Count, not the buckets). The buckets add up, with the zeros, to
// the number of values received. Values far below the largest of their
// sign are counted in the lowest kept bucket (see Percentiles).
func (s *Series) EachBucket(fn func(index int32, negative bool, count uint64)) (zero uint64) {
	if s.PercentilesExact() {
		return 0
	}
	k := s.x.sketch
	for _, st := range [...]struct {
		s   *store
		neg bool
	}{{&k.pos, false}, {&k.neg, true}} {
		for j, c := range st.s.counts {
			if c > 0 {
				// Sketch bucket i is (γ^(i-1), γ^i]: OTLP's i-1.
				fn(int32(st.s.offset+j-1), st.neg, c)
			}
		}
	}
	return k.zero
}

// samples returns the number of timer values received, unweighted.
func (s *Series) samples() int {
	if s.TimerStats == nil {
		return 0
	}
	if !s.PercentilesExact() {
		return int(s.x.sketch.count())
	}
	return len(s.Values)
}

// Percentile describes the lowest k = round(p/100*n) of a timer's n values
// (unweighted), as Etsy StatsD computes its upper_p, sum_p and count_p:
// their number, sum, sum of squares, population variance, smallest and
// largest.
type Percentile struct {
	Count           int
	Sum, SumSquares float64
	Variance        float64
	Min, Max        float64
}

// Percentiles computes, for each p in ps (0 < p < 100), the Percentile of
// the series' n values (unweighted), sorting Values in place. ok[i] is
// false when round(p/100*n) is 0. out and ok are appended to and returned.
//
// Past Config.MaxTimerSamples values (PercentilesExact is false) the
// results come from the sketch: Count is exact, Min is the exact smallest
// value, Max (the p-th percentile) is within ±0.55% (α = 0.5415%) of the
// true k-th value, and Sum is within α of the true sum of the lowest k
// values (α of the sum of their absolute values when signs are mixed),
// SumSquares within 1.09%; Variance is derived from those two (an
// estimate, which can lose precision to cancellation when the values are
// large and close). Values more than 9.6 decades (2^32) below the largest
// of their sign lose that bound (see the sketch).
func (s *Series) Percentiles(ps []float64, out []Percentile, ok []bool) ([]Percentile, []bool) {
	if s.TimerStats == nil {
		for range ps {
			out, ok = append(out, Percentile{}), append(ok, false)
		}
		return out, ok
	}
	if !s.PercentilesExact() {
		return s.estimatePercentiles(ps, out, ok)
	}
	vals := s.Values
	if !s.sorted {
		sortFloats(vals)
		s.sorted = true
	}
	n := len(vals)
	for _, p := range ps {
		k := int(math.Round(p / 100 * float64(n)))
		if k > n {
			k = n
		}
		if k <= 0 {
			out = append(out, Percentile{})
			ok = append(ok, false)
			continue
		}
		var sum, sq float64
		for _, v := range vals[:k] {
			sum += v
			sq += v * v
		}
		out = append(out, Percentile{Count: k, Sum: sum, SumSquares: sq, Variance: variance(vals[:k]), Min: vals[0], Max: vals[k-1]})
		ok = append(ok, true)
	}
	return out, ok
}

// estimatePercentiles is Percentiles from the sketch.
func (s *Series) estimatePercentiles(ps []float64, out []Percentile, ok []bool) ([]Percentile, []bool) {
	k := s.x.sketch
	n := k.count()
	for _, p := range ps {
		r := uint64(max(math.Round(p/100*float64(n)), 0))
		if r > n {
			r = n
		}
		if r == 0 {
			out = append(out, Percentile{})
			ok = append(ok, false)
			continue
		}
		sum, sq, kth := k.lowest(r)
		// The true r-th value lies in [Min, Max]; clamping only helps.
		kth = min(max(kth, s.Min), s.Max)
		if r == n {
			kth = s.Max
		}
		mean := sum / float64(r)
		out = append(out, Percentile{Count: int(r), Sum: sum, SumSquares: sq,
			Variance: max(sq/float64(r)-mean*mean, 0), Min: s.Min, Max: kth})
		ok = append(ok, true)
	}
	return out, ok
}

// variance returns the population variance of vals (not empty).
func variance(vals []float64) float64 {
	_, v := meanVariance(vals)
	return v
}
