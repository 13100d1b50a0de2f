// Package aggregator rolls parsed StatsD metrics up into per-period series.
//
// Series live in shards chosen by a hash of the full series key (type, name
// and sorted tags). Each shard is a plain map behind its own mutex; the key
// is built and hashed once per line and the hash is the map key. A flush
// locks every shard, swaps each map for an empty one (O(1) a shard) and
// hands the old maps out as a Snapshot, so ingestion is never stalled by
// encoding or sending.
//
// Memory is bounded: Config.MaxSeries caps the series of a period; a timer
// keeps at most Config.MaxTimerSamples raw values, then estimates its
// percentiles with a sketch of at most 32 KiB (values within ±1%, see
// Series.Percentiles); a set keeps at most Config.MaxSetMembers member
// hashes, then estimates its cardinality with a 16 KiB HyperLogLog (0.81%
// standard error); and the last values kept for gauge deltas expire after
// Config.GaugeBaseTTL periods and number at most MaxSeries.
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

// ErrMaxSeries is returned by Add when a new series would exceed
// Config.MaxSeries.
var ErrMaxSeries = errors.New("aggregator: too many series")

// ErrOverflow is returned by Add for a metric that would make a sum of
// its series infinite (a huge value at a tiny sample rate): the metric is
// left out and the series keeps its values.
var ErrOverflow = errors.New("aggregator: value overflows its series")

// ErrBadName is returned by Add for a metric whose name Config.Sanitizer
// leaves empty.
var ErrBadName = errors.New("aggregator: nothing usable in the metric name")

// Sanitizer rewrites series names and tags into the forms the backend
// accepts (see Config.Sanitizer). Each Append method appends the clean form
// of its input to dst and returns the extended slice, appending nothing
// when nothing usable is left; it must not keep dst or the input, and
// should not allocate but to grow dst. It is called only when a Writer
// builds a key it has not seen recently, never for every line.
type Sanitizer interface {
	// AppendName appends the clean form of a metric name.
	AppendName(dst, name []byte) []byte
	// AppendTagName appends the clean form of a tag name.
	AppendTagName(dst, name []byte) []byte
	// AppendTagValue appends the clean form of value, the value of the
	// tag whose clean name is name (a bare tag has an empty value).
	AppendTagValue(dst, name, value []byte) []byte
	// MaxTags is the most tags a series keeps (those first by clean
	// name); 0 or less means no limit.
	MaxTags() int
}

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
	// keep working. No Snapshot ever holds more than MaxSeries series, even
	// with concurrent Adds. When it is set, it also bounds the number of
	// gauge values kept for deltas (see GaugeBaseTTL).
	MaxSeries int
	// MaxTimerSamples bounds the raw values a timer series keeps in one
	// period for exact percentiles; 0 or less means 10,000 (80 kB). Past
	// it, the series moves its values into a sketch of at most 32 KiB and
	// its percentiles become estimates (see Series.Percentiles); count,
	// sum, min, max and last stay exact, and the variance is kept by a
	// stable running update (see Series.Variance).
	MaxTimerSamples int
	// MaxSetMembers bounds the distinct members a set series keeps in one
	// period; 0 or less means 10,000 (a hash map of about 300 kB). Past
	// it, Cardinality is a HyperLogLog estimate (16 KiB, 0.81% relative
	// standard error).
	MaxSetMembers int
	// KeepTags, when not nil, names the only tags that are part of a
	// series: the others are left out of the key (and so their series
	// merge) and counted by the Writer (see Writer.DroppedTags). The legacy
	// Librato API, which can express only a "source", keeps just that.
	KeepTags []string
	// Sanitizer, when not nil, makes each series' name and tags what the
	// backend will receive before the series key is built, so that lines
	// the backend would see as one series (names or tags that differ only
	// in characters it replaces, or only past its length or tag-count
	// limits) add up to one series. Series.Name and Series.Tags are then
	// the clean forms. A line whose name has nothing usable left is
	// refused with ErrBadName; a tag whose name or value has nothing
	// usable left, or past Sanitizer.MaxTags, is left out and counted by
	// the Writer (see Writer.DroppedTags).
	Sanitizer Sanitizer
	// GaugeBaseTTL is the number of periods (Snapshots) for which a
	// gauge's last flushed value is kept, for a delta ("+3") on a gauge
	// not yet seen in the current period to start from. A gauge absent
	// from that many periods in a row starts again from 0. 0 or less
	// means 360 (an hour at 10 s periods); at most 65,536. When MaxSeries
	// is set, at most MaxSeries values are kept: past it, the values of
	// the gauges absent the longest are dropped first (all those of the
	// same age together).
	GaugeBaseTTL int
	// ReleaseParts is the number of parts a Snapshot read with Drain is
	// released in, as the readers pass them: 0 or 1 releases it whole
	// after the last reader; 2 or 4 (maxParts) free a flushed period
	// sooner, so that a flush overlapping the next period holds less (189
	// heap bytes a series with 4 parts, 286 with 1: BenchmarkFlushOverlap),
	// but scatter the series made one after the other over as many
	// streams of blocks, and a line of an existing series costs 18-38%
	// more (BenchmarkExistingSeries). Other values are rounded up to a
	// power of two, at most maxParts and the number of shards.
	ReleaseParts int
}

