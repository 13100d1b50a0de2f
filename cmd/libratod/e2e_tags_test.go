package main

import (
	"maps"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/libratod/libratod/parser"
)

// measurementsByID returns the measurements of every request the fake took, by
// "name k=v,k=v" (tags sorted), failing t on a repeated one.
func measurementsByID(t *testing.T, fake *fakeLibrato) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, r := range fake.requests() {
		ms, _ := r.Body["measurements"].([]any)
		for _, m := range ms {
			m := m.(map[string]any)
			id := m["name"].(string)
			if tags, ok := m["tags"].(map[string]any); ok {
				var kv []string
				for _, k := range slices.Sorted(maps.Keys(tags)) {
					kv = append(kv, k+"="+tags[k].(string))
				}
				id += " " + strings.Join(kv, ",")
			}
			if _, dup := out[id]; dup {
				t.Errorf("measurement %q delivered twice", id)
			}
			out[id] = m
		}
	}
	return out
}

// checkMeasurements compares the delivered measurements with want, by id
// (see measurementsByID), on the fields want names.
func checkMeasurements(t *testing.T, got map[string]map[string]any, want map[string]map[string]float64) {
	t.Helper()
	var missing []string
	for _, id := range slices.Sorted(maps.Keys(want)) {
		m, ok := got[id]
		if !ok {
			missing = append(missing, id)
			continue
		}
		for f, v := range want[id] {
			if m[f] != v {
				t.Errorf("%s: %s = %v, want %v", id, f, m[f], v)
			}
		}
	}
	if len(missing) > 0 || len(got) != len(want) {
		t.Errorf("missing %q\namong the %d measurements delivered (want %d): %q", missing, len(got), len(want), slices.Sorted(maps.Keys(got)))
	}
}

// TestEndToEndHotShotsTelegraf sends what hot-shots 17 writes with
// telegraf: true (testdata/hotshots-telegraf*, captured from the client by
// testdata/hotshots-capture.js): one line a UDP datagram, then the buffered
// datagram (lines joined by "\n", no final newline) over UDP and over TCP.
// Every count, gauge, timing, histogram, distribution and set must arrive
// under its own name, with its tags merged with the global tags.
func TestEndToEndHotShotsTelegraf(t *testing.T) {
	text, err := os.ReadFile("testdata/hotshots-telegraf.txt")
	if err != nil {
		t.Fatal(err)
	}
	buffered, err := os.ReadFile("testdata/hotshots-telegraf-buffered.dgram")
	if err != nil {
		t.Fatal(err)
	}
	if len(buffered) == 0 || buffered[len(buffered)-1] == '\n' {
		t.Fatal("the buffered datagram must end without a newline, as hot-shots sends it")
	}
	fake := newFakeLibrato(t)
	d, stop := startDaemon(t, testConfig(fake.URL, "tagged"))
	lines := 0
	for line := range strings.Lines(string(text)) {
		if strings.HasPrefix(line, "# ") {
			continue // the fixture's header
		}
		sendUDP(t, d.lst.UDPAddr(), strings.TrimSuffix(line, "\n"))
		lines++
	}
	if n := strings.Count(string(buffered), "\n") + 1; n != lines {
		t.Fatalf("the buffered datagram holds %d lines, the other fixture %d", n, lines)
	}
	// The lines went in datagrams of their own, which several UDP readers may
	// take out of order (a gauge's 7 after its 9): wait for them all before
	// the buffered sends, whose lines arrive in order and set the last value.
	waitSeen(t, d, float64(lines))
	sendUDP(t, d.lst.UDPAddr(), string(buffered))
	sendTCP(t, d.lst.TCPAddr(), string(buffered))
	waitSeen(t, d, float64(3*lines))
	stop()

	if n := counterValue(t, d, "libratod_lines_invalid_total", ""); n != 0 {
		t.Errorf("%v lines invalid", n)
	}
	// Each fixture sends everything once: three times in all.
	const g = "host=test-host" // with env=test, the global tags
	checkMeasurements(t, measurementsByID(t, fake), map[string]map[string]float64{
		"rcn.requests app=rcnode,code=200,env=test," + g + ",service=web": {"value": 3 * (3 + 2)},
		"rcn.requests app=rcnode,code=500,env=test," + g + ",service=web": {"value": 0},
		"rcn.flags app=rcnode,canary=true,env=test," + g + ",region=eu":   {"value": 3},
		"rcn.queue app=rcnode,env=test," + g:                              {"value": 9},
		"rcn.users app=rcnode,env=test," + g:                              {"value": 2},
		"rcn.users app=rcnode,env=prod," + g:                              {"value": 1},
		"rcn.latency app=rcnode,env=test," + g:                            {"count": 3, "sum": 37.5, "min": 12.5, "max": 12.5},
		"rcn.latency.50 app=rcnode,env=test," + g:                         {"count": 2, "max": 12.5},
		"rcn.latency.99.5 app=rcnode,env=test," + g:                       {"count": 3, "max": 12.5},
		"rcn.latency app=rcnode,env=test," + g + ",route=/users":          {"count": 6, "sum": 111.75, "min": 7.25, "max": 30},
		"rcn.latency.50 app=rcnode,env=test," + g + ",route=/users":       {"count": 3, "sum": 21.75, "max": 7.25},
		"rcn.latency.99.5 app=rcnode,env=test," + g + ",route=/users":     {"count": 6, "max": 30},
		"rcn.payload app=rcnode,env=test," + g:                            {"count": 6, "sum": 4608, "min": 512, "max": 1024},
		"rcn.payload.50 app=rcnode,env=test," + g:                         {"count": 3, "max": 512},
		"rcn.payload.99.5 app=rcnode,env=test," + g:                       {"count": 6, "max": 1024},
		"rcn.render app=rcnode,env=test," + g:                             {"count": 6, "sum": 24, "min": 3.5, "max": 4.5},
		"rcn.render.50 app=rcnode,env=test," + g:                          {"count": 3, "max": 3.5},
		"rcn.render.99.5 app=rcnode,env=test," + g:                        {"count": 6, "max": 4.5},
	})
}

