package aggregator

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"testing"

	"github.com/libratod/libratod/parser"
)

func counter(name string, v, rate float64) parser.Metric {
	return parser.Metric{Name: []byte(name), Type: parser.Counter, Value: v, Rate: rate}
}

func gauge(name string, v float64, delta bool) parser.Metric {
	return parser.Metric{Name: []byte(name), Type: parser.Gauge, Value: v, Delta: delta, Rate: 1}
}

func timer(name string, v, rate float64) parser.Metric {
	return parser.Metric{Name: []byte(name), Type: parser.Timer, Value: v, Rate: rate}
}

func set(name, member string) parser.Metric {
	return parser.Metric{Name: []byte(name), Type: parser.Set, Member: []byte(member), Rate: 1}
}

func tagged(m parser.Metric, nameTags, tags string) parser.Metric {
	if nameTags != "" {
		m.NameTags = []byte(nameTags)
	}
	if tags != "" {
		m.Tags = []byte(tags)
	}
	return m
}

// collect returns the snapshot's series keyed by "kind name k=v,k=v".
func collect(t *testing.T, snap *Snapshot) map[string]*Series {
	t.Helper()
	out := make(map[string]*Series)
	snap.Each(func(s *Series) {
		id := s.Kind.String() + " " + s.Name
		for i, tg := range s.Tags() {
			sep := ","
			if i == 0 {
				sep = " "
			}
			id += sep + tg.Name + "=" + tg.Value
		}
		if _, dup := out[id]; dup {
			t.Errorf("series %q appears twice", id)
		}
		c := *s // a counter's or gauge's Series is lent for the call
		out[id] = &c
	})
	return out
}

func addAll(t *testing.T, a *Aggregator, ms ...parser.Metric) {
	t.Helper()
	w := a.NewWriter()
	for i := range ms {
		if err := w.Add(&ms[i]); err != nil {
			t.Fatalf("Add(%s): %v", ms[i].Name, err)
		}
	}
}

