// Package flusher closes each aggregation period on a wall-clock boundary,
// turns the period's series into Librato measurements, and delivers them in
// batches with bounded concurrency, retries and backoff. What cannot be
// delivered is kept in a bounded backlog and resent, oldest first, at later
// flushes until it is delivered, refused, or too old.
package flusher

import (
	"context"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/libratod/libratod/aggregator"
	"github.com/libratod/libratod/librato"
	"github.com/libratod/libratod/spool"
)

// Source is where a flush takes the finished period's series from.
type Source interface {
	Snapshot() *aggregator.Snapshot
}

// Sender delivers one batch of measurements.
type Sender interface {
	Send(ctx context.Context, b *librato.Batch) (librato.Result, error)
}

// Config configures a Flusher.
type Config struct {
	// Period is the aggregation period, a whole number of seconds. It
	// cannot change after New.
	Period time.Duration
	// Percentiles are the timer percentiles to send, each in (0,100).
	Percentiles []float64
	// API selects the payload shape: tags (Tagged) or sources (Legacy).
	API librato.API
	// Prefix is prepended, with a ".", to every metric name.
	Prefix string
	// Tags are the global tags of every measurement (Tagged API).
	Tags []librato.Tag
	// Source is the default source (Legacy API).
	Source string
	// BatchSize is the most measurements one request carries.
	BatchSize int
	// Concurrency is the most requests in flight at once, for the current
	// period and for the backlog each.
	Concurrency int
	// MaxAttempts bounds the attempts at a request within its own period;
	// after them it waits in the backlog.
	MaxAttempts int
	// Backlog is the most measurements kept for later when they cannot be
	// delivered now; past it the oldest are dropped. 0 keeps nothing.
	Backlog int
	// MaxAge is the age past which undelivered data is dropped rather than
	// resent; 0 means one hour.
	MaxAge time.Duration
	// MinBackoff and MaxBackoff bound the wait before a retry; the wait
	// doubles per attempt, with jitter. Defaults: 500ms and 30s.
	MinBackoff, MaxBackoff time.Duration
	// ShutdownTimeout bounds the final flush when Run is stopped.
	ShutdownTimeout time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives delivery problems.
	Logger zerolog.Logger
	// Metrics receives the flusher's self-metrics; nil counts nothing.
	Metrics *Metrics
	// Observers see every finished period before it is sent, in order.
	Observers []Observer
	// Include, when not empty, keeps only the series whose name (as
	// received, before Prefix) matches one of its patterns; Exclude then
	// drops those matching one of its own.
	Include, Exclude []*regexp.Regexp
	// SourceRegex, when set, takes the source from the name: when a name
	// matches, its capture groups joined with "." become the legacy source
	// (or a "source" tag on the tagged API) and the whole match is removed
	// from the name.
	SourceRegex *regexp.Regexp
	// Annotations, when set, are sent at every flush (see AnnotationSender).
	Annotations *Annotations
	// CountersAsCounters sends StatsD counters as Librato counters on the
	// legacy API: the running total of each counter since it was first
	// seen (or last expired), rather than each period's sum as a gauge.
	CountersAsCounters bool
	// Spool, when set, keeps what cannot be delivered on disk as well as
	// in the backlog, and is read back (what an earlier process left) by
	// New: see the package spool. Backlog then bounds the memory only;
	// the spool's own size limit bounds what is kept. The flusher does not
	// close it. It cannot change after New.
	Spool *spool.Spool
	// Extra, when set, is called at every flush for measurements to send
	// with the period's own (libratod's self-metrics, say). Their names
	// and tags are sent as given.
	Extra func() []librato.Measurement
}

// Observer is told of every finished period. ObservePeriod is called from
// the flusher's goroutine, outside every lock, before the period is sent;
// it must not keep snap or its series after it returns, nor take long.
type Observer interface {
	ObservePeriod(start time.Time, snap *aggregator.Snapshot)
}

// settings is what a flush reads of the configuration: replaced as a
// whole by Reconfigure, read once per flush or request.
type settings struct {
	cfg      Config
	dst      Sender
	tags     []librato.Tag // sanitized global tags
	source   string        // sanitized default source
	suffixes []string      // ".90", ".99.5", per percentile
}

