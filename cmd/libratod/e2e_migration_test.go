package main

import (
	"encoding/json"
	"sort"
	"strings"
	"testing"
)

// TestMigrationOptions runs the reference backend's options end to end on
// the legacy API: source_regex, include, exclude, counters_as = "counter",
// the 100th percentile, and min_level.
func TestMigrationOptions(t *testing.T) {
	fake := newFakeLibrato(t)
	cfg := testConfig(fake.URL, "legacy")
	cfg.Librato.SourceRegex = `^([^.]+)\.`
	cfg.Librato.Include = []string{`^web`}
	cfg.Librato.Exclude = []string{`debug`}
	cfg.Librato.CountersAs = "counter"
	cfg.Aggregate.Percentiles = []float64{50, 100}
	cfg.Aggregate.MinLevel = "warning"
	d, stop := startDaemon(t, cfg)
	lines := []string{
		"web-1.hits:1|c", "web-1.hits:2|c|#level:error,env:prod", "web-2.lat:10|ms", "web-2.lat:20|ms",
		"web-1.debug.x:1|c", "db.q:1|c", "web-1.noise:1|c|#level:debug",
	}
	sendUDP(t, d.lst.UDPAddr(), strings.Join(lines, "\n"))
	waitSeen(t, d, float64(len(lines)))
	stop()

	reqs := fake.requests()
	if len(reqs) != 1 || reqs[0].Path != "/v1/metrics" {
		t.Fatalf("requests: %+v", reqs)
	}
	var got []string
	for _, list := range []string{"gauges", "counters"} {
		ms, _ := reqs[0].Body[list].([]any)
		for _, m := range ms {
			b, _ := json.Marshal(m)
			got = append(got, list+" "+string(b))
		}
	}
	sort.Strings(got)
	want := []string{
		`counters {"name":"hits","source":"web-1","value":3}`,
		`gauges {"count":1,"max":10,"min":10,"name":"lat.50","source":"web-2","sum":10,"sum_squares":100}`,
		`gauges {"count":2,"max":20,"min":10,"name":"lat","source":"web-2","sum":30,"sum_squares":500}`,
		`gauges {"count":2,"max":20,"min":10,"name":"lat.100","source":"web-2","sum":30,"sum_squares":500}`,
	}
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("payload:\n%q\nwant:\n%q", got, want)
	}
	if n := counterValue(t, d, "libratod_measurements_dropped_total", "excluded"); n != 2 {
		t.Errorf("excluded = %v, want 2 (db.q not included, web-1.debug.x excluded)", n)
	}
	if n := counterValue(t, d, "libratod_tags_dropped_total", "legacy_api"); n != 2 {
		t.Errorf("tags dropped on the legacy API = %v, want 2 (level and env)", n)
	}
	if n := counterValue(t, d, "libratod_measurements_dropped_total", "below_min_level"); n != 1 {
		t.Errorf("below_min_level = %v, want 1", n)
	}
}

// TestSelfMetricsToLibrato checks [metrics] to_librato: libratod's own
// counters arrive as libratod.* measurements, with the global tags.
func TestSelfMetricsToLibrato(t *testing.T) {
	fake := newFakeLibrato(t)
	cfg := testConfig(fake.URL, "tagged")
	cfg.Metrics.ToLibrato = true
	d, stop := startDaemon(t, cfg)
	sendUDP(t, d.lst.UDPAddr(), "a:1|c\nb:2|c\nbad\n")
	waitSeen(t, d, 3)
	stop()
	var found map[string]any
	for _, r := range fake.requests() {
		ms, _ := r.Body["measurements"].([]any)
		for _, m := range ms {
			m := m.(map[string]any)
			tags, _ := m["tags"].(map[string]any)
			if m["name"] == "libratod.lines_received_total" && tags["transport"] == "udp" {
				found = m
			}
		}
	}
	if found == nil {
		t.Fatalf("no libratod.lines_received_total{transport=udp} in %+v", fake.requests())
	}
	tags := found["tags"].(map[string]any)
	if found["value"] != 3.0 || tags["host"] != "test-host" || tags["env"] != "test" {
		t.Errorf("self-metric %v: want value 3 with the global tags", found)
	}
}
