package flusher

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/libratod/libratod/aggregator"
	"github.com/libratod/libratod/internal/eventually"
	"github.com/libratod/libratod/librato"
)

// scripted is a Sender whose answer to each request is decided by a
// function; accepted batches are recorded.
type scripted struct {
	mu       sync.Mutex
	answer   func(call int, b *librato.Batch) error
	calls    int
	accepted []librato.Batch
}

func (s *scripted) Send(ctx context.Context, b *librato.Batch) (librato.Result, error) {
	s.mu.Lock()
	s.calls++
	call := s.calls
	answer := s.answer
	s.mu.Unlock()
	if answer != nil {
		if err := answer(call, b); err != nil {
			return librato.Result{}, err
		}
	}
	if err := ctx.Err(); err != nil {
		return librato.Result{}, &librato.Error{Retryable: true, Err: err, Message: err.Error()}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cp := *b
	cp.Measurements = slices.Clone(b.Measurements)
	s.accepted = append(s.accepted, cp)
	return librato.Result{StatusCode: 200, Sent: len(b.Measurements)}, nil
}

func (s *scripted) setAnswer(fn func(call int, b *librato.Batch) error) {
	s.mu.Lock()
	s.answer = fn
	s.mu.Unlock()
}

// totals returns the delivered counter values by period time and name.
func (s *scripted) totals() map[int64]map[string]float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[int64]map[string]float64{}
	for _, b := range s.accepted {
		if out[b.Time] == nil {
			out[b.Time] = map[string]float64{}
		}
		for _, m := range b.Measurements {
			out[b.Time][m.Name] += m.Value
		}
	}
	return out
}

func (s *scripted) times() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ts []int64
	for _, b := range s.accepted {
		ts = append(ts, b.Time)
	}
	return ts
}

var down = &librato.Error{StatusCode: 503, Retryable: true, Message: "maintenance"}

func fastConfig(m *Metrics) Config {
	return Config{
		API: librato.Tagged, Period: 10 * time.Second, Backlog: 1000, MaxAttempts: 2,
		MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond, Metrics: m,
		Now: testClock(),
	}
}

