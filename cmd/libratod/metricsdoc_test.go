package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestREADMEListsEverySelfMetric finds every libratod_* metric name in the
// project's code and checks that the README's self-metrics table names it.
func TestREADMEListsEverySelfMetric(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	found := codeMetricNames(t)
	if len(found) < 20 {
		t.Fatalf("found only %d metric names: the scan is broken", len(found))
	}
	for n, path := range found {
		if !strings.Contains(string(readme), "`"+n) {
			t.Errorf("README does not document %s (%s)", n, path)
		}
	}
}

// codeMetricNames returns every libratod_* metric name quoted in the
// project's non-test Go code (but the load generator's), with a file it is
// in.
func codeMetricNames(t *testing.T) map[string]string {
	t.Helper()
	name := regexp.MustCompile(`"(libratod_[a-z0-9_]+)"`)
	found := map[string]string{}
	err := filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != "../.." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || strings.Contains(path, "statsd-load") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range name.FindAllStringSubmatch(string(src), -1) {
			found[m[1]] = path
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}
