package librato

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
)

// manyTags returns n distinct tags.
func manyTags(n int) []Tag {
	tags := make([]Tag, n)
	for i := range tags {
		tags[i] = Tag{Name: fmt.Sprintf("t%d", i), Value: "v"}
	}
	return tags
}

// tagsJSON returns the JSON object of manyTags(n).
func tagsJSON(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf(`"t%d":"v"`, i)
	}
	return "{" + strings.Join(parts, ",") + "}"
}

type encodeCase struct {
	name    string
	batch   Batch
	want    string // full body; "" when nothing is sendable
	sent    int
	skipped int
}

func TestEncodeTagged(t *testing.T) {
	tests := []encodeCase{
		{
			name: "plain with time, period and batch tags",
			batch: Batch{Time: 1700000000, Period: 10, Tags: []Tag{{"host", "a"}, {"env", "prod"}},
				Measurements: []Measurement{{Name: "x", Value: 1.5}, {Name: "y", Value: -2}}},
			want: `{"time":1700000000,"period":10,"tags":{"host":"a","env":"prod"},"measurements":[` +
				`{"name":"x","value":1.5},{"name":"y","value":-2}]}`,
			sent: 2,
		},
		{
			name:  "no time, period or tags",
			batch: Batch{Measurements: []Measurement{{Name: "x"}}},
			want:  `{"measurements":[{"name":"x","value":0}]}`,
			sent:  1,
		},
		{
			name: "summary with last",
			batch: Batch{Time: 60, Measurements: []Measurement{
				{Name: "t", Count: 2, Sum: 4, Min: 1, Max: 3, SumSquares: 10, Last: 3, HasLast: true, Value: 99}}},
			want: `{"time":60,"measurements":[{"name":"t","count":2,"sum":4,"min":1,"max":3,"last":3,"stddev":1}]}`,
			sent: 1,
		},
		{
			name: "summary with its own stddev: not derived from the sum of squares",
			batch: Batch{Measurements: []Measurement{
				{Name: "t", Count: 2, Sum: 2000000001, Min: 1e9, Max: 1e9 + 1, SumSquares: 2000000001000000001, StdDev: 0.5, HasStdDev: true},
				{Name: "u", Count: 2, Sum: 4, Min: 1, Max: 3, SumSquares: 10, HasStdDev: true}}},
			want: `{"measurements":[{"name":"t","count":2,"sum":2000000001,"min":1000000000,"max":1000000001,"stddev":0.5},` +
				`{"name":"u","count":2,"sum":4,"min":1,"max":3,"stddev":0}]}`,
			sent: 2,
		},
		{
			name: "summary without last, rounding below zero variance clamped",
			batch: Batch{Measurements: []Measurement{
				{Name: "t", Count: 3, Sum: 3, Min: 1, Max: 1, SumSquares: 2.9999999}}},
			want: `{"measurements":[{"name":"t","count":3,"sum":3,"min":1,"max":1,"stddev":0}]}`,
			sent: 1,
		},
		{
			name: "per-measurement tags replace the batch tags",
			batch: Batch{Tags: []Tag{{"host", "a"}}, Measurements: []Measurement{
				{Name: "x", Value: 1, Tags: []Tag{{"host", "a"}, {"route", "/api v1"}}},
				{Name: "y", Value: 2, Tags: []Tag{}},
			}},
			want: `{"tags":{"host":"a"},"measurements":[{"name":"x","value":1,"tags":{"host":"a","route":"/api v1"}},` +
				`{"name":"y","value":2}]}`,
			sent: 2,
		},
		{
			name: "legacy fields ignored",
			batch: Batch{Source: "web1", Measurements: []Measurement{
				{Name: "x", Value: 1, Source: "web2"}}},
			want: `{"measurements":[{"name":"x","value":1}]}`,
			sent: 1,
		},
		{
			name: "unsendable measurements skipped",
			batch: Batch{Measurements: []Measurement{
				{Name: "nan", Value: math.NaN()},
				{Name: "inf", Value: math.Inf(-1)},
				{Name: "huge", Value: 1e127},
				{Name: "ok", Value: 1e126},
				{Name: "", Value: 1},
				{Name: "summary-inf-min", Count: 1, Sum: 1, Min: math.Inf(-1), Max: 1, SumSquares: 1},
				{Name: "summary-nan-last", Count: 1, Sum: 1, Min: 1, Max: 1, SumSquares: 1, Last: math.NaN(), HasLast: true},
				{Name: "summary-nan-last-unused", Count: 1, Sum: 1, Min: 1, Max: 1, SumSquares: 1, Last: math.NaN()},
				{Name: "summary-huge-stddev", Count: 1, Sum: 0, Min: 1, Max: 1, SumSquares: 1e254},
				{Name: "summary-nan-sumsq", Count: 1, Sum: 1, Min: 1, Max: 1, SumSquares: math.NaN()},
				{Name: "too-many-tags", Value: 1, Tags: manyTags(MaxTags + 1)},
				{Name: "max-tags", Value: 1, Tags: manyTags(MaxTags)},
			}},
			want: `{"measurements":[{"name":"ok","value":1e+126},` +
				`{"name":"summary-nan-last-unused","count":1,"sum":1,"min":1,"max":1,"stddev":0},` +
				`{"name":"max-tags","value":1,"tags":` + tagsJSON(MaxTags) + `}]}`,
			sent:    3,
			skipped: 9,
		},
		{
			name: "too many batch tags: inheriting measurements skipped, batch tags not sent",
			batch: Batch{Tags: manyTags(MaxTags + 1), Measurements: []Measurement{
				{Name: "inherits", Value: 1},
				{Name: "own", Value: 2, Tags: []Tag{{"a", "b"}}},
			}},
			want:    `{"measurements":[{"name":"own","value":2,"tags":{"a":"b"}}]}`,
			sent:    1,
			skipped: 1,
		},
		{
			name:    "everything skipped",
			batch:   Batch{Time: 1, Measurements: []Measurement{{Name: "x", Value: math.NaN()}, {Name: "y", Value: math.Inf(1)}}},
			skipped: 2,
		},
		{
			name: "escaping",
			batch: Batch{Tags: []Tag{{"k\"", "v\\"}}, Measurements: []Measurement{
				{Name: "a\"b\\c\nd\re\tf\x01g\x1fh\xffi\u2028j\u2029k é/<>&", Value: 1}}},
			want: `{"tags":{"k\"":"v\\"},"measurements":[` +
				`{"name":"a\"b\\c\nd\re\tf\u0001g\u001fh\ufffdi\u2028j\u2029k é/<>&","value":1}]}`,
			sent: 1,
		},
		{
			name: "number formats",
			batch: Batch{Measurements: []Measurement{
				{Name: "a", Value: 1e21}, {Name: "b", Value: 1e-7}, {Name: "c", Value: math.Copysign(0, -1)},
				{Name: "d", Value: 123456789}, {Name: "e", Value: 0.1}, {Name: "f", Value: 1e20},
				{Name: "g", Value: 1.5e-300}, {Name: "h", Value: -1e-6},
			}},
			want: `{"measurements":[{"name":"a","value":1e+21},{"name":"b","value":1e-7},{"name":"c","value":-0},` +
				`{"name":"d","value":123456789},{"name":"e","value":0.1},{"name":"f","value":100000000000000000000},` +
				`{"name":"g","value":1.5e-300},{"name":"h","value":-0.000001}]}`,
			sent: 8,
		},
	}
	runEncodeCases(t, Tagged, tests)
}

