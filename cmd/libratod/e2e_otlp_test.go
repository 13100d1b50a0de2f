package main

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	metricsv1 "go.opentelemetry.io/proto/otlp/metrics/v1"

	"github.com/libratod/libratod/cmd/libratod/internal/config"
	"github.com/libratod/libratod/internal/eventually"
	"github.com/libratod/libratod/internal/otelcoltest"
)

// otlpPoint is what the collector received of one series (a metric name
// and its point attributes), every point added up: sums and counts add,
// a gauge keeps the last value seen.
type otlpPoint struct {
	kind        string // "sum", "gauge", "histogram", "summary"
	temporality metricsv1.AggregationTemporality
	monotonic   bool
	points      int
	value       float64 // sum: the points' values added; gauge: the last
	count       uint64  // histogram, summary: counts added
	sum         float64
	min, max    float64
	buckets     uint64 // histogram: every bucket count and the zero count
	quantiles   map[float64]float64
	start       []uint64 // every point's start time
	hosts       map[string]bool
}

// otlpPoints reads what the collector wrote, by "name{k=v,...}".
func otlpPoints(mds []*metricsv1.MetricsData) map[string]*otlpPoint {
	out := map[string]*otlpPoint{}
	get := func(name string, attrs []*commonv1.KeyValue, kind string, host string) *otlpPoint {
		var kv []string
		for _, a := range attrs {
			kv = append(kv, a.Key+"="+a.Value.GetStringValue())
		}
		sort.Strings(kv)
		key := name + "{" + strings.Join(kv, ",") + "}"
		p := out[key]
		if p == nil {
			p = &otlpPoint{kind: kind, quantiles: map[float64]float64{}, hosts: map[string]bool{}}
			out[key] = p
		}
		p.points++
		p.hosts[host] = true
		return p
	}
	for _, md := range mds {
		for _, rm := range md.ResourceMetrics {
			host := ""
			for _, a := range rm.GetResource().GetAttributes() {
				if a.Key == "host.name" {
					host = a.Value.GetStringValue()
				}
			}
			for _, sm := range rm.ScopeMetrics {
				for _, m := range sm.Metrics {
					switch d := m.Data.(type) {
					case *metricsv1.Metric_Sum:
						for _, dp := range d.Sum.DataPoints {
							p := get(m.Name, dp.Attributes, "sum", host)
							p.temporality, p.monotonic = d.Sum.AggregationTemporality, d.Sum.IsMonotonic
							if d.Sum.AggregationTemporality == metricsv1.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE {
								p.value = dp.GetAsDouble() // the running total
							} else {
								p.value += dp.GetAsDouble()
							}
							p.start = append(p.start, dp.StartTimeUnixNano)
						}
					case *metricsv1.Metric_Gauge:
						for _, dp := range d.Gauge.DataPoints {
							get(m.Name, dp.Attributes, "gauge", host).value = dp.GetAsDouble()
						}
					case *metricsv1.Metric_ExponentialHistogram:
						for _, dp := range d.ExponentialHistogram.DataPoints {
							p := get(m.Name, dp.Attributes, "histogram", host)
							p.temporality = d.ExponentialHistogram.AggregationTemporality
							p.count += dp.Count
							p.sum += dp.GetSum()
							p.min, p.max = dp.GetMin(), dp.GetMax()
							p.buckets += dp.ZeroCount
							for _, c := range dp.GetPositive().GetBucketCounts() {
								p.buckets += c
							}
							for _, c := range dp.GetNegative().GetBucketCounts() {
								p.buckets += c
							}
						}
					case *metricsv1.Metric_Summary:
						for _, dp := range d.Summary.DataPoints {
							p := get(m.Name, dp.Attributes, "summary", host)
							p.count += dp.Count
							p.sum += dp.Sum
							for _, q := range dp.QuantileValues {
								p.quantiles[q.Quantile] = q.Value
							}
						}
					}
				}
			}
		}
	}
	return out
}

// otlpTestConfig is testConfig with the OTLP output pointed at col.
func otlpTestConfig(libratoURL string, col *otelcoltest.Collector) *config.Config {
	c := testConfig(libratoURL, "tagged")
	c.OTLP.Endpoint = col.Endpoint()
	c.OTLP.MaxAttempts = 2
	return c
}

// otlpLines are the StatsD lines of the exactness tests: every type, tags
// and sample rates.
const otlpLines = "hits:1|c\nhits:2|c|@0.5\nreq:1|c|#region:eu\nreq:4|c|#region:eu\nnet:5|c\nnet:-7|c\n" +
	"temp:21.5|g\nusers:alice|s\nusers:bob|s\nusers:alice|s\n" +
	"lat:10|ms\nlat:20|ms|@0.5\nlat:30|ms\nlat:40|ms\n"

