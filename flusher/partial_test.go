package flusher

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libratod/libratod/aggregator"
	"github.com/libratod/libratod/librato"
	"github.com/libratod/libratod/spool"
)

// checkAccounts fails the test unless built - sent - dropped is what the
// backlog says is pending, not negative, and the backlog (memory and
// disk) holds what the spool holds.
func checkAccounts(t *testing.T, when string, f *Flusher, sp *spool.Spool) {
	t.Helper()
	built, sent, dropped := f.built.Load(), f.sent.Load(), f.dropped.Load()
	pending, _ := f.backlog.state()
	if left := built - sent - dropped; left != int64(pending) || left < 0 {
		t.Errorf("%s: built %d - sent %d - dropped %d = %d, backlog holds %d",
			when, built, sent, dropped, left, pending)
	}
	mem, disk := f.backlog.memory()
	if st := sp.Stats(); st.Pending.Measurements != int64(mem+disk) {
		t.Errorf("%s: the spool holds %d measurements, the backlog %d in memory and %d on disk",
			when, st.Pending.Measurements, mem, disk)
	}
}

// partialSetup spools a request of 8 counters c0..c7 of period t0 while
// Librato is down, then resends it from the backlog: Librato refuses it
// whole (400), so that it is split; it takes the first half and fails the
// second with a 503. During that failure, onFail runs once (nil: nothing).
// It returns the flusher, the names of the first half and the sender.
func partialSetup(t *testing.T, sp *spool.Spool, onFail func(f *Flusher)) (*Flusher, *scripted, map[string]bool) {
	t.Helper()
	a := aggregator.New(aggregator.Config{})
	s := &scripted{answer: func(int, *librato.Batch) error { return down }}
	cfg := fastConfig(newMetrics(t))
	cfg.Spool, cfg.BatchSize, cfg.Backlog = sp, 8, 8
	cfg.MaxAge = 24 * time.Hour * 365 * 100
	f := New(cfg, a, s)
	var lines []string
	for i := range 8 {
		lines = append(lines, fmt.Sprintf("c%d:1|c", i))
	}
	feed(t, a, lines...)
	if res := f.Flush(context.Background(), t0); res.Pending != 8 {
		t.Fatalf("first period: %+v, want 8 pending", res)
	}
	checkAccounts(t, "after the outage", f, sp)

	first := map[string]bool{}
	var once atomic.Bool
	s.setAnswer(func(_ int, b *librato.Batch) error {
		switch {
		case b.Time != t0.Unix():
			return down
		case len(b.Measurements) == 8:
			for _, m := range b.Measurements[:4] {
				first[m.Name] = true
			}
			return &librato.Error{StatusCode: 400, Message: "value: is invalid"}
		case first[b.Measurements[0].Name]:
			return nil
		}
		if onFail != nil && once.CompareAndSwap(false, true) {
			onFail(f)
		}
		return down
	})
	f.drainOnce(context.Background())
	if got := arrivals(s); len(got) != 4 {
		t.Fatalf("the split delivered %v, want the first half", got)
	}
	return f, s, first
}

// checkOnce fails the test unless every name of want arrived once at its
// time, in the sum of what the senders accepted.
func checkOnce(t *testing.T, want []string, senders ...*scripted) {
	t.Helper()
	got := map[string]int{}
	for _, s := range senders {
		for k, n := range arrivals(s) {
			got[k] += n
		}
	}
	for _, k := range want {
		if got[k] != 1 {
			t.Errorf("%s arrived %d times, want once", k, got[k])
		}
		delete(got, k)
	}
	if len(got) > 0 {
		t.Errorf("unexpected arrivals %v", got)
	}
}

