package main

import (
	"bytes"
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/libratod/libratod/internal/fakelibrato"
	"github.com/libratod/libratod/listener"
)

// TestMain lets the test binary be the floor process: startFloor runs this
// program (os.Executable) with floorCommand, as the tool runs itself.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == floorCommand {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := realMain(ctx, os.Args[1:], os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

func TestLineCounter(t *testing.T) {
	var c lineCounter
	c.Handle(listener.UDP, []byte("a:1|c\nb:1|c\nc:1|c"))
	c.Handle(listener.TCP, []byte("d:1|c"))
	if p, l, b := c.packets.Load(), c.lines.Load(), c.bytes.Load(); p != 2 || l != 4 || b != 22 {
		t.Errorf("packets %d lines %d bytes %d, want 2, 4, 22", p, l, b)
	}
}

func TestParseFloorReport(t *testing.T) {
	lines, b, err := parseFloorReport("some log\nfloor: packets=3 lines=30 bytes=600\n")
	if err != nil || lines != 30 || b != 600 {
		t.Errorf("parseFloorReport = %d, %d, %v; want 30, 600", lines, b, err)
	}
	for _, bad := range []string{"", "floor: packets=x lines=1 bytes=2", "nothing here"} {
		if _, _, err := parseFloorReport(bad); err == nil {
			t.Errorf("parseFloorReport(%q) took it", bad)
		}
	}
}

func TestServeFloorUsage(t *testing.T) {
	for _, args := range [][]string{{}, {"-udp", "127.0.0.1:0"}, {"-udp", "a", "-tcp", "b", "extra"}, {"-nosuch"}} {
		var stdout, stderr bytes.Buffer
		if code := realMain(context.Background(), append([]string{floorCommand}, args...), &stdout, &stderr); code != exitUsage {
			t.Errorf("%q: exit %d, want %d", args, code, exitUsage)
		}
	}
}

// TestRunFloor starts the floor process (this test binary) and sends it a
// few thousand lines over UDP and TCP: it must count every one, and its CPU
// and memory must be read.
func TestRunFloor(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	for _, proto := range []string{"udp", "tcp"} {
		t.Run(proto, func(t *testing.T) {
			cfg := runConfig{
				gen:   genConfig{prefix: "load.f", names: 50, tags: 2, rate: 1, conns: 2, mix: mix{counterType: 1}},
				proto: proto, linesPerPacket: 20, count: 4000, pps: 40000, readers: 2,
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			f, err := runFloor(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Log(f.summary())
			if f.send.lines != 4000 || f.received != 4000 || f.lost() != 0 {
				t.Errorf("sent %d, received %d lines; want 4000 both", f.send.lines, f.received)
			}
			if f.cpu < 0 || f.peakRSS == 0 {
				t.Errorf("cpu %v, peak rss %d: want both measured", f.cpu, f.peakRSS)
			}
		})
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		xs   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}}
	for _, tt := range tests {
		if got := median(tt.xs); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.xs, got, tt.want)
		}
	}
}

func TestFloorSummary(t *testing.T) {
	round := func(floorCPU, daemonCPU time.Duration) floorRound {
		return floorRound{
			floor:  &floorResult{send: sendStats{lines: 1_000_000}, received: 1_000_000, cpu: floorCPU},
			daemon: &result{send: sendStats{lines: 1_000_000}, daemon: &daemonStats{cpu: daemonCPU}},
		}
	}
	rounds := []floorRound{round(time.Second, 2*time.Second), round(2*time.Second, 3*time.Second), round(time.Second, 4*time.Second)}
	if got := rounds[1].ratio(); got != 1.5 {
		t.Errorf("ratio %v, want 1.5", got)
	}
	want := "floor-compare: 3 rounds, medians: floor cpu-s=1.00 cpu-ns/line=1000 daemon cpu-s=3.00 cpu-ns/line=3000 ratio=2.00"
	if got := floorSummary(rounds); got != want {
		t.Errorf("floorSummary:\n got %q\nwant %q", got, want)
	}
	if got := (floorRound{floor: &floorResult{}, daemon: &result{}}).ratio(); got != 0 {
		t.Errorf("ratio without measurements %v, want 0", got)
	}
	f := &floorResult{send: sendStats{lines: 100}, received: 90, elapsed: time.Second, cpu: 10 * time.Millisecond, peakRSS: 8 << 20}
	s := f.summary()
	for _, w := range []string{"sent=100 lines", "received=90 lost=10", "cpu-s=0.01 cpu-ns/line=100000", "peak_rss=8MiB"} {
		if !strings.Contains(s, w) {
			t.Errorf("summary %q lacks %q", s, w)
		}
	}
}

