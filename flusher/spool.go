package flusher

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/libratod/libratod/spool"
)

// The spool, when Config.Spool is set, is the source of truth for what
// has not been delivered: every batch kept for later is appended to it
// (librato.MarshalBatch, the record's Kind is the API) and acknowledged
// when Librato takes it or it is given up on; a record a resend delivered
// in part is replaced by one of the rest (spoolRewrite). The memory
// backlog is a window on the spool's head: a record in memory is taken
// (in flight in the spool's terms); records the window has no room for
// wait on disk (backlog.disk) and are taken as it drains (refill). What
// is in flight or waiting when the process ends, however it ends, is read
// back by the next Open and resent.

// spoolState is the flusher's side of the spool.
type spoolState[B any] struct {
	// mu orders appends and takes, so that a record appended and at once
	// taken into memory is the one just appended; lock order: mu, then
	// the backlog's.
	mu  sync.Mutex
	buf []byte
	// lastFull is the spool's count of measurements dropped past its size
	// limit, when last reconciled.
	lastFull int64
	dirty    atomic.Bool // appended since the last Sync
	failing  atomic.Bool // appends fail: an episode logged once

	dropMu  sync.Mutex
	dropped map[string]int64 // records acknowledged undelivered, by reason
	// undecodable counts records whose payload could not be decoded.
	undecodable atomic.Int64
	// decode is the output's unmarshal; tests observe it.
	decode func([]byte) (B, error)
}

// openSpool accounts for what an earlier process left in the spool: what
// is past max_age is dropped, the rest counted as built and waiting.
func (l *lane[B]) openSpool(s *settings) {
	sp := l.sp
	l.spool.dropped = map[string]int64{}
	l.spool.decode = l.out.unmarshal
	old, err := sp.DropOlderThan(l.f.now().Add(-s.cfg.MaxAge)) // as drainOnce
	if err != nil {
		s.cfg.Logger.Warn().Err(err).Msg("spool: could not record the removal of requests past max_age; they may be read again at the next start")
	}
	if old.Measurements > 0 {
		l.built.Add(old.Measurements)
		l.dropped.Add(old.Measurements)
		l.m.dropped.WithLabelValues("too_old").Add(float64(old.Measurements))
	}
	st := sp.Stats()
	// What Open evicted past the size limit (spool_max_bytes lowered since
	// the records were written) was never counted: it is built and dropped
	// here, in measurements (each record's header holds their number).
	full := st.Dropped[spool.ReasonFull]
	l.spool.lastFull = full.Measurements
	if full.Measurements > 0 {
		l.built.Add(full.Measurements)
		l.dropped.Add(full.Measurements)
		l.m.dropped.WithLabelValues("spool_full").Add(float64(full.Measurements))
		s.cfg.Logger.Warn().Int64("requests", full.Records).Int64("measurements", full.Measurements).
			Msg("spool: past spool_max_bytes at start, the oldest undelivered measurements an earlier run left were dropped")
	}
	waiting := st.Pending.Measurements
	ev := s.cfg.Logger.Info()
	if st.CorruptRecords > 0 {
		ev = s.cfg.Logger.Warn().Int64("corrupt_records", st.CorruptRecords).Int64("corrupt_bytes", st.CorruptBytes)
	}
	if waiting > 0 || old.Records > 0 || st.CorruptRecords > 0 {
		ev.Int64("requests", st.Pending.Records).Int64("measurements", waiting).
			Int64("too_old_requests", old.Records).Int64("too_old_measurements", old.Measurements).
			Msg("spool: resending what an earlier run could not deliver")
	}
	if waiting == 0 {
		return
	}
	l.built.Add(waiting)
	t, _ := sp.Oldest()
	l.backlog.addDisk(int(waiting), t, 0)
}