func newMetrics(t *testing.T) *Metrics {
	t.Helper()
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestOutageKeepsEveryPeriod sends several periods while Librato is down,
// brings it back, and checks every period arrives once, with its own time,
// oldest first.
func TestOutageKeepsEveryPeriod(t *testing.T) {
	a := aggregator.New(aggregator.Config{})
	s := &scripted{answer: func(int, *librato.Batch) error { return down }}
	m := newMetrics(t)
	cfg := fastConfig(m)
	cfg.Concurrency = 1 // resends go one at a time, so their order shows
	f := New(cfg, a, s)
	ctx := context.Background()
	for p := range 5 {
		feed(t, a, fmt.Sprintf("hits:%d|c", p+1), "other:1|c")
		res := f.Flush(ctx, t0.Add(time.Duration(p)*10*time.Second))
		if res.Sent != 0 || res.Dropped != 0 || res.Pending != 2*(p+1) {
			t.Fatalf("period %d while down: %+v, want nothing sent or dropped, %d pending", p, res, 2*(p+1))
		}
	}
	if st := f.Status(); st.Pending != 10 || !st.OldestPending.Equal(t0) {
		t.Fatalf("status %+v, want 10 pending since %v", st, t0)
	}
	// Still down: resending keeps failing and keeps everything until the
	// context ends.
	sctx, scancel := context.WithTimeout(ctx, 50*time.Millisecond)
	f.drainAll(sctx)
	scancel()
	if st := f.Status(); st.Pending != 10 {
		t.Fatalf("pending after failed resends: %d, want 10", st.Pending)
	}
	s.setAnswer(nil)
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	f.drainAll(dctx)

	got := s.totals()
	if len(got) != 5 {
		t.Fatalf("delivered %d periods, want 5: %v", len(got), got)
	}
	for p := range 5 {
		tm := t0.Add(time.Duration(p) * 10 * time.Second).Unix()
		if got[tm]["hits"] != float64(p+1) || got[tm]["other"] != 1 {
			t.Errorf("period %d delivered %v, want hits=%d other=1", p, got[tm], p+1)
		}
	}
	if ts := s.times(); !slices.IsSorted(ts) {
		t.Errorf("periods delivered out of order: %v", ts)
	}
	if st := f.Status(); st.Pending != 0 {
		t.Errorf("pending after recovery: %d", st.Pending)
	}
	if n := testutil.ToFloat64(m.forOutput("librato").backlog); n != 0 {
		t.Errorf("backlog gauge %v after recovery", n)
	}
}

func TestBacklogFullDropsOldest(t *testing.T) {
	a := aggregator.New(aggregator.Config{})
	s := &scripted{answer: func(int, *librato.Batch) error { return down }}
	m := newMetrics(t)
	cfg := fastConfig(m)
	cfg.Backlog = 2
	f := New(cfg, a, s)
	ctx := context.Background()
	for p := range 4 {
		feed(t, a, fmt.Sprintf("p%d:1|c", p))
		f.Flush(ctx, t0.Add(time.Duration(p)*10*time.Second))
	}
	if n := testutil.ToFloat64(m.forOutput("librato").dropped.WithLabelValues("backlog_full")); n != 2 {
		t.Errorf("backlog_full drops = %v, want 2", n)
	}
	s.setAnswer(nil)
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	f.drainAll(dctx)
	got := s.totals()
	if len(got) != 2 || got[t0.Add(20*time.Second).Unix()]["p2"] != 1 || got[t0.Add(30*time.Second).Unix()]["p3"] != 1 {
		t.Errorf("delivered %v, want only the two newest periods", got)
	}
}

func TestTooOldIsDropped(t *testing.T) {
	a := aggregator.New(aggregator.Config{})
	s := &scripted{answer: func(int, *librato.Batch) error { return down }}
	m := newMetrics(t)
	cfg := fastConfig(m)
	cfg.MaxAge = time.Hour
	f := New(cfg, a, s)
	ctx := context.Background()
	old := t0.Add(-2 * time.Hour)
	feed(t, a, "old:1|c")
	f.Flush(ctx, old)
	feed(t, a, "new:1|c")
	recent := t0
	f.Flush(ctx, recent)
	s.setAnswer(nil)
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	f.drainAll(dctx)
	if n := testutil.ToFloat64(m.forOutput("librato").dropped.WithLabelValues("too_old")); n != 1 {
		t.Errorf("too_old drops = %v, want 1", n)
	}
	got := s.totals()
	if len(got) != 1 || got[recent.Unix()]["new"] != 1 {
		t.Errorf("delivered %v, want only the recent period", got)
	}
}

func TestTypeConflictStopList(t *testing.T) {
	a := aggregator.New(aggregator.Config{})
	m := newMetrics(t)
	s := &scripted{answer: func(_ int, b *librato.Batch) error {
		for _, x := range b.Measurements {
			if x.Name == "clash" {
				return &librato.Error{StatusCode: 400, Message: "type", TypeConflicts: []string{"clash"}}
			}
		}
		return nil
	}}
	cfg := fastConfig(m)
	cfg.API = librato.Legacy
	f := New(cfg, a, s)
	feed(t, a, "clash:1|c", "fine:2|c", "also:3|c")
	res := f.Flush(context.Background(), t0)
	if res.Sent != 2 || res.Dropped != 1 {
		t.Fatalf("result %+v, want 2 sent and the conflicting one dropped", res)
	}
	feed(t, a, "clash:1|c", "fine:2|c")
	res = f.Flush(context.Background(), t0.Add(10*time.Second))
	if res.Sent != 1 || res.Dropped != 1 {
		t.Fatalf("second period %+v: the stopped name must not be sent again", res)
	}
	if n := testutil.ToFloat64(m.forOutput("librato").dropped.WithLabelValues("type_conflict")); n != 2 {
		t.Errorf("type_conflict drops = %v, want 2", n)
	}
	if n := testutil.ToFloat64(m.forOutput("librato").stopList); n != 1 {
		t.Errorf("stop list size = %v, want 1", n)
	}
	for tm, names := range s.totals() {
		if _, ok := names["clash"]; ok {
			t.Errorf("clash delivered at %d", tm)
		}
	}
}

func TestRateLimitRetryAfterIsHonoured(t *testing.T) {
	a := aggregator.New(aggregator.Config{})
	s := &scripted{answer: func(int, *librato.Batch) error {
		return &librato.Error{StatusCode: 429, Retryable: true, RateLimited: true, RetryAfter: time.Hour}
	}}
	f := New(fastConfig(newMetrics(t)), a, s)
	feed(t, a, "x:1|c")
	f.Flush(context.Background(), t0)
	wait, ok := f.backlog.due(time.Now())
	if !ok || wait < 59*time.Minute {
		t.Fatalf("next resend in %v (pending %v), want about the hour Retry-After asked", wait, ok)
	}
}

func TestRejectedIsNotResent(t *testing.T) {
	a := aggregator.New(aggregator.Config{})
	s := &scripted{answer: func(int, *librato.Batch) error { return &librato.Error{StatusCode: 404, Message: "not found"} }}
	m := newMetrics(t)
	f := New(fastConfig(m), a, s)
	feed(t, a, "x:1|c")
	res := f.Flush(context.Background(), t0)
	if res.Dropped != 1 || res.Pending != 0 || s.calls != 1 {
		t.Fatalf("result %+v after %d calls, want one call and the batch dropped", res, s.calls)
	}
}

// TestShutdownDrainsBacklog runs the flusher, keeps Librato down for a
// while, then stops it: the final flush must deliver the open period and
// the backlog once Librato is back.
func TestShutdownDrainsBacklog(t *testing.T) {
	a := aggregator.New(aggregator.Config{})
	s := &scripted{answer: func(int, *librato.Batch) error { return down }}
	cfg := fastConfig(newMetrics(t))
	cfg.Period = time.Second
	cfg.ShutdownTimeout = 5 * time.Second
	f := New(cfg, a, s)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan Result)
	go func() { done <- f.Run(ctx) }()
	feed(t, a, "early:1|c")
	eventually.Require(t, 5*time.Second, func() bool { return f.Status().Pending != 0 }, "the failed period reaches the backlog")
	feed(t, a, "late:2|c")
	s.setAnswer(nil)
	cancel()
	var res Result
	select {
	case res = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	sum := map[string]float64{}
	for _, names := range s.totals() {
		for n, v := range names {
			sum[n] += v
		}
	}
	if sum["early"] != 1 || sum["late"] != 2 || res.Pending != 0 {
		t.Errorf("delivered %v, pending %d; want early=1 late=2, nothing pending", sum, res.Pending)
	}
}

// TestShutdownReportsUndelivered stops while Librato stays down: Run must
// return within the shutdown timeout and say what is left.
func TestShutdownReportsUndelivered(t *testing.T) {
	a := aggregator.New(aggregator.Config{})
	s := &scripted{answer: func(int, *librato.Batch) error { return down }}
	cfg := fastConfig(newMetrics(t))
	cfg.ShutdownTimeout = 200 * time.Millisecond
	f := New(cfg, a, s)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan Result)
	go func() { done <- f.Run(ctx) }()
	feed(t, a, "x:1|c", "y:1|c")
	cancel()
	select {
	case res := <-done:
		if res.Pending != 2 || res.Sent != 0 {
			t.Errorf("result %+v, want 2 pending", res)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return within its shutdown timeout")
	}
}

func TestBacklogQueue(t *testing.T) {
	q := backlog[*librato.Batch]{wake: make(chan struct{}, 1)}
	q.setLimit(5)
	b := func(tm int64, n int) item[*librato.Batch] {
		return item[*librato.Batch]{b: &librato.Batch{Time: tm, Measurements: make([]librato.Measurement, n)}, n: n, t: tm}
	}
	dropped := func(ev []item[*librato.Batch]) (n int) {
		for _, it := range ev {
			n += len(it.b.Measurements)
		}
		return n
	}
	if ev, first := q.push(b(1, 2), 0); len(ev) != 0 || first {
		t.Fatal("first push dropped")
	}
	q.push(b(2, 2), 0)
	if ev, first := q.push(b(3, 2), 0); dropped(ev) != 2 || !first {
		t.Fatalf("overflow dropped %d (first %v), want 2 and the start of an episode", dropped(ev), first)
	}
	if ev, first := q.push(b(4, 1), 0); len(ev) != 0 || first {
		t.Fatalf("push within the limit dropped %d", dropped(ev))
	}
	got := q.take(2)
	if len(got) != 2 || got[0].b.Time != 2 || got[1].b.Time != 3 {
		t.Fatalf("take gave %v", got)
	}
	q.putBack(got, func(int) time.Duration { return time.Hour })
	if n, oldest := q.state(); n != 5 || oldest.Unix() != 2 {
		t.Fatalf("state %d since %v, want 5 since 2", n, oldest)
	}
	if wait, ok := q.due(time.Now()); !ok || wait < 59*time.Minute {
		t.Fatalf("due in %v", wait)
	}
	q.retryNow()
	if wait, ok := q.due(time.Now()); !ok || wait != 0 {
		t.Fatalf("after retryNow due in %v", wait)
	}
}

// limited answers with rate-limit headers read by the client.
type limited struct{ scripted }

func (l *limited) Send(ctx context.Context, b *librato.Batch) (librato.Result, error) {
	res, err := l.scripted.Send(ctx, b)
	res.RateLimit.Agg = librato.Quota{Present: true, Limit: 300, Remaining: 123}
	return res, err
}

func TestRequestMetrics(t *testing.T) {
	a := aggregator.New(aggregator.Config{})
	s := &limited{}
	m := newMetrics(t)
	f := New(fastConfig(m), a, s)
	feed(t, a, "x:1|c")
	f.Flush(context.Background(), t0)
	if n := testutil.ToFloat64(m.forOutput("librato").rateLimit.WithLabelValues("agg")); n != 123 {
		t.Errorf("rate limit remaining = %v, want 123", n)
	}
	if n := testutil.CollectAndCount(m.requestDuration); n != 1 {
		t.Errorf("request duration histogram has %d series", n)
	}
	if got := histogramCount(t, m); got != 1 {
		t.Errorf("request duration observed %d requests, want 1", got)
	}
}

func histogramCount(t *testing.T, m *Metrics) uint64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(m.requestDuration)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return mfs[0].GetMetric()[0].GetHistogram().GetSampleCount()
}

