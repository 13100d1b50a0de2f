// Package aggregator rolls parsed StatsD metrics up into per-period series.
//
// Series live in shards chosen by a hash of the full series key (type, name
// and sorted tags). Each shard indexes its series by that hash behind its
// own mutex; the key is built and hashed once per line (and a Writer
// remembers recent ones). A Writer sums a counter's further lines of a
// period apart, without the shard, until the period ends (pending.go). A
// series outlives the period: its entry (key, index place) is made once
// and kept while it gets lines, and each period writes one of the entry's
// two slots. A flush locks every shard only to change the period's number
// (O(1)), then copies the ended period's values out of one shard at a
// time into a Snapshot while the next period fills the other slots, so
// ingestion is never stalled by encoding or sending. An entry absent a
// whole period is freed.
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
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

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
	// released in, as the readers pass them: 1 releases it whole after
	// the last reader; more free a flushed period sooner, so that a flush
	// overlapping the next period holds less. 0 means maxParts (64).
	// Other values are rounded up to a power of two, at most maxParts and
	// the number of shards.
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
	rawSeed         uint64 // of rawHash
	shards          []shard
	shift           uint // 64 - log2(len(shards))
	parts           int  // Config.ReleaseParts, as releaseParts makes it
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
	// compactMin is the fewest bytes of dead keys that make a shard
	// compact its arena: minCompact but in tests.
	compactMin int
	// live counts the series of the current period, all shards, plus the
	// reservations of Adds that are making one. It only grows under a
	// shard lock, and a new period resets it with every shard locked.
	live atomic.Int64
	// gen is the number of the current period, whose values go to the
	// entries' slot gen&1 (see numEntry); the closing period, while open,
	// is gen-1. It changes with every shard locked, so that under a
	// shard's lock it is exact. It starts at 1: a slot of gen 0 holds no
	// period.
	gen uint32
	// genNow is gen, for Writers to read at the start of a run of Adds
	// (see Writer.Begin) without a shard's lock.
	genNow atomic.Uint32
	// writers are the Writers whose pending counter sums a period's end
	// publishes (see pending.go).
	writers writers
	// strays counts pending sums that found no value of their period to
	// join; none should.
	strays atomic.Int64
	// spans are the periods' time spans that route lines stamped with a
	// DogStatsD "|T" (see Roll); they change with every shard locked.
	spans spans

	// snapMu serialises Snapshots and guards the fields below.
	snapMu sync.Mutex
	period uint64 // Snapshots taken
	// pending is a closing period Snapshot took, for the next TakeClosing
	// or Roll to return.
	pending *Snapshot
	ages    []int // scratch for bounding gauge bases: their number by age
}

type shard struct {
	mu sync.Mutex
	// arenaEpoch counts the compactions of keys (see cachedEntry), beside
	// mu: a line whose key a Writer's cache holds reads both, and nothing
	// else of the shard.
	arenaEpoch uint32
	// index finds a series' entry by its key's hash.
	index index
	nums  table[numEntry]
	objs  table[objEntry]
	keys  arena
	// count is, by slot, the number of counters and gauges that hold a
	// value of the slot's period: the size of their part of a Snapshot.
	count [2]int

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
		rawSeed:         rand.Uint64(),
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
		gen:             1,
		compactMin:      minCompact,
	}
	a.genNow.Store(a.gen)
	for i := range a.shards {
		if cfg.GaugeDeltas {
			a.shards[i].base = make(map[string]gaugeBase)
		}
	}
	return a
}

// maxParts is the most parts a Snapshot is released in (see
// Config.ReleaseParts and Snapshot.Drain): the shards are grouped into
// parts of consecutive shards. A part's counters and gauges are one
// allocation (of each shard), its timers' and sets' their own, so parts
// cost nothing on the way in.
const maxParts = 64

