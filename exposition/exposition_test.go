package exposition

import (
	"compress/gzip"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/libratod/libratod/aggregator"
	"github.com/libratod/libratod/internal/fixture"
)

// t0 is the start of the first period of the tests.
var t0 = time.Date(2025, 1, 2, 3, 4, 0, 0, time.UTC)

// snapshot aggregates StatsD lines into one period (see fixture.Snapshot).
func snapshot(t testing.TB, cfg aggregator.Config, lines ...string) *aggregator.Snapshot {
	t.Helper()
	return fixture.Snapshot(t, cfg, lines...)
}

// clock is an injected clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// observe feeds periods of lines to s, one period (10s) each, from t0.
func observe(t testing.TB, s *Store, periods ...[]string) {
	t.Helper()
	for i, lines := range periods {
		s.ObservePeriod(t0.Add(time.Duration(i)*10*time.Second), snapshot(t, aggregator.Config{}, lines...))
	}
}

// scrape GETs s's exposition and parses it with expfmt, checking the
// format strictly (legacy names).
func scrape(t testing.TB, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); ct != ContentType {
		t.Errorf("Content-Type %q, want %q", ct, ContentType)
	}
	return parseText(t, rec.Body.String())
}

func parseText(t testing.TB, text string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("exposition does not parse: %v\n%s", err, text)
	}
	return mfs
}

// flatten turns parsed families into one value per sample line,
// "name{a="x",b="y"}" with the labels sorted, and the type of each family.
func flatten(mfs map[string]*dto.MetricFamily) (samples map[string]float64, types map[string]string) {
	samples, types = map[string]float64{}, map[string]string{}
	key := func(name string, labels []*dto.LabelPair, extra ...string) string {
		var ls []string
		for _, l := range labels {
			ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
		}
		ls = append(ls, extra...)
		sort.Strings(ls)
		if len(ls) == 0 {
			return name
		}
		return name + "{" + strings.Join(ls, ",") + "}"
	}
	for name, mf := range mfs {
		types[name] = strings.ToLower(mf.GetType().String())
		for _, m := range mf.GetMetric() {
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				samples[key(name, m.Label)] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				samples[key(name, m.Label)] = m.GetGauge().GetValue()
			case dto.MetricType_SUMMARY:
				for _, q := range m.GetSummary().GetQuantile() {
					samples[key(name, m.Label, fmt.Sprintf("quantile=%q", fmt.Sprint(q.GetQuantile())))] = q.GetValue()
				}
				samples[key(name+"_sum", m.Label)] = m.GetSummary().GetSampleSum()
				samples[key(name+"_count", m.Label)] = float64(m.GetSummary().GetSampleCount())
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				for _, b := range h.GetBucket() {
					v := b.GetCumulativeCountFloat()
					if v == 0 {
						v = float64(b.GetCumulativeCount())
					}
					samples[key(name+"_bucket", m.Label, fmt.Sprintf("le=%q", fmt.Sprint(b.GetUpperBound())))] = v
				}
				c := h.GetSampleCountFloat()
				if c == 0 {
					c = float64(h.GetSampleCount())
				}
				samples[key(name+"_bucket", m.Label, `le="+Inf"`)] = c
				samples[key(name+"_sum", m.Label)] = h.GetSampleSum()
				samples[key(name+"_count", m.Label)] = c
			default:
				samples[key(name, m.Label)] = math.NaN() // untyped: never written
			}
		}
	}
	return samples, types
}