func TestUntilBoundary(t *testing.T) {
	// A multiple of 10s in unix seconds.
	base := time.Date(2031, 5, 6, 7, 8, 0, 0, time.UTC)
	tests := []struct {
		now    time.Time
		period time.Duration
		want   time.Duration
	}{
		{base, 10 * time.Second, 10 * time.Second},
		{base.Add(3500 * time.Millisecond), 10 * time.Second, 6500 * time.Millisecond},
		{base.Add(59 * time.Second), time.Minute, time.Second}, // to 7:09
		{base.Add(999 * time.Millisecond), time.Second, time.Millisecond},
	}
	for _, tt := range tests {
		if got := untilBoundary(tt.now, tt.period); got != tt.want {
			t.Errorf("untilBoundary(%v, %v) = %v, want %v", tt.now, tt.period, got, tt.want)
		}
	}
}

// TestMaxPeriodSeries checks the count of the series of the fullest period:
// by time, the tool's names only, a point delivered twice counted once.
func TestMaxPeriodSeries(t *testing.T) {
	rc := newReceived("load")
	for _, body := range []string{
		`{"time":1700000000,"measurements":[{"name":"load.c.0","value":1},{"name":"load.c.1","value":1}]}`,
		`{"time":1700000010,"measurements":[{"name":"load.c.0","value":1},{"name":"load.c.1","value":1},
			{"name":"load.c.1","value":1,"tags":{"t0":"v1"}},{"name":"other","value":1}]}`,
		// A resent point.
		`{"time":1700000010,"measurements":[{"name":"load.c.0","value":1}]}`,
	} {
		p, err := decodePayload(&fakelibrato.Request{Body: []byte(body)})
		if err != nil {
			t.Fatal(err)
		}
		rc.add(p)
	}
	if got := rc.maxPeriodSeries(); got != 3 {
		t.Errorf("maxPeriodSeries = %d, want 3", got)
	}
	if got := rc.clone().maxPeriodSeries(); got != 3 {
		t.Errorf("clone's maxPeriodSeries = %d, want 3", got)
	}
}

func TestCardinalitySummary(t *testing.T) {
	r := &result{
		proto: "udp", conns: 1, elapsed: 2 * time.Second, send: sendStats{lines: 1000},
		daemon: &daemonStats{cpu: time.Second, peakRSS: 120 << 20, idleRSS: 20 << 20},
		series: 200_000, kernelDrops: -1,
	}
	s := r.summary()
	if want := "idle_rss=20MiB series=200000 rss/series=524B"; !strings.Contains(s, want) {
		t.Errorf("summary %q lacks %q", s, want)
	}
	if strings.Contains(s, "outlasted") {
		t.Errorf("summary %q says the sending outlasted a period", s)
	}
	r.spread = true
	if s := r.summary(); !strings.Contains(s, "outlasted a period") {
		t.Errorf("summary %q does not say the sending outlasted a period", s)
	}
	r.daemon.idleRSS = 0
	if s := r.summary(); strings.Contains(s, "series=") {
		t.Errorf("summary %q reports series without -cardinality", s)
	}
}

func TestParseVmRSS(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "proc_status"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := parseStatusBytes(data, "VmRSS"); err != nil || got != 1840<<10 {
		t.Errorf("VmRSS %d, %v; want %d", got, err, 1840<<10)
	}
	if _, err := parseStatusBytes(data, "VmNoSuch"); err == nil {
		t.Error("a missing field was found")
	}
}

// testFloorAndCardinality runs, against the libratod built at bin, one round
// of -floor and one -cardinality run, small: the floor and the daemon must
// both get every line, and the cardinality run must count the series sent.
// TestAgainstDaemon calls it with the binary it built.
func testFloorAndCardinality(t *testing.T, bin string) {
	cfg := runConfig{
		daemon: bin, libratoListen: "127.0.0.1:0", period: time.Second,
		gen:   genConfig{prefix: freshPrefix(), names: 500, tags: 2, rate: 1, conns: 1, mix: mix{counterType: 1}},
		proto: "udp", linesPerPacket: 20, count: 500, pps: 20000, setLimit: 10000, seed: 1, readers: 2,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	t.Run("floor", func(t *testing.T) {
		c := cfg
		c.count = 5000
		var stdout, stderr bytes.Buffer
		if code := compareFloor(ctx, c, 1, false, &stdout, &stderr); code != exitOK {
			t.Fatalf("exit %d: %s%s", code, stdout.String(), stderr.String())
		}
		out := stdout.String()
		t.Log(out)
		for _, w := range []string{"round 1 floor: sent=5000 lines", "received=5000 lost=0", "round 1 daemon: sent=5000",
			"floor-compare: 1 rounds"} {
			if !strings.Contains(out, w) {
				t.Errorf("output lacks %q", w)
			}
		}
	})
	t.Run("cardinality", func(t *testing.T) {
		c := cfg
		c.cardinality = true
		c.period = 2 * time.Second
		res, err := run(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		t.Log(res.summary())
		if !res.clean() || res.series != 500 || res.daemon == nil || res.daemon.idleRSS == 0 || res.spread {
			t.Errorf("want every line delivered, 500 series in one period, the idle RSS measured: %s", res.summary())
		}
	})
}
