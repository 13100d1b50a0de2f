package flusher

import (
	"context"
	"math/bits"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libratod/libratod/librato"
)

// outcome is what became of one batch.
type outcome[B any] struct {
	sent, dropped int
	// retry, when ok, is what is left of the batch to resend later.
	retry      B
	ok         bool
	retryAfter time.Duration
	reason     string // why the last attempt failed, for the logs
	// early, when not nil, is the spool record written at the first
	// in-period failure, for keep (see spoolearly.go).
	early *early[B]
	// aloneWhy is the refusal of the last of alone, for the log.
	aloneWhy *refusal
	// alone holds the items refused alone, for what they hold, in
	// their own period (one item each), for the refused list.
	alone []B
}

// splitBudget returns the most requests spent finding the measurements a
// refused request of n holds, by halves: enough for two bad measurements
// (one costs about 2·log2(n) requests: 18 for 300).
func splitBudget(n int) int {
	return 4*bits.Len(uint(n)) + 2
}

// credentials reports whether Librato refused a request for its
// credentials: a 401, or a 403 that is not a rate limit.
func credentials(le *librato.Error) bool {
	return le.StatusCode == 401 || (le.StatusCode == 403 && !le.RateLimited)
}

// splittable reports whether a refusal with this status may be due to
// some of a request's measurements rather than to the request itself (its
// credentials, URL or content type): 400, 413, 422.
func splittable(status int) bool {
	return status == 400 || status == 413 || status == 422
}

// send delivers b. Within its own period (inPeriod) a retryable failure is
// retried in place up to MaxAttempts while ctx allows and nothing older
// waits in the backlog; a backlog resend makes one attempt. What is still
// worth sending is returned in outcome.retry.
//
// A request refused for what it holds (400, 413, 422, or a type conflict
// on no name it holds) is split in halves, each sent on its own, down to
// the measurements refused alone, within splitBudget requests; the rest
// is delivered.
//
// In its own period, a request leaves out the items refused alone in an
// earlier one (see refusedList).
func (l *lane[B]) send(ctx context.Context, s *settings, b B, inPeriod bool) outcome[B] {
	var o outcome[B]
	if inPeriod {
		var refused int
		if b, refused = l.leaveOutRefused(b); refused > 0 {
			o.dropped = refused
			if l.out.size(b) == 0 {
				l.dropped.Add(int64(o.dropped))
				return o
			}
		}
	}
	budget := splitBudget(l.out.size(b))
	var e *early[B]
	if inPeriod && l.sp != nil {
		e = &early[B]{b: b}
	}
	o2 := l.settleEarly(l.attempt(ctx, s, b, inPeriod, &budget, e), e)
	if o2.sent > 0 {
		// The service took the others: the refusals were about the
		// items, not about the request (its time, say), so later
		// periods leave them out for a while rather than search for
		// them again.
		for _, one := range o2.alone {
			l.rememberRefused(s, one, o2.aloneWhy)
		}
	}
	o2.dropped += o.dropped
	l.sent.Add(int64(o2.sent))
	l.dropped.Add(int64(o2.dropped))
	return o2
}

