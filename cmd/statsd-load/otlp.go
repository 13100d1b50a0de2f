package main

import (
	"fmt"
	"slices"
	"strconv"

	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	metricsv1 "go.opentelemetry.io/proto/otlp/metrics/v1"
	"google.golang.org/protobuf/proto"

	"github.com/libratod/libratod/internal/fakelibrato"
)

// decodeOTLP decodes an OTLP/HTTP request body: a protobuf
// ExportMetricsServiceRequest, whose wire form is that of MetricsData (both
// are resource_metrics, field 1), so collector/ (which links grpc) is not
// needed.
func decodeOTLP(req *fakelibrato.Request) (*metricsv1.MetricsData, error) {
	if req.Err != nil {
		return nil, req.Err
	}
	if req.ContentType != "application/x-protobuf" {
		return nil, fmt.Errorf("content type %q: want application/x-protobuf", req.ContentType)
	}
	var md metricsv1.MetricsData
	if err := proto.Unmarshal(req.Body, &md); err != nil {
		return nil, fmt.Errorf("body is not an ExportMetricsServiceRequest: %w", err)
	}
	return &md, nil
}

// addOTLP tallies the data points of md. A point's series is its metric's
// name and its attributes with the resource's (as "resource.KEY"); its time
// is its time in unix seconds. Sums must be delta: a cumulative Sum (or
// histogram) is counted as the wrong shape, since the tool adds up what
// arrives. A source >= 0 is part of every series of md: the collector's
// StatsD receiver aggregates per client address and exports each address's
// aggregate apart, with the same time, so several senders make several
// points of one series at one time, one per export.
func (rc *received) addOTLP(md *metricsv1.MetricsData, source int) {
	for _, rm := range md.GetResourceMetrics() {
		res := rm.GetResource().GetAttributes()
		if source >= 0 {
			res = append(slices.Clip(res), &commonv1.KeyValue{Key: "#source",
				Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_IntValue{IntValue: int64(source)}}})
		}
		for _, sm := range rm.GetScopeMetrics() {
			for _, m := range sm.GetMetrics() {
				rc.addMetric(m, res)
			}
		}
	}
}

// addMetric tallies the points of one metric; res are its resource's
// attributes.
func (rc *received) addMetric(m *metricsv1.Metric, res []*commonv1.KeyValue) {
	delta := func(t metricsv1.AggregationTemporality) bool {
		return t == metricsv1.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA
	}
	number := func(p *metricsv1.NumberDataPoint, s shape) {
		v := p.GetAsDouble()
		if _, ok := p.GetValue().(*metricsv1.NumberDataPoint_AsInt); ok {
			v = float64(p.GetAsInt())
		}
		rc.point(m.GetName(), otlpTags(res, p.GetAttributes()), unixSeconds(p.GetTimeUnixNano()), v, s)
	}
	count := func(attrs []*commonv1.KeyValue, tm, n uint64, s shape) {
		rc.point(m.GetName(), otlpTags(res, attrs), unixSeconds(tm), float64(n), s)
	}
	countShape := func(t metricsv1.AggregationTemporality) shape {
		if delta(t) {
			return shapeCount
		}
		return shapeWrong
	}
	switch d := m.GetData().(type) {
	case *metricsv1.Metric_Gauge:
		for _, p := range d.Gauge.GetDataPoints() {
			number(p, shapeGauge)
		}
	case *metricsv1.Metric_Sum:
		s := shapeSum
		if !delta(d.Sum.GetAggregationTemporality()) {
			s = shapeWrong
		}
		for _, p := range d.Sum.GetDataPoints() {
			number(p, s)
		}
	case *metricsv1.Metric_ExponentialHistogram:
		s := countShape(d.ExponentialHistogram.GetAggregationTemporality())
		for _, p := range d.ExponentialHistogram.GetDataPoints() {
			count(p.GetAttributes(), p.GetTimeUnixNano(), p.GetCount(), s)
		}
	case *metricsv1.Metric_Histogram:
		s := countShape(d.Histogram.GetAggregationTemporality())
		for _, p := range d.Histogram.GetDataPoints() {
			count(p.GetAttributes(), p.GetTimeUnixNano(), p.GetCount(), s)
		}
	case *metricsv1.Metric_Summary:
		for _, p := range d.Summary.GetDataPoints() {
			count(p.GetAttributes(), p.GetTimeUnixNano(), p.GetCount(), shapeCount)
		}
	default:
		rc.total++
		rc.other++
	}
}

// unixSeconds converts unix nanoseconds to whole seconds.
func unixSeconds(ns uint64) int64 {
	return int64(ns / 1e9)
}

// otlpTags returns a series' tags: the point's attributes and the
// resource's, the latter as "resource.KEY".
func otlpTags(res, attrs []*commonv1.KeyValue) map[string]string {
	tags := make(map[string]string, len(res)+len(attrs))
	for _, kv := range res {
		tags["resource."+kv.GetKey()] = anyString(kv.GetValue())
	}
	for _, kv := range attrs {
		tags[kv.GetKey()] = anyString(kv.GetValue())
	}
	return tags
}

// anyString returns an attribute value as text.
func anyString(v *commonv1.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonv1.AnyValue_StringValue:
		return x.StringValue
	case *commonv1.AnyValue_IntValue:
		return strconv.FormatInt(x.IntValue, 10)
	case *commonv1.AnyValue_BoolValue:
		return strconv.FormatBool(x.BoolValue)
	case *commonv1.AnyValue_DoubleValue:
		return strconv.FormatFloat(x.DoubleValue, 'g', -1, 64)
	}
	return v.String()
}

// takeExport tallies what a collector exported (a line of its file
// exporter's output) as a request accepted.
func (f *fakeLibrato) takeExport(md *metricsv1.MetricsData) {
	f.mu.Lock()
	f.stats.Requests++
	f.got.addOTLP(md, f.stats.Accepted)
	f.stats.Accepted++
	f.mu.Unlock()
}
