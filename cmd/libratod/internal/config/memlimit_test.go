package config

import (
	"slices"
	"testing"
)

// TestMemoryLimitFor checks the memory limit derived from max_series and
// the backlogs of the outputs that are on, clamped, and one configured.
func TestMemoryLimitFor(t *testing.T) {
	const perSeries, perQueued = 160, 240
	for _, tc := range []struct {
		name                 string
		maxSeries            int
		libBacklog, otBacklg int // -1: the output off
		limit                ByteSize
		want                 ByteSize
	}{
		{"default", 1_000_000, 1_000_000, -1, 0, 32*MiB + perSeries*1_000_000 + perQueued*1_000_000},
		{"no backlog", 1_000_000, 0, -1, 0, 32*MiB + perSeries*1_000_000},
		{"both outputs", 300_000, 1000, 5000, 0, 32*MiB + perSeries*300_000 + perQueued*6000},
		{"librato off", 300_000, 1000, 5000, 0, 32*MiB + perSeries*300_000 + perQueued*5000},
		{"clamped up", 1000, 1000, -1, 0, MinMemoryLimit},
		{"clamped down", maxCount, maxCount, maxCount, 0, MaxMemoryLimit},
		{"no bound, no limit", 0, 1_000_000, -1, 0, 0},
		{"configured", 1_000_000, 1_000_000, -1, 100 * MiB, 100 * MiB},
		{"configured, no bound", 0, 1_000_000, -1, 2 * GiB, 2 * GiB},
		{"configured above", 1_000_000, 0, -1, 4 * GiB, 4 * GiB},
	} {
		c := Default()
		c.Aggregate.MaxSeries, c.Aggregate.MemoryLimit = tc.maxSeries, tc.limit
		c.Librato.Backlog, c.OTLP.Backlog = tc.libBacklog, tc.otBacklg
		if tc.name == "librato off" {
			c.Librato.Enabled = false
		}
		if tc.otBacklg >= 0 {
			c.OTLP.Endpoint = "https://otel.example.com"
		}
		if got := c.MemoryLimitFor(); got != tc.want {
			t.Errorf("%s: limit %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestMemoryLimitValidated checks that a configured memory limit outside
// [MinMemoryLimit, MaxMemoryLimit] is refused, and 0 (derived) is not.
func TestMemoryLimitValidated(t *testing.T) {
	for _, tc := range []struct {
		limit ByteSize
		ok    bool
	}{
		{0, true}, {MinMemoryLimit, true}, {GiB, true}, {MaxMemoryLimit, true},
		{MinMemoryLimit - 1, false}, {MiB, false}, {MaxMemoryLimit + 1, false},
	} {
		c := Default()
		c.Librato.Token = "token"
		c.Aggregate.MemoryLimit = tc.limit
		bad := slices.Contains(keys(fieldErrors(t, c.Validate(false))), "aggregate.memory_limit")
		if bad == tc.ok {
			t.Errorf("memory_limit %d: refused %v, want %v", tc.limit, bad, !tc.ok)
		}
	}
}