// attempt is send without the accounting; budget is what is left of the
// requests it may spend splitting refused requests; e, when not nil, is
// where the request is spooled before its first in-period retry.
func (l *lane[B]) attempt(ctx context.Context, s *settings, b B, inPeriod bool, budget *int, e *early[B]) (o outcome[B]) {
	log := s.cfg.Logger
	actx, cancel := l.attemptCtx(ctx)
	defer cancel()
	for attempt := 1; ; attempt++ {
		if l.f.stopping.Load() && ctx.Err() != nil {
			// The shutdown deadline has passed: no new attempt.
			o.retry, o.ok, o.reason = b, true, "the shutdown deadline passed"
			return o
		}
		began := time.Now()
		res, rf := l.out.send(actx, l, s, b)
		l.m.requestDuration.Observe(time.Since(began).Seconds())
		if rf == nil {
			l.credsLogged.Store(false)
			if res.status != 0 {
				l.m.requests.WithLabelValues(strconv.Itoa(res.status)).Inc()
			}
			if res.skipped > 0 {
				l.m.dropped.WithLabelValues("not_sendable").Add(float64(res.skipped))
				if ok, held := l.logs.allow("not_sendable", time.Minute); ok {
					log.Warn().Str("output", l.name()).Int("measurements", res.skipped).Str("first", res.skippedName).Int("held_back", held).
						Msg("dropping measurements that cannot be sent: a NaN, infinite or too large number, an empty name, or too many tags (logged at most once a minute)")
				}
			}
			failed := min(res.failed, res.sent)
			if len(res.errors) > 0 || failed > 0 {
				l.m.partial.Inc()
				if failed > 0 {
					l.m.dropped.WithLabelValues("partial").Add(float64(failed))
				}
				if ok, held := l.logs.allow("partial", time.Minute); ok {
					log.Warn().Str("output", l.name()).Strs("errors", res.errors).Int("measurements", l.out.size(b)).
						Int("failed", failed).Bool("failed_known", failed > 0).Int("held_back", held).
						Msg(l.what + " accepted the request but reported errors (logged at most once a minute)")
				}
			}
			l.m.sent.Add(float64(res.sent - failed))
			o.sent += res.sent - failed
			o.dropped += res.skipped + failed
			return o
		}
		l.failed(rf)
		n := l.out.size(b)

		if len(rf.conflicts) > 0 {
			rest, removed := l.stripConflicts(s, b, rf.conflicts)
			if removed > 0 {
				o.dropped += removed
				if l.out.size(rest) == 0 {
					return o
				}
				b = rest
				attempt-- // the rest was never refused
				continue
			}
		}
		if !rf.retryable && rf.credentials {
			// Kept, not dropped: the operator may fix the token and
			// reload (Reconfigure resends at once); max_age bounds it.
			if l.credsLogged.CompareAndSwap(false, true) {
				log.Error().Str("output", l.name()).Str("hint", "check the credentials, then reload (SIGHUP)").
					Int("status", rf.status).Str("error", rf.message).Dur("max_age", s.cfg.MaxAge).
					Msg(l.what + " refused the credentials; keeping the measurements and resending them until max_age (logged once until a request succeeds)")
			}
			o.retry, o.ok, o.reason = b, true, l.what+" refused the credentials ("+strconv.Itoa(rf.status)+")"
			return o
		}
		if !rf.retryable {
			if n > 1 && *budget >= 2 && (rf.splittable || len(rf.conflicts) > 0) {
				*budget -= 2
				return l.split(ctx, s, b, inPeriod, budget, e)
			}
			reason := "rejected"
			if len(rf.conflicts) > 0 {
				reason = "type_conflict" // on a name it does not hold, or the stop list is full
				if n == 1 {
					// Found alone: its own name is the one in conflict
					// (Librato may spell it otherwise), so that later
					// periods do not search for it again.
					l.stopName(s, l.out.firstName(b))
				}
			} else if n == 1 && inPeriod && rf.splittable {
				o.alone = append(o.alone, b)
				o.aloneWhy = rf
			}
			if ok, held := l.logs.allow("rejected", time.Minute); ok {
				ev := log.Warn().Str("output", l.name())
				if n == 1 {
					ev = ev.Str("name", l.out.firstName(b))
				}
				ev.Int("status", rf.status).Str("error", rf.message).Int("measurements", n).Int("held_back", held).
					Msg(l.what + " refused the request; not resending it (logged at most once a minute)")
			}
			l.m.dropped.WithLabelValues(reason).Add(float64(n))
			o.dropped += n
			return o
		}
		wait := l.backoff(s, attempt, rf.retryAfter)
		if !inPeriod || rf.rateLimited || attempt >= s.cfg.MaxAttempts || !l.backlog.empty() ||
			wait > l.f.period || !roomFor(ctx, wait) {
			log.Debug().Str("output", l.name()).Int("status", rf.status).Str("error", rf.message).Int("measurements", n).
				Msg("request failed; keeping it for a later attempt")
			o.retry, o.ok, o.retryAfter, o.reason = b, true, rf.retryAfter, rf.Error()
			return o
		}
		log.Debug().Str("output", l.name()).Int("status", rf.status).Str("error", rf.message).Dur("wait", wait).
			Int("attempt", attempt).Msg("retrying a request")
		l.m.retries.Inc()
		l.spoolBeforeRetry(s, e)
		sleep(ctx, wait)
	}
}

