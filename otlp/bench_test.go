package otlp

import (
	"context"
	"io"
	"strconv"
	"testing"

	"github.com/libratod/libratod/librato"
)

// benchBatch returns one period of n series, sorted by name: a quarter each
// delta monotonic sums, gauges, exponential histograms of 20 values and
// summaries of 4 quantiles, 3 attributes each, 10 series per metric name.
func benchBatch(n int) *Batch {
	b := testBatch()
	var h HistogramBuilder
	vals := make([]float64, 20)
	for i := range n {
		attrs := []Attribute{
			{"host", "web-" + strconv.Itoa(i%10)},
			{"region", "eu-west-1"},
			{"endpoint", "/api/v1/items/" + strconv.Itoa(i/10%100)},
		}
		p := Point{Name: "app.metric." + strconv.Itoa(i/10), Attributes: attrs, Start: t0, Time: t1}
		switch (i / 10) % 4 {
		case 0:
			p.Kind, p.Value, p.Monotonic = KindSum, float64(i), true
			b.Points = append(b.Points, p)
		case 1:
			p.Kind, p.Value = KindGauge, float64(i)/3
			b.Points = append(b.Points, p)
		case 2:
			h.Reset()
			for j := range vals {
				vals[j] = float64(i%97+j*j) * 1.7
			}
			h.Add(vals...)
			if err := h.Append(b, p, 20, 100, h.Min(), h.Max()); err != nil {
				panic(err)
			}
		case 3:
			b.AddSummary(p, 20, float64(i), []Quantile{{0.5, 1}, {0.9, 2}, {0.99, 3}, {1, 4}})
		}
	}
	return b
}

// libratoBatch returns the Librato measurements of the same series: a plain
// measurement per sum and gauge, a summary per histogram and summary.
func libratoBatch(b *Batch) *librato.Batch {
	lb := &librato.Batch{Time: t1 / 1e9, Period: 10}
	for _, p := range b.Points {
		tags := make([]librato.Tag, len(p.Attributes))
		for i, a := range p.Attributes {
			tags[i] = librato.Tag{Name: a.Key, Value: a.Value}
		}
		m := librato.Measurement{Name: p.Name, Tags: tags, Value: p.Value}
		if p.Kind == KindExponentialHistogram || p.Kind == KindSummary {
			m.Count, m.Sum, m.Min, m.Max, m.SumSquares = 20, 100, 1, 9, 900
		}
		lb.Measurements = append(lb.Measurements, m)
	}
	return lb
}

// BenchmarkEncode compares, in one run, encoding one period of 100k series
// as OTLP (protobuf and JSON) with Librato's JSON encoding of the
// equivalent measurements (through a dry-run client writing to io.Discard:
// the encoder is not exported, and the dry run adds one copy of the body).
func BenchmarkEncode(b *testing.B) {
	const series = 100_000
	batch := benchBatch(series)
	b.Run("otlp_protobuf", func(b *testing.B) {
		var e Encoder
		buf, _ := e.Append(nil, batch)
		b.ReportAllocs()
		b.SetBytes(int64(len(buf)))
		for b.Loop() {
			buf, _ = e.Append(buf[:0], batch)
		}
	})
	b.Run("otlp_json", func(b *testing.B) {
		var e Encoder
		buf, _ := e.AppendJSON(nil, batch)
		b.ReportAllocs()
		b.SetBytes(int64(len(buf)))
		for b.Loop() {
			buf, _ = e.AppendJSON(buf[:0], batch)
		}
	})
	b.Run("librato_json", func(b *testing.B) {
		lb := libratoBatch(batch)
		c, err := librato.New(librato.Config{API: librato.Tagged, URL: "https://127.0.0.1", DryRun: io.Discard})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Send(context.Background(), lb); err != nil {
				b.Fatal(err)
			}
		}
	})
}
