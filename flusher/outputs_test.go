package flusher

import (
	"context"
	"sync"
	"testing"
	"time"

	metricsv1 "go.opentelemetry.io/proto/otlp/metrics/v1"
	"google.golang.org/protobuf/proto"

	"github.com/libratod/libratod/aggregator"
	"github.com/libratod/libratod/librato"
	"github.com/libratod/libratod/otlp"
)

// fakeOTLP is an OTLPSender that decodes every request with the upstream
// types and answers as answer says (nil: 200).
type fakeOTLP struct {
	mu     sync.Mutex
	answer func(call int, names []string) error
	calls  int
	// points holds the accepted points' values by metric name (sums and
	// gauges) or counts (histograms), added up.
	points map[string]float64
	n      int // accepted points
}

func (s *fakeOTLP) Send(ctx context.Context, body []byte) (otlp.Result, error) {
	var md metricsv1.MetricsData
	if err := proto.Unmarshal(body, &md); err != nil {
		return otlp.Result{}, &otlp.Error{StatusCode: 400, Message: err.Error(), Refused: true}
	}
	vals := map[string]float64{}
	var names []string
	n := 0
	for _, rm := range md.ResourceMetrics {
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				switch d := m.Data.(type) {
				case *metricsv1.Metric_Sum:
					for _, p := range d.Sum.DataPoints {
						vals[m.Name] += p.GetAsDouble()
						names = append(names, m.Name)
						n++
					}
				case *metricsv1.Metric_Gauge:
					for _, p := range d.Gauge.DataPoints {
						vals[m.Name] += p.GetAsDouble()
						names = append(names, m.Name)
						n++
					}
				case *metricsv1.Metric_ExponentialHistogram:
					for _, p := range d.ExponentialHistogram.DataPoints {
						vals[m.Name] += float64(p.Count)
						names = append(names, m.Name)
						n++
					}
				}
			}
		}
	}
	s.mu.Lock()
	s.calls++
	call, answer := s.calls, s.answer
	s.mu.Unlock()
	if answer != nil {
		if err := answer(call, names); err != nil {
			return otlp.Result{}, err
		}
	}
	if err := ctx.Err(); err != nil {
		return otlp.Result{}, &otlp.Error{Retryable: true, Message: err.Error(), Err: err}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.points == nil {
		s.points = map[string]float64{}
	}
	for k, v := range vals {
		s.points[k] += v
	}
	s.n += n
	return otlp.Result{StatusCode: 200}, nil
}

func (s *fakeOTLP) got() (map[string]float64, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]float64{}
	for k, v := range s.points {
		out[k] = v
	}
	return out, s.n
}

func (s *fakeOTLP) setAnswer(fn func(call int, names []string) error) {
	s.mu.Lock()
	s.answer = fn
	s.mu.Unlock()
}

var otlpDown = &otlp.Error{StatusCode: 503, Retryable: true, Message: "unavailable"}

func otlpConfig(dst OTLPSender) *OTLPConfig {
	return &OTLPConfig{OTLPMapping: OTLPMapping{Temporality: otlp.Delta, BatchSize: 100},
		Sender: dst, MaxAttempts: 2, Backlog: 1000}
}

// resultOf returns the result of output name in res.
func resultOf(t *testing.T, res Result, name string) Result {
	t.Helper()
	for _, o := range res.Outputs {
		if o.Output == name {
			return o.Result
		}
	}
	t.Fatalf("no result for %s in %+v", name, res)
	return Result{}
}

// TestBothOutputs: one period goes to both outputs, each in its own form,
// and the result adds them up and breaks them down.
func TestBothOutputs(t *testing.T) {
	a := aggregator.New(aggregator.Config{})
	lib, ot := &scripted{}, &fakeOTLP{}
	cfg := fastConfig(newMetrics(t))
	cfg.OTLP = otlpConfig(ot)
	f := New(cfg, a, lib)
	feed(t, a, "c:3|c", "c:2|c|@0.5", "g:5|g", "t:10|ms", "t:20|ms|@0.5")
	res := f.Flush(context.Background(), t0)
	pts, n := ot.got()
	if n != 3 || pts["c"] != 7 || pts["g"] != 5 || pts["t"] != 3 {
		t.Errorf("OTLP got %v (%d points), want c 7, g 5, t count 3", pts, n)
	}
	if got := lib.totals()[t0.Unix()]; got["c"] != 7 || got["g"] != 5 {
		t.Errorf("Librato got %v", got)
	}
	lr, or := resultOf(t, res, "librato"), resultOf(t, res, "otlp")
	if or.Sent != 3 || or.Measurements != 3 || lr.Sent == 0 || res.Sent != lr.Sent+or.Sent || res.Series != 3 {
		t.Errorf("result %+v", res)
	}
}

