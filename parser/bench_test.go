package parser

import (
	"strings"
	"testing"
)

func BenchmarkParse(b *testing.B) {
	benchmarks := map[string]string{
		"counter":          "hits:1|c",
		"gauge":            "cpu.load:+0.75|g",
		"timer_rate_tags":  "api.request.latency:12.500000|ms|@0.5|#env:prod,region:eu-west-1,service:api",
		"packed":           "api.request.latency:12.5:3:250:17.25|ms|#env:prod",
		"set":              "users.unique:user-123456|s|#env:prod",
		"datadog_extended": "a.b.c:1|c|#env:prod,env:test|c:0123abc|e:it-false,cn-web,pu-1|T1795266106|card:low",
		"etsy_multi":       "a#host=web1:1|c:2|ms|@0.1",
		"long_value":       "a:0.1234567890123456789012345678901234567890|g",
		"influxdb_tags":    "rcn.requests,app=rcnode,env=test,service=web,code=200:3|c",
		"graphite_tags":    "rcn.latency;app=rcnode;env=test:12.5|ms|@0.5",
		"load_tool":        "load.r5f3a9c0e.c.42:1|c|#tag0:value-42,tag1:value-42",
	}
	for name, line := range benchmarks {
		b.Run(name, func(b *testing.B) {
			l := []byte(line)
			out := make([]Metric, 0, 8)
			b.SetBytes(int64(len(l)))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if out, err = Parse(l, out[:0]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPacket splits and parses a full 1432-byte datagram, as the
// listener does. ns/op is per packet; ns/line is reported too.
func BenchmarkPacket(b *testing.B) {
	var sb strings.Builder
	lines := 0
	for i := 0; sb.Len() < 1400; i++ {
		switch i % 4 {
		case 0:
			sb.WriteString("api.hits:1|c|#env:prod,service:api\n")
		case 1:
			sb.WriteString("api.latency:12.500000|ms|@0.5|#env:prod\n")
		case 2:
			sb.WriteString("cpu.load:0.75|g\n")
		case 3:
			sb.WriteString("users.unique:user-123|s\n")
		}
		lines++
	}
	p := []byte(sb.String())
	out := make([]Metric, 0, lines)
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		out = out[:0]
		for q := p; len(q) > 0; {
			var line []byte
			line, q = NextLine(q)
			out, _ = Parse(line, out)
		}
		if len(out) != lines {
			b.Fatalf("parsed %d metrics, want %d", len(out), lines)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*lines), "ns/line")
}
