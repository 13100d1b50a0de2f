package flusher

import (
	"math"
	"sort"
	"strconv"
	"strings"
	"testing"

	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	metricsv1 "go.opentelemetry.io/proto/otlp/metrics/v1"
	"google.golang.org/protobuf/proto"

	"github.com/libratod/libratod/aggregator"
	"github.com/libratod/libratod/internal/fixture"
	"github.com/libratod/libratod/otlp"
)

// buildOTLP runs one period of lines through an otlpBuilder and returns
// its batches and result.
func buildOTLP(t *testing.T, m *OTLPMapping, cfg Config, cum *cumulative, start, end int64, lines ...string) ([]*otlp.Batch, Result) {
	t.Helper()
	snap := fixture.Snapshot(t, aggregator.Config{}, lines...)
	return buildSnapshot(m, cfg, cum, start, end, snap)
}

func buildSnapshot(m *OTLPMapping, cfg Config, cum *cumulative, start, end int64, snap *aggregator.Snapshot) ([]*otlp.Batch, Result) {
	var out []*otlp.Batch
	if cum != nil {
		cum.beginPeriod()
	}
	ob := newOTLPBuilder(m, &settings{cfg: cfg}, start, end, cum, func(b *otlp.Batch) { out = append(out, b) })
	snap.Each(ob.series)
	return out, ob.done()
}

// decoded encodes the batches with the otlp encoder and decodes them with
// the upstream types, keyed by metric name and then the point's
// attributes ("k=v,k2=v2").
type decodedPoint struct {
	metric *metricsv1.Metric
	sum    *metricsv1.NumberDataPoint
	hist   *metricsv1.ExponentialHistogramDataPoint
	sumry  *metricsv1.SummaryDataPoint
	gauge  *metricsv1.NumberDataPoint
}

func decodeBatches(t *testing.T, bs []*otlp.Batch) map[string]decodedPoint {
	t.Helper()
	out := map[string]decodedPoint{}
	var enc otlp.Encoder
	for _, b := range bs {
		body, _ := enc.Append(nil, b)
		var md metricsv1.MetricsData
		if err := proto.Unmarshal(body, &md); err != nil {
			t.Fatalf("upstream decoder refused the request: %v", err)
		}
		for _, rm := range md.ResourceMetrics {
			for _, sm := range rm.ScopeMetrics {
				for _, m := range sm.Metrics {
					key := attrKey
					switch d := m.Data.(type) {
					case *metricsv1.Metric_Sum:
						for _, p := range d.Sum.DataPoints {
							out[m.Name+" "+key(p.Attributes)] = decodedPoint{metric: m, sum: p}
						}
					case *metricsv1.Metric_Gauge:
						for _, p := range d.Gauge.DataPoints {
							out[m.Name+" "+key(p.Attributes)] = decodedPoint{metric: m, gauge: p}
						}
					case *metricsv1.Metric_ExponentialHistogram:
						for _, p := range d.ExponentialHistogram.DataPoints {
							out[m.Name+" "+key(p.Attributes)] = decodedPoint{metric: m, hist: p}
						}
					case *metricsv1.Metric_Summary:
						for _, p := range d.Summary.DataPoints {
							out[m.Name+" "+key(p.Attributes)] = decodedPoint{metric: m, sumry: p}
						}
					default:
						t.Fatalf("metric %s: unexpected data %T", m.Name, m.Data)
					}
				}
			}
		}
	}
	return out
}

