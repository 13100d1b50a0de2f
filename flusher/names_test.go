package flusher

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/libratod/libratod/aggregator"
	"github.com/libratod/libratod/librato"
	"github.com/libratod/libratod/parser"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// point names a measurement by what identifies it at Librato.
func point(m librato.Measurement) string {
	var tags []string
	for _, t := range m.Tags {
		tags = append(tags, t.Name+"="+t.Value)
	}
	sort.Strings(tags)
	return fmt.Sprintf("%s@%s%s", m.Name, m.Source, strings.Join(tags, ","))
}

// TestSanitizedSeriesMerge feeds lines that Librato would receive as one
// point through an aggregator given Names: they are one point, with the
// sum of their values.
func TestSanitizedSeriesMerge(t *testing.T) {
	tests := map[string]struct {
		api   librato.API
		lines []string
		want  map[string]float64
	}{
		"names": {
			api:   librato.Tagged,
			lines: []string{"a b:1|c", "a_b:2|c", "a\xc3\xa9b:4|c"},
			want:  map[string]float64{"a_b@": 7}, // é is one character: one _
		},
		"tag values": {
			api:   librato.Tagged,
			lines: []string{"x:1|c|#env:prod!", "x:2|c|#env:prod_", "x#env=prod*:4|c"},
			want:  map[string]float64{"x@env=prod_": 7},
		},
		"tag names": {
			api:   librato.Tagged,
			lines: []string{"x:1|c|#e!nv:a", "x:2|c|#e?nv:a"},
			want:  map[string]float64{"x@e_nv=a": 3},
		},
		"bare tag": {
			api:   librato.Tagged,
			lines: []string{"x:1|c|#canary", "x:2|c|#canary:true"},
			want:  map[string]float64{"x@canary=true": 3},
		},
		"past 50 tags": {
			api:   librato.Tagged,
			lines: []string{"x:1|c|#" + manyTags(50) + ",zz:1", "x:2|c|#" + manyTags(50) + ",zz:2"},
			want:  map[string]float64{"x@" + sortedTags(50): 3},
		},
		"legacy source": {
			api:   librato.Legacy,
			lines: []string{"x:1|c|#source:db 1", "x:2|c|#source:db_1", "x:4|c|#source:all", "x:8|c|#source:all_"},
			want:  map[string]float64{"x@db_1": 3, "x@all_": 12},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := aggregator.Config{Sanitizer: Names{API: tc.api}}
			if tc.api == librato.Legacy {
				cfg.KeepTags = []string{"source"}
			}
			a := aggregator.New(cfg)
			feed(t, a, tc.lines...)
			s := &fakeSender{}
			m, _ := NewMetrics(prometheus.NewRegistry())
			res := New(Config{API: tc.api, Metrics: m}, a, s).Flush(context.Background(), t0)
			got := map[string]float64{}
			for _, x := range s.all() {
				if _, dup := got[point(x)]; dup {
					t.Errorf("two points %s", point(x))
				}
				got[point(x)] = x.Value
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			if res.Dropped != 0 {
				t.Errorf("%d dropped, want none (merged in the aggregator)", res.Dropped)
			}
		})
	}
}

func manyTags(n int) string {
	var b []string
	for i := range n {
		b = append(b, fmt.Sprintf("t%02d:v", i))
	}
	return strings.Join(b, ",")
}

func sortedTags(n int) string {
	var b []string
	for i := range n {
		b = append(b, fmt.Sprintf("t%02d=v", i))
	}
	sort.Strings(b)
	return strings.Join(b, ",")
}

