package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	metricsv1 "go.opentelemetry.io/proto/otlp/metrics/v1"
	resourcev1 "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/libratod/libratod/internal/eventually"
	"github.com/libratod/libratod/internal/otelcoltest"
)

// Temporalities, shortened.
const (
	deltaT = metricsv1.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA
	cumulT = metricsv1.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE
)

func kv(k, v string) *commonv1.KeyValue {
	return &commonv1.KeyValue{Key: k, Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_StringValue{StringValue: v}}}
}

// num returns a number point at unix second sec.
func numPoint(sec int64, v float64, attrs ...*commonv1.KeyValue) *metricsv1.NumberDataPoint {
	return &metricsv1.NumberDataPoint{Attributes: attrs, TimeUnixNano: uint64(sec) * 1e9,
		Value: &metricsv1.NumberDataPoint_AsDouble{AsDouble: v}}
}

func sum(name string, temp metricsv1.AggregationTemporality, pts ...*metricsv1.NumberDataPoint) *metricsv1.Metric {
	return &metricsv1.Metric{Name: name, Data: &metricsv1.Metric_Sum{Sum: &metricsv1.Sum{
		AggregationTemporality: temp, IsMonotonic: true, DataPoints: pts}}}
}

func gauge(name string, pts ...*metricsv1.NumberDataPoint) *metricsv1.Metric {
	return &metricsv1.Metric{Name: name, Data: &metricsv1.Metric_Gauge{Gauge: &metricsv1.Gauge{DataPoints: pts}}}
}

func expHist(name string, sec int64, count uint64) *metricsv1.Metric {
	return &metricsv1.Metric{Name: name, Data: &metricsv1.Metric_ExponentialHistogram{
		ExponentialHistogram: &metricsv1.ExponentialHistogram{AggregationTemporality: deltaT,
			DataPoints: []*metricsv1.ExponentialHistogramDataPoint{{TimeUnixNano: uint64(sec) * 1e9, Count: count}}}}}
}

func summary(name string, sec int64, count uint64) *metricsv1.Metric {
	return &metricsv1.Metric{Name: name, Data: &metricsv1.Metric_Summary{Summary: &metricsv1.Summary{
		DataPoints: []*metricsv1.SummaryDataPoint{{TimeUnixNano: uint64(sec) * 1e9, Count: count}}}}}
}

func metricsData(ms ...*metricsv1.Metric) *metricsv1.MetricsData {
	return &metricsv1.MetricsData{ResourceMetrics: []*metricsv1.ResourceMetrics{{
		Resource:     &resourcev1.Resource{Attributes: []*commonv1.KeyValue{kv("host.name", "h")}},
		ScopeMetrics: []*metricsv1.ScopeMetrics{{Metrics: ms}},
	}}}
}

// testOTLP is what libratod sends for testPayload, in OTLP: 7 points.
func testOTLP() *metricsv1.MetricsData {
	return metricsData(
		sum("load.c.0", deltaT, numPoint(1700000000, 6)),
		sum("load.c.1", deltaT, numPoint(1700000000, 2, kv("t0", "v1"))),
		expHist("load.ms.0", 1700000000, 3),
		gauge("load.s.2", numPoint(1700000000, 4)),
		gauge("load.g.1", numPoint(1700000000, 42)),
		summary("load.ms.1", 1700000000, 2),
		gauge("elsewhere", numPoint(1700000000, 1)),
	)
}

// TestFakeOTLP sends one request per case to a fake OTLP receiver and
// checks the answer and what was taken.
func TestFakeOTLP(t *testing.T) {
	body, err := proto.Marshal(testOTLP())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		faults      []fault
		down        time.Duration
		path        string
		contentType string
		body        []byte
		gzip        bool
		wantStatus  int
		wantStats   fakeStats
	}{
		{name: "accepted", wantStatus: 200, wantStats: fakeStats{Requests: 1, Accepted: 1}},
		{name: "gzip", gzip: true, wantStatus: 200, wantStats: fakeStats{Requests: 1, Accepted: 1}},
		{name: "429", faults: []fault{{kind: faultStatus, status: 429, p: 1}}, wantStatus: 429, wantStats: fakeStats{Requests: 1, Status: 1}},
		{name: "down", down: time.Hour, wantStatus: 503, wantStats: fakeStats{Requests: 1, Down: 1}},
		{name: "not protobuf", body: []byte{0xff, 0xff}, wantStatus: 400, wantStats: fakeStats{Requests: 1, Bad: 1}},
		{name: "JSON", contentType: "application/json", body: []byte("{}"), wantStatus: 400, wantStats: fakeStats{Requests: 1, Bad: 1}},
		{name: "Librato's path", path: "/v1/measurements", wantStatus: 404, wantStats: fakeStats{Requests: 1, Bad: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(fakeConfig{prefix: "load", faults: tt.faults, down: tt.down, seed: 1, otlp: true})
			srv := httptest.NewServer(f)
			defer srv.Close()
			b := body
			if tt.body != nil {
				b = tt.body
			}
			if tt.gzip {
				var z bytes.Buffer
				zw := gzip.NewWriter(&z)
				_, _ = zw.Write(b)
				_ = zw.Close()
				b = z.Bytes()
			}
			path := tt.path
			if path == "" {
				path = "/v1/metrics"
			}
			ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+path, bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/x-protobuf")
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			if tt.gzip {
				req.Header.Set("Content-Encoding", "gzip")
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			answer, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if tt.wantStatus == 200 {
				// An empty ExportMetricsServiceResponse: nothing rejected.
				if len(answer) != 0 || resp.Header.Get("Content-Type") != "application/x-protobuf" {
					t.Errorf("answer %q (%s), want an empty protobuf message", answer, resp.Header.Get("Content-Type"))
				}
			}
			var st fakeStats
			var got *received
			eventually.True(waitLimit, func() bool {
				st, got = f.snapshot()
				return st == tt.wantStats
			})
			if st != tt.wantStats {
				t.Errorf("stats %+v, want %+v", st, tt.wantStats)
			}
			if tt.wantStats.Accepted == 0 {
				if got.total != 0 {
					t.Errorf("%d points counted from a request not taken", got.total)
				}
				return
			}
			if got.total != 7 || got.other != 1 || got.wrongTyp != 0 || got.sums[counterType][0] != 6 ||
				got.sums[counterType][1] != 2 || got.sums[timerType][0] != 3 || got.sums[timerType][1] != 2 ||
				got.sums[setType][2] != 4 || got.gauges[1].value != 42 {
				t.Errorf("tally: total %d, other %d, wrong type %d, sums %v, gauges %v", got.total, got.other,
					got.wrongTyp, got.sums, got.gauges)
			}
		})
	}
}

