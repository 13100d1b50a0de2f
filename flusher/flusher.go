// Package flusher closes each aggregation period on a wall-clock boundary,
// turns the period's series into Librato measurements, and delivers them in
// batches with bounded concurrency, retries and backoff.
package flusher

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
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
	// Period is the aggregation period, a whole number of seconds.
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
	// Concurrency is the most requests in flight at once.
	Concurrency int
	// MaxAttempts bounds the attempts per request, the first included.
	MaxAttempts int
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
}

// Flusher turns periods into Librato requests.
type Flusher struct {
	cfg      Config
	src      Source
	dst      Sender
	m        *Metrics
	tags     []librato.Tag // sanitized global tags
	source   string        // sanitized default source
	suffixes []string      // ".90", ".99.5", per percentile
	inflight sync.WaitGroup

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
	defer f.statusMu.Unlock()
	return f.status
}

// New returns a Flusher that takes periods from src and sends them to dst.
func New(cfg Config, src Source, dst Sender) *Flusher {
	if cfg.Period <= 0 {
		cfg.Period = 10 * time.Second
	}
	if cfg.BatchSize < 1 {
		cfg.BatchSize = 300
	}
	if cfg.Concurrency < 1 {
		cfg.Concurrency = 4
	}
	if cfg.MaxAttempts < 1 {
		cfg.MaxAttempts = 5
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
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	f := &Flusher{cfg: cfg, src: src, dst: dst, m: cfg.Metrics}
	if f.m == nil {
		f.m, _ = NewMetrics(nil) // nothing to register: cannot fail
	}
	for _, t := range cfg.Tags {
		if n, v := librato.SanitizeTagName(t.Name), librato.SanitizeTagValue(t.Value); n != "" && v != "" {
			f.tags = setTag(f.tags, librato.Tag{Name: n, Value: v})
		}
	}
	f.source = librato.SanitizeSource(cfg.Source)
	for _, p := range cfg.Percentiles {
		f.suffixes = append(f.suffixes, "."+strconv.FormatFloat(p, 'f', -1, 64))
	}
	return f
}

// PeriodStart returns the start of the period that holds t:
// floor(t/period)*period.
func (f *Flusher) PeriodStart(t time.Time) time.Time {
	return t.Truncate(f.cfg.Period)
}

// Run flushes at every period boundary until ctx ends, then flushes the
// open period within Config.ShutdownTimeout, waits for deliveries still
// under way, and returns the final flush's result.
func (f *Flusher) Run(ctx context.Context) Result {
	start := f.PeriodStart(f.cfg.Now())
	for {
		next := start.Add(f.cfg.Period)
		timer := time.NewTimer(next.Sub(f.cfg.Now()))
		select {
		case <-ctx.Done():
			timer.Stop()
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.cfg.ShutdownTimeout)
			res := f.Flush(final, start)
			f.wait(final)
			cancel()
			return res
		case <-timer.C:
		}
		snap := f.src.Snapshot()
		// A period's delivery may take until the next boundary after this one.
		dctx, cancel := context.WithDeadline(ctx, next.Add(f.cfg.Period))
		f.inflight.Add(1)
		go func(start time.Time) {
			defer f.inflight.Done()
			defer cancel()
			f.deliver(dctx, snap, start)
		}(start)
		start = next
	}
}

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

// Result summarises one flush.
type Result struct {
	// Series is the number of series in the period.
	Series int
	// Measurements is the number of measurements built from them.
	Measurements int
	// Sent is the number of measurements Librato accepted.
	Sent int
	// Dropped is the number of measurements not delivered.
	Dropped int
}

// Flush closes the current period now, labels it with start, and delivers
// it, returning when every request has succeeded or given up.
func (f *Flusher) Flush(ctx context.Context, start time.Time) Result {
	return f.deliver(ctx, f.src.Snapshot(), start)
}

