// Package exposition serves the aggregated StatsD series to Prometheus, the
// way statsd_exporter does.
//
// A Store is a flusher.Observer: at the end of every period it folds the
// period's series into Prometheus series, which its ServeHTTP writes in the
// text exposition format 0.0.4:
//
//   - a counter is a Prometheus counter, the running total of value/rate
//     over every period since the series appeared (a period whose sum is
//     negative is dropped, since a counter cannot go down);
//   - a gauge is a gauge holding its last value;
//   - a set is a gauge holding the last period's number of distinct members;
//   - a timer (ms, h, d) is a summary, whose quantiles are those of the
//     last period that had values and whose _sum and _count run over every
//     period, or a histogram with fixed buckets, all cumulative.
//
// StatsD tags become labels, and the constant labels are added to every
// series (a tag of the same name wins). Names are sanitized to Prometheus'
// character sets. A metric name is owned by the StatsD type that used it
// first: a series of another type with that name, or with a name that would
// collide with a summary's or histogram's _sum, _count or _bucket lines, is
// dropped and counted. The series are bounded by Config.MaxSeries and expire
// Config.Expire after their last period.
package exposition

import (
	"bytes"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/libratod/libratod/aggregator"
)

// defaultBuckets are the histogram bucket bounds used when Config.Buckets
// is empty: Prometheus' default buckets (5 ms to 10 s) in milliseconds, the
// unit of StatsD timers. A constant table.
var defaultBuckets = [...]float64{5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000}

