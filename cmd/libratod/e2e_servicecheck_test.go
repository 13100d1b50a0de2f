package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	metricsv1 "go.opentelemetry.io/proto/otlp/metrics/v1"

	"github.com/libratod/libratod/cmd/libratod/internal/config"
	"github.com/libratod/libratod/internal/eventually"
	"github.com/libratod/libratod/internal/otelcoltest"
	"github.com/libratod/libratod/internal/testproc"
)

// serviceChecks are DogStatsD service checks as datadog-go writes them:
// the same check three times (the last status wins), once with a host,
// tags, a message and a timestamp, a name that needs sanitizing, and a
// malformed one.
const serviceChecks = "_sc|db.up|0|#role:primary\n" +
	"_sc|db.up|2|d:1700000000|h:db-1|#role:primary|m:connection refused\n" +
	"_sc|db.up|1|#role:primary\n" +
	"_sc|queue/ok|3\n" +
	"_sc|broken|7\n"

// TestEndToEndServiceChecksTagged: on the tagged API each service check is
// a gauge named after it, its status the value, with its tags merged with
// the global ones and its h: host as the "host" tag.
func TestEndToEndServiceChecksTagged(t *testing.T) {
	fake := newFakeLibrato(t)
	d, stop := startDaemon(t, testConfig(fake.URL, "tagged"))
	sendUDP(t, d.lst.UDPAddr(), serviceChecks+"hits:1|c\n")
	waitSeen(t, d, 6)
	stop()

	checkMeasurements(t, measurementsByID(t, fake), map[string]map[string]float64{
		"db.up env=test,host=test-host,role=primary": {"value": 1},
		"db.up env=test,host=db-1,role=primary":      {"value": 2},
		"queue_ok":                                   {"value": 3},
		"hits":                                       {"value": 1},
	})
	if n := counterValue(t, d, "libratod_lines_converted_total", "service_check"); n != 4 {
		t.Errorf("converted{service_check} = %v, want 4", n)
	}
	if n := counterValue(t, d, "libratod_lines_unsupported_total", "service_check"); n != 0 {
		t.Errorf("unsupported{service_check} = %v, want 0", n)
	}
	if n := counterValue(t, d, "libratod_lines_invalid_total", "bad_service_check"); n != 1 {
		t.Errorf("invalid{bad_service_check} = %v, want 1", n)
	}
}

// TestEndToEndServiceChecksLegacy: on the legacy API the h: host is the
// gauge's source; the other tags are left out, as for any line.
func TestEndToEndServiceChecksLegacy(t *testing.T) {
	fake := newFakeLibrato(t)
	cfg := testConfig(fake.URL, "legacy")
	cfg.Aggregate.Percentiles = nil
	d, stop := startDaemon(t, cfg)
	sendUDP(t, d.lst.UDPAddr(), serviceChecks)
	waitSeen(t, d, 5)
	stop()

	reqs := fake.requests()
	if len(reqs) != 1 || reqs[0].Path != "/v1/metrics" {
		t.Fatalf("requests %+v, want one to /v1/metrics", reqs)
	}
	want := `{
	 "source": "test-host",
	 "gauges": [
	  {"name": "db.up", "value": 1},
	  {"name": "db.up", "value": 2, "source": "db-1"},
	  {"name": "queue_ok", "value": 3}
	 ]
	}`
	if got, want := canonical(t, d, reqs[0].Body, "measure_time"), reindent(t, want); got != want {
		t.Errorf("payload:\n%s\nwant:\n%s", got, want)
	}
}

