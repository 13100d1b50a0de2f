package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/libratod/libratod/cmd/libratod/internal/config"
	"github.com/libratod/libratod/cmd/libratod/internal/config/secrettest"
	"github.com/libratod/libratod/internal/eventually"
	"github.com/libratod/libratod/internal/testproc"
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

// names returns the names of a request body's measurements.
func names(body map[string]any) []string {
	var out []string
	for _, list := range []string{"measurements", "gauges", "counters"} {
		ms, _ := body[list].([]any)
		for _, m := range ms {
			out = append(out, m.(map[string]any)["name"].(string))
		}
	}
	return out
}

// TestBadMeasurementDoesNotSinkItsBatch has Librato refuse (400) every
// request that holds one bad measurement: all the others arrive.
func TestBadMeasurementDoesNotSinkItsBatch(t *testing.T) {
	fake := newFakeLibrato(t)
	var refused atomic.Int64
	fake.handle = func(w http.ResponseWriter, _ *http.Request, body map[string]any) bool {
		if slices.Contains(names(body), "bad.one") {
			refused.Add(1)
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"errors":{"params":{"name":["is not valid here"]}}}`)
			return true
		}
		return false
	}
	cfg := testConfig(fake.URL, "tagged")
	cfg.Aggregate.Percentiles = nil
	d, stop := startDaemon(t, cfg)
	var b strings.Builder
	for i := range 299 {
		fmt.Fprintf(&b, "good.%d:%d|c\n", i, i+1)
	}
	b.WriteString("bad.one:1|c\n")
	sendTCP(t, d.lst.TCPAddr(), b.String())
	waitSeen(t, d, 300)
	stop()
	sums, _ := delivered(fake.requests())
	for i := range 299 {
		if n := fmt.Sprintf("good.%d", i); sums[n] != float64(i+1) {
			t.Errorf("%s = %v, want %d", n, sums[n], i+1)
		}
	}
	if _, ok := sums["bad.one"]; ok {
		t.Error("bad.one delivered")
	}
	if n := counterValue(t, d, "libratod_measurements_dropped_total", "rejected"); n != 1 {
		t.Errorf("dropped{rejected} = %v, want 1", n)
	}
	if n := refused.Load(); n > 20 {
		t.Errorf("%d requests refused while finding one bad measurement in 300, want at most 20", n)
	}
}

// TestShutdownAccountsForEverything stops the daemon while requests of an
// earlier period hang (Librato never answers them) and others wait behind
// them: the last log line must account for every measurement, and its
// sent count be what Librato took.
func TestShutdownAccountsForEverything(t *testing.T) {
	fake := newFakeLibrato(t)
	hung := make(chan struct{}, 10)
	var accepted atomic.Int64
	fake.handle = func(w http.ResponseWriter, r *http.Request, body map[string]any) bool {
		if ns := names(body); slices.ContainsFunc(ns, func(n string) bool { return n == "hang" || n[0] == 'w' }) {
			select {
			case hung <- struct{}{}:
			default:
			}
			<-r.Context().Done() // the client gives up: no answer
			return true
		}
		accepted.Add(int64(len(names(body))))
		return false
	}
	cfg := testConfig(fake.URL, "tagged")
	cfg.Aggregate.Period = time.Second
	cfg.Aggregate.Percentiles = nil
	cfg.Librato.BatchSize = 1
	cfg.Librato.Concurrency = 1
	cfg.Librato.ShutdownTimeout = time.Second
	cfg.Log.Level = "info"
	d, stop := startDaemon(t, cfg)
	sendUDP(t, d.lst.UDPAddr(), "hang:1|c\nw1:1|c\nw2:1|c\nw3:1|c\n")
	waitSeen(t, d, 4)
	select {
	case <-hung:
	case <-time.After(5 * time.Second):
		t.Fatal("the first period sent nothing within 5s")
	}
	sendUDP(t, d.lst.UDPAddr(), "f1:1|c\nf2:1|c\n")
	waitSeen(t, d, 6)
	logs := stop()
	var last map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(logs), "\n") {
		var e map[string]any
		if json.Unmarshal([]byte(line), &e) == nil && e["message"] == "libratod stopped" {
			last = e
		}
	}
	if last == nil {
		t.Fatalf("no stop line in:\n%s", logs)
	}
	n := func(k string) int64 { v, _ := last[k].(float64); return int64(v) }
	if n("measurements") != 6 || n("measurements") != n("sent")+n("dropped")+n("undelivered") ||
		n("sent") != accepted.Load() || n("undelivered") < 4 {
		t.Errorf("stop line %v with %d accepted: want the 6 measurements, each sent, dropped or undelivered", last, accepted.Load())
	}
}

// TestReloadHidesSecrets reloads every secrettest case into a running
// daemon, each with its environment: each is refused, and the logs show no
// four bytes of a secret.
func TestReloadHidesSecrets(t *testing.T) {
	fake := newFakeLibrato(t)
	path := filepath.Join(t.TempDir(), "libratod.toml")
	good := fmt.Sprintf("[listen]\nudp = \"127.0.0.1:0\"\ntcp = \"\"\n[librato]\nurl = %q\ntoken = %q\n[metrics]\nlisten = \"\"\n", fake.URL, testToken)
	if err := os.WriteFile(path, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	var env atomic.Pointer[map[string]string]
	env.Store(&map[string]string{})
	getenv := func(k string) string { return (*env.Load())[k] }
	logs := &testproc.SafeBuffer{}
	d, stop := startDaemonWith(t, cfg, options{configPath: path, getenv: getenv}, logs)
	const refused = "the new configuration is invalid"
	cases := secrettest.Cases()
	for i, tc := range cases {
		env.Store(&tc.Env)
		if err := os.WriteFile(path, []byte(tc.File), 0o600); err != nil {
			t.Fatal(err)
		}
		d.hup <- syscall.SIGHUP
		eventually.Require(t, 5*time.Second, func() bool { return strings.Count(logs.String(), refused) == i+1 },
			"%s: reload %d refused; logs:\n%s", tc.Name, i+1, logs)
	}
	out := strings.ReplaceAll(stop(), path, "<config>") // the test's path
	for _, line := range strings.Split(out, "\n") {
		if leak := secrettest.Leak(line); leak != "" {
			t.Errorf("the log shows %q of a secret: %s", leak, line)
		}
	}
}

// TestReloadDoesNotLogToken reloads a file whose token is not quoted: the
// logged problem must not show any part of it.
func TestReloadDoesNotLogToken(t *testing.T) {
	fake := newFakeLibrato(t)
	path := filepath.Join(t.TempDir(), "libratod.toml")
	good := fmt.Sprintf("[listen]\nudp = \"127.0.0.1:0\"\ntcp = \"\"\n[librato]\nurl = %q\ntoken = %q\n[metrics]\nlisten = \"\"\n", fake.URL, testToken)
	if err := os.WriteFile(path, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	logs := &testproc.SafeBuffer{}
	d, stop := startDaemonWith(t, cfg, options{configPath: path, getenv: noEnv}, logs)
	bad := strings.Replace(good, fmt.Sprintf("token = %q", testToken), "token = abcdefsecret123", 1)
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	d.hup <- syscall.SIGHUP
	eventually.True(5*time.Second, func() bool { return strings.Contains(logs.String(), "invalid") })
	out := stop()
	if !strings.Contains(out, "line 6") {
		t.Errorf("the reload problem was not logged with its line:\n%s", out)
	}
	if strings.Contains(out, "abcdef") || strings.Contains(out, testToken) {
		t.Errorf("the log shows part of the token:\n%s", out)
	}
}
