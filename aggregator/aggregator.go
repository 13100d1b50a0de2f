// Package aggregator rolls parsed StatsD metrics up into per-period series.
//
// Series live in shards chosen by a hash of the full series key (type, name
// and sorted tags). Each shard is a plain map behind its own mutex; the key
// is built and hashed once per line and the hash is the map key. A flush
// swaps every shard's map for an empty one under the shard's lock and hands
// the old maps out as a Snapshot, so ingestion is never stalled by encoding
// or sending.
package aggregator

import (
	"errors"
	"hash/maphash"
	"math"
	"math/bits"
	"sync"
	"sync/atomic"

	"github.com/libratod/libratod/parser"
)

// Kind is the kind of a series.
type Kind uint8

// The series kinds.
const (
	Counter Kind = iota + 1 // value is the period's sum of value/rate
	Gauge                   // value is the last value
	Timer                   // summary of the values received (also histograms and distributions)
	Set                     // number of distinct members
)

// String returns the lower-case name of the kind, as used in metric labels.
func (k Kind) String() string {
	switch k {
	case Counter:
		return "counter"
	case Gauge:
		return "gauge"
	case Timer:
		return "timer"
	case Set:
		return "set"
	}
	return "invalid"
}

// Kinds lists every kind, in order.
var kinds = [...]Kind{Counter, Gauge, Timer, Set}

// Kinds returns every kind, in order.
func Kinds() []Kind { return kinds[:] }

// ErrMaxSeries is returned by Add when a new series would exceed Config.MaxSeries.
var ErrMaxSeries = errors.New("aggregator: too many series")

// ErrBadType is returned by Add for a metric whose type is not one of parser's.
var ErrBadType = errors.New("aggregator: unknown metric type")

// Config configures an Aggregator.
type Config struct {
	// Shards is the number of lock stripes, rounded up to a power of two.
	// 0 means 64.
	Shards int
	// GaugeDeltas makes a gauge value written with a sign ("+3", "-3")
	// change the gauge's last value instead of replacing it (Etsy StatsD).
	GaugeDeltas bool
	// MaxSeries bounds the series alive in one period; 0 means no bound.
	// A new series past it is refused with ErrMaxSeries; existing series
	// keep working.
	MaxSeries int
}

// Aggregator accumulates metrics into series. It is safe for concurrent use;
// metrics are added through Writers, one per goroutine.
type Aggregator struct {
	seed        maphash.Seed
	shards      []shard
	shift       uint // 64 - log2(len(shards))
	gaugeDeltas bool
	maxSeries   int64
	live        atomic.Int64 // series in the current period, all shards
}

type shard struct {
	mu      sync.Mutex
	series  map[uint64]*Series
	lastLen int // size of the map at the last swap, a capacity hint

	// baseMu guards base, the last flushed value of every gauge, which a
	// delta on a gauge not yet seen in this period starts from. Lock order:
	// mu before baseMu.
	baseMu sync.Mutex
	base   map[string]float64

	_ [64]byte // keep neighbouring shards' locks on separate cache lines
}

// New returns an empty Aggregator.
func New(cfg Config) *Aggregator {
	n := cfg.Shards
	if n <= 0 {
		n = 64
	}
	if n > 1<<16 {
		n = 1 << 16
	}
	n = 1 << bits.Len(uint(n-1)) // round up to a power of two
	a := &Aggregator{
		seed:        maphash.MakeSeed(),
		shards:      make([]shard, n),
		shift:       uint(64 - bits.TrailingZeros(uint(n))),
		gaugeDeltas: cfg.GaugeDeltas,
		maxSeries:   int64(cfg.MaxSeries),
	}
	for i := range a.shards {
		a.shards[i].series = make(map[uint64]*Series)
		if cfg.GaugeDeltas {
			a.shards[i].base = make(map[string]float64)
		}
	}
	return a
}

// Live returns the number of series in the current period.
func (a *Aggregator) Live() int { return int(a.live.Load()) }

func (a *Aggregator) shardOf(h uint64) *shard {
	if a.shift == 64 {
		return &a.shards[0]
	}
	return &a.shards[h>>a.shift]
}

// Writer adds metrics to an Aggregator. It holds the scratch space that
// makes Add allocation-free for existing series, so it is not safe for
// concurrent use: give each goroutine its own.
type Writer struct {
	a    *Aggregator
	key  []byte
	tags []tagRef
}

// NewWriter returns a Writer that adds to a.
func (a *Aggregator) NewWriter() *Writer {
	return &Writer{a: a, key: make([]byte, 0, 256), tags: make([]tagRef, 0, 16)}
}

