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
	fDataPoints       = 1 // data_points of Gauge, Sum, ExponentialHistogram...
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
	psize   []int   // the size of each point of order
	msize   []int   // the size of each Metric's data (Gauge, Sum...)
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
	// Sizes first, so that every length is written once, minimal: the
	// points' sizes, each Metric's, then the enclosing messages'.
	e.psize = slices.Grow(e.psize[:0], len(e.order))[:len(e.order)]
	e.msize = e.msize[:0]
	metrics := 0
	for k, run := 0, e.order; len(run) > 0; {
		n := runLen(b, run)
		d := dataSize(b, run[:n], e.psize[k:k+n])
		e.msize = append(e.msize, d)
		metrics += lenField(fScopeMetricsMetrics, metricSize(&b.Points[run[0]], d))
		k += n
		run = run[n:]
	}
	scope := lenField(fScopeName, stringSize(ScopeName))
	if b.ScopeVersion != "" {
		scope += lenField(fScopeVersion, stringSize(b.ScopeVersion))
	}
	sm := lenField(fScopeMetricsScope, scope) + metrics
	res := attrsSize(fResourceAttributes, b.Resource.Attributes)
	rm := lenField(fResourceMetricsScope, sm)
	if len(b.Resource.Attributes) > 0 {
		rm += lenField(fResourceMetricsResource, res)
	}
	dst = slices.Grow(dst, lenField(fRequestResourceMetrics, rm))

	dst = appendLen(dst, fRequestResourceMetrics, rm)
	if len(b.Resource.Attributes) > 0 {
		dst = appendLen(dst, fResourceMetricsResource, res)
		dst = appendAttrs(dst, fResourceAttributes, b.Resource.Attributes)
	}
	dst = appendLen(dst, fResourceMetricsScope, sm)
	dst = appendLen(dst, fScopeMetricsScope, scope)
	dst = appendString(dst, fScopeName, ScopeName)
	if b.ScopeVersion != "" {
		dst = appendString(dst, fScopeVersion, b.ScopeVersion)
	}
	for k, m, run := 0, 0, e.order; len(run) > 0; m++ {
		n := runLen(b, run)
		dst = appendMetric(dst, b, run[:n], e.msize[m], e.psize[k:k+n])
		k += n
		run = run[n:]
	}
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

// dataField returns the Metric field of the data of points of kind k.
func dataField(k Kind) protowire.Number {
	switch k {
	case KindSum:
		return fMetricSum
	case KindGauge:
		return fMetricGauge
	case KindExponentialHistogram:
		return fMetricExpHist
	}
	return fMetricSummary
}

// dataSize returns the size of the Gauge, Sum, ExponentialHistogram or
// Summary message of the points run, whose sizes it stores in psize.
func dataSize(b *Batch, run []int32, psize []int) int {
	n := 0
	for i, k := range run {
		p := &b.Points[k]
		switch p.Kind {
		case KindSum, KindGauge:
			psize[i] = numberPointSize(p)
		case KindExponentialHistogram:
			psize[i] = histPointSize(b, p)
		default:
			psize[i] = summaryPointSize(b, p)
		}
		n += lenField(fDataPoints, psize[i])
	}
	p0 := &b.Points[run[0]]
	if temporality(p0) != 0 {
		n += protowire.SizeTag(fTemporality) + 1
	}
	if p0.Kind == KindSum && p0.Monotonic {
		n += protowire.SizeTag(fSumMonotonic) + 1
	}
	return n
}

// metricSize returns the size of the Metric of points like p0 whose data
// has size data.
func metricSize(p0 *Point, data int) int {
	return lenField(fMetricName, stringSize(p0.Name)) + lenField(dataField(p0.Kind), data)
}

