package flusher

import (
	"encoding/binary"
	"hash/maphash"
	"math"
	"math/bits"
	"regexp"
	"strings"
	"sync"

	"github.com/libratod/libratod/aggregator"
	"github.com/libratod/libratod/librato"
)

// measurements turns a snapshot, read with Drain, into Librato
// measurements, handing them to emit BatchSize at a time (the last batch
// may be smaller). emit owns each slice it is given. totals, when not nil,
// holds the running total to send for each counter series (see
// advanceTotals).
func measurements(l *lane[*librato.Batch], s *settings, snap *aggregator.Snapshot, totals map[string]float64, emit func([]librato.Measurement)) Result {
	b := newBatcher(l, s, snap.Len(), emit)
	snap.Drain(func(sr *aggregator.Series) {
		b.res.Series++
		b.series(sr, totals)
	})
	b.countLeftOut() // before the extras, whose own are not counted
	b.extra()
	return b.done()
}

// batcher builds the measurements of one flush and hands them to emit in
// batches of BatchSize, leaving out those on the stop list and any second
// point Librato would identify with one already sent (see identities).
type batcher struct {
	l    *lane[*librato.Batch]
	s    *settings
	emit func([]librato.Measurement)
	size int // the capacity of a new batch
	ms   []librato.Measurement
	// arena holds the batch's merged tag sets, one allocation for many.
	arena []librato.Tag
	ids   *identities
	res   Result
	// stopped and duplicates count the measurements left out.
	stopped, duplicates int
	// Scratch space reused from series to series.
	tags []aggregator.Tag
	pcts []aggregator.Percentile
	pok  []bool
}

// newBatcher returns a batcher for a flush of n series.
func newBatcher(l *lane[*librato.Batch], s *settings, n int, emit func([]librato.Measurement)) *batcher {
	size := min(s.cfg.BatchSize, max(n, 1))
	return &batcher{l: l, s: s, emit: emit, size: size, ms: make([]librato.Measurement, 0, size), ids: newIdentities(s, n)}
}

// add appends m to the batch under way, unless it is left out, and hands
// the batch on when it is full.
func (b *batcher) add(m librato.Measurement) {
	if b.l.stops.has(m.Name) {
		b.stopped++
		return
	}
	if !b.ids.first(&m) {
		b.duplicates++
		return
	}
	b.ms = append(b.ms, m)
	b.res.Measurements++
	if len(b.ms) == b.s.cfg.BatchSize {
		b.emit(b.ms)
		b.ms = make([]librato.Measurement, 0, b.size)
		b.arena = nil // the batch owns the tags it points to
	}
}

// series adds the measurement of one series, and for a timer those of its
// percentiles; totals, when not nil, holds the running totals counters
// are sent as.
func (b *batcher) series(sr *aggregator.Series, totals map[string]float64) {
	name, source, drop := b.s.identity(sr)
	if drop != "" {
		b.l.m.dropped.WithLabelValues(drop).Inc()
		if drop != "excluded" {
			b.res.Dropped++
		}
		return
	}
	m := librato.Measurement{Name: name}
	b.tags = sr.AppendTags(b.tags[:0])
	b.arena = dimensions(b.l.m, b.s, &m, b.tags, b.arena)
	if source != "" {
		b.setSource(&m, source)
	}
	switch sr.Kind {
	case aggregator.Counter:
		m.Value = sr.Value
		if totals != nil {
			m.Value, m.Counter = totals[sr.Key()], true
		}
	case aggregator.Gauge:
		m.Value = sr.Value
	case aggregator.Set:
		m.Value = float64(sr.Cardinality())
	case aggregator.Timer:
		m.Min, m.Max = sr.Min, sr.Max
		setSummary(&m, sr.Count, sr.Mean(), sr.Variance())
		m.Last, m.HasLast = sr.Last, true
		b.add(m)
		b.percentiles(sr, m)
		return
	}
	b.add(m)
}

// setSource gives m the source a series' name yielded (source_regex): the
// legacy API's source, or the tagged API's "source" tag.
func (b *batcher) setSource(m *librato.Measurement, source string) {
	if b.s.cfg.API == librato.Legacy {
		m.Source = librato.SanitizeSource(source)
		return
	}
	if v := librato.SanitizeTagValue(source); v != "" {
		if m.Tags == nil {
			m.Tags = append(make([]librato.Tag, 0, len(b.s.tags)+1), b.s.tags...)
		}
		m.Tags = setTag(m.Tags, librato.Tag{Name: "source", Value: v})
	}
}