// TestOneOutputDownTheOtherDelivers: Librato down keeps its measurements
// in its backlog while OTLP delivers the same period at once, and the
// reverse; when the down one comes back, it gets everything once.
func TestOneOutputDownTheOtherDelivers(t *testing.T) {
	for _, which := range []string{"librato", "otlp"} {
		t.Run(which+" down", func(t *testing.T) {
			a := aggregator.New(aggregator.Config{})
			lib, ot := &scripted{}, &fakeOTLP{}
			if which == "librato" {
				lib.setAnswer(func(int, *librato.Batch) error { return down })
			} else {
				ot.setAnswer(func(int, []string) error { return otlpDown })
			}
			cfg := fastConfig(newMetrics(t))
			cfg.OTLP = otlpConfig(ot)
			f := New(cfg, a, lib)
			feed(t, a, "c:3|c")
			res := f.Flush(context.Background(), t0)
			lr, or := resultOf(t, res, "librato"), resultOf(t, res, "otlp")
			up, downRes := or, lr
			if which == "otlp" {
				up, downRes = lr, or
			}
			if up.Sent != 1 || up.Pending != 0 || downRes.Sent != 0 || downRes.Pending != 1 {
				t.Fatalf("with %s down: librato %+v, otlp %+v", which, lr, or)
			}
			lib.setAnswer(nil)
			ot.setAnswer(nil)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			f.lane.drainAll(ctx)
			f.otlp.drainAll(ctx)
			if pts, _ := ot.got(); pts["c"] != 3 {
				t.Errorf("OTLP got c = %v, want 3 once", pts["c"])
			}
			if got := lib.totals()[t0.Unix()]; got["c"] != 3 {
				t.Errorf("Librato got c = %v, want 3 once", got["c"])
			}
		})
	}
}

// TestSlowOutputDoesNotDelayTheOther: while every request of one output
// hangs, the other's requests of the same period are all delivered.
func TestSlowOutputDoesNotDelayTheOther(t *testing.T) {
	for _, slow := range []string{"librato", "otlp"} {
		t.Run(slow+" slow", func(t *testing.T) {
			a := aggregator.New(aggregator.Config{})
			release := make(chan struct{})
			lib, ot := &scripted{}, &fakeOTLP{}
			if slow == "otlp" {
				ot.setAnswer(func(int, []string) error { <-release; return nil })
			} else {
				lib.setAnswer(func(int, *librato.Batch) error { <-release; return nil })
			}
			cfg := fastConfig(newMetrics(t))
			cfg.BatchSize, cfg.Concurrency = 1, 1
			cfg.OTLP = otlpConfig(ot)
			cfg.OTLP.BatchSize, cfg.OTLP.Concurrency = 1, 1
			f := New(cfg, a, lib)
			for _, n := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
				feed(t, a, n+":1|c")
			}
			done := make(chan Result, 1)
			go func() { done <- f.Flush(context.Background(), t0) }()
			delivered := func() int {
				if slow == "otlp" {
					return len(lib.totals()[t0.Unix()])
				}
				_, n := ot.got()
				return n
			}
			deadline := time.Now().Add(10 * time.Second)
			for delivered() < 8 {
				if time.Now().After(deadline) {
					close(release)
					t.Fatalf("%d of 8 delivered by the other output while %s hangs", delivered(), slow)
				}
				time.Sleep(5 * time.Millisecond)
			}
			close(release)
			res := <-done
			if r := resultOf(t, res, slow); r.Sent != 8 {
				t.Errorf("%s result %+v once released", slow, r)
			}
		})
	}
}

// TestOTLPRefusedPointIsSplitOut: a request refused (400) for one point
// is split until that point is found; the others are delivered.
func TestOTLPRefusedPointIsSplitOut(t *testing.T) {
	a := aggregator.New(aggregator.Config{})
	ot := &fakeOTLP{}
	ot.setAnswer(func(_ int, names []string) error {
		for _, n := range names {
			if n == "bad" {
				return &otlp.Error{StatusCode: 400, Refused: true, Message: "bad point"}
			}
		}
		return nil
	})
	m := newMetrics(t)
	cfg := fastConfig(m)
	cfg.LibratoOff = true
	cfg.OTLP = otlpConfig(ot)
	f := New(cfg, a, nil)
	for _, n := range []string{"a", "b", "bad", "c", "d", "e", "f"} {
		feed(t, a, n+":1|c")
	}
	res := f.Flush(context.Background(), t0)
	if _, n := ot.got(); n != 6 || res.Sent != 6 || res.Dropped != 1 || len(res.Outputs) != 1 {
		t.Errorf("delivered %d, result %+v; want 6 sent, the bad one dropped", n, res)
	}
}

// TestOTLPSpoolReplays: points kept in the OTLP output's own spool while
// the endpoint is down are delivered once by the next flusher.
func TestOTLPSpoolReplays(t *testing.T) {
	dir := t.TempDir()
	sp := openSpool(t, dir)
	a := aggregator.New(aggregator.Config{})
	ot := &fakeOTLP{}
	ot.setAnswer(func(int, []string) error { return otlpDown })
	cfg := fastConfig(newMetrics(t))
	cfg.LibratoOff = true
	cfg.OTLP = otlpConfig(ot)
	cfg.OTLP.Spool = sp
	cfg.OTLP.MaxAge = 100 * 365 * 24 * time.Hour
	f := New(cfg, a, nil)
	feed(t, a, "c:3|c", "t:1|ms", "t:2|ms")
	if res := f.Flush(context.Background(), t0); res.Pending != 2 {
		t.Fatalf("result %+v, want 2 points pending", res)
	}
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	sp2 := openSpool(t, dir)
	ot2 := &fakeOTLP{}
	cfg2 := fastConfig(newMetrics(t))
	cfg2.LibratoOff = true
	cfg2.OTLP = otlpConfig(ot2)
	cfg2.OTLP.Spool = sp2
	cfg2.OTLP.MaxAge = cfg.OTLP.MaxAge
	f2 := New(cfg2, aggregator.New(aggregator.Config{}), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f2.otlp.drainAll(ctx)
	if pts, n := ot2.got(); n != 2 || pts["c"] != 3 || pts["t"] != 2 {
		t.Errorf("after the restart OTLP got %v (%d points), want c 3 and t's 2 values once", pts, n)
	}
	if st := sp2.Stats(); st.Pending.Records != 0 {
		t.Errorf("spool still holds %d records", st.Pending.Records)
	}
}
