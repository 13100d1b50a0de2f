package flusher

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/libratod/libratod/aggregator"
	"github.com/libratod/libratod/internal/testproc"
	"github.com/libratod/libratod/librato"
	"github.com/libratod/libratod/otlp"
)

// manualClock is a clock the test moves by hand.
type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *manualClock) read() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// refusedLines returns 300 counters, c0 to c297 and req with env:ok and
// env:bad: one series of a name with two tag sets.
func refusedLines() []string {
	var lines []string
	for i := range 298 {
		lines = append(lines, fmt.Sprintf("c%d:1|c", i))
	}
	return append(lines, "req:1|c|#env:ok", "req:1|c|#env:bad")
}

// TestRefusedValueIsRemembered has Librato refuse one measurement, req
// with env:bad, alone, in every period: the first period searches for it
// by splitting (about 18 requests); later ones send one request without
// it, counted as dropped{reason="refused_before"} and logged once, while
// req with env:ok is still delivered. An hour after the refusal it is
// searched for again.
func TestRefusedValueIsRemembered(t *testing.T) {
	isBad := func(m librato.Measurement) bool {
		return m.Name == "req" && slices.Contains(m.Tags, librato.Tag{Name: "env", Value: "bad"})
	}
	s := &scripted{answer: func(_ int, b *librato.Batch) error {
		if slices.ContainsFunc(b.Measurements, isBad) {
			return &librato.Error{StatusCode: 400, Message: "value: is too large"}
		}
		return nil
	}}
	a := aggregator.New(aggregator.Config{})
	m := newMetrics(t)
	cfg := fastConfig(m)
	cfg.BatchSize = 300
	clock := &manualClock{now: t0}
	cfg.Now = clock.read
	var logs testproc.SafeBuffer
	cfg.Logger = zerolog.New(&logs)
	f := New(cfg, a, s)
	refusedBefore := func() float64 {
		return testutil.ToFloat64(m.forOutput("librato").dropped.WithLabelValues("refused_before"))
	}

	period := func(at time.Time) (Result, int, bool) {
		t.Helper()
		clock.set(at)
		calls := s.calls
		n := len(s.accepted)
		feed(t, a, refusedLines()...)
		res := f.Flush(context.Background(), at)
		okSent := false
		for _, b := range s.accepted[n:] {
			for _, m := range b.Measurements {
				if m.Name == "req" && !isBad(m) {
					okSent = true
				}
			}
		}
		return res, s.calls - calls, okSent
	}

	res, calls, okSent := period(t0)
	if calls < 10 || res.Sent != 299 || res.Dropped != 1 || !okSent {
		t.Fatalf("first period: %+v in %d requests, req env:ok sent %v; want 299 sent, 1 dropped after a search",
			res, calls, okSent)
	}
	for p := 1; p <= 3; p++ {
		res, calls, okSent = period(t0.Add(time.Duration(p) * 10 * time.Second))
		if calls != 1 || res.Sent != 299 || res.Dropped != 1 || !okSent {
			t.Errorf("period %d: %+v in %d requests, req env:ok sent %v; want 299 sent, 1 dropped, 1 request",
				p, res, calls, okSent)
		}
		if got := refusedBefore(); got != float64(p) {
			t.Errorf("period %d: dropped{refused_before} = %v, want %d", p, got, p)
		}
	}
	if n := strings.Count(logs.String(), "not sending it again"); n != 1 {
		t.Errorf("%d logs of a remembered refusal, want 1:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), `"name":"req"`) {
		t.Errorf("the log does not name the measurement:\n%s", logs.String())
	}

	// An hour on, the refusal is forgotten: req env:bad is tried again.
	res, calls, _ = period(t0.Add(time.Hour + 10*time.Second))
	if calls < 10 || res.Dropped != 1 || refusedBefore() != 3 {
		t.Errorf("an hour later: %+v in %d requests, dropped{refused_before} %v; want it searched for again",
			res, calls, refusedBefore())
	}
	res, calls, _ = period(t0.Add(time.Hour + 20*time.Second))
	if calls != 1 || res.Dropped != 1 || refusedBefore() != 4 {
		t.Errorf("after the new search: %+v in %d requests; want it remembered again", res, calls)
	}
}

// TestRefusedPointIsRemembered does the same with the OTLP output alone:
// a point refused alone (400) is searched for once, then left out.
func TestRefusedPointIsRemembered(t *testing.T) {
	ot := &fakeOTLP{answer: func(_ int, names []string) error {
		if slices.Contains(names, "bad") {
			return &otlp.Error{StatusCode: 400, Message: "bad value", Refused: true}
		}
		return nil
	}}
	a := aggregator.New(aggregator.Config{})
	m := newMetrics(t)
	cfg := fastConfig(m)
	cfg.LibratoOff = true
	cfg.OTLP = otlpConfig(ot)
	cfg.OTLP.BatchSize = 300
	clock := &manualClock{now: t0}
	cfg.Now = clock.read
	f := New(cfg, a, nil)
	var lines []string
	for i := range 299 {
		lines = append(lines, fmt.Sprintf("c%d:1|c", i))
	}
	lines = append(lines, "bad:1|g")
	for p := range 4 {
		at := t0.Add(time.Duration(p) * 10 * time.Second)
		clock.set(at)
		ot.mu.Lock()
		calls := ot.calls
		ot.mu.Unlock()
		feed(t, a, lines...)
		res := resultOf(t, f.Flush(context.Background(), at), "otlp")
		ot.mu.Lock()
		calls = ot.calls - calls
		ot.mu.Unlock()
		if res.Sent != 299 || res.Dropped != 1 {
			t.Errorf("period %d: %+v, want 299 sent, 1 dropped", p, res)
		}
		if p == 0 && calls < 10 || p > 0 && calls != 1 {
			t.Errorf("period %d: %d requests", p, calls)
		}
	}
	if got := testutil.ToFloat64(m.forOutput("otlp").dropped.WithLabelValues("refused_before")); got != 3 {
		t.Errorf("dropped{refused_before} = %v, want 3", got)
	}
}

// TestRefusedRequestIsNotRemembered has Librato refuse every measurement
// of a request (as for a time it finds too old): that is no proof against
// any one of them, so none is remembered and the next period tries them
// all again.
func TestRefusedRequestIsNotRemembered(t *testing.T) {
	s := &scripted{answer: func(int, *librato.Batch) error {
		return &librato.Error{StatusCode: 400, Message: "measure_time: is too far in the past"}
	}}
	a := aggregator.New(aggregator.Config{})
	m := newMetrics(t)
	f := New(fastConfig(m), a, s)
	for p := range 2 {
		calls := s.calls
		feed(t, a, "a:1|c", "b:1|c", "c:1|c", "d:1|c")
		res := f.Flush(context.Background(), t0.Add(time.Duration(p)*10*time.Second))
		if res.Dropped != 4 || s.calls-calls < 7 {
			t.Errorf("period %d: %+v in %d requests, want all 4 dropped after a search of 7", p, res, s.calls-calls)
		}
	}
	if got := testutil.ToFloat64(m.forOutput("librato").dropped.WithLabelValues("refused_before")); got != 0 {
		t.Errorf("dropped{refused_before} = %v, want 0", got)
	}
}

// TestRefusedListBounds: the list holds at most maxRefused entries; a
// full list makes room only from entries that have expired.
func TestRefusedListBounds(t *testing.T) {
	var r refusedList
	for i := range maxRefused {
		if !r.add([]byte(fmt.Sprint(i)), t0) {
			t.Fatalf("entry %d refused", i)
		}
	}
	if r.add([]byte("one more"), t0.Add(refusedFor-time.Second)) {
		t.Error("a full list took one more entry")
	}
	if !r.add([]byte("0"), t0.Add(time.Second)) {
		t.Error("a full list did not renew an entry it holds")
	}
	if !r.add([]byte("one more"), t0.Add(refusedFor)) || r.n.Load() != 2 {
		t.Errorf("after the hour: %d entries, want the two that had not expired", r.n.Load())
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.holdsLocked([]byte("0"), t0.Add(refusedFor)) || r.holdsLocked([]byte("0"), t0.Add(refusedFor+time.Second)) {
		t.Error("entry 0 is not held until an hour after its renewal, then forgotten")
	}
	if r.n.Load() != 1 {
		t.Errorf("%d entries after one was forgotten, want 1", r.n.Load())
	}
}

// BenchmarkLeaveOutRefused measures what a request of 300 measurements
// pays for the refused list: nothing held (an atomic load); one series
// held, not in the request (an identity and a lookup per measurement);
// one held and left out (a copy of the rest besides).
func BenchmarkLeaveOutRefused(b *testing.B) {
	for _, held := range []int{0, -1, 1} {
		name := map[int]string{0: "empty", -1: "held_elsewhere", 1: "held_here"}[held]
		b.Run(name, func(b *testing.B) {
			f := New(fastConfig(nil), aggregator.New(aggregator.Config{}), &scripted{})
			l := f.lane
			ms := make([]librato.Measurement, 300)
			for i := range ms {
				ms[i] = librato.Measurement{Name: fmt.Sprintf("service.requests.c%d", i), Value: 1,
					Tags: []librato.Tag{{Name: "env", Value: "prod"}, {Name: "host", Value: "web-17"}}}
			}
			batch := &librato.Batch{Time: t0.Unix(), Measurements: ms}
			switch held {
			case 1:
				l.refused.add(l.out.identity(nil, batch, 17), t0)
			case -1:
				l.refused.add([]byte("elsewhere"), t0)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, n := l.leaveOutRefused(batch); n != max(held, 0) {
					b.Fatalf("left out %d, want %d", n, max(held, 0))
				}
			}
		})
	}
}