// TestOTLPEndToEnd sends every type, with tags and sample rates, through a
// real OpenTelemetry Collector, in both temporalities and both timer
// forms, with Librato on beside it: each output gets every unit.
func TestOTLPEndToEnd(t *testing.T) {
	for _, tc := range []struct{ temporality, timersAs string }{
		{config.TemporalityDelta, config.TimersAsExponentialHistogram},
		{config.TemporalityCumulative, config.TimersAsSummaryOTLP},
	} {
		t.Run(tc.temporality+"/"+tc.timersAs, func(t *testing.T) {
			col := otelcoltest.Start(t)
			fake := newFakeLibrato(t)
			cfg := otlpTestConfig(fake.URL, col)
			cfg.OTLP.Temporality, cfg.OTLP.TimersAs = tc.temporality, tc.timersAs
			d, stop := startDaemon(t, cfg)
			sendUDP(t, d.lst.UDPAddr(), otlpLines)
			waitSeen(t, d, 14)
			stop()
			mds := col.WaitFor(t, func(mds []*metricsv1.MetricsData) bool { return len(otlpPoints(mds)) >= 6 }, 20*time.Second)
			got := otlpPoints(mds)
			wantTemporality := metricsv1.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA
			if tc.temporality == config.TemporalityCumulative {
				wantTemporality = metricsv1.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE
			}
			check := func(key string, ok func(p *otlpPoint) bool) {
				t.Helper()
				p := got[key]
				if p == nil {
					t.Errorf("%s not received; got %v", key, keysOf(got))
					return
				}
				if !p.hosts["test-host"] || len(p.hosts) != 1 {
					t.Errorf("%s: host.name %v, want test-host", key, p.hosts)
				}
				if !ok(p) {
					t.Errorf("%s: %+v", key, *p)
				}
			}
			check("hits{env=test}", func(p *otlpPoint) bool {
				return p.kind == "sum" && p.value == 5 && p.monotonic && p.temporality == wantTemporality && p.points == 1
			})
			check("req{env=test,region=eu}", func(p *otlpPoint) bool { return p.kind == "sum" && p.value == 5 && p.monotonic })
			check("net{env=test}", func(p *otlpPoint) bool { return p.kind == "sum" && p.value == -2 && !p.monotonic })
			check("temp{env=test}", func(p *otlpPoint) bool { return p.kind == "gauge" && p.value == 21.5 })
			check("users{env=test}", func(p *otlpPoint) bool { return p.kind == "gauge" && p.value == 2 })
			if tc.timersAs == config.TimersAsExponentialHistogram {
				// 10, 20 (@0.5: counts 2), 30, 40: count 5, sum 120.
				check("lat{env=test}", func(p *otlpPoint) bool {
					return p.kind == "histogram" && p.count == 5 && p.sum == 120 && p.min == 10 && p.max == 40 &&
						p.buckets == p.count && p.temporality == wantTemporality
				})
			} else {
				check("lat{env=test}", func(p *otlpPoint) bool {
					return p.kind == "summary" && p.count == 5 && p.sum == 120 && p.quantiles[0] == 10 && p.quantiles[1] == 40 &&
						p.quantiles[0.5] == 20 && p.quantiles[0.995] == 40
				})
			}
			if reqs := fake.requests(); len(reqs) != 1 {
				t.Errorf("Librato got %d requests beside OTLP, want 1", len(reqs))
			}
		})
	}
}

// TestOTLPCollectorDownThenUp: periods sent while the collector is down
// wait in the OTLP output's backlog and arrive once, each unit once, when
// it is back; Librato, up all along, gets every period at once.
func TestOTLPCollectorDownThenUp(t *testing.T) {
	col := otelcoltest.Start(t)
	col.Stop()
	fake := newFakeLibrato(t)
	cfg := otlpTestConfig(fake.URL, col)
	cfg.Aggregate.Period = time.Second
	d, stop := startDaemonWith(t, cfg, options{now: time.Now}, nil)
	for i := range 3 {
		sendUDP(t, d.lst.UDPAddr(), fmt.Sprintf("down.c:%d|c", i+1))
		time.Sleep(1100 * time.Millisecond) // a period each
	}
	// Librato, up all along, has every period (the first may hold two
	// sends: a process's first period runs on to the boundary after).
	libratoTotal := func() float64 {
		var n float64
		for _, pts := range received(fake.requests()) {
			for _, p := range pts {
				n += p.value
			}
		}
		return n
	}
	eventually.Require(t, 10*time.Second, func() bool { return libratoTotal() == 6 }, "Librato got every period while the collector is down")
	col.Start()
	col.WaitFor(t, func(mds []*metricsv1.MetricsData) bool {
		p := otlpPoints(mds)["down.c{env=test}"]
		return p != nil && p.value >= 6
	}, 30*time.Second)
	stop()
	mds := col.WaitFor(t, func([]*metricsv1.MetricsData) bool { return true }, time.Second)
	if p := otlpPoints(mds)["down.c{env=test}"]; p == nil || p.value != 6 {
		t.Errorf("down.c after the collector came back: %+v, want 1+2+3 = 6 once", p)
	}
	if n := libratoTotal(); n != 6 {
		t.Errorf("Librato got %v, want 6", n)
	}
}

