package main

import (
	"testing"

	"github.com/libratod/libratod/cmd/libratod/internal/config"
)

// TestMemoryLimit checks the limit the daemon sets: derived from
// max_series, or configured, and none when GOMEMLIMIT is set (the runtime
// honours it) or nothing bounds the series.
func TestMemoryLimit(t *testing.T) {
	for _, tc := range []struct {
		name       string
		maxSeries  int
		limit      config.ByteSize
		gomemlimit string
		want       int64
		from       string
	}{
		{"default", 1_000_000, 0, "", int64(config.MemoryBase) + 1_000_000*int64(config.MemoryPerSeries+config.MemoryPerQueued), "aggregate.max_series"},
		{"configured", 1_000_000, 300 * config.MiB, "", 300 << 20, "aggregate.memory_limit"},
		{"GOMEMLIMIT", 1_000_000, 300 * config.MiB, "200MiB", 0, "GOMEMLIMIT"},
		{"GOMEMLIMIT off", 1_000_000, 0, "off", 0, "GOMEMLIMIT"},
		{"no bound", 0, 0, "", 0, "none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Aggregate.MaxSeries, cfg.Aggregate.MemoryLimit = tc.maxSeries, tc.limit
			env := map[string]string{"GOMEMLIMIT": tc.gomemlimit}
			got, from := memoryLimit(&cfg, func(k string) string { return env[k] })
			if got != tc.want || from != tc.from {
				t.Errorf("memoryLimit = %d from %s, want %d from %s", got, from, tc.want, tc.from)
			}
		})
	}
}

func TestGCPercent(t *testing.T) {
	for _, tc := range []struct {
		gogc string
		want int
		from string
	}{
		{"", config.GCPercent, "default"},
		{"100", 0, "GOGC"},
		{"off", 0, "GOGC"},
	} {
		env := map[string]string{"GOGC": tc.gogc}
		got, from := gcPercent(func(k string) string { return env[k] })
		if got != tc.want || from != tc.from {
			t.Errorf("GOGC=%q: gcPercent = %d from %s, want %d from %s", tc.gogc, got, from, tc.want, tc.from)
		}
	}
}
