package main

import (
	"fmt"
	"testing"
	"time"

	metricsv1 "go.opentelemetry.io/proto/otlp/metrics/v1"

	"github.com/libratod/libratod/flusher"
	"github.com/libratod/libratod/internal/eventually"
	"github.com/libratod/libratod/internal/otelcoltest"
)

// pointsAt returns the values of name's points by time, failing t on a
// time that holds two points (Librato would keep one).
func pointsAt(t *testing.T, fake *fakeLibrato, name string) map[int64]float64 {
	t.Helper()
	out := map[int64]float64{}
	for _, p := range received(fake.requests())[name] {
		if _, dup := out[p.time]; dup {
			t.Errorf("%s: two points at %d", name, p.time)
		}
		out[p.time] = p.value
	}
	return out
}

// waitUntil sleeps until clock reads at least at.
func waitUntil(clock func() time.Time, at time.Time) {
	if d := at.Sub(clock()); d > 0 {
		time.Sleep(d)
	}
}

// crossBoundary sends name's lines to d, a daemon with 2 s periods started
// at began on clock, across the end of its first period: 1 stamped in the
// first period before its end, then, just after it, 2 stamped in the
// first period and 10 unstamped. It returns the first period's time and
// its end, once the stamped line after the end is counted (in the closing
// period or late).
func crossBoundary(t *testing.T, d *daemon, clock func() time.Time, began time.Time, name string) (first, b1 time.Time) {
	t.Helper()
	// The first period: [FirstTime(began), b1), as the flusher places it.
	first = flusher.FirstTime(began)
	b1 = time.Unix(began.Unix()-began.Unix()%2+2, 0)
	if !first.Before(b1) {
		b1 = b1.Add(2 * time.Second)
	}
	// A stamped line in the first period: the grace applies only while
	// clients send such lines.
	sendUDP(t, d.lst.UDPAddr(), fmt.Sprintf("%s:1|c|T%d", name, first.Unix()))
	eventually.Require(t, 10*time.Second, func() bool {
		return counterValue(t, d, "libratod_lines_timestamped_total", "current") == 1
	}, "the first stamped line counted")
	waitUntil(clock, b1.Add(50*time.Millisecond))
	sendUDP(t, d.lst.UDPAddr(), fmt.Sprintf("%s:2|c|T%d\n%s:10|c", name, b1.Unix()-1, name))
	eventually.Require(t, 10*time.Second, func() bool {
		return counterValue(t, d, "libratod_lines_timestamped_total", "closing")+
			counterValue(t, d, "libratod_lines_timestamp_outside_period_total", "late") >= 1
	}, "the line stamped in the first period counted")
	return first, b1
}

// TestEndToEndTimestampGrace: a counter line stamped ("|T") in the period
// just ended, arriving within the grace, is sent in that period's point,
// with its time; once that period is sent, such a line is late, counted,
// and goes to the open period.
func TestEndToEndTimestampGrace(t *testing.T) {
	fake := newFakeLibrato(t)
	cfg := testConfig(fake.URL, "tagged")
	cfg.Aggregate.Period, cfg.Aggregate.TimestampGrace = 2*time.Second, 2*time.Second
	cfg.Metrics.ToLibrato = false
	clock := testClock()
	began := clock()
	d, stop := startDaemonWith(t, cfg, options{now: clock}, nil)
	defer func() {
		if stop != nil {
			stop()
		}
	}()
	first, b1 := crossBoundary(t, d, clock, began, "grace.c")
	if n := counterValue(t, d, "libratod_lines_timestamped_total", "closing"); n != 1 {
		t.Fatalf("%v lines in the closing period, want 1 (did the machine take the whole 2s grace?)", n)
	}
	// The first period is sent at b1 + the grace, with the line.
	eventually.Require(t, 10*time.Second, func() bool { return pointsAt(t, fake, "grace.c")[first.Unix()] != 0 },
		"the first period sent")
	sendUDP(t, d.lst.UDPAddr(), fmt.Sprintf("grace.c:100|c|T%d", b1.Unix()-1))
	waitCounter(t, d, "libratod_lines_timestamp_outside_period_total", 1)
	if n := counterValue(t, d, "libratod_lines_timestamp_outside_period_total", "late"); n != 1 {
		t.Errorf("%v late lines, want 1", n)
	}
	stopped := clock()
	stop()
	stop = nil

	got := pointsAt(t, fake, "grace.c")
	if got[first.Unix()] != 3 {
		t.Errorf("first period %d: %v, want 1 + the 2 stamped in it (all: %v)", first.Unix(), got[first.Unix()], got)
	}
	if got[b1.Unix()] != 10 {
		t.Errorf("second period %d: %v, want 10 (all: %v)", b1.Unix(), got[b1.Unix()], got)
	}
	// The late line is in the period open when it came: the third, unless
	// the machine was slow enough for it to come after the third's end.
	var late float64
	for tm, v := range got {
		if tm > b1.Unix() && tm <= flusher.FirstTime(stopped).Unix() {
			late += v
		}
	}
	if late != 100 || len(got) > 4 {
		t.Errorf("points %v: want the late 100 once in a period after %d", got, b1.Unix())
	}
}

