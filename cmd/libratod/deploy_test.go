package main

// Tests of the operator's monitoring kit against the daemon: the Prometheus
// alert rules (deploy/prometheus) and the Grafana dashboard (deploy/grafana)
// query only metrics libratod exports. The kit's other tests (runbooks,
// promtool) are in package ops.

import (
	"encoding/json"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/libratod/libratod/internal/testproc"
)

const (
	rulesPath     = "../../deploy/prometheus/libratod.rules.yml"
	dashboardPath = "../../deploy/grafana/libratod.json"
)

// exportedMetrics returns every series name libratod's /metrics can show:
// what a daemon's registry gathers (with the _bucket, _sum and _count lines
// of histograms and summaries), the Go and process collectors included, and
// the libratod_* names in the code (a labelled metric shows only once it has
// a child, so the registry alone misses some), plus Prometheus' own "up".
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{"up": true}
	d, err := newDaemon(testConfig("http://127.0.0.1:1", "tagged"), options{stderr: &testproc.SafeBuffer{}, hostname: "test-host"})
	if err != nil {
		t.Fatal(err)
	}
	mfs, err := d.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		addMetricName(names, mf.GetName(), mf.GetType())
	}
	if !names["process_resident_memory_bytes"] || !names["libratod_flush_duration_seconds_bucket"] {
		t.Fatalf("the registry lacks process or histogram series: %v", names)
	}
	for name := range codeMetricNames(t) {
		names[name] = true
	}
	return names
}

// addMetricName adds name to names, with the lines a histogram or summary of
// that name is exposed as.
func addMetricName(names map[string]bool, name string, typ dto.MetricType) {
	names[name] = true
	switch typ {
	case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
		names[name+"_bucket"], names[name+"_sum"], names[name+"_count"] = true, true, true
	case dto.MetricType_SUMMARY:
		names[name+"_sum"], names[name+"_count"] = true, true
	}
}

// selectorNames returns the metric names a PromQL expression selects: every
// identifier followed by a label matcher, and every libratod_* name.
func selectorNames(expr string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{`).FindAllStringSubmatch(expr, -1) {
		out = append(out, m[1])
	}
	return append(out, regexp.MustCompile(`\blibratod_[a-z0-9_]+`).FindAllString(expr, -1)...)
}

// dashboardExprs returns every query of the dashboard: panel targets and
// template variables.
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Type       string `json:"type"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal([]byte(readDeployFile(t, dashboardPath)), &dash); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	var exprs []string
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			if tg.Expr == "" {
				t.Errorf("panel %q has a target without a query", p.Title)
			}
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		if v.Type == "query" {
			exprs = append(exprs, v.Definition)
		}
	}
	return exprs
}

// ruleExprs returns the expr of every rule, as written (line-based: the
// file's layout is `expr: ...` or `expr: |` and an indented block).
func ruleExprs(t *testing.T) []string {
	t.Helper()
	var exprs []string
	lines := strings.Split(readDeployFile(t, rulesPath), "\n")
	for i := 0; i < len(lines); i++ {
		trimmed := strings.TrimSpace(lines[i])
		rest, ok := strings.CutPrefix(trimmed, "expr:")
		if !ok {
			continue
		}
		rest = strings.TrimSpace(rest)
		if rest != "|" {
			exprs = append(exprs, rest)
			continue
		}
		indent := len(lines[i]) - len(strings.TrimLeft(lines[i], " "))
		var block []string
		for i+1 < len(lines) && (strings.TrimSpace(lines[i+1]) == "" || len(lines[i+1])-len(strings.TrimLeft(lines[i+1], " ")) > indent) {
			i++
			block = append(block, lines[i])
		}
		exprs = append(exprs, strings.Join(block, "\n"))
	}
	return exprs
}

func TestDeployQueriesUseExportedMetrics(t *testing.T) {
	exported := exportedMetrics(t)
	for file, exprs := range map[string][]string{dashboardPath: dashboardExprs(t), rulesPath: ruleExprs(t)} {
		if len(exprs) < 8 {
			t.Errorf("%s: only %d queries found: the parse is broken", file, len(exprs))
		}
		for _, e := range exprs {
			names := selectorNames(e)
			if len(names) == 0 {
				t.Errorf("%s: no metric in %q", file, e)
			}
			for _, n := range names {
				if !exported[n] {
					t.Errorf("%s: %s is not a metric libratod exports (in %q)", file, n, e)
				}
			}
		}
	}
}

// TestSelectorNames checks the name extraction the test above relies on.
func TestSelectorNames(t *testing.T) {
	got := selectorNames(`sum by (instance) (rate(libratod_lines_invalid_total{job="x"}[5m])) / up{job=~"$job"} and libratod_backlog_measurements > 0`)
	sort.Strings(got)
	want := []string{"libratod_backlog_measurements", "libratod_lines_invalid_total", "libratod_lines_invalid_total", "up"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("got %q, want %q", got, want)
	}
}

// readDeployFile returns the text of a file of the monitoring kit.
func readDeployFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
