package exposition

import (
	"bytes"
	"math"
	"slices"
	"sort"
	"strconv"
	"unicode/utf8"

	"github.com/libratod/libratod/aggregator"
)

// exportedPrefix renames a label name that Prometheus reserves: "__x",
// and "quantile" or "le" on a summary or histogram.
const exportedPrefix = "exported_"

// appendMetricName appends s to dst sanitized to a Prometheus metric name,
// [a-zA-Z_:][a-zA-Z0-9_:]*, where start is the offset in dst at which the
// name begins: each other character (each byte of invalid UTF-8) becomes
// "_", and a digit at the start is preceded by "_".
func appendMetricName(dst []byte, start int, s string) []byte {
	for _, r := range s {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', r == '_', r == ':':
			dst = append(dst, byte(r))
		case '0' <= r && r <= '9':
			if len(dst) == start {
				dst = append(dst, '_')
			}
			dst = append(dst, byte(r))
		default:
			dst = append(dst, '_')
		}
	}
	return dst
}

// appendLabelName appends s to dst sanitized to a Prometheus label name,
// [a-zA-Z_][a-zA-Z0-9_]*, as appendMetricName does. A name reserved by
// Prometheus ("__" at the start) or equal to reserved (when not "") gets
// exportedPrefix.
func appendLabelName(dst []byte, s, reserved string) []byte {
	start := len(dst)
	for _, r := range s {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', r == '_':
			dst = append(dst, byte(r))
		case '0' <= r && r <= '9':
			if len(dst) == start {
				dst = append(dst, '_')
			}
			dst = append(dst, byte(r))
		default:
			dst = append(dst, '_')
		}
	}
	name := dst[start:]
	if bytes.HasPrefix(name, []byte("__")) || reserved != "" && string(name) == reserved {
		dst = slices.Insert(dst, start, []byte(exportedPrefix)...)
	}
	return dst
}

// appendLabelValue appends v to dst escaped for a label value of the text
// format (backslash, double quote and line feed), with each byte of
// invalid UTF-8 replaced by U+FFFD. An empty value, a bare DogStatsD tag,
// is "true" (as for Librato).
func appendLabelValue(dst []byte, v string) []byte {
	if v == "" {
		return append(dst, "true"...)
	}
	for i := 0; i < len(v); {
		c := v[i]
		if c < utf8.RuneSelf {
			switch c {
			case '\\':
				dst = append(dst, `\\`...)
			case '"':
				dst = append(dst, `\"`...)
			case '\n':
				dst = append(dst, `\n`...)
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(v[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, string(utf8.RuneError)...)
		} else {
			dst = append(dst, v[i:i+size]...)
		}
		i += size
	}
	return dst
}

// appendFloat appends f as the text format writes numbers.
func appendFloat(dst []byte, f float64) []byte {
	switch {
	case math.IsInf(f, 1):
		return append(dst, "+Inf"...)
	case math.IsInf(f, -1):
		return append(dst, "-Inf"...)
	case math.IsNaN(f):
		return append(dst, "NaN"...)
	}
	return strconv.AppendFloat(dst, f, 'g', -1, 64)
}

// keyBuilder builds the key of a series, name{labels} as the text format
// writes it, into reused buffers.
type keyBuilder struct {
	key     []byte // the key
	nameLen int    // the name is key[:nameLen]
	arena   []byte // the line's sanitized label names and escaped values
	spans   []span // the line's labels, in arena
	tags    []aggregator.Tag
}

// span locates one label in keyBuilder.arena: its name is arena[ns:vs]
// and its escaped value arena[vs:ve].
type span struct{ ns, vs, ve int }

// build sets b.key to the key of ser: the prefix and name sanitized, then
// the series' tags and the constant labels sorted by sanitized name, a tag
// winning over a constant label of the same name and, of tags with the same
// sanitized name, the first in the series' (original) order winning.
// reserved is a label name that gets exportedPrefix.
func (b *keyBuilder) build(prefix string, ser *aggregator.Series, consts []constLabel, reserved string) {
	b.key = b.key[:0]
	if prefix != "" {
		b.key = appendMetricName(b.key, 0, prefix)
		b.key = append(b.key, '_') // the "." between prefix and name
	}
	b.key = appendMetricName(b.key, 0, ser.Name)
	b.nameLen = len(b.key)

	b.arena, b.spans = b.arena[:0], b.spans[:0]
	b.tags = ser.AppendTags(b.tags[:0])
	for _, t := range b.tags {
		ns := len(b.arena)
		b.arena = appendLabelName(b.arena, t.Name, reserved)
		vs := len(b.arena)
		b.arena = appendLabelValue(b.arena, t.Value)
		b.spans = append(b.spans, span{ns, vs, len(b.arena)})
	}
	if !sort.IsSorted((*byName)(b)) {
		sort.Stable((*byName)(b))
	}

	b.key = append(b.key, '{')
	sep := false
	comma := func() {
		if sep {
			b.key = append(b.key, ',')
		}
		sep = true
	}
	i, j := 0, 0
	for i < len(b.spans) || j < len(consts) {
		if i == len(b.spans) {
			comma()
			b.key = append(b.key, consts[j].text...)
			j++
			continue
		}
		sp := b.spans[i]
		name := b.arena[sp.ns:sp.vs]
		if j < len(consts) {
			switch c := bytes.Compare(consts[j].name, name); {
			case c < 0:
				comma()
				b.key = append(b.key, consts[j].text...)
				j++
				continue
			case c == 0:
				j++ // the tag wins
			}
		}
		comma()
		b.key = append(b.key, name...)
		b.key = append(b.key, '=', '"')
		b.key = append(b.key, b.arena[sp.vs:sp.ve]...)
		b.key = append(b.key, '"')
		for i++; i < len(b.spans) && bytes.Equal(b.arena[b.spans[i].ns:b.spans[i].vs], name); i++ {
			// the first of the same name wins
		}
	}
	b.key = append(b.key, '}')
}

// byName sorts a keyBuilder's spans by label name.
type byName keyBuilder

func (b *byName) Len() int { return len(b.spans) }

func (b *byName) Less(i, j int) bool {
	x, y := b.spans[i], b.spans[j]
	return bytes.Compare(b.arena[x.ns:x.vs], b.arena[y.ns:y.vs]) < 0
}

func (b *byName) Swap(i, j int) { b.spans[i], b.spans[j] = b.spans[j], b.spans[i] }