func TestStoreTypes(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		periods [][]string
		want    map[string]float64
		types   map[string]string
	}{
		{
			name:    "counter: running total of value/rate over periods",
			periods: [][]string{{"hits:1|c", "hits:2|c|@0.5"}, {}, {"hits:3|c"}},
			want:    map[string]float64{"hits": 8},
			types:   map[string]string{"hits": "counter"},
		},
		{
			name:    "counter: a negative period is dropped",
			periods: [][]string{{"hits:5|c"}, {"hits:-2|c"}, {"hits:1|c", "hits:-0.5|c"}},
			want:    map[string]float64{"hits": 5.5},
			types:   map[string]string{"hits": "counter"},
		},
		{
			name:    "gauge: last value, kept while absent",
			periods: [][]string{{"temp:20|g", "temp:21.5|g"}, {"temp:-3|g"}, {}},
			want:    map[string]float64{"temp": -3},
			types:   map[string]string{"temp": "gauge"},
		},
		{
			name:    "set: last period's cardinality",
			periods: [][]string{{"users:alice|s", "users:bob|s", "users:alice|s"}, {"users:carol|s"}},
			want:    map[string]float64{"users": 1},
			types:   map[string]string{"users": "gauge"},
		},
		{
			name: "timer as summary: last quantiles, running sum and count",
			cfg:  Config{Percentiles: []float64{90, 50, 99.9, 100, 0, 101, 50}},
			periods: [][]string{
				{"lat:10|ms", "lat:20|ms", "lat:30|ms", "lat:40|ms"},
				{"lat:1|ms", "lat:2|ms|@0.5", "lat:3|h", "lat:4|d"},
				{},
			},
			want: map[string]float64{
				`lat{quantile="0.5"}`: 2, `lat{quantile="0.9"}`: 4, `lat{quantile="0.999"}`: 4, `lat{quantile="1"}`: 4,
				"lat_sum": 100 + 1 + 4 + 3 + 4, "lat_count": 4 + 5,
			},
			types: map[string]string{"lat": "summary"},
		},
		{
			name: "timer as summary: too few values for a rank give the smallest",
			cfg:  Config{Percentiles: []float64{10}},
			periods: [][]string{
				{"lat:7|ms", "lat:9|ms"},
			},
			want:  map[string]float64{`lat{quantile="0.1"}`: 7, "lat_sum": 16, "lat_count": 2},
			types: map[string]string{"lat": "summary"},
		},
		{
			name:    "timer as summary without percentiles",
			periods: [][]string{{"lat:10|ms", "lat:20|ms"}},
			want:    map[string]float64{"lat_sum": 30, "lat_count": 2},
			types:   map[string]string{"lat": "summary"},
		},
		{
			name: "timer as summary in seconds",
			cfg:  Config{Percentiles: []float64{50}, TimerUnitSeconds: true},
			periods: [][]string{
				{"lat:250|ms", "lat:1500|ms"},
			},
			want:  map[string]float64{`lat{quantile="0.5"}`: 0.25, "lat_sum": 1.75, "lat_count": 2},
			types: map[string]string{"lat": "summary"},
		},
		{
			name: "timer as histogram: cumulative buckets, weighted by 1/rate",
			cfg:  Config{Histogram: true, Buckets: []float64{25, 10, 10, math.Inf(1)}},
			periods: [][]string{
				{"lat:5|ms", "lat:10|ms", "lat:20|ms", "lat:30|ms"},
				{"lat:1|ms|@0.5", "lat:100|ms|@0.5"},
			},
			want: map[string]float64{
				`lat_bucket{le="10"}`: 2 + 2, `lat_bucket{le="25"}`: 3 + 2, `lat_bucket{le="+Inf"}`: 4 + 4,
				"lat_sum": 65 + 202, "lat_count": 8,
			},
			types: map[string]string{"lat": "histogram"},
		},
		{
			name:    "timer as histogram: default buckets",
			cfg:     Config{Histogram: true},
			periods: [][]string{{"lat:7|ms", "lat:5000|ms", "lat:20000|ms"}},
			want: map[string]float64{
				`lat_bucket{le="5"}`: 0, `lat_bucket{le="10"}`: 1, `lat_bucket{le="25"}`: 1, `lat_bucket{le="50"}`: 1,
				`lat_bucket{le="100"}`: 1, `lat_bucket{le="250"}`: 1, `lat_bucket{le="500"}`: 1, `lat_bucket{le="1000"}`: 1,
				`lat_bucket{le="2500"}`: 1, `lat_bucket{le="5000"}`: 2, `lat_bucket{le="10000"}`: 2, `lat_bucket{le="+Inf"}`: 3,
				"lat_sum": 25007, "lat_count": 3,
			},
			types: map[string]string{"lat": "histogram"},
		},
		{
			name:    "timer as histogram in seconds: bounds stay in milliseconds in the file",
			cfg:     Config{Histogram: true, Buckets: []float64{5, 100}, TimerUnitSeconds: true},
			periods: [][]string{{"lat:3|ms", "lat:50|ms"}},
			want: map[string]float64{
				`lat_bucket{le="0.005"}`: 1, `lat_bucket{le="0.1"}`: 2, `lat_bucket{le="+Inf"}`: 2,
				"lat_sum": 0.053, "lat_count": 2,
			},
			types: map[string]string{"lat": "histogram"},
		},
		{
			name: "prefix, and kinds side by side",
			cfg:  Config{Prefix: "my-app"},
			periods: [][]string{
				{"a:1|c", "b:2|g", "c:x|s", "d:4|ms"},
			},
			want:  map[string]float64{"my_app_a": 1, "my_app_b": 2, "my_app_c": 1, "my_app_d_sum": 4, "my_app_d_count": 1},
			types: map[string]string{"my_app_a": "counter", "my_app_b": "gauge", "my_app_c": "gauge", "my_app_d": "summary"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(tt.cfg)
			observe(t, s, tt.periods...)
			got, types := flatten(scrape(t, s))
			if !maps.EqualFunc(got, tt.want, closeEnough) {
				t.Errorf("samples\n%v\nwant\n%v", got, tt.want)
			}
			if !maps.Equal(types, tt.types) {
				t.Errorf("types %v, want %v", types, tt.types)
			}
		})
	}
}