// TestEndToEndTimestampRestart: a line stamped in the period a daemon
// stopped in, sent to the daemon started after it, is late there (that
// process sent the period with its time already) and goes to the new
// daemon's first period: one point at each time, every unit once.
func TestEndToEndTimestampRestart(t *testing.T) {
	fake := newFakeLibrato(t)
	cfg := testConfig(fake.URL, "tagged") // 1 h: only the final flushes
	cfg.Metrics.ToLibrato = false
	clock := testClock() // one clock for both processes, as one machine's
	d, stop := startDaemonWith(t, cfg, options{now: clock}, nil)
	sendUDP(t, d.lst.UDPAddr(), "restart.c:1|c")
	waitSeen(t, d, 1)
	stop()
	sent := pointsAt(t, fake, "restart.c")
	if len(sent) != 1 {
		t.Fatalf("first daemon sent %v, want one point", sent)
	}
	var first int64
	for tm := range sent {
		first = tm
	}

	d2, stop2 := startDaemonWith(t, cfg, options{now: clock}, nil)
	sendUDP(t, d2.lst.UDPAddr(), fmt.Sprintf("restart.c:2|c|T%d\nrestart.c:4|c|T%d", first, clock().Unix()+1))
	waitSeen(t, d2, 2)
	if n := counterValue(t, d2, "libratod_lines_timestamp_outside_period_total", "late"); n != 1 {
		t.Errorf("%v late lines, want 1", n)
	}
	if n := counterValue(t, d2, "libratod_lines_timestamped_total", "current"); n != 1 {
		t.Errorf("%v lines in the current period, want 1", n)
	}
	stop2()
	got := pointsAt(t, fake, "restart.c")
	if len(got) != 2 || got[first] != 1 {
		t.Fatalf("points %v: want the first daemon's 1 at %d and one point after it", got, first)
	}
	for tm, v := range got {
		if tm != first && (tm < first || v != 6) {
			t.Errorf("second daemon's point %v at %d, want 2 + 4 after %d", v, tm, first)
		}
	}
}

// TestOTLPTimestampGrace: through a real OpenTelemetry Collector, a
// counter line stamped in the period just ended, arriving within the
// grace, is in the point of that period, which starts at its time.
func TestOTLPTimestampGrace(t *testing.T) {
	col := otelcoltest.Start(t)
	fake := newFakeLibrato(t)
	cfg := otlpTestConfig(fake.URL, col)
	cfg.Aggregate.Period, cfg.Aggregate.TimestampGrace = 2*time.Second, 2*time.Second
	cfg.Metrics.ToLibrato = false
	clock := testClock()
	began := clock()
	d, stop := startDaemonWith(t, cfg, options{now: clock}, nil)
	first, b1 := crossBoundary(t, d, clock, began, "ograce.c")
	closing := counterValue(t, d, "libratod_lines_timestamped_total", "closing")
	stop()
	if closing != 1 {
		t.Fatalf("%v lines in the closing period, want 1 (did the machine take the whole 2s grace?)", closing)
	}
	// The delta points of ograce.c, by start time in unix seconds.
	byStart := func(mds []*metricsv1.MetricsData) map[int64]float64 {
		out := map[int64]float64{}
		for _, md := range mds {
			for _, rm := range md.ResourceMetrics {
				for _, sm := range rm.ScopeMetrics {
					for _, m := range sm.Metrics {
						if s, ok := m.Data.(*metricsv1.Metric_Sum); ok && m.Name == "ograce.c" {
							for _, dp := range s.Sum.DataPoints {
								out[int64(dp.StartTimeUnixNano/1e9)] += dp.GetAsDouble()
							}
						}
					}
				}
			}
		}
		return out
	}
	mds := col.WaitFor(t, func(mds []*metricsv1.MetricsData) bool { return len(byStart(mds)) >= 2 }, 20*time.Second)
	got := byStart(mds)
	if got[first.Unix()] != 3 || got[b1.Unix()] != 10 || len(got) != 2 {
		t.Errorf("points by start %v, want 3 at %d and 10 at %d", got, first.Unix(), b1.Unix())
	}
}