// Config configures a Store.
type Config struct {
	// Percentiles are the quantiles of timer summaries, in percent, each in
	// (0,100]; others are ignored.
	Percentiles []float64
	// Histogram exposes timers as histograms with Buckets rather than as
	// summaries.
	Histogram bool
	// Buckets are the upper bounds of the histogram buckets, in the unit
	// of the values received (milliseconds for StatsD timers), whatever
	// TimerUnitSeconds says. They are sorted; duplicates and infinities
	// are dropped (the +Inf bucket is always there). Empty means
	// Prometheus' default buckets in milliseconds: 5, 10, 25, 50, 100,
	// 250, 500, 1000, 2500, 5000 and 10000.
	Buckets []float64
	// TimerUnitSeconds divides every timer value by 1000 on exposition
	// (quantiles, sums and bucket bounds), turning StatsD milliseconds
	// into Prometheus' seconds. The names are not changed.
	TimerUnitSeconds bool
	// Prefix is prepended, with a ".", to every metric name before it is
	// sanitized; "" for none.
	Prefix string
	// Labels are added to every series, unless the series has a tag of
	// the same name (after sanitizing).
	Labels map[string]string
	// MaxSeries bounds the series held; a new series past it is dropped
	// and counted. 0 means no bound.
	MaxSeries int
	// Expire drops a series that has not received data for this long. 0
	// means never.
	Expire time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// The reasons a series' data is dropped, the values of the reason label
// of libratod_prometheus_series_dropped_total.
const (
	ReasonMaxSeries       = "max_series"       // a new series past Config.MaxSeries
	ReasonTypeClash       = "type_clash"       // its name is already used by another type
	ReasonNegativeCounter = "negative_counter" // a counter's period sum was negative
)

// reasons lists the drop reasons, in the order of Store.dropped.
var reasons = [...]string{ReasonMaxSeries, ReasonTypeClash, ReasonNegativeCounter}

const (
	dropMaxSeries = iota
	dropTypeClash
	dropNegativeCounter
)

// Store holds the Prometheus series built from the StatsD periods. It is
// safe for concurrent use.
type Store struct {
	// Settings, fixed by New.
	qText     []string  // `quantile="0.9"`, per percentile of pctIn
	histogram bool      // timers are histograms, not summaries
	buckets   []float64 // histogram bounds, in the unit received
	leText    []string  // `le="5"`, per bucket
	suffixes  []string  // of the lines of a timer: "_sum", "_count" and, for histograms, "_bucket"
	divisor   float64   // 1000 with TimerUnitSeconds, else 1
	prefix    string
	labels    []constLabel // for counters, gauges and sets
	timerLbls []constLabel // for timers: without the reserved "quantile" or "le"
	maxSeries int
	expire    time.Duration
	now       func() time.Time

	mu       sync.Mutex
	series   map[string]*entry  // by entry.key
	families map[string]*family // by metric name
	scratch  keyBuilder         // for ObservePeriod
	pcts     []aggregator.Percentile
	pctOK    []bool
	pctIn    []float64 // the percentiles, sorted, for Series.Percentiles
	one      [1]float64

	n       atomic.Int64 // len(series), for the self-metrics
	dropped [len(reasons)]atomic.Uint64
}

// family is the type that owns a metric name, and its number of series.
type family struct {
	kind aggregator.Kind
	n    int
}

// entry is one Prometheus series. key, name, labels and kind never change
// after the entry is made; the rest is guarded by Store.mu.
type entry struct {
	key    string // name{labels}: the series' identity
	name   string // sanitized metric name
	labels string // `a="x",b="y"`, constant labels included, sorted by name
	kind   aggregator.Kind

	seen   time.Time // when it last received data
	period time.Time // start of the last period that set value or vals
	value  float64   // counter: running total; gauge, set: last value
	count  float64   // timer: weighted count, running total
	sum    float64   // timer: weighted sum, running total, exposed unit
	vals   []float64 // timer: quantile values (summary) or cumulative bucket counts (histogram)
}

// New returns an empty Store for cfg.
func New(cfg Config) *Store {
	s := &Store{
		divisor:   1,
		prefix:    cfg.Prefix,
		maxSeries: max(cfg.MaxSeries, 0),
		expire:    max(cfg.Expire, 0),
		now:       cfg.Now,
		series:    make(map[string]*entry),
		families:  make(map[string]*family),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if cfg.TimerUnitSeconds {
		s.divisor = 1000
	}
	for _, p := range cfg.Percentiles {
		if p > 0 && p <= 100 {
			s.pctIn = append(s.pctIn, p)
		}
	}
	slices.Sort(s.pctIn)
	s.pctIn = slices.Compact(s.pctIn)
	for _, p := range s.pctIn {
		s.qText = append(s.qText, `quantile="`+string(appendFloat(nil, shift(p, -2)))+`"`)
	}
	if cfg.Histogram {
		s.histogram = true
		b := cfg.Buckets
		if len(b) == 0 {
			b = defaultBuckets[:]
		}
		for _, v := range b {
			if !math.IsInf(v, 0) && !math.IsNaN(v) {
				s.buckets = append(s.buckets, v)
			}
		}
		slices.Sort(s.buckets)
		s.buckets = slices.Compact(s.buckets)
		for _, v := range s.buckets {
			if cfg.TimerUnitSeconds {
				v = shift(v, -3)
			}
			s.leText = append(s.leText, `le="`+string(appendFloat(nil, v))+`"`)
		}
		s.leText = append(s.leText, `le="+Inf"`)
	}
	s.suffixes = []string{"_sum", "_count"}
	if s.histogram {
		s.suffixes = append(s.suffixes, "_bucket")
	}
	s.labels = constLabels(cfg.Labels, "")
	s.timerLbls = constLabels(cfg.Labels, s.reserved(aggregator.Timer))
	return s
}

// shift returns v·10^exp as the decimal number v reads as: shift(99.9, -2)
// is 0.999, where 99.9/100 is 0.9990000000000001.
func shift(v float64, exp int) float64 {
	mant, e, _ := strings.Cut(strconv.FormatFloat(v, 'e', -1, 64), "e")
	n, err := strconv.Atoi(e)
	if err != nil { // never: 'e' always writes an exponent
		return v * math.Pow10(exp)
	}
	f, _ := strconv.ParseFloat(mant+"e"+strconv.Itoa(n+exp), 64) // out of range: ±Inf or 0, the nearest
	return f
}

// ObservePeriod drops the series that expired, then folds the series of
// one finished period, which started at start, into the store. It implements
// flusher.Observer; it does not keep snap or its series.
func (s *Store) ObservePeriod(start time.Time, snap *aggregator.Snapshot) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.expire > 0 {
		for k, e := range s.series {
			if now.Sub(e.seen) >= s.expire {
				s.remove(k, e)
			}
		}
	}
	snap.Each(func(ser *aggregator.Series) { s.observe(start, now, ser) })
	s.n.Store(int64(len(s.series)))
}

// observe folds one series into the store. s.mu is held.
func (s *Store) observe(start, now time.Time, ser *aggregator.Series) {
	kind := ser.Kind
	switch {
	case kind < aggregator.Counter || kind > aggregator.Set:
		return
	case kind == aggregator.Counter && ser.Value < 0:
		s.dropped[dropNegativeCounter].Add(1)
		return
	}
	labels := s.labels
	if kind == aggregator.Timer {
		labels = s.timerLbls
	}
	b := &s.scratch
	b.build(s.prefix, ser, labels, s.reserved(kind))
	e := s.series[string(b.key)]
	switch {
	case e == nil:
		if e = s.add(b, kind); e == nil {
			return
		}
	case e.kind != kind:
		s.dropped[dropTypeClash].Add(1)
		return
	}
	e.seen = now
	latest := !start.Before(e.period)
	switch kind {
	case aggregator.Counter:
		e.value += ser.Value
	case aggregator.Gauge:
		if latest {
			e.value, e.period = ser.Value, start
		}
	case aggregator.Set:
		if latest {
			e.value, e.period = float64(ser.Cardinality()), start
		}
	case aggregator.Timer:
		s.observeTimer(e, ser, start, latest)
	}
}

// reserved returns the label name that a series of kind cannot carry:
// "quantile" for summaries, "le" for histograms.
func (s *Store) reserved(kind aggregator.Kind) string {
	switch {
	case kind != aggregator.Timer:
		return ""
	case s.histogram:
		return "le"
	}
	return "quantile"
}

// add makes the series whose key b holds, or returns nil when it is
// dropped: past MaxSeries, or for a name owned by another type.
func (s *Store) add(b *keyBuilder, kind aggregator.Kind) *entry {
	name := b.key[:b.nameLen]
	f := s.families[string(name)]
	switch {
	case f != nil && f.kind != kind:
		s.dropped[dropTypeClash].Add(1)
		return nil
	case s.maxSeries > 0 && len(s.series) >= s.maxSeries:
		s.dropped[dropMaxSeries].Add(1)
		return nil
	case f == nil && s.collides(string(name), kind):
		s.dropped[dropTypeClash].Add(1)
		return nil
	}
	key := string(b.key)
	e := &entry{key: key, name: key[:b.nameLen], labels: key[b.nameLen+1 : len(key)-1], kind: kind}
	if kind == aggregator.Timer {
		if s.histogram {
			e.vals = make([]float64, len(s.buckets))
		} else {
			e.vals = make([]float64, len(s.pctIn))
		}
	}
	if f == nil {
		f = &family{kind: kind}
		s.families[e.name] = f
	}
	f.n++
	s.series[key] = e
	return e
}

// collides reports whether a new metric name, of kind, would share a line
// name with an existing one: the "name_sum" line of a summary "name" with
// a metric "name_sum", say. It is only called for a name that has no
// family yet.
func (s *Store) collides(name string, kind aggregator.Kind) bool {
	for _, suffix := range s.suffixes {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if f := s.families[base]; f != nil && f.kind == aggregator.Timer {
				return true // a timer's line is named like us
			}
		}
		if kind == aggregator.Timer && s.families[name+suffix] != nil {
			return true // one of our lines is named like a metric
		}
	}
	return false
}

