package main

import (
	"strings"
	"testing"
	"time"
)

func TestCompare(t *testing.T) {
	// sent: counter 0 = 10, counter 1 = 0.3 (three lines at rate 0.1... as the
	// daemon adds them), timer 0 = 4, set 1 = 5, gauge 0 = 7.
	sent := func() *tally {
		w := newTally(2)
		w.counters[0], w.counters[1] = 10, 0.1+0.1+0.1
		w.timers[0] = 4
		w.sets[1] = 5
		w.gauges[0] = gaugeValue{value: 7, set: true}
		return w
	}
	got := func(edit func(*received)) *received {
		rc := newReceived("load")
		rc.sums[counterType][0], rc.sums[counterType][1] = 10, 0.3 // another order of addition
		rc.sums[timerType][0] = 4
		rc.sums[setType][1] = 5
		rc.gauges[0] = gaugeSeen{time: 1, value: 7}
		if edit != nil {
			edit(rc)
		}
		return rc
	}
	tests := []struct {
		name                  string
		got                   *received
		wantLost, wantDoubled float64
		wantGaugesOK          int
		wantClean             bool
		wantEstimated         bool
	}{
		{name: "exact", got: got(nil), wantGaugesOK: 1, wantClean: true},
		{name: "counter lost", got: got(func(rc *received) { rc.sums[counterType][0] = 6 }), wantLost: 4, wantGaugesOK: 1},
		{name: "timer doubled", got: got(func(rc *received) { rc.sums[timerType][0] = 8 }), wantDoubled: 4, wantGaugesOK: 1},
		{name: "set missing", got: got(func(rc *received) { delete(rc.sums[setType], 1) }), wantLost: 5, wantGaugesOK: 1},
		{name: "a name never sent", got: got(func(rc *received) { rc.sums[counterType][5] = 2 }), wantDoubled: 2, wantGaugesOK: 1},
		{name: "gauge stale", got: got(func(rc *received) { rc.gauges[0] = gaugeSeen{value: 6} })},
		{name: "gauge missing", got: got(func(rc *received) { delete(rc.gauges, 0) })},
		{name: "a point twice", got: got(func(rc *received) { rc.dupes = 1 }), wantGaugesOK: 1},
		{name: "wrong shape", got: got(func(rc *received) { rc.wrongTyp = 1 }), wantGaugesOK: 1},
		{name: "others only reported", got: got(func(rc *received) { rc.other = 3 }), wantGaugesOK: 1, wantClean: true},
		{
			name: "sets near the bound are estimates", wantGaugesOK: 1, wantClean: true, wantEstimated: true,
			got: got(func(rc *received) { rc.sums[setType][1], rc.maxSet = 4, 90 }),
		},
		{
			name: "sets below the bound are exact", wantGaugesOK: 1, wantLost: 1,
			got: got(func(rc *received) { rc.sums[setType][1], rc.maxSet = 4, 89 }),
		},
	}
	for _, tt := range tests {
		c := compare(sent(), tt.got, 100)
		if c.lost != tt.wantLost || c.doubled != tt.wantDoubled || c.gaugesOK != tt.wantGaugesOK || c.gauges != 1 ||
			c.clean() != tt.wantClean || c.setsEstimated != tt.wantEstimated {
			t.Errorf("%s: lost %v, doubled %v, gauges %d/%d, clean %t; want %v, %v, %d/1, %t", tt.name,
				c.lost, c.doubled, c.gaugesOK, c.gauges, c.clean(), tt.wantLost, tt.wantDoubled, tt.wantGaugesOK, tt.wantClean)
		}
	}
	if s, d := compare(sent(), got(nil), 100).units(); s != 19.3 || d != 19.3 {
		t.Errorf("units %v sent, %v delivered; want 19.3, 19.3", s, d)
	}
	if s, d := compare(sent(), got(func(rc *received) { rc.maxSet = 95 }), 100).units(); s != 14.3 || d != 14.3 {
		t.Errorf("units with estimated sets %v sent, %v delivered; want 14.3, 14.3 (no sets)", s, d)
	}
}

func TestSummary(t *testing.T) {
	r := &result{
		proto: "udp", conns: 2, elapsed: 2 * time.Second,
		send:        sendStats{lines: 4_000_000, packets: 400_000},
		cmp:         comparison{sent: [numTypes]float64{counterType: 3_000_000}, delivered: [numTypes]float64{counterType: 2_999_000}, lost: 1000, gauges: 10, gaugesOK: 9},
		fake:        fakeStats{Requests: 12, Accepted: 10, Status: 2},
		daemon:      &daemonStats{cpu: 3 * time.Second, peakRSS: 48 << 20},
		kernelDrops: 100,
	}
	s := r.summary()
	for _, want := range []string{
		"sent=4000000 lines in 2.0s (2.00M lines/s, 200k datagrams/s) udp conns=2",
		"delivered=2999000/3000000 units lost=1000 (0.033%) doubled=0 gauges=9/10 dup_points=0",
		"kernel_drops=100", "librato: 12 requests 10 accepted (faults: 0 down, 2 status", "daemon cpu=1.50 cores peak_rss=48MiB",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("summary %q lacks %q", s, want)
		}
	}
	if strings.Contains(s, "\n") {
		t.Errorf("summary %q is not one line", s)
	}
	if strings.Contains(s, "sets=") {
		t.Errorf("summary %q reports sets as estimated", s)
	}
	r.cmp.dupes, r.cmp.sameDupes = 5, 4
	if s := r.summary(); !strings.Contains(s, "dup_points=5 (4 identical copies)") {
		t.Errorf("summary %q does not report the duplicates", s)
	}
	r.cmp.setsEstimated = true
	r.cmp.sent[setType], r.cmp.delivered[setType] = 1000, 990
	if s := r.summary(); !strings.Contains(s, "sets=estimated (990/1000 members, -1.00%)") {
		t.Errorf("summary %q does not report the estimated sets", s)
	}
	r.daemon, r.kernelDrops, r.proto = nil, -1, "tcp"
	s = r.summary()
	for _, unwanted := range []string{"daemon", "kernel_drops", "datagrams"} {
		if strings.Contains(s, unwanted) {
			t.Errorf("summary %q holds %q", s, unwanted)
		}
	}
}

func TestSI(t *testing.T) {
	tests := []struct {
		x    float64
		want string
	}{
		{0, "0"}, {512, "512"}, {999.4, "999"}, {999.6, "1.00k"}, {85_000, "85.0k"}, {123_456, "123k"},
		{2_000_000, "2.00M"}, {12_345_678, "12.3M"},
	}
	for _, tt := range tests {
		if got := si(tt.x); got != tt.want {
			t.Errorf("si(%v) = %q, want %q", tt.x, got, tt.want)
		}
	}
}
