package flusher

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/libratod/libratod/aggregator"
	"github.com/libratod/libratod/librato"
	"github.com/libratod/libratod/spool"
)

// TestRefillDecodesOutsideTheLock: refill decodes what it takes from the
// spool without holding spool.mu, so that a period's spoolKeep never
// waits for a backlog's worth of decoding; and it takes, in order, what
// waits on disk all the same.
func TestRefillDecodesOutsideTheLock(t *testing.T) {
	dir := t.TempDir()
	sp := openSpool(t, dir)
	now := t0.Unix() // the tests' clock (fastConfig) starts at t0
	for i := range 5 {
		b := &librato.Batch{Time: now - int64(10*(5-i)), Measurements: []librato.Measurement{
			{Name: fmt.Sprintf("a%d", i), Value: 1}, {Name: fmt.Sprintf("b%d", i), Value: 2}}}
		if _, err := sp.Append(spool.Record{Time: b.Time, Measurements: 2, Kind: uint8(librato.Tagged),
			Payload: librato.MarshalBatch(nil, b)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	sp2 := openSpool(t, dir)
	cfg := fastConfig(newMetrics(t))
	cfg.Spool, cfg.Backlog = sp2, 6
	f := New(cfg, aggregator.New(aggregator.Config{}), &scripted{})
	var decoded, locked atomic.Int64
	f.spool.decode = func(p []byte) (*librato.Batch, error) {
		decoded.Add(1)
		if !f.spool.mu.TryLock() {
			locked.Add(1)
		} else {
			f.spool.mu.Unlock()
		}
		return librato.UnmarshalBatch(p)
	}
	f.refill(f.set.Load())
	if decoded.Load() != 3 || locked.Load() != 0 {
		t.Errorf("%d records decoded, %d of them under spool.mu; want 3, none", decoded.Load(), locked.Load())
	}
	if mem, disk := f.backlog.memory(); mem != 6 || disk != 4 {
		t.Errorf("memory %d, disk %d; want 6 and 4", mem, disk)
	}
	checkAccounts(t, "after the refill", f, sp2)
	f.drainAll(context.Background())
	checkAccounts(t, "after the drain", f, sp2)
	if f.sent.Load() != 10 {
		t.Errorf("%d sent, want 10", f.sent.Load())
	}
}

// TestRefillDamagedSinceOpen: records damaged on disk after Open are
// counted dropped (spool_corrupt) when refill finds them gone, beside one
// it took intact, which is delivered; the accounting holds.
func TestRefillDamagedSinceOpen(t *testing.T) {
	dir := t.TempDir()
	sp := openSpool(t, dir)
	now := t0.Unix() // the tests' clock (fastConfig) starts at t0
	for i := range 3 {
		b := &librato.Batch{Time: now - 10, Measurements: []librato.Measurement{
			{Name: fmt.Sprintf("a%d", i), Value: 1}, {Name: fmt.Sprintf("b%d", i), Value: 2}}}
		if _, err := sp.Append(spool.Record{Time: b.Time, Measurements: 2, Kind: uint8(librato.Tagged),
			Payload: librato.MarshalBatch(nil, b)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	sp2 := openSpool(t, dir)
	m := newMetrics(t)
	cfg := fastConfig(m)
	cfg.Spool = sp2
	good := &scripted{}
	f := New(cfg, aggregator.New(aggregator.Config{}), good)
	segs, _ := filepath.Glob(filepath.Join(dir, "*.spool"))
	if len(segs) != 1 {
		t.Fatalf("segments %v", segs)
	}
	fh, err := os.OpenFile(segs[0], os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := fh.Stat()
	if err != nil {
		t.Fatal(err)
	}
	const header = 16 // spool's segment header
	frame := (fi.Size() - header) / 3
	for _, off := range []int64{header + frame + frame/2, header + 2*frame + frame/2} {
		if _, err := fh.WriteAt([]byte{0xff}, off); err != nil {
			t.Fatal(err)
		}
	}
	if err := fh.Close(); err != nil {
		t.Fatal(err)
	}
	f.drainAll(context.Background())
	if got := arrivals(good); len(got) != 2 || got[fmt.Sprintf("a0@%d", now-10)] != 1 {
		t.Errorf("delivered %v, want the first record", got)
	}
	if n := testutil.ToFloat64(m.forOutput("librato").dropped.WithLabelValues("spool_corrupt")); n != 4 {
		t.Errorf("dropped{spool_corrupt} = %v, want 4", n)
	}
	checkAccounts(t, "after the drain", f, sp2)
	if f.built.Load() != 6 || f.sent.Load() != 2 || f.dropped.Load() != 4 {
		t.Errorf("built %d, sent %d, dropped %d; want 6, 2, 4", f.built.Load(), f.sent.Load(), f.dropped.Load())
	}
}
