package flusher

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"os/exec"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/libratod/libratod/aggregator"
	"github.com/libratod/libratod/internal/eventually"
	"github.com/libratod/libratod/internal/fixture"
	"github.com/libratod/libratod/librato"
)

// fakeSender records batches and answers with the errors it is given, in
// order, then with success.
type fakeSender struct {
	mu      sync.Mutex
	batches []librato.Batch
	errs    []error
	calls   int
	got     chan struct{}
}

func (s *fakeSender) Send(_ context.Context, b *librato.Batch) (librato.Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if len(s.errs) > 0 {
		err := s.errs[0]
		s.errs = s.errs[1:]
		return librato.Result{}, err
	}
	cp := *b
	cp.Measurements = slices.Clone(b.Measurements)
	s.batches = append(s.batches, cp)
	if s.got != nil {
		select {
		case s.got <- struct{}{}:
		default:
		}
	}
	return librato.Result{StatusCode: 200, Sent: len(b.Measurements)}, nil
}

func (s *fakeSender) all() []librato.Measurement {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []librato.Measurement
	for _, b := range s.batches {
		out = append(out, b.Measurements...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// feed adds StatsD lines to a (see fixture.Feed).
func feed(t *testing.T, a *aggregator.Aggregator, lines ...string) {
	t.Helper()
	fixture.Feed(t, a, lines...)
}

// t0 is the period time the tests flush at, and where their clock
// (testClock) starts: 1_800_000_000 (2027-01-15 08:00 UTC), or the unix
// seconds in LIBRATOD_TEST_T0, so that the suite can be run at any date
// (TestAtOtherTimes runs it so). Nothing in the tests may depend on
// where it falls against the real clock.
var t0 = testT0()

// t0Env names the variable that moves t0.
const t0Env = "LIBRATOD_TEST_T0"

func testT0() time.Time {
	if v := os.Getenv(t0Env); v != "" {
		if sec, err := strconv.ParseInt(v, 10, 64); err == nil {
			return time.Unix(sec, 0)
		}
		panic(t0Env + " is not unix seconds: " + v)
	}
	return time.Unix(1_800_000_000, 0)
}

// testClock returns a clock that reads t0 when it is made and runs on
// with the real time from there.
func testClock() func() time.Time {
	began := time.Now()
	return func() time.Time { return t0.Add(time.Since(began)) }
}

func TestMeasurements(t *testing.T) {
	lines := []string{
		"hits:1|c", "hits:2|c|@0.5",
		"temp:21.5|g",
		"users:alice|s", "users:bob|s", "users:alice|s",
		"lat:10|ms", "lat:20|ms", "lat:30|ms", "lat:40|ms",
		"req:1|c|#env:prod,region:eu",
		"req:1|c|#host:override",
		"flag:1|c|#canary",
	}
	tests := map[string]struct {
		agg  aggregator.Config
		cfg  Config
		want []librato.Measurement
	}{
		"tagged": {
			agg: aggregator.Config{Sanitizer: Names{API: librato.Tagged}},
			cfg: Config{API: librato.Tagged, Percentiles: []float64{50, 90}, Tags: []librato.Tag{{Name: "host", Value: "web-1"}, {Name: "env", Value: "dev"}}},
			want: []librato.Measurement{
				{Name: "flag", Value: 1, Tags: []librato.Tag{{Name: "host", Value: "web-1"}, {Name: "env", Value: "dev"}, {Name: "canary", Value: "true"}}},
				{Name: "hits", Value: 5},
				{Name: "lat", Count: 4, Sum: 100, SumSquares: 3000, StdDev: math.Sqrt(125), HasStdDev: true, Min: 10, Max: 40, Last: 40, HasLast: true},
				{Name: "lat.50", Count: 2, Sum: 30, SumSquares: 500, StdDev: 5, HasStdDev: true, Min: 10, Max: 20},
				{Name: "lat.90", Count: 4, Sum: 100, SumSquares: 3000, StdDev: math.Sqrt(125), HasStdDev: true, Min: 10, Max: 40},
				{Name: "req", Value: 1, Tags: []librato.Tag{{Name: "host", Value: "web-1"}, {Name: "env", Value: "prod"}, {Name: "region", Value: "eu"}}},
				{Name: "req", Value: 1, Tags: []librato.Tag{{Name: "host", Value: "override"}, {Name: "env", Value: "dev"}}},
				{Name: "temp", Value: 21.5},
				{Name: "users", Value: 2},
			},
		},
		"legacy with prefix": {
			agg: aggregator.Config{Sanitizer: Names{API: librato.Legacy}, KeepTags: []string{"source"}},
			cfg: Config{API: librato.Legacy, Prefix: "app", Source: "web-1"},
			want: []librato.Measurement{
				{Name: "app.flag", Value: 1},
				{Name: "app.hits", Value: 5},
				{Name: "app.lat", Count: 4, Sum: 100, SumSquares: 3000, StdDev: math.Sqrt(125), HasStdDev: true, Min: 10, Max: 40, Last: 40, HasLast: true},
				{Name: "app.req", Value: 2},
				{Name: "app.temp", Value: 21.5},
				{Name: "app.users", Value: 2},
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			a := aggregator.New(tc.agg)
			feed(t, a, lines...)
			s := &fakeSender{}
			f := New(tc.cfg, a, s)
			res := f.Flush(context.Background(), t0)
			got := s.all()
			// The two "req" series sort by their tags' order of arrival
			// otherwise.
			sort.SliceStable(got, func(i, j int) bool {
				return got[i].Name < got[j].Name || got[i].Name == got[j].Name && fmt.Sprint(got[i].Tags) > fmt.Sprint(got[j].Tags)
			})
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("measurements:\n got %+v\nwant %+v", got, tc.want)
			}
			if res.Measurements != len(tc.want) || res.Sent != len(tc.want) || res.Dropped != 0 {
				t.Errorf("result %+v, want %d measurements all sent", res, len(tc.want))
			}
			for _, b := range s.batches {
				if b.Time != t0.Unix() {
					t.Errorf("batch time %d, want %d", b.Time, t0.Unix())
				}
				if tc.cfg.API == librato.Tagged && (b.Period != 10 || !reflect.DeepEqual(b.Tags, tc.cfg.Tags)) {
					t.Errorf("tagged batch period %d tags %v", b.Period, b.Tags)
				}
				if tc.cfg.API == librato.Legacy && b.Source != "web-1" {
					t.Errorf("legacy batch source %q", b.Source)
				}
			}
		})
	}
}

func TestLegacySourceTag(t *testing.T) {
	a := aggregator.New(aggregator.Config{})
	feed(t, a, "x:1|c|#source:db-2,env:prod")
	s := &fakeSender{}
	m, _ := NewMetrics(prometheus.NewRegistry())
	New(Config{API: librato.Legacy, Metrics: m}, a, s).Flush(context.Background(), t0)
	got := s.all()
	if len(got) != 1 || got[0].Source != "db-2" || got[0].Tags != nil {
		t.Fatalf("got %+v, want source db-2 and no tags", got)
	}
	if n := testutil.ToFloat64(m.tagsDropped.WithLabelValues("legacy_api")); n != 1 {
		t.Errorf("tags dropped = %v, want 1 (env)", n)
	}
}

func TestTooManyTags(t *testing.T) {
	a := aggregator.New(aggregator.Config{})
	var tags []string
	for i := range 60 {
		tags = append(tags, fmt.Sprintf("k%02d:v", i))
	}
	feed(t, a, "x:1|c|#"+strings.Join(tags, ","))
	s := &fakeSender{}
	New(Config{API: librato.Tagged, Tags: []librato.Tag{{Name: "host", Value: "h"}}}, a, s).Flush(context.Background(), t0)
	got := s.all()
	if len(got) != 1 || len(got[0].Tags) != librato.MaxTags || got[0].Tags[0].Name != "host" {
		t.Fatalf("got %d tags (first %v), want %d with the global tag kept", len(got[0].Tags), got[0].Tags[0], librato.MaxTags)
	}
}

func TestBatches(t *testing.T) {
	a := aggregator.New(aggregator.Config{})
	for i := range 7 {
		feed(t, a, fmt.Sprintf("c%d:1|c", i))
	}
	s := &fakeSender{}
	res := New(Config{API: librato.Tagged, BatchSize: 3, Concurrency: 2}, a, s).Flush(context.Background(), t0)
	var sizes []int
	for _, b := range s.batches {
		sizes = append(sizes, len(b.Measurements))
	}
	sort.Ints(sizes)
	if !reflect.DeepEqual(sizes, []int{1, 3, 3}) || res.Sent != 7 {
		t.Fatalf("batch sizes %v, sent %d; want [1 3 3], 7", sizes, res.Sent)
	}
	if len(s.all()) != 7 {
		t.Fatalf("delivered %d measurements, want 7", len(s.all()))
	}
}

func TestRetries(t *testing.T) {
	retryable := &librato.Error{StatusCode: 503, Retryable: true, Message: "maintenance"}
	tests := map[string]struct {
		errs                        []error
		maxAttempts                 int
		wantSent, wantCalls, wantRt int
		wantDropped                 string
	}{
		"success": {wantSent: 1, wantCalls: 1},
		"5xx then success": {
			errs: []error{retryable, retryable}, maxAttempts: 5, wantSent: 1, wantCalls: 3, wantRt: 2,
		},
		"plain transport error is retried": {
			errs: []error{errors.New("connection reset")}, maxAttempts: 5, wantSent: 1, wantCalls: 2, wantRt: 1,
		},
		"attempts exhausted": {
			errs: []error{retryable, retryable, retryable}, maxAttempts: 3, wantCalls: 3, wantRt: 2, wantDropped: "retries_exhausted",
		},
		"400 not retried": {
			errs: []error{&librato.Error{StatusCode: 400, Message: "bad"}, retryable}, maxAttempts: 5, wantCalls: 1, wantDropped: "rejected",
		},
		// A rate limit is not retried in place but kept for later: with
		// no backlog, that is a drop.
		"rate limit waits for later": {
			errs: []error{&librato.Error{StatusCode: 429, Retryable: true, RateLimited: true}}, maxAttempts: 5, wantCalls: 1, wantDropped: "retries_exhausted",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			a := aggregator.New(aggregator.Config{})
			feed(t, a, "x:1|c")
			s := &fakeSender{errs: tc.errs}
			m, _ := NewMetrics(prometheus.NewRegistry())
			f := New(Config{API: librato.Tagged, MaxAttempts: tc.maxAttempts, MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond, Metrics: m}, a, s)
			res := f.Flush(context.Background(), t0)
			if res.Sent != tc.wantSent || s.calls != tc.wantCalls {
				t.Errorf("sent %d in %d calls, want %d in %d", res.Sent, s.calls, tc.wantSent, tc.wantCalls)
			}
			if n := int(testutil.ToFloat64(m.forOutput("librato").retries)); n != tc.wantRt {
				t.Errorf("retries = %d, want %d", n, tc.wantRt)
			}
			if tc.wantDropped != "" {
				if n := testutil.ToFloat64(m.forOutput("librato").dropped.WithLabelValues(tc.wantDropped)); n != 1 || res.Dropped != 1 {
					t.Errorf("dropped{%s} = %v, result dropped %d; want 1", tc.wantDropped, n, res.Dropped)
				}
			}
		})
	}
}

func TestRetryStopsAtDeadline(t *testing.T) {
	a := aggregator.New(aggregator.Config{})
	feed(t, a, "x:1|c")
	errs := make([]error, 100)
	for i := range errs {
		errs[i] = &librato.Error{StatusCode: 500, Retryable: true}
	}
	s := &fakeSender{errs: errs}
	f := New(Config{API: librato.Tagged, MaxAttempts: 100, MinBackoff: 20 * time.Millisecond, MaxBackoff: 40 * time.Millisecond}, a, s)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	res := f.Flush(ctx, t0)
	if res.Dropped != 1 || s.calls >= 100 {
		t.Fatalf("dropped %d after %d calls; want the deadline to stop the retries", res.Dropped, s.calls)
	}
}

func TestBackoff(t *testing.T) {
	f := New(Config{MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second}, nil, nil)
	for attempt, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond, 5: time.Second, 60: time.Second} {
		for range 20 {
			d := f.backoff(f.set.Load(), attempt, 0)
			if d < want/2 || d > want {
				t.Fatalf("attempt %d: backoff %v, want in [%v, %v]", attempt, d, want/2, want)
			}
		}
	}
	if d := f.backoff(f.set.Load(), 1, 5*time.Second); d != 5*time.Second {
		t.Errorf("Retry-After 5s gave %v", d)
	}
}

