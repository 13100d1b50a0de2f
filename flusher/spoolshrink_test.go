package flusher

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/libratod/libratod/aggregator"
	"github.com/libratod/libratod/internal/testproc"
	"github.com/libratod/libratod/librato"
	"github.com/libratod/libratod/spool"
)

// TestSpoolShrunkBetweenRuns: spool_max_bytes lowered between two runs
// makes spool.Open evict the oldest segments; those measurements are
// counted as dropped (reason spool_full) and logged, and the accounting
// built = sent + dropped + pending holds.
func TestSpoolShrunkBetweenRuns(t *testing.T) {
	dir := t.TempDir()
	sp, err := spool.Open(context.Background(), spool.Config{Dir: dir, NoSync: true, SegmentBytes: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	now := t0.Unix() // the tests' clock (fastConfig) starts at t0
	const records, per = 100, 3
	for i := range records {
		b := &librato.Batch{Time: now - 60, Measurements: make([]librato.Measurement, per)}
		for j := range b.Measurements {
			b.Measurements[j] = librato.Measurement{Name: fmt.Sprintf("m%d.%d.%s", i, j, strings.Repeat("x", 60)), Value: 1}
		}
		if _, err := sp.Append(spool.Record{Time: b.Time, Measurements: per, Kind: uint8(librato.Tagged),
			Payload: librato.MarshalBatch(nil, b)}); err != nil {
			t.Fatal(err)
		}
	}
	big := sp.Stats().Bytes
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}

	sp2, err := spool.Open(context.Background(), spool.Config{Dir: dir, NoSync: true, MaxBytes: big / 3, SegmentBytes: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp2.Close() })
	evicted := sp2.Stats().Dropped[spool.ReasonFull].Measurements
	if evicted == 0 || evicted%per != 0 {
		t.Fatalf("the reopened spool evicted %d measurements: the test needs whole records evicted", evicted)
	}
	var logs testproc.SafeBuffer
	m := newMetrics(t)
	cfg := fastConfig(m)
	cfg.Spool, cfg.Logger = sp2, zerolog.New(&logs)
	good := &scripted{}
	f := New(cfg, aggregator.New(aggregator.Config{}), good)
	f.drainAll(context.Background())

	if n := testutil.ToFloat64(m.forOutput("librato").dropped.WithLabelValues("spool_full")); int64(n) != evicted {
		t.Errorf("dropped{spool_full} = %v, want the %d measurements evicted at open", n, evicted)
	}
	if !strings.Contains(logs.String(), `"measurements":`+fmt.Sprint(evicted)) ||
		!strings.Contains(logs.String(), "spool_max_bytes") {
		t.Errorf("the eviction at open is not logged with its %d measurements:\n%s", evicted, logs.String())
	}
	delivered := int64(len(arrivals(good)))
	if delivered+evicted != records*per {
		t.Errorf("%d delivered and %d evicted, want %d in all", delivered, evicted, records*per)
	}
	built, sent, dropped := f.built.Load(), f.sent.Load(), f.dropped.Load()
	if built != records*per || sent != delivered || dropped != evicted {
		t.Errorf("built %d, sent %d, dropped %d; want %d, %d, %d", built, sent, dropped, records*per, delivered, evicted)
	}
}
