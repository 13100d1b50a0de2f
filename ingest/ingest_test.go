package ingest

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/libratod/libratod/aggregator"
	"github.com/libratod/libratod/flusher"
	"github.com/libratod/libratod/librato"
	"github.com/libratod/libratod/listener"
	"github.com/libratod/libratod/parser"
)

// newTestIngest returns a Handler wired as the daemon wires it, adding to
// an aggregator with the daemon's sanitizer and counting into fm; cfg
// gives the settings.
func newTestIngest(t testing.TB, cfg Config) (*Handler, *aggregator.Aggregator, *flusher.Metrics) {
	t.Helper()
	reg := prometheus.NewRegistry()
	fm, err := flusher.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	agg := aggregator.New(aggregator.Config{Sanitizer: flusher.Names{API: librato.Tagged}}) // as the daemon
	cfg.Aggregator, cfg.Registerer, cfg.Dropped, cfg.TagsDropped = agg, reg, fm.Dropped, fm.TagsDropped
	cfg.Logger = zerolog.Nop()
	in, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return in, agg, fm
}

func TestLineLevel(t *testing.T) {
	tests := map[string]int32{
		"x:1|c":                              levelNone,
		"x:1|c|#level:debug":                 levelDebug,
		"x:1|c|#env:prod,level:info":         levelInfo,
		"x:1|c|#level:warn":                  levelWarning,
		"x#level=error:1|c":                  levelError,
		"x#level=debug:1|c|#level:critical":  levelCritical, // the line's own tags win
		"x:1|c|#level:loud":                  levelNone,
		"x:1|c|#levels:debug,mylevel:debug":  levelNone,
		"x:1|c|#level:":                      levelNone,
		"x:1|c|#level:info,level:error":      levelError,
		"x:1|c|#level:ERROR":                 levelNone, // levels are lower case, like Librato's tag values
		"x#level=warning,team=a:1|c|#k:v,kk": levelWarning,
		"x,team=a,level=error:1|c":           levelError,
		"x;team=a;level=info:1|c":            levelInfo,
		"x;level=info,team=a:1|c":            levelNone, // one tag: level "info,team=a"
		"x:1|c|#team:a,#level:warning":       levelWarning,
	}
	for line, want := range tests {
		ms, err := parser.Parse([]byte(line), nil)
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		if got := lineLevel(&ms[0]); got != want {
			t.Errorf("lineLevel(%q) = %d, want %d", line, got, want)
		}
	}
}

func TestMinLevel(t *testing.T) {
	in, agg, fm := newTestIngest(t, Config{MinLevel: "warning"})
	in.Handle(listener.UDP, []byte("a:1|c|#level:debug\na:2|c|#level:warning\na:4|c|#level:error\na:8|c\n"))
	var sum float64
	agg.Snapshot().Each(func(s *aggregator.Series) { sum += s.Value })
	if sum != 2+4+8 {
		t.Errorf("kept sum %v, want 14 (debug dropped, untagged kept)", sum)
	}
	if n := testutil.ToFloat64(fm.Dropped("below_min_level")); n != 1 {
		t.Errorf("below_min_level = %v, want 1", n)
	}
	if err := in.SetMinLevel(""); err != nil {
		t.Fatal(err)
	}
	in.Handle(listener.UDP, []byte("a:1|c|#level:debug\n"))
	sum = 0
	agg.Snapshot().Each(func(s *aggregator.Series) { sum += s.Value })
	if sum != 1 {
		t.Errorf("with min_level unset: sum %v, want 1", sum)
	}
}

func TestIngestCounts(t *testing.T) {
	in, agg, _ := newTestIngest(t, Config{})
	in.Handle(listener.TCP, []byte("a:1|c\n\nbad\n_e{1,1}:a|b\nb:2|g\r\n"))
	if n := testutil.ToFloat64(in.lines[listener.TCP]); n != 4 {
		t.Errorf("lines = %v, want 4 (the blank one is not a line)", n)
	}
	if n := testutil.ToFloat64(in.packets[listener.TCP]); n != 1 {
		t.Errorf("packets = %v, want 1", n)
	}
	if n := testutil.ToFloat64(in.invalid[parser.ErrNoValue]); n != 1 {
		t.Errorf("invalid{no_value} = %v, want 1", n)
	}
	if n := testutil.ToFloat64(in.unsupported[parser.ErrEvent]); n != 1 {
		t.Errorf("unsupported{event} = %v, want 1", n)
	}
	if n := agg.Snapshot().Len(); n != 2 {
		t.Errorf("%d series, want 2", n)
	}
}

