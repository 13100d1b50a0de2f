package flusher

import (
	"bytes"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/libratod/libratod/aggregator"
	"github.com/libratod/libratod/otlp"
)

// OTLPMapping says how a period's series become OTLP points.
type OTLPMapping struct {
	// Temporality of counters and histograms: otlp.Delta (each point
	// covers its own period) or otlp.Cumulative (each covers everything
	// since the series was first seen by this process).
	Temporality otlp.Temporality
	// TimersAsSummary sends timers, histograms and distributions as
	// summaries (count, sum, the percentiles, and quantiles 0 and 1 as min
	// and max) rather than exponential histograms.
	TimersAsSummary bool
	// BatchSize is the most points one request carries.
	BatchSize int
	// Resource is the resource of every point (host.name, service.name).
	Resource otlp.Resource
	// Attributes are set on every point (the global tags); a series tag
	// of the same key wins.
	Attributes []otlp.Attribute
	// ScopeVersion is libratod's version, sent as the scope's.
	ScopeVersion string
	// MaxCumulative bounds the series whose running totals are kept for
	// cumulative temporality; 0: one million.
	MaxCumulative int
}

// otlpBuilder turns the series of one period into OTLP points and hands
// them to emit BatchSize at a time. It is the OTLP output's counterpart of
// batcher.
type otlpBuilder struct {
	m      *OTLPMapping
	pcts   []float64 // the percentiles of summaries, each in (0, 100]
	prefix string
	attrs  []otlp.Attribute // global attributes, on every point
	// start and end bound the period, in unix nanoseconds.
	start, end int64
	cum        *cumulative // nil for delta temporality
	emit       func(*otlp.Batch)

	b     *otlp.Batch
	hist  otlp.HistogramBuilder
	arena []otlp.Attribute
	res   Result
	// refused counts the series whose point could not be built (a value
	// OTLP cannot carry).
	refused int
	// Scratch space reused from series to series.
	tags  []aggregator.Tag
	name  []byte
	key   []byte
	pv    []aggregator.Percentile
	pok   []bool
	quant []otlp.Quantile
}

// newOTLPBuilder returns a builder of the period (start, end].
func newOTLPBuilder(m *OTLPMapping, s *settings, start, end int64, cum *cumulative, emit func(*otlp.Batch)) *otlpBuilder {
	ob := &otlpBuilder{m: m, pcts: s.cfg.Percentiles, prefix: s.cfg.Prefix, start: start, end: end, emit: emit}
	if m.Temporality == otlp.Cumulative {
		ob.cum = cum
	}
	for _, a := range m.Attributes {
		if a.Key != "" {
			ob.attrs = setAttr(ob.attrs, otlp.Attribute{Key: validUTF8(a.Key), Value: validUTF8(a.Value)})
		}
	}
	ob.newBatch()
	return ob
}

func (ob *otlpBuilder) newBatch() {
	ob.b = &otlp.Batch{Resource: ob.m.Resource, ScopeVersion: ob.m.ScopeVersion,
		Points: make([]otlp.Point, 0, min(ob.m.BatchSize, 1024))}
	ob.arena = nil // the batch owns the attributes it points to
}

// series adds the point of one series.
func (ob *otlpBuilder) series(sr *aggregator.Series) {
	ob.res.Series++
	p := otlp.Point{Name: ob.pointName(sr.Name), Start: ob.start, Time: ob.end}
	ob.tags = sr.AppendTags(ob.tags[:0])
	p.Attributes = ob.attributes(ob.tags)
	ok := true
	switch sr.Kind {
	case aggregator.Counter:
		ok = ob.counter(sr, p)
	case aggregator.Gauge:
		p.Kind, p.Value = otlp.KindGauge, sr.Value
		ok = finiteValue(p.Value) && ob.add(p)
	case aggregator.Set:
		p.Kind, p.Value = otlp.KindGauge, float64(sr.Cardinality())
		ok = ob.add(p)
	case aggregator.Timer:
		if ob.m.TimersAsSummary {
			ok = ob.summary(sr, p)
		} else {
			ok = ob.histogram(sr, p)
		}
	}
	if !ok {
		ob.refused++
		ob.res.Dropped++
	}
}

// counter adds a counter's Sum: the period's weighted total (delta), or
// the running total since the series' start (cumulative). A delta is sent
// as monotonic when it is not negative; a running total while none of its
// deltas was.
func (ob *otlpBuilder) counter(sr *aggregator.Series, p otlp.Point) bool {
	if !finiteValue(sr.Value) {
		return false
	}
	p.Kind, p.Value = otlp.KindSum, sr.Value
	p.Temporality, p.Monotonic = otlp.Delta, sr.Value >= 0
	if ob.cum != nil {
		ob.key = seriesKey(ob.key[:0], p.Name, p.Attributes)
		st := ob.cum.counter(ob.key, ob.start, sr.Value)
		p.Temporality, p.Start, p.Value, p.Monotonic = otlp.Cumulative, st.start, st.total, st.monotonic
	}
	return ob.add(p)
}

