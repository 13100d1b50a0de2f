package otelcoltest

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	metricsv1 "go.opentelemetry.io/proto/otlp/metrics/v1"
	resourcev1 "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/protobuf/proto"
)

// wait bounds the tests' waits for what a collector writes.
const wait = 20 * time.Second

// str is a string attribute.
func str(k, v string) *commonv1.KeyValue {
	return &commonv1.KeyValue{Key: k, Value: &commonv1.AnyValue{
		Value: &commonv1.AnyValue_StringValue{StringValue: v}}}
}

// sample returns a request of a gauge, a delta monotonic sum and a delta
// histogram, each with attributes, under a resource naming host; the
// values depend on base so that two samples differ.
func sample(host string, base float64) *metricsv1.MetricsData {
	const start, end = 1_700_000_000_000_000_000, 1_700_000_010_000_000_000
	return &metricsv1.MetricsData{ResourceMetrics: []*metricsv1.ResourceMetrics{{
		Resource: &resourcev1.Resource{Attributes: []*commonv1.KeyValue{
			str("service.name", "libratod"), str("host.name", host)}},
		ScopeMetrics: []*metricsv1.ScopeMetrics{{
			Scope: &commonv1.InstrumentationScope{Name: "libratod", Version: "test"},
			Metrics: []*metricsv1.Metric{
				{Name: "queue.depth", Unit: "1", Data: &metricsv1.Metric_Gauge{Gauge: &metricsv1.Gauge{
					DataPoints: []*metricsv1.NumberDataPoint{{
						Attributes:   []*commonv1.KeyValue{str("queue", "a")},
						TimeUnixNano: end,
						Value:        &metricsv1.NumberDataPoint_AsDouble{AsDouble: base + 0.5},
					}, {
						Attributes:   []*commonv1.KeyValue{str("queue", "b")},
						TimeUnixNano: end,
						Value:        &metricsv1.NumberDataPoint_AsInt{AsInt: int64(base) + 7},
					}}}}},
				{Name: "hits", Data: &metricsv1.Metric_Sum{Sum: &metricsv1.Sum{
					AggregationTemporality: metricsv1.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA,
					IsMonotonic:            true,
					DataPoints: []*metricsv1.NumberDataPoint{{
						Attributes:        []*commonv1.KeyValue{str("route", "/"), str("code", "200")},
						StartTimeUnixNano: start, TimeUnixNano: end,
						Value: &metricsv1.NumberDataPoint_AsDouble{AsDouble: base * 3},
					}}}}},
				{Name: "latency", Unit: "ms", Data: &metricsv1.Metric_Histogram{Histogram: &metricsv1.Histogram{
					AggregationTemporality: metricsv1.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA,
					DataPoints: []*metricsv1.HistogramDataPoint{{
						Attributes:        []*commonv1.KeyValue{str("route", "/")},
						StartTimeUnixNano: start, TimeUnixNano: end,
						Count: 4, Sum: proto.Float64(base + 10),
						Min: proto.Float64(1), Max: proto.Float64(base + 5),
						ExplicitBounds: []float64{1, 10}, BucketCounts: []uint64{1, 2, 1},
					}}}}},
			},
		}},
	}}}
}

// post sends md to c's /v1/metrics as protobuf, gzipped when asked, and
// fails the test unless the collector answers 200.
func post(t *testing.T, c *Collector, md *metricsv1.MetricsData, gzipped bool) {
	t.Helper()
	if err := tryPost(c, md, gzipped); err != nil {
		t.Fatal(err)
	}
}