// TestTagSyntaxesSetting checks that listen.tag_syntaxes reaches the
// parser and can change while running.
func TestTagSyntaxesSetting(t *testing.T) {
	in, agg, _ := newTestIngest(t, Config{})
	packet := []byte("a,env=prod:1|c\nb;env=prod:1|c\nc#env=prod:1|c\nd:1|c|#env:prod\n")
	series := func() []string {
		var ids []string
		agg.Snapshot().Each(func(s *aggregator.Series) {
			id := s.Name
			for _, tg := range s.Tags() {
				id += " " + tg.Name + "=" + tg.Value
			}
			ids = append(ids, id)
		})
		slices.Sort(ids)
		return ids
	}
	in.Handle(listener.UDP, packet)
	if got, want := series(), []string{"a env=prod", "b env=prod", "c env=prod", "d env=prod"}; !slices.Equal(got, want) {
		t.Errorf("every syntax: series %q, want %q", got, want)
	}
	// Left in the name, "," and ";" are sanitized for Librato, as in the
	// daemon.
	if err := in.SetTagSyntaxes([]string{"librato"}); err != nil {
		t.Fatal(err)
	}
	in.Handle(listener.UDP, packet)
	if got, want := series(), []string{"a_env_prod", "b_env_prod", "c env=prod", "d"}; !slices.Equal(got, want) {
		t.Errorf("librato only: series %q, want %q", got, want)
	}
	if err := in.SetTagSyntaxes([]string{"nonsense"}); err == nil { // refused: kept as it was
		t.Error("SetTagSyntaxes(nonsense): no error")
	}
	in.Handle(listener.UDP, packet)
	if got, want := series(), []string{"a_env_prod", "b_env_prod", "c env=prod", "d"}; !slices.Equal(got, want) {
		t.Errorf("after an unknown name: series %q, want %q", got, want)
	}
}

// TestHandleDoesNotAllocate proves the whole hot path, from a packet to
// the aggregator's series, allocation-free once the series exist.
func TestHandleDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation tests run without -race, as scripts/test does: the race runtime is not the one measured")
	}
	in, _, _ := newTestIngest(t, Config{})
	packet := []byte(strings.Join([]string{
		"app.hits:1|c", "app.hits:1|c|@0.5|#env:prod,host:web-1", "app.temp:21.5|g", "app.temp:+1|g",
		"app.lat:12.5|ms|#route:/x", "app.lat:3:4:5|ms", "app.users:alice|s", "api#region=eu:1|c",
		"rcn.requests,app=rcnode,env=test,code=200:3|c", "rcn.latency;app=rcnode;env=test:12.5|ms|#tier:gold",
		"app.hits:1|c|#env:prod,#host:web-1",
	}, "\n") + "\n")
	in.Handle(listener.UDP, packet) // create the series
	if n := testing.AllocsPerRun(500, func() { in.Handle(listener.UDP, packet) }); n != 0 {
		t.Errorf("Handle: %v allocs per packet, want 0", n)
	}
}

// TestSessionDoesNotAllocate is TestHandleDoesNotAllocate for a Session,
// the path of every UDP reader.
func TestSessionDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation tests run without -race, as scripts/test does: the race runtime is not the one measured")
	}
	in, _, _ := newTestIngest(t, Config{})
	s := in.NewSession()
	defer s.Close()
	packet := []byte("app.hits:1|c|#env:prod\napp.temp:21.5|g\napp.lat:12.5|ms|#route:/x\napp.users:alice|s\n")
	s.Handle(listener.UDP, packet) // create the series
	if n := testing.AllocsPerRun(500, func() { s.Handle(listener.UDP, packet); s.Flush() }); n != 0 {
		t.Errorf("Session.Handle and Flush: %v allocs per packet, want 0", n)
	}
}