// split sends the halves of a refused request apart and merges what
// became of them.
func (l *lane[B]) split(ctx context.Context, s *settings, b B, inPeriod bool, budget *int, e *early[B]) outcome[B] {
	lo, hi := l.out.halves(b)
	o := l.attempt(ctx, s, lo, inPeriod, budget, e)
	o2 := l.attempt(ctx, s, hi, inPeriod, budget, e)
	o.sent += o2.sent
	o.dropped += o2.dropped
	if len(o2.alone) > 0 {
		o.alone, o.aloneWhy = append(o.alone, o2.alone...), o2.aloneWhy
	}
	switch {
	case !o.ok:
		o.retry, o.ok, o.retryAfter, o.reason = o2.retry, o2.ok, o2.retryAfter, o2.reason
	case o2.ok:
		o.retry, o.retryAfter, o.reason = l.out.join(o.retry, o2.retry), max(o.retryAfter, o2.retryAfter), o2.reason
	}
	return o
}

// attemptCtx returns the context of the attempts at a request. An attempt
// under way is never cancelled by its period's deadline: Librato may
// already have taken it, and resending it later would count it twice.
// Only the client's own timeout ends it, and the end of the shutdown
// (haltNow), or, once the flusher is stopping (nothing will be resent),
// the shutdown deadline.
func (l *lane[B]) attemptCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if l.f.stopping.Load() {
		return ctx, func() {}
	}
	actx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(l.f.halt, cancel)
	return actx, func() {
		stop()
		cancel()
	}
}

// roomFor reports whether ctx leaves time to wait d and try again.
func roomFor(ctx context.Context, d time.Duration) bool {
	dl, ok := ctx.Deadline()
	return ctx.Err() == nil && (!ok || !time.Now().Add(d).After(dl))
}

// sleep waits for d or for ctx to end.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// failed counts a failed request by status.
func (l *lane[B]) failed(rf *refusal) {
	status := "error"
	if rf.status != 0 {
		status = strconv.Itoa(rf.status)
	}
	l.m.requests.WithLabelValues(status).Inc()
}

// stripConflicts puts the names the output reported as registered with
// another type on the stop list and returns b without them.
func (l *lane[B]) stripConflicts(s *settings, b B, names []string) (B, int) {
	for _, n := range names {
		l.stopName(s, n)
	}
	rest, removed := l.out.without(b, l.stops.has)
	l.m.dropped.WithLabelValues("type_conflict").Add(float64(removed))
	return rest, removed
}

// stopName puts a name Librato has with another type on the stop list,
// logging it the first time.
func (l *lane[B]) stopName(s *settings, n string) {
	if l.stops.add(n) {
		l.m.stopList.Set(float64(l.stops.len()))
		s.cfg.Logger.Error().Str("output", l.name()).Str("name", n).
			Msg(l.what + " has this metric with another type; it is no longer sent (rename it or delete it there, then restart)")
	}
}

// keep puts a batch that could not be delivered in the backlog (and in
// the spool, when there is one) and returns how many measurements it
// queued, or dropped when there is nowhere to keep them. Older
// measurements it pushes out of a full backlog are counted in the metrics
// only: they belong to earlier periods.
func (l *lane[B]) keep(s *settings, b B, retryAfter time.Duration, reason string, e *early[B]) (queued, lost int) {
	n := l.out.size(b)
	wait := l.backoff(s, 1, retryAfter)
	if e.spooled() && l.keepEarly(s, e.it, b, wait) {
		l.updateBacklogGauge()
		l.failing(s, reason)
		return n, 0
	}
	if l.sp != nil && !e.spooled() && !e.unwritable() && l.spoolKeep(s, b, wait) {
		l.updateBacklogGauge()
		l.failing(s, reason)
		return n, 0
	}
	if s.cfg.Backlog == 0 {
		if ok, held := l.logs.allow("backlog_off", time.Minute); ok {
			s.cfg.Logger.Warn().Int("measurements", n).Str("reason", reason).Int("held_back", held).
				Msg("could not deliver a request and the backlog is off; dropping it (logged at most once a minute)")
		}
		l.m.dropped.WithLabelValues("retries_exhausted").Add(float64(n))
		l.dropped.Add(int64(n))
		return 0, n
	}
	evicted, first := l.backlog.push(l.item(b), wait)
	l.evict(s, evicted, first)
	l.updateBacklogGauge()
	l.failing(s, reason)
	return n, 0
}