func TestValues(t *testing.T) {
	type want struct {
		value, count, sum, variance, min, max, last float64
		card                                        int
	}
	tests := map[string]struct {
		deltas bool
		in     []parser.Metric
		want   map[string]want
	}{
		"counter sums": {
			in:   []parser.Metric{counter("a", 1, 1), counter("a", 2, 1), counter("a", -1, 1)},
			want: map[string]want{"counter a": {value: 2}},
		},
		"counter sample rate": {
			in:   []parser.Metric{counter("a", 1, 0.1), counter("a", 3, 0.5)},
			want: map[string]want{"counter a": {value: 16}},
		},
		"gauge last value": {
			in:   []parser.Metric{gauge("g", 3, false), gauge("g", 7, false)},
			want: map[string]want{"gauge g": {value: 7}},
		},
		"gauge deltas on": {
			deltas: true,
			in:     []parser.Metric{gauge("g", 10, false), gauge("g", 3, true), gauge("g", -5, true)},
			want:   map[string]want{"gauge g": {value: 8}},
		},
		"gauge deltas off": {
			in:   []parser.Metric{gauge("g", 10, false), gauge("g", 3, true), gauge("g", -5, true)},
			want: map[string]want{"gauge g": {value: -5}},
		},
		"gauge delta first": {
			deltas: true,
			in:     []parser.Metric{gauge("g", 4, true)},
			want:   map[string]want{"gauge g": {value: 4}},
		},
		"gauge absolute after delta": {
			deltas: true,
			in:     []parser.Metric{gauge("g", 4, true), gauge("g", 1, false)},
			want:   map[string]want{"gauge g": {value: 1}},
		},
		"timer": {
			in: []parser.Metric{timer("t", 3, 1), timer("t", 1, 1), timer("t", 2, 1)},
			want: map[string]want{"timer t": {
				count: 3, sum: 6, variance: 2.0 / 3, min: 1, max: 3, last: 2,
			}},
		},
		"timer sample rate": {
			in: []parser.Metric{timer("t", 10, 0.5), timer("t", 20, 0.25)},
			want: map[string]want{"timer t": {
				count: 6, sum: 10*2 + 20*4, variance: 200.0 / 9, min: 10, max: 20, last: 20,
			}},
		},
		"timer negative": {
			in: []parser.Metric{timer("t", -3, 1), timer("t", -1, 1)},
			want: map[string]want{"timer t": {
				count: 2, sum: -4, variance: 1, min: -3, max: -1, last: -1,
			}},
		},
		"set": {
			in:   []parser.Metric{set("s", "a"), set("s", "b"), set("s", "a"), set("s", "")},
			want: map[string]want{"set s": {card: 3}},
		},
		"kinds are separate series": {
			in: []parser.Metric{counter("x", 1, 1), gauge("x", 5, false)},
			want: map[string]want{
				"counter x": {value: 1},
				"gauge x":   {value: 5},
			},
		},
		"tag order does not matter": {
			in: []parser.Metric{
				tagged(counter("a", 1, 1), "", "b:2,a:1"),
				tagged(counter("a", 1, 1), "", "a:1,b:2"),
				tagged(counter("a", 1, 1), "a=1", "b:2"),
			},
			want: map[string]want{"counter a a=1,b=2": {value: 3}},
		},
		"different tags are different series": {
			in: []parser.Metric{
				tagged(counter("a", 1, 1), "", "env:prod"),
				tagged(counter("a", 2, 1), "", "env:dev"),
				counter("a", 4, 1),
			},
			want: map[string]want{
				"counter a env=prod": {value: 1},
				"counter a env=dev":  {value: 2},
				"counter a":          {value: 4},
			},
		},
		"repeated tag: last wins": {
			in:   []parser.Metric{tagged(counter("a", 1, 1), "env=x", "env:prod,env:test")},
			want: map[string]want{"counter a env=test": {value: 1}},
		},
		"bare tag and value with colon": {
			in:   []parser.Metric{tagged(counter("a", 1, 1), "", "canary,url:http://x,:empty,")},
			want: map[string]want{"counter a canary=,url=http://x": {value: 1}},
		},
		"separator bytes in tags": {
			in:   []parser.Metric{tagged(counter("a", 1, 1), "", "k\x00:v\x01")},
			want: map[string]want{"counter a k_=v_": {value: 1}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			a := New(Config{GaugeDeltas: tc.deltas, Shards: 4})
			addAll(t, a, tc.in...)
			got := collect(t, a.Snapshot())
			if len(got) != len(tc.want) {
				t.Fatalf("got %d series %v, want %d", len(got), keys(got), len(tc.want))
			}
			for id, w := range tc.want {
				s, ok := got[id]
				if !ok {
					t.Fatalf("series %q missing; have %v", id, keys(got))
				}
				g := want{value: s.Value, card: s.Cardinality()}
				if s.TimerStats != nil {
					g.count, g.sum, g.variance, g.min, g.max, g.last = s.Count, s.Sum, s.Variance(), s.Min, s.Max, s.Last
				} else if s.Kind == Timer {
					t.Fatalf("%s: a timer without TimerStats", id)
				}
				if math.Abs(g.variance-w.variance) <= 1e-12*w.variance {
					g.variance = w.variance
				}
				if g != w {
					t.Errorf("%s = %+v, want %+v", id, g, w)
				}
			}
		})
	}
}

func keys(m map[string]*Series) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func TestSnapshotStartsNewPeriod(t *testing.T) {
	a := New(Config{GaugeDeltas: true})
	addAll(t, a, counter("c", 5, 1), gauge("g", 10, false), counter("only-first", 1, 1))
	first := collect(t, a.Snapshot())
	if first["counter c"].Value != 5 || len(first) != 3 {
		t.Fatalf("first period: %v", keys(first))
	}
	if a.Live() != 0 {
		t.Errorf("Live after snapshot = %d, want 0", a.Live())
	}
	addAll(t, a, counter("c", 2, 1), gauge("g", -3, true))
	second := collect(t, a.Snapshot())
	if len(second) != 2 {
		t.Fatalf("second period has %v; only series with data belong in it", keys(second))
	}
	if v := second["counter c"].Value; v != 2 {
		t.Errorf("counter in second period = %v, want 2 (not carried over)", v)
	}
	if v := second["gauge g"].Value; v != 7 {
		t.Errorf("gauge delta across periods = %v, want 10-3 = 7", v)
	}
	// The first snapshot is untouched by later adds.
	if first["counter c"].Value != 5 {
		t.Errorf("first snapshot changed to %v", first["counter c"].Value)
	}
	// A delta two periods after the last value still starts from it.
	a.Snapshot()
	addAll(t, a, gauge("g", 1, true))
	if v := collect(t, a.Snapshot())["gauge g"].Value; v != 8 {
		t.Errorf("gauge delta after an idle period = %v, want 8", v)
	}
}

