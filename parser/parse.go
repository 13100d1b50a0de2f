package parser

import (
	"bytes"
	"math"
	"strconv"
	"unsafe"
)

// MaxValues is the most metrics Parse takes from one line; a line with more
// values is rejected with ErrTooManyValues.
const MaxValues = 1024

// maxMagnitude is the largest absolute value accepted. Librato rejects a whole
// request that holds a number with a base-10 exponent above 126.
const maxMagnitude = 1e126

// MinRate is the smallest sample rate accepted: a line sampled at rate r
// counts 1/r times, and one line counting more than a million times is a
// client bug (a rate such as 1e-120 would add 1e120 to a counter), not a
// sampling scheme: the lowest rates clients use in practice are around
// 1e-3 or 1e-4. The bound also keeps every weighted value within 1e6 times
// the largest value accepted, far from float64 overflow.
const MinRate = 1e-6

// maxFastDigits is the most decimal digits the fast path of parseNumber
// accepts: every integer of up to 15 digits is exact in a float64.
const maxFastDigits = 15

// pow10 holds the powers of ten that are exact in a float64, up to
// 10^maxFastDigits.
var pow10 = [maxFastDigits + 1]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15}

// Parse parses one StatsD line and appends its metrics to out, returning the
// extended slice. It reads every tag syntax: it is ParseWith(line, out,
// AllTagSyntaxes).
func Parse(line []byte, out []Metric) ([]Metric, error) {
	return ParseWith(line, out, AllTagSyntaxes)
}

// ParseWith parses one StatsD line, reading the tag syntaxes in syntaxes,
// and appends its metrics to out, returning the extended slice. The
// Metrics point into line. No allocation happens when cap(out) has room
// for them.
//
// The line has no '\n'. Spaces, tabs, '\r' and '\n' at either end are
// ignored, so a trailing '\r' is fine. A line that is empty after that yields
// nothing and a nil error: callers simply skip it.
//
// The line format is
//
//	name[tags]:value[:value...]|type[|field...]
//
// The name is everything before the first ':'. It must not be empty nor hold
// control bytes or '|'; it is otherwise kept as written (sanitizing is the
// caller's job). The first byte of the name that starts the tags of a
// syntax in syntaxes ends the name; what follows, up to the ':', is
// returned in NameTags, with NameTagSep the byte between its items:
//   - '#' (LibratoTags): "name#k=v,k2=v2", a non-empty comma-separated list
//     of "key=value" items, each with a non-empty key (ErrBadTags);
//   - ',' (InfluxDBTags): "name,k=v,k2=v2", comma-separated items, each
//     with a non-empty key; an item without '=' is a bare tag, and the
//     value may be empty, as hot-shots writes tags given without a value
//     (ErrBadInfluxDBTags: an empty item or key);
//   - ';' (GraphiteTags): "name;k=v;k2=v2", semicolon-separated items, each
//     "key=value" with a non-empty key and value, as Graphite requires
//     (ErrBadGraphiteTags).
//
// As the name ends at the first ':', a name tag cannot contain ':' (nor
// could it in Etsy statsd). A value may hold '=' ("k=a=b" is k "a=b").
//
// The type is c (Counter), g (Gauge), ms, h or d (Timer), or s (Set). The
// fields after the type come in any order: "@rate" (a number in
// [MinRate,1], kept for every type; 1 when absent; a positive rate below
// MinRate is ErrRateTooLow), "#tags" (with DogStatsDTags: the raw
// DogStatsD tags, "k:v,k2:v2,bare", not split here; nil when empty),
// "T<unix seconds>" (Timestamp). Any other field ("c:<container>",
// "e:...", "card:...") and empty fields are ignored, as is "#tags" without
// DogStatsDTags. When a field repeats, the last one wins.
//
// Values of counters, gauges and timers are finite decimal numbers with a
// magnitude of at most 1e126 (no hex, underscores, NaN or Inf); negative
// values are kept for every type. A gauge value written with a sign ("+3",
// "-3") has Delta set. A set's value is its Member, taken as written, ':'
// included.
//
// One line may yield several metrics, up to MaxValues:
//   - DogStatsD packed values: a value part holding ':' (except for sets) is
//     several values sharing the type and fields: "a:1:2:3|ms|#k:v" yields
//     three timers tagged "k:v". Empty values ("a:1::2:|ms") are skipped,
//     as the Datadog agent does; a part with no value at all is
//     ErrNoValue.
//   - Etsy multi-value lines: a ':' inside the type field or a rate field
//     ends that field and starts another value of the same name, with its own
//     type and fields: "a:1|c:2|ms|#k:v" yields counter 1 (untagged) and
//     timer 2 tagged "k:v"; "a:1|c|@0.5:2|c" yields two counters, the first
//     with rate 0.5. Other fields (tags, timestamps, unknown ones) may hold
//     ':' and run to the next '|'. The fields of each part apply only to
//     that part's values.
//
// A DogStatsD event ("_e{...") or service check ("_sc|...") is reported as
// ErrEvent or ErrServiceCheck: they are not malformed, just not metrics.
// ParseEvent and ParseServiceCheck decode them.
//
// On error ParseWith returns out unchanged (its length as given) and an
// Error: a bad line yields no metric at all. Elements past len(out) may
// have been overwritten.
func ParseWith(line []byte, out []Metric, syntaxes TagSyntaxes) ([]Metric, error) {
	line = trimSpace(line)
	if len(line) == 0 {
		return out, nil
	}
	if line[0] == '_' {
		if len(line) >= 3 && string(line[:3]) == "_e{" {
			return out, ErrEvent
		}
		if len(line) >= 4 && string(line[:4]) == "_sc|" {
			return out, ErrServiceCheck
		}
	}
	var nt nameTags
	rest, e := nt.split(line, syntaxes)
	if e != 0 {
		return out, e
	}
	dogTags := syntaxes&DogStatsDTags != 0
	// The most common shape of line first, without the general path's
	// passes (FuzzParseWith checks that both agree).
	if v, typ, tags, ok := simple(rest, dogTags); ok {
		out = grow(out)
		m := &out[len(out)-1]
		m.Name, m.NameTags, m.NameTagSep, m.Tags = nt.name, nt.tags, nt.sep, tags
		m.Type, m.Value, m.Rate, m.Timestamp = typ, v, 1, 0
		m.Delta = typ == Gauge && (rest[0] == '+' || rest[0] == '-')
		m.Member = nil
		return out, nil
	}
	return segments(rest, out, &nt, dogTags)
}