// TestSession checks that a Session adds its lines as Handle does, counts
// its packets and lines at Flush, and that Close publishes the counter
// sums its Writer holds.
func TestSession(t *testing.T) {
	in, agg, _ := newTestIngest(t, Config{})
	s := in.NewSession()
	for range 3 {
		s.Handle(listener.UDP, []byte("a:1|c\na:2|c\n\nb:5|g"))
	}
	s.Handle(listener.Unixgram, []byte("a:10|c"))
	if n := testutil.ToFloat64(in.packets[listener.UDP]); n != 0 {
		t.Errorf("%v UDP packets counted before Flush, want 0", n)
	}
	s.Flush()
	for _, c := range []struct {
		tr             listener.Transport
		packets, lines float64
	}{{listener.UDP, 3, 9}, {listener.Unixgram, 1, 1}} {
		if p, l := testutil.ToFloat64(in.packets[c.tr]), testutil.ToFloat64(in.lines[c.tr]); p != c.packets || l != c.lines {
			t.Errorf("%s: %v packets, %v lines; want %v, %v", c.tr, p, l, c.packets, c.lines)
		}
	}
	s.Close()
	got := map[string]float64{}
	agg.Snapshot().Each(func(x *aggregator.Series) { got[x.Name] = x.Value })
	if got["a"] != 19 || got["b"] != 5 || len(got) != 2 {
		t.Errorf("series %v, want a=19 b=5", got)
	}
}

// BenchmarkHandle measures the path from a packet to the aggregator (what
// every UDP reader does) with -cpu N goroutines at once, in wall time per
// line (wall-ns/line): on 1 CPU that is the CPU a line costs; on N, the
// inverse of their throughput together.
func BenchmarkHandle(b *testing.B) {
	in, _, _ := newTestIngest(b, Config{})
	var lines []string
	for i := range 20 {
		lines = append(lines, "app.requests."+string(rune('a'+i))+":1|c|#env:prod")
	}
	packet := []byte(strings.Join(lines, "\n") + "\n")
	in.Handle(listener.UDP, packet)
	b.ReportAllocs()
	b.SetBytes(int64(len(packet)))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			in.Handle(listener.UDP, packet)
		}
	})
	// The wall time per line of all the goroutines together (with -cpu N,
	// N of them): the inverse of the throughput, not the CPU a line costs,
	// which is about N times as much.
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(lines)), "wall-ns/line")
}

// loadPerPacket is the lines in each of loadPackets's packets.
const loadPerPacket = 20

// loadPackets returns the traffic of statsd-load's -floor runs: 1,000
// counter names with two DogStatsD tags, loadPerPacket lines a packet, each
// name once.
func loadPackets() [][]byte {
	const names = 1000
	var packets [][]byte
	for i := 0; i < names; i += loadPerPacket {
		var p []byte
		for j := i; j < i+loadPerPacket; j++ {
			p = fmt.Appendf(p, "load.r1a2b3c.c.%d:1|c|#t0:v%d,t1:v%d\n", j, j%7, (j+1)%7)
		}
		packets = append(packets, p)
	}
	return packets
}

// BenchmarkHandleLoadNames is BenchmarkHandle with the traffic of
// statsd-load's -floor runs: 1,000 counter names with two DogStatsD tags,
// 20 lines a packet, each name in turn, after a first pass has made every
// series (wall-ns/line as BenchmarkHandle's).
func BenchmarkHandleLoadNames(b *testing.B) {
	in, _, _ := newTestIngest(b, Config{})
	packets := loadPackets()
	for _, p := range packets {
		in.Handle(listener.UDP, p)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			in.Handle(listener.UDP, packets[i%len(packets)])
			i++
		}
	})
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*loadPerPacket), "wall-ns/line")
}

// BenchmarkSessionLoadNames is BenchmarkHandleLoadNames through a
// Session per goroutine, as the UDP readers hand over packets.
func BenchmarkSessionLoadNames(b *testing.B) {
	in, _, _ := newTestIngest(b, Config{})
	packets := loadPackets()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		s := in.NewSession()
		defer s.Close()
		for _, p := range packets {
			s.Handle(listener.UDP, p)
		}
		i := 0
		for pb.Next() {
			s.Handle(listener.UDP, packets[i%len(packets)])
			if i++; i%8 == 0 {
				s.Flush()
			}
		}
	})
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*loadPerPacket), "wall-ns/line")
}

