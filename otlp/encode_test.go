package otlp

import (
	"math"
	"strings"
	"testing"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
)

// diff returns "" when want and got are equal messages, else both as text.
func diff(want, got proto.Message) string {
	if proto.Equal(want, got) {
		return ""
	}
	o := prototext.MarshalOptions{Multiline: true}
	return "want:\n" + o.Format(want) + "\ngot:\n" + o.Format(got)
}

// decodeProto decodes a request with the upstream types (MetricsData is
// wire-identical to ExportMetricsServiceRequest).
func decodeProto(t *testing.T, body []byte) *metricspb.MetricsData {
	t.Helper()
	var md metricspb.MetricsData
	if err := proto.Unmarshal(body, &md); err != nil {
		t.Fatalf("proto.Unmarshal: %v", err)
	}
	return &md
}

// decodeJSON decodes an OTLP/JSON request with the upstream types.
func decodeJSON(t *testing.T, body []byte) *metricspb.MetricsData {
	t.Helper()
	var md metricspb.MetricsData
	if err := protojson.Unmarshal(body, &md); err != nil {
		t.Fatalf("protojson.Unmarshal: %v\n%s", err, body)
	}
	return &md
}

// encodeBoth encodes b both ways, checks that both decode to the same
// message and returns it.
func encodeBoth(t *testing.T, b *Batch) (*metricspb.MetricsData, []int) {
	t.Helper()
	var e Encoder
	body, n := e.Append(nil, b)
	refused := append([]int(nil), e.Refused()...)
	js, nj := e.AppendJSON(nil, b)
	if n != nj {
		t.Fatalf("protobuf encoded %d points, JSON %d", n, nj)
	}
	if n+len(refused) != len(b.Points) {
		t.Fatalf("encoded %d + refused %d != %d points", n, len(refused), len(b.Points))
	}
	md, mj := decodeProto(t, body), decodeJSON(t, js)
	if d := diff(md, mj); d != "" {
		t.Fatalf("protobuf (want) and JSON (got) differ:\n%s", d)
	}
	return md, refused
}

func kv(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

func f64(v float64) *float64 { return &v }

// wrap puts metrics under the resource and scope every test batch has.
func wrap(metrics ...*metricspb.Metric) *metricspb.MetricsData {
	return &metricspb.MetricsData{ResourceMetrics: []*metricspb.ResourceMetrics{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{kv("host.name", "h1"), kv("service.name", "libratod")}},
		ScopeMetrics: []*metricspb.ScopeMetrics{{
			Scope:   &commonpb.InstrumentationScope{Name: "libratod", Version: "1.2.3"},
			Metrics: metrics,
		}},
	}}}
}

func testBatch() *Batch {
	return &Batch{
		Resource:     Resource{Attributes: []Attribute{{"host.name", "h1"}, {"service.name", "libratod"}}},
		ScopeVersion: "1.2.3",
	}
}

const t0, t1 = int64(1_700_000_000_000_000_000), int64(1_700_000_010_000_000_000)

