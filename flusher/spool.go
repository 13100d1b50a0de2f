package flusher

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/libratod/libratod/spool"
)

// The spool, when Config.Spool is set, is the source of truth for what
// has not been delivered: every batch kept for later is appended to it
// (librato.MarshalBatch, the record's Kind is the API) and acknowledged
// when Librato takes it or it is given up on. The memory backlog is a
// window on the spool's head: a record in memory is taken (in flight in
// the spool's terms); records the window has no room for wait on disk
// (backlog.disk) and are taken as it drains (refill). What is in flight
// or waiting when the process ends, however it ends, is read back by the
// next Open and resent.

// spoolState is the flusher's side of the spool.
type spoolState struct {
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
}

// openSpool accounts for what an earlier process left in the spool: what
// is past max_age is dropped, the rest counted as built and waiting.
func (l *lane[B]) openSpool(s *settings) {
	sp := l.sp
	l.spool.dropped = map[string]int64{}
	old, err := sp.DropOlderThan(time.Now().Add(-s.cfg.MaxAge)) // as drainOnce
	if err != nil {
		s.cfg.Logger.Warn().Err(err).Msg("spool: could not record the removal of requests past max_age; they may be read again at the next start")
	}
	if old.Measurements > 0 {
		l.built.Add(old.Measurements)
		l.dropped.Add(old.Measurements)
		l.m.dropped.WithLabelValues("too_old").Add(float64(old.Measurements))
	}
	st := sp.Stats()
	l.spool.lastFull = st.Dropped[spool.ReasonFull].Measurements
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
	st.buf = l.out.marshal(st.buf[:0], b)
	id, err := l.sp.Append(spool.Record{Time: it.t, Measurements: n, Kind: l.out.kind(s), Payload: st.buf})
	if len(st.buf) > 1<<20 {
		st.buf = nil
	}
	if err != nil {
		if st.failing.CompareAndSwap(false, true) {
			s.cfg.Logger.Warn().Str("output", l.name()).Err(err).
				Msg("spool: cannot write; keeping undelivered measurements in memory only until it works again (logged once per episode)")
		}
		return false
	}
	if st.failing.CompareAndSwap(true, false) {
		s.cfg.Logger.Info().Msg("spool: writing again")
	}
	st.dirty.Store(true)
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
	if err := l.sp.Ack(it.id); err != nil && !errors.Is(err, spool.ErrClosed) {
		if ok, _ := l.logs.allow("spool_ack", time.Minute); ok {
			l.set.Load().cfg.Logger.Warn().Err(err).
				Msg("spool: could not record a delivery; the request may be sent again after a restart (logged at most once a minute)")
		}
	}
	if reason != "delivered" {
		l.spool.dropMu.Lock()
		l.spool.dropped[reason]++
		l.spool.dropMu.Unlock()
	}
}

// refill drops what waits on disk past max_age and takes records into
// memory while the backlog has room (at least one when memory is empty).
func (l *lane[B]) refill(s *settings) {
	st := &l.spool
	st.mu.Lock()
	defer st.mu.Unlock()
	l.reconcile(s)
	inMem, disk := l.backlog.memory()
	if disk == 0 {
		return
	}
	old, _ := l.sp.DropOlderThan(time.Now().Add(-s.cfg.MaxAge))
	if old.Measurements > 0 {
		l.dropped.Add(old.Measurements)
		l.m.dropped.WithLabelValues("too_old").Add(float64(old.Measurements))
		l.backlog.fromDisk(int(old.Measurements), 0, true)
		disk -= int(old.Measurements)
	}
	for disk > 0 && (inMem == 0 || inMem < s.cfg.Backlog) {
		es, err := l.sp.Take(1)
		if err != nil && len(es) == 0 && !errors.Is(err, spool.ErrClosed) {
			if ok, _ := l.logs.allow("spool_read", time.Minute); ok {
				s.cfg.Logger.Warn().Err(err).Msg("spool: read error; skipping the damaged record (logged at most once a minute)")
			}
			continue // the record is skipped for good: try the next
		}
		if len(es) == 0 {
			// What the count says waits is gone: damaged since Open.
			l.dropped.Add(int64(disk))
			l.m.dropped.WithLabelValues("spool_corrupt").Add(float64(disk))
			l.backlog.fromDisk(disk, 0, false)
			return
		}
		e := es[0]
		disk -= e.Measurements
		b, err := l.out.unmarshal(e.Payload)
		reason := ""
		switch {
		case err != nil:
			reason = "undecodable"
			st.undecodable.Add(1)
		case e.Kind != l.out.kind(s):
			reason = "api_changed"
		}
		if reason != "" {
			_ = l.sp.Ack(e.ID)
			st.dropMu.Lock()
			st.dropped[reason]++
			st.dropMu.Unlock()
			l.dropped.Add(int64(e.Measurements))
			l.m.dropped.WithLabelValues("spool_" + reason).Add(float64(e.Measurements))
			l.backlog.fromDisk(e.Measurements, 0, true)
			continue
		}
		t, ok := l.sp.Oldest()
		l.backlog.fromDisk(e.Measurements, t, ok)
		it := l.item(b)
		it.id, it.spooled = e.ID, true
		l.backlog.pushSpooled(it, 0)
		inMem += e.Measurements
	}
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
	c := &spoolCollector{stats: l.sp.Stats, st: &l.spool}
	cl := prometheus.Labels{"output": l.name()}
	c.bytes = prometheus.NewDesc("libratod_spool_bytes",
		"Bytes of the spool's files on disk.", nil, cl)
	c.pending = prometheus.NewDesc("libratod_spool_pending_requests",
		"Requests in the spool not yet delivered (including those being resent).", nil, cl)
	c.pendingMeas = prometheus.NewDesc("libratod_spool_pending_measurements",
		"Measurements in the spool not yet delivered (including those being resent).", nil, cl)
	c.requests = prometheus.NewDesc("libratod_spool_requests_total",
		"Requests by spool event: spooled (written, delivery failed), replayed (found at start from an earlier run), acked (removed: delivered or given up on).", []string{"event"}, cl)
	c.dropped = prometheus.NewDesc("libratod_spool_dropped_total",
		"Spooled requests removed undelivered, by reason (spool_full, too_old, rejected, undecodable, api_changed).", []string{"reason"}, cl)
	c.corrupt = prometheus.NewDesc("libratod_spool_corrupt_records_total",
		"Damaged spool records skipped (torn writes, flipped bits, undecodable payloads).", nil, cl)
	c.writeErrors = prometheus.NewDesc("libratod_spool_write_errors_total",
		"Failed writes to the spool (full disk, unwritable directory): those requests were kept in memory only.", nil, cl)
	return c
}

// spoolCollector reads a spool's Stats at scrape time.
type spoolCollector struct {
	stats func() spool.Stats
	st    *spoolState

	bytes, pending, pendingMeas, requests, dropped, corrupt, writeErrors *prometheus.Desc
}

func (c *spoolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.bytes, c.pending, c.pendingMeas, c.requests,
		c.dropped, c.corrupt, c.writeErrors} {
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
	c.st.dropMu.Lock()
	for k, v := range c.st.dropped {
		dropped[k] += v
	}
	c.st.dropMu.Unlock()
	for k, v := range dropped {
		counter(c.dropped, v, k)
	}
	counter(c.corrupt, st.CorruptRecords+c.st.undecodable.Load())
	counter(c.writeErrors, st.WriteErrors)
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
