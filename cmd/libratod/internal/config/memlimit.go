package config

// The memory limit derived from the configuration (see
// Config.MemoryLimitFor). A series takes about 90 bytes of heap while it
// gets lines (its entry, its key and its place in the index, kept from
// one period to the next); a flush of a million series overlapping the
// next period peaks at about 111 bytes a series (aggregator's
// BenchmarkFlushOverlap: the period's values, copied out, until the
// outputs have read them). A measurement waiting in an output's backlog
// takes about 240 bytes (three tags; a heap profile of the daemon).
const (
	// MemoryPerSeries is the memory limit's bytes per series of
	// max_series: a flush overlapping the next period, and some room.
	MemoryPerSeries ByteSize = 160
	// MemoryPerQueued is the memory limit's bytes per measurement of an
	// output's backlog.
	MemoryPerQueued ByteSize = 240
	// MemoryBase is the memory limit's bytes for all the rest: the
	// runtime, the sockets' buffers, the key caches, a flush's requests.
	MemoryBase ByteSize = 32 * MiB
	// MinMemoryLimit and MaxMemoryLimit bound the memory limit, derived
	// or configured.
	MinMemoryLimit ByteSize = 64 * MiB
	MaxMemoryLimit ByteSize = 1024 * GiB
)

// MemoryLimitFor returns the memory limit the daemon sets: MemoryLimit
// when set; else, when MaxSeries bounds the series, MemoryBase plus
// MemoryPerSeries for each of MaxSeries and MemoryPerQueued for each
// measurement the backlogs of the outputs that are on may hold, within
// [MinMemoryLimit, MaxMemoryLimit]; else 0 (no limit). A limit below what
// is live would make the garbage collector run without end (the runtime
// caps it at about half the CPU), so the derived one covers the backlogs.
func (c *Config) MemoryLimitFor() ByteSize {
	a := &c.Aggregate
	if a.MemoryLimit != 0 {
		return a.MemoryLimit
	}
	if a.MaxSeries <= 0 {
		return 0
	}
	queued := 0
	if c.Librato.Enabled {
		queued += c.Librato.Backlog
	}
	if c.OTLP.On() {
		queued += c.OTLP.Backlog
	}
	l := MemoryBase + MemoryPerSeries*ByteSize(a.MaxSeries) + MemoryPerQueued*ByteSize(queued)
	return min(max(l, MinMemoryLimit), MaxMemoryLimit)
}

// GCPercent is the garbage collector's target the daemon sets unless GOGC
// says otherwise: between collections the heap may grow to 1.5 times
// what is live, not twice. The series' entries, keys and index hold no
// pointers for the collector to follow, so a collection costs little;
// a million series flushed while the next period fills peaked at about
// 230 MiB of RSS with it and 300 without, on a build before the index
// and the cache of entries (README, issue 18).
const GCPercent = 50