func TestEncodeLegacy(t *testing.T) {
	tests := []encodeCase{
		{
			name: "plain with time and sources",
			batch: Batch{Time: 1700000000, Period: 10, Source: "web1", Tags: []Tag{{"host", "a"}}, Measurements: []Measurement{
				{Name: "x", Value: 1.5}, {Name: "y", Value: 2, Source: "web2", Tags: []Tag{{"a", "b"}}}}},
			want: `{"measure_time":1700000000,"source":"web1","gauges":[` +
				`{"name":"x","value":1.5},{"name":"y","value":2,"source":"web2"}]}`,
			sent: 2,
		},
		{
			name:  "no time or source",
			batch: Batch{Measurements: []Measurement{{Name: "x", Value: 3}}},
			want:  `{"gauges":[{"name":"x","value":3}]}`,
			sent:  1,
		},
		{
			name: "summary sends sum_squares, never last or stddev",
			batch: Batch{Time: 60, Measurements: []Measurement{
				{Name: "t", Count: 2, Sum: 4, Min: 1, Max: 3, SumSquares: 10, Last: math.NaN(), HasLast: true, Source: "s"}}},
			want: `{"measure_time":60,"gauges":[{"name":"t","count":2,"sum":4,"min":1,"max":3,"sum_squares":10,"source":"s"}]}`,
			sent: 1,
		},
		{
			name: "unsendable measurements skipped",
			batch: Batch{Measurements: []Measurement{
				{Name: "nan", Value: math.NaN()},
				{Name: "huge", Value: -1e127},
				{Name: "sumsq-inf", Count: 1, Sum: 1, Min: 1, Max: 1, SumSquares: math.Inf(1)},
				{Name: "max-nan", Count: 1, Sum: 1, Min: 1, Max: math.NaN(), SumSquares: 1},
				{Name: "", Value: 1},
				{Name: "ok", Value: 7, Tags: manyTags(MaxTags + 1)},
			}},
			want:    `{"gauges":[{"name":"ok","value":7}]}`,
			sent:    1,
			skipped: 5,
		},
		{
			name: "counters in their own list",
			batch: Batch{Time: 60, Measurements: []Measurement{
				{Name: "c1", Value: 10, Counter: true}, {Name: "g", Value: 2},
				{Name: "c2", Value: 5, Counter: true, Source: "s"}, {Name: "bad", Value: math.NaN(), Counter: true},
				{Name: "t", Count: 1, Sum: 1, Min: 1, Max: 1, SumSquares: 1, Counter: true}}},
			want: `{"measure_time":60,"gauges":[{"name":"g","value":2},{"name":"t","count":1,"sum":1,"min":1,"max":1,"sum_squares":1}],` +
				`"counters":[{"name":"c1","value":10},{"name":"c2","value":5,"source":"s"}]}`,
			sent:    4,
			skipped: 1,
		},
		{
			name:    "everything skipped",
			batch:   Batch{Source: "s", Measurements: []Measurement{{Name: "x", Value: math.NaN()}}},
			skipped: 1,
		},
		{
			name:  "escaping",
			batch: Batch{Source: "s\"\x00", Measurements: []Measurement{{Name: "n", Value: 1, Source: "\\\xc3"}}},
			want:  `{"source":"s\"\u0000","gauges":[{"name":"n","value":1,"source":"\\\ufffd"}]}`,
			sent:  1,
		},
	}
	runEncodeCases(t, Legacy, tests)
}