// TestNoDuplicatePoints covers the series that meet only at the flush:
// Librato must never get two points of one name and tags (or source) in a
// flush; the second is dropped and counted.
func TestNoDuplicatePoints(t *testing.T) {
	tests := map[string]struct {
		api   librato.API
		cfg   Config
		lines []string
		want  int // points sent
	}{
		"counter and gauge of one name": {
			api: librato.Tagged, lines: []string{"x:1|c", "x:2|g"}, want: 1,
		},
		"line tag equal to a global tag": {
			api: librato.Tagged, cfg: Config{Tags: []librato.Tag{{Name: "env", Value: "prod"}}},
			lines: []string{"x:1|c", "x:2|c|#env:prod"}, want: 1,
		},
		"names differing in case": {
			api: librato.Tagged, lines: []string{"A.b:1|c", "a.B:2|c"}, want: 1,
		},
		"tag values differing in case": {
			api: librato.Tagged, lines: []string{"x:1|c|#env:Prod", "x:2|c|#env:prod"}, want: 1,
		},
		"percentile name and timer name": {
			api: librato.Tagged, cfg: Config{Percentiles: []float64{90}},
			lines: []string{"t:1|ms", "t.90:2|ms"}, want: 3, // t, t.90, t.90.90
		},
		"source_regex meets a source tag (legacy)": {
			api: librato.Legacy, cfg: Config{SourceRegex: regexp.MustCompile(`^(web-\d+)\.`)},
			lines: []string{"web-1.hits:1|c", "hits:2|c|#source:web-1"}, want: 1,
		},
		"source_regex meets a source tag, tags in another order": {
			api: librato.Tagged, cfg: Config{SourceRegex: regexp.MustCompile(`^(web-\d+)\.`)},
			lines: []string{"web-1.hits:1|c|#zone:a", "hits:2|c|#source:web-1,zone:a"}, want: 1,
		},
		"explicit source equal to the global one (legacy)": {
			api: librato.Legacy, cfg: Config{Source: "h1"},
			lines: []string{"x:1|c", "x:2|c|#source:h1"}, want: 1,
		},
		"distinct points all sent": {
			api: librato.Tagged, cfg: Config{Tags: []librato.Tag{{Name: "env", Value: "prod"}}},
			lines: []string{"x:1|c", "x:2|c|#env:dev", "y:1|c", "x:1|c|#zone:a"}, want: 4,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := aggregator.Config{Sanitizer: Names{API: tc.api}}
			if tc.api == librato.Legacy {
				cfg.KeepTags = []string{"source"}
			}
			a := aggregator.New(cfg)
			feed(t, a, tc.lines...)
			s := &fakeSender{}
			m, _ := NewMetrics(prometheus.NewRegistry())
			fc := tc.cfg
			fc.API, fc.Metrics = tc.api, m
			res := New(fc, a, s).Flush(context.Background(), t0)
			sent := s.all()
			if len(sent) != tc.want {
				t.Errorf("%d points sent, want %d: %+v", len(sent), tc.want, sent)
			}
			total := 0
			for _, l := range tc.lines {
				total++
				if strings.Contains(l, "|ms") && len(fc.Percentiles) > 0 {
					total++
				}
			}
			dups := testutil.ToFloat64(m.forOutput("librato").dropped.WithLabelValues("duplicate"))
			if int(dups) != total-tc.want || res.Dropped != total-tc.want {
				t.Errorf("duplicates counted %v, result dropped %d; want %d", dups, res.Dropped, total-tc.want)
			}
		})
	}
}

// TestIdentitiesGrow checks the set of identities past the size it was
// made for (percentiles and extra measurements add points).
func TestIdentitiesGrow(t *testing.T) {
	ids := newIdentities(&settings{cfg: Config{API: librato.Tagged}}, 1)
	const n = 5000
	for round, want := range []bool{true, false} {
		for i := range n {
			m := librato.Measurement{Name: fmt.Sprint("m", i%100), Tags: []librato.Tag{{Name: "k", Value: fmt.Sprint(i / 100)}}}
			if got := ids.first(&m); got != want {
				t.Fatalf("round %d, point %d: first = %v, want %v", round, i, got, want)
			}
		}
	}
	if ids.n != n || 2*ids.n > len(ids.seen) {
		t.Errorf("%d identities in %d slots", ids.n, len(ids.seen))
	}
}

// BenchmarkNamesKeyMiss measures aggregator Adds that miss the Writer's
// key cache (more distinct lines than it holds, cycled), so each builds
// its key: without a Sanitizer, and with Names on clean and on dirty
// names and tags.
func BenchmarkNamesKeyMiss(b *testing.B) {
	for _, c := range []struct {
		name, format, tags string
		san                aggregator.Sanitizer
	}{
		{"none", "app.requests.%d", "env:prod,host:web-1", nil},
		{"names-clean", "app.requests.%d", "env:prod,host:web-1", Names{API: librato.Tagged}},
		{"names-dirty", "app requests!%d", "env:prod!,h st:web 1", Names{API: librato.Tagged}},
	} {
		b.Run(c.name, func(b *testing.B) {
			a := aggregator.New(aggregator.Config{Sanitizer: c.san})
			w := a.NewWriter()
			ms := make([]parser.Metric, 16384)
			for i := range ms {
				ms[i] = parser.Metric{Name: fmt.Appendf(nil, c.format, i), Tags: []byte(c.tags), Type: parser.Counter, Value: 1, Rate: 1}
				_ = w.Add(&ms[i])
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				_ = w.Add(&ms[i%len(ms)])
				i++
			}
		})
	}
}