// releaseParts returns the number of parts of an Aggregator of n shards (a
// power of two) for Config.ReleaseParts want.
func releaseParts(n, want int) int {
	if want <= 0 {
		want = maxParts
	}
	p := 1 << bits.Len(uint(want-1)) // round up to a power of two
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

	// mu is held for a run of Adds (see Begin), and by a period's end
	// publishing the Writer's pending sums (see pending.go).
	mu    sync.Mutex
	gen   uint32 // the period of the run
	inRun bool
	// hashes and sink are AddAll's: the raw hashes of its metrics, and
	// what its early reads of the cache read.
	hashes []uint64
	sink   uint64
	// dirty are the cache entries that may hold a pending sum.
	dirty []*keyCacheEntry
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

// addCounts adds the counts a key cache entry keeps (see keyCacheEntry).
func (d *DroppedTags) addCounts(c [3]uint32) {
	d.NotKept += int(c[0])
	d.Invalid += int(c[1])
	d.TooMany += int(c[2])
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
// What a line whose key it holds reads lies in its first 64 bytes, and
// entries are 128 bytes, so that is one cache line (TestKeyCacheLayout).
type keyCacheEntry struct {
	// raw is the name, name tags and tags key was built from, one after
	// the other, and shape their kind, separator and lengths (shapeOf).
	raw   []byte
	shape uint64
	// pend is the sum of counter lines of key's series not yet added to
	// it, of period pendGen; see pending.go. pendGen is also set when a
	// line was added to the series in that period, the pending sum empty.
	pend    float64
	pendGen uint32
	dirty   bool // in the Writer's dirty list
	drops   bool // dropped is not zero
	named   bool // key is not nil

	key  []byte // nil when the entry is empty or the name unusable
	hash uint64 // of key
	// at is where key's series was when last added to; see at.holds.
	at      cachedEntry
	dropped [3]uint32 // DroppedTags: NotKept, Invalid, TooMany
	_       [4]byte
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
	a.writers.register(w)
	return w
}

// Add adds one parsed metric to its series, creating the series if needed.
// Outside a run of Adds (see Begin) it is a run of its own.
func (w *Writer) Add(m *parser.Metric) error {
	if !w.inRun {
		w.Begin()
		defer w.End()
	}
	kind := kindOf(m.Type)
	return w.add(m, kind, rawHash(w.a.rawSeed, kind, m))
}

// kindOf returns the Kind of a metric of type t, or 0.
func kindOf(t parser.Type) Kind {
	switch t {
	case parser.Counter:
		return Counter
	case parser.Gauge:
		return Gauge
	case parser.Timer:
		return Timer
	case parser.Set:
		return Set
	}
	return 0
}

// AddAll adds each metric of ms as Add does, in order, and calls refused
// with the index and the error of each one Add would refuse. It looks up
// the Writer's cache of series keys for all of them first, so that the
// memory reads of the lookups overlap rather than wait for each other.
func (w *Writer) AddAll(ms []parser.Metric, refused func(i int, err error)) {
	if !w.inRun {
		w.Begin()
		defer w.End()
	}
	hs := w.hashes[:0]
	for i := range ms {
		hs = append(hs, rawHash(w.a.rawSeed, kindOf(ms[i].Type), &ms[i]))
	}
	// The reads in loops of their own, for the processor to have them
	// all under way at once.
	var sink uint64
	for _, rh := range hs {
		sink += w.cache[rh%keyCacheSets].rawHash[0] // read the set's line
	}
	for _, rh := range hs {
		set := &w.cache[rh%keyCacheSets]
		for j := range keyCacheWays {
			if set.rawHash[j] == rh {
				if e := &set.entries[j]; len(e.raw) > 0 {
					sink += uint64(e.raw[0]) // read the entry's line and its raw key
				}
				break
			}
		}
	}
	w.sink, w.hashes = sink, hs
	for i := range ms {
		if err := w.add(&ms[i], kindOf(ms[i].Type), hs[i]); err != nil {
			refused(i, err)
		}
	}
}

// add adds m, of kind, whose rawHash is rh, in a run of Adds.
func (w *Writer) add(m *parser.Metric, kind Kind, rh uint64) error {
	if kind == 0 {
		return ErrBadType
	}
	ce := w.seriesKey(kind, m, rh)
	if !ce.named {
		return ErrBadName
	}
	// A counter the run's period has a value of already (see pending.go).
	pendable := kind == Counter && m.Timestamp == 0
	if pendable && w.addPending(ce, m.Value/m.Rate) {
		return nil
	}
	a := w.a
	key, h := ce.key, ce.hash
	sh := a.shardOf(h)

	sh.mu.Lock()
	g, live := a.gen, &a.live
	if m.Timestamp != 0 && a.spans.set && w.route(m.Timestamp) {
		g, live = a.gen-1, &a.spans.closingLive
	}
	slot := g & 1
	existed := true
	// The entry the cache remembers, if it still holds key, else the
	// index's.
	num, obj := ce.at.entry(sh)
	if num == nil && obj == nil {
		r, ok := sh.lookup(h, key)
		if !ok {
			if sh.keys.full(len(key)) {
				sh.mu.Unlock()
				return ErrMaxSeries
			}
			// Its place is reserved before the entry is made.
			if err := a.begin(live, m); err != nil {
				sh.mu.Unlock()
				return err
			}
			r = sh.create(kind, key, h)
		}
		num, obj = ce.at.remember(sh, r)
		existed = ok
	}
	var err error
	if num != nil {
		e := num
		if pendable && ce.pend != 0 && ce.pendGen != g {
			// A sum of the period before, whose end has not published
			// this Writer yet: it waits for this run to end.
			w.publish(sh, ce)
		}
		if e.gen[slot] != g {
			if existed {
				err = a.begin(live, m)
			}
			if err == nil {
				e.gen[slot], e.v[slot] = g, 0
				sh.count[slot]++
				if kind == Gauge && m.Delta && a.gaugeDeltas {
					e.v[slot] = a.deltaBase(sh, e, g)
				}
			}
		}
		if err == nil {
			err = a.updateNum(kind, &e.v[slot], m)
		}
		if pendable && err == nil && ce.pend == 0 {
			ce.pendGen = g
		}
	} else {
		e := obj
		if e.gen[slot] != g {
			if existed {
				err = a.begin(live, m)
			}
			if err == nil {
				e.gen[slot], e.s[slot] = g, newObjSeries(kind, sh.keys.at(e.off, e.n))
			}
		}
		if err == nil {
			err = a.update(e.s[slot], m)
		}
	}
	sh.mu.Unlock()
	return err
}

// begin checks that m may start its series' value in a period, and
// reserves a place for it against Config.MaxSeries: reserved first, as a
// check and a later increment would let Adds on other shards pass the
// bound together. It is called with the series' shard locked.
func (a *Aggregator) begin(live *atomic.Int64, m *parser.Metric) error {
	if !weighable(m) { // a value begun checks in update
		return ErrOverflow
	}
	if n := live.Add(1); a.maxSeries > 0 && n > a.maxSeries {
		live.Add(-1)
		return ErrMaxSeries
	}
	return nil
}

// newObjSeries returns the Series of a timer or set of key for a period.
func newObjSeries(kind Kind, key string) *Series {
	if kind == Timer {
		t := &timerSeries{}
		t.Series = Series{Name: keyName(key), Kind: kind, key: key, TimerStats: &t.stats}
		return &t.Series
	}
	return &Series{Name: keyName(key), Kind: kind, key: key}
}

// timerSeries is a timer's Series and its TimerStats in one allocation.
type timerSeries struct {
	Series
	stats TimerStats
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

// updateNum adds m to *val, the value of a counter or gauge of kind. It
// returns ErrOverflow, leaving *val as it was, when a sum would no longer
// be finite.
func (a *Aggregator) updateNum(kind Kind, val *float64, m *parser.Metric) error {
	switch {
	case kind == Counter:
		v := *val + m.Value/m.Rate
		if !finite(v) {
			return ErrOverflow
		}
		*val = v
	case m.Delta && a.gaugeDeltas:
		v := *val + m.Value
		if !finite(v) {
			return ErrOverflow
		}
		*val = v
	default:
		*val = m.Value
	}
	return nil
}

// update adds m to s, a timer or set. It returns ErrOverflow, leaving s as
// it was, when a sum would no longer be finite.
func (a *Aggregator) update(s *Series, m *parser.Metric) error {
	switch s.Kind {
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
// empty period. Every shard is locked while the period's number changes,
// which is O(1), so the period ends at the same instant in all shards: no
// Add is half done, and a Snapshot never holds more than Config.MaxSeries
// series. The counter sums each Writer holds of the period are then
// added to their series, each Writer's once its run of Adds ends (see
// Writer.Begin), so a goroutine must not call Snapshot inside a run. The
// period's values are then copied out of each shard in turn, under its
// lock, while the next period fills the entries' other slot. With gauge
// deltas, it then records the period's gauge values and expires old
// ones. Snapshots are serialised.
//
// A closing period still open (see Roll) is taken first, and kept for the
// next TakeClosing or Roll to return.
func (a *Aggregator) Snapshot() *Snapshot {
	a.snapMu.Lock()
	defer a.snapMu.Unlock()
	if a.spans.closingOpen {
		a.pending = a.takeClosing()
	}
	a.lockAll()
	g := a.gen
	a.gen++
	a.genNow.Store(a.gen)
	// With every shard locked no reservation is pending: live is exactly
	// the number of series taken.
	a.live.Store(0)
	a.unlockAll()
	a.publishWriters()
	return a.taken(a.take(g, g+1))
}

// taken counts snap, a period just taken, and records its gauge values.
// It is called with snapMu held.
func (a *Aggregator) taken(snap *Snapshot) *Snapshot {
	a.period++
	if a.gaugeDeltas {
		a.updateBases(snap)
	}
	return snap
}

// take copies the values of period g out of every shard into a new
// Snapshot. No Add writes g's slot any more; keep is the period whose
// values are in the other slot (open, or just taken). It also frees the
// entries that hold a value of neither, and compacts a shard's keys when
// more than half of the bytes of its arena are dead. It is called with
// snapMu held.
func (a *Aggregator) take(g, keep uint32) *Snapshot {
	snap := a.newSnapshot()
	slot, other := g&1, g&1^1
	for i := range a.shards {
		sh := &a.shards[i]
		sh.mu.Lock()
		nums := make([]numRec, 0, sh.count[slot])
		var objs []*Series
		for j := range sh.nums.n {
			e := sh.nums.at(j)
			switch {
			case e.n == 0: // not in use
			case e.gen[slot] == g:
				k := sh.keys.at(e.off, e.n)
				if a.gaugeDeltas && Kind(k[0]) == Gauge {
					// The gauge bases keep it for up to GaugeBaseTTL
					// periods: in the arena it would keep it alive.
					k = strings.Clone(k)
				}
				nums = append(nums, numRec{key: k, v: e.v[slot]})
			case e.gen[other] != keep:
				a.unindex(sh, j, sh.keys.at(e.off, e.n))
				sh.keys.dead += int(e.n)
				*e = numEntry{}
				sh.nums.release(j)
			}
		}
		for j := range sh.objs.n {
			e := sh.objs.at(j)
			switch {
			case e.n == 0:
			case e.gen[slot] == g:
				objs = append(objs, e.s[slot])
				e.s[slot] = nil
			case e.gen[other] != keep:
				a.unindex(sh, j|objRef, sh.keys.at(e.off, e.n))
				sh.keys.dead += int(e.n)
				*e = objEntry{}
				sh.objs.release(j)
			}
		}
		sh.count[slot] = 0
		if dead := sh.keys.dead; dead > a.compactMin && 2*dead > sh.keys.size {
			sh.compact()
		}
		sh.mu.Unlock()
		if len(nums) == 0 {
			nums = nil
		}
		snap.nums[i], snap.objs[i] = nums, objs
		snap.n += len(nums) + len(objs)
	}
	return snap
}

// compact copies the keys of sh's entries in use into a new arena, so
// that the old one, with its dead keys, can be freed (once no Snapshot or
// Series holds a key in it). It is called with sh locked.
func (sh *shard) compact() {
	old := sh.keys
	sh.keys = arena{}
	sh.arenaEpoch++
	for j := range sh.nums.n {
		if e := sh.nums.at(j); e.n != 0 {
			e.off, _ = sh.keys.intern(unsafe.Slice(unsafe.StringData(old.at(e.off, e.n)), e.n))
		}
	}
	for j := range sh.objs.n {
		if e := sh.objs.at(j); e.n != 0 {
			e.off, _ = sh.keys.intern(unsafe.Slice(unsafe.StringData(old.at(e.off, e.n)), e.n))
		}
	}
}

// updateBases records the gauge values of snap, the period just taken,
// drops the values older than the TTL and, with MaxSeries set, the oldest
// ones past MaxSeries. It is called with snapMu held.
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
		sh.baseMu.Lock()
		for _, r := range snap.nums[i] {
			if Kind(r.key[0]) == Gauge {
				sh.base[r.key] = gaugeBase{value: r.v, period: now}
			}
		}
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
	return &Snapshot{nums: make([][]numRec, len(a.shards)), objs: make([][]*Series, len(a.shards)), per: len(a.shards) / a.parts}
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