// closeEnough compares floats to 1e-12 relative: sums in seconds are
// divided.
func closeEnough(a, b float64) bool {
	return a == b || math.Abs(a-b) <= 1e-12*math.Max(math.Abs(a), math.Abs(b))
}

func TestLabels(t *testing.T) {
	tests := []struct {
		name   string
		labels map[string]string
		lines  []string
		want   map[string]float64
	}{
		{
			name:  "DogStatsD and Librato tags",
			lines: []string{"req#region=eu:1|c|#env:prod,canary"},
			want:  map[string]float64{`req{canary="true",env="prod",region="eu"}`: 1},
		},
		{
			name:   "constant labels on every series, a tag wins",
			labels: map[string]string{"env": "test", "team": "web"},
			lines:  []string{"a:1|c", "b:2|g|#env:prod,zone:z1"},
			want: map[string]float64{
				`a{env="test",team="web"}`:           1,
				`b{env="prod",team="web",zone="z1"}`: 2,
			},
		},
		{
			name:   "constant labels are sanitized",
			labels: map[string]string{"region.name": "us east/1", "9lives": "x"},
			lines:  []string{"a:1|c"},
			want:   map[string]float64{`a{_9lives="x",region_name="us east/1"}`: 1},
		},
		{
			name:  "names sanitized",
			lines: []string{"api.requests-total:1|c", "5xx:1|c", "ünï:1|c"},
			want:  map[string]float64{"api_requests_total": 1, "_5xx": 1, "_n_": 1},
		},
		{
			name:  "label names sanitized and reserved ones renamed",
			lines: []string{`a:1|c|#host.name:x,2nd:y,__meta:z,le:1,quantile:2`},
			want:  map[string]float64{`a{_2nd="y",exported___meta="z",host_name="x",le="1",quantile="2"}`: 1},
		},
		{
			name:  "label values escaped and made UTF-8",
			lines: []string{"a:1|c|#path:C:\\dir,q:say \"hi\",bad:\xff\xfeok,utf:日本"},
			want:  map[string]float64{`a{bad="` + "\ufffd\ufffd" + `ok",path="C:\\dir",q="say \"hi\"",utf="日本"}`: 1},
		},
		{
			name:  "tags equal after sanitizing: the first in byte order wins",
			lines: []string{"a:1|c|#x_y:second,x-y:first"},
			want:  map[string]float64{`a{x_y="first"}`: 1},
		},
		{
			name:  "series equal after sanitizing are one",
			lines: []string{"a.b:1|c", "a-b:2|c", "a_b:4|c|#t.x:1", "a_b:8|c|#t_x:1"},
			want:  map[string]float64{"a_b": 3, `a_b{t_x="1"}`: 12},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(Config{Labels: tt.labels})
			observe(t, s, tt.lines)
			got, _ := flatten(scrape(t, s))
			if !maps.Equal(got, tt.want) {
				t.Errorf("samples\n%q\nwant\n%q", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(tt.want)))
				t.Errorf("values %v, want %v", got, tt.want)
			}
		})
	}
}

