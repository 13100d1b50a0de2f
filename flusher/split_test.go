package flusher

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/libratod/libratod/aggregator"
	"github.com/libratod/libratod/internal/testproc"
	"github.com/libratod/libratod/librato"
)

// TestRefusedRequestIsSplit sends one request in which some measurements
// are refused: the others must be delivered, the refused ones dropped
// and counted, within the request budget.
func TestRefusedRequestIsSplit(t *testing.T) {
	refuse := func(bad map[string]bool, err func(name string) error) func(int, *librato.Batch) error {
		return func(_ int, b *librato.Batch) error {
			for _, m := range b.Measurements {
				if bad[m.Name] {
					return err(m.Name)
				}
			}
			return nil
		}
	}
	status400 := func(string) error { return &librato.Error{StatusCode: 400, Message: "value: is too large"} }
	tests := map[string]struct {
		bad       []string
		err       func(name string) error
		api       librato.API
		reason    string
		maxCalls  int
		wantDrops int // at least the bad ones; exactly when within budget
	}{
		"one bad in 300":      {bad: []string{"c17"}, err: status400, reason: "rejected", maxCalls: 1 + 2*9},
		"two bad in 300":      {bad: []string{"c3", "c250"}, err: status400, reason: "rejected", maxCalls: 1 + splitBudget(300)},
		"422":                 {bad: []string{"c100"}, err: func(string) error { return &librato.Error{StatusCode: 422} }, reason: "rejected", maxCalls: 1 + 2*9},
		"conflict, no match":  {bad: []string{"c42"}, api: librato.Legacy, err: func(string) error { return &librato.Error{StatusCode: 400, TypeConflicts: []string{"c42.renamed"}} }, reason: "type_conflict", maxCalls: 1 + 2*9},
		"many bad: capped":    {bad: []string{"c1", "c30", "c60", "c90", "c120", "c150", "c180", "c210", "c240", "c270"}, err: status400, reason: "rejected", maxCalls: 1 + splitBudget(300)},
		"not found: no split": {bad: []string{"c5"}, err: func(string) error { return &librato.Error{StatusCode: 404} }, reason: "rejected", maxCalls: 1, wantDrops: 300},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			a := aggregator.New(aggregator.Config{})
			bad := map[string]bool{}
			for _, n := range tc.bad {
				bad[n] = true
			}
			s := &scripted{answer: refuse(bad, tc.err)}
			m := newMetrics(t)
			cfg := fastConfig(m)
			cfg.BatchSize = 300
			if tc.api != 0 {
				cfg.API = tc.api
			}
			f := New(cfg, a, s)
			var lines []string
			for i := range 300 {
				lines = append(lines, fmt.Sprintf("c%d:1|c", i))
			}
			feed(t, a, lines...)
			res := f.Flush(context.Background(), t0)
			if s.calls > tc.maxCalls {
				t.Errorf("%d requests, want at most %d", s.calls, tc.maxCalls)
			}
			delivered := map[string]bool{}
			for _, names := range s.totals() {
				for n := range names {
					delivered[n] = true
				}
			}
			for n := range bad {
				if delivered[n] {
					t.Errorf("%s delivered", n)
				}
			}
			if res.Sent != len(delivered) || res.Sent+res.Dropped != 300 {
				t.Errorf("result %+v with %d delivered, want every one of 300 sent or dropped", res, len(delivered))
			}
			want := tc.wantDrops
			if want == 0 && s.calls <= 1+splitBudget(300) && name != "many bad: capped" {
				want = len(bad)
			}
			if want > 0 && res.Dropped != want {
				t.Errorf("dropped %d, want %d", res.Dropped, want)
			}
			if name == "many bad: capped" && res.Sent == 0 {
				t.Error("nothing delivered of 290 good ones")
			}
			if n := testutil.ToFloat64(m.forOutput("librato").dropped.WithLabelValues(tc.reason)); int(n) != res.Dropped {
				t.Errorf("dropped{%s} = %v, want %d", tc.reason, n, res.Dropped)
			}
		})
	}
}

// answering is a Sender that accepts every request with a given result.
type answering struct {
	res func(b *librato.Batch) librato.Result
}

func (s answering) Send(_ context.Context, b *librato.Batch) (librato.Result, error) {
	return s.res(b), nil
}