func runEncodeCases(t *testing.T, api API, tests []encodeCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []byte("keep")
			body, sent, skipped := encode(prefix, api, &tt.batch)
			if !bytes.HasPrefix(body, prefix) {
				t.Fatalf("encode did not append to dst: %q", body)
			}
			body = body[len(prefix):]
			if sent != tt.sent || skipped != tt.skipped {
				t.Errorf("sent, skipped = %d, %d; want %d, %d", sent, skipped, tt.sent, tt.skipped)
			}
			if tt.want == "" {
				if sent != 0 {
					t.Errorf("sent = %d, want nothing sendable", sent)
				}
				return
			}
			if string(body) != tt.want {
				t.Errorf("body\n got %s\nwant %s", body, tt.want)
			}
			var doc map[string]any
			if err := json.Unmarshal(body, &doc); err != nil {
				t.Fatalf("body is not valid JSON: %v\n%s", err, body)
			}
			list := "measurements"
			if api == Legacy {
				list = "gauges"
			}
			ms, _ := doc[list].([]any)
			counters, _ := doc["counters"].([]any)
			if len(ms)+len(counters) != sent {
				t.Errorf("decoded %d %s and %d counters, want %d in all", len(ms), list, len(counters), sent)
			}
		})
	}
}

// TestEncodeDecodesToInput checks by decoding that names and tags survive
// encoding as encoding/json would read them.
func TestEncodeDecodesToInput(t *testing.T) {
	tests := []string{"plain", "quote\"back\\slash", "ctl\x00\x07\x1f\x7f", "bad\xff\xfeutf8", "日本語", "\u2028\u2029", ""}
	for _, s := range tests {
		b := Batch{Tags: []Tag{{s, s}}, Measurements: []Measurement{{Name: "n" + s, Value: 1, Tags: []Tag{{"k", s}}}}}
		body, _, _ := encode(nil, Tagged, &b)
		var doc struct {
			Tags         map[string]string
			Measurements []struct {
				Name string
				Tags map[string]string
			}
		}
		if err := json.Unmarshal(body, &doc); err != nil {
			t.Fatalf("%q: invalid JSON %v: %s", s, err, body)
		}
		want := string([]rune(s)) // each invalid byte becomes U+FFFD
		if doc.Tags[want] != want || len(doc.Measurements) != 1 || doc.Measurements[0].Name != "n"+want ||
			doc.Measurements[0].Tags["k"] != want {
			t.Errorf("%q: decoded %+v, want %q everywhere", s, doc, want)
		}
	}
}