// TestEndToEndServiceChecksOff: with aggregate.service_checks = false
// nothing of a service check is sent; each is counted unsupported.
func TestEndToEndServiceChecksOff(t *testing.T) {
	fake := newFakeLibrato(t)
	cfg := testConfig(fake.URL, "tagged")
	cfg.Aggregate.ServiceChecks = false
	d, stop := startDaemon(t, cfg)
	sendUDP(t, d.lst.UDPAddr(), serviceChecks+"hits:1|c\n")
	waitSeen(t, d, 6)
	stop()

	checkMeasurements(t, measurementsByID(t, fake), map[string]map[string]float64{"hits": {"value": 1}})
	if n := counterValue(t, d, "libratod_lines_unsupported_total", "service_check"); n != 4 {
		t.Errorf("unsupported{service_check} = %v, want 4", n)
	}
	if n := counterValue(t, d, "libratod_lines_converted_total", "service_check"); n != 0 {
		t.Errorf("converted{service_check} = %v, want 0", n)
	}
}

// TestOTLPServiceChecks: through a real OpenTelemetry Collector a service
// check is a Gauge whose point attributes are its tags and its h: host as
// "host"; the resource's host.name stays libratod's host.
func TestOTLPServiceChecks(t *testing.T) {
	col := otelcoltest.Start(t)
	fake := newFakeLibrato(t)
	d, stop := startDaemon(t, otlpTestConfig(fake.URL, col))
	sendUDP(t, d.lst.UDPAddr(), serviceChecks)
	waitSeen(t, d, 5)
	stop()
	mds := col.WaitFor(t, func(mds []*metricsv1.MetricsData) bool { return len(otlpPoints(mds)) >= 3 }, 20*time.Second)
	got := otlpPoints(mds)
	for key, want := range map[string]float64{
		"db.up{env=test,role=primary}":           1,
		"db.up{env=test,host=db-1,role=primary}": 2,
		"queue_ok{env=test}":                     3,
	} {
		p := got[key]
		if p == nil {
			t.Errorf("%s not received; got %v", key, keysOf(got))
			continue
		}
		if p.kind != "gauge" || p.value != want || p.points != 1 || !p.hosts["test-host"] || len(p.hosts) != 1 {
			t.Errorf("%s: %+v, want one gauge point %v from host.name test-host", key, *p, want)
		}
	}
	if len(got) != 3 {
		t.Errorf("got %v, want the 3 service check gauges", keysOf(got))
	}
}

// TestServiceChecksReload: aggregate.service_checks applies at a reload
// (SIGHUP), both ways.
func TestServiceChecksReload(t *testing.T) {
	fake := newFakeLibrato(t)
	path := filepath.Join(t.TempDir(), "libratod.toml")
	write := func(on bool) {
		t.Helper()
		text := fmt.Sprintf("[listen]\nudp = \"127.0.0.1:0\"\ntcp = \"\"\n[aggregate]\nperiod = \"1h\"\nservice_checks = %t\n"+
			"[librato]\nurl = %q\ntoken = %q\n[metrics]\nlisten = \"\"\n[log]\nlevel = \"info\"\n", on, fake.URL, testToken)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(false)
	cfg, err := config.Load(path, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	logs := &testproc.SafeBuffer{}
	d, stop := startDaemonWith(t, cfg, options{configPath: path, getenv: noEnv}, logs)
	reload := func(on bool, n int) {
		t.Helper()
		write(on)
		d.hup <- syscall.SIGHUP
		eventually.Require(t, 5*time.Second, func() bool {
			return strings.Count(logs.String(), "configuration reloaded") == n
		}, "reload %d in the logs:\n%s", n, logs)
	}
	sendUDP(t, d.lst.UDPAddr(), "_sc|off.before|1\n")
	waitSeen(t, d, 1)
	reload(true, 1)
	sendUDP(t, d.lst.UDPAddr(), "_sc|on|2\n")
	waitSeen(t, d, 2)
	reload(false, 2)
	sendUDP(t, d.lst.UDPAddr(), "_sc|off.after|3\n")
	waitSeen(t, d, 3)
	stop()

	checkMeasurements(t, measurementsByID(t, fake), map[string]map[string]float64{"on": {"value": 2}})
	if n := counterValue(t, d, "libratod_lines_unsupported_total", "service_check"); n != 2 {
		t.Errorf("unsupported{service_check} = %v, want 2", n)
	}
}
