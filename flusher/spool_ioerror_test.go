package flusher

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/libratod/libratod/aggregator"
	"github.com/libratod/libratod/internal/testproc"
	"github.com/libratod/libratod/librato"
)

// TestSpoolReadErrorKeepsRecords: a spool segment that cannot be read
// for a while (here a directory stands in its place: reading it fails
// with EISDIR, as root too) loses nothing. refill drops nothing, counts
// and logs the error, and waits a backoff before the next attempt rather
// than spin; once the file can be read again, a later refill takes every
// record and each is delivered once.
func TestSpoolReadErrorKeepsRecords(t *testing.T) {
	dir := t.TempDir()
	sp := openSpool(t, dir)
	a := aggregator.New(aggregator.Config{})
	cfg := fastConfig(newMetrics(t))
	cfg.Spool, cfg.BatchSize = sp, 1
	cfg.MaxAge = 24 * time.Hour * 365 * 100
	f := New(cfg, a, &scripted{answer: func(int, *librato.Batch) error { return down }})
	names := []string{"a", "b", "c", "d", "e"}
	for _, n := range names {
		feed(t, a, n+":1|c")
	}
	f.Flush(context.Background(), t0)
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}

	sp2 := openSpool(t, dir) // indexes the segment; Take reads it
	segs, _ := filepath.Glob(filepath.Join(dir, "*.spool"))
	if len(segs) != 1 {
		t.Fatalf("segments %v", segs)
	}
	away := segs[0] + ".away"
	if err := os.Rename(segs[0], away); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(segs[0], 0o700); err != nil {
		t.Fatal(err)
	}

	var logs testproc.SafeBuffer
	m := newMetrics(t)
	good := &scripted{}
	cfg.Spool, cfg.Metrics = sp2, m
	cfg.Logger = zerolog.New(&logs).Level(zerolog.WarnLevel)
	cfg.MinBackoff, cfg.MaxBackoff = time.Hour, time.Hour
	f2 := New(cfg, aggregator.New(aggregator.Config{}), good)
	for range 3 {
		f2.refill(f2.set.Load())
	}
	if d := f2.dropped.Load(); d != 0 {
		t.Errorf("%d measurements dropped on a read error, want none", d)
	}
	if v := testutil.ToFloat64(m.forOutput("librato").dropped.WithLabelValues("spool_corrupt")); v != 0 {
		t.Errorf("spool_corrupt = %v, want 0", v)
	}
	if st := sp2.Stats(); st.Pending.Records != 5 || st.CorruptRecords != 0 {
		t.Errorf("spool %+v, want the 5 records pending, none corrupt", st)
	}
	if inMem, disk := f2.backlog.memory(); inMem != 0 || disk != 5 {
		t.Errorf("backlog: %d in memory, %d on disk; want 0 and 5", inMem, disk)
	}
	if wait, ok := f2.backlog.due(time.Now()); !ok || wait < time.Minute {
		t.Errorf("next attempt in %v (%v), want after the backoff (an hour)", wait, ok)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(f2.SpoolCollector())
	if v := testutil.ToFloat64(collectorMetric(t, reg, "libratod_spool_read_errors_total")); v != 3 {
		t.Errorf("read errors %v, want 3", v)
	}
	if n := strings.Count(logs.String(), "spool: cannot read"); n != 1 {
		t.Errorf("%d read warnings, want 1 (rate-limited):\n%s", n, logs.String())
	}

	if err := os.Remove(segs[0]); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(away, segs[0]); err != nil {
		t.Fatal(err)
	}
	for range 10 { // later drains, each refilling first
		if f2.backlog.empty() {
			break
		}
		f2.drainOnce(context.Background())
	}
	got := arrivals(good)
	for _, n := range names {
		if c := got[fmt.Sprintf("%s@%d", n, t0.Unix())]; c != 1 {
			t.Errorf("%s arrived %d times, want once", n, c)
		}
	}
	if st := sp2.Stats(); st.Pending.Records != 0 || f2.dropped.Load() != 0 {
		t.Errorf("after the error cleared: spool %+v, %d dropped", st, f2.dropped.Load())
	}
}