// TestPartialResendEvictedAndRefilled: what is left of a spooled request
// after a split delivered half of it is pushed out of the memory window
// (a new period took its room while the resend was under way) and read
// back from the spool: only that half is sent again, once, and the
// records behind it on disk are not forgotten (the backlog's count of
// them on disk stays that of the spool).
func TestPartialResendEvictedAndRefilled(t *testing.T) {
	sp := openSpool(t, t.TempDir())
	a2 := aggregator.New(aggregator.Config{})
	f, s, _ := partialSetup(t, sp, func(f *Flusher) {
		// The next period, 8 counters d0..d7, fails while the resend is
		// under way: it fills the memory window.
		f.src = a2
		var lines []string
		for i := range 8 {
			lines = append(lines, fmt.Sprintf("d%d:1|c", i))
		}
		feed(t, a2, lines...)
		f.Flush(context.Background(), t0.Add(10*time.Second))
		// And the one after, e0 and e1, waits on disk only.
		feed(t, a2, "e0:1|c", "e1:1|c")
		f.Flush(context.Background(), t0.Add(20*time.Second))
	})
	checkAccounts(t, "after the partial resend", f, sp)
	if mem, disk := f.backlog.memory(); mem != 8 || disk != 2+4 {
		t.Errorf("memory %d, disk %d: want the new period in memory, the last and the half left on disk", mem, disk)
	}
	s.setAnswer(nil)
	f.drainAll(context.Background())
	checkAccounts(t, "after the recovery", f, sp)
	var want []string
	for i := range 8 {
		want = append(want, fmt.Sprintf("c%d@%d", i, t0.Unix()), fmt.Sprintf("d%d@%d", i, t0.Unix()+10))
	}
	want = append(want, fmt.Sprintf("e0@%d", t0.Unix()+20), fmt.Sprintf("e1@%d", t0.Unix()+20))
	checkOnce(t, want, s)
	if st := sp.Stats(); st.Pending.Records != 0 {
		t.Errorf("the spool still holds %+v", st.Pending)
	}
}

// TestPartialResendRestart: the process stops after a split delivered
// half of a spooled request; the next one (a new Flusher on the reopened
// spool) sends only the other half.
func TestPartialResendRestart(t *testing.T) {
	dir := t.TempDir()
	sp := openSpool(t, dir)
	f, s, _ := partialSetup(t, sp, nil)
	checkAccounts(t, "after the partial resend", f, sp)
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	sp2 := openSpool(t, dir)
	cfg := f.set.Load().cfg
	cfg.Spool, cfg.Metrics = sp2, newMetrics(t)
	good := &scripted{}
	f2 := New(cfg, aggregator.New(aggregator.Config{}), good)
	if st := f2.Status(); st.Pending != 4 {
		t.Errorf("after the restart %d pending, want the 4 left", st.Pending)
	}
	f2.drainAll(context.Background())
	checkAccounts(t, "after the restart", f2, sp2)
	var want []string
	for i := range 8 {
		want = append(want, fmt.Sprintf("c%d@%d", i, t0.Unix()))
	}
	checkOnce(t, want, s, good)
}

// TestPartialResendSpoolFails: when the spool cannot take what is left
// (here it is closed under the resend), the rest is kept in memory only
// and delivered once, and the accounting holds.
func TestPartialResendSpoolFails(t *testing.T) {
	sp := openSpool(t, t.TempDir())
	f, s, _ := partialSetup(t, sp, func(*Flusher) { sp.Close() })
	if mem, disk := f.backlog.memory(); mem != 4 || disk != 0 {
		t.Errorf("memory %d, disk %d: want the half left in memory", mem, disk)
	}
	s.setAnswer(nil)
	f.drainAll(context.Background())
	var want []string
	for i := range 8 {
		want = append(want, fmt.Sprintf("c%d@%d", i, t0.Unix()))
	}
	checkOnce(t, want, s)
	built, sent, dropped := f.built.Load(), f.sent.Load(), f.dropped.Load()
	if built != 8 || sent != 8 || dropped != 0 {
		t.Errorf("built %d, sent %d, dropped %d; want 8, 8, 0", built, sent, dropped)
	}
}
