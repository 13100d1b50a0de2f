package parser

import (
	"bytes"
	"math"
	"reflect"
	"strconv"
	"testing"
)

// fuzzSeeds are lines of every form Parse knows, good and bad.
var fuzzSeeds = []string{
	"hits:1|c", "a:-3|c|@0.1", "a:+3|g", "a:12.500000|ms|@0.5|#k:v,bare", "a:7|h", "a:7|d", "a:x:y|s",
	"a:1:2:3|ms|@0.5|#k:v", "a:1|c:2|ms|#k:v", "a:1|c|@0.5:2|c", "a#k=v,k2=w:1|c|#x:y",
	"a:1|c|#env:prod|c:abc|e:it-false,cn-web|T1795266106|card:low", "a:1e126|g", "a:1e127|g",
	"a:0x1p3|g", "a:1_0|c", "a:NaN|g", "a:1|c|@0", "x:1|c|@1e-120", "a:1|ms|@0.000001", "a:1|g|T-1", ":1|c", "a#:1|c", "a", "a:", "a:1",
	"a:1|", "a:1|x", "_e{1,1}:a|b", "_sc|a|0", " a:1|c\r", "", "\r",
	"a:0.1234567890123456789012345678901234567890|ms", "a:9007199254740993|c",
}

func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	sentinel := Metric{Name: []byte("sentinel"), Type: Gauge, Value: -1, Rate: 1}
	f.Fuzz(func(t *testing.T, line []byte) {
		orig := bytes.Clone(line)
		got, err := Parse(line, []Metric{sentinel})
		if !bytes.Equal(line, orig) {
			t.Fatalf("Parse(%q) changed its input", orig)
		}
		if len(got) == 0 || !reflect.DeepEqual(got[0], sentinel) {
			t.Fatalf("Parse(%q) changed the metrics it was given", line)
		}
		if err != nil {
			e, ok := err.(Error)
			if !ok || e.Reason() == "unknown" {
				t.Fatalf("Parse(%q) error %#v is not a known Error", line, err)
			}
			if len(got) != 1 {
				t.Fatalf("Parse(%q) = %d metrics and error %v, want none", line, len(got)-1, err)
			}
			return
		}
		ms := got[1:]
		if len(ms) > MaxValues {
			t.Fatalf("Parse(%q) = %d metrics, more than MaxValues", line, len(ms))
		}
		for i, m := range ms {
			if len(m.Name) == 0 || bytes.ContainsAny(m.Name, ":|\n\r") {
				t.Fatalf("Parse(%q)[%d].Name = %q", line, i, m.Name)
			}
			if !bytes.Contains(line, m.Name) || !bytes.Contains(line, m.Tags) || !bytes.Contains(line, m.NameTags) {
				t.Fatalf("Parse(%q)[%d] = %+v holds bytes not in the line", line, i, m)
			}
			if m.Type < Counter || m.Type > Set {
				t.Fatalf("Parse(%q)[%d].Type = %d", line, i, m.Type)
			}
			if !(m.Rate >= MinRate && m.Rate <= 1) {
				t.Fatalf("Parse(%q)[%d].Rate = %v, not in [MinRate,1]", line, i, m.Rate)
			}
			if math.IsNaN(m.Value) || math.Abs(m.Value) > maxMagnitude {
				t.Fatalf("Parse(%q)[%d].Value = %v", line, i, m.Value)
			}
			if m.Delta && m.Type != Gauge {
				t.Fatalf("Parse(%q)[%d] is a %v with Delta set", line, i, m.Type)
			}
			if m.Timestamp < 0 {
				t.Fatalf("Parse(%q)[%d].Timestamp = %d", line, i, m.Timestamp)
			}
			if (m.Type == Set) != (len(m.Member) > 0) || (m.Type == Set && m.Value != 0) {
				t.Fatalf("Parse(%q)[%d] = %v with Member %q and Value %v", line, i, m.Type, m.Member, m.Value)
			}
		}
	})
}

func FuzzNextLine(f *testing.F) {
	for _, s := range []string{"", "\n", "\r\n", "a:1|c", "a:1|c\n", "a:1|c\r\nb:2|g\r\n", "\n\n\na\r", "a\r\r\n\r"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		line, rest := NextLine(p)
		if bytes.IndexByte(line, '\n') >= 0 {
			t.Fatalf("NextLine(%q) line %q holds a newline", p, line)
		}
		if len(p) > 0 && len(rest) >= len(p) {
			t.Fatalf("NextLine(%q) rest %q: no progress", p, rest)
		}
		// p is line, at most one '\r', at most one '\n' (ending it if
		// rest is not empty), then rest.
		if !bytes.HasSuffix(p, rest) || !bytes.HasPrefix(p, line) {
			t.Fatalf("NextLine(%q) = %q, %q: not parts of the input", p, line, rest)
		}
		sep := p[len(line) : len(p)-len(rest)]
		switch string(sep) {
		case "", "\n", "\r", "\r\n":
		default:
			t.Fatalf("NextLine(%q) = %q, %q: skipped %q", p, line, rest, sep)
		}
		if len(rest) > 0 && (len(sep) == 0 || sep[len(sep)-1] != '\n') {
			t.Fatalf("NextLine(%q) = %q, %q: rest not after a newline", p, line, rest)
		}
		if len(sep) == 0 && bytes.HasSuffix(line, []byte("\r")) {
			t.Fatalf("NextLine(%q) line %q kept the final '\\r'", p, line)
		}
		// The whole packet splits into one line per '\n', plus one if it
		// does not end with '\n', in at most len(p) steps.
		want := bytes.Count(p, []byte("\n"))
		if len(p) > 0 && p[len(p)-1] != '\n' {
			want++
		}
		n := 0
		for q := p; len(q) > 0 && n <= len(p); n++ {
			_, q = NextLine(q)
		}
		if n != want {
			t.Fatalf("NextLine split %q into %d lines, want %d", p, n, want)
		}
	})
}

// FuzzParseNumber checks parseNumber against strconv.ParseFloat: it accepts
// exactly the plain decimal numbers of magnitude at most maxMagnitude, and
// gives the same float64, bit for bit.
func FuzzParseNumber(f *testing.F) {
	for _, s := range []string{"1", "-0", "+.5", "12.500000", "0.1", "999999999999999", "9007199254740993", "1e126", "1e-400", "0x10", "1_0", "inf", "."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseNumber([]byte(s))
		want, err := strconv.ParseFloat(s, 64)
		plain := len(s) > 0
		for _, c := range []byte(s) {
			if (c < '0' || c > '9') && c != '.' && c != '+' && c != '-' && c != 'e' && c != 'E' {
				plain = false
			}
		}
		wantOK := plain && err == nil && math.Abs(want) <= maxMagnitude
		if ok != wantOK {
			t.Fatalf("parseNumber(%q) ok = %v, want %v (ParseFloat: %v, %v)", s, ok, wantOK, want, err)
		}
		if ok && math.Float64bits(got) != math.Float64bits(want) {
			t.Fatalf("parseNumber(%q) = %v, ParseFloat = %v", s, got, want)
		}
	})
}