// TestPartialFailureCounted takes a 2xx whose body reports errors: the
// measurements it names are dropped, not sent; when it names none the
// request is counted as a partial failure and its measurements as sent.
func TestPartialFailureCounted(t *testing.T) {
	for _, failed := range []int{0, 2} {
		a := aggregator.New(aggregator.Config{})
		m := newMetrics(t)
		f := New(fastConfig(m), a, answering{func(b *librato.Batch) librato.Result {
			return librato.Result{StatusCode: 202, Sent: len(b.Measurements), Failed: failed,
				Errors: []string{"measurements.0.value: bad", "measurements.1.value: bad"}}
		}})
		feed(t, a, "a:1|c", "b:1|c", "c:1|c", "d:1|c")
		res := f.Flush(context.Background(), t0)
		if res.Sent != 4-failed || res.Dropped != failed {
			t.Errorf("failed=%d: result %+v, want %d sent and %d dropped", failed, res, 4-failed, failed)
		}
		if n := testutil.ToFloat64(m.forOutput("librato").dropped.WithLabelValues("partial")); int(n) != failed {
			t.Errorf("failed=%d: dropped{partial} = %v", failed, n)
		}
		if n := testutil.ToFloat64(m.forOutput("librato").sent); int(n) != 4-failed {
			t.Errorf("failed=%d: sent metric = %v", failed, n)
		}
		if n := testutil.ToFloat64(m.forOutput("librato").partial); n != 1 {
			t.Errorf("failed=%d: partial failures = %v, want 1", failed, n)
		}
	}
}

// TestFailureEpisodeIsLogged keeps Librato failing with an error that is
// retried (a TLS failure, say), then lets it through: the start and the
// end of the episode are logged at warn, with the reason and the counts.
func TestFailureEpisodeIsLogged(t *testing.T) {
	a := aggregator.New(aggregator.Config{})
	tlsErr := &librato.Error{Retryable: true, Message: "tls: failed to verify certificate: x509: certificate signed by unknown authority"}
	s := &scripted{answer: func(int, *librato.Batch) error { return tlsErr }}
	var logs testproc.SafeBuffer
	cfg := fastConfig(newMetrics(t))
	cfg.Logger = zerolog.New(&logs).Level(zerolog.WarnLevel)
	f := New(cfg, a, s)
	for p := range 3 {
		feed(t, a, "x:1|c", "y:1|c")
		f.Flush(context.Background(), t0.Add(time.Duration(p)*10*time.Second))
	}
	out := logs.String()
	if strings.Count(out, "cannot deliver to Librato") != 1 || !strings.Contains(out, "x509") ||
		!strings.Contains(out, `"level":"warn"`) {
		t.Fatalf("want one warning of the episode's start, with its reason:\n%s", out)
	}
	s.setAnswer(nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	f.drainAll(ctx)
	out = logs.String()
	if !strings.Contains(out, "delivering to Librato again") || !strings.Contains(out, `"delivered":6`) {
		t.Errorf("want the episode's end logged with 6 delivered:\n%s", out)
	}
}

// TestUnsendableIsLogged has the client skip a measurement: it is counted
// and logged, once however often it happens within a minute.
func TestUnsendableIsLogged(t *testing.T) {
	a := aggregator.New(aggregator.Config{})
	var logs testproc.SafeBuffer
	m := newMetrics(t)
	cfg := fastConfig(m)
	cfg.Logger = zerolog.New(&logs)
	f := New(cfg, a, answering{func(b *librato.Batch) librato.Result {
		return librato.Result{StatusCode: 200, Sent: len(b.Measurements) - 1, Skipped: 1}
	}})
	for p := range 3 {
		feed(t, a, "x:1|c", "y:1|c")
		f.Flush(context.Background(), t0.Add(time.Duration(p)*10*time.Second))
	}
	if n := strings.Count(logs.String(), "cannot be sent"); n != 1 {
		t.Errorf("%d warnings of unsendable measurements, want 1:\n%s", n, logs.String())
	}
	if n := testutil.ToFloat64(m.forOutput("librato").dropped.WithLabelValues("not_sendable")); n != 3 {
		t.Errorf("not_sendable = %v, want 3", n)
	}
}

// TestConflictFoundBySplittingIsStopped has Librato report a type
// conflict under another spelling of the name: splitting finds the
// measurement, whose name then goes on the stop list, so that the next
// period costs one request, not another search.
func TestConflictFoundBySplittingIsStopped(t *testing.T) {
	a := aggregator.New(aggregator.Config{})
	s := &scripted{answer: func(_ int, b *librato.Batch) error {
		for _, m := range b.Measurements {
			if m.Name == "clash" {
				return &librato.Error{StatusCode: 400, TypeConflicts: []string{"CLASH"}}
			}
		}
		return nil
	}}
	cfg := fastConfig(newMetrics(t))
	cfg.API = librato.Legacy
	f := New(cfg, a, s)
	var lines []string
	for i := range 20 {
		lines = append(lines, fmt.Sprintf("c%d:1|c", i))
	}
	feed(t, a, append(lines, "clash:1|c")...)
	if res := f.Flush(context.Background(), t0); res.Sent != 20 || res.Dropped != 1 {
		t.Fatalf("first period %+v, want 20 sent and the conflict dropped", res)
	}
	calls := s.calls
	feed(t, a, append(lines, "clash:1|c")...)
	if res := f.Flush(context.Background(), t0.Add(10*time.Second)); res.Sent != 20 || res.Dropped != 1 || s.calls != calls+1 {
		t.Errorf("second period %+v in %d requests, want 20 sent, the stopped name dropped, one request", res, s.calls-calls)
	}
}
