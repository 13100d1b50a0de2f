package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	tests := []struct {
		file    string
		want    time.Duration
		wantErr bool
	}{
		{file: "proc_stat", want: 1234*10*time.Millisecond + 567*10*time.Millisecond},
		{file: "proc_stat_odd_name", want: 30 * time.Millisecond}, // a name with spaces and parentheses
		{file: "proc_stat_short", wantErr: true},
		{file: "proc_stat_noname", wantErr: true},
	}
	for _, tt := range tests {
		data, err := os.ReadFile(filepath.Join("testdata", tt.file))
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseProcStat(data)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("%s: %v, %v; want %v, error %t", tt.file, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseVmHWM(t *testing.T) {
	tests := []struct {
		file    string
		want    uint64
		wantErr bool
	}{
		{file: "proc_status", want: 49152 << 10},
		{file: "proc_status_nohwm", wantErr: true},
		{file: "proc_status_badhwm", wantErr: true},
	}
	for _, tt := range tests {
		data, err := os.ReadFile(filepath.Join("testdata", tt.file))
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseVmHWM(data)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("%s: %v, %v; want %v, error %t", tt.file, got, err, tt.want, tt.wantErr)
		}
	}
}

// TestProcSelf reads this process's own /proc files, so the parsers are checked
// against the real format too.
func TestProcSelf(t *testing.T) {
	stat, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Skip("no /proc here")
	}
	if _, err := parseProcStat(stat); err != nil {
		t.Errorf("/proc/self/stat: %v", err)
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	if rss, err := parseVmHWM(status); err != nil || rss == 0 {
		t.Errorf("/proc/self/status: %d, %v", rss, err)
	}
}

func TestDaemonEnv(t *testing.T) {
	env := []string{
		"PATH=/bin", "LIBRATOD_LISTEN_UDP=0.0.0.0:1", "LIBRATO_TOKEN=real", "LIBRATOD_LIBRATO_TOKEN=real",
		"LIBRATOD_LIBRATO_MAX_ATTEMPTS=9", "LIBRATOD_AGGREGATE_SHARDS=8", "LIBRATOD_TAGS=a=b", "HOME=/root",
	}
	want := []string{"PATH=/bin", "LIBRATOD_LIBRATO_MAX_ATTEMPTS=9", "LIBRATOD_AGGREGATE_SHARDS=8", "HOME=/root"}
	if got := daemonEnv(env); !slices.Equal(got, want) {
		t.Errorf("daemonEnv = %q, want %q", got, want)
	}
}

func TestDaemonConfigTOML(t *testing.T) {
	tests := []struct {
		cfg  daemonConfig
		want []string
		not  []string
	}{
		{
			cfg: daemonConfig{udp: "127.0.0.1:1", tcp: "127.0.0.1:2", librato: "http://127.0.0.1:3", period: 2 * time.Second},
			want: []string{`udp = "127.0.0.1:1"`, `tcp = "127.0.0.1:2"`, `period = "2s"`, `url = "http://127.0.0.1:3"`,
				`api = "tagged"`, "percentiles = []", `listen = ""`},
			not: []string{"udp_readers", "max_series"},
		},
		{cfg: daemonConfig{udpReaders: 3, period: time.Second}, want: []string{"udp_readers = 3"}},
		{
			cfg:  daemonConfig{otlp: "http://127.0.0.1:4", librato: "http://127.0.0.1:3", period: time.Second},
			want: []string{"[otlp]", `endpoint = "http://127.0.0.1:4"`, `temporality = "delta"`, "enabled = false"},
			not:  []string{"url =", "api ="},
		},
		{cfg: daemonConfig{maxSeries: 2000, period: time.Second}, want: []string{"max_series = 2000"}},
	}
	for _, tt := range tests {
		got := tt.cfg.toml()
		for _, w := range tt.want {
			if !strings.Contains(got, w) {
				t.Errorf("config lacks %q:\n%s", w, got)
			}
		}
		for _, n := range tt.not {
			if strings.Contains(got, n) {
				t.Errorf("config holds %q:\n%s", n, got)
			}
		}
	}
}

func TestTailBuffer(t *testing.T) {
	b := &tailBuffer{max: 8}
	for _, s := range []string{"abc", "defgh", "ijk"} {
		if n, err := b.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	if got := b.String(); got != "defghijk" {
		t.Errorf("tail %q, want %q", got, "defghijk")
	}
}