// The defaults of Config's bounds.
const (
	defaultMaxTimerSamples = 10_000
	defaultMaxSetMembers   = 10_000
	defaultGaugeBaseTTL    = 360
	maxGaugeBaseTTL        = 1 << 16
)

// Aggregator accumulates metrics into series. It is safe for concurrent use;
// metrics are added through Writers, one per goroutine.
type Aggregator struct {
	seed            maphash.Seed
	shards          []shard
	shift           uint // 64 - log2(len(shards))
	parts           int  // Config.ReleaseParts, as releaseParts makes it
	partShift       uint // 64 - log2(parts): a hash's part
	gaugeDeltas     bool
	keepTags        [][]byte // nil: every tag
	san             Sanitizer
	maxSeries       int64
	maxTimerSamples int
	maxSetMembers   int
	baseTTL         uint64
	// hashMask is ANDed with every key's hash: all ones but in tests,
	// which make hashes collide with it.
	hashMask uint64
	// live counts the series of the current period, all shards, plus the
	// reservations of Adds that are creating one. It only grows under a
	// shard lock, and Snapshot resets it with every shard locked.
	live atomic.Int64
	// epoch counts the Snapshots, for Writers to start new blocks of
	// series (see Writer.newSeries). It only grows with every shard locked.
	epoch atomic.Uint64
	// spans are the periods' time spans that route lines stamped with a
	// DogStatsD "|T" (see Roll); they change with every shard locked.
	spans spans

	// snapMu serialises Snapshots and guards the fields below and every
	// shard's lastLen.
	snapMu sync.Mutex
	period uint64 // Snapshots taken
	ages   []int  // scratch for bounding gauge bases: their number by age
}

type shard struct {
	mu      sync.Mutex
	series  map[uint64]*Series
	lastLen int // size of the map at the last swap, a capacity hint
	// more holds the series whose key's hash is another's in series
	// (nil while there is none: 64-bit hashes rarely collide).
	more map[string]*Series
	// closing and closingMore are series and more of the closing period
	// (see Roll); nil while none is open.
	closing     map[uint64]*Series
	closingMore map[string]*Series

	// baseMu guards base, the last flushed value of every gauge, which a
	// delta on a gauge not yet seen in this period starts from. Lock order:
	// mu before baseMu.
	baseMu sync.Mutex
	base   map[string]gaugeBase

	_ [64]byte // keep neighbouring shards' locks on separate cache lines
}

// gaugeBase is a gauge's last flushed value and the period that flushed it.
type gaugeBase struct {
	value  float64
	period uint64
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
		seed:            maphash.MakeSeed(),
		shards:          make([]shard, n),
		shift:           uint(64 - bits.TrailingZeros(uint(n))),
		parts:           releaseParts(n, cfg.ReleaseParts),
		gaugeDeltas:     cfg.GaugeDeltas,
		keepTags:        keepTags(cfg.KeepTags),
		san:             cfg.Sanitizer,
		maxSeries:       int64(max(cfg.MaxSeries, 0)),
		maxTimerSamples: orDefault(cfg.MaxTimerSamples, defaultMaxTimerSamples),
		maxSetMembers:   orDefault(cfg.MaxSetMembers, defaultMaxSetMembers),
		baseTTL:         uint64(min(orDefault(cfg.GaugeBaseTTL, defaultGaugeBaseTTL), maxGaugeBaseTTL)),
		hashMask:        ^uint64(0),
	}
	a.partShift = uint(64 - bits.TrailingZeros(uint(a.parts)))
	for i := range a.shards {
		a.shards[i].series = make(map[uint64]*Series)
		if cfg.GaugeDeltas {
			a.shards[i].base = make(map[string]gaugeBase)
		}
	}
	return a
}