func TestPeriodStart(t *testing.T) {
	tests := []struct {
		period   time.Duration
		in, want int64
	}{
		{10 * time.Second, 1_800_000_000, 1_800_000_000},
		{10 * time.Second, 1_800_000_009, 1_800_000_000},
		{10 * time.Second, 1_800_000_010, 1_800_000_010},
		// 7 s does not divide the seconds from year 1 to 1970, where
		// time.Time.Truncate counts from: the boundaries are still
		// multiples of 7 unix seconds.
		{7 * time.Second, 1_800_000_000, 1_799_999_999},
		{7 * time.Second, 1_800_000_005, 1_799_999_999},
		{7 * time.Second, 1_800_000_006, 1_800_000_006},
		{13 * time.Second, 1_800_000_000, 1_799_999_994},
	}
	for _, tt := range tests {
		f := New(Config{Period: tt.period}, nil, nil)
		if got := f.PeriodStart(time.Unix(tt.in, 999_000_000)).Unix(); got != tt.want {
			t.Errorf("period %v: PeriodStart(%d.999) = %d, want %d", tt.period, tt.in, got, tt.want)
		}
		if got := tt.want % int64(tt.period/time.Second); got != 0 {
			t.Fatalf("bad case: %d is not a multiple of %v", tt.want, tt.period)
		}
	}
	if got := periodStartUnix(-1, 7); got != -7 {
		t.Errorf("periodStartUnix(-1, 7) = %d, want -7", got)
	}
}

