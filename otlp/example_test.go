package otlp_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/libratod/libratod/otlp"
)

// A period's points are encoded into a reused buffer; AppendJSON shows the
// same request as OTLP/JSON, as -dry-run prints it.
func ExampleEncoder() {
	b := &otlp.Batch{
		Resource:     otlp.Resource{Attributes: []otlp.Attribute{{Key: "host.name", Value: "web-1"}}},
		ScopeVersion: "1.0.0",
	}
	const start, end = 1_700_000_000_000_000_000, 1_700_000_010_000_000_000
	b.Points = append(b.Points,
		otlp.Point{Name: "requests", Kind: otlp.KindSum, Monotonic: true, Temporality: otlp.Delta,
			Start: start, Time: end, Value: 42, Attributes: []otlp.Attribute{{Key: "code", Value: "200"}}},
		otlp.Point{Name: "queue", Kind: otlp.KindGauge, Time: end, Value: 7},
	)
	var e otlp.Encoder
	var buf []byte
	buf, n := e.Append(buf[:0], b)
	fmt.Println(n, "points,", len(buf), "bytes of protobuf")
	js, _ := e.AppendJSON(nil, b)
	fmt.Println(string(js))
	// Output:
	// 2 points, 141 bytes of protobuf
	// {"resourceMetrics":[{"resource":{"attributes":[{"key":"host.name","value":{"stringValue":"web-1"}}]},"scopeMetrics":[{"scope":{"name":"libratod","version":"1.0.0"},"metrics":[{"name":"queue","gauge":{"dataPoints":[{"timeUnixNano":"1700000010000000000","asDouble":7}]}},{"name":"requests","sum":{"dataPoints":[{"attributes":[{"key":"code","value":{"stringValue":"200"}}],"startTimeUnixNano":"1700000000000000000","timeUnixNano":"1700000010000000000","asDouble":42}],"aggregationTemporality":1,"isMonotonic":true}}]}]}]}
}

// A StatsD timer sampled at 10% kept 4 values that stand for 40: the
// histogram's buckets are scaled to add up to 40.
func ExampleHistogramBuilder() {
	var b otlp.Batch
	var h otlp.HistogramBuilder
	h.Reset()
	h.Add(0, 1.5, 1.5, 200)
	weightedSum := 10 * (0 + 1.5 + 1.5 + 200)
	if err := h.Append(&b, otlp.Point{Name: "latency", Time: 1}, 40, weightedSum, h.Min(), h.Max()); err != nil {
		fmt.Println(err)
		return
	}
	hist := b.Histograms[0]
	fmt.Println("count", hist.Count, "zero", hist.ZeroCount, "scale", hist.Scale)
	for _, bk := range []otlp.Buckets{hist.Positive} {
		for i, c := range b.Counts[bk.Counts.Off : bk.Counts.Off+bk.Counts.Len] {
			if c != 0 {
				fmt.Printf("bucket %d: %d\n", bk.Offset+int32(i), c)
			}
		}
	}
	// Output:
	// count 40 zero 10 scale 6
	// bucket 37: 20
	// bucket 489: 10
}

// Send posts an encoded request; the error says whether to try again.
func ExampleClient_Send() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "30")
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()

	c, err := otlp.New(otlp.Config{Endpoint: srv.URL, Token: "secret"})
	if err != nil {
		fmt.Println(err)
		return
	}
	b := &otlp.Batch{Points: []otlp.Point{{Name: "up", Kind: otlp.KindGauge, Time: 1, Value: 1}}}
	var e otlp.Encoder
	body, _ := e.Append(nil, b)
	_, err = c.Send(context.Background(), body)
	if oe, ok := err.(*otlp.Error); ok {
		fmt.Println(oe, "| retry:", oe.Retryable, "after", oe.RetryAfter)
	}
	// Output:
	// otlp: POST /v1/metrics: HTTP 503: Service Unavailable | retry: true after 30s
}

// Check tells whether the receiver is reachable and takes the credentials.
func ExampleClient_Check() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer right" {
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer srv.Close()
	for _, token := range []string{"right", "wrong"} {
		c, err := otlp.New(otlp.Config{Endpoint: srv.URL, Token: token})
		if err != nil {
			fmt.Println(err)
			return
		}
		res, err := c.Check(context.Background())
		fmt.Println(res.Reached, res.Authorized, err)
	}
	// Output:
	// true true <nil>
	// true false otlp: check: POST /v1/metrics: HTTP 401: the credentials were rejected
}
