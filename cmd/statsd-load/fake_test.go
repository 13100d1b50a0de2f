package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/libratod/libratod/internal/eventually"

	"github.com/libratod/libratod/internal/fakelibrato"
)

const waitLimit = 5 * time.Second // bound of every wait in these tests

func TestParseFaults(t *testing.T) {
	tests := []struct {
		in      string
		want    []fault
		wantErr bool
	}{
		{in: ""},
		{in: "503:0.2", want: []fault{{kind: faultStatus, status: 503, p: 0.2}}},
		{
			in: "503:0.2,429:0.05,delay=2s:0.05,drop:0.05",
			want: []fault{
				{kind: faultStatus, status: 503, p: 0.2}, {kind: faultStatus, status: 429, p: 0.05},
				{kind: faultDelay, delay: 2 * time.Second, p: 0.05}, {kind: faultDrop, p: 0.05},
			},
		},
		{in: "drop:1", want: []fault{{kind: faultDrop, p: 1}}},
		{in: "slow=1500ms:0.1", want: []fault{{kind: faultSlow, delay: 1500 * time.Millisecond, p: 0.1}}},
		{in: "slow=:0.1", wantErr: true},
		{in: "503", wantErr: true},
		{in: "200:0.1", wantErr: true},
		{in: "600:0.1", wantErr: true},
		{in: "503:1.5", wantErr: true},
		{in: "503:-0.1", wantErr: true},
		{in: "503:x", wantErr: true},
		{in: "delay=:0.1", wantErr: true},
		{in: "delay=-1s:0.1", wantErr: true},
		{in: "boom:0.1", wantErr: true},
		{in: "503:0.6,drop:0.5", wantErr: true}, // more than 1 in all
	}
	for _, tt := range tests {
		got, err := parseFaults(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("parseFaults(%q): error %v, want error %t", tt.in, err, tt.wantErr)
			continue
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("parseFaults(%q) = %v, want %v", tt.in, got, tt.want)
		}
		for _, f := range got {
			if again, err := parseFaults(f.String()); err != nil || len(again) != 1 || again[0] != f {
				t.Errorf("parseFaults(%q) = %v, %v: String does not round-trip", f.String(), again, err)
			}
		}
	}
}

func TestPick(t *testing.T) {
	faults := []fault{{kind: faultStatus, status: 503, p: 0.2}, {kind: faultDrop, p: 0.1}}
	tests := []struct {
		u    float64
		want *fault
	}{
		{0, &faults[0]}, {0.19, &faults[0]}, {0.21, &faults[1]}, {0.29, &faults[1]}, {0.31, nil}, {0.99, nil},
	}
	for _, tt := range tests {
		if got := pick(faults, tt.u); got != tt.want {
			t.Errorf("pick(%v) = %v, want %v", tt.u, got, tt.want)
		}
	}
	if got := pick(nil, 0); got != nil {
		t.Errorf("pick with no faults = %v, want nil", got)
	}
}

const testPayload = `{"time":1700000000,"period":1,"tags":{"host":"h"},"measurements":[
 {"name":"load.c.0","value":6},
 {"name":"load.c.1","value":2,"tags":{"host":"h","t0":"v1"}},
 {"name":"load.ms.0","count":3,"sum":30,"min":5,"max":15,"last":10,"stddev":4},
 {"name":"load.s.2","value":4},
 {"name":"load.g.1","value":42},
 {"name":"load.ms.0.90","count":2,"sum":20,"min":5,"max":15},
 {"name":"elsewhere","value":1}
]}`