// percentiles adds a summary for each percentile of the timer sr, named
// after the timer's measurement m with the percentile's suffix.
func (b *batcher) percentiles(sr *aggregator.Series, m librato.Measurement) {
	if len(b.s.suffixes) == 0 {
		return
	}
	b.pcts, b.pok = sr.Percentiles(b.s.cfg.Percentiles, b.pcts[:0], b.pok[:0])
	for i, p := range b.pcts {
		if !b.pok[i] {
			continue
		}
		pm := m
		pm.Name = librato.SanitizeName(m.Name + b.s.suffixes[i])
		pm.Min, pm.Max = p.Min, p.Max
		setSummary(&pm, float64(p.Count), p.Sum/float64(p.Count), p.Variance)
		pm.HasLast, pm.Last = false, 0
		b.add(pm)
	}
}

// extra adds what the flusher sends besides the StatsD series (Extra), a
// measurement's own tags merged over the batch's on the tagged API.
func (b *batcher) extra() {
	if b.s.cfg.Extra == nil {
		return
	}
	for _, m := range b.s.cfg.Extra() {
		if len(m.Tags) > 0 && b.s.cfg.API != librato.Legacy {
			// Librato replaces the batch's tags with a measurement's own.
			merged := append([]librato.Tag(nil), b.s.tags...)
			for _, t := range m.Tags {
				if t.Name != "" && t.Value != "" {
					merged = setTag(merged, t)
				}
			}
			m.Tags = merged
		}
		b.add(m)
	}
}

// countLeftOut counts the measurements left out so far, in the metrics and
// the result.
func (b *batcher) countLeftOut() {
	if b.stopped > 0 {
		b.l.m.dropped.WithLabelValues("type_conflict").Add(float64(b.stopped))
		b.res.Dropped += b.stopped
	}
	if b.duplicates > 0 {
		b.l.m.dropped.WithLabelValues("duplicate").Add(float64(b.duplicates))
		b.res.Dropped += b.duplicates
	}
}

// done hands on the last batch and returns the flush's result.
func (b *batcher) done() Result {
	if len(b.ms) > 0 {
		b.emit(b.ms)
	}
	return b.res
}

// identities remembers the points of one flush by what identifies them at
// Librato, so that no two points of a flush share a name and tags (or
// source): Librato would keep one and silently drop the other. The
// aggregator already merges series that sanitize alike; what is left are
// series that meet only at the flush: a counter and a gauge of one name, a
// percentile name (x.90) that is also a timer's, a name that source_regex
// or a long prefix's cut turns into another's, a line tag equal to a
// global tag, tags past the 50-tag cut after the global tags.
//
// Points are told apart by a 64-bit hash of the name and tags (or
// source), ASCII case folded as Librato folds names and tags, the tags
// taken as a set: two distinct points collide with a probability of about
// n²/2⁶⁵ (3·10⁻⁸ a flush of a million points), then the second is dropped.
type identities struct {
	api    librato.API
	source string        // the batch's source (legacy)
	tags   []librato.Tag // the batch's tags (tagged)
	seed   maphash.Seed
	h, th  maphash.Hash
	buf    []byte
	// seen is an open-addressed set of the identities (0 for a free
	// slot), at most half full: 16 bytes a point, less than a map.
	seen []uint64
	n    int
}

func newIdentities(s *settings, n int) *identities {
	ids := &identities{api: s.cfg.API, source: s.source, tags: s.tags, seed: maphash.MakeSeed(),
		seen: make([]uint64, max(16, 1<<bits.Len(uint(2*n))))}
	ids.h.SetSeed(ids.seed)
	ids.th.SetSeed(ids.seed)
	return ids
}

// first reports whether m is the first point of the flush with its
// identity, and remembers it.
func (ids *identities) first(m *librato.Measurement) bool {
	ids.h.Reset()
	ids.write(&ids.h, m.Name)
	ids.h.WriteByte(0)
	if ids.api == librato.Legacy {
		src := m.Source
		if src == "" {
			src = ids.source
		}
		ids.write(&ids.h, src)
	} else {
		tags := m.Tags
		if len(tags) == 0 {
			tags = ids.tags
		}
		var sum uint64 // order does not matter, and names are unique
		for _, t := range tags {
			ids.th.Reset()
			ids.write(&ids.th, t.Name)
			ids.th.WriteByte(0)
			ids.write(&ids.th, t.Value)
			sum += ids.th.Sum64()
		}
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], sum)
		ids.h.Write(b[:])
	}
	id := max(ids.h.Sum64(), 1) // 0 marks a free slot
	if 2*(ids.n+1) > len(ids.seen) {
		ids.grow()
	}
	if !ids.insert(id) {
		return false
	}
	ids.n++
	return true
}

