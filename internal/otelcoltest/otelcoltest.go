// Package otelcoltest runs a real OpenTelemetry Collector for the tests:
// the libratod-otelcol binary that `scripts/tools otelcol` builds from the
// upstream modules (tools/otelcol), with an OTLP/HTTP receiver on a free
// loopback port and a file exporter writing what it received as OTLP JSON
// lines into the test's temporary directory, read back with the upstream
// protobuf types. It is used only by tests.
package otelcoltest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/libratod/libratod/internal/testproc"
	metricsv1 "go.opentelemetry.io/proto/otlp/metrics/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// Binary is the name of the collector binary looked up on PATH; the
// environment variable EnvBinary, when set, names it instead.
const (
	Binary    = "libratod-otelcol"
	EnvBinary = "LIBRATOD_OTELCOL"
)

// Bounds of the harness's waits.
const (
	// ReadyTimeout bounds the wait for a started collector's receiver.
	ReadyTimeout = 30 * time.Second
	// StopTimeout bounds the wait for a collector to exit after SIGTERM
	// before it is killed.
	StopTimeout = 20 * time.Second
	// pollInterval is how often readiness and WaitFor conditions are
	// polled.
	pollInterval = 20 * time.Millisecond
	// startAttempts bounds the first Start's tries with a new port when
	// the one picked was taken before the collector bound it.
	startAttempts = 3
)

// Config says what a collector runs beside the OTLP/HTTP receiver and the
// file exporter. The zero value is that pair alone.
type Config struct {
	// StatsD, when set, is a loopback UDP address ("127.0.0.1:port") on
	// which the Collector's own StatsD receiver listens, feeding the same
	// file exporter.
	StatsD string
	// StatsDInterval is the StatsD receiver's aggregation interval; zero
	// is one second.
	StatsDInterval time.Duration
	// FlushInterval is the file exporter's flush interval; zero is 100ms.
	FlushInterval time.Duration
}

// Collector is one collector process run for a test, or none between
// Stop and Start. Its methods are called from the test's goroutine.
type Collector struct {
	t    testing.TB
	bin  string
	dir  string
	cfg  Config
	port string

	// runs counts the processes started; each writes its own output
	// file, out-<run>.jsonl, so that a restart loses nothing.
	runs int
	cmd  *exec.Cmd
	// exited is closed when the running process has exited and waitErr
	// is set.
	exited  chan struct{}
	waitErr error
	log     *testproc.SafeBuffer
}

// Start starts a collector with cfg (none: the zero Config) and stops it
// when the test ends. When the binary is missing it skips the test, or
// fails it if LIBRATOD_REQUIRE_TOOLS=1.
func Start(t testing.TB, cfg ...Config) *Collector {
	t.Helper()
	c := &Collector{t: t, bin: lookBinary(t), dir: t.TempDir()}
	if len(cfg) > 1 {
		t.Fatal("otelcoltest.Start: at most one Config")
	}
	if len(cfg) == 1 {
		c.cfg = cfg[0]
	}
	t.Cleanup(c.Stop)
	var err error
	for range startAttempts {
		c.port = testproc.FreePort(t)
		if err = c.start(); err == nil || !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	if err != nil {
		t.Fatalf("otelcoltest: %v", err)
	}
	return c
}

// lookBinary returns the collector binary's path, or skips the test (fails
// it under LIBRATOD_REQUIRE_TOOLS=1) saying how to build it.
func lookBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(EnvBinary); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("otelcoltest: %s=%s: %v", EnvBinary, p, err)
		}
		return p
	}
	p, err := exec.LookPath(Binary)
	if err == nil {
		return p
	}
	msg := Binary + " is not on PATH (nor named by " + EnvBinary + "): run " +
		"`export PATH=\"$(scripts/tools otelcol):$PATH\"` first"
	if os.Getenv("LIBRATOD_REQUIRE_TOOLS") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// Endpoint is the OTLP/HTTP receiver's base URL, http://127.0.0.1:port;
// metrics are posted to Endpoint()+"/v1/metrics". It stays the same
// across Stop and Start.
func (c *Collector) Endpoint() string {
	return "http://" + net.JoinHostPort("127.0.0.1", c.port)
}

// Start starts the collector again after Stop, on the same port; it fails
// the test if the collector is running or does not come up.
func (c *Collector) Start() {
	c.t.Helper()
	if c.cmd != nil {
		c.t.Fatal("otelcoltest: Start while the collector runs")
	}
	if err := c.start(); err != nil {
		c.t.Fatalf("otelcoltest: %v", err)
	}
}

// start writes the next run's configuration, starts the process and waits
// until its receiver answers or it exits.
func (c *Collector) start() error {
	c.runs++
	conf := filepath.Join(c.dir, fmt.Sprintf("config-%d.yaml", c.runs))
	out := filepath.Join(c.dir, fmt.Sprintf("out-%d.jsonl", c.runs))
	if err := os.WriteFile(conf, []byte(c.config(out)), 0o600); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	c.log = &testproc.SafeBuffer{}
	cmd := exec.Command(c.bin, "--config", conf)
	cmd.Stdout, cmd.Stderr = c.log, c.log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", c.bin, err)
	}
	c.cmd, c.exited = cmd, make(chan struct{})
	go func(exited chan struct{}) {
		c.waitErr = cmd.Wait()
		close(exited)
	}(c.exited)
	if err := c.waitReady(); err != nil {
		_ = c.stop()
		return fmt.Errorf("collector on port %s: %w; its output:\n%s", c.port, err, c.log.String())
	}
	return nil
}