// histogram adds a timer's exponential histogram. Its buckets hold the
// values the aggregator kept (every one, up to aggregate.max_timer_samples
// a period) or, past that bound, the buckets of its sketch (the same ones,
// at otlp.HistogramScale), scaled to the weighted count; count, sum, min
// and max are exact. With cumulative temporality the buckets, count and
// sum run on from the series' start.
func (ob *otlpBuilder) histogram(sr *aggregator.Series, p otlp.Point) bool {
	ob.hist.Reset()
	count, sum, lo, hi := sr.Count, sr.Sum, sr.Min, sr.Max
	p.Temporality = otlp.Delta
	if ob.cum != nil {
		ob.key = seriesKey(ob.key[:0], p.Name, p.Attributes)
		st := ob.cum.histogram(ob.key, ob.start, sr, count, sum, lo, hi)
		p.Temporality, p.Start = otlp.Cumulative, st.start
		count, sum, lo, hi = st.total, st.sum, st.min, st.max
		for i, c := range st.pos {
			ob.hist.AddBucket(i, false, c)
		}
		for i, c := range st.neg {
			ob.hist.AddBucket(i, true, c)
		}
		ob.hist.AddZero(st.zero)
	} else if sr.PercentilesExact() {
		ob.hist.Add(sr.Values...)
	} else {
		ob.hist.AddZero(sr.EachBucket(ob.hist.AddBucket))
	}
	return ob.hist.Append(ob.b, p, count, sum, lo, hi) == nil && ob.added()
}

// summary adds a timer's summary: the weighted count and sum, quantile 0
// (min), the configured percentiles, and quantile 1 (max).
func (ob *otlpBuilder) summary(sr *aggregator.Series, p otlp.Point) bool {
	ob.quant = append(ob.quant[:0], otlp.Quantile{Quantile: 0, Value: sr.Min})
	ob.pv, ob.pok = sr.Percentiles(ob.pcts, ob.pv[:0], ob.pok[:0])
	for i, pc := range ob.pv {
		if ob.pok[i] && ob.pcts[i] < 100 {
			ob.quant = append(ob.quant, otlp.Quantile{Quantile: ob.pcts[i] / 100, Value: pc.Max})
		}
	}
	ob.quant = append(ob.quant, otlp.Quantile{Quantile: 1, Value: sr.Max})
	count := min(max(1, math.Round(sr.Count)), maxCount)
	if !finiteValue(sr.Sum) || !finiteValue(sr.Min) || !finiteValue(sr.Max) {
		return false
	}
	for _, q := range ob.quant {
		if !finiteValue(q.Value) {
			return false
		}
	}
	ob.b.AddSummary(p, uint64(count), sr.Sum, ob.quant)
	return ob.added()
}

// add appends p to the batch under way.
func (ob *otlpBuilder) add(p otlp.Point) bool {
	ob.b.Points = append(ob.b.Points, p)
	return ob.added()
}

// added counts the point just appended and hands the batch on when full.
func (ob *otlpBuilder) added() bool {
	ob.res.Measurements++
	if len(ob.b.Points) >= ob.m.BatchSize {
		ob.emit(ob.b)
		ob.newBatch()
	}
	return true
}

// done hands on the last batch and returns the period's result.
func (ob *otlpBuilder) done() Result {
	if len(ob.b.Points) > 0 {
		ob.emit(ob.b)
	}
	return ob.res
}

// pointName returns the OTLP instrument name of a series: the prefix and
// the name joined by ".", each byte outside OTLP's instrument-name
// alphabet (letters, digits, "_", ".", "-", "/") replaced by "_", a name
// that does not start with a letter prefixed with "m_", cut at 255 bytes.
func (ob *otlpBuilder) pointName(name string) string {
	if ob.prefix == "" && validOTLPName(name) {
		return name // the series' own string: no copy
	}
	b := ob.name[:0]
	if ob.prefix != "" {
		b = append(append(b, ob.prefix...), '.')
	}
	b = append(b, name...)
	ob.name = b
	return otlpName(b)
}

// otlpName returns b as a valid OTLP instrument name (see pointName),
// without allocating when b is one already but for the string itself.
func otlpName(b []byte) string {
	if validOTLPName(b) {
		return string(b)
	}
	var sb strings.Builder
	if len(b) == 0 || !isLetter(b[0]) {
		sb.WriteString("m_")
	}
	for _, c := range b {
		if sb.Len() == 255 {
			break
		}
		if !isInstrumentByte(c) {
			c = '_'
		}
		sb.WriteByte(c)
	}
	return sb.String()
}

