package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	metricsv1 "go.opentelemetry.io/proto/otlp/metrics/v1"

	"github.com/libratod/libratod/internal/otelcoltest"
)

// collectorConfig is what the tool's config for an OpenTelemetry Collector
// (libratod-otelcol: the contrib StatsD receiver, the OTLP receiver and the
// file exporter) says.
type collectorConfig struct {
	statsd string        // the StatsD receiver's UDP address
	otlp   string        // the OTLP/HTTP receiver's address: only to see the collector is up
	out    string        // the file exporter's file (OTLP/JSON, a line per export)
	period time.Duration // the StatsD receiver's aggregation_interval
}

// collectorFlush is the file exporter's flush interval.
const collectorFlush = 100 * time.Millisecond

// yaml returns the collector's configuration. Counters are monotonic delta
// Sums (is_monotonic_counter), as libratod sends them; timers and
// histograms are delta exponential histograms, as libratod's default
// timers_as; no metric_type attribute is added (enable_metric_type false).
func (c collectorConfig) yaml() string {
	var b strings.Builder
	fmt.Fprintf(&b, "receivers:\n  otlp:\n    protocols:\n      http:\n        endpoint: %q\n", c.otlp)
	fmt.Fprintf(&b, "  statsd:\n    endpoint: %q\n    transport: udp\n    aggregation_interval: %s\n", c.statsd, c.period)
	b.WriteString("    enable_metric_type: false\n    is_monotonic_counter: true\n" +
		"    timer_histogram_mapping:\n" +
		"      - statsd_type: timing\n        observer_type: histogram\n" +
		"      - statsd_type: histogram\n        observer_type: histogram\n")
	fmt.Fprintf(&b, "exporters:\n  file:\n    path: %q\n    format: json\n    flush_interval: %s\n", c.out, collectorFlush)
	b.WriteString("service:\n  telemetry:\n    metrics:\n      level: none\n    logs:\n      level: warn\n")
	b.WriteString("  pipelines:\n    metrics:\n      receivers: [otlp, statsd]\n      exporters: [file]\n")
	return b.String()
}

// collectorOut is the name of the file exporter's file in the collector's
// temporary directory.
const collectorOut = "out.jsonl"

// startCollector writes a config for the collector at path and starts it,
// returning once its OTLP receiver accepts TCP connections; d.udp is its
// StatsD receiver's address.
func startCollector(ctx context.Context, path string, period time.Duration) (*daemonProc, error) {
	up, tp, err := freePorts()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "statsd-load-otelcol-")
	if err != nil {
		return nil, fmt.Errorf("temporary directory: %w", err)
	}
	cfg := collectorConfig{
		statsd: net.JoinHostPort("127.0.0.1", strconv.Itoa(up)),
		otlp:   net.JoinHostPort("127.0.0.1", strconv.Itoa(tp)),
		out:    filepath.Join(dir, collectorOut),
		period: period,
	}
	cfgPath := filepath.Join(dir, "otelcol.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg.yaml()), 0o600); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("writing the collector config: %w", err)
	}
	d := &daemonProc{dir: dir, udp: cfg.statsd, tcp: cfg.otlp}
	d, err = d.launch(ctx, exec.Command(path, "--config", cfgPath))
	if err != nil {
		return nil, err
	}
	// The receivers start one after the other: give the StatsD one a
	// moment after the OTLP one listens.
	if err := sleepCtx(ctx, 300*time.Millisecond); err != nil {
		d.kill()
		return nil, err
	}
	return d, nil
}

// readExports reads what the collector in d exported to its file (call
// it after the collector stopped, which flushes the file).
func (d *daemonProc) readExports() ([]*metricsv1.MetricsData, error) {
	b, err := os.ReadFile(filepath.Join(d.dir, collectorOut))
	if err != nil {
		return nil, fmt.Errorf("the collector's output: %w", err)
	}
	md, err := otelcoltest.ParseLines(b)
	if err != nil {
		return nil, fmt.Errorf("the collector's output: %w", err)
	}
	return md, nil
}