// tryPost is post returning the failure.
func tryPost(c *Collector, md *metricsv1.MetricsData, gzipped bool) error {
	// MetricsData and ExportMetricsServiceRequest have the same fields
	// (resource_metrics = 1): one's encoding is the other's.
	body, err := proto.Marshal(md)
	if err != nil {
		return fmt.Errorf("marshal: %w", err)
	}
	if gzipped {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		if _, err := zw.Write(body); err != nil {
			return fmt.Errorf("gzip: %w", err)
		}
		if err := zw.Close(); err != nil {
			return fmt.Errorf("gzip: %w", err)
		}
		body = b.Bytes()
	}
	req, err := http.NewRequest(http.MethodPost, c.Endpoint()+"/v1/metrics", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	if gzipped {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("post: %w", err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("post: %s: %q", resp.Status, answer)
	}
	return nil
}

// received returns a condition that holds when every one of want has been
// written, each exactly as sent (one export, one line: the pipeline has
// no batching).
func received(want ...*metricsv1.MetricsData) func([]*metricsv1.MetricsData) bool {
	return func(got []*metricsv1.MetricsData) bool {
		for _, w := range want {
			found := false
			for _, g := range got {
				if proto.Equal(g, w) {
					found = true
					break
				}
			}
			if !found {
				return false
			}
		}
		return true
	}
}

func TestPointsArriveWithValuesAndAttributes(t *testing.T) {
	c := Start(t)
	plain, gzipped := sample("plain", 1), sample("gzipped", 2)
	post(t, c, plain, false)
	post(t, c, gzipped, true)
	got := c.WaitFor(t, received(plain, gzipped), wait)
	if len(got) != 2 {
		t.Errorf("%d exports written, want 2", len(got))
	}
	// Named finds each metric once in each export.
	for _, name := range []string{"queue.depth", "hits", "latency"} {
		if n := len(Named(got, name)); n != 2 {
			t.Errorf("Named(%q): %d metrics, want 2", name, n)
		}
	}
	hits := Named(got, "hits")[0].GetSum().GetDataPoints()[0]
	if v := hits.GetAsDouble(); v != 3 && v != 6 {
		t.Errorf("hits = %v, want 3 or 6", v)
	}
}

func TestStopThenStartOnTheSamePort(t *testing.T) {
	c := Start(t)
	endpoint := c.Endpoint()
	before := sample("before", 1)
	post(t, c, before, false)
	c.WaitFor(t, received(before), wait)

	c.Stop()
	if err := tryPost(c, sample("down", 3), false); err == nil {
		t.Fatal("a stopped collector took a request")
	}
	c.Stop() // a second Stop does nothing

	c.Start()
	if c.Endpoint() != endpoint {
		t.Fatalf("endpoint %s after the restart, was %s", c.Endpoint(), endpoint)
	}
	after := sample("after", 2)
	post(t, c, after, true)
	// What the first run wrote is still read, beside the second's.
	got := c.WaitFor(t, received(before, after), wait)
	if len(got) != 2 {
		t.Errorf("%d exports written, want 2 (before and after)", len(got))
	}
}

func TestCollectorsRunSideBySide(t *testing.T) {
	a, b := Start(t), Start(t)
	if a.Endpoint() == b.Endpoint() {
		t.Fatalf("both collectors on %s", a.Endpoint())
	}
	toA, toB := sample("a", 1), sample("b", 2)
	post(t, a, toA, false)
	post(t, b, toB, false)
	for _, tc := range []struct {
		c          *Collector
		want, not  *metricsv1.MetricsData
		name, with string
	}{{a, toA, toB, "a", "b"}, {b, toB, toA, "b", "a"}} {
		got := tc.c.WaitFor(t, received(tc.want), wait)
		if received(tc.not)(got) {
			t.Errorf("collector %s wrote what was sent to %s", tc.name, tc.with)
		}
	}
}

func TestStatsDReceiver(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	c := Start(t, Config{StatsD: addr, StatsDInterval: 200 * time.Millisecond})
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The receiver may come up just after the OTLP one: send until the
	// counter is written (bounded by WaitFor), one datagram a poll.
	c.WaitFor(t, func(md []*metricsv1.MetricsData) bool {
		for _, m := range Named(md, "statsd.hits") {
			for _, p := range m.GetSum().GetDataPoints() {
				if p.GetAsInt() > 0 || p.GetAsDouble() > 0 {
					return true
				}
			}
		}
		if _, err := conn.Write([]byte("statsd.hits:1|c|#route:/\n")); err != nil {
			t.Fatal(err)
		}
		return false
	}, wait)
}

func TestParseLinesLeavesAPartialLine(t *testing.T) {
	whole := `{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"a","gauge":{"dataPoints":[{"asDouble":1.5}]}}]}]}]}`
	partial := `{"resourceMetrics":[{"scopeMe`
	got, err := ParseLines([]byte(whole + "\n" + partial))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || len(Named(got, "a")) != 1 {
		t.Fatalf("got %d exports, want the one whole line", len(got))
	}
	if v := Named(got, "a")[0].GetGauge().GetDataPoints()[0].GetAsDouble(); v != 1.5 {
		t.Errorf("a = %v, want 1.5", v)
	}
	if got, err := ParseLines([]byte(partial)); err != nil || len(got) != 0 {
		t.Errorf("a partial line alone: %d exports, %v; want none", len(got), err)
	}
	_, err = ParseLines([]byte(whole + "\n" + "{not json}\n"))
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("a bad line: %v, want an error naming line 2", err)
	}
}