func TestEncodeKinds(t *testing.T) {
	attrs := []Attribute{{"a", "1"}, {"b", "ü\"\\\n"}, {"c", ""}}
	pbAttrs := []*commonpb.KeyValue{kv("a", "1"), kv("b", "ü\"\\\n"), kv("c", "")}
	tests := []struct {
		name string
		fill func(b *Batch)
		want *metricspb.MetricsData
	}{
		{
			name: "empty",
			fill: func(*Batch) {},
			want: &metricspb.MetricsData{},
		},
		{
			name: "delta monotonic sum and cumulative non-monotonic sum",
			fill: func(b *Batch) {
				b.Points = append(b.Points,
					Point{Name: "c", Kind: KindSum, Attributes: attrs, Start: t0, Time: t1, Value: 2.5, Monotonic: true, Temporality: Delta},
					// Temporality unset: delta.
					Point{Name: "c", Kind: KindSum, Time: t1, Value: 0, Monotonic: true},
					Point{Name: "d", Kind: KindSum, Start: t0, Time: t1, Value: -3, Temporality: Cumulative},
				)
			},
			want: wrap(
				&metricspb.Metric{Name: "c", Data: &metricspb.Metric_Sum{Sum: &metricspb.Sum{
					AggregationTemporality: metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA,
					IsMonotonic:            true,
					DataPoints: []*metricspb.NumberDataPoint{
						{Attributes: pbAttrs, StartTimeUnixNano: uint64(t0), TimeUnixNano: uint64(t1), Value: &metricspb.NumberDataPoint_AsDouble{AsDouble: 2.5}},
						{TimeUnixNano: uint64(t1), Value: &metricspb.NumberDataPoint_AsDouble{AsDouble: 0}},
					},
				}}},
				&metricspb.Metric{Name: "d", Data: &metricspb.Metric_Sum{Sum: &metricspb.Sum{
					AggregationTemporality: metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE,
					DataPoints: []*metricspb.NumberDataPoint{
						{StartTimeUnixNano: uint64(t0), TimeUnixNano: uint64(t1), Value: &metricspb.NumberDataPoint_AsDouble{AsDouble: -3}},
					},
				}}},
			),
		},
		{
			name: "gauges, unsorted, same name of two kinds",
			fill: func(b *Batch) {
				b.Points = append(b.Points,
					Point{Name: "g2", Kind: KindGauge, Time: t1, Value: 1e300},
					Point{Name: "g1", Kind: KindGauge, Attributes: attrs, Time: t1, Value: -0.125},
					Point{Name: "g2", Kind: KindSum, Time: t1, Value: 4, Monotonic: false, Temporality: Cumulative},
					Point{Name: "g2", Kind: KindGauge, Attributes: attrs[:1], Time: t1, Value: 7},
				)
			},
			want: wrap(
				&metricspb.Metric{Name: "g1", Data: &metricspb.Metric_Gauge{Gauge: &metricspb.Gauge{DataPoints: []*metricspb.NumberDataPoint{
					{Attributes: pbAttrs, TimeUnixNano: uint64(t1), Value: &metricspb.NumberDataPoint_AsDouble{AsDouble: -0.125}},
				}}}},
				&metricspb.Metric{Name: "g2", Data: &metricspb.Metric_Sum{Sum: &metricspb.Sum{
					AggregationTemporality: metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE,
					DataPoints: []*metricspb.NumberDataPoint{
						{TimeUnixNano: uint64(t1), Value: &metricspb.NumberDataPoint_AsDouble{AsDouble: 4}},
					},
				}}},
				&metricspb.Metric{Name: "g2", Data: &metricspb.Metric_Gauge{Gauge: &metricspb.Gauge{DataPoints: []*metricspb.NumberDataPoint{
					{TimeUnixNano: uint64(t1), Value: &metricspb.NumberDataPoint_AsDouble{AsDouble: 1e300}},
					{Attributes: pbAttrs[:1], TimeUnixNano: uint64(t1), Value: &metricspb.NumberDataPoint_AsDouble{AsDouble: 7}},
				}}}},
			),
		},
		{
			name: "exponential histograms, both temporalities",
			fill: func(b *Batch) {
				var h HistogramBuilder
				h.Reset()
				h.Add(0, 1, 2, 3, -1)
				if err := h.Append(b, Point{Name: "h", Attributes: attrs, Start: t0, Time: t1}, 5, 5, -1, 3); err != nil {
					t.Fatal(err)
				}
				h.Reset()
				h.Add(4)
				if err := h.Append(b, Point{Name: "h", Time: t1, Temporality: Cumulative}, 1, 4, 4, 4); err != nil {
					t.Fatal(err)
				}
			},
			want: wrap(
				&metricspb.Metric{Name: "h", Data: &metricspb.Metric_ExponentialHistogram{ExponentialHistogram: &metricspb.ExponentialHistogram{
					AggregationTemporality: metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA,
					DataPoints: []*metricspb.ExponentialHistogramDataPoint{{
						Attributes: pbAttrs, StartTimeUnixNano: uint64(t0), TimeUnixNano: uint64(t1),
						Count: 5, Sum: f64(5), Scale: 6, ZeroCount: 1, Min: f64(-1), Max: f64(3),
						// 1 = 2^0 is the upper bound of bucket -1; 2 of
						// 63; 3 is in (2^(101/64), 2^(102/64)].
						Positive: &metricspb.ExponentialHistogramDataPoint_Buckets{Offset: -1, BucketCounts: append(append([]uint64{1}, make([]uint64, 63)...), append([]uint64{1}, append(make([]uint64, 37), 1)...)...)},
						Negative: &metricspb.ExponentialHistogramDataPoint_Buckets{Offset: -1, BucketCounts: []uint64{1}},
					}},
				}}},
				&metricspb.Metric{Name: "h", Data: &metricspb.Metric_ExponentialHistogram{ExponentialHistogram: &metricspb.ExponentialHistogram{
					AggregationTemporality: metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE,
					DataPoints: []*metricspb.ExponentialHistogramDataPoint{{
						TimeUnixNano: uint64(t1), Count: 1, Sum: f64(4), Scale: 6, Min: f64(4), Max: f64(4),
						Positive: &metricspb.ExponentialHistogramDataPoint_Buckets{Offset: 127, BucketCounts: []uint64{1}},
					}},
				}}},
			),
		},
		{
			name: "summaries",
			fill: func(b *Batch) {
				b.AddSummary(Point{Name: "s", Attributes: attrs, Start: t0, Time: t1}, 10, 55,
					[]Quantile{{0, 1}, {0.5, 5}, {0.99, 9.9}, {1, 10}})
				b.AddSummary(Point{Name: "s", Time: t1}, 0, 0, nil)
			},
			want: wrap(
				&metricspb.Metric{Name: "s", Data: &metricspb.Metric_Summary{Summary: &metricspb.Summary{
					DataPoints: []*metricspb.SummaryDataPoint{
						{
							Attributes: pbAttrs, StartTimeUnixNano: uint64(t0), TimeUnixNano: uint64(t1), Count: 10, Sum: 55,
							QuantileValues: []*metricspb.SummaryDataPoint_ValueAtQuantile{{Quantile: 0, Value: 1}, {Quantile: 0.5, Value: 5}, {Quantile: 0.99, Value: 9.9}, {Quantile: 1, Value: 10}},
						},
						{TimeUnixNano: uint64(t1)},
					},
				}}},
			),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := testBatch()
			tt.fill(b)
			got, refused := encodeBoth(t, b)
			if len(refused) != 0 {
				t.Errorf("refused %v", refused)
			}
			if d := diff(tt.want, got); d != "" {
				t.Errorf("decoded request:\n%s", d)
			}
		})
	}
}