// maxParts is the most parts a Snapshot is released in (see
// Config.ReleaseParts and Snapshot.Drain): the shards are grouped into
// parts of consecutive shards, and a Writer carves the series of each part
// from blocks of its own, so that a part's memory holds no other part's
// series. (8 parts peak at 174 heap bytes a series, 64 at 159, and a line
// of an existing series costs 55% more with either.)
const maxParts = 4

// releaseParts returns the number of parts of an Aggregator of n shards (a
// power of two) for Config.ReleaseParts want.
func releaseParts(n, want int) int {
	p := 1 << bits.Len(uint(max(want, 1)-1)) // round up to a power of two
	return min(n, maxParts, p)
}

func orDefault(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

// Live returns the number of series in the current period (counting, for
// an instant, an Add that is creating one and may yet be refused).
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
	a       *Aggregator
	key     []byte
	tags    []tagRef
	clean   []byte      // the clean tag names tags point to
	dropped DroppedTags // since the last DroppedTags
	stamped Stamped     // since the last Stamped
	cache   *[keyCacheSets]keyCacheSet

	// slab and keys are, by part (see maxParts), the blocks the Writer's
	// new series and their keys are carved from, up to their length (see
	// newSeries): one allocation for many series instead of two for each,
	// and series made one after the other lie side by side, as lines
	// often come.
	slab [maxParts][]Series
	keys [maxParts][]byte
	// keyCap is, by part, the size of the last period's last key block,
	// the size of the next period's first.
	keyCap [maxParts]int32
	epoch  uint64 // the Aggregator's epoch the blocks were made in
}

// DroppedTags counts the tags a Writer left out of series, by reason.
type DroppedTags struct {
	// NotKept counts the tags Config.KeepTags does not name.
	NotKept int
	// Invalid counts the tags whose name or value Config.Sanitizer left
	// empty.
	Invalid int
	// TooMany counts the tags past Config.Sanitizer's MaxTags.
	TooMany int
}

func (d *DroppedTags) add(o DroppedTags) {
	d.NotKept += o.NotKept
	d.Invalid += o.Invalid
	d.TooMany += o.TooMany
}

// keyCacheSize is the number of recent lines whose series key a Writer
// remembers: clients send the same names and tags over and over, so most
// lines skip splitting, sorting and hashing their tags.
const keyCacheSize = 4096

// keyCacheWays is the number of entries a line's key may take in the
// cache, all in the set its raw hash picks: with one, each of two lines
// sharing a place would keep pushing the other out (about a fifth of 1,000
// names would, in 4,096 places); with eight, 1,000 names fit all but in
// rare seeds.
const keyCacheWays = 8

// keyCacheSets is the number of sets of the key cache.
const keyCacheSets = keyCacheSize / keyCacheWays

// keyCacheSet is one set of the key cache. The raw hashes of its entries
// lie together, in one 64-byte cache line, for a line to look up; 0 marks
// an empty entry (rawHash never returns it).
type keyCacheSet struct {
	rawHash [keyCacheWays]uint64
	entries [keyCacheWays]keyCacheEntry
}

// keyCacheEntry is a series key built from a line's raw name and tags.
type keyCacheEntry struct {
	raw     []byte // kind, name, 0, name tags, 0, tags: what key was built from
	key     []byte // nil when the entry is empty or the name unusable
	hash    uint64 // of key
	dropped DroppedTags
	badName bool // Config.Sanitizer left the name empty
}

// DroppedTags returns the tags left out of series since the last call, and
// starts counting again. A line counts its dropped tags each time it is
// added.
func (w *Writer) DroppedTags() DroppedTags {
	d := w.dropped
	w.dropped = DroppedTags{}
	return d
}