// Add adds one parsed metric to its series, creating the series if needed.
func (w *Writer) Add(m *parser.Metric) error {
	var kind Kind
	switch m.Type {
	case parser.Counter:
		kind = Counter
	case parser.Gauge:
		kind = Gauge
	case parser.Timer:
		kind = Timer
	case parser.Set:
		kind = Set
	default:
		return ErrBadType
	}
	w.buildKey(kind, m)
	a := w.a
	h := maphash.Bytes(a.seed, w.key)
	sh := a.shardOf(h)

	sh.mu.Lock()
	s := sh.series[h]
	for s != nil && s.key != string(w.key) {
		s = s.next
	}
	if s == nil {
		if a.maxSeries > 0 && a.live.Load() >= a.maxSeries {
			sh.mu.Unlock()
			return ErrMaxSeries
		}
		s = newSeries(kind, w.key)
		s.next = sh.series[h]
		sh.series[h] = s
		a.live.Add(1)
		if kind == Gauge && m.Delta && a.gaugeDeltas {
			sh.baseMu.Lock()
			s.Value = sh.base[s.key]
			sh.baseMu.Unlock()
		}
	}
	a.update(s, m)
	sh.mu.Unlock()
	return nil
}

func (a *Aggregator) update(s *Series, m *parser.Metric) {
	switch s.Kind {
	case Counter:
		s.Value += m.Value / m.Rate
	case Gauge:
		if m.Delta && a.gaugeDeltas {
			s.Value += m.Value
		} else {
			s.Value = m.Value
		}
	case Timer:
		v, wgt := m.Value, 1/m.Rate
		if s.Count == 0 || v < s.Min {
			s.Min = v
		}
		if s.Count == 0 || v > s.Max {
			s.Max = v
		}
		s.Count += wgt
		s.Sum += v * wgt
		s.SumSquares += v * v * wgt
		s.Last = v
		s.Values = append(s.Values, v)
	case Set:
		if s.members == nil {
			s.members = make(map[uint64]struct{})
		}
		s.members[maphash.Bytes(a.seed, m.Member)] = struct{}{}
	}
}

// Snapshot takes every series of the current period and starts a new,
// empty period. The swap is O(1) per shard under its lock.
func (a *Aggregator) Snapshot() *Snapshot {
	snap := &Snapshot{maps: make([]map[uint64]*Series, len(a.shards))}
	for i := range a.shards {
		sh := &a.shards[i]
		sh.mu.Lock()
		hint := sh.lastLen
		sh.mu.Unlock()
		fresh := make(map[uint64]*Series, hint)

		sh.mu.Lock()
		old := sh.series
		sh.series = fresh
		sh.lastLen = len(old)
		if a.gaugeDeltas {
			// Taken before mu is released so that a delta arriving now
			// waits for the bases this period leaves behind.
			sh.baseMu.Lock()
		}
		sh.mu.Unlock()
		a.live.Add(-int64(len(old)))
		if a.gaugeDeltas {
			for _, s := range old {
				for ; s != nil; s = s.next {
					if s.Kind == Gauge {
						sh.base[s.key] = s.Value
					}
				}
			}
			sh.baseMu.Unlock()
		}
		snap.maps[i] = old
		snap.n += len(old)
	}
	return snap
}

// Snapshot holds the series of one finished period. It belongs to whoever
// took it; the Aggregator no longer touches it.
type Snapshot struct {
	maps []map[uint64]*Series
	n    int
}

// Len returns the number of hash slots in the snapshot: the number of
// series, but for the rare 64-bit hash collisions.
func (s *Snapshot) Len() int { return s.n }

// Each calls fn for every series in the snapshot, in no particular order.
func (s *Snapshot) Each(fn func(*Series)) {
	for _, m := range s.maps {
		for _, head := range m {
			for x := head; x != nil; x = x.next {
				fn(x)
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
	// Name is the metric name as received.
	Name string
	// Tags are the series' tags, sorted by name, one per name (the last
	// one written on the line wins). A bare DogStatsD tag has Value "".
	Tags []Tag
	// Kind is the series kind.
	Kind Kind
	// Value is the sum of value/rate for a counter and the last value for a
	// gauge.
	Value float64
	// Count is the number of timer values, each weighted by 1/rate.
	Count float64
	// Sum and SumSquares are the weighted sum and sum of squares of the
	// timer values.
	Sum, SumSquares float64
	// Min, Max and Last are the smallest, largest and last timer values.
	Min, Max, Last float64
	// Values are the timer values as received, unweighted, in arrival order.
	Values []float64

	members map[uint64]struct{}
	key     string
	next    *Series
}

// Cardinality returns the number of distinct members of a set.
func (s *Series) Cardinality() int { return len(s.members) }

// Percentile describes the lowest k = round(p/100*n) of a timer's n values,
// as Etsy StatsD computes its upper_p, sum_p and count_p.
type Percentile struct {
	Count           int
	Sum, SumSquares float64
	Min, Max        float64
}

// Percentiles computes, for each p in ps (0 < p < 100), the Percentile of
// the series' values, sorting Values in place. ok[i] is false when
// round(p/100*n) is 0. out and ok are appended to and returned.
func (s *Series) Percentiles(ps []float64, out []Percentile, ok []bool) ([]Percentile, []bool) {
	vals := s.Values
	sortFloats(vals)
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
		out = append(out, Percentile{Count: k, Sum: sum, SumSquares: sq, Min: vals[0], Max: vals[k-1]})
		ok = append(ok, true)
	}
	return out, ok
}

func newSeries(kind Kind, key []byte) *Series {
	s := &Series{Kind: kind, key: string(key)}
	s.Name, s.Tags = splitKey(s.key)
	return s
}
