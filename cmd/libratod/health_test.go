package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/libratod/libratod/cmd/libratod/internal/config"
	"github.com/libratod/libratod/flusher"
	"github.com/libratod/libratod/internal/testproc"
)

func TestReadyz(t *testing.T) {
	const period = 10 * time.Second // window: 30s
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	before := func(d time.Duration) time.Time { return now.Add(-d) }
	tests := map[string]struct {
		unbound  bool          // the listeners are not bound yet
		stopping bool          // shutdown has begun
		uptime   time.Duration // since newHealth
		status   flusher.Status
		query    string
		code     int
		body     []string // substrings
	}{
		"starting": {
			unbound: true, uptime: time.Second,
			code: 503, body: []string{"listeners: starting"},
		},
		"no flush yet": {
			uptime: 5 * time.Second,
			code:   200, body: []string{"ok"},
		},
		"no flush for longer than the window": {
			uptime: 31 * time.Second,
			code:   503, body: []string{"delivery: no flush since the start, 31s ago (more than 30s)"},
		},
		"last flush delivered everything": {
			uptime: time.Hour,
			status: flusher.Status{LastFlush: before(3 * time.Second), LastDelivered: before(2 * time.Second)},
			code:   200, body: []string{"ok"},
		},
		"a flush under way after a good one": {
			uptime: time.Hour,
			status: flusher.Status{LastFlush: before(time.Second), LastDelivered: before(11 * time.Second)},
			code:   200, body: []string{"ok"},
		},
		"first flush failed, within the window": {
			uptime: 25 * time.Second,
			status: flusher.Status{LastFlush: before(5 * time.Second)},
			code:   200, body: []string{"ok"},
		},
		"no complete flush since the start": {
			uptime: 45 * time.Second,
			status: flusher.Status{LastFlush: before(5 * time.Second)},
			code:   503, body: []string{"delivery: no flush has delivered everything it had since the start, 45s ago"},
		},
		"no complete flush for longer than the window": {
			uptime: time.Hour,
			status: flusher.Status{LastFlush: before(5 * time.Second), LastDelivered: before(40 * time.Second)},
			code:   503, body: []string{"delivery: no flush has delivered everything it had since 2026-03-01T11:59:20Z (40s ago, more than 30s)"},
		},
		"young data waits to be resent": {
			uptime: time.Hour,
			status: flusher.Status{LastFlush: before(time.Second), LastDelivered: before(12 * time.Second),
				Pending: 600, OldestPending: before(20 * time.Second)},
			code: 200, body: []string{"ok"},
		},
		"old data waits to be resent": {
			uptime: time.Hour,
			status: flusher.Status{LastFlush: before(time.Second), LastDelivered: before(2 * time.Second),
				Pending: 600, OldestPending: before(90 * time.Second)},
			code: 503, body: []string{"delivery: 600 measurements wait to be resent, the oldest from 2026-03-01T11:58:30Z (1m30s ago"},
		},
		"stopping": {
			stopping: true, uptime: time.Hour,
			status: flusher.Status{LastFlush: before(time.Second), LastDelivered: before(time.Second)},
			code:   503, body: []string{"listeners: shutting down"},
		},
		"both checks fail": {
			stopping: true, uptime: time.Hour,
			status: flusher.Status{LastFlush: before(time.Second), LastDelivered: before(time.Hour)},
			code:   503, body: []string{"listeners: shutting down\n", "delivery: no flush"},
		},
		"delivery excluded": {
			uptime: time.Hour, query: "?exclude=delivery",
			status: flusher.Status{LastFlush: before(time.Second), LastDelivered: before(time.Hour)},
			code:   200, body: []string{"ok"},
		},
		"delivery excluded, still starting": {
			unbound: true, uptime: time.Hour, query: "?exclude=delivery",
			code: 503, body: []string{"listeners: starting"},
		},
		"everything excluded, repeated": {
			unbound: true, uptime: time.Hour, query: "?exclude=delivery&exclude=listeners",
			code: 200, body: []string{"ok"},
		},
		"everything excluded, comma-separated": {
			unbound: true, uptime: time.Hour, query: "?exclude=listeners,delivery",
			code: 200, body: []string{"ok"},
		},
		"misspelt exclusion": {
			uptime: time.Hour, query: "?exclude=delivary",
			code: 400, body: []string{`unknown check "delivary"`},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ready := make(chan struct{})
			if !tc.unbound {
				close(ready)
			}
			h := newHealth(ready, func() flusher.Status { return tc.status }, period)
			h.now = func() time.Time { return now }
			h.started = now.Add(-tc.uptime)
			if tc.stopping {
				h.stop()
			}
			mux := http.NewServeMux()
			h.register(mux)
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz"+tc.query, nil))
			if rec.Code != tc.code {
				t.Errorf("status %d, want %d; body %q", rec.Code, tc.code, rec.Body.String())
			}
			for _, s := range tc.body {
				if !strings.Contains(rec.Body.String(), s) {
					t.Errorf("body %q lacks %q", rec.Body.String(), s)
				}
			}
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
}

func TestHealthzAlwaysOK(t *testing.T) {
	tests := map[string]struct {
		method string
		code   int
	}{
		"GET":  {http.MethodGet, 200},
		"HEAD": {http.MethodHead, 200},
		"POST": {http.MethodPost, 405},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			// Not bound, shutting down and never delivered: alive all the same.
			h := newHealth(make(chan struct{}), func() flusher.Status { return flusher.Status{} }, time.Second)
			h.stop()
			h.started = time.Now().Add(-time.Hour)
			mux := http.NewServeMux()
			h.register(mux)
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, httptest.NewRequest(tc.method, "/healthz", nil))
			if rec.Code != tc.code {
				t.Errorf("status %d, want %d", rec.Code, tc.code)
			}
			if tc.method == http.MethodGet && rec.Body.String() != "ok\n" {
				t.Errorf("body %q, want %q", rec.Body.String(), "ok\n")
			}
		})
	}
}