// TestReceivedOTLP checks the tally of OTLP points: sums over periods,
// shapes checked (cumulative refused), duplicates noticed, and a collector's
// exports kept apart by source.
func TestReceivedOTLP(t *testing.T) {
	rc := newReceived("load")
	rc.addOTLP(testOTLP(), -1)
	rc.addOTLP(metricsData(
		sum("load.c.0", deltaT, numPoint(1700000001, 4)),
		&metricsv1.Metric{Name: "load.c.1", Data: &metricsv1.Metric_Sum{Sum: &metricsv1.Sum{
			AggregationTemporality: deltaT, DataPoints: []*metricsv1.NumberDataPoint{{TimeUnixNano: 1700000001e9,
				Value: &metricsv1.NumberDataPoint_AsInt{AsInt: 5}}}}}},
		sum("load.c.2", cumulT, numPoint(1700000001, 1)), // cumulative: the wrong shape
		gauge("load.c.3", numPoint(1700000001, 1)),       // a counter as a gauge
		sum("load.g.0", deltaT, numPoint(1700000001, 1)), // a gauge as a sum
		gauge("load.g.1", numPoint(1700000001, 43)),
	), -1)
	rc.addOTLP(metricsData(gauge("load.s.2", numPoint(1700000000, 4))), -1) // a resent copy
	if rc.sums[counterType][0] != 10 || rc.sums[counterType][1] != 7 || len(rc.sums[counterType]) != 2 {
		t.Errorf("counters %v, want 0: 10, 1: 7", rc.sums[counterType])
	}
	if rc.sums[setType][2] != 8 {
		t.Errorf("sets %v, want 2: 8 (the copy counted, and reported)", rc.sums[setType])
	}
	if g := rc.gauges[1]; g.value != 43 || g.time != 1700000001 {
		t.Errorf("gauge 1: %+v, want 43 at 1700000001", g)
	}
	if rc.wrongTyp != 3 || rc.dupes != 1 || rc.sameDup != 1 || rc.other != 1 || rc.total != 14 {
		t.Errorf("wrong type %d, dupes %d (%d identical), other %d, total %d; want 3, 1 (1), 1, 14",
			rc.wrongTyp, rc.dupes, rc.sameDup, rc.other, rc.total)
	}

	// The collector exports each sender's aggregate apart, at the same
	// time: two exports are two sources, not a duplicate.
	col := newReceived("load")
	one := metricsData(sum("load.c.0", deltaT, numPoint(1700000000, 6)))
	col.addOTLP(one, 0)
	col.addOTLP(one, 1)
	col.addOTLP(one, 1)
	if col.sums[counterType][0] != 18 || col.dupes != 1 {
		t.Errorf("collector: counter %v, dupes %d; want 18 and 1 (the third is a copy of the second)",
			col.sums[counterType][0], col.dupes)
	}
}

func TestParseOTLPLines(t *testing.T) {
	line, err := protojson.Marshal(testOTLP())
	if err != nil {
		t.Fatal(err)
	}
	b := string(line) + "\n\n" + string(line) + "\n" + `{"resourceMetrics":[` // a last line being written
	md, err := otelcoltest.ParseLines([]byte(b))
	if err != nil || len(md) != 2 {
		t.Fatalf("parseOTLPLines: %d, %v; want 2 lines", len(md), err)
	}
	rc := newReceived("load")
	for _, m := range md {
		rc.addOTLP(m, -1)
	}
	if rc.sums[counterType][0] != 12 || rc.dupes != 7 {
		t.Errorf("counter 0: %v, dupes %d; want 12, 7", rc.sums[counterType][0], rc.dupes)
	}
	if _, err := otelcoltest.ParseLines([]byte("{nope\n")); err == nil {
		t.Error("a broken line parsed")
	}
	if md, err := otelcoltest.ParseLines(nil); err != nil || md != nil {
		t.Errorf("nothing: %v, %v; want nothing", md, err)
	}
}

func TestCollectorConfigYAML(t *testing.T) {
	got := collectorConfig{statsd: "127.0.0.1:1", otlp: "127.0.0.1:2", out: "/x/out.jsonl", period: 2 * time.Second}.yaml()
	for _, w := range []string{`endpoint: "127.0.0.1:1"`, `endpoint: "127.0.0.1:2"`, "aggregation_interval: 2s",
		"is_monotonic_counter: true", "enable_metric_type: false", "observer_type: histogram", `path: "/x/out.jsonl"`,
		"format: json", "receivers: [otlp, statsd]", "exporters: [file]"} {
		if !strings.Contains(got, w) {
			t.Errorf("config lacks %q:\n%s", w, got)
		}
	}
}