// FuzzAppendString checks that appendString matches encoding/json (without HTML
// escaping).
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "abc", "a\"b", "\\", "\x00\x1f", "\xff", "é日本", "\u2028", "<&>", "\xe2\x80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		got := appendString(nil, s)
		if string(got) != strings.TrimSuffix(want.String(), "\n") {
			t.Errorf("appendString(%q) = %s, encoding/json %s", s, got, want.String())
		}
	})
}

// FuzzAppendFloat checks that appendFloat matches encoding/json for sendable
// numbers.
func FuzzAppendFloat(f *testing.F) {
	for _, v := range []float64{0, 1, -1, 0.1, 1e21, 1e20, 1e-6, 1e-7, 123456789.125, 5e-324, 1e126, -1e-300} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v float64) {
		if !sendable(v) {
			return
		}
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendFloat(nil, v); string(got) != string(want) {
			t.Errorf("appendFloat(%v) = %s, encoding/json %s", v, got, want)
		}
	})
}

// benchBatch returns a batch of n measurements like a flush produces: a third
// summaries, tags on some.
func benchBatch(n int) *Batch {
	b := &Batch{Time: 1700000000, Period: 10, Source: "web-01", Tags: []Tag{{"host", "web-01"}, {"env", "production"}}}
	for i := range n {
		m := Measurement{Name: fmt.Sprintf("app.service.requests.%d", i), Value: float64(i) * 1.25}
		if i%3 == 0 {
			m = Measurement{Name: fmt.Sprintf("app.service.latency.%d", i), Count: 120, Sum: 3120.5,
				Min: 0.25, Max: 812.75, SumSquares: 402113.0625, Last: 12.5, HasLast: true}
		}
		if i%5 == 0 {
			m.Tags = []Tag{{"host", "web-01"}, {"env", "production"}, {"route", "/api/v1/items"}}
			m.Source = "web-01.route"
		}
		b.Measurements = append(b.Measurements, m)
	}
	return b
}

func TestEncodeAllocs(t *testing.T) {
	b := benchBatch(300)
	for _, api := range []API{Tagged, Legacy} {
		buf, _, _ := encode(nil, api, b)
		allocs := testing.AllocsPerRun(100, func() {
			buf, _, _ = encode(buf[:0], api, b)
		})
		if allocs != 0 {
			t.Errorf("%v: encode into a reused buffer: %v allocations, want 0", api, allocs)
		}
	}
}

func benchmarkEncode(b *testing.B, api API) {
	batch := benchBatch(300)
	buf, _, _ := encode(nil, api, batch)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf, _, _ = encode(buf[:0], api, batch)
	}
}

func BenchmarkEncodeTagged(b *testing.B) { benchmarkEncode(b, Tagged) }
func BenchmarkEncodeLegacy(b *testing.B) { benchmarkEncode(b, Legacy) }

// BenchmarkEncodeJSONMarshal is the baseline: the tagged payload built with
// encoding/json.
func BenchmarkEncodeJSONMarshal(b *testing.B) {
	type point struct {
		Name   string            `json:"name"`
		Value  *float64          `json:"value,omitempty"`
		Count  int64             `json:"count,omitempty"`
		Sum    float64           `json:"sum,omitempty"`
		Min    float64           `json:"min,omitempty"`
		Max    float64           `json:"max,omitempty"`
		Last   *float64          `json:"last,omitempty"`
		Stddev float64           `json:"stddev,omitempty"`
		Tags   map[string]string `json:"tags,omitempty"`
	}
	type payload struct {
		Time         int64             `json:"time"`
		Period       int64             `json:"period,omitempty"`
		Tags         map[string]string `json:"tags,omitempty"`
		Measurements []point           `json:"measurements"`
	}
	tagMap := func(tags []Tag) map[string]string {
		if len(tags) == 0 {
			return nil
		}
		m := make(map[string]string, len(tags))
		for _, t := range tags {
			m[t.Name] = t.Value
		}
		return m
	}
	batch := benchBatch(300)
	b.ReportAllocs()
	for b.Loop() {
		p := payload{Time: batch.Time, Period: batch.Period, Tags: tagMap(batch.Tags)}
		for i := range batch.Measurements {
			m := &batch.Measurements[i]
			pt := point{Name: m.Name, Tags: tagMap(m.Tags)}
			if m.Count > 0 {
				pt.Count, pt.Sum, pt.Min, pt.Max, pt.Stddev = m.Count, m.Sum, m.Min, m.Max, stddev(m)
				pt.Last = &m.Last
			} else {
				pt.Value = &m.Value
			}
			p.Measurements = append(p.Measurements, pt)
		}
		if _, err := json.Marshal(p); err != nil {
			b.Fatal(err)
		}
	}
}
