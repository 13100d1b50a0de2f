package main

import (
	"reflect"
	"testing"
	"time"

	"github.com/libratod/libratod/cmd/libratod/internal/config"
)

func TestRestartKeysAreKeys(t *testing.T) {
	c := config.Default()
	for _, k := range restartKeys() {
		if !configField(&c, k).IsValid() {
			t.Errorf("restartKeys names %q, which is not a configuration key", k)
		}
	}
}

func TestKeepRestartKeys(t *testing.T) {
	old := config.Default()
	cur := config.Default()
	cur.Listen.UDP = "127.0.0.1:9999"
	cur.Aggregate.Period = time.Minute
	cur.Aggregate.Prefix = "new"          // reloadable: applied
	cur.Prometheus.Buckets = []float64{1} // restart only: kept
	changed := keepRestartKeys(&old, &cur)
	if want := []string{"listen.udp", "aggregate.period", "prometheus.buckets"}; !reflect.DeepEqual(changed, want) {
		t.Errorf("changed %v, want %v", changed, want)
	}
	if cur.Listen.UDP != old.Listen.UDP || cur.Aggregate.Period != old.Aggregate.Period ||
		!reflect.DeepEqual(cur.Prometheus.Buckets, old.Prometheus.Buckets) {
		t.Errorf("restart-only values not kept: %+v", cur)
	}
	if cur.Aggregate.Prefix != "new" {
		t.Errorf("reloadable prefix = %q, want new", cur.Aggregate.Prefix)
	}
}