func TestRunFlushesEachPeriodAndAtStop(t *testing.T) {
	a := aggregator.New(aggregator.Config{})
	s := &fakeSender{got: make(chan struct{}, 1)}
	f := New(Config{API: librato.Tagged, Period: time.Second}, a, s)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan Result)
	go func() { done <- f.Run(ctx) }()
	feed(t, a, "first:1|c")
	select {
	case <-s.got:
	case <-time.After(5 * time.Second):
		t.Fatal("no flush within 5s of a 1s period")
	}
	feed(t, a, "second:2|c")
	cancel()
	var res Result
	select {
	case res = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	// The open period held one measurement. The first period's may still
	// be counting its answer when the shutdown begins (the sender signals
	// got before it returns): it is then carried, and sent within Run too.
	if open := res.Measurements - res.Carried; open != 1 || res.Sent != res.Measurements || res.Pending != 0 {
		t.Errorf("result %+v: want the open period's 1 measurement (and any carried) sent", res)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.batches) != 2 || s.batches[0].Measurements[0].Name != "first" || s.batches[1].Measurements[0].Name != "second" {
		t.Fatalf("batches %+v", s.batches)
	}
	if s.batches[1].Time <= s.batches[0].Time {
		t.Errorf("period times %d then %d: want increasing period starts", s.batches[0].Time, s.batches[1].Time)
	}
}

