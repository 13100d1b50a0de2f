package config

// The memory limit derived from aggregate.max_series (see
// Aggregate.MemoryLimitFor). A live series takes about 140 bytes of heap
// (its Series, its key and its map entry); a period's series are alive
// until the flush that follows it has sent them, and a flush releases
// them as it goes (aggregator.Snapshot.Drain), so at the flush of a full
// period about half of it is alive beside the next period's series.
const (
	// MemoryPerSeries is the memory limit's bytes per series of
	// max_series: 140 bytes, half again for the period being flushed.
	MemoryPerSeries ByteSize = 210
	// MemoryBase is the memory limit's bytes for all but the series:
	// the runtime, the sockets' buffers, the key caches, a flush's
	// requests.
	MemoryBase ByteSize = 32 * MiB
	// MinMemoryLimit and MaxMemoryLimit bound the memory limit, derived
	// or configured.
	MinMemoryLimit ByteSize = 64 * MiB
	MaxMemoryLimit ByteSize = 1024 * GiB
)

// MemoryLimitFor returns the memory limit the daemon sets: MemoryLimit
// when set, else MemoryBase plus MemoryPerSeries for each of MaxSeries,
// within [MinMemoryLimit, MaxMemoryLimit]; 0 (no limit) when neither is
// set.
func (a *Aggregate) MemoryLimitFor() ByteSize {
	if a.MemoryLimit != 0 {
		return a.MemoryLimit
	}
	if a.MaxSeries <= 0 {
		return 0
	}
	return min(max(MemoryBase+MemoryPerSeries*ByteSize(a.MaxSeries), MinMemoryLimit), MaxMemoryLimit)
}
