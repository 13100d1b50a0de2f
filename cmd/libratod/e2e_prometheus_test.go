package main

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrapePrometheus GETs url and returns every sample, keyed
// `name{a="x",b="y"}` with the labels sorted, and the type of each family.
func scrapePrometheus(t *testing.T, url string) (map[string]float64, map[string]string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("exposition does not parse: %v", err)
	}
	samples, types := map[string]float64{}, map[string]string{}
	key := func(name string, m *dto.Metric, extra ...string) string {
		labels := extra
		for _, l := range m.GetLabel() {
			labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
		}
		sort.Strings(labels)
		return name + "{" + strings.Join(labels, ",") + "}"
	}
	for name, mf := range mfs {
		types[name] = strings.ToLower(mf.GetType().String())
		for _, m := range mf.GetMetric() {
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				samples[key(name, m)] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				samples[key(name, m)] = m.GetGauge().GetValue()
			case dto.MetricType_SUMMARY:
				for _, q := range m.GetSummary().GetQuantile() {
					samples[key(name, m, fmt.Sprintf("quantile=%q", fmt.Sprint(q.GetQuantile())))] = q.GetValue()
				}
				samples[key(name+"_sum", m)] = m.GetSummary().GetSampleSum()
				samples[key(name+"_count", m)] = float64(m.GetSummary().GetSampleCount())
			default:
				t.Errorf("unexpected type %s of %s", mf.GetType(), name)
			}
		}
	}
	return samples, types
}

// TestEndToEndPrometheus sends lines over two flushes and scrapes the
// exposition server: the Librato path and the exposition see the same
// periods.
func TestEndToEndPrometheus(t *testing.T) {
	fake := newFakeLibrato(t)
	cfg := testConfig(fake.URL, "tagged")
	cfg.Prometheus.Listen = "127.0.0.1:0"
	cfg.Log.Level = "info" // for the start line
	d, stop := startDaemon(t, cfg)
	if d.expoLn == nil {
		t.Fatal("no exposition server")
	}
	url := "http://" + d.expoLn.Addr().String() + "/metrics"
	flush := func() {
		d.flusher.Flush(context.Background(), d.flusher.PeriodStart(time.Now()))
	}

	sendUDP(t, d.lst.UDPAddr(), "hits:1|c\nhits:2|c|@0.5\nlat:10|ms\nlat:20|ms\nlat:30|ms\nlat:40|ms\n"+
		"temp:20|g\nusers:alice|s\nusers:bob|s\nreq.count:1|c|#region:eu,env:prod\n")
	waitSeen(t, d, 10)
	flush()
	sendUDP(t, d.lst.UDPAddr(), "hits:4|c\ntemp:7|g\n")
	waitSeen(t, d, 12)
	flush()

	got, types := scrapePrometheus(t, url)
	want := map[string]float64{
		`hits{env="test"}`:                  1 + 4 + 4,
		`temp{env="test"}`:                  7,
		`users{env="test"}`:                 2,
		`req_count{env="prod",region="eu"}`: 1,
		`lat{env="test",quantile="0.5"}`:    20,
		`lat{env="test",quantile="0.995"}`:  40,
		`lat_sum{env="test"}`:               100,
		`lat_count{env="test"}`:             4,
	}
	if !maps.Equal(got, want) {
		t.Errorf("scraped\n%v\nwant\n%v", got, want)
	}
	wantTypes := map[string]string{"hits": "counter", "temp": "gauge", "users": "gauge", "req_count": "counter", "lat": "summary"}
	if !maps.Equal(types, wantTypes) {
		t.Errorf("types %v, want %v", types, wantTypes)
	}
	if n := gathered(t, d, "libratod_prometheus_series"); n != 5 {
		t.Errorf("libratod_prometheus_series = %v, want 5", n)
	}
	logs := stop()

	// Librato got the same two periods.
	hits := 0.0
	for _, r := range fake.requests() {
		ms, _ := r.Body["measurements"].([]any)
		for _, m := range ms {
			if m := m.(map[string]any); m["name"] == "hits" {
				hits += m["value"].(float64)
			}
		}
	}
	if hits != 9 {
		t.Errorf("Librato got hits %v, want 9", hits)
	}
	if !strings.Contains(logs, `"prometheus":"127.0.0.1:`) {
		t.Errorf("the start line does not give the exposition address:\n%s", logs)
	}
}

// TestPrometheusOffByDefault checks that no exposition runs unless
// prometheus.listen is set.
func TestPrometheusOffByDefault(t *testing.T) {
	fake := newFakeLibrato(t)
	d, stop := startDaemon(t, testConfig(fake.URL, "tagged"))
	defer stop()
	if d.expo != nil || d.expoLn != nil || len(d.parts.observers) != 0 {
		t.Errorf("exposition %v, listener %v, observers %v: want none", d.expo, d.expoLn, d.parts.observers)
	}
	if n := gathered(t, d, "libratod_prometheus_series"); n != -1 {
		t.Errorf("libratod_prometheus_series is registered (%v) with the exposition off", n)
	}
}

// gathered returns the value of the self-metric name, summed over its
// series, or -1 when it is not registered.
func gathered(t *testing.T, d *daemon, name string) float64 {
	t.Helper()
	mfs, err := d.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var v float64
		for _, m := range mf.GetMetric() {
			v += m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
		return v
	}
	return -1
}