func TestTakeSource(t *testing.T) {
	tests := []struct {
		re, name, wantName, wantSource string
	}{
		{`^([^.]+)\.`, "web-1.requests", "requests", "web-1"},
		{`^([^.]+)\.`, "plain", "plain", ""},
		{`\.host_([^.]+)\.`, "api.host_db2.latency", "api.latency", "db2"},
		{`^(\w+)-(\d+)\.`, "web-12.hits", "hits", "web.12"},
		{`^(.*)$`, "everything", "everything", ""}, // nothing would be left
		{`^(?:x)\.`, "x.y", "x.y", ""},             // no capture group
	}
	for _, tc := range tests {
		re := regexp.MustCompile(tc.re)
		name, src := takeSource(re, tc.name)
		if name != tc.wantName || src != tc.wantSource {
			t.Errorf("takeSource(%s, %q) = %q, %q; want %q, %q", tc.re, tc.name, name, src, tc.wantName, tc.wantSource)
		}
	}
}

func TestIncludeExcludeAndSourceRegex(t *testing.T) {
	for _, api := range []librato.API{librato.Tagged, librato.Legacy} {
		t.Run(api.String(), func(t *testing.T) {
			a := aggregator.New(aggregator.Config{})
			feed(t, a, "web-1.hits:1|c", "web-2.hits:2|c", "web-1.debug.x:1|c", "other:5|c")
			s := &fakeSender{}
			m, _ := NewMetrics(prometheus.NewRegistry())
			New(Config{
				API: api, Metrics: m, Tags: []librato.Tag{{Name: "host", Value: "h"}},
				Include:     []*regexp.Regexp{regexp.MustCompile(`^web-`)},
				Exclude:     []*regexp.Regexp{regexp.MustCompile(`\.debug\.`)},
				SourceRegex: regexp.MustCompile(`^(web-\d+)\.`),
			}, a, s).Flush(context.Background(), t0)
			got := map[string]float64{}
			for _, x := range s.all() {
				src := x.Source
				for _, tg := range x.Tags {
					if tg.Name == "source" {
						src = tg.Value
					}
				}
				got[x.Name+"@"+src] += x.Value
			}
			want := map[string]float64{"hits@web-1": 1, "hits@web-2": 2}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
			if n := testutil.ToFloat64(m.forOutput("librato").dropped.WithLabelValues("excluded")); n != 2 {
				t.Errorf("excluded = %v, want 2", n)
			}
		})
	}
}

