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
	if p := got["x "].sum; p == nil || p.GetAsDouble() != 1 || p.StartTimeUnixNano != uint64(p2) {
		t.Errorf("series past the bound: %+v", got["x "])
	}
	if n, resets := cum.counts(); n != 2 || resets != 1 {
		t.Errorf("cumulative state: %d series, %d resets; want 2 and 1", n, resets)
	}
	if _, resets := cum.counts(); resets != 0 {
		t.Errorf("counts cleared the resets: %d left", resets)
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

// sketchTimerLines returns 100 lines of timer t at rate (every value a
// multiple of 1/64, so that sums are exact in any order): positive values
// over six decades, powers of two (bucket bounds), negative ones and
// zeros.
func sketchTimerLines(rate string) ([]string, []float64) {
	var lines []string
	var vals []float64
	for i := range 100 {
		var v float64
		switch {
		case i%17 == 0:
			v = 0
		case i%7 == 0:
			v = math.Ldexp(1, i%13-4)
		default:
			v = math.Floor(math.Exp(float64(i)*0.16)) / 64
		}
		if i%5 == 1 {
			v = -v
		}
		vals = append(vals, v)
		lines = append(lines, "t:"+strconv.FormatFloat(v, 'g', -1, 64)+"|ms"+rate)
	}
	return lines, vals
}

// checkSketchHistogram checks a timer's histogram against the values it
// stands for, each of weight w: count, sum, min and max exact, every value
// counted (times w) in the bucket of scale 6 that holds it, nothing else
// counted, the buckets adding up to the count.
func checkSketchHistogram(t *testing.T, h *metricsv1.ExponentialHistogramDataPoint, vals []float64, w float64) {
	t.Helper()
	if h == nil {
		t.Fatal("no histogram")
	}
	var sum float64
	lo, hi := math.Inf(1), math.Inf(-1)
	want := map[[2]int32]uint64{} // {negative, index}: count
	var zero uint64
	for _, v := range vals {
		sum += v * w
		lo, hi = min(lo, v), max(hi, v)
		switch {
		case v == 0:
			zero += uint64(w)
		case v < 0:
			want[[2]int32{1, otlp.BucketIndex(v)}] += uint64(w)
		default:
			want[[2]int32{0, otlp.BucketIndex(v)}] += uint64(w)
		}
	}
	n := uint64(float64(len(vals)) * w)
	if h.Count != n || h.GetSum() != sum || h.GetMin() != lo || h.GetMax() != hi {
		t.Fatalf("count, sum, min, max = %d, %v, %v, %v; want %d, %v, %v, %v",
			h.Count, h.GetSum(), h.GetMin(), h.GetMax(), n, sum, lo, hi)
	}
	if h.Scale != otlp.HistogramScale {
		t.Fatalf("scale %d, want %d", h.Scale, otlp.HistogramScale)
	}
	// A bucket of scale 6 is (b^i, b^(i+1)], b = 2^(1/64): its midpoint
	// is within (b-1)/(b+1) = 0.54% of every value in it.
	base := math.Exp2(math.Exp2(-float64(h.Scale)))
	if rel := (base - 1) / (base + 1); rel > 0.01 {
		t.Fatalf("buckets %v wide", rel)
	}
	got := map[[2]int32]uint64{}
	total := h.ZeroCount
	for s, b := range []*metricsv1.ExponentialHistogramDataPoint_Buckets{h.Positive, h.Negative} {
		for j, c := range b.GetBucketCounts() {
			if c > 0 {
				got[[2]int32{int32(s), b.GetOffset() + int32(j)}] = c
			}
			total += c
		}
	}
	if total != h.Count {
		t.Errorf("buckets add up to %d, count %d", total, h.Count)
	}
	if h.ZeroCount != zero {
		t.Errorf("zero count %d, want %d", h.ZeroCount, zero)
	}
	for k, c := range want {
		if got[k] != c {
			t.Errorf("bucket %v (sign, index) = %d, want %d", k, got[k], c)
		}
	}
	for k, c := range got {
		if want[k] == 0 {
			t.Errorf("bucket %v (sign, index) = %d, holding no value", k, c)
		}
	}
}

// TestOTLPHistogramPastSampleBound checks a timer with more values than
// MaxTimerSamples: its histogram comes from the aggregator's sketch, with
// the same buckets as from the values, delta and cumulative.
func TestOTLPHistogramPastSampleBound(t *testing.T) {
	if aggregator.SketchScale != otlp.HistogramScale {
		t.Fatalf("the sketch's buckets are at scale %d, OTLP's at %d", aggregator.SketchScale, otlp.HistogramScale)
	}
	for _, c := range []struct {
		rate string
		w    float64
	}{{"", 1}, {"|@0.25", 4}} {
		t.Run("delta"+c.rate, func(t *testing.T) {
			lines, vals := sketchTimerLines(c.rate)
			snap := fixture.Snapshot(t, aggregator.Config{MaxTimerSamples: 10}, lines...)
			m := &OTLPMapping{Temporality: otlp.Delta, BatchSize: 100}
			bs, res := buildSnapshot(m, Config{}, nil, 0, 10e9, snap)
			if res.Measurements != 1 || res.Dropped != 0 {
				t.Fatalf("result %+v, want the timer's point", res)
			}
			checkSketchHistogram(t, decodeBatches(t, bs)["t "].hist, vals, c.w)
		})
		t.Run("cumulative"+c.rate, func(t *testing.T) {
			lines, vals := sketchTimerLines(c.rate)
			m := &OTLPMapping{Temporality: otlp.Cumulative, BatchSize: 100}
			cum := newCumulative(10)
			// The first period's 30 values are kept, the second's 100
			// are in a sketch: the running histogram holds both.
			snap := fixture.Snapshot(t, aggregator.Config{MaxTimerSamples: 1000}, lines[:30]...)
			if _, res := buildSnapshot(m, Config{}, cum, 0, 10e9, snap); res.Dropped != 0 {
				t.Fatalf("period 1: %+v", res)
			}
			snap = fixture.Snapshot(t, aggregator.Config{MaxTimerSamples: 10}, lines...)
			bs, res := buildSnapshot(m, Config{}, cum, 10e9, 20e9, snap)
			if res.Measurements != 1 || res.Dropped != 0 {
				t.Fatalf("period 2: result %+v, want the timer's point", res)
			}
			checkSketchHistogram(t, decodeBatches(t, bs)["t "].hist, append(vals[:30:30], vals...), c.w)
		})
	}
}