func TestMaxSeries(t *testing.T) {
	a := New(Config{MaxSeries: 2})
	w := a.NewWriter()
	for _, n := range []string{"a", "b"} {
		m := counter(n, 1, 1)
		if err := w.Add(&m); err != nil {
			t.Fatal(err)
		}
	}
	m := counter("c", 1, 1)
	if err := w.Add(&m); !errors.Is(err, ErrMaxSeries) {
		t.Fatalf("third series: err = %v, want ErrMaxSeries", err)
	}
	m = counter("a", 1, 1)
	if err := w.Add(&m); err != nil {
		t.Fatalf("existing series past the cap: %v", err)
	}
	if got := collect(t, a.Snapshot()); len(got) != 2 || got["counter a"].Value != 2 {
		t.Fatalf("got %v", keys(got))
	}
	if err := w.Add(&m); err != nil {
		t.Fatalf("after snapshot the cap is free again: %v", err)
	}
}

func TestBadType(t *testing.T) {
	a := New(Config{})
	m := parser.Metric{Name: []byte("x"), Rate: 1}
	if err := a.NewWriter().Add(&m); !errors.Is(err, ErrBadType) {
		t.Fatalf("err = %v, want ErrBadType", err)
	}
}

// refPercentile computes Etsy's threshold statistics by sorting a copy.
func refPercentile(vals []float64, p float64) (Percentile, bool) {
	s := slices.Clone(vals)
	sort.Float64s(s)
	k := int(math.Round(p / 100 * float64(len(s))))
	if k == 0 {
		return Percentile{}, false
	}
	var r Percentile
	r.Count, r.Min, r.Max = k, s[0], s[k-1]
	for _, v := range s[:k] {
		r.Sum += v
		r.SumSquares += v * v
	}
	r.Variance = variance(s[:k])
	return r, true
}

func TestPercentiles(t *testing.T) {
	ps := []float64{1, 50, 90, 95, 99, 99.5, 99.9}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 2, 3, 10, 99, 1000, 4097} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			a := New(Config{})
			var vals []float64
			var ms []parser.Metric
			for range n {
				v := math.Round(rng.NormFloat64()*1000) / 10
				vals = append(vals, v)
				ms = append(ms, timer("t", v, 1))
			}
			addAll(t, a, ms...)
			var s *Series
			a.Snapshot().Each(func(x *Series) { s = x })
			got, ok := s.Percentiles(ps, nil, nil)
			if len(got) != len(ps) || len(ok) != len(ps) {
				t.Fatalf("got %d results for %d percentiles", len(got), len(ps))
			}
			for i, p := range ps {
				want, wantOK := refPercentile(vals, p)
				if ok[i] != wantOK || got[i] != want {
					t.Errorf("p%v: got %+v (%v), want %+v (%v)", p, got[i], ok[i], want, wantOK)
				}
			}
		})
	}
}

func TestConcurrentAdds(t *testing.T) {
	const (
		goroutines = 8
		perG       = 5000
		names      = 50
	)
	a := New(Config{Shards: 8})
	var wg sync.WaitGroup
	var snaps []*Snapshot
	var snapMu sync.Mutex
	stop := make(chan struct{})
	// Snapshots race with the adds: nothing may be lost or doubled.
	var snapWG sync.WaitGroup
	snapWG.Add(1)
	go func() {
		defer snapWG.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			s := a.Snapshot()
			snapMu.Lock()
			snaps = append(snaps, s)
			snapMu.Unlock()
		}
	}()
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := a.NewWriter()
			for i := range perG {
				name := fmt.Sprintf("c%d", (g*perG+i)%names)
				m := tagged(counter(name, 1, 1), "", "g:x")
				if err := w.Add(&m); err != nil {
					t.Error(err)
					return
				}
				tm := timer("t", float64(i), 1)
				if err := w.Add(&tm); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	snapWG.Wait()
	snaps = append(snaps, a.Snapshot())
	var total, timerCount float64
	var timerValues int
	for _, s := range snaps {
		s.Each(func(x *Series) {
			switch x.Kind {
			case Counter:
				total += x.Value
			case Timer:
				timerCount += x.Count
				timerValues += x.samples()
			}
		})
	}
	if want := float64(goroutines * perG); total != want || timerCount != want || timerValues != goroutines*perG {
		t.Fatalf("counter total %v, timer count %v, timer values %d; want %v each", total, timerCount, timerValues, want)
	}
}

