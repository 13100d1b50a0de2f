package main

import (
	"github.com/libratod/libratod/cmd/libratod/internal/config"
)

// memoryLimit returns the soft memory limit the daemon sets for the Go
// runtime (see config.Config.MemoryLimitFor) and where it comes from:
// the configuration's aggregate.memory_limit or aggregate.max_series. It
// returns 0 when none is to be set: when GOMEMLIMIT is set in the
// environment (the runtime has read it, and it wins), or when neither key
// bounds anything.
func memoryLimit(cfg *config.Config, getenv func(string) string) (limit int64, from string) {
	if getenv("GOMEMLIMIT") != "" {
		return 0, "GOMEMLIMIT"
	}
	from = "aggregate.max_series"
	if cfg.Aggregate.MemoryLimit != 0 {
		from = "aggregate.memory_limit"
	}
	if l := cfg.MemoryLimitFor(); l > 0 {
		return int64(l), from
	}
	return 0, "none"
}

// gcPercent returns the garbage collector's target the daemon sets and
// where it comes from; 0 when GOGC is set in the environment (the
// runtime has read it, and it wins).
func gcPercent(getenv func(string) string) (percent int, from string) {
	if getenv("GOGC") != "" {
		return 0, "GOGC"
	}
	return config.GCPercent, "default"
}