func (f *Flusher) deliver(ctx context.Context, snap *aggregator.Snapshot, start time.Time) Result {
	began := time.Now()
	f.statusMu.Lock()
	f.status.LastFlush = began
	f.statusMu.Unlock()
	ms, res := f.measurements(snap)
	batches := f.batches(ms, start)

	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, f.cfg.Concurrency)
	for _, b := range batches {
		sem <- struct{}{}
		wg.Add(1)
		go func(b *librato.Batch) {
			defer wg.Done()
			defer func() { <-sem }()
			sent, dropped := f.send(ctx, b)
			mu.Lock()
			res.Sent += sent
			res.Dropped += dropped
			mu.Unlock()
		}(b)
	}
	wg.Wait()
	f.m.flushDuration.Observe(time.Since(began).Seconds())
	if res.Dropped == 0 {
		f.statusMu.Lock()
		f.status.LastDelivered = time.Now()
		f.statusMu.Unlock()
	}
	if res.Measurements > 0 {
		f.cfg.Logger.Debug().Time("period", start).Int("series", res.Series).
			Int("measurements", res.Measurements).Int("sent", res.Sent).Int("dropped", res.Dropped).Msg("flushed")
	}
	return res
}

func (f *Flusher) batches(ms []librato.Measurement, start time.Time) []*librato.Batch {
	var out []*librato.Batch
	for len(ms) > 0 {
		n := min(len(ms), f.cfg.BatchSize)
		b := &librato.Batch{Time: start.Unix(), Measurements: ms[:n:n]}
		if f.cfg.API == librato.Legacy {
			b.Source = f.source
		} else {
			b.Period = int64(f.cfg.Period / time.Second)
			b.Tags = f.tags
		}
		out = append(out, b)
		ms = ms[n:]
	}
	return out
}