// spoolKeep appends b to the spool and keeps it in memory too when the
// backlog has room and nothing waits on disk only. It reports false when
// the spool could not take b (the caller keeps it in memory alone).
func (l *lane[B]) spoolKeep(s *settings, b B, wait time.Duration) bool {
	st := &l.spool
	it := l.item(b)
	n := it.n
	st.mu.Lock()
	defer st.mu.Unlock()
	id, err := l.spoolAppend(s, b)
	if err != nil {
		return false
	}
	inMem, disk := l.backlog.memory()
	if disk == 0 && (inMem+n <= s.cfg.Backlog || inMem == 0) {
		es, err := l.sp.Take(1)
		if err == nil && len(es) == 1 && es[0].ID == id {
			it.id, it.spooled = id, true
			l.backlog.pushSpooled(it, wait)
			return true
		}
		for _, e := range es {
			l.sp.Release(e.ID) // not expected: leave it to refill
		}
	}
	l.backlog.addDisk(n, it.t, wait)
	return true
}

// spoolRelease gives an item evicted from memory back to the spool, to
// be taken again when the backlog has room.
func (l *lane[B]) spoolRelease(it item[B]) {
	l.spool.mu.Lock()
	defer l.spool.mu.Unlock()
	l.sp.Release(it.id)
	l.backlog.addDisk(it.n, it.t, 0)
}

// spoolDone acknowledges a spooled item that is finished with: delivered,
// or given up on for reason.
func (l *lane[B]) spoolDone(it item[B], reason string) {
	if !it.spooled {
		return
	}
	l.ack(it.id)
	if reason != "delivered" {
		l.spool.dropMu.Lock()
		l.spool.dropped[reason]++
		l.spool.dropMu.Unlock()
	}
}

// spoolRewrite replaces the record id of a spooled item of which only
// left is still to be sent (a split delivered or dropped the rest), so
// that neither a refill nor the next process sends the rest again: left
// is appended as a record of its own and synced, then id is
// acknowledged. A crash between the two brings back the old record whole
// beside the new one: duplicates, never a loss. It returns the item to put back in memory, or
// false when left now waits on disk only, behind the records waiting
// there. Should the spool not take left, id is acknowledged all the same
// and left kept in memory only, as spoolKeep does with a batch the spool
// cannot take.
func (l *lane[B]) spoolRewrite(s *settings, id spool.ID, left B) (item[B], bool) {
	st := &l.spool
	st.mu.Lock()
	defer st.mu.Unlock()
	nid, err := l.spoolAppend(s, left)
	if err == nil {
		// With NoSync the acknowledgement could reach the disk before
		// the new record: a power loss would then lose left.
		if serr := l.sp.Sync(); serr != nil && !errors.Is(serr, spool.ErrClosed) {
			if ok, _ := l.logs.allow("spool_sync", time.Minute); ok {
				s.cfg.Logger.Warn().Err(serr).Msg("spool: fsync failed; what it holds survives a crash of the process, maybe not of the machine (logged at most once a minute)")
			}
		}
	}
	l.ack(id)
	if err != nil {
		return l.item(left), true
	}
	if _, disk := l.backlog.memory(); disk == 0 {
		es, err := l.sp.Take(1)
		if err == nil && len(es) == 1 && es[0].ID == nid {
			it := l.item(left)
			it.id, it.spooled = nid, true
			return it, true
		}
		for _, e := range es {
			l.sp.Release(e.ID) // not expected: leave it to refill
		}
	}
	it := l.item(left)
	l.backlog.addDisk(it.n, it.t, 0)
	return item[B]{}, false
}

// spoolAppend appends b to the spool, logging the start and the end of an
// episode of failed writes. The caller holds spool.mu.
func (l *lane[B]) spoolAppend(s *settings, b B) (spool.ID, error) {
	st := &l.spool
	it := l.item(b)
	st.buf = l.out.marshal(st.buf[:0], b)
	id, err := l.sp.Append(spool.Record{Time: it.t, Measurements: it.n, Kind: l.out.kind(s), Payload: st.buf})
	if len(st.buf) > 1<<20 {
		st.buf = nil
	}
	if err != nil {
		if st.failing.CompareAndSwap(false, true) {
			s.cfg.Logger.Warn().Err(err).
				Msg("spool: cannot write; keeping undelivered measurements in memory only until it works again (logged once per episode)")
		}
		return id, fmt.Errorf("flusher: spool a %s batch of %d: %w", l.name(), it.n, err)
	}
	if st.failing.CompareAndSwap(true, false) {
		s.cfg.Logger.Info().Msg("spool: writing again")
	}
	st.dirty.Store(true)
	return id, nil
}