// evict deals with the items pushed out of a full backlog: those in the
// spool go back to it (they are resent when the backlog has room), the
// others are dropped. first says this began an episode of dropping.
func (l *lane[B]) evict(s *settings, evicted []item[B], first bool) {
	dropped := 0
	for _, it := range evicted {
		if it.spooled {
			l.spoolRelease(it)
			continue
		}
		dropped += it.n
	}
	if dropped > 0 {
		l.dropped.Add(int64(dropped))
		l.m.dropped.WithLabelValues("backlog_full").Add(float64(dropped))
	}
	if first {
		s.cfg.Logger.Warn().Int("backlog", s.cfg.Backlog).
			Msg("the backlog is full: dropping the oldest undelivered measurements (logged once until it drains)")
	}
}

func (l *lane[B]) updateBacklogGauge() {
	n, _ := l.backlog.state()
	l.m.backlog.Set(float64(n))
}

// drainLoop resends the backlog whenever it holds something due, until
// ctx ends.
func (l *lane[B]) drainLoop(ctx context.Context) {
	for {
		wait, ok := l.backlog.due(time.Now())
		var timer <-chan time.Time
		var t *time.Timer
		if ok {
			t = time.NewTimer(wait)
			timer = t.C
		}
		select {
		case <-ctx.Done():
			if t != nil {
				t.Stop()
			}
			return
		case <-l.backlog.wake:
			if t != nil {
				t.Stop()
			}
			continue
		case <-timer:
		}
		l.drainOnce(ctx)
	}
}

// drainAll resends the backlog until it is empty or ctx ends.
func (l *lane[B]) drainAll(ctx context.Context) {
	for ctx.Err() == nil {
		wait, ok := l.backlog.due(time.Now())
		if !ok {
			return
		}
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		l.drainOnce(ctx)
	}
}

// drainOnce resends up to Concurrency batches from the head of the
// backlog, oldest first (refilled from the spool first); those that fail
// again go back to the head.
func (l *lane[B]) drainOnce(ctx context.Context) {
	s := l.set.Load()
	if l.sp != nil {
		l.refill(s)
	}
	items := l.backlog.take(s.cfg.Concurrency)
	if len(items) == 0 {
		l.updateBacklogGauge()
		l.endEpisode(s)
		return
	}
	oldest := l.f.now().Add(-s.cfg.MaxAge).Unix()
	live := items[:0]
	tooOld := 0
	for _, it := range items {
		if it.t < oldest {
			tooOld += it.n
			l.spoolDone(it, "too_old")
			continue
		}
		live = append(live, it)
	}
	if tooOld > 0 {
		l.dropped.Add(int64(tooOld))
		l.m.dropped.WithLabelValues("too_old").Add(float64(tooOld))
		s.cfg.Logger.Warn().Int("measurements", tooOld).Dur("max_age", s.cfg.MaxAge).
			Msg("dropping undelivered measurements older than max_age")
	}
	failed := make([]item[B], len(live)) // in the order taken
	var retryAfter atomic.Int64
	var reason atomic.Value
	requests := newLimiter(s.cfg.Concurrency)
	for i, it := range live {
		requests.Go(func() {
			l.m.retries.Inc()
			o := l.send(ctx, s, it.b, false)
			if o.ok {
				// What is left keeps the record until spoolRewrite
				// replaces it, below, when it is only part of it.
				failed[i] = l.item(o.retry)
				failed[i].id, failed[i].spooled = it.id, it.spooled
				reason.Store(o.reason)
				for {
					cur := retryAfter.Load()
					if int64(o.retryAfter) <= cur || retryAfter.CompareAndSwap(cur, int64(o.retryAfter)) {
						break
					}
				}
				return
			}
			why := "delivered"
			if o.sent == 0 {
				why = "rejected"
			}
			l.spoolDone(it, why)
		})
	}
	requests.Wait()
	anyFailed := false
	for i, it := range failed {
		if it.n == 0 {
			continue
		}
		anyFailed = true
		if it.spooled && it.n < live[i].n {
			// A split delivered part of the record: only the rest may
			// be read back from the spool (a refill, a restart).
			failed[i], _ = l.spoolRewrite(s, it.id, it.b)
		}
	}
	failed = slices.DeleteFunc(failed, func(it item[B]) bool { return it.n == 0 })
	if anyFailed {
		evicted := l.backlog.putBack(failed, func(attempt int) time.Duration {
			return l.backoff(s, attempt, time.Duration(retryAfter.Load()))
		})
		l.evict(s, evicted, false)
	} else {
		l.backlog.succeeded()
	}
	l.updateBacklogGauge()
	if r, ok := reason.Load().(string); ok {
		l.failing(s, r)
	} else {
		l.endEpisode(s)
	}
}