// TestTimestampPeriods sends lines with DogStatsD timestamps in the
// closing period, in the current one, before both and after: those in
// the closing period go there, the others to the current one, and each
// is counted by where it went (each value of a line with several).
func TestTimestampPeriods(t *testing.T) {
	in, agg, _ := newTestIngest(t, Config{})
	agg.SetSpan(1_799_999_990, 1_800_000_000)
	agg.Roll(1_800_000_000, 1_800_000_010)
	in.Handle(listener.UDP, []byte("a:1|c|T1800000000\na:2|c|T1800000009\na:4|c|T1799999999\n"+
		"a:8|c|#env:x|T1800000010\na:16:32|c|T1700000000\na:64|c\n"))
	sum := func(snap *aggregator.Snapshot) float64 {
		var v float64
		snap.Each(func(s *aggregator.Series) { v += s.Value })
		return v
	}
	if closing, current := sum(agg.TakeClosing()), sum(agg.Snapshot()); closing != 4 || current != 123 {
		t.Errorf("closing period %v, current %v; want 4 and 123", closing, current)
	}
	if late, future := testutil.ToFloat64(in.tsLate), testutil.ToFloat64(in.tsFuture); late != 2 || future != 1 {
		t.Errorf("late %v, future %v; want 2 and 1", late, future)
	}
	if closing, current := testutil.ToFloat64(in.tsClosing), testutil.ToFloat64(in.tsCurrent); closing != 1 || current != 2 {
		t.Errorf("in the closing period %v, in the current one %v; want 1 and 2", closing, current)
	}
}

// TestIngestCountsSanitizing checks what ingest counts when the aggregator
// sanitizes: a name with nothing usable is a dropped metric, tags left out
// are counted by reason.
func TestIngestCountsSanitizing(t *testing.T) {
	in, agg, fm := newTestIngest(t, Config{})
	var many []string
	for i := range 52 {
		many = append(many, fmt.Sprintf("t%02d:v", i))
	}
	in.Handle(listener.UDP, []byte("...:1|c\nx:1|c|#!!:v,k:??\ny:1|c|#"+strings.Join(many, ",")+"\nz b:1|c\n"))
	for reason, want := range map[string]float64{"invalid": 2, "too_many": 2, "legacy_api": 0} {
		if got := testutil.ToFloat64(fm.TagsDropped(reason)); got != want {
			t.Errorf("tags dropped %s = %v, want %v", reason, got, want)
		}
	}
	if got := testutil.ToFloat64(fm.Dropped("bad_name")); got != 1 {
		t.Errorf("dropped bad_name = %v, want 1", got)
	}
	var names []string
	agg.Snapshot().Each(func(s *aggregator.Series) { names = append(names, s.Name) })
	sort.Strings(names)
	if strings.Join(names, ",") != "x,y,z_b" {
		t.Errorf("series %v, want x, y, z_b", names)
	}
}

type eventList []string

func (l *eventList) Event(ev *parser.Event) { *l = append(*l, string(ev.Title)) }

// TestEvents checks that events reach the EventSink, that a malformed one
// is counted invalid, and that without a sink they are counted unsupported.
func TestEvents(t *testing.T) {
	packet := []byte("_e{6,2}:Deploy|ok\n_e{bad\na:1|c\n")
	var got eventList
	in, _, _ := newTestIngest(t, Config{Events: &got})
	in.Handle(listener.UDP, packet)
	if !slices.Equal(got, eventList{"Deploy"}) {
		t.Errorf("events %q, want [Deploy]", got)
	}
	if n := testutil.ToFloat64(in.invalid[parser.ErrBadEvent]); n != 1 {
		t.Errorf("invalid{bad_event} = %v, want 1", n)
	}
	in, _, _ = newTestIngest(t, Config{})
	in.Handle(listener.UDP, packet)
	if n := testutil.ToFloat64(in.unsupported[parser.ErrEvent]); n != 2 {
		t.Errorf("without a sink: unsupported{event} = %v, want 2", n)
	}
}

// TestNewRefuses checks that New refuses a setting it does not know rather
// than running with another.
func TestNewRefuses(t *testing.T) {
	agg := aggregator.New(aggregator.Config{})
	for name, cfg := range map[string]Config{
		"no aggregator": {},
		"min level":     {Aggregator: agg, MinLevel: "loud"},
		"tag syntaxes":  {Aggregator: agg, TagSyntaxes: []string{"nonsense"}},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