func TestOTLPDeltaMapping(t *testing.T) {
	m := &OTLPMapping{Temporality: otlp.Delta, BatchSize: 100, Attributes: []otlp.Attribute{{Key: "region", Value: "eu"}}}
	cfg := Config{Percentiles: []float64{90}}
	start, end := int64(1e18), int64(1e18)+10e9
	bs, res := buildOTLP(t, m, cfg, nil, start, end,
		"c:3|c", "c:2|c|@0.5", "d:-2|c", "d:1|c", "g:5|g", "s:a|s", "s:b|s", "s:a|s",
		"t:100|ms|@0.5", "t:200|ms", "tagged:1|c|#env:prod,bare", "z:0|ms", "neg:-5|ms")
	if res.Series != 8 || res.Measurements != 8 || res.Dropped != 0 {
		t.Fatalf("result %+v, want 8 series and points", res)
	}
	got := decodeBatches(t, bs)
	if p := got["c region=eu"].sum; p == nil || p.GetAsDouble() != 7 || !got["c region=eu"].metric.GetSum().IsMonotonic ||
		got["c region=eu"].metric.GetSum().AggregationTemporality != metricsv1.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA ||
		p.StartTimeUnixNano != uint64(start) || p.TimeUnixNano != uint64(end) {
		t.Errorf("counter c: %+v", got["c region=eu"])
	}
	if p := got["d region=eu"]; p.sum == nil || p.sum.GetAsDouble() != -1 || p.metric.GetSum().IsMonotonic {
		t.Errorf("decremented counter d: want -1, not monotonic: %+v", p)
	}
	if p := got["g region=eu"].gauge; p == nil || p.GetAsDouble() != 5 {
		t.Errorf("gauge: %+v", got["g region=eu"])
	}
	if p := got["s region=eu"].gauge; p == nil || p.GetAsDouble() != 2 {
		t.Errorf("set: %+v", got["s region=eu"])
	}
	h := got["t region=eu"].hist
	if h == nil || h.Count != 3 || h.GetSum() != 400 || h.GetMin() != 100 || h.GetMax() != 200 {
		t.Fatalf("timer: %+v", got["t region=eu"])
	}
	var n uint64 = h.ZeroCount
	for _, c := range h.Positive.BucketCounts {
		n += c
	}
	if n != h.Count {
		t.Errorf("timer buckets add up to %d, count %d", n, h.Count)
	}
	if p := got["tagged bare=true,env=prod,region=eu"].sum; p == nil || p.GetAsDouble() != 1 {
		t.Errorf("tags as attributes: %v", keys(got))
	}
	if h := got["z region=eu"].hist; h == nil || h.ZeroCount != 1 || h.Count != 1 {
		t.Errorf("zero timer: %+v", got["z region=eu"])
	}
	if h := got["neg region=eu"].hist; h == nil || h.Count != 1 || len(h.Negative.BucketCounts) == 0 || h.GetMin() != -5 {
		t.Errorf("negative timer: %+v", got["neg region=eu"])
	}
}

func TestOTLPSummary(t *testing.T) {
	m := &OTLPMapping{Temporality: otlp.Delta, BatchSize: 100, TimersAsSummary: true}
	cfg := Config{Percentiles: []float64{50, 90}}
	var lines []string
	for i := 1; i <= 10; i++ {
		lines = append(lines, "t:"+itoa(i*10)+"|ms")
	}
	bs, _ := buildOTLP(t, m, cfg, nil, 0, 10e9, lines...)
	p := decodeBatches(t, bs)["t "].sumry
	if p == nil || p.Count != 10 || p.Sum != 550 {
		t.Fatalf("summary: %+v", p)
	}
	want := [][2]float64{{0, 10}, {0.5, 50}, {0.9, 90}, {1, 100}}
	if len(p.QuantileValues) != len(want) {
		t.Fatalf("quantiles %v, want %v", p.QuantileValues, want)
	}
	for i, q := range p.QuantileValues {
		if q.Quantile != want[i][0] || q.Value != want[i][1] {
			t.Errorf("quantile %d: %v=%v, want %v", i, q.Quantile, q.Value, want[i])
		}
	}
}