func TestReservedTimerLabels(t *testing.T) {
	for _, tt := range []struct {
		cfg  Config
		want []string
	}{
		{Config{Percentiles: []float64{50}}, []string{
			`lat{exported_quantile="a",le="b",quantile="0.5"}`,
			`lat{exported_quantile="c",le="d",quantile="0.5"}`,
			`c{le="d",quantile="c"}`,
		}},
		{Config{Histogram: true, Buckets: []float64{1}}, []string{
			`lat_bucket{exported_le="b",le="1",quantile="a"}`,
			`lat_bucket{exported_le="d",le="1",quantile="c"}`,
			`c{le="d",quantile="c"}`,
		}},
	} {
		tt.cfg.Labels = map[string]string{"quantile": "c", "le": "d"}
		s := New(tt.cfg)
		observe(t, s, []string{"lat:1|ms|#quantile:a,le:b", "lat:2|ms", "c:1|c"})
		got, _ := flatten(scrape(t, s))
		for _, w := range tt.want {
			if _, ok := got[w]; !ok {
				t.Errorf("histogram %v: no sample %s in %v", tt.cfg.Histogram, w, got)
			}
		}
	}
}

func TestSanitize(t *testing.T) {
	tests := []struct {
		in                  string
		metric, label, text string
	}{
		{"abc", "abc", "abc", "abc"},
		{"a.b-c/d", "a_b_c_d", "a_b_c_d", "a.b-c/d"},
		{"a:b", "a:b", "a_b", "a:b"},
		{"9a", "_9a", "_9a", "9a"},
		{"a9", "a9", "a9", "a9"},
		{"_x", "_x", "_x", "_x"},
		{"__x", "__x", "exported___x", "__x"},
		{".x", "_x", "_x", ".x"},
		{"é", "_", "_", "é"},
		{"\xff", "_", "_", "\ufffd"},
		{`q"\` + "\n", "q___", "q___", `q\"\\\n`},
		{"", "", "", "true"},
	}
	for _, tt := range tests {
		if got := string(appendMetricName([]byte("x"), 1, tt.in)); got != "x"+tt.metric {
			t.Errorf("metric name %q = %q, want %q", tt.in, got[1:], tt.metric)
		}
		if got := string(appendLabelName([]byte("x"), tt.in, "")); got != "x"+tt.label {
			t.Errorf("label name %q = %q, want %q", tt.in, got[1:], tt.label)
		}
		if got := string(appendLabelValue(nil, tt.in)); got != tt.text {
			t.Errorf("label value %q = %q, want %q", tt.in, got, tt.text)
		}
	}
}

func TestShift(t *testing.T) {
	tests := []struct {
		v    float64
		exp  int
		want string
	}{
		{99.9, -2, "0.999"}, {12.3, -2, "0.123"}, {99.99, -2, "0.9999"}, {0.3, -3, "0.0003"},
		{2500, -3, "2.5"}, {1e-320, -10, "0"}, {1e300, 10, "+Inf"},
	}
	for _, tt := range tests {
		if got := string(appendFloat(nil, shift(tt.v, tt.exp))); got != tt.want {
			t.Errorf("shift(%v, %d) = %s, want %s", tt.v, tt.exp, got, tt.want)
		}
	}
}

func TestTypeClash(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		periods [][]string
		want    map[string]float64
		clashes uint64
	}{
		{
			name:    "same name and tags: the first type wins",
			periods: [][]string{{"x:1|c"}, {"x:2|g", "x:3|c"}},
			want:    map[string]float64{"x": 4},
			clashes: 1,
		},
		{
			name:    "same name, other tags: the family keeps its type",
			periods: [][]string{{"x:1|g|#a:1"}, {"x:2|c|#a:2", "x:v|s"}},
			want:    map[string]float64{`x{a="1"}`: 1},
			clashes: 2,
		},
		{
			name:    "a gauge named like a summary's _sum line",
			periods: [][]string{{"lat:5|ms"}, {"lat_sum:1|g", "lat_count:1|c", "lat_bucket:1|g"}},
			want:    map[string]float64{"lat_sum": 5, "lat_count": 1, "lat_bucket": 1},
			clashes: 2,
		},
		{
			name:    "a summary whose _count line is a counter",
			periods: [][]string{{"req_count:1|c"}, {"req:5|ms"}},
			want:    map[string]float64{"req_count": 1},
			clashes: 1,
		},
		{
			name:    "a histogram whose _bucket line is a gauge",
			cfg:     Config{Histogram: true, Buckets: []float64{1}},
			periods: [][]string{{"req_bucket:1|g"}, {"req:5|ms"}},
			want:    map[string]float64{"req_bucket": 1},
			clashes: 1,
		},
		{
			name:    "a timer named like another timer's _sum line",
			periods: [][]string{{"t:1|ms"}, {"t_sum:2|ms"}},
			want:    map[string]float64{"t_sum": 1, "t_count": 1},
			clashes: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(tt.cfg)
			observe(t, s, tt.periods...)
			got, _ := flatten(scrape(t, s))
			if !maps.Equal(got, tt.want) {
				t.Errorf("samples %v, want %v", got, tt.want)
			}
			if n := s.Stats().Dropped[ReasonTypeClash]; n != tt.clashes {
				t.Errorf("clashes counted %d, want %d", n, tt.clashes)
			}
		})
	}
}