// TestFakeLibrato sends one request per case to a fake and checks the answer,
// the counters, and whether the payload was counted as delivered.
func TestFakeLibrato(t *testing.T) {
	tests := []struct {
		name       string
		faults     []fault
		down       time.Duration
		method     string
		path       string
		body       string
		gzip       bool
		timeout    time.Duration // of the client; 0: waitLimit
		wantStatus int           // 0: no answer (a client error)
		wantStats  fakeStats
	}{
		{name: "accepted", wantStatus: 200, wantStats: fakeStats{Requests: 1, Accepted: 1}},
		{name: "gzip", gzip: true, wantStatus: 200, wantStats: fakeStats{Requests: 1, Accepted: 1}},
		{name: "503", faults: []fault{{kind: faultStatus, status: 503, p: 1}}, wantStatus: 503, wantStats: fakeStats{Requests: 1, Status: 1}},
		{name: "429", faults: []fault{{kind: faultStatus, status: 429, p: 1}}, wantStatus: 429, wantStats: fakeStats{Requests: 1, Status: 1}},
		{name: "drop", faults: []fault{{kind: faultDrop, p: 1}}, wantStats: fakeStats{Requests: 1, Dropped: 1}},
		{name: "delay", faults: []fault{{kind: faultDelay, delay: 20 * time.Millisecond, p: 1}}, wantStatus: 200, wantStats: fakeStats{Requests: 1, Accepted: 1, Delayed: 1}},
		{
			name: "delay past the client's timeout", faults: []fault{{kind: faultDelay, delay: time.Hour, p: 1}},
			timeout: 50 * time.Millisecond, wantStats: fakeStats{Requests: 1, ClientGone: 1},
		},
		{
			name: "slow", faults: []fault{{kind: faultSlow, delay: 20 * time.Millisecond, p: 1}}, wantStatus: 200,
			wantStats: fakeStats{Requests: 1, Accepted: 1, Slow: 1},
		},
		{
			name: "slow past the client's timeout: taken all the same", faults: []fault{{kind: faultSlow, delay: time.Hour, p: 1}},
			timeout: 50 * time.Millisecond, wantStats: fakeStats{Requests: 1, Accepted: 1, Slow: 1, LateGone: 1},
		},
		{name: "fault not rolled", faults: []fault{{kind: faultStatus, status: 503, p: 0}}, wantStatus: 200, wantStats: fakeStats{Requests: 1, Accepted: 1}},
		{name: "down", down: time.Hour, wantStatus: 503, wantStats: fakeStats{Requests: 1, Down: 1}},
		{name: "not json", body: "{", wantStatus: 400, wantStats: fakeStats{Requests: 1, Bad: 1}},
		{name: "no value nor count", body: `{"measurements":[{"name":"x"}]}`, wantStatus: 400, wantStats: fakeStats{Requests: 1, Bad: 1}},
		{name: "legacy path", path: "/v1/metrics", wantStatus: 404, wantStats: fakeStats{Requests: 1, Bad: 1}},
		{name: "GET", method: http.MethodGet, wantStatus: 404, wantStats: fakeStats{Requests: 1, Bad: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(fakeConfig{prefix: "load", faults: tt.faults, down: tt.down, seed: 1})
			srv := httptest.NewServer(f)
			defer srv.Close()

			body := []byte(tt.body)
			if tt.body == "" {
				body = []byte(testPayload)
			}
			if tt.gzip {
				var b bytes.Buffer
				zw := gzip.NewWriter(&b)
				_, _ = zw.Write(body)
				_ = zw.Close()
				body = b.Bytes()
			}
			method, path := tt.method, tt.path
			if method == "" {
				method = http.MethodPost
			}
			if path == "" {
				path = "/v1/measurements"
			}
			timeout := tt.timeout
			if timeout == 0 {
				timeout = waitLimit
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, method, srv.URL+path, bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			if tt.gzip {
				req.Header.Set("Content-Encoding", "gzip")
			}
			resp, err := srv.Client().Do(req)
			status := 0
			if err == nil {
				status = resp.StatusCode
				_ = resp.Body.Close()
			}
			if status != tt.wantStatus {
				t.Errorf("status %d (%v), want %d", status, err, tt.wantStatus)
			}

			// The handler may still be finishing (a client that gave up): wait
			// for its count.
			var st fakeStats
			var got *received
			eventually.True(waitLimit, func() bool {
				st, got = f.snapshot()
				return st == tt.wantStats
			})
			if st != tt.wantStats {
				t.Errorf("stats %+v, want %+v", st, tt.wantStats)
			}
			wantTotal := 0
			if tt.wantStats.Accepted > 0 {
				wantTotal = 7
			}
			if got.total != wantTotal {
				t.Errorf("%d measurements counted, want %d", got.total, wantTotal)
			}
		})
	}
}

// TestReceived checks the tally of accepted payloads: sums by name over periods
// and tags, the latest gauge value, percentiles and foreign names apart, shapes
// checked, and a point delivered twice noticed.
func TestReceived(t *testing.T) {
	rc := newReceived("load")
	add := func(body string) {
		t.Helper()
		p, err := decodePayload(&fakelibrato.Request{Body: []byte(body)})
		if err != nil {
			t.Fatal(err)
		}
		rc.add(p)
	}
	add(testPayload)
	add(`{"time":1700000001,"measurements":[
		{"name":"load.c.0","value":4},
		{"name":"load.g.1","value":43},
		{"name":"load.g.0","value":1,"time":1699999999},
		{"name":"load.c.2","count":1,"sum":1,"min":1,"max":1},
		{"name":"load.ms.1","value":3}
	]}`)
	add(`{"time":1700000000,"measurements":[{"name":"load.g.1","value":41,"tags":{"host":"h"}}]}`) // older, a dupe of another value
	add(`{"time":1700000000,"tags":{"host":"h"},"measurements":[{"name":"load.s.2","value":4}]}`)  // a resent copy

	want := map[metricType]map[int]float64{
		counterType: {0: 10, 1: 2},
		timerType:   {0: 3},
		setType:     {2: 8},
	}
	for typ, sums := range want {
		for i, v := range sums {
			if got := rc.sums[typ][i]; got != v {
				t.Errorf("%v %d: %v, want %v", typ, i, got, v)
			}
		}
		if len(rc.sums[typ]) != len(sums) {
			t.Errorf("%v: %v, want %v", typ, rc.sums[typ], sums)
		}
	}
	if g := rc.gauges[1]; g.value != 43 || g.time != 1700000001 {
		t.Errorf("gauge 1: %+v, want 43 at 1700000001", g)
	}
	if g := rc.gauges[0]; g.value != 1 || g.time != 1699999999 {
		t.Errorf("gauge 0: %+v, want 1 at 1699999999", g)
	}
	if rc.dupTimes[dupKey{time: 1700000000, typ: "g"}] != 1 || rc.dupTimes[dupKey{time: 1700000000, typ: "s"}] != 1 ||
		len(rc.dupTimes) != 2 {
		t.Errorf("duplicates by time %v, want a gauge and a set at 1700000000", rc.dupTimes)
	}
	if rc.other != 2 || rc.wrongTyp != 2 || rc.dupes != 2 || rc.sameDup != 1 || rc.total != 14 {
		t.Errorf("other %d, wrong type %d, dupes %d (%d identical), total %d; want 2, 2, 2 (1), 14",
			rc.other, rc.wrongTyp, rc.dupes, rc.sameDup, rc.total)
	}
	c := rc.clone()
	rc.sums[counterType][0] = 99
	if c.sums[counterType][0] != 10 {
		t.Error("clone shares its sums with the original")
	}
}
