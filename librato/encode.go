package librato

import (
	"math"
	"strconv"
	"unicode/utf8"
)

// maxAbs is the largest magnitude sent: the service fails a whole request
// holding a number whose base-10 exponent is above 126, so a measurement with
// any number beyond this is skipped.
const maxAbs = 1e126

// sendable reports whether v can be sent: it is not NaN, not infinite and |v|
// <= maxAbs.
func sendable(v float64) bool {
	return math.Abs(v) <= maxAbs // false for NaN and ±Inf
}

// stddev returns the population standard deviation of a summary: StdDev when
// set, else derived from Count, Sum and SumSquares, clamped at zero against
// rounding.
func stddev(m *Measurement) float64 {
	if m.HasStdDev {
		return m.StdDev
	}
	n := float64(m.Count)
	mean := m.Sum / n
	return math.Sqrt(math.Max(0, m.SumSquares/n-mean*mean))
}

// encode appends the JSON body of b for api to dst. It returns the extended
// buffer and the numbers of measurements encoded and skipped. Skipped are
// measurements with an empty name, a number that is NaN, infinite or beyond
// maxAbs, or (tagged) more than MaxTags tags. When sent is 0 the body is not
// usable and must not be sent.
func encode(dst []byte, api API, b *Batch) (body []byte, sent, skipped int) {
	if api == Legacy {
		return encodeLegacy(dst, b)
	}
	return encodeTagged(dst, b)
}

// encodeTagged encodes b for POST /v1/measurements.
func encodeTagged(dst []byte, b *Batch) ([]byte, int, int) {
	sep := byte('{')
	if b.Time != 0 {
		dst = append(dst, sep)
		dst = append(dst, `"time":`...)
		dst = strconv.AppendInt(dst, b.Time, 10)
		sep = ','
	}
	if b.Period != 0 {
		dst = append(dst, sep)
		dst = append(dst, `"period":`...)
		dst = strconv.AppendInt(dst, b.Period, 10)
		sep = ','
	}
	batchTagsOK := len(b.Tags) <= MaxTags
	if len(b.Tags) > 0 && batchTagsOK {
		dst = append(dst, sep)
		dst = append(dst, `"tags":`...)
		dst = appendTags(dst, b.Tags)
		sep = ','
	}
	dst = append(dst, sep)
	dst = append(dst, `"measurements":[`...)
	sent, skipped := 0, 0
	for i := range b.Measurements {
		m := &b.Measurements[i]
		ok := m.Name != "" && len(m.Tags) <= MaxTags && (len(m.Tags) > 0 || batchTagsOK)
		var sd float64
		if m.Count > 0 {
			sd = stddev(m)
			ok = ok && sendable(m.Sum) && sendable(m.Min) && sendable(m.Max) && sendable(sd) &&
				(!m.HasLast || sendable(m.Last))
		} else {
			ok = ok && sendable(m.Value)
		}
		if !ok {
			skipped++
			continue
		}
		if sent > 0 {
			dst = append(dst, ',')
		}
		sent++
		dst = append(dst, `{"name":`...)
		dst = appendString(dst, m.Name)
		if m.Count > 0 {
			dst = appendSummary(dst, m)
			if m.HasLast {
				dst = append(dst, `,"last":`...)
				dst = appendFloat(dst, m.Last)
			}
			dst = append(dst, `,"stddev":`...)
			dst = appendFloat(dst, sd)
		} else {
			dst = append(dst, `,"value":`...)
			dst = appendFloat(dst, m.Value)
		}
		if len(m.Tags) > 0 {
			dst = append(dst, `,"tags":`...)
			dst = appendTags(dst, m.Tags)
		}
		dst = append(dst, '}')
	}
	dst = append(dst, "]}"...)
	return dst, sent, skipped
}

