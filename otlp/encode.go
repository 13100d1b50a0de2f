package otlp

import (
	"cmp"
	"math"
	"slices"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers of opentelemetry-proto (metrics_service.proto,
// metrics.proto, common.proto, resource.proto).
const (
	fRequestResourceMetrics = 1 // ExportMetricsServiceRequest.resource_metrics

	fResourceMetricsResource = 1 // ResourceMetrics.resource
	fResourceMetricsScope    = 2 // ResourceMetrics.scope_metrics
	fResourceAttributes      = 1 // Resource.attributes

	fScopeMetricsScope   = 1 // ScopeMetrics.scope
	fScopeMetricsMetrics = 2 // ScopeMetrics.metrics
	fScopeName           = 1 // InstrumentationScope.name
	fScopeVersion        = 2 // InstrumentationScope.version

	fKeyValueKey      = 1 // KeyValue.key
	fKeyValueValue    = 2 // KeyValue.value
	fAnyValueString   = 1 // AnyValue.string_value
	fMetricName       = 1 // Metric.name
	fMetricGauge      = 5 // Metric.gauge
	fMetricSum        = 7 // Metric.sum
	fMetricExpHist    = 10
	fMetricSummary    = 11
	fDataPoints       = 1 // Gauge, Sum, ExponentialHistogram, Summary .data_points
	fTemporality      = 2 // Sum, ExponentialHistogram .aggregation_temporality
	fSumMonotonic     = 3 // Sum.is_monotonic
	fPointStart       = 2 // every data point's start_time_unix_nano
	fPointTime        = 3 // every data point's time_unix_nano
	fNumberAttributes = 7 // NumberDataPoint.attributes
	fNumberDouble     = 4 // NumberDataPoint.as_double

	fHistAttributes = 1 // ExponentialHistogramDataPoint.attributes
	fHistCount      = 4
	fHistSum        = 5
	fHistScale      = 6
	fHistZeroCount  = 7
	fHistPositive   = 8
	fHistNegative   = 9
	fHistMin        = 12
	fHistMax        = 13
	fBucketsOffset  = 1 // ExponentialHistogramDataPoint.Buckets.offset
	fBucketsCounts  = 2 // ExponentialHistogramDataPoint.Buckets.bucket_counts

	fSummaryAttributes = 7 // SummaryDataPoint.attributes
	fSummaryCount      = 4
	fSummarySum        = 5
	fSummaryQuantiles  = 6
	fQuantileQuantile  = 1 // SummaryDataPoint.ValueAtQuantile.quantile
	fQuantileValue     = 2
)

// Encoder encodes a Batch's points as one OTLP ExportMetricsServiceRequest,
// in protobuf (Append) or OTLP/JSON (AppendJSON). Its zero value is ready;
// it keeps scratch memory between calls, so that re-encoding into a reused
// buffer allocates nothing. It is not safe for concurrent use.
//
// Points of the same name, kind, temporality and monotonicity go under one
// Metric. Points sorted by name (then kind, temporality, monotonicity) are
// encoded in one pass, in their order; others are first sorted, stably, in
// scratch memory, so Metrics always come in that order.
//
// A point that cannot be sent is refused: it is left out and its index is
// listed by Refused. Refused are points with a NaN or infinite value, sum,
// min, max or quantile, a quantile outside [0, 1], an unknown Kind or
// Temporality, or an Index or Span outside the batch's slices.
type Encoder struct {
	order   []int32 // the points encoded, grouped
	refused []int
}

// Refused returns the indices in Batch.Points of the points the last call
// refused, in increasing order. The slice is reused by the next call.
func (e *Encoder) Refused() []int { return e.refused }

// Append appends to dst the protobuf encoding of an
// ExportMetricsServiceRequest holding every point of b, and returns the
// extended buffer and the number of points encoded. When no point is
// encoded, the request is empty (zero bytes: no resource metrics).
func (e *Encoder) Append(dst []byte, b *Batch) ([]byte, int) {
	return e.AppendRange(dst, b, 0, len(b.Points))
}

// AppendRange is Append for the points b.Points[i:j] alone, for a caller
// that splits a batch into requests; i and j are clamped to the points.
func (e *Encoder) AppendRange(dst []byte, b *Batch, i, j int) ([]byte, int) {
	e.group(b, i, j)
	if len(e.order) == 0 {
		return dst, 0
	}
	dst, rm := openMsg(dst, fRequestResourceMetrics)
	if len(b.Resource.Attributes) > 0 {
		var r int
		dst, r = openMsg(dst, fResourceMetricsResource)
		dst = appendAttrs(dst, fResourceAttributes, b.Resource.Attributes)
		dst = closeMsg(dst, r)
	}
	dst, sm := openMsg(dst, fResourceMetricsScope)
	dst, sc := openMsg(dst, fScopeMetricsScope)
	dst = appendString(dst, fScopeName, ScopeName)
	if b.ScopeVersion != "" {
		dst = appendString(dst, fScopeVersion, b.ScopeVersion)
	}
	dst = closeMsg(dst, sc)
	for run := e.order; len(run) > 0; {
		n := runLen(b, run)
		dst = appendMetric(dst, b, run[:n])
		run = run[n:]
	}
	dst = closeMsg(dst, sm)
	dst = closeMsg(dst, rm)
	return dst, len(e.order)
}

// group fills e.order with the sendable points of b.Points[i:j], grouped by
// metric, and e.refused with the others.
func (e *Encoder) group(b *Batch, i, j int) {
	j = min(max(j, 0), len(b.Points))
	i = min(max(i, 0), j)
	e.order, e.refused = e.order[:0], e.refused[:0]
	sorted := true
	for k := i; k < j; k++ {
		if !sendable(b, &b.Points[k]) {
			e.refused = append(e.refused, k)
			continue
		}
		if n := len(e.order); n > 0 && sorted {
			sorted = compareKey(&b.Points[e.order[n-1]], &b.Points[k]) <= 0
		}
		e.order = append(e.order, int32(k))
	}
	if !sorted {
		// Stable: a metric's points keep their order, and metrics come in
		// sorted order (not that of their first point) -- deterministic.
		slices.SortStableFunc(e.order, func(x, y int32) int {
			return compareKey(&b.Points[x], &b.Points[y])
		})
	}
}

// compareKey orders points by the key of their Metric: name, kind,
// temporality, monotonicity.
func compareKey(p, q *Point) int {
	if c := strings.Compare(p.Name, q.Name); c != 0 {
		return c
	}
	if c := cmp.Compare(p.Kind, q.Kind); c != 0 {
		return c
	}
	if c := cmp.Compare(temporality(p), temporality(q)); c != 0 {
		return c
	}
	if p.Monotonic == q.Monotonic || p.Kind != KindSum {
		return 0
	}
	if !p.Monotonic {
		return -1
	}
	return 1
}

// runLen returns the number of points at the start of run under one Metric.
func runLen(b *Batch, run []int32) int {
	first := &b.Points[run[0]]
	n := 1
	for n < len(run) && compareKey(first, &b.Points[run[n]]) == 0 {
		n++
	}
	return n
}

// temporality returns the temporality sent for p: Delta when unset.
func temporality(p *Point) Temporality {
	if p.Kind != KindSum && p.Kind != KindExponentialHistogram {
		return 0
	}
	if p.Temporality == 0 {
		return Delta
	}
	return p.Temporality
}

// sendable reports whether p can be encoded (see Encoder).
func sendable(b *Batch, p *Point) bool {
	if p.Temporality > Cumulative {
		return false
	}
	switch p.Kind {
	case KindSum, KindGauge:
		return finite(p.Value)
	case KindExponentialHistogram:
		if int(p.Index) >= len(b.Histograms) {
			return false
		}
		h := &b.Histograms[p.Index]
		return finite(h.Sum) && finite(h.Min) && finite(h.Max) &&
			inArena(h.Positive.Counts, len(b.Counts)) && inArena(h.Negative.Counts, len(b.Counts))
	case KindSummary:
		if int(p.Index) >= len(b.Summaries) {
			return false
		}
		s := &b.Summaries[p.Index]
		if !finite(s.Sum) || !inArena(s.Quantiles, len(b.Quantiles)) {
			return false
		}
		for _, q := range b.quantiles(s.Quantiles) {
			if !(q.Quantile >= 0 && q.Quantile <= 1) || !finite(q.Value) {
				return false
			}
		}
		return true
	}
	return false
}

// inArena reports whether s lies within an arena of n elements.
func inArena(s Span, n int) bool {
	return uint64(s.Off)+uint64(s.Len) <= uint64(n)
}

// appendMetric appends one Metric holding the points run, which share its
// key.
func appendMetric(dst []byte, b *Batch, run []int32) []byte {
	p0 := &b.Points[run[0]]
	dst, m := openMsg(dst, fScopeMetricsMetrics)
	dst = appendString(dst, fMetricName, p0.Name)
	var field protowire.Number
	switch p0.Kind {
	case KindSum:
		field = fMetricSum
	case KindGauge:
		field = fMetricGauge
	case KindExponentialHistogram:
		field = fMetricExpHist
	default:
		field = fMetricSummary
	}
	dst, d := openMsg(dst, field)
	for _, k := range run {
		p := &b.Points[k]
		switch p.Kind {
		case KindSum, KindGauge:
			dst = appendNumberPoint(dst, p)
		case KindExponentialHistogram:
			dst = appendHistPoint(dst, b, p)
		default:
			dst = appendSummaryPoint(dst, b, p)
		}
	}
	if t := temporality(p0); t != 0 {
		dst = protowire.AppendTag(dst, fTemporality, protowire.VarintType)
		dst = protowire.AppendVarint(dst, uint64(t))
	}
	if p0.Kind == KindSum && p0.Monotonic {
		dst = protowire.AppendTag(dst, fSumMonotonic, protowire.VarintType)
		dst = protowire.AppendVarint(dst, 1)
	}
	dst = closeMsg(dst, d)
	return closeMsg(dst, m)
}

// appendTimes appends a data point's start (when set) and time.
func appendTimes(dst []byte, p *Point) []byte {
	if p.Start != 0 {
		dst = appendFixed64(dst, fPointStart, uint64(p.Start))
	}
	return appendFixed64(dst, fPointTime, uint64(p.Time))
}

// appendNumberPoint appends a NumberDataPoint.
func appendNumberPoint(dst []byte, p *Point) []byte {
	dst, n := openMsg(dst, fDataPoints)
	dst = appendAttrs(dst, fNumberAttributes, p.Attributes)
	dst = appendTimes(dst, p)
	dst = appendDouble(dst, fNumberDouble, p.Value)
	return closeMsg(dst, n)
}

// appendHistPoint appends an ExponentialHistogramDataPoint.
func appendHistPoint(dst []byte, b *Batch, p *Point) []byte {
	h := &b.Histograms[p.Index]
	dst, n := openMsg(dst, fDataPoints)
	dst = appendAttrs(dst, fHistAttributes, p.Attributes)
	dst = appendTimes(dst, p)
	dst = appendFixed64(dst, fHistCount, h.Count)
	dst = appendDouble(dst, fHistSum, h.Sum)
	if h.Scale != 0 {
		dst = protowire.AppendTag(dst, fHistScale, protowire.VarintType)
		dst = protowire.AppendVarint(dst, protowire.EncodeZigZag(int64(h.Scale)))
	}
	if h.ZeroCount != 0 {
		dst = appendFixed64(dst, fHistZeroCount, h.ZeroCount)
	}
	dst = appendBuckets(dst, b, fHistPositive, h.Positive)
	dst = appendBuckets(dst, b, fHistNegative, h.Negative)
	if h.Count > 0 {
		dst = appendDouble(dst, fHistMin, h.Min)
		dst = appendDouble(dst, fHistMax, h.Max)
	}
	return closeMsg(dst, n)
}

// appendBuckets appends the Buckets of one sign, when it has any.
func appendBuckets(dst []byte, b *Batch, field protowire.Number, bk Buckets) []byte {
	if bk.Counts.Len == 0 {
		return dst
	}
	dst, n := openMsg(dst, field)
	if bk.Offset != 0 {
		dst = protowire.AppendTag(dst, fBucketsOffset, protowire.VarintType)
		dst = protowire.AppendVarint(dst, protowire.EncodeZigZag(int64(bk.Offset)))
	}
	counts := b.counts(bk.Counts)
	size := 0
	for _, c := range counts {
		size += protowire.SizeVarint(c)
	}
	dst = protowire.AppendTag(dst, fBucketsCounts, protowire.BytesType)
	dst = protowire.AppendVarint(dst, uint64(size))
	for _, c := range counts {
		dst = protowire.AppendVarint(dst, c)
	}
	return closeMsg(dst, n)
}

// appendSummaryPoint appends a SummaryDataPoint.
func appendSummaryPoint(dst []byte, b *Batch, p *Point) []byte {
	s := &b.Summaries[p.Index]
	dst, n := openMsg(dst, fDataPoints)
	dst = appendAttrs(dst, fSummaryAttributes, p.Attributes)
	dst = appendTimes(dst, p)
	dst = appendFixed64(dst, fSummaryCount, s.Count)
	dst = appendDouble(dst, fSummarySum, s.Sum)
	for _, q := range b.quantiles(s.Quantiles) {
		var v int
		dst, v = openMsg(dst, fSummaryQuantiles)
		dst = appendDouble(dst, fQuantileQuantile, q.Quantile)
		dst = appendDouble(dst, fQuantileValue, q.Value)
		dst = closeMsg(dst, v)
	}
	return closeMsg(dst, n)
}

// appendAttrs appends attrs as KeyValues with string values.
func appendAttrs(dst []byte, field protowire.Number, attrs []Attribute) []byte {
	for _, a := range attrs {
		var kv, v int
		dst, kv = openMsg(dst, field)
		dst = appendString(dst, fKeyValueKey, a.Key)
		dst, v = openMsg(dst, fKeyValueValue)
		// Sent even when empty: string_value is a oneof member.
		dst = appendString(dst, fAnyValueString, a.Value)
		dst = closeMsg(dst, v)
		dst = closeMsg(dst, kv)
	}
	return dst
}

// appendFixed64 appends a fixed64 field.
func appendFixed64(dst []byte, field protowire.Number, v uint64) []byte {
	dst = protowire.AppendTag(dst, field, protowire.Fixed64Type)
	return protowire.AppendFixed64(dst, v)
}

// appendDouble appends a double field.
func appendDouble(dst []byte, field protowire.Number, v float64) []byte {
	return appendFixed64(dst, field, math.Float64bits(v))
}

// appendString appends a string field. Protobuf strings must be valid
// UTF-8 (decoders reject the whole request otherwise), so invalid bytes
// become U+FFFD.
func appendString(dst []byte, field protowire.Number, s string) []byte {
	dst = protowire.AppendTag(dst, field, protowire.BytesType)
	if utf8.ValidString(s) {
		return protowire.AppendString(dst, s)
	}
	n := 0
	for _, r := range s {
		n += utf8.RuneLen(r) // an invalid byte is RuneError, 3 bytes
	}
	dst = protowire.AppendVarint(dst, uint64(n))
	for _, r := range s {
		dst = utf8.AppendRune(dst, r)
	}
	return dst
}

// openMsg appends the tag of a length-delimited field and a one-byte
// placeholder for its length; closeMsg, given the returned start, fills it
// in.
func openMsg(dst []byte, field protowire.Number) ([]byte, int) {
	dst = protowire.AppendTag(dst, field, protowire.BytesType)
	dst = append(dst, 0)
	return dst, len(dst)
}

// closeMsg writes the length of the message that began at start as a
// minimal varint: in the placeholder byte when it fits (< 128 bytes), else
// by moving the message up to make room. The moves cost a copy of each
// message longer than 127 bytes per level of nesting above its points: a
// few copies of the request in all, cheaper than sizing every message
// first (see BenchmarkEncode).
func closeMsg(dst []byte, start int) []byte {
	n := len(dst) - start
	if n < 0x80 {
		dst[start-1] = byte(n)
		return dst
	}
	k := protowire.SizeVarint(uint64(n))
	var pad [9]byte
	dst = append(dst, pad[:k-1]...)
	copy(dst[start+k-1:], dst[start:start+n])
	protowire.AppendVarint(dst[start-1:start-1], uint64(n))
	return dst
}
