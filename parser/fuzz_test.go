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
	"rcn.requests,app=rcnode,env=test,service=web,code=200:3|c", "rcn.users,app=rcnode:user-0|s",
	"a,canary,k=:1:2|h|#tier:gold", "a,=v:1|c", "a,:1|c", "a;k=v;k2=w:1|d", "a;k:1|c", "a;k=:1|c",
	"a#k=v;x=y,z=1:1|c", "a;k=v,x=y#z:1|c", "a:1|c|#tag1:a,#tag2:b", "a:1::2:|ms", "a::|ms",
}

func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		checkParse(t, line, AllTagSyntaxes, func(line []byte, out []Metric) ([]Metric, error) { return Parse(line, out) })
	})
}

// FuzzParseWith is FuzzParse for any set of tag syntaxes. A line that
// uses no syntax left out parses as it does with every syntax.
func FuzzParseWith(f *testing.F) {
	for i, s := range fuzzSeeds {
		f.Add([]byte(s), uint8(i)&uint8(AllTagSyntaxes))
	}
	f.Fuzz(func(t *testing.T, line []byte, syn uint8) {
		syntaxes := TagSyntaxes(syn) & AllTagSyntaxes
		ms := checkParse(t, line, syntaxes, func(line []byte, out []Metric) ([]Metric, error) {
			return ParseWith(line, out, syntaxes)
		})
		for i, m := range ms {
			if syntaxes&DogStatsDTags == 0 && m.Tags != nil {
				t.Fatalf("ParseWith(%q, %v)[%d] has DogStatsD tags %q", line, syntaxes, i, m.Tags)
			}
			if m.NameTags == nil {
				continue
			}
			// The byte before the name tags starts a syntax asked for.
			lead := len(line) - len(bytes.TrimLeft(line, " \t\r\n"))
			start := line[lead+len(m.Name)]
			ok := start == '#' && syntaxes&LibratoTags != 0 && m.NameTagSep == ',' ||
				start == ',' && syntaxes&InfluxDBTags != 0 && m.NameTagSep == ',' ||
				start == ';' && syntaxes&GraphiteTags != 0 && m.NameTagSep == ';'
			if !ok {
				t.Fatalf("ParseWith(%q, %v)[%d]: name tags %q after %q, separated by %q", line, syntaxes, i, m.NameTags, start, m.NameTagSep)
			}
		}
		general, errGeneral := parseGeneral(line, nil, syntaxes)
		if got, err := ParseWith(line, nil, syntaxes); err != errGeneral || !reflect.DeepEqual(got, general) {
			t.Fatalf("ParseWith(%q, %v) = %+v, %v; the general path = %+v, %v", line, syntaxes, got, err, general, errGeneral)
		}
		if !bytes.ContainsAny(line, "#,;") {
			all, errAll := Parse(line, nil)
			got, err := ParseWith(line, nil, syntaxes|DogStatsDTags)
			if err != errAll || !reflect.DeepEqual(got, all) {
				t.Fatalf("ParseWith(%q, %v) = %v, %v; Parse = %v, %v", line, syntaxes|DogStatsDTags, got, err, all, errAll)
			}
		}
	})
}

// checkParse runs parse (Parse or ParseWith with syntaxes) on line and
// checks what every result must satisfy; it returns the metrics.
func checkParse(t *testing.T, line []byte, syntaxes TagSyntaxes, parse func([]byte, []Metric) ([]Metric, error)) []Metric {
	t.Helper()
	sentinel := Metric{Name: []byte("sentinel"), Type: Gauge, Value: -1, Rate: 1}
	orig := bytes.Clone(line)
	got, err := parse(line, []Metric{sentinel})
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
		return nil
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
		if (m.NameTags == nil) != (m.NameTagSep == 0) {
			t.Fatalf("Parse(%q)[%d] has name tags %q separated by %q", line, i, m.NameTags, m.NameTagSep)
		}
		if m.NameTags != nil && syntaxes&(LibratoTags|InfluxDBTags|GraphiteTags) == 0 {
			t.Fatalf("Parse(%q)[%d] has name tags %q with syntaxes %v", line, i, m.NameTags, syntaxes)
		}
		for item := range bytes.SplitSeq(m.NameTags, []byte{m.NameTagSep}) {
			if m.NameTags != nil && (len(item) == 0 || item[0] == '=') {
				t.Fatalf("Parse(%q)[%d] has a name tag with no name in %q", line, i, m.NameTags)
			}
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
	return ms
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

// parseGeneral is ParseWith without its fast path (simple): the general
// path alone, which the fast path must agree with.
func parseGeneral(line []byte, out []Metric, syntaxes TagSyntaxes) ([]Metric, error) {
	trimmed := trimSpace(line)
	if len(trimmed) == 0 || bytes.HasPrefix(trimmed, []byte("_e{")) || bytes.HasPrefix(trimmed, []byte("_sc|")) {
		return ParseWith(line, out, syntaxes)
	}
	var nt nameTags
	rest, e := nt.split(trimmed, syntaxes)
	if e != 0 {
		return out, e
	}
	return segments(rest, out, &nt, syntaxes&DogStatsDTags != 0)
}
