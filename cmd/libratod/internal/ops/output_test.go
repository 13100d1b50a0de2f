package ops

// Tests that the alerts and the dashboard keep libratod's outputs apart:
// every delivery self-metric carries an "output" label ("librato",
// "otlp", or "" for what is dropped before any output), and a query that
// adds the outputs together would hide one output's failure behind the
// other's success.

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// deliveryMetric matches the self-metrics that carry the output label.
var deliveryMetric = regexp.MustCompile(`\blibratod_(measurements_sent_total|requests_total|retries_total|` +
	`partial_failures_total|measurements_dropped_total|backlog_measurements|type_conflict_names|` +
	`request_duration_seconds\w*|flush_duration_seconds\w*|ratelimit_remaining|spool_\w+)\b`)

// aggregation matches the start of a PromQL aggregation: the operator and
// a grouping clause before its argument, if any, up to the argument's
// opening parenthesis.
var aggregation = regexp.MustCompile(`\b(sum|avg|min|max|count|group|stddev|stdvar|topk|bottomk|quantile|count_values)` +
	`\s*(?:(by|without)\s*\(([^)]*)\))?\s*\(`)

// trailingGrouping matches a grouping clause written after the argument.
var trailingGrouping = regexp.MustCompile(`^\s*(by|without)\s*\(([^)]*)\)`)

// closing returns the index of the parenthesis closing the one at open,
// or -1.
func closing(s string, open int) int {
	depth := 0
	for i := open; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// outputDroppers returns the aggregations in expr whose argument selects
// a delivery metric and whose result loses the output label: no grouping,
// a "by" without output, or a "without" that names it.
func outputDroppers(expr string) []string {
	var bad []string
	for _, m := range aggregation.FindAllStringSubmatchIndex(expr, -1) {
		open := m[1] - 1
		end := closing(expr, open)
		if end < 0 {
			bad = append(bad, expr[m[0]:]+" (unbalanced)")
			continue
		}
		if !deliveryMetric.MatchString(expr[open:end]) {
			continue
		}
		clause, labels := "", ""
		if m[4] >= 0 {
			clause, labels = expr[m[4]:m[5]], expr[m[6]:m[7]]
		} else if t := trailingGrouping.FindStringSubmatch(expr[end+1:]); t != nil {
			clause, labels = t[1], t[2]
		}
		var names []string
		for _, l := range strings.Split(labels, ",") {
			names = append(names, strings.TrimSpace(l))
		}
		keeps := (clause == "by" && slices.Contains(names, "output")) ||
			(clause == "without" && !slices.Contains(names, "output"))
		if !keeps {
			bad = append(bad, expr[m[0]:end+1])
		}
	}
	return bad
}

// TestOutputDroppers checks the check below on queries that keep or lose
// the output label.
func TestOutputDroppers(t *testing.T) {
	for expr, want := range map[string]int{
		`sum by (instance, output) (rate(libratod_requests_total[5m]))`:                                   0,
		`sum(rate(libratod_requests_total[5m])) by (output, instance)`:                                    0,
		`sum without (status) (rate(libratod_requests_total[5m]))`:                                        0,
		`histogram_quantile(0.9, sum by (le, output) (rate(libratod_flush_duration_seconds_bucket[5m])))`: 0,
		`sum by (instance) (rate(libratod_lines_received_total[5m]))`:                                     0,
		`max_over_time(libratod_backlog_measurements[5m])`:                                                0,
		`sum by (instance) (rate(libratod_requests_total[5m]))`:                                           1,
		`sum(rate(libratod_measurements_sent_total[5m]))`:                                                 1,
		`sum without (output) (libratod_spool_bytes)`:                                                     1,
		`sum(rate(libratod_retries_total[5m])) by (instance)`:                                             1,
		`histogram_quantile(0.9, sum by (le) (rate(libratod_request_duration_seconds_bucket[5m])))`:       1,
		`sum by (instance) (sum by (instance, output) (libratod_backlog_measurements))`:                   1,
		`min by (instance, limit) (libratod_ratelimit_remaining)`:                                         1,
	} {
		if got := outputDroppers(expr); len(got) != want {
			t.Errorf("%s: %d aggregations lose output (%q), want %d", expr, len(got), got, want)
		}
	}
}

// dashboardTarget is one query of the dashboard, with its panel.
type dashboardTarget struct {
	panel, expr, legend string
}

// dashboard returns the dashboard's queries and its template variables'
// names.
func dashboard(t *testing.T) ([]dashboardTarget, []string) {
	t.Helper()
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr   string `json:"expr"`
				Legend string `json:"legendFormat"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name string `json:"name"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal([]byte(readFile(t, dashboardPath)), &dash); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	var targets []dashboardTarget
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			targets = append(targets, dashboardTarget{panel: p.Title, expr: tg.Expr, legend: tg.Legend})
		}
	}
	var vars []string
	for _, v := range dash.Templating.List {
		vars = append(vars, v.Name)
	}
	return targets, vars
}

