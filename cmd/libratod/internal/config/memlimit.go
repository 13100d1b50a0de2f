package config

// The memory limit derived from the configuration (see
// Config.MemoryLimitFor). A live series takes about 136 bytes of heap (its
// Series, its key and its map entry); a period's series are alive until
// the flush that follows it has sent them: a flush overlapping the next
// period peaks at about 286 bytes a series (aggregator's
// BenchmarkFlushOverlap; 190 were the snapshot released in 4 parts as the
// outputs read it, aggregator.Config.ReleaseParts, which costs CPU on
// every line and is off).
// A measurement waiting in an output's backlog takes about 240 bytes
// (three tags; a heap profile of the daemon).
const (
	// MemoryPerSeries is the memory limit's bytes per series of
	// max_series: a period's series and some room. A flush of 1M series
	// overlapping the next period holds more (266-284 MB of live heap,
	// floating garbage and the flush's own memory included): more than
	// this and MemoryBase allow, so the derived limit counts on the
	// backlogs' share for room, and a full backlog at that moment makes
	// the collector work hard.
	MemoryPerSeries ByteSize = 210
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