// NewWriter returns a Writer that adds to a.
func (a *Aggregator) NewWriter() *Writer {
	w := &Writer{a: a, key: make([]byte, 0, 256), tags: make([]tagRef, 0, 16), cache: new([keyCacheSets]keyCacheSet)}
	return w
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
	key, h := w.seriesKey(kind, m)
	if key == nil {
		return ErrBadName
	}
	a := w.a
	sh := a.shardOf(h)

	sh.mu.Lock()
	if m.Timestamp != 0 && a.spans.set && w.route(m.Timestamp) {
		err := w.addClosing(sh, kind, key, h, m)
		sh.mu.Unlock()
		return err
	}
	s := sh.series[h]
	collides := s != nil && s.key != string(key)
	if collides {
		s = sh.more[string(key)]
	}
	if s == nil {
		if !weighable(m) { // an existing series checks in update
			sh.mu.Unlock()
			return ErrOverflow
		}
		// Reserve a place first: a check and a later increment would let
		// Adds on other shards pass the bound together.
		if n := a.live.Add(1); a.maxSeries > 0 && n > a.maxSeries {
			a.live.Add(-1)
			sh.mu.Unlock()
			return ErrMaxSeries
		}
		s = w.newSeries(kind, key, a.gaugeDeltas, int(h>>a.partShift))
		if collides {
			if sh.more == nil {
				sh.more = make(map[string]*Series)
			}
			sh.more[s.key] = s
		} else {
			sh.series[h] = s
		}
		if kind == Gauge && m.Delta && a.gaugeDeltas {
			s.Value = a.deltaBase(sh, h, s.key)
		}
	}
	err := a.update(s, m)
	sh.mu.Unlock()
	return err
}

// finite reports whether x is neither infinite nor NaN.
func finite(x float64) bool { return math.Abs(x) <= math.MaxFloat64 }

// weighable reports whether m's value weighted by 1/rate is finite, as
// every counter or timer it could start needs (gauges and sets ignore the
// rate).
func weighable(m *parser.Metric) bool {
	if m.Type != parser.Counter && m.Type != parser.Timer {
		return true
	}
	w := 1 / m.Rate
	return finite(w) && finite(m.Value*w)
}

// update adds m to s. It returns ErrOverflow, leaving s as it was, when a
// sum would no longer be finite.
func (a *Aggregator) update(s *Series, m *parser.Metric) error {
	switch s.Kind {
	case Counter:
		v := s.Value + m.Value/m.Rate
		if !finite(v) {
			return ErrOverflow
		}
		s.Value = v
	case Gauge:
		if m.Delta && a.gaugeDeltas {
			v := s.Value + m.Value
			if !finite(v) {
				return ErrOverflow
			}
			s.Value = v
		} else {
			s.Value = m.Value
		}
	case Timer:
		v, wgt := m.Value, 1/m.Rate
		count, sum := s.Count+wgt, s.Sum+v*wgt
		if !finite(count) || !finite(sum) || !finite(v*v*wgt) {
			return ErrOverflow
		}
		if s.Count == 0 {
			s.w0 = wgt
		} else if !s.running && (wgt != s.w0 || s.x != nil || len(s.Values) >= a.maxTimerSamples) {
			// The values can no longer give the variance exactly (two
			// weights, or some only in the sketch): from now on keep it
			// running, starting from the values so far.
			s.startRunning()
		}
		if s.running {
			// West's weighted form of Welford's method: the mean and the
			// sum of squared deviations stay accurate where a sum of
			// squares would cancel.
			delta := v - s.mean
			mean := s.mean + delta*(wgt/count)
			m2 := s.m2 + wgt*delta*(v-mean)
			if !finite(m2) {
				return ErrOverflow
			}
			s.mean, s.m2 = mean, m2
		}
		if s.Count == 0 {
			s.Min, s.Max = v, v
		} else {
			s.Min, s.Max = min(s.Min, v), max(s.Max, v)
		}
		s.Count, s.Sum = count, sum
		s.Last = v
		switch {
		case s.x != nil: // a timer's x is its sketch
			s.x.sketch.add(v)
		case len(s.Values) < a.maxTimerSamples:
			s.Values = appendBounded(s.Values, v, a.maxTimerSamples)
		default: // one value past the bound: estimate from now on
			k := new(sketch)
			for _, x := range s.Values {
				k.add(x)
			}
			k.add(v)
			s.Values = nil
			s.x = &extra{sketch: k}
		}
	case Set:
		h := maphash.Bytes(a.seed, m.Member)
		if s.x == nil {
			s.x = &extra{members: make(map[uint64]struct{})}
		}
		x := s.x
		if x.hll != nil {
			x.hll.add(h)
			return nil
		}
		if len(x.members) >= a.maxSetMembers {
			if _, seen := x.members[h]; !seen { // one member past the bound
				x.hll = new(hll)
				for old := range x.members {
					x.hll.add(old)
				}
				x.hll.add(h)
				x.members = nil
				return nil
			}
		}
		x.members[h] = struct{}{}
	}
	return nil
}