func TestCountersAsCounters(t *testing.T) {
	a := aggregator.New(aggregator.Config{})
	s := &fakeSender{}
	f := New(Config{API: librato.Legacy, Source: "h", CountersAsCounters: true}, a, s)
	for p, lines := range [][]string{{"c:2|c", "g:1|g"}, {"c:3|c", "c:1|c|#source:db"}, {"c:5|c"}} {
		feed(t, a, lines...)
		f.Flush(context.Background(), t0.Add(time.Duration(p)*10*time.Second))
	}
	var got []string
	for _, b := range s.batches {
		for _, m := range b.Measurements {
			got = append(got, fmt.Sprintf("%s@%s=%v/%v", m.Name, m.Source, m.Value, m.Counter))
		}
	}
	sort.Strings(got)
	want := []string{"c@=10/true", "c@=2/true", "c@=5/true", "c@db=1/true", "g@=1/false"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want running totals per name and source %v", got, want)
	}
}

// gate is a Sender that holds every request until it is opened, telling
// of each request's period time as it arrives.
type gate struct {
	open   chan struct{}
	times  chan int64
	mu     sync.Mutex
	batchs []librato.Batch
}

func (g *gate) Send(ctx context.Context, b *librato.Batch) (librato.Result, error) {
	select {
	case g.times <- b.Time:
	default:
	}
	<-g.open
	g.mu.Lock()
	defer g.mu.Unlock()
	cp := *b
	cp.Measurements = slices.Clone(b.Measurements)
	g.batchs = append(g.batchs, cp)
	return librato.Result{StatusCode: 200, Sent: len(b.Measurements)}, nil
}

// TestRunningTotalsAdvanceInPeriodOrder holds the first period's requests
// until the second period has begun its own: with counters_as = "counter"
// every running total must still grow from one period to the next.
func TestRunningTotalsAdvanceInPeriodOrder(t *testing.T) {
	a := aggregator.New(aggregator.Config{})
	g := &gate{open: make(chan struct{}), times: make(chan int64, 100)}
	f := New(Config{API: librato.Legacy, Source: "h", CountersAsCounters: true, Period: time.Second,
		BatchSize: 1, Concurrency: 1, Backlog: 1000}, a, g)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan Result)
	go func() { done <- f.Run(ctx) }()
	var names []string
	for i := range 20 {
		names = append(names, fmt.Sprintf("c%d:1|c", i))
	}
	feed(t, a, names...)
	var first int64
	select {
	case first = <-g.times:
	case <-time.After(5 * time.Second):
		t.Fatal("no request within 5s of a 1s period")
	}
	names = names[:0]
	for i := range 20 {
		names = append(names, fmt.Sprintf("c%d:2|c", i))
	}
	feed(t, a, names...)
	for deadline := time.After(5 * time.Second); ; {
		var tm int64
		select {
		case tm = <-g.times:
		case <-deadline:
			t.Fatal("the second period sent nothing within 5s")
		}
		if tm > first {
			break
		}
	}
	close(g.open)
	cancel()
	var res Result
	select {
	case res = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	byName := map[string]map[int64]float64{}
	for _, b := range g.batchs {
		for _, m := range b.Measurements {
			if byName[m.Name] == nil {
				byName[m.Name] = map[int64]float64{}
			}
			byName[m.Name][b.Time] = m.Value
		}
	}
	for name, points := range byName {
		times := slices.Sorted(maps.Keys(points))
		if len(times) != 2 || points[times[0]] != 1 || points[times[1]] != 3 {
			t.Errorf("%s: totals %v, want 1 then 3 (result %+v)", name, points, res)
		}
	}
}

func TestFirstTime(t *testing.T) {
	s := t0.Unix()
	for in, want := range map[time.Duration]int64{0: s, 1: s + 1, 999 * time.Millisecond: s + 1, time.Second: s + 1} {
		if got := FirstTime(t0.Add(in)).Unix(); got != want {
			t.Errorf("FirstTime(t0+%v) = %d, want %d", in, got, want)
		}
	}
}