func TestMaxSeries(t *testing.T) {
	clk := &clock{now: t0}
	s := New(Config{MaxSeries: 2, Expire: time.Minute, Now: clk.Now})
	observe(t, s, []string{"a:1|c", "b:1|c", "c:1|c", "d:1|c"})
	got, _ := flatten(scrape(t, s))
	if len(got) != 2 {
		t.Fatalf("%d series held, want 2: %v", len(got), got)
	}
	if st := s.Stats(); st.Series != 2 || st.Dropped[ReasonMaxSeries] != 2 {
		t.Errorf("stats %+v, want 2 series and 2 dropped", st)
	}
	// The series held keep counting; the new ones are dropped again.
	held := slices.Sorted(maps.Keys(got))
	observe(t, s, []string{held[0] + ":1|c", held[1] + ":2|c", "e:1|c"})
	got, _ = flatten(scrape(t, s))
	if want := map[string]float64{held[0]: 2, held[1]: 3}; !maps.Equal(got, want) {
		t.Errorf("samples %v, want %v", got, want)
	}
	if n := s.Stats().Dropped[ReasonMaxSeries]; n != 3 {
		t.Errorf("%d dropped, want 3", n)
	}
	// Once they expire there is room again.
	clk.Add(2 * time.Minute)
	observe(t, s, []string{held[0] + ":7|c"})
	got, _ = flatten(scrape(t, s))
	if want := map[string]float64{held[0]: 7}; !maps.Equal(got, want) {
		t.Errorf("after expiry: samples %v, want %v", got, want)
	}
}

func TestExpire(t *testing.T) {
	tests := []struct {
		name   string
		expire time.Duration
		steps  []time.Duration // clock advance before each period
		want   map[string]float64
	}{
		{"never", 0, []time.Duration{0, time.Hour, 24 * time.Hour}, map[string]float64{"a": 1, "b": 2, "c": 3}},
		{"within", 5 * time.Minute, []time.Duration{0, 4 * time.Minute, 59 * time.Second}, map[string]float64{"a": 1, "b": 2, "c": 3}},
		{"one expired", 5 * time.Minute, []time.Duration{0, 4 * time.Minute, time.Minute}, map[string]float64{"b": 2, "c": 3}},
		{"two expired", 5 * time.Minute, []time.Duration{0, time.Minute, 10 * time.Minute}, map[string]float64{"c": 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &clock{now: t0}
			s := New(Config{Expire: tt.expire, Now: clk.Now})
			for i, line := range []string{"a:1|g", "b:2|g", "c:3|g"} {
				clk.Add(tt.steps[i])
				observe(t, s, []string{line})
			}
			got, _ := flatten(scrape(t, s))
			if !maps.Equal(got, tt.want) {
				t.Errorf("samples %v, want %v", got, tt.want)
			}
			if n := s.Stats().Series; n != len(tt.want) {
				t.Errorf("Stats().Series = %d, want %d", n, len(tt.want))
			}
		})
	}
}

