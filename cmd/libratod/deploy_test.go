package main

// Tests of the operator's monitoring kit: the Prometheus alert rules
// (deploy/prometheus) and the Grafana dashboard (deploy/grafana) query only
// metrics libratod exports, every alert has a runbook in the README, and the
// rules pass their promtool unit tests.

import (
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
)

const (
	rulesPath     = "../../deploy/prometheus/libratod.rules.yml"
	rulesTestPath = "../../deploy/prometheus/libratod.rules.test.yml"
	dashboardPath = "../../deploy/grafana/libratod.json"
)

// requireTools says whether a missing tool fails a test instead of skipping
// it: scripts/test sets LIBRATOD_REQUIRE_TOOLS=1 after installing them.
func requireTools() bool { return os.Getenv("LIBRATOD_REQUIRE_TOOLS") == "1" }

// lookTool returns the path of a tool on PATH, or skips (fails under
// LIBRATOD_REQUIRE_TOOLS=1) saying how to install it.
func lookTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	msg := name + " is not on PATH: run `export PATH=\"$(scripts/tools):$PATH\"` first"
	if requireTools() {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// exportedMetrics returns every series name libratod's /metrics can show:
// what a daemon's registry gathers (with the _bucket, _sum and _count lines
// of histograms and summaries), the Go and process collectors included, and
// the libratod_* names in the code (a labelled metric shows only once it has
// a child, so the registry alone misses some), plus Prometheus' own "up".
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{"up": true}
	d, err := newDaemon(testConfig("http://127.0.0.1:1", "tagged"), options{stderr: &safeBuffer{}, hostname: "test-host"})
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
	code := regexp.MustCompile(`"(libratod_[a-z0-9_]+)"`)
	err = filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != "../.." && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || strings.Contains(path, "statsd-load") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range code.FindAllStringSubmatch(string(src), -1) {
			names[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
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
	if err := json.Unmarshal([]byte(readFile(t, dashboardPath)), &dash); err != nil {
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
	lines := strings.Split(readFile(t, rulesPath), "\n")
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

// TestAlertsHaveRunbooks checks every alert has a severity, a summary, a
// description and a runbook_url whose anchor is a README heading of the
// alert's name.
func TestAlertsHaveRunbooks(t *testing.T) {
	readme := readFile(t, readmePath)
	blocks := strings.Split(readFile(t, rulesPath), "- alert: ")[1:]
	if len(blocks) < 8 {
		t.Fatalf("only %d alerts", len(blocks))
	}
	want := []string{"LibratodDown", "LibratodDeliveryFailing", "LibratodBacklogGrowing", "LibratodDataDropped",
		"LibratodBadLinesSurging", "LibratodUDPKernelDrops", "LibratodMaxSeriesReached"}
	seen := map[string]bool{}
	for _, b := range blocks {
		name, _, _ := strings.Cut(b, "\n")
		name = strings.TrimSpace(name)
		seen[name] = true
		for _, key := range []string{"severity: ", "summary: ", "description: "} {
			if !strings.Contains(b, key) {
				t.Errorf("%s has no %s", name, strings.TrimSpace(key))
			}
		}
		anchor := strings.ToLower(name)
		if !strings.Contains(b, `runbook_url: "https://github.com/libratod/libratod/blob/main/README.md#`+anchor+`"`) {
			t.Errorf("%s: runbook_url is not the README's #%s", name, anchor)
		}
		if !strings.Contains(readme, "\n#### "+name+"\n") {
			t.Errorf("README has no runbook heading #### %s", name)
		}
	}
	for _, n := range want {
		if !seen[n] {
			t.Errorf("no alert %s", n)
		}
	}
}

// TestAlertRulesPromtool runs promtool's syntax check and the rules' unit
// tests (deploy/prometheus/libratod.rules.test.yml).
func TestAlertRulesPromtool(t *testing.T) {
	promtool := lookTool(t, "promtool")
	for _, args := range [][]string{{"check", "rules", filepath.Base(rulesPath)}, {"test", "rules", filepath.Base(rulesTestPath)}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = filepath.Dir(rulesPath)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