// encodeLegacy encodes b for POST /v1/metrics: every measurement as a
// gauge, but those marked Counter, which go in "counters".
func encodeLegacy(dst []byte, b *Batch) ([]byte, int, int) {
	sep := byte('{')
	if b.Time != 0 {
		dst = append(dst, sep)
		dst = append(dst, `"measure_time":`...)
		dst = strconv.AppendInt(dst, b.Time, 10)
		sep = ','
	}
	if b.Source != "" {
		dst = append(dst, sep)
		dst = append(dst, `"source":`...)
		dst = appendString(dst, b.Source)
		sep = ','
	}
	dst = append(dst, sep)
	dst = append(dst, `"gauges":[`...)
	dst, sent, skipped := appendLegacyList(dst, b, false)
	dst = append(dst, ']')
	hasCounters := false
	for i := range b.Measurements {
		if b.Measurements[i].Counter && b.Measurements[i].Count <= 0 {
			hasCounters = true
			break
		}
	}
	if hasCounters {
		dst = append(dst, `,"counters":[`...)
		var cs, ck int
		dst, cs, ck = appendLegacyList(dst, b, true)
		sent, skipped = sent+cs, skipped+ck
		dst = append(dst, ']')
	}
	dst = append(dst, '}')
	return dst, sent, skipped
}

// appendLegacyList appends the legacy gauges of b (counters false) or its
// counters: plain measurements marked Counter.
func appendLegacyList(dst []byte, b *Batch, counters bool) ([]byte, int, int) {
	sent, skipped := 0, 0
	for i := range b.Measurements {
		m := &b.Measurements[i]
		if (m.Counter && m.Count <= 0) != counters {
			continue
		}
		ok := m.Name != ""
		if m.Count > 0 {
			ok = ok && sendable(m.Sum) && sendable(m.Min) && sendable(m.Max) && sendable(m.SumSquares)
		} else {
			ok = ok && sendable(m.Value)
		}
		if !ok {
			skipped++
			continue
		}
		if sent > 0 {
			dst = append(dst, ',')
		}
		sent++
		dst = append(dst, `{"name":`...)
		dst = appendString(dst, m.Name)
		if m.Count > 0 {
			dst = appendSummary(dst, m)
			dst = append(dst, `,"sum_squares":`...)
			dst = appendFloat(dst, m.SumSquares)
		} else {
			dst = append(dst, `,"value":`...)
			dst = appendFloat(dst, m.Value)
		}
		if m.Source != "" {
			dst = append(dst, `,"source":`...)
			dst = appendString(dst, m.Source)
		}
		dst = append(dst, '}')
	}
	return dst, sent, skipped
}

// appendSummary appends the count, sum, min and max fields shared by both APIs.
func appendSummary(dst []byte, m *Measurement) []byte {
	dst = append(dst, `,"count":`...)
	dst = strconv.AppendInt(dst, m.Count, 10)
	dst = append(dst, `,"sum":`...)
	dst = appendFloat(dst, m.Sum)
	dst = append(dst, `,"min":`...)
	dst = appendFloat(dst, m.Min)
	dst = append(dst, `,"max":`...)
	dst = appendFloat(dst, m.Max)
	return dst
}

// appendTags appends tags as a JSON object.
func appendTags(dst []byte, tags []Tag) []byte {
	dst = append(dst, '{')
	for i, t := range tags {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, t.Name)
		dst = append(dst, ':')
		dst = appendString(dst, t.Value)
	}
	return append(dst, '}')
}

// appendFloat appends a finite f as a JSON number, formatted as encoding/json
// does: plain decimals for magnitudes in [1e-6, 1e21), exponent form otherwise
// (1e+21, 1e-7).
func appendFloat(dst []byte, f float64) []byte {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// Shorten e-07 to e-7, as encoding/json does.
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. It escapes '"', '\\' and control
// characters, replaces each byte of invalid UTF-8 with U+FFFD and escapes
// U+2028 and U+2029, as encoding/json does (without its HTML escaping).
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0 // s[start:i] is pending, needing no escape
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
