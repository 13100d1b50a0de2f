package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// points returns every plain or summary point the fake received, keyed by
// (name, tags or source, time), with how many times each came.
func points(reqs []request) map[string]int {
	out := map[string]int{}
	for _, r := range reqs {
		tm, _ := r.Body["time"].(float64)
		if mt, ok := r.Body["measure_time"].(float64); ok {
			tm = mt
		}
		top, _ := json.Marshal(r.Body["tags"])
		src, _ := r.Body["source"].(string)
		for _, list := range []string{"measurements", "gauges", "counters"} {
			ms, _ := r.Body[list].([]any)
			for _, m := range ms {
				m := m.(map[string]any)
				tags := string(top)
				if own, ok := m["tags"]; ok {
					b, _ := json.Marshal(own)
					tags = string(b)
				}
				s := src
				if own, ok := m["source"].(string); ok {
					s = own
				}
				out[fmt.Sprintf("%s %s %s %d", m["name"], tags, s, int64(tm))]++
			}
		}
	}
	return out
}

// TestRestartWithinPeriod stops the daemon and starts it again, three
// times within one period: Librato must never get the same (name, tags,
// time) twice, and every unit once.
func TestRestartWithinPeriod(t *testing.T) {
	fake := newFakeLibrato(t)
	clock := testClock() // one clock for every process, as the wall clock is
	sent := 0
	for i := range 3 {
		d, stop := startDaemonWith(t, testConfig(fake.URL, "tagged"), options{now: clock}, nil)
		sendUDP(t, d.lst.UDPAddr(), strings.Repeat("restart.hits:1|c\n", i+1)+"restart.lat:5|ms\n")
		sent += i + 1
		waitSeen(t, d, float64(i+2))
		stop()
	}
	reqs := fake.requests()
	for p, n := range points(reqs) {
		if n > 1 {
			t.Errorf("point %s received %d times", p, n)
		}
	}
	sums, _ := delivered(reqs)
	if sums["restart.hits"] != float64(sent) {
		t.Errorf("delivered %v hits, want %d", sums["restart.hits"], sent)
	}
}
