package otlp

import (
	"math"
	"strconv"
	"unicode/utf8"
)

// AppendJSON appends to dst the OTLP/JSON encoding of the same request
// Append encodes, for showing requests (-dry-run): lowerCamelCase field
// names, 64-bit integers as decimal strings, enums as numbers. It returns the
// extended buffer and the number of points encoded; Refused lists the
// points left out. With no point it appends "{}".
func (e *Encoder) AppendJSON(dst []byte, b *Batch) ([]byte, int) {
	return e.AppendJSONRange(dst, b, 0, len(b.Points))
}

// AppendJSONRange is AppendJSON for the points b.Points[i:j] alone; i and j
// are clamped to the points.
func (e *Encoder) AppendJSONRange(dst []byte, b *Batch, i, j int) ([]byte, int) {
	e.group(b, i, j)
	if len(e.order) == 0 {
		return append(dst, "{}"...), 0
	}
	dst = append(dst, `{"resourceMetrics":[{`...)
	if len(b.Resource.Attributes) > 0 {
		dst = append(dst, `"resource":{"attributes":`...)
		dst = appendJSONAttrs(dst, b.Resource.Attributes)
		dst = append(dst, "},"...)
	}
	dst = append(dst, `"scopeMetrics":[{"scope":{"name":`...)
	dst = appendJSONString(dst, ScopeName)
	if b.ScopeVersion != "" {
		dst = append(dst, `,"version":`...)
		dst = appendJSONString(dst, b.ScopeVersion)
	}
	dst = append(dst, `},"metrics":[`...)
	for run := e.order; len(run) > 0; {
		n := runLen(b, run)
		if len(run) < len(e.order) {
			dst = append(dst, ',')
		}
		dst = appendJSONMetric(dst, b, run[:n])
		run = run[n:]
	}
	dst = append(dst, "]}]}]}"...)
	return dst, len(e.order)
}

// appendJSONMetric appends one Metric holding the points run.
func appendJSONMetric(dst []byte, b *Batch, run []int32) []byte {
	p0 := &b.Points[run[0]]
	dst = append(dst, `{"name":`...)
	dst = appendJSONString(dst, p0.Name)
	switch p0.Kind {
	case KindSum:
		dst = append(dst, `,"sum":{"dataPoints":[`...)
	case KindGauge:
		dst = append(dst, `,"gauge":{"dataPoints":[`...)
	case KindExponentialHistogram:
		dst = append(dst, `,"exponentialHistogram":{"dataPoints":[`...)
	default:
		dst = append(dst, `,"summary":{"dataPoints":[`...)
	}
	for i, k := range run {
		if i > 0 {
			dst = append(dst, ',')
		}
		p := &b.Points[k]
		dst = append(dst, '{')
		if len(p.Attributes) > 0 {
			dst = append(dst, `"attributes":`...)
			dst = appendJSONAttrs(dst, p.Attributes)
			dst = append(dst, ',')
		}
		if p.Start != 0 {
			dst = append(dst, `"startTimeUnixNano":`...)
			dst = appendJSONUint(dst, uint64(p.Start))
			dst = append(dst, ',')
		}
		dst = append(dst, `"timeUnixNano":`...)
		dst = appendJSONUint(dst, uint64(p.Time))
		switch p.Kind {
		case KindSum, KindGauge:
			dst = append(dst, `,"asDouble":`...)
			dst = appendJSONFloat(dst, p.Value)
		case KindExponentialHistogram:
			dst = appendJSONHist(dst, b, &b.Histograms[p.Index])
		default:
			dst = appendJSONSummary(dst, b, &b.Summaries[p.Index])
		}
		dst = append(dst, '}')
	}
	dst = append(dst, ']')
	if t := temporality(p0); t != 0 {
		dst = append(dst, `,"aggregationTemporality":`...)
		dst = strconv.AppendUint(dst, uint64(t), 10)
	}
	if p0.Kind == KindSum && p0.Monotonic {
		dst = append(dst, `,"isMonotonic":true`...)
	}
	return append(dst, "}}"...)
}

// appendJSONHist appends the fields of an ExponentialHistogramDataPoint
// after its times.
func appendJSONHist(dst []byte, b *Batch, h *ExponentialHistogram) []byte {
	dst = append(dst, `,"count":`...)
	dst = appendJSONUint(dst, h.Count)
	dst = append(dst, `,"sum":`...)
	dst = appendJSONFloat(dst, h.Sum)
	dst = append(dst, `,"scale":`...)
	dst = strconv.AppendInt(dst, int64(h.Scale), 10)
	dst = append(dst, `,"zeroCount":`...)
	dst = appendJSONUint(dst, h.ZeroCount)
	for _, s := range [2]struct {
		name string
		bk   Buckets
	}{{`,"positive":`, h.Positive}, {`,"negative":`, h.Negative}} {
		if s.bk.Counts.Len == 0 {
			continue
		}
		dst = append(dst, s.name...)
		dst = append(dst, `{"offset":`...)
		dst = strconv.AppendInt(dst, int64(s.bk.Offset), 10)
		dst = append(dst, `,"bucketCounts":[`...)
		for i, c := range b.counts(s.bk.Counts) {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONUint(dst, c)
		}
		dst = append(dst, "]}"...)
	}
	if h.Count > 0 {
		dst = append(dst, `,"min":`...)
		dst = appendJSONFloat(dst, h.Min)
		dst = append(dst, `,"max":`...)
		dst = appendJSONFloat(dst, h.Max)
	}
	return dst
}

// appendJSONSummary appends the fields of a SummaryDataPoint after its
// times.
func appendJSONSummary(dst []byte, b *Batch, s *Summary) []byte {
	dst = append(dst, `,"count":`...)
	dst = appendJSONUint(dst, s.Count)
	dst = append(dst, `,"sum":`...)
	dst = appendJSONFloat(dst, s.Sum)
	if s.Quantiles.Len > 0 {
		dst = append(dst, `,"quantileValues":[`...)
		for i, q := range b.quantiles(s.Quantiles) {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"quantile":`...)
			dst = appendJSONFloat(dst, q.Quantile)
			dst = append(dst, `,"value":`...)
			dst = appendJSONFloat(dst, q.Value)
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	return dst
}

// appendJSONAttrs appends attrs as a KeyValue array.
func appendJSONAttrs(dst []byte, attrs []Attribute) []byte {
	dst = append(dst, '[')
	for i, a := range attrs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"key":`...)
		dst = appendJSONString(dst, a.Key)
		dst = append(dst, `,"value":{"stringValue":`...)
		dst = appendJSONString(dst, a.Value)
		dst = append(dst, "}}"...)
	}
	return append(dst, ']')
}

// appendJSONUint appends a 64-bit integer as OTLP/JSON wants it: a decimal
// string.
func appendJSONUint(dst []byte, v uint64) []byte {
	dst = append(dst, '"')
	dst = strconv.AppendUint(dst, v, 10)
	return append(dst, '"')
}

// appendJSONFloat appends a finite number (the encoder refuses the others)
// in the shortest form that reads back exactly.
func appendJSONFloat(dst []byte, v float64) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return append(dst, '0') // unreachable: refused before
	}
	return strconv.AppendFloat(dst, v, 'g', -1, 64)
}

// appendJSONString appends s as a JSON string; invalid UTF-8 becomes
// U+FFFD, as in the protobuf encoding.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c < 0x20 || c == 0x7f:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, "\ufffd"...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}