// TestDashboardByOutput checks every dashboard query of a delivery metric
// keeps the outputs apart, names the output in its legend and follows the
// dashboard's output variable.
func TestDashboardByOutput(t *testing.T) {
	targets, vars := dashboard(t)
	if !slices.Contains(vars, "output") {
		t.Errorf("the dashboard has no output variable (has %q)", vars)
	}
	n := 0
	for _, tg := range targets {
		if !deliveryMetric.MatchString(tg.expr) {
			continue
		}
		n++
		for _, b := range outputDroppers(tg.expr) {
			t.Errorf("panel %q adds the outputs together: %s", tg.panel, b)
		}
		// What is dropped before any output (output="") has no output
		// to name.
		before := strings.Contains(tg.expr, `output=""`)
		if !before && !strings.Contains(tg.legend, "{{output}}") {
			t.Errorf("panel %q: legend %q does not name the output", tg.panel, tg.legend)
		}
		if !before && !strings.Contains(tg.expr, `output=~"$output"`) {
			t.Errorf("panel %q: %s ignores the output variable", tg.panel, tg.expr)
		}
	}
	if n < 10 {
		t.Errorf("only %d queries of delivery metrics: the parse is broken", n)
	}
}

// TestAlertsByOutput checks no alert adds the outputs together: each
// fires per output, and its annotations name the output.
func TestAlertsByOutput(t *testing.T) {
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal([]byte(readFile(t, rulesPath)), &rules); err != nil {
		t.Fatalf("%s: %v", rulesPath, err)
	}
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if !deliveryMetric.MatchString(r.Expr) {
				continue
			}
			n++
			for _, b := range outputDroppers(r.Expr) {
				t.Errorf("%s adds the outputs together: %s", r.Alert, b)
			}
			// Lines over aggregate.max_series are dropped before any
			// output (output=""): nothing to name.
			if r.Alert != "LibratodMaxSeriesReached" && !strings.Contains(r.Annotations["summary"], "$labels.output") {
				t.Errorf("%s: the summary does not name the output: %q", r.Alert, r.Annotations["summary"])
			}
		}
	}
	if n < 8 {
		t.Errorf("only %d alerts on delivery metrics: the parse is broken", n)
	}
}

// TestReadmeSelfMetricsOutput checks the README's Self-metrics table
// writes every delivery metric with its output label (the spool's, which
// carry it as a constant label, are said to in one sentence), and says
// what output="" means.
func TestReadmeSelfMetricsOutput(t *testing.T) {
	_, section, ok := strings.Cut(readFile(t, readmePath), "\n## Self-metrics\n")
	if !ok {
		t.Fatal(`README.md has no "## Self-metrics" section`)
	}
	if i := strings.Index(section, "\n## "); i >= 0 {
		section = section[:i]
	}
	if !strings.Contains(section, "`output=\"\"`") || !strings.Contains(section, "every `libratod_spool_*` metric") {
		t.Error(`Self-metrics does not say what output="" means or that the spool's metrics carry output`)
	}
	row := regexp.MustCompile("(?m)^\\| `(libratod_[a-z_]+)(\\{[a-z_,]*\\})?`")
	n := 0
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		if !deliveryMetric.MatchString(m[1]) || strings.HasPrefix(m[1], "libratod_spool_") {
			continue
		}
		n++
		if !slices.Contains(strings.Split(strings.Trim(m[2], "{}"), ","), "output") {
			t.Errorf("Self-metrics writes %s%s without its output label", m[1], m[2])
		}
	}
	if n < 10 {
		t.Errorf("only %d delivery metrics in the Self-metrics table: the parse is broken", n)
	}
}
