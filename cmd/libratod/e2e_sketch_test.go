package main

import (
	"strconv"
	"strings"
	"testing"
	"time"

	metricsv1 "go.opentelemetry.io/proto/otlp/metrics/v1"

	"github.com/libratod/libratod/internal/otelcoltest"
)

// TestOTLPHistogramPastSampleBound sends a timer more values than
// aggregate.max_timer_samples through a real OpenTelemetry Collector: its
// exponential histogram comes from the aggregator's sketch, with count
// (weighted), sum, min and max exact and the buckets adding up to the
// count.
func TestOTLPHistogramPastSampleBound(t *testing.T) {
	col := otelcoltest.Start(t)
	fake := newFakeLibrato(t)
	cfg := otlpTestConfig(fake.URL, col)
	cfg.Aggregate.MaxTimerSamples = 10
	// 40 values at rate 0.5, -5 to 34 (a zero, negatives): count 80,
	// sum 2·(780-200) = 1160.
	var lines []string
	for i := range 40 {
		lines = append(lines, "busy:"+strconv.Itoa(i-5)+"|ms|@0.5")
	}
	d, stop := startDaemon(t, cfg)
	sendUDP(t, d.lst.UDPAddr(), strings.Join(lines, "\n")+"\n")
	waitSeen(t, d, 40)
	stop()
	mds := col.WaitFor(t, func(mds []*metricsv1.MetricsData) bool {
		_, ok := otlpPoints(mds)["busy{env=test}"]
		return ok
	}, 20*time.Second)
	p := otlpPoints(mds)["busy{env=test}"]
	if p.kind != "histogram" || p.points != 1 || p.count != 80 || p.sum != 1160 || p.min != -5 ||
		p.max != 34 || p.buckets != p.count {
		t.Errorf("busy: %+v; want a histogram of count 80, sum 1160, min -5, max 34, buckets adding up", *p)
	}
}
