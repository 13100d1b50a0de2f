package flusher

import "time"

// A request that fails within its own period is written to the spool at
// its first failure, before its first in-period retry, rather than when
// the period gives up on it (keep): a kill -9 during the retries would
// otherwise lose it. The record is taken (in flight in the spool's terms)
// while the retries go on. If a retry delivers the request, or it is
// refused for good, the record is acknowledged; if the period gives up,
// keep puts the record itself in the backlog (no second write), or, when
// a split delivered part of it, replaces it by a record of the rest
// (spoolRewrite). A crash between a delivery and its acknowledgement
// sends the request again at the next start: at least once, never lost.
// In an outage every request is written once, as before; what the early
// write adds is the write and the acknowledgement of a request that a
// retry delivers within its period (BenchmarkSpoolEarly).

// early is the spool record of a request written at its first in-period
// failure: it is nil when the lane has no spool or the request is a
// resend from the backlog (already in the spool).
type early[B any] struct {
	b     B       // the request as send was given it
	tried bool    // spoolEarly was called
	it    item[B] // the record, when it.spooled
	// writeFailed: the spool could not write it; keep does not try
	// again (one write error a request, as before).
	writeFailed bool
}

// spooled reports whether e holds a record (false for a nil e).
func (e *early[B]) spooled() bool { return e != nil && e.it.spooled }

// unwritable reports whether the spool failed to write e's request.
func (e *early[B]) unwritable() bool { return e != nil && e.writeFailed }

// spoolBeforeRetry writes e's request to the spool, once, before the
// first in-period retry.
func (l *lane[B]) spoolBeforeRetry(s *settings, e *early[B]) {
	if e == nil || e.tried {
		return
	}
	e.tried = true
	var err error
	e.it, err = l.spoolEarly(s, e.b)
	e.writeFailed = err != nil
}

// spoolEarly appends b to the spool and takes the record, which stays in
// flight until the request is delivered or kept. It reports false when
// the spool could not write b (the error), or something waits in the
// spool only (b then goes to the backlog now, behind it, without
// retries): the request is retried unspooled, as it was before. The
// item is spooled when the record was written and taken.
func (l *lane[B]) spoolEarly(s *settings, b B) (item[B], error) {
	st := &l.spool
	st.mu.Lock()
	defer st.mu.Unlock()
	if _, disk := l.backlog.memory(); disk > 0 {
		return item[B]{}, nil
	}
	id, err := l.spoolAppend(s, b)
	if err != nil {
		return item[B]{}, err
	}
	es, err := l.sp.Take(1)
	if err == nil && len(es) == 1 && es[0].ID == id {
		it := l.item(b)
		it.id, it.spooled = id, true
		return it, nil
	}
	// Not expected (nothing waits on disk): leave the others to refill
	// and remove the record, so that it is neither lost nor sent twice.
	for _, e := range es {
		if e.ID != id {
			l.sp.Release(e.ID)
		}
	}
	l.ack(id)
	return item[B]{}, nil
}

// settleEarly ends the early record of a request once send is done with
// it: acknowledged if nothing is left to send, otherwise handed to keep
// in o.rec.
func (l *lane[B]) settleEarly(o outcome[B], e *early[B]) outcome[B] {
	if e == nil || !e.tried {
		return o
	}
	if o.ok && l.out.size(o.retry) > 0 {
		o.early = e
		return o
	}
	if !e.it.spooled {
		return o
	}
	why := "delivered"
	if o.sent == 0 {
		why = "rejected"
	}
	l.spoolDone(e.it, why)
	return o
}

// keepEarly puts b, the rest of the request of the early record rec, in
// the backlog: rec itself when b is all of it, in memory if the backlog
// has room and nothing waits on disk only, else back on disk; a record of
// b in its place when a split delivered or dropped part of it. It
// reports false when the spool could not take b (rec is then
// acknowledged and the caller keeps b in memory only).
func (l *lane[B]) keepEarly(s *settings, rec item[B], b B, wait time.Duration) bool {
	if n := l.out.size(b); n != rec.n {
		it, inMem := l.spoolRewrite(s, rec.id, b)
		if !inMem {
			return true // on disk, counted there
		}
		if !it.spooled {
			return false
		}
		evicted, first := l.backlog.push(it, wait)
		l.evict(s, evicted, first)
		return true
	}
	st := &l.spool
	st.mu.Lock()
	defer st.mu.Unlock()
	inMem, disk := l.backlog.memory()
	if disk == 0 && (inMem+rec.n <= s.cfg.Backlog || inMem == 0) {
		rec.b = b
		l.backlog.pushSpooled(rec, wait)
		return true
	}
	l.sp.Release(rec.id)
	l.backlog.addDisk(rec.n, rec.t, wait)
	return true
}