// appendMetric appends the Metric of the points run, which share its key,
// have the sizes psize and data of size data.
func appendMetric(dst []byte, b *Batch, run []int32, data int, psize []int) []byte {
	p0 := &b.Points[run[0]]
	dst = appendLen(dst, fScopeMetricsMetrics, metricSize(p0, data))
	dst = appendString(dst, fMetricName, p0.Name)
	dst = appendLen(dst, dataField(p0.Kind), data)
	for i, k := range run {
		p := &b.Points[k]
		dst = appendLen(dst, fDataPoints, psize[i])
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
	return dst
}

// timesSize returns the size of a data point's start and time fields.
func timesSize(p *Point) int {
	n := protowire.SizeTag(fPointTime) + 8
	if p.Start != 0 {
		n += protowire.SizeTag(fPointStart) + 8
	}
	return n
}

// appendTimes appends a data point's start (when set) and time.
func appendTimes(dst []byte, p *Point) []byte {
	if p.Start != 0 {
		dst = appendFixed64(dst, fPointStart, uint64(p.Start))
	}
	return appendFixed64(dst, fPointTime, uint64(p.Time))
}

// numberPointSize returns the size of a NumberDataPoint.
func numberPointSize(p *Point) int {
	return attrsSize(fNumberAttributes, p.Attributes) + timesSize(p) +
		protowire.SizeTag(fNumberDouble) + 8
}

// appendNumberPoint appends the fields of a NumberDataPoint.
func appendNumberPoint(dst []byte, p *Point) []byte {
	dst = appendAttrs(dst, fNumberAttributes, p.Attributes)
	dst = appendTimes(dst, p)
	return appendDouble(dst, fNumberDouble, p.Value)
}

// histPointSize returns the size of an ExponentialHistogramDataPoint.
func histPointSize(b *Batch, p *Point) int {
	h := &b.Histograms[p.Index]
	n := attrsSize(fHistAttributes, p.Attributes) + timesSize(p) +
		protowire.SizeTag(fHistCount) + 8 + protowire.SizeTag(fHistSum) + 8
	if h.Scale != 0 {
		n += protowire.SizeTag(fHistScale) +
			protowire.SizeVarint(protowire.EncodeZigZag(int64(h.Scale)))
	}
	if h.ZeroCount != 0 {
		n += protowire.SizeTag(fHistZeroCount) + 8
	}
	if h.Positive.Counts.Len > 0 {
		n += lenField(fHistPositive, bucketsSize(b, h.Positive))
	}
	if h.Negative.Counts.Len > 0 {
		n += lenField(fHistNegative, bucketsSize(b, h.Negative))
	}
	if h.Count > 0 {
		n += protowire.SizeTag(fHistMin) + 8 + protowire.SizeTag(fHistMax) + 8
	}
	return n
}

// appendHistPoint appends the fields of an ExponentialHistogramDataPoint.
func appendHistPoint(dst []byte, b *Batch, p *Point) []byte {
	h := &b.Histograms[p.Index]
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
	return dst
}

// packedSize returns the size of counts as packed varints.
func packedSize(counts []uint64) int {
	n := len(counts)
	for _, c := range counts {
		if c >= 0x80 {
			n += protowire.SizeVarint(c) - 1
		}
	}
	return n
}

// bucketsSize returns the size of a Buckets message.
func bucketsSize(b *Batch, bk Buckets) int {
	n := lenField(fBucketsCounts, packedSize(b.counts(bk.Counts)))
	if bk.Offset != 0 {
		n += protowire.SizeTag(fBucketsOffset) +
			protowire.SizeVarint(protowire.EncodeZigZag(int64(bk.Offset)))
	}
	return n
}

// appendBuckets appends the Buckets of one sign, when it has any.
func appendBuckets(dst []byte, b *Batch, field protowire.Number, bk Buckets) []byte {
	if bk.Counts.Len == 0 {
		return dst
	}
	counts := b.counts(bk.Counts)
	size := packedSize(counts)
	n := lenField(fBucketsCounts, size)
	if bk.Offset != 0 {
		n += protowire.SizeTag(fBucketsOffset) +
			protowire.SizeVarint(protowire.EncodeZigZag(int64(bk.Offset)))
	}
	dst = appendLen(dst, field, n)
	if bk.Offset != 0 {
		dst = protowire.AppendTag(dst, fBucketsOffset, protowire.VarintType)
		dst = protowire.AppendVarint(dst, protowire.EncodeZigZag(int64(bk.Offset)))
	}
	dst = appendLen(dst, fBucketsCounts, size)
	// Most counts are small (many zero): the one-byte case is the fast path.
	for _, c := range counts {
		if c < 0x80 {
			dst = append(dst, byte(c))
		} else {
			dst = protowire.AppendVarint(dst, c)
		}
	}
	return dst
}

// summaryPointSize returns the size of a SummaryDataPoint.
func summaryPointSize(b *Batch, p *Point) int {
	s := &b.Summaries[p.Index]
	q := lenField(fSummaryQuantiles, protowire.SizeTag(fQuantileQuantile)+8+
		protowire.SizeTag(fQuantileValue)+8)
	return attrsSize(fSummaryAttributes, p.Attributes) + timesSize(p) +
		protowire.SizeTag(fSummaryCount) + 8 + protowire.SizeTag(fSummarySum) + 8 +
		int(s.Quantiles.Len)*q
}

// appendSummaryPoint appends the fields of a SummaryDataPoint.
func appendSummaryPoint(dst []byte, b *Batch, p *Point) []byte {
	s := &b.Summaries[p.Index]
	dst = appendAttrs(dst, fSummaryAttributes, p.Attributes)
	dst = appendTimes(dst, p)
	dst = appendFixed64(dst, fSummaryCount, s.Count)
	dst = appendDouble(dst, fSummarySum, s.Sum)
	qsize := protowire.SizeTag(fQuantileQuantile) + 8 + protowire.SizeTag(fQuantileValue) + 8
	for _, q := range b.quantiles(s.Quantiles) {
		dst = appendLen(dst, fSummaryQuantiles, qsize)
		dst = appendDouble(dst, fQuantileQuantile, q.Quantile)
		dst = appendDouble(dst, fQuantileValue, q.Value)
	}
	return dst
}

// kvSize returns the size of the KeyValue of a.
func kvSize(a *Attribute) int {
	return lenField(fKeyValueKey, stringSize(a.Key)) +
		lenField(fKeyValueValue, lenField(fAnyValueString, stringSize(a.Value)))
}

// attrsSize returns the size of attrs as repeated KeyValue field.
func attrsSize(field protowire.Number, attrs []Attribute) int {
	n := 0
	for i := range attrs {
		n += lenField(field, kvSize(&attrs[i]))
	}
	return n
}

// appendAttrs appends attrs as KeyValues with string values.
func appendAttrs(dst []byte, field protowire.Number, attrs []Attribute) []byte {
	for i := range attrs {
		a := &attrs[i]
		dst = appendLen(dst, field, kvSize(a))
		dst = appendString(dst, fKeyValueKey, a.Key)
		// Sent even when empty: string_value is a oneof member.
		dst = appendLen(dst, fKeyValueValue, lenField(fAnyValueString, stringSize(a.Value)))
		dst = appendString(dst, fAnyValueString, a.Value)
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

// stringSize returns the encoded length of s: invalid bytes become U+FFFD
// (3 bytes).
func stringSize(s string) int {
	if utf8.ValidString(s) {
		return len(s)
	}
	n := 0
	for _, r := range s {
		n += utf8.RuneLen(r) // an invalid byte is RuneError
	}
	return n
}

// appendString appends a string field. Protobuf strings must be valid
// UTF-8 (decoders reject the whole request otherwise), so invalid bytes
// become U+FFFD.
func appendString(dst []byte, field protowire.Number, s string) []byte {
	dst = protowire.AppendTag(dst, field, protowire.BytesType)
	if utf8.ValidString(s) {
		return protowire.AppendString(dst, s)
	}
	dst = protowire.AppendVarint(dst, uint64(stringSize(s)))
	for _, r := range s {
		dst = utf8.AppendRune(dst, r)
	}
	return dst
}

// lenField returns the size of a length-delimited field of n bytes.
func lenField(field protowire.Number, n int) int {
	return protowire.SizeTag(field) + protowire.SizeBytes(n)
}

// appendLen appends the tag and length of a length-delimited field of n
// bytes, whose content follows.
func appendLen(dst []byte, field protowire.Number, n int) []byte {
	dst = protowire.AppendTag(dst, field, protowire.BytesType)
	return protowire.AppendVarint(dst, uint64(n))
}