func TestHealthSetPeriod(t *testing.T) {
	now := time.Now()
	h := newHealth(nil, func() flusher.Status {
		return flusher.Status{LastFlush: now, LastDelivered: now.Add(-time.Minute)}
	}, 10*time.Second)
	h.now = func() time.Time { return now }
	if p := h.deliveryProblem(); p == "" {
		t.Fatal("a minute without delivery passes a 30s window")
	}
	h.setPeriod(time.Minute)
	if p := h.deliveryProblem(); p != "" {
		t.Errorf("a minute without delivery fails a 3m window: %s", p)
	}
}

func TestHealthURL(t *testing.T) {
	tests := map[string]struct {
		listen string
		want   string // "" means an error
	}{
		"loopback":         {"127.0.0.1:9125", "http://127.0.0.1:9125/healthz"},
		"any IPv4":         {"0.0.0.0:9125", "http://127.0.0.1:9125/healthz"},
		"any IPv6":         {"[::]:9125", "http://127.0.0.1:9125/healthz"},
		"no host":          {":9125", "http://127.0.0.1:9125/healthz"},
		"IPv6 loopback":    {"[::1]:9125", "http://[::1]:9125/healthz"},
		"host name":        {"localhost:9125", "http://localhost:9125/healthz"},
		"specific address": {"10.1.2.3:9125", "http://10.1.2.3:9125/healthz"},
		"disabled":         {"", ""},
		"no port":          {"127.0.0.1", ""},
		"port 0":           {"127.0.0.1:0", ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := healthURL(tc.listen)
			if tc.want == "" {
				if err == nil {
					t.Errorf("healthURL(%q) = %q, want an error", tc.listen, got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("healthURL(%q) = %q, %v; want %q", tc.listen, got, err, tc.want)
			}
		})
	}
}

func TestRunHealth(t *testing.T) {
	// A real daemon: its /healthz answers 200.
	cfg := testConfig("http://127.0.0.1:1", "tagged")
	d, stop := startDaemon(t, cfg)
	defer stop()
	_, daemonPort, _ := net.SplitHostPort(d.metLn.Addr().String())

	unhealthy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "wedged", http.StatusServiceUnavailable)
	}))
	defer unhealthy.Close()
	_, unhealthyPort, _ := net.SplitHostPort(unhealthy.Listener.Addr().String())

	metrics := func(listen string) string { return fmt.Sprintf("[metrics]\nlisten = %q\n", listen) }
	tests := map[string]struct {
		config string
		env    map[string]string
		code   int
		stdout string
		stderr string
	}{
		"healthy":              {config: metrics("127.0.0.1:" + daemonPort), code: 0, stdout: "/healthz: ok"},
		"healthy via wildcard": {config: metrics("0.0.0.0:" + daemonPort), code: 0, stdout: "http://127.0.0.1:" + daemonPort},
		"address from the environment": {config: metrics("127.0.0.1:" + testproc.FreePort(t)),
			env: map[string]string{"LIBRATOD_METRICS_LISTEN": "127.0.0.1:" + daemonPort}, code: 0, stdout: "ok"},
		"answers 503":       {config: metrics("127.0.0.1:" + unhealthyPort), code: 1, stderr: `503 Service Unavailable: "wedged"`},
		"nothing listening": {config: metrics("127.0.0.1:" + testproc.FreePort(t)), code: 1, stderr: "connection refused"},
		"metrics disabled":  {config: metrics(""), code: 1, stderr: "metrics.listen is empty"},
		"bad config":        {config: "[aggregate]\nperiod = \"ten\"\n", code: 1, stderr: "aggregate.period"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			path := writeConfig(t, tc.config) // no token: -health needs none
			var out, errb bytes.Buffer
			code := run([]string{"-health", "-config", path}, &out, &errb, func(k string) string { return tc.env[k] })
			if code != tc.code {
				t.Errorf("exit %d, want %d; stdout %q, stderr %q", code, tc.code, out.String(), errb.String())
			}
			if !strings.Contains(out.String(), tc.stdout) {
				t.Errorf("stdout %q lacks %q", out.String(), tc.stdout)
			}
			if !strings.Contains(errb.String(), tc.stderr) {
				t.Errorf("stderr %q lacks %q", errb.String(), tc.stderr)
			}
		})
	}
}