// segments parses what follows a line's name, rest, as one or more
// segments, and appends their metrics, named by nt, to out. It is
// ParseWith's general path.
func segments(rest []byte, out []Metric, nt *nameTags, dogTags bool) ([]Metric, error) {
	n0 := len(out)
	for {
		var s segment
		var more bool
		var e Error
		rest, more, e = s.parse(rest, dogTags)
		if e == 0 {
			out, e = s.appendTo(out, n0, nt)
		}
		if e != 0 {
			return out[:n0], e
		}
		if !more {
			return out, nil
		}
	}
}

// simple parses the most common shape of what follows a line's name,
// "value|type" with an optional "|#tags" last, where value is one number
// of parseNumber's fast path and type is not a set's. It returns ok false
// for anything else (more values, more fields, a set, an error), which
// the general path then parses: when ok, that path would return the same.
func simple(p []byte, dogTags bool) (v float64, typ Type, tags []byte, ok bool) {
	// What follows the value first: a line with more values or fields
	// fails here, before its number is read.
	bar := -1
	for i, c := range p {
		if c == '|' {
			bar = i
			break
		}
		if c == ':' {
			return 0, 0, nil, false
		}
	}
	if bar <= 0 || bar+1 >= len(p) {
		return 0, 0, nil, false
	}
	t := p[bar+1:]
	typ, n := leadingType(t)
	if n == 0 || typ == Set {
		return 0, 0, nil, false
	}
	switch t = t[n:]; {
	case len(t) == 0:
	case len(t) < 2 || t[0] != '|' || t[1] != '#' || !dogTags || bytes.IndexByte(t[2:], '|') >= 0:
		return 0, 0, nil, false
	case len(t) > 2:
		tags = t[2:]
	}
	v, i, ok := leadingNumber(p[:bar])
	if !ok || i != bar {
		return 0, 0, nil, false
	}
	return v, typ, tags, true
}

// NextLine splits the next line off a packet: line is p up to, not
// including, the first '\n', with one trailing '\r' removed; rest is what
// follows that '\n' (nil when p has none). It does not allocate. Use it as
//
//	for len(p) > 0 {
//		line, p = parser.NextLine(p)
//		...
//	}
func NextLine(p []byte) (line, rest []byte) {
	line = p
	if i := bytes.IndexByte(p, '\n'); i >= 0 {
		line, rest = p[:i], p[i+1:]
	}
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, rest
}