func TestOTLPCumulative(t *testing.T) {
	m := &OTLPMapping{Temporality: otlp.Cumulative, BatchSize: 100}
	cum := newCumulative(2)
	p1, p2, p3 := int64(100e9), int64(110e9), int64(120e9)
	bs, _ := buildOTLP(t, m, Config{}, cum, p1, p2, "c:3|c", "t:10|ms", "t:20|ms")
	got := decodeBatches(t, bs)
	if p := got["c "].sum; p == nil || p.GetAsDouble() != 3 || p.StartTimeUnixNano != uint64(p1) ||
		got["c "].metric.GetSum().AggregationTemporality != metricsv1.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE ||
		!got["c "].metric.GetSum().IsMonotonic {
		t.Fatalf("period 1 counter: %+v", got["c "])
	}
	bs, _ = buildOTLP(t, m, Config{}, cum, p2, p3, "c:4|c", "t:30|ms", "x:1|c")
	got = decodeBatches(t, bs)
	if p := got["c "].sum; p == nil || p.GetAsDouble() != 7 || p.StartTimeUnixNano != uint64(p1) || p.TimeUnixNano != uint64(p3) {
		t.Errorf("period 2 counter: want 7 since p1: %+v", got["c "])
	}
	h := got["t "].hist
	if h == nil || h.Count != 3 || h.GetSum() != 60 || h.GetMin() != 10 || h.GetMax() != 30 || h.StartTimeUnixNano != uint64(p1) {
		t.Errorf("period 2 timer: %+v", h)
	}
	// The bound (2 series) is reached: x is sent as a reset, its own
	// period its start, every period.
	if p := got["x "].sum; p == nil || p.GetAsDouble() != 1 || p.StartTimeUnixNano != uint64(p2) || cum.overflow != 1 {
		t.Errorf("series past the bound: %+v, overflow %d", got["x "], cum.overflow)
	}
	bs, _ = buildOTLP(t, m, Config{}, cum, p3, p3+10e9, "c:-1|c")
	got = decodeBatches(t, bs)
	if p := got["c "]; p.sum == nil || p.sum.GetAsDouble() != 6 || p.metric.GetSum().IsMonotonic {
		t.Errorf("a decrement makes the running total non-monotonic: %+v", p)
	}
}

func TestOTLPBatchesAndRefused(t *testing.T) {
	m := &OTLPMapping{Temporality: otlp.Delta, BatchSize: 2}
	bs, res := buildOTLP(t, m, Config{}, nil, 0, 1e9, "a:1|c", "b:1|c", "c:1|c", "d:1|c", "e:1|c")
	if len(bs) != 3 || len(bs[0].Points) != 2 || len(bs[2].Points) != 1 || res.Measurements != 5 {
		t.Errorf("5 points at 2 a batch: %d batches, result %+v", len(bs), res)
	}
	// The aggregator refuses what would overflow, so a non-finite value
	// cannot come from a snapshot: the builder's own check is tested.
	var out []*otlp.Batch
	ob := newOTLPBuilder(m, &settings{}, 0, 1e9, nil, func(b *otlp.Batch) { out = append(out, b) })
	if ob.counter(&aggregator.Series{Value: math.Inf(1)}, otlp.Point{Name: "inf"}) ||
		ob.counter(&aggregator.Series{Value: math.NaN()}, otlp.Point{Name: "nan"}) {
		t.Error("a non-finite counter was taken")
	}
	if !ob.counter(&aggregator.Series{Value: 1}, otlp.Point{Name: "ok"}) {
		t.Error("a finite counter was refused")
	}
	if res := ob.done(); res.Measurements != 1 || len(out) != 1 || len(out[0].Points) != 1 {
		t.Errorf("one point built: %+v, %d batches", res, len(out))
	}
}

func TestOTLPName(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"api.requests", "api.requests"},
		{"a/b-c_d", "a/b-c_d"},
		{"1xx", "m_1xx"},
		{"a:b c", "a_b_c"},
		{"", "m_"},
		{"é", "m___"},
	} {
		if got := otlpName([]byte(c.in)); got != c.want {
			t.Errorf("otlpName(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	long := make([]byte, 300)
	for i := range long {
		long[i] = 'a'
	}
	if got := otlpName(long); len(got) != 255 {
		t.Errorf("a 300-byte name comes out %d bytes", len(got))
	}
	ob := &otlpBuilder{prefix: "app"}
	if got := ob.pointName("x"); got != "app.x" {
		t.Errorf("prefix: %q", got)
	}
}

func keys(m map[string]decodedPoint) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func itoa(i int) string { return strconv.Itoa(i) }

// attrKey returns "k=v,k2=v2" of attributes sorted by key.
func attrKey(attrs []*commonv1.KeyValue) string {
	var kv []string
	for _, a := range attrs {
		kv = append(kv, a.Key+"="+a.Value.GetStringValue())
	}
	sort.Strings(kv)
	return strings.Join(kv, ",")
}