// remove deletes the series e, stored under k. s.mu is held.
func (s *Store) remove(k string, e *entry) {
	delete(s.series, k)
	if f := s.families[e.name]; f != nil {
		if f.n--; f.n <= 0 {
			delete(s.families, e.name)
		}
	}
}

// Stats are a Store's counts.
type Stats struct {
	// Series is the number of series held.
	Series int
	// Dropped counts, by reason (ReasonMaxSeries...), the series whose
	// data for a period was dropped.
	Dropped map[string]uint64
}

// Stats returns the store's counts.
func (s *Store) Stats() Stats {
	st := Stats{Series: int(s.n.Load()), Dropped: make(map[string]uint64, len(reasons))}
	for i, r := range reasons {
		st.Dropped[r] = s.dropped[i].Load()
	}
	return st
}

// Register registers the store's self-metrics with reg:
// libratod_prometheus_series and
// libratod_prometheus_series_dropped_total{reason}.
func (s *Store) Register(reg prometheus.Registerer) error {
	cs := []prometheus.Collector{prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "libratod_prometheus_series",
		Help: "Series held for the Prometheus exposition of the StatsD data.",
	}, func() float64 { return float64(s.n.Load()) })}
	for i, r := range reasons {
		cs = append(cs, prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "libratod_prometheus_series_dropped_total",
			Help:        "Periods of StatsD series left out of the Prometheus exposition, by reason.",
			ConstLabels: prometheus.Labels{"reason": r},
		}, func() float64 { return float64(s.dropped[i].Load()) }))
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// constLabel is a constant label, sanitized.
type constLabel struct {
	name []byte // sanitized name
	text string // name="escaped value"
}