func TestAddDoesNotAllocate(t *testing.T) {
	a := New(Config{GaugeDeltas: true})
	w := a.NewWriter()
	ms := []parser.Metric{
		counter("hits", 1, 1),
		tagged(counter("hits", 1, 0.5), "region=eu", "env:prod,host:web-1"),
		gauge("temp", 3, true),
		set("users", "alice"),
	}
	for i := range ms {
		if err := w.Add(&ms[i]); err != nil {
			t.Fatal(err)
		}
	}
	for i := range ms {
		m := &ms[i]
		if n := testing.AllocsPerRun(200, func() { _ = w.Add(m) }); n != 0 {
			t.Errorf("Add(%s %v) on an existing series: %v allocs, want 0", m.Name, m.Type, n)
		}
	}
	// A timer's value slice grows by doubling: amortised to zero.
	tm := timer("latency", 12.5, 1)
	if n := testing.AllocsPerRun(1000, func() { _ = w.Add(&tm) }); n != 0 {
		t.Errorf("timer Add: %v allocs per value, want 0 amortised", n)
	}
}

// TestAddDoesNotAllocateEstimating covers the bounded modes: a timer in
// sketch mode and a set in HyperLogLog mode, after warm-up.
func TestAddDoesNotAllocateEstimating(t *testing.T) {
	a := New(Config{MaxTimerSamples: 10, MaxSetMembers: 10})
	w := a.NewWriter()
	rng := rand.New(rand.NewPCG(1, 2))
	ms := make([]parser.Metric, 1000)
	for i := range ms {
		ms[i] = timer("latency", math.Exp(rng.NormFloat64()*2+3), 1)
		if i%2 == 1 {
			ms[i] = set("users", fmt.Sprint("user-", i))
		}
	}
	for i := range ms {
		if err := w.Add(&ms[i]); err != nil {
			t.Fatal(err)
		}
	}
	i := 0
	if n := testing.AllocsPerRun(len(ms), func() { _ = w.Add(&ms[i%len(ms)]); i++ }); n != 0 {
		t.Errorf("Add to an estimating timer or set: %v allocs, want 0", n)
	}
	a.Snapshot().Each(func(s *Series) {
		if s.PercentilesExact() && s.CardinalityExact() {
			t.Errorf("%s %s is exact; the test wants estimates", s.Kind, s.Name)
		}
	})
}