func TestDaemonServesHealth(t *testing.T) {
	d, stop := startDaemon(t, testConfig("http://127.0.0.1:1", "tagged"))
	defer stop()
	tests := map[string]struct {
		path string
		code int
		body string
	}{
		"healthz": {"/healthz", 200, "ok\n"},
		"readyz":  {"/readyz", 200, "ok\n"}, // bound, nothing flushed yet
		"bad":     {"/readyz?exclude=nope", 400, `unknown check "nope"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			resp, err := http.Get("http://" + d.metLn.Addr().String() + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var b bytes.Buffer
			_, _ = b.ReadFrom(resp.Body)
			if resp.StatusCode != tc.code || !strings.Contains(b.String(), tc.body) {
				t.Errorf("GET %s: %d %q, want %d %q", tc.path, resp.StatusCode, b.String(), tc.code, tc.body)
			}
		})
	}
}

// TestDeployedProbes asks the real health handlers what the deployment
// files ask (their other checks are in package ops): the container's
// HEALTHCHECK finds /healthz at the container configuration's
// metrics.listen, and the Kubernetes examples' probe paths pass while
// Librato has taken nothing for an hour (with the period they set).
func TestDeployedProbes(t *testing.T) {
	env := func(k string) string {
		if k == "LIBRATO_TOKEN" {
			return "t"
		}
		return ""
	}
	cfg, err := config.Load("../../deploy/container.toml", env)
	if err != nil {
		t.Fatal(err)
	}
	if u, err := healthURL(cfg.Metrics.Listen); err != nil || u != "http://127.0.0.1:9125/healthz" {
		t.Errorf("the HEALTHCHECK would ask %q (%v)", u, err)
	}
	probeRe := regexp.MustCompile(`(readinessProbe|livenessProbe):\s*\n\s*httpGet:\s*\n\s*path: (\S+)`)
	periodRe := regexp.MustCompile(`- name: LIBRATOD_AGGREGATE_PERIOD\s*\n\s*value: "?([^"\s]+)"?`)
	for _, path := range []string{"../../deploy/kubernetes/sidecar.yaml", "../../deploy/kubernetes/sidecar-legacy.yaml"} {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		period := cfg.Aggregate.Period
		if m := periodRe.FindSubmatch(data); m != nil {
			if period, err = time.ParseDuration(string(m[1])); err != nil {
				t.Fatalf("%s: LIBRATOD_AGGREGATE_PERIOD: %v", path, err)
			}
		}
		ready := make(chan struct{})
		close(ready)
		h := newHealth(ready, func() flusher.Status {
			return flusher.Status{LastFlush: time.Now(), LastDelivered: time.Now().Add(-time.Hour)}
		}, period)
		mux := http.NewServeMux()
		h.register(mux)
		probes := probeRe.FindAllSubmatch(data, -1)
		if len(probes) != 2 {
			t.Errorf("%s: %d probes with an httpGet path, want 2", path, len(probes))
		}
		for _, m := range probes {
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, string(m[2]), nil))
			if rec.Code != http.StatusOK {
				t.Errorf("%s: %s %s: %d %q", path, m[1], m[2], rec.Code, rec.Body.String())
			}
		}
	}
}

// TestHealthReadsTheDaemonClock: the flusher stamps its status with the
// daemon's clock, so /readyz must measure ages on that clock too, not on
// the real one: a backlog a second old on the daemon's clock is not late,
// however far that clock is from the real time.
func TestHealthReadsTheDaemonClock(t *testing.T) {
	at := time.Unix(1_000_000_000, 0) // long before any real date
	d, err := newDaemon(testConfig("http://127.0.0.1:1", "tagged"),
		options{stderr: &testproc.SafeBuffer{}, hostname: "test-host", now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	d.health.status = func() flusher.Status {
		return flusher.Status{LastFlush: at.Add(-time.Second), LastDelivered: at.Add(-time.Second),
			Pending: 1, OldestPending: at.Add(-time.Second)}
	}
	if p := d.health.deliveryProblem(); p != "" {
		t.Errorf("delivery problem %q, want none: everything is a second old on the daemon's clock", p)
	}
}