// Flusher turns periods into Librato requests.
type Flusher struct {
	period time.Duration
	now    func() time.Time
	src    Source
	m      *Metrics
	set    atomic.Pointer[settings]

	backlog  backlog
	stops    stopList
	totals   runningTotals
	inflight sync.WaitGroup
	stopping atomic.Bool // the final flush has begun: deadlines may cancel requests
	// halt, once cancelled by haltNow at the end of the shutdown, ends
	// the requests still under way.
	halt    context.Context
	haltNow context.CancelFunc

	// built counts the measurements built for delivery (including those
	// dropped before a request was made), sent and dropped what became of
	// them; the difference is in flight or in the backlog.
	built, sent, dropped atomic.Int64

	statusMu sync.Mutex
	status   Status

	logs    logLimit // rate limits the warnings of delivery problems
	episode episode  // the failure under way, if any
	// credsLogged: a refusal of the credentials was logged since the
	// last request that succeeded.
	credsLogged atomic.Bool

	sp    *spool.Spool // nil: memory only
	spool spoolState
}

// Status is the flusher's delivery state, for health checks.
type Status struct {
	// LastFlush is when the last period was closed; zero before the first.
	LastFlush time.Time
	// LastDelivered is when a flush last ended with everything it had to
	// send delivered; zero before the first.
	LastDelivered time.Time
	// Pending is the number of measurements waiting to be resent.
	Pending int
	// OldestPending is the period start of the oldest pending measurement;
	// zero when nothing is pending.
	OldestPending time.Time
}

// Status returns the current delivery state.
func (f *Flusher) Status() Status {
	f.statusMu.Lock()
	s := f.status
	f.statusMu.Unlock()
	s.Pending, s.OldestPending = f.backlog.state()
	return s
}