// segment is one "value[:value...]|type[|field...]" part of a line: the
// values and what they share.
type segment struct {
	values []byte // the raw value part, ':'-separated values unless a set
	typ    Type
	rate   float64
	tags   []byte
	ts     int64
}

// parse parses the segment at the start of p into s. When more is true, an
// Etsy multi-value ':' ended it and next holds the following segment.
func (s *segment) parse(p []byte, dogTags bool) (next []byte, more bool, e Error) {
	bar := index(p, '|')
	switch {
	case len(p) == 0 || bar == 0:
		return nil, false, ErrNoValue
	case bar < 0:
		return nil, false, ErrNoType
	}
	s.values, s.rate = p[:bar], 1
	p = p[bar+1:]

	// The type field ends at '|' or at a ':' that starts the next segment.
	end := 0
	for end < len(p) && p[end] != '|' && p[end] != ':' {
		end++
	}
	if s.typ, e = parseType(p[:end]); e != 0 {
		return nil, false, e
	}
	if end < len(p) && p[end] == ':' {
		return p[end+1:], true, 0
	}

	// The other fields, each after a '|'.
	for end < len(p) {
		p = p[end+1:]
		end = bytes.IndexByte(p, '|')
		if end < 0 {
			end = len(p)
		}
		f := p[:end]
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case '@':
			if c := index(f, ':'); c >= 0 {
				s.rate, e = parseRate(f[1:c])
				return p[c+1:], true, e
			}
			s.rate, e = parseRate(f[1:])
		case '#':
			if !dogTags {
				continue
			}
			s.tags = nil
			if len(f) > 1 {
				s.tags = f[1:]
			}
		case 'T':
			s.ts, e = parseTimestamp(f[1:])
		}
		if e != 0 {
			return nil, false, e
		}
	}
	return nil, false, 0
}

// appendTo appends the metrics of s to out, of which out[n0:] are already
// from the same line.
func (s *segment) appendTo(out []Metric, n0 int, nt *nameTags) ([]Metric, Error) {
	if s.typ == Set {
		if len(out)-n0 >= MaxValues {
			return out, ErrTooManyValues
		}
		return append(out, Metric{
			Name:       nt.name,
			NameTags:   nt.tags,
			NameTagSep: nt.sep,
			Tags:       s.tags,
			Type:       Set,
			Member:     s.values,
			Rate:       s.rate,
			Timestamp:  s.ts,
		}), 0
	}
	v := s.values
	n := len(out)
	for {
		num := v
		c := index(v, ':')
		if c >= 0 {
			num = v[:c]
		}
		if len(num) > 0 { // an empty packed value is skipped
			f, ok := parseNumber(num)
			if !ok {
				return out, ErrBadValue
			}
			if len(out)-n0 >= MaxValues {
				return out, ErrTooManyValues
			}
			// Field by field into place: a Metric built apart and then
			// appended is copied whole, pointers and all, at every line.
			out = grow(out)
			m := &out[len(out)-1]
			m.Name, m.NameTags, m.NameTagSep, m.Tags = nt.name, nt.tags, nt.sep, s.tags
			m.Type, m.Value, m.Rate, m.Timestamp = s.typ, f, s.rate, s.ts
			m.Delta = s.typ == Gauge && (num[0] == '+' || num[0] == '-')
			m.Member = nil
		}
		if c < 0 {
			if len(out) == n {
				return out, ErrNoValue
			}
			return out, 0
		}
		v = v[c+1:]
	}
}

// grow returns out extended by one element, whose fields the caller
// sets, every one.
func grow(out []Metric) []Metric {
	if n := len(out); n < cap(out) {
		return out[:n+1]
	}
	return append(out, Metric{})
}

// nameTags is the name part of a line: the name and its tags.
type nameTags struct {
	name, tags []byte
	sep        byte // between the items of tags; 0 when tags is nil
}