// validOTLPName reports whether b is a valid OTLP instrument name.
func validOTLPName[S ~string | ~[]byte](b S) bool {
	valid := len(b) > 0 && len(b) <= 255 && isLetter(b[0])
	for i := 0; valid && i < len(b); i++ {
		valid = isInstrumentByte(b[i])
	}
	return valid
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

func isInstrumentByte(c byte) bool {
	return isLetter(c) || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-' || c == '/'
}

// attributes returns the global attributes with the series tags set over
// them (a bare DogStatsD tag gets the value "true"), in ob's arena.
func (ob *otlpBuilder) attributes(tags []aggregator.Tag) []otlp.Attribute {
	n := len(ob.attrs) + len(tags)
	if n == 0 {
		return nil
	}
	if cap(ob.arena)-len(ob.arena) < n {
		ob.arena = make([]otlp.Attribute, 0, max(n*min(ob.m.BatchSize, 1024), n))
	}
	from := len(ob.arena)
	merged := append(ob.arena[from:from:cap(ob.arena)], ob.attrs...)
	for _, t := range tags {
		v := t.Value
		if v == "" {
			v = bareTagValue
		}
		merged = setAttr(merged, otlp.Attribute{Key: validUTF8(t.Name), Value: validUTF8(v)})
	}
	ob.arena = ob.arena[:from+len(merged)]
	return merged[:len(merged):len(merged)]
}

// setAttr sets a in attrs, replacing an attribute of the same key.
func setAttr(attrs []otlp.Attribute, a otlp.Attribute) []otlp.Attribute {
	for i := range attrs {
		if attrs[i].Key == a.Key {
			attrs[i].Value = a.Value
			return attrs
		}
	}
	return append(attrs, a)
}

// seriesKey appends the identity of a point, name and attributes, to dst.
func seriesKey(dst []byte, name string, attrs []otlp.Attribute) []byte {
	dst = append(dst, name...)
	for _, a := range attrs {
		dst = append(append(append(append(dst, 0), a.Key...), 0), a.Value...)
	}
	return dst
}

// validUTF8 returns s with each invalid UTF-8 sequence replaced by U+FFFD:
// OTLP strings are protobuf strings, which must be UTF-8, and tags come from
// the network as they are (with the Librato output off, no sanitizer
// cleaned them). It allocates only for an invalid s.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

func finiteValue(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// otlpOutput is the OTLP output: data points, encoded as protobuf and
// sent with the OTLPSender of the settings (an otlp.Client).
type otlpOutput struct{}

// otlpSpoolKind is the spool record kind of an OTLP request (gob of an
// otlp.Batch, version 1).
const otlpSpoolKind = 0x10

func (otlpOutput) name() string           { return "otlp" }
func (otlpOutput) size(b *otlp.Batch) int { return len(b.Points) }
func (otlpOutput) kind(*settings) uint8   { return otlpSpoolKind }
func (otlpOutput) firstName(b *otlp.Batch) string {
	if len(b.Points) == 0 {
		return ""
	}
	return b.Points[0].Name
}

// unix returns the period start of b's points (those of a request all
// have one).
func (otlpOutput) unix(b *otlp.Batch) int64 {
	if len(b.Points) == 0 {
		return 0
	}
	p := b.Points[0]
	if p.Start != 0 && p.Temporality != otlp.Cumulative {
		return p.Start / 1e9
	}
	return p.Time/1e9 - 1
}

func (otlpOutput) build(l *lane[*otlp.Batch], s *settings, p period, emit func(*otlp.Batch)) Result {
	ob := newOTLPBuilder(&s.cfg.OTLP.OTLPMapping, s, p.start.UnixNano(), p.end.UnixNano(), l.f.cum, emit)
	p.snap.Drain(ob.series)
	res := ob.done()
	if ob.refused > 0 {
		l.m.dropped.WithLabelValues("not_sendable").Add(float64(ob.refused))
	}
	if ob.cum != nil {
		n, resets := ob.cum.counts()
		l.f.m.cumulativeSeries.Set(float64(n))
		l.f.m.cumulativeResets.Add(float64(resets))
	}
	return res
}

func (otlpOutput) send(ctx context.Context, l *lane[*otlp.Batch], s *settings, b *otlp.Batch) (accepted, *refusal) {
	var enc otlp.Encoder
	n := len(b.Points)
	if w := s.cfg.OTLP.DryRun; w != nil {
		// -dry-run: the request as OTLP/JSON, one a line.
		body, encoded := enc.AppendJSON(nil, b)
		l.f.dryMu.Lock()
		_, err := w.Write(append(body, '\n'))
		l.f.dryMu.Unlock()
		if err != nil {
			return accepted{}, &refusal{message: err.Error(), reason: "dry run: " + err.Error(), retryable: true}
		}
		return accepted{status: 200, sent: encoded, skipped: n - encoded}, nil
	}
	body, encoded := enc.Append(nil, b)
	refused := n - encoded
	if refused >= n {
		return accepted{skipped: n, skippedName: b.Points[0].Name}, nil
	}
	res, err := s.otlpDst.Send(ctx, body)
	if err == nil {
		a := accepted{status: res.StatusCode, sent: n - refused, skipped: refused, failed: int(min(res.Rejected, int64(n)))}
		if refused > 0 {
			a.skippedName = b.Points[enc.Refused()[0]].Name
		}
		if res.Message != "" && (res.Rejected > 0 || res.Undecodable) {
			a.errors = []string{res.Message}
		}
		return a, nil
	}
	var oe *otlp.Error
	if !errors.As(err, &oe) {
		oe = &otlp.Error{Message: err.Error(), Retryable: true, Err: err}
	}
	return accepted{}, &refusal{
		status:      oe.StatusCode,
		message:     oe.Message,
		reason:      oe.Error(),
		retryable:   oe.Retryable,
		rateLimited: oe.StatusCode == 429,
		credentials: oe.Credentials,
		splittable:  oe.Refused || oe.StatusCode == 413,
		retryAfter:  oe.RetryAfter,
	}
}

// halves splits b's points in two; both halves share b's arenas, which
// no one writes once a batch is built.
func (otlpOutput) halves(b *otlp.Batch) (*otlp.Batch, *otlp.Batch) {
	h := len(b.Points) / 2
	lo, hi := *b, *b
	lo.Points, hi.Points = b.Points[:h:h], b.Points[h:]
	return &lo, &hi
}

// join returns a's and b's points in one batch; they are halves of one
// batch (see halves), so share its arenas.
func (otlpOutput) join(a, b *otlp.Batch) *otlp.Batch {
	r := *a
	r.Points = append(slices.Clip(a.Points), b.Points...)
	return &r
}

func (otlpOutput) without(b *otlp.Batch, _ func(string) bool) (*otlp.Batch, int) { return b, 0 }

// identity is the point's name and attributes (see seriesKey).
func (otlpOutput) identity(dst []byte, b *otlp.Batch, i int) []byte {
	p := &b.Points[i]
	return seriesKey(dst, p.Name, p.Attributes)
}

// filter keeps b's arenas, which the points left refer to, and returns b
// itself when it keeps every point.
func (otlpOutput) filter(b *otlp.Batch, keep func(int) bool) (*otlp.Batch, int) {
	var kept []otlp.Point // nil until one is left out
	for i, p := range b.Points {
		switch {
		case keep(i):
			if kept != nil {
				kept = append(kept, p)
			}
		case kept == nil:
			kept = append(make([]otlp.Point, 0, len(b.Points)-1), b.Points[:i]...)
		}
	}
	if kept == nil {
		return b, 0
	}
	rest := *b
	rest.Points = kept
	return &rest, len(b.Points) - len(kept)
}

func (otlpOutput) marshal(dst []byte, b *otlp.Batch) []byte {
	buf := bytes.NewBuffer(dst)
	if err := gob.NewEncoder(buf).Encode(b); err != nil {
		// Not expected: an otlp.Batch holds nothing gob cannot encode.
		return dst
	}
	return buf.Bytes()
}

func (otlpOutput) unmarshal(p []byte) (*otlp.Batch, error) {
	b := new(otlp.Batch)
	if err := gob.NewDecoder(bytes.NewReader(p)).Decode(b); err != nil {
		return nil, fmt.Errorf("decoding a spooled OTLP request: %w", err)
	}
	if err := checkBatch(b); err != nil {
		return nil, err
	}
	return b, nil
}

// checkBatch checks that every index and span of b's points lies within
// its arenas (a spooled batch is read back from disk).
func checkBatch(b *otlp.Batch) error {
	in := func(s otlp.Span, n int) bool { return uint64(s.Off)+uint64(s.Len) <= uint64(n) }
	for _, p := range b.Points {
		switch p.Kind {
		case otlp.KindExponentialHistogram:
			if int(p.Index) >= len(b.Histograms) {
				return errors.New("spooled OTLP request: histogram index out of range")
			}
			h := b.Histograms[p.Index]
			if !in(h.Positive.Counts, len(b.Counts)) || !in(h.Negative.Counts, len(b.Counts)) {
				return errors.New("spooled OTLP request: bucket span out of range")
			}
		case otlp.KindSummary:
			if int(p.Index) >= len(b.Summaries) || !in(b.Summaries[p.Index].Quantiles, len(b.Quantiles)) {
				return errors.New("spooled OTLP request: summary out of range")
			}
		}
	}
	return nil
}