// send delivers one batch, retrying what is worth retrying, and returns how
// many measurements were accepted and how many were dropped.
func (f *Flusher) send(ctx context.Context, b *librato.Batch) (sent, dropped int) {
	log := f.cfg.Logger
	for attempt := 1; ; attempt++ {
		res, err := f.dst.Send(ctx, b)
		if err == nil {
			f.m.requests.WithLabelValues(strconv.Itoa(res.StatusCode)).Inc()
			f.m.sent.Add(float64(res.Sent))
			if res.Skipped > 0 {
				f.m.dropped.WithLabelValues("not_finite").Add(float64(res.Skipped))
			}
			if len(res.Errors) > 0 {
				f.m.partial.Inc()
				log.Warn().Strs("errors", res.Errors).Int("measurements", len(b.Measurements)).
					Msg("Librato accepted the request but reported errors")
			}
			return res.Sent, res.Skipped
		}
		var le *librato.Error
		if !errors.As(err, &le) {
			le = &librato.Error{Message: err.Error(), Retryable: true, Err: err}
		}
		status := "error"
		if le.StatusCode != 0 {
			status = strconv.Itoa(le.StatusCode)
		}
		f.m.requests.WithLabelValues(status).Inc()
		n := len(b.Measurements)
		if !le.Retryable {
			ev := log.Warn()
			if le.StatusCode == 401 || le.StatusCode == 403 {
				ev = log.Error()
			}
			ev.Int("status", le.StatusCode).Str("error", le.Message).Int("measurements", n).
				Msg("Librato refused the request; not resending it")
			f.m.dropped.WithLabelValues("rejected").Add(float64(n))
			return 0, n
		}
		if attempt >= f.cfg.MaxAttempts {
			log.Warn().Int("status", le.StatusCode).Str("error", le.Message).Int("attempts", attempt).
				Int("measurements", n).Msg("giving up on a request after its last attempt")
			f.m.dropped.WithLabelValues("retries_exhausted").Add(float64(n))
			return 0, n
		}
		wait := f.backoff(attempt, le.RetryAfter)
		if dl, ok := ctx.Deadline(); ctx.Err() != nil || (ok && time.Now().Add(wait).After(dl)) {
			log.Warn().Int("status", le.StatusCode).Str("error", le.Message).Int("attempts", attempt).
				Int("measurements", n).Msg("no time left to retry a request before its deadline")
			f.m.dropped.WithLabelValues("deadline").Add(float64(n))
			return 0, n
		}
		log.Debug().Int("status", le.StatusCode).Str("error", le.Message).Dur("wait", wait).
			Int("attempt", attempt).Msg("retrying a request")
		f.m.retries.Inc()
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
}

// backoff returns the wait before attempt+1: MinBackoff doubled per
// attempt, capped, with jitter in [d/2, d), or the server's Retry-After
// when that is longer.
func (f *Flusher) backoff(attempt int, retryAfter time.Duration) time.Duration {
	d := f.cfg.MinBackoff << min(attempt-1, 20)
	if d <= 0 || d > f.cfg.MaxBackoff {
		d = f.cfg.MaxBackoff
	}
	d = d/2 + rand.N(d/2+1)
	return max(d, retryAfter)
}

// measurements turns a snapshot into Librato measurements.
func (f *Flusher) measurements(snap *aggregator.Snapshot) ([]librato.Measurement, Result) {
	var res Result
	ms := make([]librato.Measurement, 0, snap.Len())
	var perKind [5]int
	var pcts []aggregator.Percentile
	var pok []bool
	snap.Each(func(s *aggregator.Series) {
		res.Series++
		perKind[s.Kind%5]++
		name := s.Name
		if f.cfg.Prefix != "" {
			name = f.cfg.Prefix + "." + name
		}
		name = librato.SanitizeName(name)
		if name == "" {
			f.m.dropped.WithLabelValues("bad_name").Inc()
			res.Dropped++
			return
		}
		m := librato.Measurement{Name: name}
		f.dimensions(&m, s.Tags)
		switch s.Kind {
		case aggregator.Counter, aggregator.Gauge:
			m.Value = s.Value
		case aggregator.Set:
			m.Value = float64(s.Cardinality())
		case aggregator.Timer:
			m.Count = max(1, int64(math.Round(s.Count)))
			m.Sum, m.SumSquares, m.Min, m.Max = s.Sum, s.SumSquares, s.Min, s.Max
			m.Last, m.HasLast = s.Last, true
			ms = append(ms, m)
			if len(f.suffixes) > 0 {
				pcts, pok = s.Percentiles(f.cfg.Percentiles, pcts[:0], pok[:0])
				for i, p := range pcts {
					if !pok[i] {
						continue
					}
					pm := m
					pm.Name = librato.SanitizeName(name + f.suffixes[i])
					pm.Count, pm.Sum, pm.SumSquares, pm.Min, pm.Max = int64(p.Count), p.Sum, p.SumSquares, p.Min, p.Max
					pm.HasLast, pm.Last = false, 0
					ms = append(ms, pm)
				}
			}
			return
		}
		ms = append(ms, m)
	})
	for _, k := range aggregator.Kinds() {
		f.m.series.WithLabelValues(k.String()).Set(float64(perKind[k%5]))
	}
	res.Measurements = len(ms)
	return ms, res
}

// dimensions sets m's tags (Tagged API) or source (Legacy API) from the
// series tags.
func (f *Flusher) dimensions(m *librato.Measurement, tags []aggregator.Tag) {
	if len(tags) == 0 {
		return
	}
	if f.cfg.API == librato.Legacy {
		for _, t := range tags {
			if t.Name == "source" {
				m.Source = librato.SanitizeSource(t.Value)
				continue
			}
			f.m.tagsDropped.WithLabelValues("legacy_api").Inc()
		}
		return
	}
	merged := make([]librato.Tag, 0, len(f.tags)+len(tags))
	merged = append(merged, f.tags...)
	for _, t := range tags {
		n := librato.SanitizeTagName(t.Name)
		v := t.Value
		if v == "" {
			v = "true" // a bare DogStatsD tag
		}
		v = librato.SanitizeTagValue(v)
		if n == "" || v == "" {
			f.m.tagsDropped.WithLabelValues("invalid").Inc()
			continue
		}
		merged = setTag(merged, librato.Tag{Name: n, Value: v})
	}
	if len(merged) > librato.MaxTags {
		f.m.tagsDropped.WithLabelValues("too_many").Add(float64(len(merged) - librato.MaxTags))
		merged = merged[:librato.MaxTags]
	}
	m.Tags = merged
}

// setTag sets t in tags, replacing a tag of the same name.
func setTag(tags []librato.Tag, t librato.Tag) []librato.Tag {
	for i := range tags {
		if tags[i].Name == t.Name {
			tags[i].Value = t.Value
			return tags
		}
	}
	return append(tags, t)
}