// split splits the name part off a line into nt: everything before the
// first ':', which must not be empty nor hold control bytes or '|'. The
// first '#', ',' or ';' that starts the tags of a syntax in syntaxes ends
// the name; the tags run to the ':' and are checked by the rules of that
// syntax. rest is what follows the ':'.
func (nt *nameTags) split(line []byte, syntaxes TagSyntaxes) (rest []byte, e Error) {
	colon, start, bad := -1, -1, false
	// Eight plain bytes at a time while there are: the and of eight
	// table values is 'x' only when each is ('.' lacks a bit of 'x').
	i := 0
	for ; i+8 <= len(line); i += 8 {
		b := line[i : i+8 : i+8]
		if plainName[b[0]]&plainName[b[1]]&plainName[b[2]]&plainName[b[3]]&
			plainName[b[4]]&plainName[b[5]]&plainName[b[6]]&plainName[b[7]] != 'x' {
			break
		}
	}
	for ; i < len(line); i++ {
		c := line[i]
		if plainName[c] == 'x' {
			continue // letters, digits, '_', '.', '-', '/' and UTF-8: most of a name
		}
		switch {
		case c == ':':
			colon = i
		case c < 0x20 || c == 0x7f || c == '|':
			bad = true
		case start < 0 && (c == '#' && syntaxes&LibratoTags != 0 ||
			c == ',' && syntaxes&InfluxDBTags != 0 ||
			c == ';' && syntaxes&GraphiteTags != 0):
			start = i
		}
		if colon >= 0 {
			break
		}
	}
	switch {
	case colon < 0:
		return nil, ErrNoValue
	case bad:
		return nil, ErrBadName
	}
	nt.name = line[:colon]
	if start >= 0 {
		nt.name, nt.tags = line[:start], line[start+1:colon]
	}
	if len(nt.name) == 0 {
		return nil, ErrEmptyName
	}
	if start >= 0 {
		switch line[start] {
		case '#':
			nt.sep = ','
			if !validTags(nt.tags, ',', librato) {
				return nil, ErrBadTags
			}
		case ',':
			nt.sep = ','
			if !validTags(nt.tags, ',', influxDB) {
				return nil, ErrBadInfluxDBTags
			}
		default:
			nt.sep = ';'
			if !validTags(nt.tags, ';', graphite) {
				return nil, ErrBadGraphiteTags
			}
		}
	}
	return line[colon+1:], 0
}

// plainName marks with 'x' each byte that split passes over without a
// second look: every byte but controls, 0x7f, '|', ':' (which ends the
// name) and the ASCII punctuation before '-' and after '9' up to ';' (which
// may start tags). One read of it, and one branch a byte that a predictor
// learns (a name's bytes keep to one side of it), replaces tests whose
// outcomes follow letters and digits in turn.
const plainName = "" +
	"................" + // 0x00-0x0f
	"................" + // 0x10-0x1f
	".............xxx" + // 0x20-0x2f
	"xxxxxxxxxx..xxxx" + // 0x30-0x3f
	"xxxxxxxxxxxxxxxx" + // 0x40-0x4f
	"xxxxxxxxxxxxxxxx" + // 0x50-0x5f
	"xxxxxxxxxxxxxxxx" + // 0x60-0x6f
	"xxxxxxxxxxxx.xx." + // 0x70-0x7f
	"xxxxxxxxxxxxxxxx" + // 0x80-0x8f
	"xxxxxxxxxxxxxxxx" + // 0x90-0x9f
	"xxxxxxxxxxxxxxxx" + // 0xa0-0xaf
	"xxxxxxxxxxxxxxxx" + // 0xb0-0xbf
	"xxxxxxxxxxxxxxxx" + // 0xc0-0xcf
	"xxxxxxxxxxxxxxxx" + // 0xd0-0xdf
	"xxxxxxxxxxxxxxxx" + // 0xe0-0xef
	"xxxxxxxxxxxxxxxx" // 0xf0-0xff

// The rules validTags applies to each item of a name-tag list.
const (
	librato  = iota // "k=v" with a non-empty key; the value may be empty
	influxDB        // a non-empty key; "k", "k=" and "k=v"
	graphite        // "k=v" with a non-empty key and value
)

// validTags reports whether t is a non-empty list of items separated by
// sep, each valid by rule.
func validTags(t []byte, sep byte, rule int) bool {
	for {
		item := t
		c := bytes.IndexByte(t, sep)
		if c >= 0 {
			item = t[:c]
		}
		eq := bytes.IndexByte(item, '=')
		switch {
		case len(item) == 0 || eq == 0:
			return false
		case eq < 0 && rule != influxDB:
			return false
		case eq == len(item)-1 && rule == graphite:
			return false
		}
		if c < 0 {
			return true
		}
		t = t[c+1:]
	}
}