// ack acknowledges a record, logging (at most once a minute) a failure to
// record it.
func (l *lane[B]) ack(id spool.ID) {
	if err := l.sp.Ack(id); err != nil && !errors.Is(err, spool.ErrClosed) {
		if ok, _ := l.logs.allow("spool_ack", time.Minute); ok {
			l.set.Load().cfg.Logger.Warn().Err(err).
				Msg("spool: could not record a delivery; the request may be sent again after a restart (logged at most once a minute)")
		}
	}
}

// refill drops what waits on disk past max_age and takes records into
// memory while the backlog has room (at least one when memory is empty).
// A spool file that cannot be read leaves its records on disk for a later
// refill. It decodes them outside spool.mu, so that a period's spoolKeep
// does not wait for a backlog's worth of decoding: until they are in
// memory the backlog counts them on disk, so that spoolKeep leaves its own
// batch on disk, behind them.
func (l *lane[B]) refill(s *settings) {
	st := &l.spool
	es := l.takeRefill(s)
	if len(es) == 0 {
		return
	}
	bs := make([]B, len(es))
	errs := make([]error, len(es))
	for i := range es {
		bs[i], errs[i] = st.decode(es[i].Payload)
		es[i].Payload = nil
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	for i, e := range es {
		if errs[i] != nil {
			st.undecodable.Add(1)
			l.spoolDrop(e, "undecodable")
			continue
		}
		t, ok := l.sp.Oldest()
		l.backlog.fromDisk(e.Measurements, t, ok)
		it := l.item(bs[i])
		it.id, it.spooled = e.ID, true
		l.backlog.pushSpooled(it, 0)
	}
}

// spoolDrop acknowledges a record taken by refill and never sent, and
// counts it dropped for reason. The caller holds spool.mu.
func (l *lane[B]) spoolDrop(e spool.Entry, reason string) {
	st := &l.spool
	_ = l.sp.Ack(e.ID)
	st.dropMu.Lock()
	st.dropped[reason]++
	st.dropMu.Unlock()
	l.dropped.Add(int64(e.Measurements))
	l.m.dropped.WithLabelValues("spool_" + reason).Add(float64(e.Measurements))
	l.backlog.fromDisk(e.Measurements, 0, true)
}

// takeRefill is refill under spool.mu: it returns the records to decode
// and put in memory, still counted on disk.
func (l *lane[B]) takeRefill(s *settings) (taken []spool.Entry) {
	st := &l.spool
	st.mu.Lock()
	defer st.mu.Unlock()
	l.reconcile(s)
	inMem, disk := l.backlog.memory()
	if disk == 0 {
		return nil
	}
	old, _ := l.sp.DropOlderThan(l.f.now().Add(-s.cfg.MaxAge))
	if old.Measurements > 0 {
		l.dropped.Add(old.Measurements)
		l.m.dropped.WithLabelValues("too_old").Add(float64(old.Measurements))
		l.backlog.fromDisk(int(old.Measurements), 0, true)
		disk -= int(old.Measurements)
	}
	for disk > 0 && (inMem == 0 || inMem < s.cfg.Backlog) {
		es, err := l.sp.Take(1)
		if errors.Is(err, spool.ErrRead) {
			// Nothing is lost: the records stay for a later refill.
			if ok, _ := l.logs.allow("spool_read_error", time.Minute); ok {
				s.cfg.Logger.Warn().Err(err).Msg("spool: cannot read; the requests stay in the spool and are read again later (logged at most once a minute)")
			}
			if len(es) == 0 {
				// Nothing else to send: no retry before a backoff.
				if inMem == 0 {
					l.backlog.mu.Lock()
					l.backlog.failures++
					l.backlog.next = time.Now().Add(l.backoff(s, l.backlog.failures, 0))
					l.backlog.mu.Unlock()
				}
				return
			}
		} else if err != nil && len(es) == 0 && !errors.Is(err, spool.ErrClosed) {
			if ok, _ := l.logs.allow("spool_read", time.Minute); ok {
				s.cfg.Logger.Warn().Err(err).Msg("spool: read error; skipping the damaged record (logged at most once a minute)")
			}
			continue // the record is skipped for good: try the next
		}
		if len(es) == 0 {
			// What the count says waits is gone: damaged since Open.
			// (Those taken count on disk until refill places them.)
			l.dropped.Add(int64(disk))
			l.m.dropped.WithLabelValues("spool_corrupt").Add(float64(disk))
			l.backlog.fromDisk(disk, 0, len(taken) > 0)
			return taken
		}
		e := es[0]
		disk -= e.Measurements
		if e.Kind != l.out.kind(s) {
			l.spoolDrop(e, "api_changed")
			continue
		}
		taken = append(taken, e)
		inMem += e.Measurements
	}
	return taken
}

// reconcile counts as dropped what the spool removed past its size
// limit. The caller holds spool.mu.
func (l *lane[B]) reconcile(s *settings) {
	full := l.sp.Stats().Dropped[spool.ReasonFull].Measurements
	d := full - l.spool.lastFull
	l.spool.lastFull = full
	if d <= 0 {
		return
	}
	l.dropped.Add(d)
	l.m.dropped.WithLabelValues("spool_full").Add(float64(d))
	l.backlog.fromDisk(int(d), 0, true)
	if ok, _ := l.logs.allow("spool_full", time.Minute); ok {
		s.cfg.Logger.Warn().Int64("measurements", d).
			Msg("spool: past spool_max_bytes, the oldest undelivered measurements were dropped (logged at most once a minute)")
	}
}

// syncSpool makes the period's appends durable with one fsync and counts
// what the spool dropped past its size limit.
func (l *lane[B]) syncSpool(s *settings) {
	if l.sp == nil || !l.spool.dirty.Swap(false) {
		return
	}
	if err := l.sp.Sync(); err != nil && !errors.Is(err, spool.ErrClosed) {
		if ok, _ := l.logs.allow("spool_sync", time.Minute); ok {
			s.cfg.Logger.Warn().Err(err).Msg("spool: fsync failed; what it holds survives a crash of the process, maybe not of the machine (logged at most once a minute)")
		}
	}
	l.spool.mu.Lock()
	l.reconcile(s)
	l.spool.mu.Unlock()
}

// spillMemory appends to the spool, at the end of a shutdown, what waits
// in memory only (the spool could not take it earlier).
func (l *lane[B]) spillMemory(s *settings) {
	if l.sp == nil {
		return
	}
	st := &l.spool
	st.mu.Lock()
	defer st.mu.Unlock()
	l.backlog.mu.Lock()
	defer l.backlog.mu.Unlock()
	for i, it := range l.backlog.q {
		if it.spooled {
			continue
		}
		st.buf = l.out.marshal(st.buf[:0], it.b)
		id, err := l.sp.Append(spool.Record{Time: it.t, Measurements: it.n, Kind: l.out.kind(s), Payload: st.buf})
		if err != nil {
			s.cfg.Logger.Warn().Str("output", l.name()).Err(err).Int("measurements", it.n).
				Msg("spool: cannot write; measurements kept in memory only are lost at exit")
			return
		}
		l.backlog.q[i].id, l.backlog.q[i].spooled = id, true
	}
}

// spoolCollector returns the collector of the spool's self-metrics, read
// at scrape time, labelled with the lane's output, or nil when the lane
// has no spool.
func (l *lane[B]) spoolCollector() prometheus.Collector {
	if l.sp == nil {
		return nil
	}
	c := &spoolCollector{stats: l.sp.Stats, dropped: l.spoolDropped, undecodable: l.spool.undecodable.Load}
	cl := prometheus.Labels{"output": l.name()}
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, cl)
	}
	c.bytes = desc("libratod_spool_bytes", "Bytes of the spool's files on disk.")
	c.pending = desc("libratod_spool_pending_requests",
		"Requests in the spool not yet delivered (including those being resent).")
	c.pendingMeas = desc("libratod_spool_pending_measurements",
		"Measurements in the spool not yet delivered (including those being resent).")
	c.requests = desc("libratod_spool_requests_total",
		"Requests by spool event: spooled (written, delivery failed), replayed (found at start from an earlier run), acked (removed: delivered or given up on).", "event")
	c.droppedDesc = desc("libratod_spool_dropped_total",
		"Spooled requests removed undelivered, by reason (spool_full, too_old, rejected, undecodable, api_changed).", "reason")
	c.corrupt = desc("libratod_spool_corrupt_records_total",
		"Damaged spool records skipped (torn writes, flipped bits, undecodable payloads).")
	c.writeErrors = desc("libratod_spool_write_errors_total",
		"Failed writes to the spool (full disk, unwritable directory): those requests were kept in memory only.")
	c.readErrors = desc("libratod_spool_read_errors_total",
		"Failed reads of spool files (too many open files, EIO): those requests stay in the spool and are read again later.")
	return c
}