// appendBounded appends v to vals, growing the slice by doubling but never
// past a capacity of limit.
func appendBounded(vals []float64, v float64, limit int) []float64 {
	if len(vals) == cap(vals) {
		grown := make([]float64, len(vals), min(max(2*len(vals), 8), limit))
		copy(grown, vals)
		vals = grown
	}
	return append(vals, v)
}

// Snapshot takes every series of the current period and starts a new,
// empty period. Every shard is locked for the swap, which is O(1) per
// shard, so the period ends at the same instant in all shards: no Add is
// half done, and a Snapshot never holds more than Config.MaxSeries series.
// With gauge deltas, it then records the period's gauge values and expires
// old ones, each shard under its own lock. Snapshots are serialised.
func (a *Aggregator) Snapshot() *Snapshot {
	a.snapMu.Lock()
	defer a.snapMu.Unlock()
	snap := a.newSnapshot()
	fresh := make([]map[uint64]*Series, len(a.shards))
	for i := range a.shards {
		fresh[i] = make(map[uint64]*Series, a.shards[i].lastLen)
	}
	for i := range a.shards {
		a.shards[i].mu.Lock()
	}
	for i := range a.shards {
		sh := &a.shards[i]
		snap.maps[i] = sh.series
		sh.series = fresh[i]
		sh.lastLen = len(snap.maps[i])
		snap.n += sh.lastLen
		if sh.more != nil {
			if snap.more == nil {
				snap.more = make([]map[string]*Series, len(a.shards))
			}
			snap.more[i] = sh.more
			snap.n += len(sh.more)
			sh.more = nil
		}
		if a.gaugeDeltas {
			// Taken before mu is released so that a delta arriving now
			// waits for the bases this period leaves behind; released by
			// updateBases.
			sh.baseMu.Lock()
		}
	}
	// With every shard locked no reservation is pending: live is exactly
	// the number of series taken.
	a.live.Store(0)
	a.epoch.Add(1)
	for i := range a.shards {
		a.shards[i].mu.Unlock()
	}
	a.period++
	if a.gaugeDeltas {
		a.updateBases(snap)
	}
	return snap
}

// updateBases records the gauge values of snap, the period just taken,
// drops the values older than the TTL and, with MaxSeries set, the oldest
// ones past MaxSeries. It is called with snapMu and every shard's baseMu
// held, and releases each baseMu.
func (a *Aggregator) updateBases(snap *Snapshot) {
	now := a.period
	var ages []int // number of bases by age, to bound them by MaxSeries
	if a.maxSeries > 0 {
		if a.ages == nil {
			a.ages = make([]int, a.baseTTL)
		}
		ages = a.ages
		clear(ages)
	}
	total := 0
	for i := range a.shards {
		sh := &a.shards[i]
		snap.eachOf(i, func(s *Series) {
			if s.Kind == Gauge {
				sh.base[s.key] = gaugeBase{value: s.Value, period: now}
			}
		})
		for k, b := range sh.base {
			age := now - b.period
			if age >= a.baseTTL {
				delete(sh.base, k)
				continue
			}
			if ages != nil {
				ages[age]++
			}
		}
		total += len(sh.base)
		sh.baseMu.Unlock()
	}
	if ages == nil || int64(total) <= a.maxSeries {
		return
	}
	// Keep the youngest ages that fit. Age 0, this period's gauges, always
	// fits: the period held at most MaxSeries series.
	kept, cut := 0, uint64(len(ages))
	for age, n := range ages {
		if int64(kept+n) > a.maxSeries {
			cut = uint64(age)
			break
		}
		kept += n
	}
	for i := range a.shards {
		sh := &a.shards[i]
		sh.baseMu.Lock()
		for k, b := range sh.base {
			if now-b.period >= cut {
				delete(sh.base, k)
			}
		}
		sh.baseMu.Unlock()
	}
}

// newSnapshot returns an empty Snapshot of a's shards, for a period to be
// taken into.
func (a *Aggregator) newSnapshot() *Snapshot {
	return &Snapshot{maps: make([]map[uint64]*Series, len(a.shards)), per: len(a.shards) / a.parts}
}

func keepTags(names []string) [][]byte {
	if names == nil {
		return nil
	}
	out := make([][]byte, 0, len(names))
	for _, n := range names {
		out = append(out, []byte(n))
	}
	return out
}
