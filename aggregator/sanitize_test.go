package aggregator

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/libratod/libratod/parser"
)

// testSanitizer keeps [A-Za-z0-9._-] (names) or that and ' ' (tag values),
// replaces other bytes with '_', cuts at limit bytes, gives nothing when
// no letter or digit is left, makes a bare tag "yes" and keeps maxTags
// tags: the shape of Librato's rules, small enough to test the edges.
type testSanitizer struct {
	limit, maxTags int
}

func (s testSanitizer) clean(dst, b []byte, space bool) []byte {
	start := len(dst)
	alnum := false
	for _, c := range b {
		if len(dst)-start == s.limit {
			break
		}
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
			alnum = true
		case c == '.', c == '_', c == '-', c == ' ' && space:
		default:
			c = '_'
		}
		dst = append(dst, c)
	}
	if !alnum {
		return dst[:start]
	}
	return dst
}

func (s testSanitizer) AppendName(dst, b []byte) []byte    { return s.clean(dst, b, false) }
func (s testSanitizer) AppendTagName(dst, b []byte) []byte { return s.clean(dst, b, false) }
func (s testSanitizer) AppendTagValue(dst, _, b []byte) []byte {
	if len(b) == 0 {
		return append(dst, "yes"...)
	}
	return s.clean(dst, b, true)
}
func (s testSanitizer) MaxTags() int { return s.maxTags }

// TestSanitizedKeys checks that lines the backend would receive as one
// series (after sanitizing, cutting and the tag limit) are one series.
func TestSanitizedKeys(t *testing.T) {
	long := strings.Repeat("x", 20)
	tests := map[string]struct {
		keep    []string
		in      []parser.Metric
		want    map[string]float64
		dropped DroppedTags
	}{
		"names that clean alike": {
			in:   []parser.Metric{counter("a b", 1, 1), counter("a_b", 2, 1), counter("a\xc3\xa9", 4, 1)},
			want: map[string]float64{"counter a_b": 3, "counter a__": 4},
		},
		"tag values that clean alike": {
			in: []parser.Metric{
				tagged(counter("c", 1, 1), "", "env:prod!"),
				tagged(counter("c", 2, 1), "", "env:prod_"),
				tagged(counter("c", 4, 1), "env=prod?", ""),
			},
			want: map[string]float64{"counter c env=prod_": 7},
		},
		"tag names that clean alike": {
			in: []parser.Metric{
				tagged(counter("c", 1, 1), "", "e!nv:x"),
				tagged(counter("c", 2, 1), "", "e?nv:x"),
			},
			want: map[string]float64{"counter c e_nv=x": 3},
		},
		"tag names that clean alike: the last wins": {
			in:   []parser.Metric{tagged(counter("c", 1, 1), "", "k!:1,k?:2")},
			want: map[string]float64{"counter c k_=2": 1},
		},
		"names cut at the limit": {
			in:   []parser.Metric{counter(long+"a", 1, 1), counter(long+"b", 2, 1)},
			want: map[string]float64{"counter " + long[:16]: 3},
		},
		"tag values cut at the limit": {
			in: []parser.Metric{
				tagged(counter("c", 1, 1), "", "k:"+long+"a"),
				tagged(counter("c", 2, 1), "", "k:"+long+"b"),
			},
			want: map[string]float64{"counter c k=" + long[:16]: 3},
		},
		"tags past the limit": {
			in: []parser.Metric{
				tagged(counter("c", 1, 1), "", "a:1,b:2,c:3,d:4"),
				tagged(counter("c", 2, 1), "", "d:5,c:3,b:2,a:1"),
				tagged(counter("c", 4, 1), "", "c:3,a:1,b:2"),
			},
			want:    map[string]float64{"counter c a=1,b=2,c=3": 7},
			dropped: DroppedTags{TooMany: 2},
		},
		"invalid tags do not count against the limit": {
			in:      []parser.Metric{tagged(counter("c", 1, 1), "", "a:1,!!:x,b:!!,c:3,d:4")},
			want:    map[string]float64{"counter c a=1,c=3,d=4": 1},
			dropped: DroppedTags{Invalid: 2},
		},
		"bare tag as the sanitizer says": {
			in:   []parser.Metric{tagged(counter("c", 1, 1), "", "canary"), tagged(counter("c", 2, 1), "", "canary:yes")},
			want: map[string]float64{"counter c canary=yes": 3},
		},
		"kept tags by clean name": {
			keep: []string{"source"},
			in: []parser.Metric{
				tagged(counter("c", 1, 1), "", "source:db 1,env:prod"),
				tagged(counter("c", 2, 1), "", "source:db_1"),
			},
			want:    map[string]float64{"counter c source=db 1": 1, "counter c source=db_1": 2},
			dropped: DroppedTags{NotKept: 1},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			a := New(Config{Sanitizer: testSanitizer{limit: 16, maxTags: 3}, KeepTags: tc.keep})
			w := a.NewWriter()
			for round := range 2 { // built, then from the key cache
				for i := range tc.in {
					if err := w.Add(&tc.in[i]); err != nil {
						t.Fatalf("round %d: Add(%s): %v", round, tc.in[i].Name, err)
					}
				}
			}
			got := collect(t, a.Snapshot())
			if len(got) != len(tc.want) {
				t.Fatalf("series %v, want %d", keys(got), len(tc.want))
			}
			for id, v := range tc.want {
				if s := got[id]; s == nil || s.Value != 2*v {
					t.Errorf("series %q missing or wrong (want %v); have %v", id, 2*v, keys(got))
				}
			}
			want := DroppedTags{NotKept: 2 * tc.dropped.NotKept, Invalid: 2 * tc.dropped.Invalid, TooMany: 2 * tc.dropped.TooMany}
			if d := w.DroppedTags(); d != want {
				t.Errorf("DroppedTags = %+v, want %+v", d, want)
			}
		})
	}
}

