package config

import (
	"slices"
	"testing"
)

// TestMemoryLimitFor checks the memory limit derived from max_series,
// clamped, and one configured.
func TestMemoryLimitFor(t *testing.T) {
	for _, tc := range []struct {
		maxSeries int
		limit     ByteSize
		want      ByteSize
	}{
		{maxSeries: 1_000_000, want: 32*MiB + 210_000_000}, // the default: 232 MiB
		{maxSeries: 200_000, want: 32*MiB + 42_000_000},
		{maxSeries: 1000, want: MinMemoryLimit}, // clamped up
		{maxSeries: maxCount, want: 32*MiB + 210*maxCount},
		{maxSeries: 0, want: 0},                                        // no bound, no limit
		{maxSeries: 1_000_000, limit: 100 * MiB, want: 100 * MiB},      // configured
		{maxSeries: 0, limit: 2 * GiB, want: 2 * GiB},                  // configured
		{maxSeries: 1_000_000, limit: 4 * GiB, want: 4 * GiB},          // configured, above
		{maxSeries: 1000, limit: MinMemoryLimit, want: MinMemoryLimit}, // configured
	} {
		a := Default().Aggregate
		a.MaxSeries, a.MemoryLimit = tc.maxSeries, tc.limit
		if got := a.MemoryLimitFor(); got != tc.want {
			t.Errorf("max_series %d, memory_limit %d: limit %d, want %d", tc.maxSeries, tc.limit, got, tc.want)
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