// parseType decodes a type field.
func parseType(f []byte) (Type, Error) {
	if len(f) == 0 {
		return 0, ErrNoType
	}
	if typ, n := leadingType(f); n == len(f) {
		return typ, 0
	}
	return 0, ErrBadType
}

// leadingType returns the type whose name f starts with ("ms" before
// "m..." is refused) and the length of that name, or 0, 0.
func leadingType(f []byte) (Type, int) {
	if len(f) == 0 {
		return 0, 0
	}
	switch f[0] {
	case 'c':
		return Counter, 1
	case 'g':
		return Gauge, 1
	case 'h', 'd':
		return Timer, 1
	case 's':
		return Set, 1
	case 'm':
		if len(f) > 1 && f[1] == 's' {
			return Timer, 2
		}
	}
	return 0, 0
}

// parseRate decodes a sample rate (the field after '@').
func parseRate(b []byte) (float64, Error) {
	r, ok := parseNumber(b)
	if !ok || r <= 0 || r > 1 {
		return 0, ErrBadRate
	}
	if r < MinRate {
		return 0, ErrRateTooLow
	}
	return r, 0
}

// parseTimestamp decodes unix seconds (the field after 'T'): 1 to 18
// decimal digits, which always fit an int64.
func parseTimestamp(b []byte) (int64, Error) {
	if len(b) == 0 || len(b) > 18 {
		return 0, ErrBadTimestamp
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, ErrBadTimestamp
		}
		n = n*10 + int64(c-'0')
	}
	return n, 0
}

// parseNumber decodes a finite decimal number of magnitude at most
// maxMagnitude, exactly as strconv.ParseFloat would. Numbers of at most
// maxFastDigits digits with an optional sign and '.' take a fast path: the
// digits form an exact integer, and one division by an exact power of ten
// rounds correctly (the same exact case ParseFloat uses).
func parseNumber(b []byte) (float64, bool) {
	if f, n, ok := leadingNumber(b); ok && n == len(b) {
		return f, true
	}
	return parseNumberSlow(b)
}

// leadingNumber decodes the number of parseNumber's fast path that b
// starts with: an optional sign, then 1 to maxFastDigits decimal digits
// with at most one '.' among or around them. It returns the number and
// its length, or ok false when b starts with no such number or with more
// digits (which only the slow path can take).
func leadingNumber(b []byte) (f float64, n int, ok bool) {
	i, neg := 0, false
	if len(b) > 0 && (b[0] == '+' || b[0] == '-') {
		i, neg = 1, b[0] == '-'
	}
	var mant uint64
	digits, frac, dot := 0, 0, false
	for ; i < len(b); i++ {
		c := b[i]
		if c-'0' <= 9 {
			if digits++; digits > maxFastDigits {
				return 0, 0, false
			}
			mant = mant*10 + uint64(c-'0')
			if dot {
				frac++
			}
		} else if c == '.' && !dot {
			dot = true
		} else {
			break
		}
	}
	if digits == 0 {
		return 0, 0, false
	}
	f = float64(mant)
	if frac > 0 {
		f /= pow10[frac]
	}
	if neg {
		f = -f
	}
	return f, i, true
}

// parseNumberSlow is parseNumber for long numbers and exponents. It admits
// only the bytes of a decimal float, so ParseFloat cannot see hex,
// underscores, "inf" or "nan".
func parseNumberSlow(b []byte) (float64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	for _, c := range b {
		if (c < '0' || c > '9') && c != '.' && c != '+' && c != '-' && c != 'e' && c != 'E' {
			return 0, false
		}
	}
	// ParseFloat does not keep its argument (its errors hold a copy), so a
	// string sharing b's memory is safe and, unlike string(b) for more than
	// 32 bytes, does not allocate.
	f, err := strconv.ParseFloat(unsafe.String(&b[0], len(b)), 64)
	if err != nil || math.Abs(f) > maxMagnitude {
		return 0, false
	}
	return f, true
}

// trimSpace removes spaces, tabs, '\r' and '\n' from both ends of b.
func trimSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	return b
}

// index is bytes.IndexByte for the short parts of a line (values, types),
// where a plain loop is faster than the call.
func index(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n'
}