// New returns a Flusher that takes periods from src and sends them to dst.
func New(cfg Config, src Source, dst Sender) *Flusher {
	if cfg.Period <= 0 {
		cfg.Period = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	f := &Flusher{period: cfg.Period, now: cfg.Now, src: src, m: cfg.Metrics, sp: cfg.Spool}
	f.halt, f.haltNow = context.WithCancel(context.Background())
	f.backlog.wake = make(chan struct{}, 1)
	if f.m == nil {
		f.m, _ = NewMetrics(nil) // nothing to register: cannot fail
	}
	f.Reconfigure(cfg, dst)
	if f.sp != nil {
		f.openSpool(f.set.Load())
	}
	return f
}

// Reconfigure replaces the configuration and the Sender from the next
// flush or request on. Period, Now, Metrics and Spool keep their values
// from New. What waits in the backlog is resent at once: new credentials
// may be what it waited for.
func (f *Flusher) Reconfigure(cfg Config, dst Sender) {
	if cfg.BatchSize < 1 {
		cfg.BatchSize = 300
	}
	if cfg.Concurrency < 1 {
		cfg.Concurrency = 4
	}
	if cfg.MaxAttempts < 1 {
		cfg.MaxAttempts = 5
	}
	if cfg.Backlog < 0 {
		cfg.Backlog = 0
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = time.Hour
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 500 * time.Millisecond
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(30*time.Second, cfg.MinBackoff)
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	cfg.Period, cfg.Now, cfg.Metrics, cfg.Spool = f.period, f.now, f.m, f.sp
	s := &settings{cfg: cfg, dst: dst}
	for _, t := range cfg.Tags {
		if n, v := librato.SanitizeTagName(t.Name), librato.SanitizeTagValue(t.Value); n != "" && v != "" {
			s.tags = setTag(s.tags, librato.Tag{Name: n, Value: v})
		}
	}
	s.source = librato.SanitizeSource(cfg.Source)
	for _, p := range cfg.Percentiles {
		s.suffixes = append(s.suffixes, "."+strconv.FormatFloat(p, 'f', -1, 64))
	}
	old := f.set.Swap(s)
	f.backlog.setLimit(cfg.Backlog)
	if old != nil {
		f.backlog.kick()
	}
}

// PeriodStart returns the start of the period that holds t:
// floor(t/period)*period in unix seconds. (time.Time.Truncate counts from
// year 1, not from the unix epoch: for a period that does not divide the
// 62135596800 s between them, 7 s say, its boundaries are not these.)
func (f *Flusher) PeriodStart(t time.Time) time.Time {
	return time.Unix(periodStartUnix(t.Unix(), int64(f.period/time.Second)), 0)
}

// periodStartUnix returns floor(t/period)*period for unix seconds t and a
// period of seconds (at least 1).
func periodStartUnix(t, period int64) int64 {
	start := t - t%period
	if t%period < 0 {
		start -= period
	}
	return start
}

// Result summarises a flush.
type Result struct {
	// Series is the number of series in the period.
	Series int
	// Measurements is the number of measurements built from them,
	// including those dropped before a request was made (a name on the
	// stop list, a name that sanitizes to nothing). In the result of Run,
	// it also counts Carried.
	Measurements int
	// Carried, in the result of Run only, is the number of measurements of
	// earlier periods that were still in flight or waiting in the backlog
	// when the shutdown began.
	Carried int
	// Sent is the number of measurements Librato accepted.
	Sent int
	// Dropped is the number of measurements given up on.
	Dropped int
	// Pending is the number of measurements left in the backlog. In the
	// result of Run, Measurements = Sent + Dropped + Pending.
	Pending int
}

// FirstTime returns the time the first period of a flusher started at
// started is sent with: started rounded up to a whole second. A process
// that starts within a period (a restart, say) thus never sends a point
// with the time the process before it used for its own final flush,
// which is at most the time it stopped.
func FirstTime(started time.Time) time.Time {
	t := started.Truncate(time.Second)
	if t.Before(started) {
		t = t.Add(time.Second)
	}
	return t
}

// Run flushes at every period boundary until ctx ends, resending the
// backlog in between. Each period is sent with the time of its start,
// but for the first, the partial period Run starts in, which is sent with
// FirstTime(now); when that is the next boundary (Run starts in the last
// second of a period), the first period runs on to the boundary after.
//
// When ctx ends, Run flushes the open period and as much of the backlog
// as Config.ShutdownTimeout allows, ends the requests still under way,
// and returns what became of everything it still had to deliver: the
// open period (Series, Measurements) and what earlier periods left in
// flight or in the backlog (Carried); Pending is what is left undelivered.
// If it is stopped less than a second after it started, it returns only
// once the clock has passed its first period's time, so that a process
// started after it cannot use that time again. The open period is never
// stamped after the stop time rounded up to a second: should the clock
// be put back under Run, the final flush takes that time instead of its
// period's (which may then be an earlier period's time).
func (f *Flusher) Run(ctx context.Context) Result {
	drainCtx, stopDrain := context.WithCancel(ctx)
	var drainer sync.WaitGroup
	drainer.Add(1)
	go func() {
		defer drainer.Done()
		f.drainLoop(drainCtx)
	}()

	started := f.now()
	first := FirstTime(started)
	label := first // the time the open period is sent with
	next := f.PeriodStart(started).Add(f.period)
	if !first.Before(next) {
		next = next.Add(f.period)
	}
	for {
		timer := time.NewTimer(next.Sub(f.now()))
		select {
		case <-ctx.Done():
			timer.Stop()
			// A clock put back under Run leaves label after the stop:
			// the final flush is stamped no later than the stop rounded
			// up, as a start is, and waited out below.
			if stop := FirstTime(f.now()); label.After(stop) {
				label = stop
			}
			res := f.shutdown(ctx, &drainer, stopDrain, label)
			if d := label.Sub(f.now()); d >= 0 {
				sleep(context.Background(), min(d, time.Second)+time.Millisecond)
			}
			return res
		case <-timer.C:
		}
		snap := f.src.Snapshot()
		s := f.set.Load()
		totals := f.closePeriod(s, snap, label)
		// A period's own delivery may take until the next boundary after
		// this one; what is left then waits in the backlog.
		dctx, cancel := context.WithDeadline(ctx, next.Add(f.period))
		f.inflight.Add(1)
		go func(label time.Time) {
			defer f.inflight.Done()
			defer cancel()
			f.deliver(dctx, s, snap, label, totals)
		}(label)
		label = next
		next = next.Add(f.period)
	}
}

// shutdown is the end of Run: it flushes the open period, labelled
// label, waits for the earlier periods' deliveries and resends the
// backlog until it is empty or the shutdown timeout passes, then ends
// what is still under way and accounts for every measurement.
func (f *Flusher) shutdown(ctx context.Context, drainer *sync.WaitGroup, stopDrain context.CancelFunc, label time.Time) Result {
	stopDrain()
	drainer.Wait()
	f.stopping.Store(true)
	sent0, dropped0 := f.sent.Load(), f.dropped.Load()
	final, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.set.Load().cfg.ShutdownTimeout)
	defer cancel()
	res := f.Flush(final, label)
	f.wait(final)
	f.drainAll(final)
	// Past the deadline: requests under way are ended (what they carried
	// goes back to the backlog) and the deliveries of earlier periods,
	// which now fail at once, are waited for, so that every measurement
	// is counted below.
	cancel()
	f.haltNow()
	f.inflight.Wait()
	// What is left in memory only goes to the spool now, if it can.
	f.spillMemory(f.set.Load())
	f.syncSpool(f.set.Load())
	built, sent, dropped := f.built.Load(), f.sent.Load(), f.dropped.Load()
	total := int(built - sent0 - dropped0)
	res.Carried = total - res.Measurements
	res.Measurements = total
	res.Sent = int(sent - sent0)
	res.Dropped = int(dropped - dropped0)
	res.Pending = int(built - sent - dropped)
	if n, _ := f.backlog.state(); n != res.Pending {
		f.set.Load().cfg.Logger.Error().Int("backlog", n).Int("unaccounted", res.Pending).
			Msg("measurement accounting is off: please report this")
	}
	return res
}

// wait waits for the periods still being delivered, or for ctx to end.
func (f *Flusher) wait(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		f.inflight.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// Flush closes the current period now, labels it with start, and delivers
// it, returning when every request has succeeded, given up or been put in
// the backlog.
func (f *Flusher) Flush(ctx context.Context, start time.Time) Result {
	snap := f.src.Snapshot()
	s := f.set.Load()
	return f.deliver(ctx, s, snap, start, f.closePeriod(s, snap, start))
}

// closePeriod does what must happen to each period in period order,
// before it is handed to a delivery goroutine: the observers see it, and
// the running totals advance (see advanceTotals, whose result it returns).
func (f *Flusher) closePeriod(s *settings, snap *aggregator.Snapshot, start time.Time) map[*aggregator.Series]float64 {
	f.statusMu.Lock()
	f.status.LastFlush = f.now()
	f.statusMu.Unlock()
	for _, o := range s.cfg.Observers {
		o.ObservePeriod(start, snap)
	}
	return f.advanceTotals(s, snap)
}

// deliver sends one period, closed by closePeriod, which gave totals.
func (f *Flusher) deliver(ctx context.Context, s *settings, snap *aggregator.Snapshot, start time.Time, totals map[*aggregator.Series]float64) Result {
	began := time.Now()
	var annotations sync.WaitGroup
	annotations.Add(1)
	go func() {
		defer annotations.Done()
		f.sendAnnotations(ctx, s)
	}()
	defer annotations.Wait()
	// Measurements are built and sent a batch at a time, Concurrency
	// batches at most under way, so a period with a million series never
	// holds a million measurements at once.
	var mu sync.Mutex
	queued, sent, dropped := 0, 0, 0
	requests := newLimiter(s.cfg.Concurrency)
	res := f.measurements(s, snap, totals, func(ms []librato.Measurement) {
		b := s.batch(ms, start)
		f.built.Add(int64(len(ms)))
		requests.Go(func() {
			o := f.send(ctx, s, b, true)
			var q, lost int
			if o.retry != nil {
				q, lost = f.keep(s, o.retry, o.retryAfter, o.reason)
			} else if o.sent > 0 {
				f.backlog.retryNow() // the API is up: resend what waits
			}
			mu.Lock()
			sent += o.sent
			dropped += o.dropped + lost
			queued += q
			mu.Unlock()
		})
	})
	// Those dropped while building (stop list, bad names) count as built.
	f.built.Add(int64(res.Dropped))
	f.dropped.Add(int64(res.Dropped))
	res.Measurements += res.Dropped
	requests.Wait()
	// One fsync for the period's appends, rather than one each.
	f.syncSpool(s)
	res.Sent += sent
	res.Dropped += dropped
	f.m.flushDuration.Observe(time.Since(began).Seconds())
	if res.Dropped == 0 && queued == 0 {
		f.statusMu.Lock()
		f.status.LastDelivered = f.now()
		f.statusMu.Unlock()
	}
	res.Pending, _ = f.backlog.state()
	if res.Measurements > 0 {
		s.cfg.Logger.Debug().Time("period", start).Dur("took", time.Since(began)).Int("series", res.Series).
			Int("measurements", res.Measurements).Int("sent", res.Sent).Int("dropped", res.Dropped).
			Int("queued", queued).Msg("flushed")
	}
	return res
}

// limiter runs functions in goroutines, at most n at once.
type limiter struct {
	wg  sync.WaitGroup
	sem chan struct{}
}

func newLimiter(n int) *limiter { return &limiter{sem: make(chan struct{}, n)} }

// Go runs fn in a goroutine, first waiting while n are running.
func (l *limiter) Go(fn func()) {
	l.sem <- struct{}{}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer func() { <-l.sem }()
		fn()
	}()
}

// Wait waits for every function started.
func (l *limiter) Wait() { l.wg.Wait() }

// batch makes the request for one batch of measurements of the period
// that starts at start.
func (s *settings) batch(ms []librato.Measurement, start time.Time) *librato.Batch {
	b := &librato.Batch{Time: start.Unix(), Measurements: ms}
	if s.cfg.API == librato.Legacy {
		b.Source = s.source
	} else {
		b.Period = int64(s.cfg.Period / time.Second)
		b.Tags = s.tags
	}
	return b
}
