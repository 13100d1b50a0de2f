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

	statusMu sync.Mutex
	status   Status
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
	f := &Flusher{period: cfg.Period, now: cfg.Now, src: src, m: cfg.Metrics}
	f.backlog.wake = make(chan struct{}, 1)
	if f.m == nil {
		f.m, _ = NewMetrics(nil) // nothing to register: cannot fail
	}
	f.Reconfigure(cfg, dst)
	return f
}

// Reconfigure replaces the configuration and the Sender from the next
// flush or request on. Period, Now and Metrics keep their values from New.
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
	cfg.Period, cfg.Now, cfg.Metrics = f.period, f.now, f.m
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
	f.set.Store(s)
	f.backlog.setLimit(cfg.Backlog)
}

// PeriodStart returns the start of the period that holds t:
// floor(t/period)*period.
func (f *Flusher) PeriodStart(t time.Time) time.Time {
	return t.Truncate(f.period)
}

// Result summarises a flush.
type Result struct {
	// Series is the number of series in the period.
	Series int
	// Measurements is the number of measurements built from them.
	Measurements int
	// Sent is the number of measurements Librato accepted.
	Sent int
	// Dropped is the number of measurements given up on.
	Dropped int
	// Pending is the number of measurements left in the backlog.
	Pending int
}

// Run flushes at every period boundary until ctx ends, resending the
// backlog in between. Then it flushes the open period and as much of the
// backlog as Config.ShutdownTimeout allows, and returns the result of that
// last flush, with Pending giving what is left undelivered.
func (f *Flusher) Run(ctx context.Context) Result {
	drainCtx, stopDrain := context.WithCancel(ctx)
	var drainer sync.WaitGroup
	drainer.Add(1)
	go func() {
		defer drainer.Done()
		f.drainLoop(drainCtx)
	}()

	start := f.PeriodStart(f.now())
	for {
		next := start.Add(f.period)
		timer := time.NewTimer(next.Sub(f.now()))
		select {
		case <-ctx.Done():
			timer.Stop()
			stopDrain()
			drainer.Wait()
			f.stopping.Store(true)
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.set.Load().cfg.ShutdownTimeout)
			defer cancel()
			res := f.Flush(final, start)
			f.wait(final)
			f.drainAll(final)
			res.Pending, _ = f.backlog.state()
			return res
		case <-timer.C:
		}
		snap := f.src.Snapshot()
		// A period's own delivery may take until the next boundary after
		// this one; what is left then waits in the backlog.
		dctx, cancel := context.WithDeadline(ctx, next.Add(f.period))
		f.inflight.Add(1)
		go func(start time.Time) {
			defer f.inflight.Done()
			defer cancel()
			f.deliver(dctx, snap, start)
		}(start)
		start = next
	}
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
	return f.deliver(ctx, f.src.Snapshot(), start)
}

// deliver sends one period.
func (f *Flusher) deliver(ctx context.Context, snap *aggregator.Snapshot, start time.Time) Result {
	s := f.set.Load()
	began := time.Now()
	f.statusMu.Lock()
	f.status.LastFlush = began
	f.statusMu.Unlock()

	for _, o := range s.cfg.Observers {
		o.ObservePeriod(start, snap)
	}
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
	res := f.measurements(s, snap, func(ms []librato.Measurement) {
		b := s.batch(ms, start)
		requests.Go(func() {
			o := f.send(ctx, s, b, true)
			var q, lost int
			if o.retry != nil {
				q, lost = f.keep(s, o.retry, o.retryAfter)
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
	requests.Wait()
	res.Sent += sent
	res.Dropped += dropped
	f.m.flushDuration.Observe(time.Since(began).Seconds())
	if res.Dropped == 0 && queued == 0 {
		f.statusMu.Lock()
		f.status.LastDelivered = time.Now()
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
