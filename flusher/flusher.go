// Package flusher closes each aggregation period on a wall-clock boundary
// and hands it to every output that is on: Librato (measurements) and OTLP
// (data points). Each output turns the period into its own requests; they
// are delivered by the same machinery for both, a lane per output, in
// batches with bounded concurrency, retries and backoff. What cannot be
// delivered is kept in the lane's bounded backlog (and spool) and resent,
// oldest first, until it is delivered, refused, or too old. One output's
// outage or slowness never delays or loses another's data.
package flusher

import (
	"context"
	"io"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/libratod/libratod/aggregator"
	"github.com/libratod/libratod/librato"
	"github.com/libratod/libratod/otlp"
	"github.com/libratod/libratod/spool"
)

// Source is where a flush takes the finished period's series from.
type Source interface {
	Snapshot() *aggregator.Snapshot
}

// Roller is a Source that can keep a period open for a grace window
// after its end, for the lines stamped with a time in it (DogStatsD "|T"),
// as aggregator.Aggregator does; see Config.TimestampGrace. Spans are
// unix seconds [start, end).
type Roller interface {
	Source
	// SetSpan sets the current period's span.
	SetSpan(start, end int64)
	// Roll makes the current period the closing one and starts a new
	// current period of the given span. It returns a closing period left
	// open, which the flusher never leaves.
	Roll(start, end int64) *aggregator.Snapshot
	// TakeClosing ends the closing period and returns it.
	TakeClosing() *aggregator.Snapshot
	// Stamped reports whether a line stamped with a time was added since
	// the last call.
	Stamped() bool
}

// graceIdle is how long after the last line stamped with a time (see
// Roller.Stamped) the flusher still keeps each period open for
// Config.TimestampGrace: a daemon whose clients send no such lines takes
// every period at its end, neither later nor holding two periods.
const graceIdle = time.Hour

// Sender delivers one batch of measurements to Librato.
type Sender interface {
	Send(ctx context.Context, b *librato.Batch) (librato.Result, error)
}

// OTLPSender delivers one encoded OTLP request (an
// ExportMetricsServiceRequest).
type OTLPSender interface {
	Send(ctx context.Context, body []byte) (otlp.Result, error)
}

// OTLPConfig configures the OTLP output.
type OTLPConfig struct {
	// OTLPMapping says how series become points.
	OTLPMapping
	// Sender delivers the requests.
	Sender OTLPSender
	// Concurrency, MaxAttempts, Backlog and MaxAge are as in Config, for
	// this output; BatchSize (in OTLPMapping) counts points.
	Concurrency, MaxAttempts, Backlog int
	MaxAge                            time.Duration
	// Spool, when set, is the OTLP output's own spool (see Config.Spool).
	// It cannot change after New.
	Spool *spool.Spool
	// DryRun, when set, receives each request as OTLP/JSON, one a line,
	// instead of Sender.
	DryRun io.Writer
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
	// TimestampGrace is how long, when the Source is a Roller, a period
	// stays open after its end for the lines stamped with a time in it:
	// the period is sent that much later. It applies only while such
	// lines arrive: from the first boundary after one is added until an
	// hour (graceIdle) has passed without any, each period is taken at
	// its end as with 0. 0 takes each period at its end, and a line
	// stamped in an earlier period is then late; more than Period means
	// Period. It cannot change after New.
	TimestampGrace time.Duration
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
	// LibratoOff turns the Librato output off; OTLP must then be set.
	// It cannot change after New.
	LibratoOff bool
	// OTLP, when set, turns the OTLP output on. Whether it is set cannot
	// change after New; what it holds can.
	OTLP *OTLPConfig
}

// Observer is told of every finished period. ObservePeriod is called from
// the flusher's goroutine, outside every lock, before the period is sent;
// it must not keep snap or its series after it returns, nor take long.
type Observer interface {
	ObservePeriod(start time.Time, snap *aggregator.Snapshot)
}

// settings is what a flush reads of the configuration: replaced as a
// whole by Reconfigure, read once per flush or request. Each lane has its
// own: cfg holds that output's delivery keys (BatchSize, Concurrency...).
type settings struct {
	cfg      Config
	dst      Sender        // the Librato output's
	otlpDst  OTLPSender    // the OTLP output's
	tags     []librato.Tag // sanitized global tags
	source   string        // sanitized default source
	suffixes []string      // ".90", ".99.5", per percentile
}