// spoolDropped returns the records the lane acknowledged undelivered, by
// reason.
func (l *lane[B]) spoolDropped() map[string]int64 {
	l.spool.dropMu.Lock()
	defer l.spool.dropMu.Unlock()
	out := make(map[string]int64, len(l.spool.dropped))
	for k, v := range l.spool.dropped {
		out[k] = v
	}
	return out
}

// spoolCollector reads a spool's Stats at scrape time.
type spoolCollector struct {
	stats       func() spool.Stats
	dropped     func() map[string]int64
	undecodable func() int64

	bytes, pending, pendingMeas, requests, droppedDesc *prometheus.Desc
	corrupt, writeErrors, readErrors                   *prometheus.Desc
}

func (c *spoolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.bytes, c.pending, c.pendingMeas, c.requests,
		c.droppedDesc, c.corrupt, c.writeErrors, c.readErrors} {
		ch <- d
	}
}

func (c *spoolCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	gauge := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(c.bytes, st.Bytes)
	gauge(c.pending, st.Pending.Records)
	gauge(c.pendingMeas, st.Pending.Measurements)
	counter(c.requests, st.Appended.Records, "spooled")
	counter(c.requests, st.Replayed.Records, "replayed")
	counter(c.requests, st.Acknowledged.Records, "acked")
	dropped := map[string]int64{"spool_full": 0, "too_old": 0, "rejected": 0, "undecodable": 0, "api_changed": 0}
	for k, v := range st.Dropped {
		dropped[k] += v.Records
	}
	for k, v := range c.dropped() {
		dropped[k] += v
	}
	for k, v := range dropped {
		counter(c.droppedDesc, v, k)
	}
	counter(c.corrupt, st.CorruptRecords+c.undecodable())
	counter(c.writeErrors, st.WriteErrors)
	counter(c.readErrors, st.ReadErrors)
}

// SpoolCollector returns the collector of the spools' self-metrics, each
// labelled with its output, read at scrape time, or nil when no output
// that is on has a spool.
func (f *Flusher) SpoolCollector() prometheus.Collector {
	var cs collectors
	if c := f.lane.spoolCollector(); c != nil && !f.set.Load().cfg.LibratoOff {
		cs = append(cs, c)
	}
	if f.otlp != nil {
		if c := f.otlp.spoolCollector(); c != nil {
			cs = append(cs, c)
		}
	}
	if len(cs) == 0 {
		return nil
	}
	return cs
}

// collectors is several collectors as one.
type collectors []prometheus.Collector

func (cs collectors) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range cs {
		c.Describe(ch)
	}
}

func (cs collectors) Collect(ch chan<- prometheus.Metric) {
	for _, c := range cs {
		c.Collect(ch)
	}
}
