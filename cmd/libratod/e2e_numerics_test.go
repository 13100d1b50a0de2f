package main

import (
	"fmt"
	"sort"
	"strings"
	"testing"
)

// TestEndToEndExactEdges sends lines that Librato would receive as one
// point (names and tag values that sanitize alike), sampled and large
// timers, and a rate below the floor: one point each with the summed
// value, consistent summaries, and the bad rate counted.
func TestEndToEndExactEdges(t *testing.T) {
	fake := newFakeLibrato(t)
	cfg := testConfig(fake.URL, "tagged")
	cfg.Aggregate.Percentiles = nil
	d, stop := startDaemon(t, cfg)
	sendUDP(t, d.lst.UDPAddr(), "a b:1|c\na_b:2|c\nx:1|c|#env:prod!\nx:2|c|#env:prod_\n"+
		"t:100|ms|@0.3\nbig:1000000000|ms\nbig:1000000001|ms\nr:1|c|@1e-120\n")
	waitSeen(t, d, 8)
	stop()

	var points []string
	for _, r := range fake.requests() {
		for _, m := range r.Body["measurements"].([]any) {
			m := m.(map[string]any)
			p := fmt.Sprint(m["name"])
			if tags, ok := m["tags"].(map[string]any); ok {
				p += fmt.Sprintf(" env=%v", tags["env"])
			}
			for _, k := range []string{"value", "count", "sum", "min", "max", "stddev"} {
				if v, ok := m[k]; ok {
					p += fmt.Sprintf(" %s=%v", k, v)
				}
			}
			points = append(points, p)
		}
	}
	sort.Strings(points)
	want := []string{
		"a_b value=3",
		"big count=2 sum=2.000000001e+09 min=1e+09 max=1.000000001e+09 stddev=0.5",
		"t count=3 sum=300 min=100 max=100 stddev=0",
		"x env=prod_ value=3",
	}
	if strings.Join(points, "\n") != strings.Join(want, "\n") {
		t.Errorf("points:\n%s\nwant:\n%s", strings.Join(points, "\n"), strings.Join(want, "\n"))
	}
	if n := counterValue(t, d, "libratod_lines_invalid_total", "rate_too_low"); n != 1 {
		t.Errorf("lines_invalid_total{reason=rate_too_low} = %v, want 1", n)
	}
}