// TestEndToEndGraphiteTags sends Graphite 1.1 tagged lines: they arrive
// as tagged series, and as plain (sanitized) names when listen.tag_syntaxes
// leaves "graphite" out.
func TestEndToEndGraphiteTags(t *testing.T) {
	const lines = "jobs.done;queue=emails;worker=w1:4|c\n" +
		"jobs.done;worker=w1;queue=emails:1|c\n" + // another order: the same series
		"jobs.wait;queue=emails:250|ms|#tier:gold\n" + // with DogStatsD tags
		"jobs.size;queue=emails;env=prod:12|g\n" + // env=prod wins over the global env=test
		"jobs.bad;queue:1|c\n" // no value: refused while graphite is read
	const g = "host=test-host"
	tests := map[string]struct {
		syntaxes []string
		want     map[string]map[string]float64
		invalid  float64
	}{
		"default": {
			want: map[string]map[string]float64{
				"jobs.done env=test," + g + ",queue=emails,worker=w1":      {"value": 5},
				"jobs.wait env=test," + g + ",queue=emails,tier=gold":      {"count": 1, "sum": 250},
				"jobs.size env=prod," + g + ",queue=emails":                {"value": 12},
				"jobs.wait.50 env=test," + g + ",queue=emails,tier=gold":   {"count": 1, "max": 250},
				"jobs.wait.99.5 env=test," + g + ",queue=emails,tier=gold": {"count": 1, "max": 250},
			},
			invalid: 1,
		},
		"graphite off": {
			syntaxes: []string{"dogstatsd", "librato", "influxdb"},
			want: map[string]map[string]float64{
				"jobs.done_queue_emails_worker_w1":                         {"value": 4},
				"jobs.done_worker_w1_queue_emails":                         {"value": 1},
				"jobs.wait_queue_emails env=test," + g + ",tier=gold":      {"count": 1, "sum": 250},
				"jobs.wait_queue_emails.50 env=test," + g + ",tier=gold":   {"count": 1},
				"jobs.wait_queue_emails.99.5 env=test," + g + ",tier=gold": {"count": 1},
				"jobs.size_queue_emails_env_prod":                          {"value": 12},
				"jobs.bad_queue":                                           {"value": 1},
			},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			fake := newFakeLibrato(t)
			cfg := testConfig(fake.URL, "tagged")
			if tt.syntaxes != nil {
				cfg.Listen.TagSyntaxes = tt.syntaxes
			}
			d, stop := startDaemon(t, cfg)
			sendUDP(t, d.lst.UDPAddr(), lines)
			waitSeen(t, d, 5)
			stop()
			if n := counterValue(t, d, "libratod_lines_invalid_total", parser.ErrBadGraphiteTags.Reason()); n != tt.invalid {
				t.Errorf("invalid{bad_graphite_tags} = %v, want %v", n, tt.invalid)
			}
			checkMeasurements(t, measurementsByID(t, fake), tt.want)
		})
	}
}
