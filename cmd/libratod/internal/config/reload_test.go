package config

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestEveryKeySaysWhetherItReloads fails when a key of the file is added
// without a reload struct tag saying whether a reload applies it.
func TestEveryKeySaysWhetherItReloads(t *testing.T) {
	if err := checkReloadTags(reflect.TypeFor[Config]()); err != "" {
		t.Error(err)
	}
	type section struct {
		Tagged   int `toml:"tagged" reload:"live"`
		Untagged int `toml:"untagged"`
	}
	type withUntagged struct {
		S section `toml:"s"`
	}
	if checkReloadTags(reflect.TypeFor[withUntagged]()) == "" {
		t.Error("checkReloadTags misses a key without a reload tag")
	}
}

// checkReloadTags returns the keys of the configuration type c whose field
// has no valid reload tag, as a message, or "".
func checkReloadTags(c reflect.Type) string {
	var bad []string
	check := func(key string, f reflect.StructField) {
		if r := f.Tag.Get("reload"); r != reloadLive && r != reloadRestart {
			bad = append(bad, key)
		}
	}
	for i := range c.NumField() {
		sec := c.Field(i)
		if sec.Type.Kind() != reflect.Struct {
			check(sec.Tag.Get("toml"), sec) // the [tags] table
			continue
		}
		for j := range sec.Type.NumField() {
			f := sec.Type.Field(j)
			check(sec.Tag.Get("toml")+"."+f.Tag.Get("toml"), f)
		}
	}
	if len(bad) == 0 {
		return ""
	}
	return `these keys need reload:"live" or reload:"restart" on their field: ` + strings.Join(bad, ", ")
}

func TestKeepRestartValues(t *testing.T) {
	old := Default()
	cur := Default()
	cur.Listen.UDP = "127.0.0.1:9999"
	cur.Aggregate.Period = time.Minute
	cur.Aggregate.Prefix = "new"          // reloadable: applied
	cur.Prometheus.Buckets = []float64{1} // restart only: kept
	cur.Librato.EventsStream = "deploys"  // restart only: kept
	changed := KeepRestartValues(&old, &cur)
	if want := []string{"listen.udp", "aggregate.period", "librato.events_stream", "prometheus.buckets"}; !slices.Equal(changed, want) {
		t.Errorf("changed %v, want %v", changed, want)
	}
	if cur.Listen.UDP != old.Listen.UDP || cur.Aggregate.Period != old.Aggregate.Period ||
		!slices.Equal(cur.Prometheus.Buckets, old.Prometheus.Buckets) || cur.Librato.EventsStream != old.Librato.EventsStream {
		t.Errorf("restart-only values not kept: %+v", cur)
	}
	if cur.Aggregate.Prefix != "new" {
		t.Errorf("reloadable prefix = %q, want new", cur.Aggregate.Prefix)
	}
}

// TestREADMEReloadParagraph keeps the README's SIGHUP paragraph equal to
// the reload tags: the keys after "Need a restart" are exactly
// RestartKeys, and every key it says is applied at once is live.
func TestREADMEReloadParagraph(t *testing.T) {
	data, err := os.ReadFile("../../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	start := strings.Index(text, "- SIGHUP re-reads the configuration file.")
	if start < 0 {
		t.Fatal("README.md has no SIGHUP paragraph")
	}
	para, _, _ := strings.Cut(text[start:], "\n\n")
	applied, restart, ok := strings.Cut(para, "**Need a restart**")
	if !ok {
		t.Fatal("the SIGHUP paragraph has no **Need a restart** list")
	}
	keyRe := regexp.MustCompile("`([a-z_]+\\.[a-z_]+)`")
	var listed []string
	for _, m := range keyRe.FindAllStringSubmatch(restart, -1) {
		listed = append(listed, m[1])
	}
	want := RestartKeys()
	for _, k := range want {
		if !slices.Contains(listed, k) {
			t.Errorf("README's SIGHUP paragraph does not list %s among the keys that need a restart", k)
		}
	}
	for _, k := range listed {
		if !slices.Contains(want, k) {
			t.Errorf("README's SIGHUP paragraph says %s needs a restart; its reload tag says live", k)
		}
	}
	var c Config
	live := map[string]bool{"tags": true} // the [tags] table
	for _, s := range settings(&c) {
		live[strings.Join(s.key, ".")] = s.reload == reloadLive
	}
	for _, m := range keyRe.FindAllStringSubmatch(applied, -1) {
		if !live[m[1]] {
			t.Errorf("README's SIGHUP paragraph says %s is applied at once; its reload tag says restart", m[1])
		}
	}
}