// insert adds id to the set; false if it was there.
func (ids *identities) insert(id uint64) bool {
	mask := uint64(len(ids.seen) - 1)
	for i := id & mask; ; i = (i + 1) & mask {
		switch ids.seen[i] {
		case 0:
			ids.seen[i] = id
			return true
		case id:
			return false
		}
	}
}

// grow doubles the set (more points than the snapshot had series: the
// percentiles and the extra measurements).
func (ids *identities) grow() {
	old := ids.seen
	ids.seen = make([]uint64, 2*len(old))
	for _, id := range old {
		if id != 0 {
			ids.insert(id)
		}
	}
}

// write writes s to h with ASCII letters lower-cased.
func (ids *identities) write(h *maphash.Hash, s string) {
	ids.buf = ids.buf[:0]
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		ids.buf = append(ids.buf, c)
	}
	h.Write(ids.buf)
}

// maxCount bounds the count sent, far below where an int64 conversion
// would go wrong.
const maxCount = 1 << 53

// setSummary sets the count, sum, sum of squares and standard deviation
// of m (whose Min and Max are set) from a summary of values of total
// weight w (> 0), mean mean and population variance variance, so that
// Librato derives the same mean and spread from what it is sent.
// Librato's count is an integer: the count sent is round(w), at least 1;
// the sum is mean*count, so that sum/count stays within [Min, Max] (to
// the last bit of a float64); the
// sum of squares is count*(variance+mean^2), consistent with both; and
// StdDev is sqrt(variance), computed without the cancellation that
// deriving it from the sum of squares suffers.
func setSummary(m *librato.Measurement, w, mean, variance float64) {
	n := min(max(1, math.Round(w)), maxCount)
	mean = min(max(mean, m.Min), m.Max)
	sum := mean * n
	// Keep the product's rounding from putting sum/n past a bound, where a
	// float64 allows (when Min == Max it may not: then sum/n is within an
	// ulp or two of them).
	for range 4 {
		if q := sum / n; q > m.Max {
			sum = math.Nextafter(sum, math.Inf(-1))
		} else if q < m.Min {
			sum = math.Nextafter(sum, math.Inf(1))
		} else {
			break
		}
	}
	variance = max(variance, 0)
	m.Count, m.Sum = int64(n), sum
	m.SumSquares = n * (variance + mean*mean)
	m.StdDev, m.HasStdDev = math.Sqrt(variance), true
}

// dimensions sets m's tags (Tagged API) or source (Legacy API) from the
// series tags. The merged tags are appended to arena, which is returned.
func dimensions(lm *laneMetrics, s *settings, m *librato.Measurement, tags []aggregator.Tag, arena []librato.Tag) []librato.Tag {
	if len(tags) == 0 {
		return arena
	}
	if s.cfg.API == librato.Legacy {
		for _, t := range tags {
			if t.Name == "source" {
				m.Source = librato.SanitizeSource(t.Value)
				continue
			}
			lm.tagsDropped.WithLabelValues("legacy_api").Inc()
		}
		return arena
	}
	if limit := 4 * librato.MaxTags; len(tags) > limit {
		// Far more than can be sent: spare the quadratic merge.
		lm.tagsDropped.WithLabelValues("too_many").Add(float64(len(tags) - limit))
		tags = tags[:limit]
	}
	if cap(arena)-len(arena) < len(s.tags)+len(tags) {
		arena = make([]librato.Tag, 0, max(s.cfg.BatchSize*(len(s.tags)+len(tags)), len(s.tags)+len(tags)))
	}
	from := len(arena)
	merged := append(arena[from:from:cap(arena)], s.tags...)
	for _, t := range tags {
		n := librato.SanitizeTagName(t.Name)
		v := t.Value
		if v == "" {
			v = bareTagValue // a bare DogStatsD tag
		}
		v = librato.SanitizeTagValue(v)
		if n == "" || v == "" {
			lm.tagsDropped.WithLabelValues("invalid").Inc()
			continue
		}
		merged = setTag(merged, librato.Tag{Name: n, Value: v})
	}
	if len(merged) > librato.MaxTags {
		lm.tagsDropped.WithLabelValues("too_many").Add(float64(len(merged) - librato.MaxTags))
		merged = merged[:librato.MaxTags]
	}
	m.Tags = merged[:len(merged):len(merged)]
	return arena[:from+len(merged)]
}

// setTag sets t in tags, replacing a tag of the same name.
func setTag(tags []librato.Tag, t librato.Tag) []librato.Tag {
	for i := range tags {
		if tags[i].Name == t.Name {
			tags[i].Value = t.Value
			return tags
		}
	}
	return append(tags, t)
}