// constLabels sanitizes the constant labels, renaming reserved (see
// appendLabelName), and sorts them by name; of names equal after
// sanitizing, the first in order of the original names wins.
func constLabels(m map[string]string, reserved string) []constLabel {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	var out []constLabel
	for _, n := range names {
		name := appendLabelName(nil, n, reserved)
		text := appendLabelValue(append(append([]byte(nil), name...), '=', '"'), m[n])
		l := constLabel{name: name, text: string(append(text, '"'))}
		i, found := slices.BinarySearchFunc(out, name, func(c constLabel, n []byte) int { return bytes.Compare(c.name, n) })
		if !found {
			out = slices.Insert(out, i, l)
		}
	}
	return out
}

// observeTimer folds a timer's period into e: the count and sum always,
// the quantiles when this is the latest period seen, the buckets always.
func (s *Store) observeTimer(e *entry, ser *aggregator.Series, start time.Time, latest bool) {
	e.count += ser.Count
	e.sum += ser.Sum / s.divisor
	if s.histogram {
		s.observeBuckets(e, ser)
		return
	}
	if !latest {
		return
	}
	e.period = start
	if len(s.pctIn) == 0 {
		return
	}
	s.pcts, s.pctOK = ser.Percentiles(s.pctIn, s.pcts[:0], s.pctOK[:0])
	for i, p := range s.pcts {
		v := ser.Min // too few values for a rank: the smallest is closest
		if s.pctOK[i] {
			v = p.Max
		}
		e.vals[i] = v / s.divisor
	}
}

// observeBuckets adds a timer's period to e's cumulative bucket counts.
// The values are unweighted, so each counts for Count/n (exact when every
// line had the same sample rate); the +Inf bucket gets exactly Count.
func (s *Store) observeBuckets(e *entry, ser *aggregator.Series) {
	if ser.PercentilesExact() {
		vals := ser.Values
		n := len(vals)
		if n == 0 {
			return
		}
		slices.Sort(vals) // in place, as Series.Percentiles does
		w := ser.Count / float64(n)
		i := 0
		for b, le := range s.buckets {
			for i < n && vals[i] <= le {
				i++
			}
			e.vals[b] += bucketCount(i, n, w, ser.Count)
		}
		return
	}
	// Past MaxTimerSamples the values are in a sketch: find each bound's
	// rank with the percentile estimates (values within ±1%).
	n := s.rank(ser, 100) // p = 100 is every value: the unweighted count
	if n == 0 {
		return
	}
	w := ser.Count / float64(n)
	for b, le := range s.buckets {
		e.vals[b] += bucketCount(s.rankAtMost(ser, n, le), n, w, ser.Count)
	}
}

// bucketCount is the weighted count of i of n values, each weighing w, all
// n weighing total.
func bucketCount(i, n int, w, total float64) float64 {
	if i == n {
		return total
	}
	return float64(i) * w
}

// rankAtMost returns the number of ser's n values (per the percentile
// estimates) at most le, by bisection: the k-th value grows with k.
func (s *Store) rankAtMost(ser *aggregator.Series, n int, le float64) int {
	switch {
	case ser.Min > le:
		return 0
	case ser.Max <= le:
		return n
	}
	lo, hi := 0, n // the lo-th value is <= le (none for 0), the hi-th is > le
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if s.kth(ser, mid, n) <= le {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo
}

// kth returns the k-th lowest of ser's n values, 1 <= k <= n.
func (s *Store) kth(ser *aggregator.Series, k, n int) float64 {
	s.one[0] = 100 * float64(k) / float64(n)
	s.pcts, s.pctOK = ser.Percentiles(s.one[:], s.pcts[:0], s.pctOK[:0])
	return s.pcts[0].Max
}

// rank returns the number of values in the lowest p percent of ser's values.
func (s *Store) rank(ser *aggregator.Series, p float64) int {
	s.one[0] = p
	s.pcts, s.pctOK = ser.Percentiles(s.one[:], s.pcts[:0], s.pctOK[:0])
	return s.pcts[0].Count
}
