package main

import (
	"bytes"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/libratod/libratod/parser"
)

func TestParseMix(t *testing.T) {
	tests := []struct {
		in      string
		want    mix
		wantErr bool
	}{
		{in: "c,g,ms,s", want: mix{1, 1, 1, 1}},
		{in: "c=8,ms=2", want: mix{counterType: 8, timerType: 2}},
		{in: " s , g=3", want: mix{setType: 1, gaugeType: 3}},
		{in: "c=0,g", want: mix{gaugeType: 1}},
		{in: "", wantErr: true},
		{in: "x", wantErr: true},
		{in: "h", wantErr: true},
		{in: "c=-1", wantErr: true},
		{in: "c=abc", wantErr: true},
		{in: "c=1001", wantErr: true},
		{in: "c,c", wantErr: true},
		{in: "c=0", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseMix(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("parseMix(%q): error %v, want error %t", tt.in, err, tt.wantErr)
			continue
		}
		if err == nil && got != tt.want {
			t.Errorf("parseMix(%q) = %v, want %v", tt.in, got, tt.want)
		}
		if err == nil {
			if again, err := parseMix(got.String()); err != nil || again != got {
				t.Errorf("parseMix(%q) = %v, %v: String does not round-trip", got.String(), again, err)
			}
		}
	}
}

func TestPattern(t *testing.T) {
	tests := []struct {
		mix     mix
		longest int // longest run of one type allowed
	}{
		{mix: mix{1, 1, 1, 1}, longest: 1},
		{mix: mix{counterType: 8, timerType: 2}, longest: 4},
		{mix: mix{counterType: 1, setType: 1}, longest: 1},
		{mix: mix{gaugeType: 5}, longest: 5},
	}
	for _, tt := range tests {
		p := tt.mix.pattern()
		var counts mix
		run, longest := 0, 0
		for i, typ := range p {
			counts[typ]++
			if i > 0 && p[i-1] == typ {
				run++
			} else {
				run = 1
			}
			longest = max(longest, run)
		}
		if counts != tt.mix {
			t.Errorf("pattern of %v = %v: counts %v", tt.mix, p, counts)
		}
		if longest > tt.longest {
			t.Errorf("pattern of %v = %v: a run of %d, want at most %d", tt.mix, p, longest, tt.longest)
		}
	}
}

func TestCheckRate(t *testing.T) {
	tests := []struct {
		rate float64
		ok   bool
	}{
		{1, true}, {0.5, true}, {0.25, true}, {0.1, true}, {0.01, true}, {0.001, true},
		{0, false}, {-0.5, false}, {1.5, false}, {0.3, false}, {0.75, false}, {math.NaN(), false}, {math.Inf(1), false},
	}
	for _, tt := range tests {
		if err := checkRate(tt.rate); (err == nil) != tt.ok {
			t.Errorf("checkRate(%v) = %v, want ok %t", tt.rate, err, tt.ok)
		}
	}
}

func TestParseName(t *testing.T) {
	tests := []struct {
		name   string
		ok     bool
		typ    metricType
		index  int
		prefix string
	}{
		{name: "load.c.3", ok: true, typ: counterType, index: 3},
		{name: "load.ms.0", ok: true, typ: timerType},
		{name: "load.s.99", ok: true, typ: setType, index: 99},
		{name: "load.g.12", ok: true, typ: gaugeType, index: 12},
		{name: "app.load.c.7", ok: true, typ: counterType, index: 7}, // a daemon prefix before
		{name: "load.ms.3.90", ok: false},                            // a percentile
		{name: "xload.c.3", ok: false},
		{name: "load.x.3", ok: false},
		{name: "load.c.03", ok: false},
		{name: "load.c.-1", ok: false},
		{name: "load.c.", ok: false},
		{name: "load.c", ok: false},
		{name: "other", ok: false},
		{name: "load.r1a2b3.g.4", prefix: "load.r1a2b3", ok: true, typ: gaugeType, index: 4},
		{name: "load.c.4", prefix: "load.r1a2b3", ok: false},
	}
	for _, tt := range tests {
		prefix := tt.prefix
		if prefix == "" {
			prefix = "load"
		}
		typ, i, ok := parseName(prefix, tt.name)
		if ok != tt.ok || ok && (typ != tt.typ || i != tt.index) {
			t.Errorf("parseName(%q, %q) = %v, %d, %t; want %v, %d, %t", prefix, tt.name, typ, i, ok, tt.typ, tt.index, tt.ok)
		}
		if ok {
			if got := metricName(prefix, typ, i); !strings.HasSuffix(tt.name, got) {
				t.Errorf("metricName(%q, %v, %d) = %q, want a suffix of %q", prefix, typ, i, got, tt.name)
			}
		}
	}
}

// TestGenerator generates lines and parses each with the daemon's own parser:
// every line must be valid and mean what the generator says it means; the tally
// of the lines must be what they add up to.
func TestGenerator(t *testing.T) {
	tests := []struct {
		name  string
		cfg   genConfig
		conn  int
		lines int
	}{
		{name: "every type", cfg: genConfig{prefix: "load", names: 5, tags: 2, rate: 1, conns: 1, mix: mix{1, 1, 1, 1}}, lines: 100},
		{name: "sampled", cfg: genConfig{prefix: "load.r1", names: 3, tags: 0, rate: 0.1, conns: 1, mix: mix{counterType: 3, timerType: 1}}, lines: 50},
		{name: "second of three senders", cfg: genConfig{prefix: "p", names: 7, tags: 5, rate: 0.5, conns: 3, mix: mix{1, 2, 1, 1}}, conn: 1, lines: 200},
		{name: "stamped", cfg: genConfig{prefix: "load", names: 5, tags: 1, rate: 1, conns: 1, mix: mix{1, 1, 1, 1},
			stamp: true, backFrac: 0.25, back: 10}, lines: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := newGenerator(tt.cfg, tt.conn)
			if err != nil {
				t.Fatal(err)
			}
			want := newTally(tt.cfg.names)
			parsed := newTally(tt.cfg.names)
			members := make(map[string]bool)
			var ms []parser.Metric
			g.now = 1_800_000_000
			back := 0
			for range tt.lines {
				b, l := g.appendLine(nil)
				want.add(l, 1/tt.cfg.rate)
				ms, err = parser.Parse(b, ms[:0])
				if err != nil || len(ms) != 1 {
					t.Fatalf("line %q: %d metrics, %v", b, len(ms), err)
				}
				m := ms[0]
				switch {
				case !tt.cfg.stamp && m.Timestamp != 0:
					t.Errorf("line %q: stamped", b)
				case tt.cfg.stamp && m.Timestamp == g.now-tt.cfg.back && l.typ != gaugeType:
					back++
				case tt.cfg.stamp && m.Timestamp != g.now:
					t.Errorf("line %q: stamped %d, want %d or, not a gauge, %d", b, m.Timestamp, g.now, g.now-tt.cfg.back)
				}
				typ, i, ok := parseName(tt.cfg.prefix, string(m.Name))
				if !ok || typ != l.typ || i != l.name {
					t.Fatalf("line %q: name parses as %v %d %t, want %v %d", b, typ, i, ok, l.typ, l.name)
				}
				if got := strings.Count(string(m.Tags), ":"); got != tt.cfg.tags {
					t.Errorf("line %q: %d tags, want %d", b, got, tt.cfg.tags)
				}
				pl := line{typ: typ, name: i, value: int64(m.Value)}
				switch typ {
				case counterType, timerType:
					if m.Rate != tt.cfg.rate {
						t.Errorf("line %q: rate %v, want %v", b, m.Rate, tt.cfg.rate)
					}
				case gaugeType:
					if m.Delta || i%tt.cfg.conns != tt.conn {
						t.Errorf("line %q: a delta, or a gauge of another sender", b)
					}
				case setType:
					if members[string(m.Member)] {
						t.Errorf("line %q: member sent before", b)
					}
					members[string(m.Member)] = true
				}
				parsed.add(pl, 1/m.Rate)
			}
			if !slices.Equal(parsed.counters, want.counters) || !slices.Equal(parsed.timers, want.timers) ||
				!slices.Equal(parsed.sets, want.sets) || !slices.Equal(parsed.gauges, want.gauges) || parsed.lines != want.lines {
				t.Errorf("the parsed lines tally %+v, the generator %+v", parsed, want)
			}
			if want := int(tt.cfg.backFrac * float64(tt.lines)); back != want {
				t.Errorf("%d lines stamped back, want %d", back, want)
			}
			var n uint64
			for _, c := range want.lines {
				n += c
			}
			if n != uint64(tt.lines) {
				t.Errorf("tally of %d lines, want %d", n, tt.lines)
			}
		})
	}
}

