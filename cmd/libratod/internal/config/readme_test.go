package config

import (
	"os"
	"strings"
	"testing"
)

// TestREADMEListsEveryKey keeps the README's configuration table in step
// with the configuration: every key must appear, in backquotes, in the row
// of its section.
func TestREADMEListsEveryKey(t *testing.T) {
	data, err := os.ReadFile("../../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{} // section -> its table row
	for line := range strings.SplitSeq(string(data), "\n") {
		if strings.HasPrefix(line, "| `[") {
			section, _, _ := strings.Cut(strings.TrimPrefix(line, "| `["), "]`")
			rows[section] = line
		}
	}
	if len(rows) == 0 {
		t.Fatal("README.md has no configuration table (rows starting with | `[section]`)")
	}
	c := Default()
	for _, s := range settings(&c) {
		row, ok := rows[s.key[0]]
		if !ok {
			t.Errorf("README's configuration table has no row for [%s]", s.key[0])
			continue
		}
		if !strings.Contains(row, "`"+s.key[1]+"`") {
			t.Errorf("README's [%s] row does not list %s", s.key[0], s.key[1])
		}
	}
}
