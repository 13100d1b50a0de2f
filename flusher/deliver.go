package flusher

import (
	"context"
	"errors"
	"math"
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
type outcome struct {
	sent, dropped int
	// retry, when set, is what is left of the batch to resend later.
	retry      *librato.Batch
	retryAfter time.Duration
	reason     string // why the last attempt failed, for the logs
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
func (f *Flusher) send(ctx context.Context, s *settings, b *librato.Batch, inPeriod bool) outcome {
	budget := splitBudget(len(b.Measurements))
	o := f.attempt(ctx, s, b, inPeriod, &budget)
	f.sent.Add(int64(o.sent))
	f.dropped.Add(int64(o.dropped))
	return o
}

// attempt is send without the accounting; budget is what is left of the
// requests it may spend splitting refused requests.
func (f *Flusher) attempt(ctx context.Context, s *settings, b *librato.Batch, inPeriod bool, budget *int) (o outcome) {
	log := s.cfg.Logger
	actx, cancel := f.attemptCtx(ctx)
	defer cancel()
	for attempt := 1; ; attempt++ {
		if f.stopping.Load() && ctx.Err() != nil {
			// The shutdown deadline has passed: no new attempt.
			o.retry, o.reason = b, "the shutdown deadline passed"
			return o
		}
		began := time.Now()
		res, err := s.dst.Send(actx, b)
		f.m.requestDuration.Observe(time.Since(began).Seconds())
		if err == nil {
			f.credsLogged.Store(false)
			f.rateLimit(res.RateLimit)
			f.m.requests.WithLabelValues(strconv.Itoa(res.StatusCode)).Inc()
			if res.Skipped > 0 {
				f.m.dropped.WithLabelValues("not_sendable").Add(float64(res.Skipped))
				if ok, held := f.logs.allow("not_sendable", time.Minute); ok {
					log.Warn().Int("measurements", res.Skipped).Str("first", unsendable(b)).Int("held_back", held).
						Msg("dropping measurements that cannot be sent: a NaN, infinite or too large (|x| > 1e126) number, an empty name, or too many tags (logged at most once a minute)")
				}
			}
			failed := min(res.Failed, res.Sent)
			if len(res.Errors) > 0 {
				f.m.partial.Inc()
				if failed > 0 {
					f.m.dropped.WithLabelValues("partial").Add(float64(failed))
				}
				if ok, held := f.logs.allow("partial", time.Minute); ok {
					log.Warn().Strs("errors", res.Errors).Int("measurements", len(b.Measurements)).
						Int("failed", failed).Bool("failed_known", failed > 0).Int("held_back", held).
						Msg("Librato accepted the request but reported errors (logged at most once a minute)")
				}
			}
			f.m.sent.Add(float64(res.Sent - failed))
			o.sent += res.Sent - failed
			o.dropped += res.Skipped + failed
			return o
		}
		le := f.failed(err)
		n := len(b.Measurements)

		if len(le.TypeConflicts) > 0 {
			rest, removed := f.stripConflicts(s, b, le.TypeConflicts)
			if removed > 0 {
				o.dropped += removed
				if len(rest.Measurements) == 0 {
					return o
				}
				b = rest
				attempt-- // the rest was never refused
				continue
			}
		}
		if !le.Retryable && credentials(le) {
			// Kept, not dropped: the operator may fix the token and
			// reload (Reconfigure resends at once); max_age bounds it.
			if f.credsLogged.CompareAndSwap(false, true) {
				log.Error().Str("hint", "check librato.email and librato.token, then reload (SIGHUP)").
					Int("status", le.StatusCode).Str("error", le.Message).Dur("max_age", s.cfg.MaxAge).
					Msg("Librato refused the credentials; keeping the measurements and resending them until max_age (logged once until a request succeeds)")
			}
			o.retry, o.reason = b, "Librato refused the credentials ("+strconv.Itoa(le.StatusCode)+")"
			return o
		}
		if !le.Retryable {
			if n > 1 && *budget >= 2 && (splittable(le.StatusCode) || len(le.TypeConflicts) > 0) {
				*budget -= 2
				return f.split(ctx, s, b, inPeriod, budget)
			}
			reason := "rejected"
			if len(le.TypeConflicts) > 0 {
				reason = "type_conflict" // on a name it does not hold, or the stop list is full
				if n == 1 {
					// Found alone: its own name is the one in conflict
					// (Librato may spell it otherwise), so that later
					// periods do not search for it again.
					f.stopName(s, b.Measurements[0].Name)
				}
			}
			if ok, held := f.logs.allow("rejected", time.Minute); ok {
				ev := log.Warn()
				if n == 1 {
					ev = ev.Str("name", b.Measurements[0].Name)
				}
				ev.Int("status", le.StatusCode).Str("error", le.Message).Int("measurements", n).Int("held_back", held).
					Msg("Librato refused the request; not resending it (logged at most once a minute)")
			}
			f.m.dropped.WithLabelValues(reason).Add(float64(n))
			o.dropped += n
			return o
		}
		wait := f.backoff(s, attempt, le.RetryAfter)
		if !inPeriod || le.RateLimited || attempt >= s.cfg.MaxAttempts || !f.backlog.empty() ||
			wait > f.period || !roomFor(ctx, wait) {
			log.Debug().Int("status", le.StatusCode).Str("error", le.Message).Int("measurements", n).
				Msg("request failed; keeping it for a later attempt")
			o.retry, o.retryAfter, o.reason = b, le.RetryAfter, le.Error()
			return o
		}
		log.Debug().Int("status", le.StatusCode).Str("error", le.Message).Dur("wait", wait).
			Int("attempt", attempt).Msg("retrying a request")
		f.m.retries.Inc()
		sleep(ctx, wait)
	}
}

// split sends the halves of a refused request apart and merges what
// became of them.
func (f *Flusher) split(ctx context.Context, s *settings, b *librato.Batch, inPeriod bool, budget *int) outcome {
	h := len(b.Measurements) / 2
	lo, hi := *b, *b
	lo.Measurements, hi.Measurements = b.Measurements[:h:h], b.Measurements[h:]
	o := f.attempt(ctx, s, &lo, inPeriod, budget)
	o2 := f.attempt(ctx, s, &hi, inPeriod, budget)
	o.sent += o2.sent
	o.dropped += o2.dropped
	switch {
	case o.retry == nil:
		o.retry, o.retryAfter, o.reason = o2.retry, o2.retryAfter, o2.reason
	case o2.retry != nil:
		r := *o.retry
		r.Measurements = append(slices.Clip(o.retry.Measurements), o2.retry.Measurements...)
		o.retry, o.retryAfter, o.reason = &r, max(o.retryAfter, o2.retryAfter), o2.reason
	}
	return o
}

// unsendable returns the name of the first measurement of b that the
// client cannot encode, as far as can be told here, or "".
func unsendable(b *librato.Batch) string {
	bad := func(v float64) bool { return !(math.Abs(v) <= 1e126) }
	for _, m := range b.Measurements {
		if m.Name == "" {
			return "(empty name)"
		}
		if len(m.Tags) > librato.MaxTags || bad(m.Value) || bad(m.Sum) || bad(m.Min) || bad(m.Max) ||
			bad(m.SumSquares) || bad(m.Last) {
			return m.Name
		}
	}
	return ""
}

// attemptCtx returns the context of the attempts at a request. An attempt
// under way is never cancelled by its period's deadline: Librato may
// already have taken it, and resending it later would count it twice.
// Only the client's own timeout ends it, and the end of the shutdown
// (haltNow), or, once the flusher is stopping (nothing will be resent),
// the shutdown deadline.
func (f *Flusher) attemptCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if f.stopping.Load() {
		return ctx, func() {}
	}
	actx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(f.halt, cancel)
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

// failed counts a failed request by status and returns its error as a
// *librato.Error; any other error is taken as a transport failure, worth
// retrying.
func (f *Flusher) failed(err error) *librato.Error {
	var le *librato.Error
	if !errors.As(err, &le) {
		le = &librato.Error{Message: err.Error(), Retryable: true, Err: err}
	}
	f.rateLimit(le.RateLimit)
	status := "error"
	if le.StatusCode != 0 {
		status = strconv.Itoa(le.StatusCode)
	}
	f.m.requests.WithLabelValues(status).Inc()
	return le
}

// stripConflicts puts the names Librato reported as registered with
// another type on the stop list and returns b without them.
func (f *Flusher) stripConflicts(s *settings, b *librato.Batch, names []string) (*librato.Batch, int) {
	for _, n := range names {
		f.stopName(s, n)
	}
	rest := *b
	rest.Measurements = make([]librato.Measurement, 0, len(b.Measurements))
	for _, m := range b.Measurements {
		if !f.stops.has(m.Name) {
			rest.Measurements = append(rest.Measurements, m)
		}
	}
	removed := len(b.Measurements) - len(rest.Measurements)
	f.m.dropped.WithLabelValues("type_conflict").Add(float64(removed))
	return &rest, removed
}

// stopName puts a name Librato has with another type on the stop list,
// logging it the first time.
func (f *Flusher) stopName(s *settings, n string) {
	if f.stops.add(n) {
		f.m.stopList.Set(float64(f.stops.len()))
		s.cfg.Logger.Error().Str("name", n).
			Msg("Librato has this metric with another type; it is no longer sent (rename it or delete it in Librato, then restart)")
	}
}

// keep puts a batch that could not be delivered in the backlog (and in
// the spool, when there is one) and returns how many measurements it
// queued, or dropped when there is nowhere to keep them. Older
// measurements it pushes out of a full backlog are counted in the metrics
// only: they belong to earlier periods.
func (f *Flusher) keep(s *settings, b *librato.Batch, retryAfter time.Duration, reason string) (queued, lost int) {
	n := len(b.Measurements)
	wait := f.backoff(s, 1, retryAfter)
	if f.sp != nil && f.spoolKeep(s, b, wait) {
		f.updateBacklogGauge()
		f.failing(s, reason)
		return n, 0
	}
	if s.cfg.Backlog == 0 {
		if ok, held := f.logs.allow("backlog_off", time.Minute); ok {
			s.cfg.Logger.Warn().Int("measurements", n).Str("reason", reason).Int("held_back", held).
				Msg("could not deliver a request and the backlog is off; dropping it (logged at most once a minute)")
		}
		f.m.dropped.WithLabelValues("retries_exhausted").Add(float64(n))
		f.dropped.Add(int64(n))
		return 0, n
	}
	evicted, first := f.backlog.push(item{b: b}, wait)
	f.evict(s, evicted, first)
	f.updateBacklogGauge()
	f.failing(s, reason)
	return n, 0
}

// evict deals with the items pushed out of a full backlog: those in the
// spool go back to it (they are resent when the backlog has room), the
// others are dropped. first says this began an episode of dropping.
func (f *Flusher) evict(s *settings, evicted []item, first bool) {
	dropped := 0
	for _, it := range evicted {
		if it.spooled {
			f.spoolRelease(it)
			continue
		}
		dropped += len(it.b.Measurements)
	}
	if dropped > 0 {
		f.dropped.Add(int64(dropped))
		f.m.dropped.WithLabelValues("backlog_full").Add(float64(dropped))
	}
	if first {
		s.cfg.Logger.Warn().Int("backlog", s.cfg.Backlog).
			Msg("the backlog is full: dropping the oldest undelivered measurements (logged once until it drains)")
	}
}

func (f *Flusher) updateBacklogGauge() {
	n, _ := f.backlog.state()
	f.m.backlog.Set(float64(n))
}

// drainLoop resends the backlog whenever it holds something due, until
// ctx ends.
func (f *Flusher) drainLoop(ctx context.Context) {
	for {
		wait, ok := f.backlog.due(time.Now())
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
		case <-f.backlog.wake:
			if t != nil {
				t.Stop()
			}
			continue
		case <-timer:
		}
		f.drainOnce(ctx)
	}
}

// drainAll resends the backlog until it is empty or ctx ends.
func (f *Flusher) drainAll(ctx context.Context) {
	for ctx.Err() == nil {
		wait, ok := f.backlog.due(time.Now())
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
		f.drainOnce(ctx)
	}
}

// drainOnce resends up to Concurrency batches from the head of the
// backlog, oldest first (refilled from the spool first); those that fail
// again go back to the head.
func (f *Flusher) drainOnce(ctx context.Context) {
	s := f.set.Load()
	if f.sp != nil {
		f.refill(s)
	}
	items := f.backlog.take(s.cfg.Concurrency)
	if len(items) == 0 {
		f.updateBacklogGauge()
		f.endEpisode(s)
		return
	}
	oldest := f.now().Add(-s.cfg.MaxAge).Unix()
	live := items[:0]
	tooOld := 0
	for _, it := range items {
		if it.b.Time < oldest {
			tooOld += len(it.b.Measurements)
			f.spoolDone(it, "too_old")
			continue
		}
		live = append(live, it)
	}
	if tooOld > 0 {
		f.dropped.Add(int64(tooOld))
		f.m.dropped.WithLabelValues("too_old").Add(float64(tooOld))
		s.cfg.Logger.Warn().Int("measurements", tooOld).Dur("max_age", s.cfg.MaxAge).
			Msg("dropping undelivered measurements older than max_age")
	}
	failed := make([]item, len(live)) // in the order taken
	var retryAfter atomic.Int64
	var reason atomic.Value
	requests := newLimiter(s.cfg.Concurrency)
	for i, it := range live {
		requests.Go(func() {
			f.m.retries.Inc()
			o := f.send(ctx, s, it.b, false)
			if o.retry != nil {
				// What is left keeps the record until spoolRewrite
				// replaces it, below, when it is only part of it.
				failed[i] = item{b: o.retry, id: it.id, spooled: it.spooled}
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
			f.spoolDone(it, why)
		})
	}
	requests.Wait()
	anyFailed := false
	for i, it := range failed {
		if it.b == nil {
			continue
		}
		anyFailed = true
		if it.spooled && len(it.b.Measurements) < len(live[i].b.Measurements) {
			// A split delivered part of the record: only the rest may
			// be read back from the spool (a refill, a restart).
			failed[i], _ = f.spoolRewrite(s, it.id, it.b)
		}
	}
	failed = slices.DeleteFunc(failed, func(it item) bool { return it.b == nil })
	if anyFailed {
		evicted := f.backlog.putBack(failed, func(attempt int) time.Duration {
			return f.backoff(s, attempt, time.Duration(retryAfter.Load()))
		})
		f.evict(s, evicted, false)
	} else {
		f.backlog.succeeded()
	}
	f.updateBacklogGauge()
	if r, ok := reason.Load().(string); ok {
		f.failing(s, r)
	} else {
		f.endEpisode(s)
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
func (f *Flusher) failing(s *settings, reason string) {
	e := &f.episode
	e.mu.Lock()
	defer e.mu.Unlock()
	now := time.Now()
	waiting, _ := f.backlog.state()
	if !e.active {
		e.active, e.began, e.reason = true, now, reason
		e.sent, e.dropped = f.sent.Load(), f.dropped.Load()
		ok, held := f.logs.allow("episode", time.Minute)
		e.logged = ok
		if ok {
			e.lastLog = now
			s.cfg.Logger.Warn().Str("reason", reason).Int("waiting", waiting).Int("episodes_held_back", held).
				Msg("cannot deliver to Librato: keeping measurements in the backlog and resending them")
		}
		return
	}
	e.reason = reason
	if now.Sub(e.lastLog) >= episodeReminder {
		e.lastLog = now
		s.cfg.Logger.Warn().Str("reason", reason).Int("waiting", waiting).Dur("for", now.Sub(e.began)).
			Int64("delivered", f.sent.Load()-e.sent).Int64("dropped", f.dropped.Load()-e.dropped).
			Msg("still cannot deliver to Librato")
	}
}

// endEpisode ends the episode under way, if any, once the backlog is
// empty, logging how long it lasted and what became of the measurements
// meanwhile.
func (f *Flusher) endEpisode(s *settings) {
	e := &f.episode
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.active || !f.backlog.empty() {
		return
	}
	e.active = false
	if e.logged || time.Since(e.began) >= episodeReminder {
		s.cfg.Logger.Warn().Str("reason", e.reason).Dur("lasted", time.Since(e.began)).
			Int64("delivered", f.sent.Load()-e.sent).Int64("dropped", f.dropped.Load()-e.dropped).
			Msg("delivering to Librato again: the backlog is empty")
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
func (f *Flusher) backoff(s *settings, attempt int, retryAfter time.Duration) time.Duration {
	d := s.cfg.MinBackoff << min(max(attempt-1, 0), 20)
	if d <= 0 || d > s.cfg.MaxBackoff {
		d = s.cfg.MaxBackoff
	}
	d = d/2 + rand.N(d/2+1)
	return max(d, retryAfter)
}

// rateLimit records what the rate-limit headers of a response said.
func (f *Flusher) rateLimit(rl librato.RateLimit) {
	if rl.Agg.Present {
		f.m.rateLimit.WithLabelValues("agg").Set(float64(rl.Agg.Remaining))
	}
	if rl.Std.Present {
		f.m.rateLimit.WithLabelValues("std").Set(float64(rl.Std.Remaining))
	}
}
