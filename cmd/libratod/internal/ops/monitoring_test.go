package ops

// Tests of the operator's monitoring kit that need no daemon: every alert
// has a runbook in the README, and the rules pass promtool's checks and
// their unit tests. (That the rules and the dashboard query only metrics
// libratod exports is checked in package main, against its registry.)

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const (
	rulesPath     = "../../../../deploy/prometheus/libratod.rules.yml"
	rulesTestPath = "../../../../deploy/prometheus/libratod.rules.test.yml"
	dashboardPath = "../../../../deploy/grafana/libratod.json"
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