func TestEncodeRefusesNonFinite(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	b := testBatch()
	var h HistogramBuilder
	h.Reset()
	h.Add(1)
	if err := h.Append(b, Point{Name: "h", Time: t1}, 1, 1, 1, 1); err != nil {
		t.Fatal(err)
	}
	good := len(b.Points)
	for _, bad := range []struct {
		field string
		set   func(*Batch)
	}{
		{"hist sum", func(b *Batch) { b.Histograms[0].Sum = nan }},
		{"hist min", func(b *Batch) { b.Histograms[0].Min = -inf }},
		{"hist max", func(b *Batch) { b.Histograms[0].Max = inf }},
	} {
		t.Run(bad.field, func(t *testing.T) {
			b2 := *b
			b2.Histograms = append([]ExponentialHistogram(nil), b.Histograms...)
			bad.set(&b2)
			_, refused := encodeBoth(t, &b2)
			if len(refused) != 1 || refused[0] != good-1 {
				t.Errorf("refused %v, want [%d]", refused, good-1)
			}
		})
	}
	b.Points = append(b.Points,
		Point{Name: "ok", Kind: KindGauge, Time: t1, Value: 1},
		Point{Name: "nan", Kind: KindGauge, Time: t1, Value: nan},
		Point{Name: "inf", Kind: KindSum, Time: t1, Value: inf},
		Point{Name: "-inf", Kind: KindSum, Time: t1, Value: -inf},
		Point{Name: "kind", Kind: 9, Time: t1},
		Point{Name: "temporality", Kind: KindSum, Temporality: 3, Time: t1},
		Point{Name: "index", Kind: KindSummary, Index: 7, Time: t1},
	)
	b.AddSummary(Point{Name: "q nan", Time: t1}, 1, 1, []Quantile{{0.5, nan}})
	b.AddSummary(Point{Name: "q range", Time: t1}, 1, 1, []Quantile{{1.5, 1}})
	b.AddSummary(Point{Name: "sum inf", Time: t1}, 1, inf, nil)
	got, refused := encodeBoth(t, b)
	want := []int{2, 3, 4, 5, 6, 7, 8, 9, 10}
	if !slicesEqual(refused, want) {
		t.Errorf("refused %v, want %v", refused, want)
	}
	var names []string
	for _, m := range got.ResourceMetrics[0].ScopeMetrics[0].Metrics {
		names = append(names, m.Name)
	}
	if strings.Join(names, ",") != "h,ok" {
		t.Errorf("metrics %v, want h,ok", names)
	}

	// Every point refused: an empty request.
	b.Points = b.Points[2:]
	var e Encoder
	body, n := e.Append([]byte("x"), b)
	if n != 0 || string(body) != "x" {
		t.Errorf("all refused: %d points, body %q", n, body)
	}
}