// waitReady polls the receiver until it answers any HTTP response, the
// process exits, or ReadyTimeout passes.
func (c *Collector) waitReady() error {
	client := &http.Client{Timeout: time.Second}
	url := c.Endpoint() + "/v1/metrics"
	deadline := time.Now().Add(ReadyTimeout)
	for {
		select {
		case <-c.exited:
			return fmt.Errorf("exited before its receiver answered: %v", c.waitErr)
		default:
		}
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("receiver did not answer within %v: %w", ReadyTimeout, err)
		}
		time.Sleep(pollInterval)
	}
}

// Stop stops the running collector (SIGTERM, then SIGKILL after
// StopTimeout), which flushes its file exporter first; it does nothing
// when none runs. It fails the test if the collector had to be killed or
// exited with an error.
func (c *Collector) Stop() {
	c.t.Helper()
	if err := c.stop(); err != nil {
		c.t.Errorf("otelcoltest: %v; its output:\n%s", err, c.Log())
	}
}

// stop stops the running process, if any, and says how it ended when
// not well.
func (c *Collector) stop() error {
	if c.cmd == nil {
		return nil
	}
	cmd := c.cmd
	c.cmd = nil
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(StopTimeout):
		_ = cmd.Process.Kill()
		<-c.exited
		return fmt.Errorf("collector did not exit within %v of SIGTERM", StopTimeout)
	}
	if c.waitErr != nil && !terminated(c.waitErr) {
		return fmt.Errorf("collector exited: %w", c.waitErr)
	}
	return nil
}

// terminated reports whether err says the process ended on the SIGTERM it
// was sent: the collector installs its handler a moment after its receiver
// answers, so a Stop right after a Start may end it that way (nothing was
// received to flush then; a loss later would show in the test's counts).
func terminated(err error) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM
}

// Log returns what the running or last collector process wrote to its
// standard output and error.
func (c *Collector) Log() string {
	if c.log == nil {
		return ""
	}
	return c.log.String()
}

// Metrics returns everything the file exporter has written so far, over
// all runs, one MetricsData for each export in the order written. A last
// line not yet written whole is left for a later call.
func (c *Collector) Metrics() ([]*metricsv1.MetricsData, error) {
	var all []*metricsv1.MetricsData
	for run := 1; run <= c.runs; run++ {
		path := filepath.Join(c.dir, fmt.Sprintf("out-%d.jsonl", run))
		b, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read exporter output: %w", err)
		}
		md, err := ParseLines(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Base(path), err)
		}
		all = append(all, md...)
	}
	return all, nil
}

// ParseLines parses each whole line of b as OTLP/JSON MetricsData (what
// the file exporter writes); a last line without its newline, still being
// written, is left for the next call.
func ParseLines(b []byte) ([]*metricsv1.MetricsData, error) {
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[:i+1]
	} else {
		return nil, nil
	}
	var all []*metricsv1.MetricsData
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, len(b)+1)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		md := &metricsv1.MetricsData{}
		if err := protojson.Unmarshal(line, md); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		all = append(all, md)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("scan: %w", err)
	}
	return all, nil
}

// WaitFor polls Metrics until cond holds of what was written, at most
// timeout, and returns that; it fails the test when Metrics fails or cond
// never holds.
func (c *Collector) WaitFor(t testing.TB, cond func([]*metricsv1.MetricsData) bool, timeout time.Duration) []*metricsv1.MetricsData {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		md, err := c.Metrics()
		if err != nil {
			t.Fatalf("otelcoltest: %v", err)
		}
		if cond(md) {
			return md
		}
		if time.Now().After(deadline) {
			t.Fatalf("otelcoltest: condition not met within %v; %d exports written; collector output:\n%s",
				timeout, len(md), c.Log())
		}
		time.Sleep(pollInterval)
	}
}

// Named returns every metric called name in md, in the order written.
func Named(md []*metricsv1.MetricsData, name string) []*metricsv1.Metric {
	var found []*metricsv1.Metric
	for _, d := range md {
		for _, rm := range d.GetResourceMetrics() {
			for _, sm := range rm.GetScopeMetrics() {
				for _, m := range sm.GetMetrics() {
					if m.GetName() == name {
						found = append(found, m)
					}
				}
			}
		}
	}
	return found
}

// config returns the collector's configuration for a run writing to out.
func (c *Collector) config(out string) string {
	flush := c.cfg.FlushInterval
	if flush <= 0 {
		flush = 100 * time.Millisecond
	}
	var b strings.Builder
	b.WriteString("receivers:\n")
	fmt.Fprintf(&b, "  otlp:\n    protocols:\n      http:\n        endpoint: %q\n",
		net.JoinHostPort("127.0.0.1", c.port))
	receivers := "[otlp]"
	if c.cfg.StatsD != "" {
		interval := c.cfg.StatsDInterval
		if interval <= 0 {
			interval = time.Second
		}
		fmt.Fprintf(&b, "  statsd:\n    endpoint: %q\n    transport: udp\n"+
			"    aggregation_interval: %s\n", c.cfg.StatsD, interval)
		receivers = "[otlp, statsd]"
	}
	fmt.Fprintf(&b, "exporters:\n  file:\n    path: %q\n    format: json\n"+
		"    flush_interval: %s\n", out, flush)
	// The collector's own telemetry: no metrics (so no port of its own:
	// several collectors run side by side), warnings and errors logged.
	fmt.Fprintf(&b, "service:\n  telemetry:\n    metrics:\n      level: none\n"+
		"    logs:\n      level: warn\n")
	fmt.Fprintf(&b, "  pipelines:\n    metrics:\n      receivers: %s\n"+
		"      exporters: [file]\n", receivers)
	return b.String()
}