// episode is a delivery failure that lasts: from the first request kept
// in the backlog to the moment the backlog is empty again.
type episode struct {
	mu      sync.Mutex
	active  bool
	logged  bool      // its start was logged (not held back by the rate limit)
	began   time.Time // when it started
	lastLog time.Time
	reason  string
	// sent and dropped are the flusher's counts when it started.
	sent, dropped int64
}

// Reminders of an episode under way are logged this often.
const episodeReminder = 10 * time.Minute

// failing records a request that failed and was kept for later, for
// reason: it starts an episode, logged at warn (at most one start a
// minute), or, every episodeReminder, reminds of the one under way.
func (l *lane[B]) failing(s *settings, reason string) {
	e := &l.episode
	e.mu.Lock()
	defer e.mu.Unlock()
	now := time.Now()
	waiting, _ := l.backlog.state()
	if !e.active {
		e.active, e.began, e.reason = true, now, reason
		e.sent, e.dropped = l.sent.Load(), l.dropped.Load()
		ok, held := l.logs.allow("episode", time.Minute)
		e.logged = ok
		if ok {
			e.lastLog = now
			s.cfg.Logger.Warn().Str("output", l.name()).Str("reason", reason).Int("waiting", waiting).Int("episodes_held_back", held).
				Msg("cannot deliver to " + l.what + ": keeping measurements in the backlog and resending them")
		}
		return
	}
	e.reason = reason
	if now.Sub(e.lastLog) >= episodeReminder {
		e.lastLog = now
		s.cfg.Logger.Warn().Str("reason", reason).Int("waiting", waiting).Dur("for", now.Sub(e.began)).
			Int64("delivered", l.sent.Load()-e.sent).Int64("dropped", l.dropped.Load()-e.dropped).
			Str("output", l.name()).Msg("still cannot deliver to " + l.what)
	}
}

// endEpisode ends the episode under way, if any, once the backlog is
// empty, logging how long it lasted and what became of the measurements
// meanwhile.
func (l *lane[B]) endEpisode(s *settings) {
	e := &l.episode
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.active || !l.backlog.empty() {
		return
	}
	e.active = false
	if e.logged || time.Since(e.began) >= episodeReminder {
		s.cfg.Logger.Warn().Str("reason", e.reason).Dur("lasted", time.Since(e.began)).
			Int64("delivered", l.sent.Load()-e.sent).Int64("dropped", l.dropped.Load()-e.dropped).
			Str("output", l.name()).Msg("delivering to " + l.what + " again: the backlog is empty")
	}
}

// logLimit lets through one log entry a key per interval, counting those
// it holds back.
type logLimit struct {
	mu   sync.Mutex
	last map[string]time.Time
	held map[string]int
}

// allow reports whether an entry for key may be logged now, and how many
// were held back since the last one.
func (l *logLimit) allow(key string, every time.Duration) (ok bool, held int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		l.last, l.held = map[string]time.Time{}, map[string]int{}
	}
	now := time.Now()
	if last, seen := l.last[key]; seen && now.Sub(last) < every {
		l.held[key]++
		return false, 0
	}
	l.last[key] = now
	held = l.held[key]
	l.held[key] = 0
	return true, held
}

// backoff returns the wait before attempt+1: MinBackoff doubled per
// attempt, capped at MaxBackoff, with jitter in [d/2, d], or the server's
// Retry-After when that is longer.
func (l *lane[B]) backoff(s *settings, attempt int, retryAfter time.Duration) time.Duration {
	d := s.cfg.MinBackoff << min(max(attempt-1, 0), 20)
	if d <= 0 || d > s.cfg.MaxBackoff {
		d = s.cfg.MaxBackoff
	}
	d = d/2 + rand.N(d/2+1)
	return max(d, retryAfter)
}

// rateLimit records what the rate-limit headers of a response said.
func (m *laneMetrics) setRateLimit(rl librato.RateLimit) {
	if rl.Agg.Present {
		m.rateLimit.WithLabelValues("agg").Set(float64(rl.Agg.Remaining))
	}
	if rl.Std.Present {
		m.rateLimit.WithLabelValues("std").Set(float64(rl.Std.Remaining))
	}
}
