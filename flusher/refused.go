package flusher

import (
	"sync"
	"sync/atomic"
	"time"
)

// refusedList remembers the items (measurements, points) the service
// refused alone, for what they hold, in their own period: by identity,
// their name and tags (see output.identity), what tells one series from
// another at the service, so that one tag set refused does not stop the
// others of its name. The requests of the next periods leave them out
// rather than search for them again by splitting (about 2·log2(n)
// requests each time). A refusal may be about one value (a number out of
// range) rather than the series for good, so each entry is forgotten
// refusedFor after it was made, and the series is tried again.
type refusedList struct {
	n     atomic.Int64 // len(until), read without the lock
	mu    sync.Mutex
	until map[string]time.Time // identity -> when it is forgotten
	key   []byte               // scratch for identities, under mu
}

const (
	// maxRefused bounds the refused list; past it, refusals are only
	// dropped, as before, and searched for again in every period.
	maxRefused = 10000
	// refusedFor is how long a refused item is left out of requests.
	refusedFor = time.Hour
)

// add remembers id until now+refusedFor, unless the list is full of
// entries that have not expired, and reports whether it was added.
func (r *refusedList) add(id []byte, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.until == nil {
		r.until = make(map[string]time.Time)
	}
	if _, ok := r.until[string(id)]; !ok && len(r.until) >= maxRefused {
		for k, t := range r.until {
			if !now.Before(t) {
				delete(r.until, k)
			}
		}
		if len(r.until) >= maxRefused {
			return false
		}
	}
	r.until[string(id)] = now.Add(refusedFor)
	r.n.Store(int64(len(r.until)))
	return true
}

// holdsLocked reports whether id is remembered at now, forgetting it
// when it has expired; r.mu is held.
func (r *refusedList) holdsLocked(id []byte, now time.Time) bool {
	t, ok := r.until[string(id)]
	if ok && !now.Before(t) {
		delete(r.until, string(id))
		r.n.Store(int64(len(r.until)))
		return false
	}
	return ok
}

// leaveOutRefused returns b without the items on the refused list, and
// how many it left out, counted as dropped{reason="refused_before"}.
// With the list empty it costs one atomic load.
func (l *lane[B]) leaveOutRefused(b B) (B, int) {
	r := &l.refused
	if r.n.Load() == 0 {
		return b, 0
	}
	now := l.f.now()
	r.mu.Lock()
	rest, removed := l.out.filter(b, func(i int) bool {
		r.key = l.out.identity(r.key[:0], b, i)
		return !r.holdsLocked(r.key, now)
	})
	r.mu.Unlock()
	if removed > 0 {
		l.m.dropped.WithLabelValues("refused_before").Add(float64(removed))
	}
	return rest, removed
}

// rememberRefused puts b's only item, refused alone, on the refused
// list, logging it when it was not there (at most once a minute).
func (l *lane[B]) rememberRefused(s *settings, b B, rf *refusal) {
	if !l.refused.add(l.out.identity(nil, b, 0), l.f.now()) {
		return
	}
	if ok, held := l.logs.allow("refused_before", time.Minute); ok {
		s.cfg.Logger.Warn().Str("output", l.name()).Str("name", l.out.firstName(b)).
			Int("status", rf.status).Str("error", rf.message).Dur("for", refusedFor).Int("held_back", held).
			Msg(l.what + " refused this series alone; not sending it again for a while, counted as dropped (refused_before) (logged at most once a minute)")
	}
}