// TestOTLPOneOutputDown: with Librato down, OTLP delivers the period at
// once (and the reverse: with the collector down, Librato does); the
// output that is down keeps the data undelivered, counted in the last
// log line under its own name.
func TestOTLPOneOutputDown(t *testing.T) {
	t.Run("librato down", func(t *testing.T) {
		col := otelcoltest.Start(t)
		fake := newFakeLibrato(t)
		fake.down.Store(true)
		cfg := otlpTestConfig(fake.URL, col)
		cfg.Librato.ShutdownTimeout = time.Second
		d, stop := startDaemon(t, cfg)
		sendUDP(t, d.lst.UDPAddr(), "x:3|c")
		waitSeen(t, d, 1)
		logs := stop()
		col.WaitFor(t, func(mds []*metricsv1.MetricsData) bool {
			p := otlpPoints(mds)["x{env=test}"]
			return p != nil && p.value == 3
		}, 20*time.Second)
		if !strings.Contains(logs, `"librato":{"measurements":1,"carried":0,"sent":0,"dropped":0,"undelivered":1}`) ||
			!strings.Contains(logs, `"otlp":{"measurements":1,"carried":0,"sent":1,"dropped":0,"undelivered":0}`) {
			t.Errorf("last log line:\n%s", logs)
		}
	})
	t.Run("otlp down", func(t *testing.T) {
		col := otelcoltest.Start(t)
		col.Stop()
		fake := newFakeLibrato(t)
		cfg := otlpTestConfig(fake.URL, col)
		cfg.Librato.ShutdownTimeout = time.Second
		d, stop := startDaemon(t, cfg)
		sendUDP(t, d.lst.UDPAddr(), "x:3|c")
		waitSeen(t, d, 1)
		logs := stop()
		if reqs := fake.requests(); len(reqs) != 1 {
			t.Errorf("Librato got %d requests, want 1", len(reqs))
		}
		if !strings.Contains(logs, `"otlp":{"measurements":1,"carried":0,"sent":0,"dropped":0,"undelivered":1}`) {
			t.Errorf("last log line:\n%s", logs)
		}
	})
}

// TestOTLPSpoolSIGTERMThenRestart: with the collector down, a stop keeps
// the period in the OTLP output's own spool (spool_dir/otlp); the next
// daemon, with the collector up, delivers it once. Librato is off, with
// no credentials set.
func TestOTLPSpoolSIGTERMThenRestart(t *testing.T) {
	col := otelcoltest.Start(t)
	col.Stop()
	dir := filepath.Join(t.TempDir(), "spool")
	cfg := otlpTestConfig("http://127.0.0.1:1", col)
	cfg.Librato.Enabled = false
	cfg.Librato.Token, cfg.Librato.Email = "", "" // Librato off: no credentials needed
	cfg.Librato.SpoolDir = dir
	cfg.Librato.ShutdownTimeout = time.Second
	d, stop := startDaemon(t, cfg)
	sendUDP(t, d.lst.UDPAddr(), "kept.c:4|c\nkept.t:5|ms\nkept.t:7|ms")
	waitSeen(t, d, 3)
	logs := stop()
	if !strings.Contains(logs, `"otlp":{"measurements":2,"carried":0,"sent":0,"dropped":0,"undelivered":2}`) {
		t.Fatalf("first run's last log line:\n%s", logs)
	}
	col.Start()
	d2, stop2 := startDaemon(t, cfg)
	_ = d2
	mds := col.WaitFor(t, func(mds []*metricsv1.MetricsData) bool {
		got := otlpPoints(mds)
		return got["kept.c{env=test}"] != nil && got["kept.t{env=test}"] != nil
	}, 30*time.Second)
	stop2()
	got := otlpPoints(mds)
	if p := got["kept.c{env=test}"]; p.value != 4 || p.points != 1 {
		t.Errorf("kept.c: %+v, want 4 once", *p)
	}
	if p := got["kept.t{env=test}"]; p.count != 2 || p.sum != 12 || p.points != 1 {
		t.Errorf("kept.t: %+v, want count 2, sum 12, once", *p)
	}
}

func keysOf(m map[string]*otlpPoint) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