// wanted applies Include and Exclude to a series name.
func (s *settings) wanted(name string) bool {
	if len(s.cfg.Include) > 0 {
		in := false
		for _, re := range s.cfg.Include {
			if re.MatchString(name) {
				in = true
				break
			}
		}
		if !in {
			return false
		}
	}
	for _, re := range s.cfg.Exclude {
		if re.MatchString(name) {
			return false
		}
	}
	return true
}

// takeSource applies a source pattern to a name: on a match with capture
// groups, it returns the name without the match (and without the dots
// left at its ends) and the groups joined with ".".
func takeSource(re *regexp.Regexp, name string) (string, string) {
	loc := re.FindStringSubmatchIndex(name)
	if len(loc) < 4 {
		return name, ""
	}
	var parts []string
	for i := 2; i+1 < len(loc); i += 2 {
		if loc[i] >= 0 && loc[i+1] > loc[i] {
			parts = append(parts, name[loc[i]:loc[i+1]])
		}
	}
	if len(parts) == 0 {
		return name, ""
	}
	rest := strings.Trim(name[:loc[0]]+"."+name[loc[1]:], ".")
	rest = strings.ReplaceAll(rest, "..", ".")
	if rest == "" {
		return name, "" // nothing would be left of the name
	}
	return rest, strings.Join(parts, ".")
}

// identity returns the name a series is sent under and the source its
// name gives through SourceRegex (unsanitized), or the reason it is not
// sent: "excluded" (Include, Exclude) or "bad_name" (nothing is left of
// the name once sanitized).
func (s *settings) identity(sr *aggregator.Series) (name, source, drop string) {
	name = sr.Name
	if !s.wanted(name) {
		return "", "", "excluded"
	}
	if s.cfg.SourceRegex != nil {
		name, source = takeSource(s.cfg.SourceRegex, name)
	}
	if s.cfg.Prefix != "" {
		name = s.cfg.Prefix + "." + name
	}
	name = librato.SanitizeName(name)
	if name == "" {
		return "", "", "bad_name"
	}
	return name, source, ""
}

// advanceTotals adds a period's counters to the running totals of
// counters_as = "counter" and returns the total to send for each counter
// series of snap; nil when counters are not sent as counters. It must be
// called for each period in period order, before the period is handed to
// a delivery goroutine: deliveries of successive periods overlap when
// Librato is slow, and a total that went down would read as a reset.
func (f *Flusher) advanceTotals(s *settings, snap *aggregator.Snapshot) map[string]float64 {
	if !s.cfg.CountersAsCounters || s.cfg.API != librato.Legacy {
		return nil
	}
	f.totals.beginPeriod()
	out := make(map[string]float64)
	var tags []aggregator.Tag
	snap.Each(func(sr *aggregator.Series) {
		if sr.Kind != aggregator.Counter {
			return
		}
		name, source, drop := s.identity(sr)
		if drop != "" {
			return
		}
		// The source the measurement will carry: the name's, else the
		// last "source" tag, else the default (as dimensions does).
		src := ""
		tags = sr.AppendTags(tags[:0])
		for _, t := range tags {
			if t.Name == "source" {
				src = librato.SanitizeSource(t.Value)
			}
		}
		if v := librato.SanitizeSource(source); v != "" {
			src = v
		}
		if src == "" {
			src = s.source
		}
		out[sr.Key()] = f.totals.add(name+"\x00"+src, sr.Value)
	})
	return out
}

// totalTTL is how many periods a running total of counters_as = "counter"
// survives without data; a counter back after that starts again from 0,
// which Librato reads as a reset.
const totalTTL = 8640

// runningTotals holds the running totals of counters sent as Librato
// counters.
type runningTotals struct {
	mu     sync.Mutex
	period int
	m      map[string]*runningTotal
}

type runningTotal struct {
	v    float64
	seen int
}

// beginPeriod starts a period, expiring the totals idle for totalTTL
// periods once in a while.
func (r *runningTotals) beginPeriod() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.period++
	if r.period%360 == 0 {
		for k, t := range r.m {
			if r.period-t.seen > totalTTL {
				delete(r.m, k)
			}
		}
	}
}

// add adds v to the total of key and returns the new total.
func (r *runningTotals) add(key string, v float64) float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = make(map[string]*runningTotal)
	}
	t := r.m[key]
	if t == nil {
		t = &runningTotal{}
		r.m[key] = t
	}
	t.v += v
	t.seen = r.period
	return t.v
}