// TestExpireBetweenPeriods checks that a scrape leaves out a series that
// expired since the last period, and that a series coming back starts a
// new counter.
func TestExpireBetweenPeriods(t *testing.T) {
	clk := &clock{now: t0}
	s := New(Config{Expire: time.Minute, Now: clk.Now})
	observe(t, s, []string{"a:5|c"})
	clk.Add(time.Minute)
	if got, _ := flatten(scrape(t, s)); len(got) != 0 {
		t.Errorf("expired series still served: %v", got)
	}
	observe(t, s, []string{"a:1|c"})
	if got, _ := flatten(scrape(t, s)); !maps.Equal(got, map[string]float64{"a": 1}) {
		t.Errorf("samples %v, want a restarted at 1", got)
	}
}

// TestOutOfOrderPeriods checks that a period observed after a later one
// adds to counters but does not replace last values.
func TestOutOfOrderPeriods(t *testing.T) {
	s := New(Config{Percentiles: []float64{50}})
	later := snapshot(t, aggregator.Config{}, "g:2|g", "c:2|c", "t:20|ms")
	earlier := snapshot(t, aggregator.Config{}, "g:1|g", "c:1|c", "t:10|ms")
	s.ObservePeriod(t0.Add(10*time.Second), later)
	s.ObservePeriod(t0, earlier)
	got, _ := flatten(scrape(t, s))
	want := map[string]float64{"g": 2, "c": 3, `t{quantile="0.5"}`: 20, "t_sum": 30, "t_count": 2}
	if !maps.Equal(got, want) {
		t.Errorf("samples %v, want %v", got, want)
	}
}

// TestSketchHistogram checks the buckets of a timer whose values went
// past the aggregator's MaxTimerSamples, which come from the estimates.
func TestSketchHistogram(t *testing.T) {
	var lines []string
	for v := 1; v <= 2000; v++ {
		lines = append(lines, fmt.Sprintf("lat:%d|ms", v))
	}
	for _, tt := range []struct {
		name string
		cfg  aggregator.Config
	}{
		{"exact", aggregator.Config{}},
		{"estimated", aggregator.Config{MaxTimerSamples: 100}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			snap := snapshot(t, tt.cfg, lines...)
			exact := true
			snap.Each(func(s *aggregator.Series) { exact = s.PercentilesExact() })
			if exact != (tt.name == "exact") {
				t.Fatalf("PercentilesExact = %v", exact)
			}
			s := New(Config{Histogram: true, Buckets: []float64{0.5, 100, 1000, 1999, 5000}})
			s.ObservePeriod(t0, snap)
			got, _ := flatten(scrape(t, s))
			want := map[string]float64{
				`lat_bucket{le="0.5"}`: 0, `lat_bucket{le="100"}`: 100, `lat_bucket{le="1000"}`: 1000,
				`lat_bucket{le="1999"}`: 1999, `lat_bucket{le="5000"}`: 2000, `lat_bucket{le="+Inf"}`: 2000,
				"lat_sum": 2001000, "lat_count": 2000,
			}
			tolerance := 0.0
			if !exact {
				tolerance = 0.011 // values within 1%, so ranks too here
			}
			for k, w := range want {
				if g, ok := got[k]; !ok || math.Abs(g-w) > tolerance*w {
					t.Errorf("%s = %v, want %v ±%.1f%%", k, g, w, 100*tolerance)
				}
			}
			if len(got) != len(want) {
				t.Errorf("samples %v, want the keys of %v", got, want)
			}
		})
	}
}