func slicesEqual(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestEncodeRangeAndLongMessages(t *testing.T) {
	b := testBatch()
	long := strings.Repeat("x", 300) // lengths needing 2- and 3-byte varints
	for i := range 200 {
		b.Points = append(b.Points, Point{
			Name: "m" + long[:i%3], Kind: KindGauge, Time: t1, Value: float64(i),
			Attributes: []Attribute{{"k", long}, {"i", strings.Repeat("y", i)}},
		})
	}
	var e Encoder
	for _, r := range [][2]int{{0, 200}, {10, 20}, {199, 200}, {-5, 500}, {50, 40}} {
		body, n := e.AppendRange(nil, b, r[0], r[1])
		lo, hi := min(max(r[0], 0), 200), min(max(r[1], 0), 200)
		want := max(hi-max(lo, 0), 0)
		if lo > hi {
			want = 0
		}
		if n != want {
			t.Errorf("range %v: %d points, want %d", r, n, want)
		}
		if n == 0 {
			if len(body) != 0 {
				t.Errorf("range %v: empty request is %d bytes", r, len(body))
			}
			continue
		}
		md := decodeProto(t, body)
		got := 0
		for _, m := range md.ResourceMetrics[0].ScopeMetrics[0].Metrics {
			for _, p := range m.GetGauge().DataPoints {
				i := int(p.GetAsDouble())
				if i < lo || i >= hi || !strings.HasPrefix(m.Name, "m") || len(p.Attributes[1].Value.GetStringValue()) != i {
					t.Fatalf("range %v: unexpected point %v of %s", r, p, m.Name)
				}
				got++
			}
		}
		if got != want {
			t.Errorf("range %v: decoded %d points, want %d", r, got, want)
		}
		// Minimal varints: the upstream encoder, deterministic, produces the
		// same bytes for the same message.
		re, err := proto.MarshalOptions{Deterministic: true}.Marshal(md)
		if err != nil {
			t.Fatal(err)
		}
		if len(re) != len(body) {
			t.Errorf("range %v: %d bytes, upstream re-encodes %d", r, len(body), len(re))
		}
	}
}

func TestEncodeInvalidUTF8(t *testing.T) {
	b := testBatch()
	b.Points = append(b.Points, Point{Name: "bad\xffname", Kind: KindGauge, Time: t1, Attributes: []Attribute{{"k\xc3", "v\x80"}}})
	got, _ := encodeBoth(t, b)
	m := got.ResourceMetrics[0].ScopeMetrics[0].Metrics[0]
	if m.Name != "bad\ufffdname" {
		t.Errorf("name %q", m.Name)
	}
	a := m.GetGauge().DataPoints[0].Attributes[0]
	if a.Key != "k\ufffd" || a.Value.GetStringValue() != "v\ufffd" {
		t.Errorf("attribute %q=%q", a.Key, a.Value.GetStringValue())
	}
}

func TestEncodeReusedBufferAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under -race; scripts/test runs this without it")
	}
	b := benchBatch(2000)
	var e Encoder
	buf, _ := e.Append(nil, b)
	js, _ := e.AppendJSON(nil, b)
	allocs := testing.AllocsPerRun(20, func() {
		buf, _ = e.Append(buf[:0], b)
		js, _ = e.AppendJSON(js[:0], b)
	})
	if allocs != 0 {
		t.Errorf("re-encoding allocates %v times", allocs)
	}
	// Unsorted points take the sorting path, which must not allocate either.
	b.Points[0], b.Points[len(b.Points)-1] = b.Points[len(b.Points)-1], b.Points[0]
	buf, _ = e.Append(buf[:0], b)
	allocs = testing.AllocsPerRun(20, func() { buf, _ = e.Append(buf[:0], b) })
	if allocs != 0 {
		t.Errorf("re-encoding unsorted points allocates %v times", allocs)
	}
}
