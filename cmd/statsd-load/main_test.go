package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libratod/libratod/internal/otelcoltest"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string // "" for none
		check   func(runConfig, bool, bool) bool
	}{
		{name: "defaults", check: func(c runConfig, findMax, allowLoss bool) bool {
			return c.proto == "udp" && c.gen.conns == 1 && c.gen.names == 100 && c.gen.rate == 1 && c.gen.mix == mix{1, 1, 1, 1} &&
				c.settle == 3*time.Second && c.seed != 0 && c.log == nil && c.setLimit == 10000 && !findMax && !allowLoss
		}},
		{
			name: "everything",
			args: []string{"-daemon", "/bin/libratod", "-types", "c=8,ms=2", "-names", "10", "-tags", "0", "-rate", "0.1",
				"-lines-per-packet", "25", "-proto", "tcp", "-conns", "4", "-count", "1000", "-pps", "5000", "-allow-loss",
				"-faults", "503:0.2,drop:0.1", "-down", "5s", "-period", "2s", "-seed", "7", "-prefix", "soak", "-find-max"},
			check: func(c runConfig, findMax, allowLoss bool) bool {
				return c.daemon == "/bin/libratod" && c.gen.mix == mix{counterType: 8, timerType: 2} && c.gen.names == 10 &&
					c.gen.rate == 0.1 && c.linesPerPacket == 25 && c.proto == "tcp" && c.gen.conns == 4 && c.count == 1000 &&
					c.pps == 5000 && len(c.faults) == 2 && c.down == 5*time.Second && c.period == 2*time.Second &&
					c.seed == 7 && c.gen.prefix == "soak" && findMax && allowLoss
			},
		},
		{name: "bad proto", args: []string{"-proto", "sctp"}, wantErr: "-proto"},
		{name: "bad rate", args: []string{"-rate", "0.3"}, wantErr: "-rate"},
		{name: "bad types", args: []string{"-types", "c,x"}, wantErr: "-types"},
		{name: "bad faults", args: []string{"-faults", "503"}, wantErr: "-faults"},
		{name: "fractional period", args: []string{"-period", "1500ms"}, wantErr: "-period"},
		{name: "gauges need names", args: []string{"-names", "2", "-conns", "3"}, wantErr: "-names 2 with -conns 3"},
		{name: "no gauges, few names", args: []string{"-names", "2", "-conns", "3", "-types", "c"}},
		{name: "find-max without daemon", args: []string{"-find-max"}, wantErr: "-find-max"},
		{name: "bad prefix", args: []string{"-prefix", "a:b"}, wantErr: "-prefix"},
		{name: "bad set limit", args: []string{"-set-limit", "0"}, wantErr: "-set-limit"},
		{name: "several problems at once", args: []string{"-proto", "x", "-tags", "99"}, wantErr: "-tags 99"},
		{name: "stray argument", args: []string{"extra"}, wantErr: "unexpected"},
		{name: "floor and cardinality", args: []string{"-daemon", "/bin/libratod", "-floor", "3", "-cardinality"},
			check: func(c runConfig, _, _ bool) bool { return c.floorRounds == 3 && c.cardinality }},
		{name: "floor without daemon", args: []string{"-floor", "1"}, wantErr: "-floor needs -daemon"},
		{name: "floor with find-max", args: []string{"-daemon", "x", "-floor", "1", "-find-max"}, wantErr: "-floor needs"},
		{name: "floor rounds", args: []string{"-daemon", "x", "-floor", "-1"}, wantErr: "-floor -1"},
		{name: "cardinality without daemon", args: []string{"-cardinality"}, wantErr: "-cardinality needs -daemon"},
		{name: "otlp", args: []string{"-daemon", "x", "-output", "otlp"},
			check: func(c runConfig, _, _ bool) bool { return c.otlp && c.output() == "otlp" }},
		{name: "librato by default", check: func(c runConfig, _, _ bool) bool { return !c.otlp && c.output() == "librato" }},
		{name: "bad output", args: []string{"-output", "kafka"}, wantErr: "-output"},
		{name: "collector", args: []string{"-collector", "/bin/otelcol", "-types", "c,g,ms", "-find-max"},
			check: func(c runConfig, findMax, _ bool) bool {
				return c.collector == "/bin/otelcol" && c.output() == "collector" && findMax
			}},
		{name: "collector and daemon", args: []string{"-collector", "x", "-daemon", "y", "-types", "c"}, wantErr: "-collector replaces"},
		{name: "collector and sets", args: []string{"-collector", "x"}, wantErr: "no sets"},
		{name: "collector over tcp", args: []string{"-collector", "x", "-types", "c", "-proto", "tcp"}, wantErr: "UDP only"},
		{name: "collector with faults", args: []string{"-collector", "x", "-types", "c", "-faults", "503:0.1"}, wantErr: "no -faults"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			cfg, findMax, allowLoss, err := parseFlags(tt.args, &stderr)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("error %v", err)
				}
				if tt.check != nil && !tt.check(cfg, findMax, allowLoss) {
					t.Errorf("config %+v, find-max %t, allow-loss %t", cfg, findMax, allowLoss)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %v, want one naming %q", err, tt.wantErr)
			}
		})
	}
}