func TestHandler(t *testing.T) {
	s := New(Config{Labels: map[string]string{"env": "test"}})
	observe(t, s, []string{"b:1|c", "a:2|g|#k:v", "a:3|g"})
	tests := []struct {
		method, encoding string
		gzip             bool
		body             bool
	}{
		{"GET", "", false, true},
		{"GET", "gzip", true, true},
		{"GET", "deflate, gzip;q=0.5", true, true},
		{"GET", "gzip;q=0", false, true},
		{"GET", "br", false, true},
		{"HEAD", "", false, false},
	}
	const want = `# HELP a StatsD gauge: last value.
# TYPE a gauge
a{env="test"} 3
a{env="test",k="v"} 2
# HELP b StatsD counter: running total of value/rate.
# TYPE b counter
b{env="test"} 1
`
	for _, tt := range tests {
		srv := httptest.NewServer(s)
		req, err := http.NewRequest(tt.method, srv.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		if tt.encoding != "" {
			req.Header.Set("Accept-Encoding", tt.encoding) // the transport then leaves the body as sent
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body := readBody(t, resp, tt.gzip)
		resp.Body.Close()
		srv.Close()
		if got := resp.Header.Get("Content-Encoding") == "gzip"; got != tt.gzip {
			t.Errorf("%s %q: gzipped %v, want %v", tt.method, tt.encoding, got, tt.gzip)
		}
		switch {
		case tt.body && body != want:
			t.Errorf("%s %q: body\n%s\nwant\n%s", tt.method, tt.encoding, body, want)
		case !tt.body && body != "":
			t.Errorf("%s: body %q, want none", tt.method, body)
		}
	}
}

func TestRegister(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := New(Config{MaxSeries: 1})
	if err := s.Register(reg); err != nil {
		t.Fatal(err)
	}
	observe(t, s, []string{"a:1|c"}, []string{"b:1|c", "c:-1|c", "a:1|g"})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			k := mf.GetName()
			for _, l := range m.GetLabel() {
				k += "/" + l.GetValue()
			}
			got[k] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	want := map[string]float64{
		"libratod_prometheus_series":                                1,
		"libratod_prometheus_series_dropped_total/max_series":       1,
		"libratod_prometheus_series_dropped_total/type_clash":       1,
		"libratod_prometheus_series_dropped_total/negative_counter": 1,
	}
	if !maps.Equal(got, want) {
		t.Errorf("self-metrics %v, want %v", got, want)
	}
	if err := s.Register(reg); err == nil {
		t.Error("registering twice succeeded")
	}
}

// TestConcurrentScrapes runs scrapes during periods, for the race detector.
func TestConcurrentScrapes(t *testing.T) {
	s := New(Config{Percentiles: []float64{50}, Expire: time.Hour})
	snaps := make([]*aggregator.Snapshot, 20)
	for i := range snaps {
		snaps[i] = snapshot(t, aggregator.Config{}, fmt.Sprintf("c%d:1|c", i%3), "t:1|ms", "g:1|g")
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i, snap := range snaps {
			s.ObservePeriod(t0.Add(time.Duration(i)*time.Second), snap)
		}
	}()
	for range 20 {
		scrape(t, s)
	}
	wg.Wait()
	got, _ := flatten(scrape(t, s))
	want := map[string]float64{"c0": 7, "c1": 7, "c2": 6, "g": 1, `t{quantile="0.5"}`: 1, "t_sum": 20, "t_count": 20}
	if !maps.Equal(got, want) {
		t.Errorf("samples %v, want %v", got, want)
	}
}

// TestObserveAllocs checks that a period of known series allocates nothing
// per series.
func TestObserveAllocs(t *testing.T) {
	for _, cfg := range []Config{
		{Percentiles: []float64{50, 99}, Labels: map[string]string{"env": "x"}},
		{Histogram: true, Prefix: "app"},
	} {
		s := New(cfg)
		var lines []string
		for i := range 200 {
			lines = append(lines, fmt.Sprintf("c.%d:1|c|#b.x:1,a:2", i), fmt.Sprintf("t%d:%d|ms|#z:1", i, i), fmt.Sprintf("g%d:1|g", i), fmt.Sprintf("s%d:m|s", i))
		}
		snap := snapshot(t, aggregator.Config{}, lines...)
		s.ObservePeriod(t0, snap)
		if allocs := testing.AllocsPerRun(10, func() { s.ObservePeriod(t0, snap) }); allocs > 2 {
			t.Errorf("histogram %v: ObservePeriod of 800 known series: %v allocations, want at most 2", cfg.Histogram, allocs)
		}
	}
}

// readBody reads a response body, gunzipping it if zipped.
func readBody(t *testing.T, resp *http.Response, zipped bool) string {
	t.Helper()
	var r io.Reader = resp.Body
	if zipped {
		gz, err := gzip.NewReader(resp.Body)
		if err != nil {
			t.Fatalf("not gzip: %v", err)
		}
		r = gz
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
