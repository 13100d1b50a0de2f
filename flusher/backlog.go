package flusher

import (
	"slices"
	"sync"
	"time"

	"github.com/libratod/libratod/spool"
)

// item is one undelivered batch in the backlog, of n items of the period
// at unix time t; spooled when it is also in the spool (taken: in flight
// there), under id.
type item[B any] struct {
	b       B
	n       int
	t       int64
	id      spool.ID
	spooled bool
}

// item returns the backlog item of b.
func (l *lane[B]) item(b B) item[B] {
	return item[B]{b: b, n: l.out.size(b), t: l.out.unix(b)}
}

// backlog holds undelivered batches, oldest first, up to a number of
// measurements in memory. With a spool, it is a window on the spool's
// head: disk counts the measurements of records waiting in the spool and
// not (yet) in memory, all newer than those in memory but for the rare
// batch the spool could not take.
type backlog[B any] struct {
	mu          sync.Mutex
	q           []item[B]
	n           int   // measurements in q
	disk        int   // measurements waiting in the spool only
	diskOldest  int64 // time of the oldest of them, when disk > 0
	limit       int
	failures    int           // consecutive failed resends
	next        time.Time     // no resend before
	overflowing bool          // dropping since the backlog was last empty
	wake        chan struct{} // made by New; a push wakes the resender
	// kicked: the configuration changed (credentials, say) while a resend
	// was under way: what it puts back is resent at once.
	kicked bool
}

func (q *backlog[B]) setLimit(n int) {
	q.mu.Lock()
	q.limit = n
	q.mu.Unlock()
}

func (q *backlog[B]) empty() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.q) == 0 && q.disk == 0
}

// state returns the measurements waiting, in memory and in the spool, and
// the time of the oldest.
func (q *backlog[B]) state() (int, time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	switch {
	case len(q.q) > 0:
		oldest := q.q[0].t
		if q.disk > 0 {
			oldest = min(oldest, q.diskOldest)
		}
		return q.n + q.disk, time.Unix(oldest, 0)
	case q.disk > 0:
		return q.disk, time.Unix(q.diskOldest, 0)
	}
	return 0, time.Time{}
}

// memory returns the measurements in memory and those in the spool only.
func (q *backlog[B]) memory() (n, disk int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n, q.disk
}

// schedule makes the first resend of an empty backlog wait; the caller
// holds mu.
func (q *backlog[B]) schedule(wait time.Duration) {
	if len(q.q) == 0 && q.disk == 0 && q.next.Before(time.Now()) {
		q.next = time.Now().Add(wait)
	}
}

// push appends it, evicting the oldest items past the limit (see trim). A
// push to an empty backlog schedules the first resend after wait.
func (q *backlog[B]) push(it item[B], wait time.Duration) (evicted []item[B], first bool) {
	q.mu.Lock()
	q.schedule(wait)
	q.q = append(q.q, it)
	q.n += it.n
	evicted, first = q.trim()
	q.mu.Unlock()
	q.poke()
	return evicted, first
}

// pushSpooled appends a spooled item the caller made room for (it
// evicts nothing: memory holds at most the limit and one more batch).
func (q *backlog[B]) pushSpooled(it item[B], wait time.Duration) {
	q.mu.Lock()
	q.schedule(wait)
	q.q = append(q.q, it)
	q.n += it.n
	q.mu.Unlock()
	q.poke()
}

// trim removes the oldest items past the limit and returns them, and
// whether this began an episode of dropping (an evicted item that is not
// spooled is lost). The caller holds mu.
func (q *backlog[B]) trim() (evicted []item[B], first bool) {
	for q.n > q.limit && len(q.q) > 0 {
		it := q.q[0]
		evicted = append(evicted, it)
		q.n -= it.n
		q.q[0] = item[B]{}
		q.q = q.q[1:]
		if !it.spooled && !q.overflowing {
			q.overflowing, first = true, true
		}
	}
	return evicted, first
}

// addDisk records a batch of n measurements of time t kept in the spool
// only. On an empty backlog it schedules the first resend after wait.
func (q *backlog[B]) addDisk(n int, t int64, wait time.Duration) {
	q.mu.Lock()
	q.schedule(wait)
	if q.disk == 0 || t < q.diskOldest {
		q.diskOldest = t
	}
	q.disk += n
	q.mu.Unlock()
	q.poke()
}

// fromDisk records n measurements of the spool gone (taken into memory,
// dropped or lost); oldest, when ok, is the time of the oldest left, and
// !ok says nothing is left.
func (q *backlog[B]) fromDisk(n int, oldest int64, ok bool) {
	q.mu.Lock()
	q.disk = max(q.disk-n, 0)
	if !ok {
		q.disk = 0
	}
	if ok && oldest != 0 {
		q.diskOldest = oldest
	}
	q.mu.Unlock()
}

func (q *backlog[B]) poke() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// due reports whether anything waits and how long until it may be resent.
func (q *backlog[B]) due(now time.Time) (time.Duration, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.q) == 0 && q.disk == 0 {
		return 0, false
	}
	return max(q.next.Sub(now), 0), true
}

// take removes up to k items from the head.
func (q *backlog[B]) take(k int) []item[B] {
	q.mu.Lock()
	defer q.mu.Unlock()
	k = min(k, len(q.q))
	out := slices.Clone(q.q[:k])
	for i := range k {
		q.n -= q.q[i].n
		q.q[i] = item[B]{}
	}
	q.q = q.q[k:]
	return out
}

// putBack returns failed items to the head, in order, schedules the next
// resend after backoff(failures), and evicts what is then past the limit
// (see trim).
func (q *backlog[B]) putBack(its []item[B], backoff func(attempt int) time.Duration) (evicted []item[B]) {
	q.mu.Lock()
	q.q = append(slices.Clone(its), q.q...)
	for _, it := range its {
		q.n += it.n
	}
	q.failures++
	q.next = time.Now().Add(backoff(q.failures))
	if q.kicked {
		q.kicked, q.failures, q.next = false, 0, time.Time{}
	}
	// Batches pushed meanwhile may have passed the limit.
	evicted, _ = q.trim()
	q.mu.Unlock()
	return evicted
}

// retryNow lets the next resend go at once: the API has just taken a
// request, or the configuration (the credentials) changed.
func (q *backlog[B]) retryNow() {
	q.mu.Lock()
	nonEmpty := len(q.q) > 0 || q.disk > 0
	if nonEmpty {
		q.next = time.Time{}
	}
	q.mu.Unlock()
	if nonEmpty {
		q.poke()
	}
}

// kick makes the next resend go at once, and that of what a resend
// under way puts back: the configuration changed.
func (q *backlog[B]) kick() {
	q.mu.Lock()
	q.kicked, q.failures = true, 0
	q.mu.Unlock()
	q.retryNow()
}

// succeeded records a resend that went through: the next may go at once.
func (q *backlog[B]) succeeded() {
	q.mu.Lock()
	q.failures = 0
	q.next = time.Time{}
	if len(q.q) == 0 {
		q.overflowing = false
	}
	q.mu.Unlock()
}