func TestRealMainUsage(t *testing.T) {
	tests := []struct {
		args     []string
		wantCode int
		wantErr  string
	}{
		{args: []string{"-h"}, wantCode: exitOK, wantErr: "-lines-per-packet"},
		{args: []string{"-proto", "x"}, wantCode: exitUsage, wantErr: "-proto"},
		{args: []string{"-nosuchflag"}, wantCode: exitUsage, wantErr: "nosuchflag"},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		if code := realMain(context.Background(), tt.args, &stdout, &stderr); code != tt.wantCode {
			t.Errorf("%q: exit %d, want %d", tt.args, code, tt.wantCode)
		}
		if !strings.Contains(stderr.String(), tt.wantErr) {
			t.Errorf("%q: stderr %q lacks %q", tt.args, stderr.String(), tt.wantErr)
		}
	}
}

// TestAgainstDaemon builds libratod and loads it for two seconds over UDP and
// over TCP, at a modest rate, with some Librato answers delayed: everything
// sent must arrive exactly once.
func TestAgainstDaemon(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs libratod")
	}
	bin := filepath.Join(t.TempDir(), "libratod")
	if out, err := exec.Command("go", "build", "-o", bin, "../libratod").CombinedOutput(); err != nil {
		t.Fatalf("building libratod: %v\n%s", err, out)
	}
	tests := []struct {
		proto  string
		conns  int
		otlp   bool
		faults []fault
	}{
		{proto: "udp", conns: 2},
		{proto: "tcp", conns: 2},
		// OTLP: some requests refused with 429 (retried, with Retry-After
		// or backoff) beside the delays.
		{proto: "udp", conns: 2, otlp: true, faults: []fault{{kind: faultStatus, status: 429, p: 0.5}}},
	}
	for _, tt := range tests {
		name := tt.proto
		if tt.otlp {
			name += "-otlp"
		}
		t.Run(name, func(t *testing.T) {
			cfg := runConfig{
				daemon: bin, libratoListen: "127.0.0.1:0", period: time.Second, otlp: tt.otlp,
				gen:   genConfig{prefix: freshPrefix(), names: 20, tags: 2, rate: 0.5, conns: tt.conns, mix: mix{2, 1, 1, 1}},
				proto: tt.proto, linesPerPacket: 10, duration: 2 * time.Second, pps: 20000, setLimit: 10000,
				faults: append(tt.faults[:len(tt.faults):len(tt.faults)], fault{kind: faultDelay, delay: 50 * time.Millisecond, p: 0.3}),
				seed:   1,
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			res, err := run(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Log(res.summary())
			sent, delivered := res.cmp.units()
			if !res.clean() || res.send.lines == 0 || sent != delivered || res.cmp.gauges != cfg.gen.names {
				t.Errorf("not everything arrived exactly once: %s", res.summary())
			}
			if res.daemon == nil || res.daemon.peakRSS == 0 || res.fake.Accepted == 0 {
				t.Errorf("daemon %+v, %d requests accepted; want measurements of both", res.daemon, res.fake.Accepted)
			}
			if len(tt.faults) > 0 && res.fake.Status == 0 {
				t.Errorf("no status fault was injected: %s", res.summary())
			}
			if tt.proto == "udp" && res.kernelDrops != 0 {
				t.Errorf("%d kernel drops at a modest rate", res.kernelDrops)
			}
		})
	}
	testFloorAndCardinality(t, bin)
}

// TestAgainstCollector loads the OpenTelemetry Collector's StatsD receiver
// (libratod-otelcol) for two seconds at a low rate: every counter unit,
// timer value and gauge must arrive once, through its file exporter.
func TestAgainstCollector(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the collector")
	}
	bin := collectorBinary(t)
	cfg := runConfig{
		collector: bin, libratoListen: "127.0.0.1:0", period: time.Second,
		gen: genConfig{prefix: freshPrefix(), names: 20, tags: 2, rate: 1, conns: 2, mix: mix{2, 1, 1, 0}},
		// A low rate in few datagrams: the receiver drops datagrams on a busy
		// machine (the whole test suite running) well below libratod's rates.
		proto: "udp", linesPerPacket: 50, duration: 2 * time.Second, pps: 5000, setLimit: 10000, seed: 1,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(res.summary())
	sent, delivered := res.cmp.units()
	if !res.clean() || res.send.lines == 0 || sent != delivered || res.cmp.gauges != cfg.gen.names ||
		res.cmp.delivered[timerType] == 0 {
		t.Errorf("not everything arrived exactly once: %s", res.summary())
	}
	if res.daemon == nil || res.daemon.cpu == 0 || res.fake.Accepted == 0 {
		t.Errorf("collector %+v, %d exports; want measurements of both", res.daemon, res.fake.Accepted)
	}
	if !strings.Contains(res.summary(), "collector cpu=") {
		t.Errorf("summary does not name the collector: %s", res.summary())
	}
}

// collectorBinary returns the path of libratod-otelcol, as otelcoltest
// finds it, or skips the test (fails it under LIBRATOD_REQUIRE_TOOLS=1, as
// scripts/test runs).
func collectorBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv(otelcoltest.EnvBinary); p != "" {
		return p
	}
	p, err := exec.LookPath(otelcoltest.Binary)
	if err == nil {
		return p
	}
	msg := otelcoltest.Binary + " is not on PATH: run `export PATH=\"$(scripts/tools otelcol):$PATH\"` first"
	if os.Getenv("LIBRATOD_REQUIRE_TOOLS") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}