// TestShutdownAccountsForEveryMeasurement stops while an earlier period
// still holds requests (one hangs in flight, the rest wait their turn):
// the result of Run must account for each of them, and what it calls
// pending must be what the backlog holds.
func TestShutdownAccountsForEveryMeasurement(t *testing.T) {
	a := aggregator.New(aggregator.Config{})
	started := make(chan struct{}, 100)
	s := &scripted{answer: func(_ int, b *librato.Batch) error {
		if b.Measurements[0].Name == "ok" {
			return nil
		}
		started <- struct{}{}
		return nil // held below, by hang
	}}
	h := &hanging{scripted: s}
	cfg := fastConfig(newMetrics(t))
	cfg.Period = time.Second
	cfg.BatchSize = 1
	cfg.Concurrency = 1
	cfg.ShutdownTimeout = 300 * time.Millisecond
	f := New(cfg, a, h)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan Result)
	go func() { done <- f.Run(ctx) }()
	feed(t, a, "e1:1|c", "e2:1|c", "e3:1|c", "e4:1|c", "e5:1|c")
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("the first period sent nothing within 5s")
	}
	feed(t, a, "ok:1|c", "f1:1|c", "f2:1|c")
	cancel()
	var res Result
	select {
	case res = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	accepted := 0
	for _, names := range s.totals() {
		accepted += len(names)
	}
	backlog, _ := f.backlog.state()
	if res.Measurements != 8 || res.Carried < 1 || res.Sent != accepted ||
		res.Sent+res.Dropped+res.Pending != 8 || res.Pending != backlog {
		t.Errorf("result %+v, with %d accepted and %d in the backlog; want 8 measurements (some carried) all accounted for",
			res, accepted, backlog)
	}
}

// hanging holds every request but those named "ok" until its context
// ends, as a Librato that never answers.
type hanging struct{ *scripted }

func (h *hanging) Send(ctx context.Context, b *librato.Batch) (librato.Result, error) {
	if b.Measurements[0].Name != "ok" {
		_ = h.answer(0, b)
		<-ctx.Done()
		return librato.Result{}, &librato.Error{Retryable: true, Err: ctx.Err(), Message: ctx.Err().Error()}
	}
	return h.scripted.Send(ctx, b)
}