// TestMaxSeriesConcurrent creates distinct series from many goroutines
// while snapshots are taken: no snapshot may hold more than MaxSeries
// series, every Add either succeeds or returns ErrMaxSeries, and every
// series accepted is in exactly one snapshot.
func TestMaxSeriesConcurrent(t *testing.T) {
	const (
		maxSeries  = 50
		goroutines = 8
		perG       = 3000
	)
	a := New(Config{MaxSeries: maxSeries, Shards: 16})
	var (
		wg                 sync.WaitGroup
		accepted, refused  [goroutines]int
		stop               = make(chan struct{})
		snapWG             sync.WaitGroup
		sizes              []int
		inSnapshots        int
		snapshotsOverBound int
	)
	take := func() {
		n := 0
		a.Snapshot().Each(func(*Series) { n++ })
		sizes = append(sizes, n)
		inSnapshots += n
		if n > maxSeries {
			snapshotsOverBound++
		}
	}
	snapWG.Add(1)
	go func() {
		defer snapWG.Done()
		for {
			select {
			case <-stop:
				return
			default:
				take()
			}
		}
	}()
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := a.NewWriter()
			for i := range perG {
				m := tagged(counter(fmt.Sprintf("c%d.%d", g, i), 1, 1), "", "k:v")
				switch err := w.Add(&m); {
				case err == nil:
					accepted[g]++
				case errors.Is(err, ErrMaxSeries):
					refused[g]++
				default:
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	snapWG.Wait()
	take()
	var acc, ref int
	for g := range goroutines {
		acc += accepted[g]
		ref += refused[g]
	}
	if snapshotsOverBound > 0 {
		t.Errorf("%d of %d snapshots hold more than %d series (largest %d)", snapshotsOverBound, len(sizes), maxSeries, slices.Max(sizes))
	}
	if acc+ref != goroutines*perG {
		t.Errorf("accepted %d + refused %d != %d adds", acc, ref, goroutines*perG)
	}
	if inSnapshots != acc {
		t.Errorf("snapshots hold %d series, %d were accepted", inSnapshots, acc)
	}
	if ref == 0 {
		t.Errorf("no Add was refused in %d snapshots: the bound was not exercised", len(sizes))
	}
	if a.Live() != 0 {
		t.Errorf("Live = %d after the last snapshot", a.Live())
	}
}

// bases returns the number of gauge bases kept.
func bases(a *Aggregator) int {
	n := 0
	for i := range a.shards {
		a.shards[i].baseMu.Lock()
		n += len(a.shards[i].base)
		a.shards[i].baseMu.Unlock()
	}
	return n
}

func TestGaugeBaseTTL(t *testing.T) {
	tests := []struct {
		idle int     // periods without the gauge before the delta
		want float64 // the gauge after "+1"
	}{
		{idle: 0, want: 11},
		{idle: 1, want: 11},
		{idle: 2, want: 1}, // not refreshed for GaugeBaseTTL periods: dropped
		{idle: 5, want: 1},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.idle), func(t *testing.T) {
			a := New(Config{GaugeDeltas: true, GaugeBaseTTL: 2})
			addAll(t, a, gauge("g", 10, false), gauge("other", 1, false))
			a.Snapshot()
			for range tc.idle {
				addAll(t, a, gauge("other", 1, false))
				a.Snapshot()
			}
			if wantBases := 1 + btoi(tc.idle < 2); bases(a) != wantBases {
				t.Errorf("%d gauge bases kept, want %d", bases(a), wantBases)
			}
			addAll(t, a, gauge("g", 1, true))
			if got := collect(t, a.Snapshot())["gauge g"].Value; got != tc.want {
				t.Errorf("g after +1 = %v, want %v", got, tc.want)
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestGaugeBaseMaxSeries checks that MaxSeries bounds the gauge bases,
// dropping those of the gauges absent the longest first.
func TestGaugeBaseMaxSeries(t *testing.T) {
	a := New(Config{GaugeDeltas: true, MaxSeries: 10})
	periods := [][]string{
		{"a0", "a1", "a2", "a3", "a4"},
		{"b0", "b1", "b2", "b3", "b4"}, // 10 bases: all fit
		{"c0", "c1", "c2", "c3"},       // 14: the a's, the oldest, go
	}
	wantBases := []int{5, 10, 9}
	for i, names := range periods {
		for _, n := range names {
			addAll(t, a, gauge(n, 100, false))
		}
		a.Snapshot()
		if got := bases(a); got != wantBases[i] {
			t.Fatalf("period %d: %d bases, want %d", i, got, wantBases[i])
		}
	}
	addAll(t, a, gauge("a0", 1, true), gauge("b0", 1, true), gauge("c0", 1, true))
	got := collect(t, a.Snapshot())
	for name, want := range map[string]float64{"a0": 1, "b0": 101, "c0": 101} {
		if v := got["gauge "+name].Value; v != want {
			t.Errorf("%s after +1 = %v, want %v", name, v, want)
		}
	}
	// Many distinct gauges a period, for many periods: never more than
	// MaxSeries bases.
	for p := range 50 {
		for i := range 10 {
			m := gauge(fmt.Sprintf("g%d.%d", p, i), 1, false)
			_ = a.NewWriter().Add(&m)
		}
		a.Snapshot()
		if n := bases(a); n > 10 {
			t.Fatalf("period %d: %d bases, MaxSeries is 10", p, n)
		}
	}
}

func TestKeepTags(t *testing.T) {
	a := New(Config{KeepTags: []string{"source"}})
	w := a.NewWriter()
	for _, m := range []parser.Metric{
		counter("hits", 1, 1),
		tagged(counter("hits", 2, 1), "", "level:error,env:prod"),
		tagged(counter("hits", 4, 1), "", "source:db-1,env:prod"),
	} {
		if err := w.Add(&m); err != nil {
			t.Fatal(err)
		}
	}
	got := collect(t, a.Snapshot())
	if len(got) != 2 || got["counter hits"].Value != 3 || got["counter hits source=db-1"].Value != 4 {
		t.Errorf("series %v: tags other than source must merge into one series", keys(got))
	}
	if n := w.DroppedTags(); n != (DroppedTags{NotKept: 3}) {
		t.Errorf("DroppedTags = %+v, want 3 not kept", n)
	}
	if n := w.DroppedTags(); n != (DroppedTags{}) {
		t.Errorf("DroppedTags after reading = %+v, want none", n)
	}
}

// TestKeyCache adds more distinct lines than the Writer's key cache holds,
// several times over and in two tag orders: every series must come out
// exact, whether its key came from the cache or was built again.
func TestKeyCache(t *testing.T) {
	a := New(Config{KeepTags: []string{"env", "k"}})
	w := a.NewWriter()
	const n = 3 * keyCacheSize
	for round := range 3 {
		for i := range n {
			tags := "env:prod,k:" + fmt.Sprint(i%7) + ",drop:x"
			if round == 1 {
				tags = "drop:x,k:" + fmt.Sprint(i%7) + ",env:prod"
			}
			m := tagged(counter(fmt.Sprintf("c%d", i), 1, 1), "", tags)
			if err := w.Add(&m); err != nil {
				t.Fatal(err)
			}
		}
	}
	got := collect(t, a.Snapshot())
	if len(got) != n {
		t.Fatalf("%d series, want %d", len(got), n)
	}
	for id, s := range got {
		if s.Value != 3 {
			t.Errorf("%s = %v, want 3", id, s.Value)
		}
	}
	if d := w.DroppedTags(); d != (DroppedTags{NotKept: 3 * n}) {
		t.Errorf("DroppedTags = %+v, want %d not kept (one a line, cached or not)", d, 3*n)
	}
}

// TestTimerVariance checks the weighted population variance where a sum of
// squares loses it: values far from zero, and sampled values.
func TestTimerVariance(t *testing.T) {
	tests := map[string]struct {
		in           []parser.Metric
		mean, varnce float64
	}{
		"large values":         {in: []parser.Metric{timer("t", 1e9, 1), timer("t", 1e9+1, 1)}, mean: 1e9 + 0.5, varnce: 0.25},
		"large values sampled": {in: []parser.Metric{timer("t", 1e9, 0.1), timer("t", 1e9+1, 0.1)}, mean: 1e9 + 0.5, varnce: 0.25},
		"same rate":            {in: []parser.Metric{timer("t", 1, 0.3), timer("t", 2, 0.3)}, mean: 1.5, varnce: 0.25},
		// 1 weighs 1, 3 weighs 3: mean 2.5, variance (1*2.25+3*0.25)/4.
		"mixed rates":        {in: []parser.Metric{timer("t", 1, 1), timer("t", 3, 1.0/3)}, mean: 2.5, varnce: 0.75},
		"mixed rates, large": {in: []parser.Metric{timer("t", 1e9+1, 1), timer("t", 1e9+3, 1.0/3)}, mean: 1e9 + 2.5, varnce: 0.75},
		// Two values of weight 1, then one of weight 2: the running form
		// starts from the first two.
		"rate changes": {in: []parser.Metric{timer("t", 1e9+1, 1), timer("t", 1e9+2, 1), timer("t", 1e9+3, 0.5)}, mean: 1e9 + 2.25, varnce: 0.6875},
		"one value":    {in: []parser.Metric{timer("t", 100, 0.3)}, mean: 100, varnce: 0},
	}
	for name, tc := range tests {
		for _, bound := range []int{1 << 20, 1} { // exact values, then the running form
			t.Run(fmt.Sprintf("%s/bound=%d", name, bound), func(t *testing.T) {
				a := New(Config{MaxTimerSamples: bound})
				addAll(t, a, tc.in...)
				var s *Series
				a.Snapshot().Each(func(x *Series) { s = x })
				if got := s.Mean(); math.Abs(got-tc.mean) > 1e-9*math.Abs(tc.mean) {
					t.Errorf("Mean = %v, want %v", got, tc.mean)
				}
				if got := s.Variance(); math.Abs(got-tc.varnce) > 1e-9 {
					t.Errorf("Variance = %v, want %v", got, tc.varnce)
				}
			})
		}
	}
}

// TestPercentileVariance checks each percentile's variance where a sum of
// squares loses it.
func TestPercentileVariance(t *testing.T) {
	a := New(Config{})
	addAll(t, a, timer("t", 1e9, 1), timer("t", 1e9+1, 1), timer("t", 1e9+2, 1), timer("t", 1e9+3, 1))
	var s *Series
	a.Snapshot().Each(func(x *Series) { s = x })
	got, _ := s.Percentiles([]float64{50, 100}, nil, nil)
	if got[0].Variance != 0.25 || got[1].Variance != 1.25 {
		t.Errorf("variances of p50, p100 = %v, %v; want 0.25, 1.25", got[0].Variance, got[1].Variance)
	}
}

// TestOverflow checks that a metric that would make a sum infinite is
// refused with ErrOverflow and leaves its series as it was.
func TestOverflow(t *testing.T) {
	tests := map[string]struct {
		first, over parser.Metric
	}{
		"counter weight":     {first: counter("c", 1, 1), over: counter("c", 1e126, 1e-300)},
		"counter sum":        {first: counter("c", 1e308, 1), over: counter("c", 1e308, 1)},
		"counter zero rate":  {first: counter("c", 1, 1), over: counter("c", 1, 0)},
		"timer weight":       {first: timer("t", 1, 1), over: timer("t", 1e126, 1e-300)},
		"timer sum":          {first: timer("t", 1, 1e-308), over: timer("t", 1, 1e-308)},
		"timer square":       {first: timer("t", 1, 1), over: timer("t", 1e155, 1)},
		"timer deviations":   {first: timer("t", -9e153, 1), over: timer("t", 9e153, 0.5)},
		"gauge delta":        {first: gauge("g", 1e308, false), over: gauge("g", 1e308, true)},
		"new series refused": {first: counter("other", 1, 1), over: counter("c", 1e126, 1e-300)},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			a := New(Config{GaugeDeltas: true})
			addAll(t, a, tc.first)
			w := a.NewWriter()
			if err := w.Add(&tc.over); !errors.Is(err, ErrOverflow) {
				t.Fatalf("Add = %v, want ErrOverflow", err)
			}
			ref := New(Config{GaugeDeltas: true})
			addAll(t, ref, tc.first)
			got, want := collect(t, a.Snapshot()), collect(t, ref.Snapshot())
			if len(got) != 1 {
				t.Fatalf("series %v, want only the first", keys(got))
			}
			for id, s := range got {
				r := want[id]
				if r == nil {
					t.Fatalf("series %s, want %v", id, keys(want))
				}
				g := [...]float64{s.Value, s.Mean(), s.Variance()}
				w := [...]float64{r.Value, r.Mean(), r.Variance()}
				if s.TimerStats != nil && (s.Count != r.Count || s.Sum != r.Sum || s.Min != r.Min || s.Max != r.Max) || g != w {
					t.Errorf("series %s changed: value, mean, variance %v, want %v", id, g, w)
				}
			}
		})
	}
}

// TestTagSyntaxes checks that a line's tags make the same series whatever
// syntax, order or mix of syntaxes they are written in.
func TestTagSyntaxes(t *testing.T) {
	lines := []string{
		"a,env=prod,code=200:1|c",              // InfluxDB / Telegraf
		"a;code=200;env=prod:1|c",              // Graphite 1.1
		"a#env=prod,code=200:1|c",              // Librato
		"a:1|c|#code:200,env:prod",             // DogStatsD
		"a:1|c|#code:200,#env:prod",            // DogStatsD, '#' before each tag
		"a,code=200:1|c|#env:prod",             // InfluxDB and DogStatsD
		"a;env=staging;code=200:1|c|#env:prod", // the DogStatsD tag wins
	}
	a := New(Config{})
	w := a.NewWriter()
	var ms []parser.Metric
	for _, line := range lines {
		var err error
		if ms, err = parser.Parse([]byte(line), ms[:0]); err != nil {
			t.Fatalf("Parse(%q): %v", line, err)
		}
		if err := w.Add(&ms[0]); err != nil {
			t.Fatal(err)
		}
	}
	got := collect(t, a.Snapshot())
	if s := got["counter a code=200,env=prod"]; len(got) != 1 || s == nil || s.Value != float64(len(lines)) {
		t.Errorf("series %v, want one, counter a code=200,env=prod = %d", keys(got), len(lines))
	}
}

// TestKeyCacheNameTagSep checks that the key cache tells apart name tags
// that differ only in their separator: "a#k=v;x=y" (tag k "v;x=y") and
// "a;k=v;x=y" (tags k and x).
func TestKeyCacheNameTagSep(t *testing.T) {
	a := New(Config{})
	w := a.NewWriter()
	for range 2 {
		for _, sep := range []byte{',', ';', 0} {
			m := tagged(counter("a", 1, 1), "k=v;x=y", "")
			m.NameTagSep = sep
			if err := w.Add(&m); err != nil {
				t.Fatal(err)
			}
		}
	}
	got := collect(t, a.Snapshot())
	value := func(id string) float64 {
		if s := got[id]; s != nil {
			return s.Value
		}
		return 0
	}
	if len(got) != 2 || value("counter a k=v;x=y") != 4 || value("counter a k=v,x=y") != 2 {
		t.Errorf("series %v, want a k=v;x=y = 4 (',' and 0) and a k=v,x=y = 2 (';')", keys(got))
	}
}

// TestAddAll checks that AddAll adds what Add adds, in order (a gauge's
// last value wins), and reports the index of every metric Add refuses.
func TestAddAll(t *testing.T) {
	ms := []parser.Metric{
		counter("a", 1, 1), gauge("g", 5, false), counter("a", 2, 0.5),
		{Name: []byte("bad"), Type: 0, Rate: 1}, // no type
		counter("!!!", 1, 1),                    // no letter or digit: ErrBadName
		gauge("g", 7, false), timer("t", 3, 1), set("s", "x"), counter("b", 1, 1),
	}
	each := New(Config{MaxSeries: 4, Sanitizer: testSanitizer{limit: 50}})
	w := each.NewWriter()
	var wantErrs []string
	for i := range ms {
		if err := w.Add(&ms[i]); err != nil {
			wantErrs = append(wantErrs, fmt.Sprint(i, err))
		}
	}
	all := New(Config{MaxSeries: 4, Sanitizer: testSanitizer{limit: 50}})
	var gotErrs []string
	all.NewWriter().AddAll(ms, func(i int, err error) { gotErrs = append(gotErrs, fmt.Sprint(i, err)) })
	if !slices.Equal(gotErrs, wantErrs) || len(wantErrs) != 3 {
		t.Errorf("AddAll refused %q, want %q (3: no type, bad name, past MaxSeries)", gotErrs, wantErrs)
	}
	want, got := collect(t, each.Snapshot()), collect(t, all.Snapshot())
	if len(got) != len(want) || len(got) != 4 {
		t.Fatalf("AddAll made %d series, Add %d; want 4", len(got), len(want))
	}
	for id, s := range want {
		g := got[id]
		var same bool
		switch {
		case g == nil:
		case s.Kind == Timer:
			same = g.Count == s.Count && g.Sum == s.Sum
		case s.Kind == Set:
			same = g.Cardinality() == s.Cardinality()
		default:
			same = g.Value == s.Value
		}
		if !same {
			t.Errorf("%s: AddAll gives %+v, Add %+v", id, g, s)
		}
	}
}
