package flusher

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/libratod/libratod/librato"
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
	// decode is librato.UnmarshalBatch; tests observe it.
	decode func([]byte) (*librato.Batch, error)
}

// openSpool accounts for what an earlier process left in the spool: what
// is past max_age is dropped, the rest counted as built and waiting.
func (f *Flusher) openSpool(s *settings) {
	sp := f.sp
	f.spool.dropped = map[string]int64{}
	f.spool.decode = librato.UnmarshalBatch
	old, err := sp.DropOlderThan(f.now().Add(-s.cfg.MaxAge)) // as drainOnce
	if err != nil {
		s.cfg.Logger.Warn().Err(err).Msg("spool: could not record the removal of requests past max_age; they may be read again at the next start")
	}
	if old.Measurements > 0 {
		f.built.Add(old.Measurements)
		f.dropped.Add(old.Measurements)
		f.m.dropped.WithLabelValues("too_old").Add(float64(old.Measurements))
	}
	st := sp.Stats()
	// What Open evicted past the size limit (spool_max_bytes lowered since
	// the records were written) was never counted: it is built and dropped
	// here, in measurements (each record's header holds their number).
	full := st.Dropped[spool.ReasonFull]
	f.spool.lastFull = full.Measurements
	if full.Measurements > 0 {
		f.built.Add(full.Measurements)
		f.dropped.Add(full.Measurements)
		f.m.dropped.WithLabelValues("spool_full").Add(float64(full.Measurements))
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
	f.built.Add(waiting)
	t, _ := sp.Oldest()
	f.backlog.addDisk(int(waiting), t, 0)
}

// spoolKeep appends b to the spool and keeps it in memory too when the
// backlog has room and nothing waits on disk only. It reports false when
// the spool could not take b (the caller keeps it in memory alone).
func (f *Flusher) spoolKeep(s *settings, b *librato.Batch, wait time.Duration) bool {
	st := &f.spool
	n := len(b.Measurements)
	st.mu.Lock()
	defer st.mu.Unlock()
	id, err := f.spoolAppend(s, b)
	if err != nil {
		return false
	}
	inMem, disk := f.backlog.memory()
	if disk == 0 && (inMem+n <= s.cfg.Backlog || inMem == 0) {
		es, err := f.sp.Take(1)
		if err == nil && len(es) == 1 && es[0].ID == id {
			f.backlog.pushSpooled(item{b: b, id: id, spooled: true}, wait)
			return true
		}
		for _, e := range es {
			f.sp.Release(e.ID) // not expected: leave it to refill
		}
	}
	f.backlog.addDisk(n, b.Time, wait)
	return true
}

// spoolRelease gives an item evicted from memory back to the spool, to
// be taken again when the backlog has room.
func (f *Flusher) spoolRelease(it item) {
	f.spool.mu.Lock()
	defer f.spool.mu.Unlock()
	f.sp.Release(it.id)
	f.backlog.addDisk(len(it.b.Measurements), it.b.Time, 0)
}

// spoolDone acknowledges a spooled item that is finished with: delivered,
// or given up on for reason.
func (f *Flusher) spoolDone(it item, reason string) {
	if !it.spooled {
		return
	}
	f.ack(it.id)
	if reason != "delivered" {
		f.spool.dropMu.Lock()
		f.spool.dropped[reason]++
		f.spool.dropMu.Unlock()
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
func (f *Flusher) spoolRewrite(s *settings, id spool.ID, left *librato.Batch) (item, bool) {
	st := &f.spool
	st.mu.Lock()
	defer st.mu.Unlock()
	nid, err := f.spoolAppend(s, left)
	if err == nil {
		// With NoSync the acknowledgement could reach the disk before
		// the new record: a power loss would then lose left.
		if serr := f.sp.Sync(); serr != nil && !errors.Is(serr, spool.ErrClosed) {
			if ok, _ := f.logs.allow("spool_sync", time.Minute); ok {
				s.cfg.Logger.Warn().Err(serr).Msg("spool: fsync failed; what it holds survives a crash of the process, maybe not of the machine (logged at most once a minute)")
			}
		}
	}
	f.ack(id)
	if err != nil {
		return item{b: left}, true
	}
	if _, disk := f.backlog.memory(); disk == 0 {
		es, err := f.sp.Take(1)
		if err == nil && len(es) == 1 && es[0].ID == nid {
			return item{b: left, id: nid, spooled: true}, true
		}
		for _, e := range es {
			f.sp.Release(e.ID) // not expected: leave it to refill
		}
	}
	f.backlog.addDisk(len(left.Measurements), left.Time, 0)
	return item{}, false
}

// spoolAppend appends b to the spool, logging the start and the end of an
// episode of failed writes. The caller holds spool.mu.
func (f *Flusher) spoolAppend(s *settings, b *librato.Batch) (spool.ID, error) {
	st := &f.spool
	st.buf = librato.MarshalBatch(st.buf[:0], b)
	id, err := f.sp.Append(spool.Record{Time: b.Time, Measurements: len(b.Measurements), Kind: uint8(s.cfg.API), Payload: st.buf})
	if len(st.buf) > 1<<20 {
		st.buf = nil
	}
	if err != nil {
		if st.failing.CompareAndSwap(false, true) {
			s.cfg.Logger.Warn().Err(err).
				Msg("spool: cannot write; keeping undelivered measurements in memory only until it works again (logged once per episode)")
		}
		return id, fmt.Errorf("flusher: spool a batch of %d measurements: %w", len(b.Measurements), err)
	}
	if st.failing.CompareAndSwap(true, false) {
		s.cfg.Logger.Info().Msg("spool: writing again")
	}
	st.dirty.Store(true)
	return id, nil
}

// ack acknowledges a record, logging (at most once a minute) a failure to
// record it.
func (f *Flusher) ack(id spool.ID) {
	if err := f.sp.Ack(id); err != nil && !errors.Is(err, spool.ErrClosed) {
		if ok, _ := f.logs.allow("spool_ack", time.Minute); ok {
			f.set.Load().cfg.Logger.Warn().Err(err).
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
func (f *Flusher) refill(s *settings) {
	st := &f.spool
	es := f.takeRefill(s)
	if len(es) == 0 {
		return
	}
	bs := make([]*librato.Batch, len(es))
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
			f.spoolDrop(e, "undecodable")
			continue
		}
		t, ok := f.sp.Oldest()
		f.backlog.fromDisk(e.Measurements, t, ok)
		f.backlog.pushSpooled(item{b: bs[i], id: e.ID, spooled: true}, 0)
	}
}

// spoolDrop acknowledges a record taken by refill and never sent, and
// counts it dropped for reason. The caller holds spool.mu.
func (f *Flusher) spoolDrop(e spool.Entry, reason string) {
	st := &f.spool
	_ = f.sp.Ack(e.ID)
	st.dropMu.Lock()
	st.dropped[reason]++
	st.dropMu.Unlock()
	f.dropped.Add(int64(e.Measurements))
	f.m.dropped.WithLabelValues("spool_" + reason).Add(float64(e.Measurements))
	f.backlog.fromDisk(e.Measurements, 0, true)
}

// takeRefill is refill under spool.mu: it returns the records to decode
// and put in memory, still counted on disk.
func (f *Flusher) takeRefill(s *settings) (taken []spool.Entry) {
	st := &f.spool
	st.mu.Lock()
	defer st.mu.Unlock()
	f.reconcile(s)
	inMem, disk := f.backlog.memory()
	if disk == 0 {
		return nil
	}
	old, _ := f.sp.DropOlderThan(f.now().Add(-s.cfg.MaxAge))
	if old.Measurements > 0 {
		f.dropped.Add(old.Measurements)
		f.m.dropped.WithLabelValues("too_old").Add(float64(old.Measurements))
		f.backlog.fromDisk(int(old.Measurements), 0, true)
		disk -= int(old.Measurements)
	}
	for disk > 0 && (inMem == 0 || inMem < s.cfg.Backlog) {
		es, err := f.sp.Take(1)
		if errors.Is(err, spool.ErrRead) {
			// Nothing is lost: the records stay for a later refill.
			if ok, _ := f.logs.allow("spool_read_error", time.Minute); ok {
				s.cfg.Logger.Warn().Err(err).Msg("spool: cannot read; the requests stay in the spool and are read again later (logged at most once a minute)")
			}
			if len(es) == 0 {
				// Nothing else to send: no retry before a backoff.
				if inMem == 0 {
					f.backlog.mu.Lock()
					f.backlog.failures++
					f.backlog.next = time.Now().Add(f.backoff(s, f.backlog.failures, 0))
					f.backlog.mu.Unlock()
				}
				return
			}
		} else if err != nil && len(es) == 0 && !errors.Is(err, spool.ErrClosed) {
			if ok, _ := f.logs.allow("spool_read", time.Minute); ok {
				s.cfg.Logger.Warn().Err(err).Msg("spool: read error; skipping the damaged record (logged at most once a minute)")
			}
			continue // the record is skipped for good: try the next
		}
		if len(es) == 0 {
			// What the count says waits is gone: damaged since Open.
			// (Those taken count on disk until refill places them.)
			f.dropped.Add(int64(disk))
			f.m.dropped.WithLabelValues("spool_corrupt").Add(float64(disk))
			f.backlog.fromDisk(disk, 0, len(taken) > 0)
			return taken
		}
		e := es[0]
		disk -= e.Measurements
		if librato.API(e.Kind) != s.cfg.API {
			f.spoolDrop(e, "api_changed")
			continue
		}
		taken = append(taken, e)
		inMem += e.Measurements
	}
	return taken
}

// reconcile counts as dropped what the spool removed past its size
// limit. The caller holds spool.mu.
func (f *Flusher) reconcile(s *settings) {
	full := f.sp.Stats().Dropped[spool.ReasonFull].Measurements
	d := full - f.spool.lastFull
	f.spool.lastFull = full
	if d <= 0 {
		return
	}
	f.dropped.Add(d)
	f.m.dropped.WithLabelValues("spool_full").Add(float64(d))
	f.backlog.fromDisk(int(d), 0, true)
	if ok, _ := f.logs.allow("spool_full", time.Minute); ok {
		s.cfg.Logger.Warn().Int64("measurements", d).
			Msg("spool: past spool_max_bytes, the oldest undelivered measurements were dropped (logged at most once a minute)")
	}
}

// syncSpool makes the period's appends durable with one fsync and counts
// what the spool dropped past its size limit.
func (f *Flusher) syncSpool(s *settings) {
	if f.sp == nil || !f.spool.dirty.Swap(false) {
		return
	}
	if err := f.sp.Sync(); err != nil && !errors.Is(err, spool.ErrClosed) {
		if ok, _ := f.logs.allow("spool_sync", time.Minute); ok {
			s.cfg.Logger.Warn().Err(err).Msg("spool: fsync failed; what it holds survives a crash of the process, maybe not of the machine (logged at most once a minute)")
		}
	}
	f.spool.mu.Lock()
	f.reconcile(s)
	f.spool.mu.Unlock()
}

// spillMemory appends to the spool, at the end of a shutdown, what waits
// in memory only (the spool could not take it earlier).
func (f *Flusher) spillMemory(s *settings) {
	if f.sp == nil {
		return
	}
	st := &f.spool
	st.mu.Lock()
	defer st.mu.Unlock()
	f.backlog.mu.Lock()
	defer f.backlog.mu.Unlock()
	for i, it := range f.backlog.q {
		if it.spooled {
			continue
		}
		st.buf = librato.MarshalBatch(st.buf[:0], it.b)
		id, err := f.sp.Append(spool.Record{Time: it.b.Time, Measurements: len(it.b.Measurements), Kind: uint8(s.cfg.API), Payload: st.buf})
		if err != nil {
			s.cfg.Logger.Warn().Err(err).Int("measurements", len(it.b.Measurements)).
				Msg("spool: cannot write; measurements kept in memory only are lost at exit")
			return
		}
		f.backlog.q[i].id, f.backlog.q[i].spooled = id, true
	}
}

// SpoolCollector returns the collector of the spool's self-metrics, read
// at scrape time, or nil when the flusher has no spool.
func (f *Flusher) SpoolCollector() prometheus.Collector {
	if f.sp == nil {
		return nil
	}
	return &spoolCollector{f: f}
}

var (
	spoolBytesDesc = prometheus.NewDesc("libratod_spool_bytes",
		"Bytes of the spool's files on disk.", nil, nil)
	spoolPendingDesc = prometheus.NewDesc("libratod_spool_pending_requests",
		"Requests in the spool not yet delivered (including those being resent).", nil, nil)
	spoolPendingMeasDesc = prometheus.NewDesc("libratod_spool_pending_measurements",
		"Measurements in the spool not yet delivered (including those being resent).", nil, nil)
	spoolRequestsDesc = prometheus.NewDesc("libratod_spool_requests_total",
		"Requests by spool event: spooled (written, delivery failed), replayed (found at start from an earlier run), acked (removed: delivered or given up on).", []string{"event"}, nil)
	spoolDroppedDesc = prometheus.NewDesc("libratod_spool_dropped_total",
		"Spooled requests removed undelivered, by reason (spool_full, too_old, rejected, undecodable, api_changed).", []string{"reason"}, nil)
	spoolCorruptDesc = prometheus.NewDesc("libratod_spool_corrupt_records_total",
		"Damaged spool records skipped (torn writes, flipped bits, undecodable payloads).", nil, nil)
	spoolWriteErrorsDesc = prometheus.NewDesc("libratod_spool_write_errors_total",
		"Failed writes to the spool (full disk, unwritable directory): those requests were kept in memory only.", nil, nil)
	spoolReadErrorsDesc = prometheus.NewDesc("libratod_spool_read_errors_total",
		"Failed reads of spool files (too many open files, EIO): those requests stay in the spool and are read again later.", nil, nil)
)

// spoolCollector reads the spool's Stats at scrape time.
type spoolCollector struct{ f *Flusher }

func (c *spoolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{spoolBytesDesc, spoolPendingDesc, spoolPendingMeasDesc, spoolRequestsDesc,
		spoolDroppedDesc, spoolCorruptDesc, spoolWriteErrorsDesc, spoolReadErrorsDesc} {
		ch <- d
	}
}

func (c *spoolCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.f.sp.Stats()
	gauge := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(spoolBytesDesc, st.Bytes)
	gauge(spoolPendingDesc, st.Pending.Records)
	gauge(spoolPendingMeasDesc, st.Pending.Measurements)
	counter(spoolRequestsDesc, st.Appended.Records, "spooled")
	counter(spoolRequestsDesc, st.Replayed.Records, "replayed")
	counter(spoolRequestsDesc, st.Acknowledged.Records, "acked")
	dropped := map[string]int64{"spool_full": 0, "too_old": 0, "rejected": 0, "undecodable": 0, "api_changed": 0}
	for k, v := range st.Dropped {
		dropped[k] += v.Records
	}
	c.f.spool.dropMu.Lock()
	for k, v := range c.f.spool.dropped {
		dropped[k] += v
	}
	c.f.spool.dropMu.Unlock()
	for k, v := range dropped {
		counter(spoolDroppedDesc, v, k)
	}
	counter(spoolCorruptDesc, st.CorruptRecords+c.f.spool.undecodable.Load())
	counter(spoolWriteErrorsDesc, st.WriteErrors)
	counter(spoolReadErrorsDesc, st.ReadErrors)
}