func TestNewGeneratorRefuses(t *testing.T) {
	tests := []struct {
		name string
		cfg  genConfig
		conn int
	}{
		{name: "fewer names than senders with gauges", cfg: genConfig{names: 2, conns: 3, rate: 1, mix: mix{gaugeType: 1}}, conn: 2},
		{name: "no names", cfg: genConfig{names: 0, conns: 1, rate: 1, mix: mix{counterType: 1}}},
		{name: "sender out of range", cfg: genConfig{names: 5, conns: 2, rate: 1, mix: mix{counterType: 1}}, conn: 2},
	}
	for _, tt := range tests {
		if _, err := newGenerator(tt.cfg, tt.conn); err == nil {
			t.Errorf("%s: no error", tt.name)
		}
	}
}

func TestTally(t *testing.T) {
	a, b := newTally(3), newTally(3)
	for _, l := range []line{
		{typ: counterType, name: 0, value: 1},
		{typ: counterType, name: 0, value: 1},
		{typ: timerType, name: 1, value: 500},
		{typ: setType, name: 2},
		{typ: gaugeType, name: 0, value: 7},
		{typ: gaugeType, name: 0, value: 9},
	} {
		a.add(l, 4)
	}
	b.add(line{typ: gaugeType, name: 1, value: 3}, 4)
	b.add(line{typ: counterType, name: 2, value: 1}, 4)
	a.merge(b)
	want := &tally{
		lines:    [numTypes]uint64{counterType: 3, gaugeType: 3, timerType: 1, setType: 1},
		counters: []float64{8, 0, 4},
		timers:   []float64{0, 4, 0},
		sets:     []float64{0, 0, 1},
		gauges:   []gaugeValue{{value: 9, set: true}, {value: 3, set: true}, {}},
	}
	if !equalTally(a, want) {
		t.Errorf("tally %+v, want %+v", a, want)
	}

	c := newTally(3)
	c.add(line{typ: gaugeType, name: 0, value: 1}, 1)
	a.merge(c)
	if a.conflict != 1 {
		t.Errorf("%d conflicts after merging a gauge both set, want 1", a.conflict)
	}
}

func equalTally(a, b *tally) bool {
	return a.lines == b.lines && slices.Equal(a.counters, b.counters) && slices.Equal(a.timers, b.timers) &&
		slices.Equal(a.sets, b.sets) && slices.Equal(a.gauges, b.gauges) && a.conflict == b.conflict
}

// BenchmarkAppendLine measures the generator: the tool must outrun the daemon.
func BenchmarkAppendLine(b *testing.B) {
	g, err := newGenerator(genConfig{prefix: "load.r123456", names: 100, tags: 2, rate: 1, conns: 1, mix: mix{1, 1, 1, 1}}, 0)
	if err != nil {
		b.Fatal(err)
	}
	tl := newTally(100)
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%10 == 0 {
			buf = buf[:0]
		}
		var l line
		buf, l = g.appendLine(buf)
		tl.add(l, 1)
	}
	if !bytes.Contains(buf, []byte("load.r123456.")) {
		b.Fatal("no line made: " + strconv.Quote(string(buf)))
	}
}