// Flusher closes periods and hands them to its outputs' lanes. The
// Librato lane is embedded: it is there even when that output is off
// (then it is not in lanes and never sends).
type Flusher struct {
	*lane[*librato.Batch]
	otlp *lane[*otlp.Batch] // nil when the OTLP output is off

	period time.Duration
	grace  time.Duration // Config.TimestampGrace, within [0, period]
	// graceIdle is how long after the last stamped line the grace still
	// applies: graceIdle (the constant) but in tests.
	graceIdle time.Duration
	now       func() time.Time
	src       Source
	m         *Metrics
	// lanes are the outputs that are on, Librato first.
	lanes []laneRunner
	// set is the flusher's own settings (the Librato lane's).
	set atomic.Pointer[settings]

	totals   runningTotals
	cum      *cumulative // OTLP's cumulative temporality state
	inflight sync.WaitGroup
	stopping atomic.Bool // the final flush has begun: deadlines may cancel requests
	// halt, once cancelled by haltNow at the end of the shutdown, ends
	// the requests still under way.
	halt    context.Context
	haltNow context.CancelFunc

	statusMu sync.Mutex
	status   Status
	dryMu    sync.Mutex // orders the writes of OTLPConfig.DryRun
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

// Status returns the current delivery state, over every output: what
// waits in all, the oldest of it, and the earliest of the outputs' last
// deliveries.
func (f *Flusher) Status() Status {
	f.statusMu.Lock()
	s := f.status
	f.statusMu.Unlock()
	for i, l := range f.lanes {
		n, oldest, delivered := l.state()
		s.Pending += n
		if n > 0 && (s.OldestPending.IsZero() || oldest.Before(s.OldestPending)) {
			s.OldestPending = oldest
		}
		if i == 0 || delivered.Before(s.LastDelivered) {
			s.LastDelivered = delivered
		}
	}
	return s
}

// New returns a Flusher that takes periods from src and sends them to dst
// (Librato, unless cfg.LibratoOff) and to cfg.OTLP's Sender (when set).
func New(cfg Config, src Source, dst Sender) *Flusher {
	if cfg.Period <= 0 {
		cfg.Period = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	f := &Flusher{period: cfg.Period, now: cfg.Now, src: src, m: cfg.Metrics,
		grace: min(max(cfg.TimestampGrace, 0), cfg.Period), graceIdle: graceIdle}
	f.halt, f.haltNow = context.WithCancel(context.Background())
	if f.m == nil {
		f.m, _ = NewMetrics(nil) // nothing to register: cannot fail
	}
	cfg.Metrics = f.m
	s, os := f.settings(cfg, dst)
	f.set.Store(s)
	f.loadAnnotations(s, cfg.Spool) // before the lane reads the spool
	f.lane = newLane[*librato.Batch](f, libratoOutput{}, "Librato", s, cfg.Spool)
	if !cfg.LibratoOff {
		f.lanes = append(f.lanes, f.lane)
	}
	if os != nil {
		f.cum = newCumulative(cfg.OTLP.MaxCumulative)
		f.otlp = newLane[*otlp.Batch](f, otlpOutput{}, "the OTLP endpoint", os, cfg.OTLP.Spool)
		f.lanes = append(f.lanes, f.otlp)
	}
	if r, ok := src.(Roller); ok {
		// Lines may come before Run (a daemon's listeners start first):
		// they are routed, and counted, by the first period as Run would
		// place it now; Run sets it again when it starts.
		first, next := f.firstPeriod(f.now())
		r.SetSpan(first.Unix(), next.Unix())
	}
	return f
}

// firstPeriod returns the time the first period of a Run started at
// started is sent with, and its end.
func (f *Flusher) firstPeriod(started time.Time) (first, next time.Time) {
	first = FirstTime(started)
	next = f.PeriodStart(started).Add(f.period)
	if !first.Before(next) {
		next = next.Add(f.period)
	}
	return first, next
}

// Reconfigure replaces the configuration and the Sender from the next
// flush or request on. Period, Now, Metrics, the spools and which outputs
// are on keep their values from New. What waits in the backlog is resent
// at once: new credentials may be what it waited for.
func (f *Flusher) Reconfigure(cfg Config, dst Sender) {
	cfg.Metrics = f.m
	s, os := f.settings(cfg, dst)
	f.set.Store(s)
	f.lane.reconfigure(s)
	if f.otlp != nil && os != nil {
		f.otlp.reconfigure(os)
	}
}

// settings returns the settings of the Librato lane (and of the flusher)
// and those of the OTLP lane (nil when cfg.OTLP is not set), defaults
// applied.
func (f *Flusher) settings(cfg Config, dst Sender) (*settings, *settings) {
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
	cfg.Period, cfg.Now = f.period, f.now
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
	if cfg.OTLP == nil {
		return s, nil
	}
	// The OTLP lane: the same settings but for its own delivery keys.
	o := *cfg.OTLP
	oc := cfg
	oc.BatchSize = o.BatchSize
	if oc.BatchSize < 1 {
		oc.BatchSize = 1000
	}
	o.BatchSize = oc.BatchSize
	oc.Concurrency = max(o.Concurrency, 1)
	oc.MaxAttempts = max(o.MaxAttempts, 1)
	oc.Backlog = max(o.Backlog, 0)
	oc.MaxAge = o.MaxAge
	if oc.MaxAge <= 0 {
		oc.MaxAge = time.Hour
	}
	oc.OTLP = &o
	return s, &settings{cfg: oc, otlpDst: o.Sender, tags: s.tags, source: s.source, suffixes: s.suffixes}
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

// Result summarises a flush. Its counts are those of every output added
// up (a measurement sent to Librato and as a point to OTLP counts twice);
// Outputs has each output's own.
type Result struct {
	// Series is the number of series in the period.
	Series int
	// Measurements is the number of measurements (or OTLP points) built
	// from them, including those dropped before a request was made (a
	// name on the stop list, a name that sanitizes to nothing). In the
	// result of Run, it also counts Carried.
	Measurements int
	// Carried, in the result of Run only, is the number of measurements of
	// earlier periods that were still in flight or waiting in the backlog
	// when the shutdown began.
	Carried int
	// Sent is the number of measurements the outputs accepted.
	Sent int
	// Dropped is the number of measurements given up on.
	Dropped int
	// Pending is the number of measurements left in the backlogs. In the
	// result of Run, Measurements = Sent + Dropped + Pending.
	Pending int
	// Outputs is the result of each output that is on, Librato first.
	Outputs []OutputResult
}

// OutputResult is the result of one output.
type OutputResult struct {
	// Output is its name: "librato" or "otlp".
	Output string
	Result
}

// add adds r's counts (not its Series) to res.
func (res *Result) add(name string, r Result) {
	res.Measurements += r.Measurements
	res.Carried += r.Carried
	res.Sent += r.Sent
	res.Dropped += r.Dropped
	res.Pending += r.Pending
	res.Outputs = append(res.Outputs, OutputResult{Output: name, Result: r})
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
//
// When the Source is a Roller, each period's span is set (the first one's
// starts at FirstTime(now): a line stamped before it belongs to the
// process before, which sent its period already, and is late), and with
// Config.TimestampGrace, while such lines arrive (see the key), each
// period is rolled at its end and taken and sent that grace later, with
// its own time; a period still closing when
// Run is stopped is sent, with its own time, before the open one, and
// counted in the result as the open one is.
func (f *Flusher) Run(ctx context.Context) Result {
	drainCtx, stopDrain := context.WithCancel(ctx)
	var drainer sync.WaitGroup
	for _, l := range f.lanes {
		drainer.Add(1)
		go func() {
			defer drainer.Done()
			l.drainLoop(drainCtx)
		}()
	}
	f.resendAnnotations(ctx)

	first, next := f.firstPeriod(f.now())
	label := first // the time the open period is sent with
	roller, _ := f.src.(Roller)
	if roller != nil {
		roller.SetSpan(first.Unix(), next.Unix())
	}
	var closing *closingPeriod // rolled, to be taken at its take time
	var stampedAt time.Time    // the boundary that last saw a |T line
	for {
		wake := next
		if closing != nil && closing.take.Before(next) {
			wake = closing.take
		}
		timer := time.NewTimer(wake.Sub(f.now()))
		select {
		case <-ctx.Done():
			timer.Stop()
			// A clock put back under Run leaves label after the stop:
			// the final flush is stamped no later than the stop rounded
			// up, as a start is, and waited out below.
			if stop := FirstTime(f.now()); label.After(stop) {
				label = stop
			}
			res := f.shutdown(ctx, &drainer, stopDrain, roller, closing, label)
			if d := label.Sub(f.now()); d >= 0 {
				sleep(context.Background(), min(d, time.Second)+time.Millisecond)
			}
			return res
		case <-timer.C:
		}
		// The closing period is taken before the next one rolls, when
		// the grace is a whole period and both fall together.
		if closing != nil && !wake.Before(closing.take) {
			f.send(ctx, roller.TakeClosing(), closing.label, closing.end, wake)
			closing = nil
		}
		if wake.Before(next) {
			continue
		}
		if roller != nil && roller.Stamped() {
			stampedAt = next
		}
		switch {
		case roller == nil:
			f.send(ctx, f.src.Snapshot(), label, next, next)
		case f.grace == 0 || stampedAt.IsZero() || next.Sub(stampedAt) > f.graceIdle:
			// No closing period is open: Roll returns nil.
			roller.Roll(next.Unix(), next.Add(f.period).Unix())
			f.send(ctx, roller.TakeClosing(), label, next, next)
		default:
			roller.Roll(next.Unix(), next.Add(f.period).Unix())
			closing = &closingPeriod{label: label, end: next, take: next.Add(f.grace)}
		}
		label = next
		next = next.Add(f.period)
	}
}

// closingPeriod is a period Run rolled and has yet to take.
type closingPeriod struct {
	label time.Time // the time it is sent with
	end   time.Time // the boundary that ended it
	take  time.Time // when it is taken: end + the grace
}

// send closes snap, the period that ended at end, labelled label, and
// delivers it in the background. Its delivery may take until a period
// after at, when it was taken; what is left then waits in the backlog.
func (f *Flusher) send(ctx context.Context, snap *aggregator.Snapshot, label, end, at time.Time) {
	p := f.closePeriod(f.set.Load(), snap, label, end)
	dctx, cancel := context.WithDeadline(ctx, at.Add(f.period))
	f.inflight.Add(1)
	go func() {
		defer f.inflight.Done()
		defer cancel()
		f.deliver(dctx, p)
	}()
}

// shutdown is the end of Run: it flushes the closing period, if any, then
// the open period, labelled label, waits for the earlier periods' deliveries and resends the
// backlogs until they are empty or the shutdown timeout passes, then ends
// what is still under way and accounts for every measurement.
func (f *Flusher) shutdown(ctx context.Context, drainer *sync.WaitGroup, stopDrain context.CancelFunc,
	roller Roller, closing *closingPeriod, label time.Time) Result {
	stopDrain()
	drainer.Wait()
	f.stopping.Store(true)
	before := make([][3]int64, len(f.lanes))
	for i, l := range f.lanes {
		before[i][0], before[i][1], before[i][2] = l.counts()
	}
	final, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.set.Load().cfg.ShutdownTimeout)
	defer cancel()
	var closed Result
	if closing != nil {
		p := f.closePeriod(f.set.Load(), roller.TakeClosing(), closing.label, closing.end)
		closed = f.deliver(final, p)
	}
	open := f.Flush(final, label)
	f.wait(final)
	var drains sync.WaitGroup
	for _, l := range f.lanes {
		drains.Add(1)
		go func() {
			defer drains.Done()
			l.drainAll(final)
		}()
	}
	drains.Wait()
	// Past the deadline: requests under way are ended (what they carried
	// goes back to the backlog) and the deliveries of earlier periods,
	// which now fail at once, are waited for, so that every measurement
	// is counted below.
	cancel()
	f.haltNow()
	f.inflight.Wait()
	spillAnnotations(f.lane, f.lane.settings())
	res := Result{Series: open.Series + closed.Series}
	for i, l := range f.lanes {
		r := l.finish(l.settings(), before[i][1], before[i][2])
		var opened int
		for _, o := range slices.Concat(open.Outputs, closed.Outputs) {
			if o.Output == l.name() {
				opened += o.Measurements
			}
		}
		r.Series = res.Series
		r.Carried = r.Measurements - opened
		res.add(l.name(), r)
	}
	return res
}

// finish ends the lane's part of a shutdown: what waits in memory only
// goes to the spool, if it can, and the lane's result since sent0 and
// dropped0 were its counts is returned (Measurements: every measurement
// it had to deliver since then).
func (l *lane[B]) finish(s *settings, sent0, dropped0 int64) Result {
	l.spillMemory(s)
	l.syncSpool(s)
	built, sent, dropped := l.counts()
	var res Result
	res.Measurements = int(built - sent0 - dropped0)
	res.Sent = int(sent - sent0)
	res.Dropped = int(dropped - dropped0)
	res.Pending = int(built - sent - dropped)
	if n, _ := l.backlog.state(); n != res.Pending {
		s.cfg.Logger.Error().Str("output", l.name()).Int("backlog", n).Int("unaccounted", res.Pending).
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
	end := f.PeriodStart(f.now()).Add(f.period)
	return f.deliver(ctx, f.closePeriod(f.set.Load(), f.src.Snapshot(), start, end))
}

// closePeriod does what must happen to each period in period order,
// before it is handed to a delivery goroutine: the observers see it, the
// running totals advance (see advanceTotals), the series are counted by
// kind, and, for more than one output, the timer values are sorted so
// that the outputs can read the series at once. Each lane's build must
// then read the snapshot once, with Drain.
func (f *Flusher) closePeriod(s *settings, snap *aggregator.Snapshot, start, end time.Time) period {
	f.statusMu.Lock()
	f.status.LastFlush = f.now()
	f.statusMu.Unlock()
	for _, o := range s.cfg.Observers {
		o.ObservePeriod(start, snap)
	}
	var perKind [5]int
	snap.Each(func(sr *aggregator.Series) { perKind[sr.Kind%5]++ })
	for _, k := range aggregator.Kinds() {
		f.m.series.WithLabelValues(k.String()).Set(float64(perKind[k%5]))
	}
	if len(f.lanes) > 1 {
		snap.SortValues()
	}
	if f.cum != nil {
		f.cum.beginPeriod()
	}
	p := period{snap: snap, start: start, end: end}
	if !s.cfg.LibratoOff {
		p.totals = f.advanceTotals(s, snap)
	}
	// The outputs' builds, one a lane, are the snapshot's last reads: it
	// lets go of its series as they pass (Snapshot.Drain), so that a
	// flush overlapping the next period does not hold two periods.
	snap.Share(len(f.lanes))
	return p
}

// deliver sends one period, closed by closePeriod, to every output at
// once, and the annotations to Librato.
func (f *Flusher) deliver(ctx context.Context, p period) Result {
	results := make([]Result, len(f.lanes))
	var wg sync.WaitGroup
	if !f.set.Load().cfg.LibratoOff {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sendAnnotations(ctx, f.lane, f.lane.settings())
		}()
	}
	for i, l := range f.lanes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = l.deliver(ctx, l.settings(), p)
		}()
	}
	wg.Wait()
	res := Result{Series: p.snap.Len()}
	for i, l := range f.lanes {
		results[i].Series = res.Series
		res.add(l.name(), results[i])
	}
	return res
}

// deliver builds the lane's requests of one period and sends them.
func (l *lane[B]) deliver(ctx context.Context, s *settings, p period) Result {
	began := time.Now()
	// Requests are built and sent a batch at a time, Concurrency batches
	// at most under way, so a period with a million series never holds a
	// million measurements at once.
	var mu sync.Mutex
	queued, sent, dropped := 0, 0, 0
	requests := newLimiter(s.cfg.Concurrency)
	res := l.out.build(l, s, p, func(b B) {
		l.built.Add(int64(l.out.size(b)))
		requests.Go(func() {
			o := l.send(ctx, s, b, true)
			var q, lost int
			if o.ok {
				q, lost = l.keep(s, o.retry, o.retryAfter, o.reason, o.early)
			} else if o.sent > 0 {
				l.backlog.retryNow() // the service is up: resend what waits
			}
			mu.Lock()
			sent += o.sent
			dropped += o.dropped + lost
			queued += q
			mu.Unlock()
		})
	})
	// Those dropped while building (stop list, bad names) count as built.
	l.built.Add(int64(res.Dropped))
	l.dropped.Add(int64(res.Dropped))
	res.Measurements += res.Dropped
	requests.Wait()
	// One fsync for the period's appends, rather than one each.
	l.syncSpool(s)
	res.Sent += sent
	res.Dropped += dropped
	l.m.flushDuration.Observe(time.Since(began).Seconds())
	if res.Dropped == 0 && queued == 0 {
		l.statusMu.Lock()
		l.lastDelivered = l.f.now()
		l.statusMu.Unlock()
	}
	res.Pending, _ = l.backlog.state()
	if res.Measurements > 0 {
		s.cfg.Logger.Debug().Str("output", l.name()).Time("period", p.start).Dur("took", time.Since(began)).
			Int("series", res.Series).Int("measurements", res.Measurements).Int("sent", res.Sent).
			Int("dropped", res.Dropped).Int("queued", queued).Msg("flushed")
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