func TestSanitizedBadName(t *testing.T) {
	a := New(Config{Sanitizer: testSanitizer{limit: 16}})
	w := a.NewWriter()
	for range 2 { // built, then from the key cache
		for _, m := range []parser.Metric{counter("...", 1, 1), tagged(timer("--", 1, 1), "", "k:v")} {
			if err := w.Add(&m); !errors.Is(err, ErrBadName) {
				t.Fatalf("Add(%s) = %v, want ErrBadName", m.Name, err)
			}
		}
	}
	if n := a.Snapshot().Len(); n != 0 {
		t.Errorf("%d series, want none", n)
	}
}

// TestSanitizedAddDoesNotAllocate checks that keys built with a Sanitizer,
// from names and tags that need cleaning, cost no allocation once the
// series exist, even when they miss the key cache.
func TestSanitizedAddDoesNotAllocate(t *testing.T) {
	a := New(Config{Sanitizer: testSanitizer{limit: 16, maxTags: 3}})
	w := a.NewWriter()
	ms := make([]parser.Metric, 2*keyCacheSize) // more lines than the cache holds
	for i := range ms {
		ms[i] = tagged(counter(fmt.Sprintf("app req%d", i%100), 1, 1), "a b=c d", fmt.Sprintf("env:prod!,e!:%d,x:1,y:2", i))
	}
	for i := range ms {
		if err := w.Add(&ms[i]); err != nil {
			t.Fatal(err)
		}
	}
	i := 0
	if n := testing.AllocsPerRun(len(ms), func() { _ = w.Add(&ms[i%len(ms)]); i++ }); n != 0 {
		t.Errorf("Add with sanitizing: %v allocs, want 0", n)
	}
}

// countingSanitizer is testSanitizer counting the names it cleans: one a
// key built, none for a line whose key comes from the Writer's key cache.
type countingSanitizer struct {
	testSanitizer
	names *int
}

func (s countingSanitizer) AppendName(dst, b []byte) []byte {
	*s.names++
	return s.testSanitizer.AppendName(dst, b)
}

// TestKeyCacheKeepsLoadNames adds the load tool's 1,000 counter names
// (issue 18's traffic, far fewer than the cache's keyCacheSize entries)
// again and again: once each has been seen, almost every line must take
// its key from the cache. A cache where each line has one place (the
// one its hash picks) rebuilds the key of about a fifth of them every
// time, those whose place another name of the 1,000 also takes.
func TestKeyCacheKeepsLoadNames(t *testing.T) {
	built := 0
	a := New(Config{Sanitizer: countingSanitizer{testSanitizer{limit: 255}, &built}})
	w := a.NewWriter()
	ms := loadCounters(1000)
	for i := range ms {
		if err := w.Add(&ms[i]); err != nil {
			t.Fatal(err)
		}
	}
	built = 0
	const rounds = 5
	for range rounds {
		for i := range ms {
			if err := w.Add(&ms[i]); err != nil {
				t.Fatal(err)
			}
		}
	}
	// An 8-way cache of 512 sets misses only where 9 or more of the names
	// share a set: about once in ten seeds, for a few names.
	if lines := rounds * len(ms); built > lines/100 {
		t.Errorf("%d of %d lines of names already seen built their key, want at most 1%%", built, lines)
	}
	var sum float64
	a.Snapshot().Each(func(s *Series) { sum += s.Value })
	if sum != (rounds+1)*float64(len(ms)) {
		t.Errorf("sum of the counters %v, want %d", sum, (rounds+1)*len(ms))
	}
}