// TestFirstPeriodTime stops Run at once: its only period is sent with the
// time it started, rounded up to a second (not the period start, which
// the process before it may have used), and Run returns only once the
// clock has passed that time.
func TestFirstPeriodTime(t *testing.T) {
	a := aggregator.New(aggregator.Config{})
	s := &fakeSender{}
	f := New(Config{API: librato.Tagged, Period: time.Hour}, a, s)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan Result)
	before := time.Now()
	go func() { done <- f.Run(ctx) }()
	feed(t, a, "x:1|c")
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
	after := time.Now()
	if len(s.batches) != 1 {
		t.Fatalf("%d batches, want 1", len(s.batches))
	}
	got := s.batches[0].Time
	if got < FirstTime(before).Unix() || got > FirstTime(after).Unix() {
		t.Errorf("time %d, want the start rounded up to a second, in [%d, %d]", got, FirstTime(before).Unix(), FirstTime(after).Unix())
	}
	if !after.After(time.Unix(got, 0)) {
		t.Errorf("Run returned at %v, before the time %d it sent", after, got)
	}
}

// TestAtOtherTimes runs this package's tests again, in a child process,
// with t0 two hours before the real clock (as when the real date passes
// the default t0), 400 days and 30 years after the default, and 30 years
// before it: whatever the date, the tests must not see the real clock.
func TestAtOtherTimes(t *testing.T) {
	if os.Getenv(t0Env) != "" {
		return // the child itself
	}
	if testing.Short() {
		t.Skip("runs the package's tests four times")
	}
	base := time.Unix(1_800_000_000, 0)
	ago := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	for _, at := range []time.Time{ago, base.AddDate(0, 0, 400), base.AddDate(30, 0, 0), base.AddDate(-30, 0, 0)} {
		t.Run(at.UTC().Format(time.DateOnly), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.count=1", "-test.run=^Test")
			cmd.Env = append(os.Environ(), t0Env+"="+strconv.FormatInt(at.Unix(), 10))
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("the tests fail with t0 = %v: %v\n%s", at.UTC(), err, out)
			}
		})
	}
}

// steppingClock is testClock with a step the test sets: the wall clock
// put back (or forward) under a running flusher.
type steppingClock struct {
	read  func() time.Time
	mu    sync.Mutex
	step  time.Duration
	reads int
}

func (c *steppingClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reads++
	return c.read().Add(c.step)
}

func (c *steppingClock) wasRead() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reads > 0
}

func (c *steppingClock) set(d time.Duration) {
	c.mu.Lock()
	c.step = d
	c.mu.Unlock()
}

// TestClockStepAtShutdown puts the clock back an hour just before Run is
// stopped, in its first period and after a boundary: the final flush
// must not be stamped after the time it was stopped at, rounded up to a
// second as FirstTime rounds a start, and Run must return soon (not wait
// an hour for the clock to catch up), once the clock has passed that
// stamp, so that a process started after it cannot use it again.
func TestClockStepAtShutdown(t *testing.T) {
	for name, boundaries := range map[string]int{"first period": 0, "after a boundary": 1} {
		t.Run(name, func(t *testing.T) {
			a := aggregator.New(aggregator.Config{})
			s := &fakeSender{got: make(chan struct{}, 1)}
			clock := &steppingClock{read: testClock()}
			f := New(Config{API: librato.Tagged, Period: time.Second, Now: clock.now,
				ShutdownTimeout: time.Second}, a, s)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan Result, 1)
			go func() { done <- f.Run(ctx) }()
			eventually.Require(t, 5*time.Second, clock.wasRead, "Run reads the clock")
			for range boundaries {
				feed(t, a, "early:1|c")
				select {
				case <-s.got:
				case <-time.After(10 * time.Second):
					t.Fatal("no flush within 10s of a 1s period")
				}
			}
			feed(t, a, "last:1|c")
			clock.set(-time.Hour)
			stopped := clock.now()
			cancel()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("Run did not return within 5s of a stop with a 1s shutdown timeout")
			}
			returned := clock.now()
			s.mu.Lock()
			defer s.mu.Unlock()
			last := s.batches[len(s.batches)-1]
			if last.Measurements[0].Name != "last" {
				t.Fatalf("last batch %+v, want the final flush's", last)
			}
			if limit := FirstTime(stopped).Unix(); last.Time > limit {
				t.Errorf("final flush stamped %d, %ds after the clock at the stop rounded up (%d)",
					last.Time, last.Time-limit, limit)
			}
			if !returned.After(time.Unix(last.Time, 0)) {
				t.Errorf("Run returned at %v, before the time %d it sent", returned, last.Time)
			}
		})
	}
}
