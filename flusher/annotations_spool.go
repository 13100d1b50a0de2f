package flusher

import (
	"context"
	"time"

	"github.com/libratod/libratod/librato"
	"github.com/libratod/libratod/spool"
)

// An annotation that cannot be delivered now (Librato down, 5xx, 429) is
// kept in the Librato lane's spool, when it has one, as a record of its
// own kind (librato.MarshalAnnotation, which begins with a format
// version), holding no measurements, dated when it was first kept. Such a
// record is always taken (in flight in the spool's terms) while this
// process holds it, so that the lane's refill never sees it: it is
// acknowledged once the annotation is delivered, refused or given up on,
// and read back with TakeKind by the next process. Past max_age from when
// it was first kept it is dropped, counted too_old.

// annotationSpoolKind is the spool record kind of an annotation.
const annotationSpoolKind = 0x20

// queued is an annotation waiting for a flush.
type queued struct {
	a librato.Annotation
	// at is when it was first kept for a retry (unix seconds), 0 until
	// then: max_age counts from it.
	at int64
	// id is its spool record, when spooled.
	id      spool.ID
	spooled bool
}

// dropOldAnnotations returns as without the annotations kept past
// max_age, which it counts too_old and acknowledges.
func dropOldAnnotations(l *lane[*librato.Batch], s *settings, as []queued) []queued {
	cut := l.f.now().Add(-s.cfg.MaxAge).Unix()
	keep := as[:0]
	for _, q := range as {
		if q.at != 0 && q.at < cut {
			l.m.annotations.WithLabelValues("too_old").Inc()
			ackAnnotations(l, []queued{q})
			continue
		}
		keep = append(keep, q)
	}
	return keep
}

// ackAnnotations acknowledges the spool records of as, those finished
// with.
func ackAnnotations(l *lane[*librato.Batch], as []queued) {
	for _, q := range as {
		if q.spooled {
			l.ack(q.id)
		}
	}
}

// keepAnnotations dates the annotations of as not dated yet and appends
// those not spooled yet to the lane's spool, if it has one, taking their
// records at once. One the spool cannot take stays in memory only.
func keepAnnotations(l *lane[*librato.Batch], s *settings, as []queued) {
	now := l.f.now().Unix()
	for i := range as {
		if as[i].at == 0 {
			as[i].at = now
		}
	}
	if l.sp == nil {
		return
	}
	st := &l.spool
	st.mu.Lock()
	defer st.mu.Unlock()
	spooled := false
	for i := range as {
		q := &as[i]
		if q.spooled {
			continue
		}
		st.buf = librato.MarshalAnnotation(st.buf[:0], &q.a)
		id, err := l.sp.Append(spool.Record{Time: q.at, Kind: annotationSpoolKind, Payload: st.buf})
		if err != nil {
			if ok, _ := l.logs.allow("spool_annotation", time.Minute); ok {
				s.cfg.Logger.Warn().Err(err).Str("stream", q.a.Stream).
					Msg("spool: cannot write an annotation; keeping it in memory only (logged at most once a minute)")
			}
			continue
		}
		// Taken at once: the lane's refill must never see it.
		es, err := l.sp.TakeKind(annotationSpoolKind, 1)
		if err == nil && len(es) == 1 && es[0].ID == id {
			q.id, q.spooled, spooled = id, true, true
			l.m.annotations.WithLabelValues("spooled").Inc()
			continue
		}
		// Not expected (every other annotation record is taken): keep it
		// in memory only rather than leave it to the refill.
		for _, e := range es {
			l.sp.Release(e.ID)
		}
		_ = l.sp.Ack(id)
	}
	if spooled {
		st.dirty.Store(true)
	}
}

// spoolAnnotations keeps again (annotations a flush could not deliver)
// for the next flush: in the spool, dated, then back in the queue q; what
// the queue has no room for is dropped.
func spoolAnnotations(l *lane[*librato.Batch], s *settings, q *Annotations, again []queued) {
	keepAnnotations(l, s, again)
	l.syncSpool(s)
	if lost := q.putBack(again); len(lost) > 0 {
		l.m.annotations.WithLabelValues("dropped").Add(float64(len(lost)))
		ackAnnotations(l, lost)
	}
}

// spillAnnotations appends to the spool, at the end of a shutdown, the
// annotations still queued that it does not hold yet.
func spillAnnotations(l *lane[*librato.Batch], s *settings) {
	q := s.cfg.Annotations
	if q == nil || l.sp == nil || s.cfg.LibratoOff {
		return
	}
	as := q.take()
	if len(as) == 0 {
		return
	}
	spoolAnnotations(l, s, q, as)
}

// loadAnnotations queues the annotations an earlier process left in the
// spool sp, taking their records; those past max_age are dropped at the
// first flush, those the queue has no room for or that cannot be decoded
// at once, counted dropped. It runs before the lane reads the spool.
func (f *Flusher) loadAnnotations(s *settings, sp *spool.Spool) {
	q := s.cfg.Annotations
	if sp == nil || q == nil || s.cfg.LibratoOff {
		return
	}
	var as []queued
	var drop []spool.ID
	for {
		es, err := sp.TakeKind(annotationSpoolKind, 64)
		if err != nil {
			s.cfg.Logger.Warn().Err(err).Msg("spool: reading the annotations an earlier run left")
		}
		if len(es) == 0 {
			break
		}
		for _, e := range es {
			a, err := librato.UnmarshalAnnotation(e.Payload)
			if err != nil {
				drop = append(drop, e.ID)
				continue
			}
			as = append(as, queued{a: *a, at: e.Time, id: e.ID, spooled: true})
		}
		if err != nil {
			break
		}
	}
	if len(as) == 0 && len(drop) == 0 {
		return
	}
	lost := q.putBack(as)
	for _, x := range lost {
		drop = append(drop, x.id)
	}
	if len(drop) > 0 {
		f.m.annotations.WithLabelValues("dropped").Add(float64(len(drop)))
		_ = sp.Ack(drop...)
	}
	s.cfg.Logger.Info().Int("annotations", len(as)-len(lost)).Int("dropped", len(drop)).
		Msg("spool: resending the annotations an earlier run could not deliver")
}

// resendAnnotations sends at once, rather than at the first flush, the
// annotations queued when Run begins (those an earlier process left).
// The flusher's inflight group owns the goroutine.
func (f *Flusher) resendAnnotations(ctx context.Context) {
	s := f.lane.settings()
	q := s.cfg.Annotations
	if q == nil || s.cfg.LibratoOff || q.len() == 0 {
		return
	}
	f.inflight.Add(1)
	go func() {
		defer f.inflight.Done()
		sendAnnotations(ctx, f.lane, s)
	}()
}

// len returns the number of annotations queued.
func (q *Annotations) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.q)
}
