package flusher

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libratod/libratod/aggregator"
	"github.com/libratod/libratod/internal/eventually"
	"github.com/libratod/libratod/librato"
)

// inPeriodSetup makes a flusher with a spool, MaxAttempts attempts in
// period and one period of 300 counters c0..c299 (one request) to flush.
func inPeriodSetup(t *testing.T, attempts int, answer func(int, *librato.Batch) error) (*Flusher, *scripted) {
	t.Helper()
	a := aggregator.New(aggregator.Config{})
	s := &scripted{answer: answer}
	cfg := fastConfig(newMetrics(t))
	cfg.Spool = openSpool(t, t.TempDir())
	cfg.BatchSize, cfg.MaxAttempts = 300, attempts
	cfg.MaxAge = 24 * time.Hour * 365 * 100
	f := New(cfg, a, s)
	var lines []string
	for i := range 300 {
		lines = append(lines, fmt.Sprintf("c%d:1|c", i))
	}
	feed(t, a, lines...)
	return f, s
}

// deliveredOnce fails the test unless each of c0..c299 of t0 arrived once.
func deliveredOnce(t *testing.T, s *scripted) {
	t.Helper()
	got := arrivals(s)
	for i := range 300 {
		if n := got[fmt.Sprintf("c%d@%d", i, t0.Unix())]; n != 1 {
			t.Errorf("c%d arrived %d times, want once", i, n)
		}
	}
}

// TestInPeriodRetryIsSpooled: a request retried within its own period is
// in the spool from its first failure (a kill -9 during the retries does
// not lose it), and acknowledged once an in-period retry delivers it.
func TestInPeriodRetryIsSpooled(t *testing.T) {
	var f *Flusher
	var during atomic.Int64
	f, s := inPeriodSetup(t, 3, func(call int, _ *librato.Batch) error {
		switch call {
		case 1:
			return down
		case 2:
			during.Store(f.lane.sp.Stats().Pending.Measurements)
			return down
		}
		return nil
	})
	res := f.Flush(context.Background(), t0)
	if res.Sent != 300 || res.Pending != 0 || res.Dropped != 0 {
		t.Fatalf("result %+v, want 300 sent in period", res)
	}
	if got := during.Load(); got != 300 {
		t.Errorf("while being retried in period the spool held %d measurements, want 300", got)
	}
	st := f.lane.sp.Stats()
	if st.Appended.Records != 1 || st.Acknowledged.Records != 1 || st.Pending.Records != 0 {
		t.Errorf("spool: %d appended, %d acknowledged, %d pending; want 1, 1, 0",
			st.Appended.Records, st.Acknowledged.Records, st.Pending.Records)
	}
	checkAccounts(t, "after the period", f, f.lane.sp)
	deliveredOnce(t, s)
}

// TestInPeriodRetryKeepsItsRecord: a request whose in-period retries all
// fail goes to the backlog with the record written at its first failure
// (not a second one), and is delivered once from it.
func TestInPeriodRetryKeepsItsRecord(t *testing.T) {
	f, s := inPeriodSetup(t, 3, func(int, *librato.Batch) error { return down })
	res := f.Flush(context.Background(), t0)
	if res.Pending != 300 || s.calls != 3 {
		t.Fatalf("result %+v after %d calls, want 300 pending after 3", res, s.calls)
	}
	if st := f.lane.sp.Stats(); st.Appended.Records != 1 || st.Pending.Records != 1 {
		t.Errorf("spool: %d appended, %d pending; want 1 and 1", st.Appended.Records, st.Pending.Records)
	}
	checkAccounts(t, "after the outage", f, f.lane.sp)
	s.setAnswer(nil)
	drain(t, f)
	checkAccounts(t, "after the resend", f, f.lane.sp)
	if st := f.lane.sp.Stats(); st.Pending.Records != 0 {
		t.Errorf("spool: %d pending after the resend", st.Pending.Records)
	}
	deliveredOnce(t, s)
}

// TestInPeriodRetrySplitRewritesItsRecord: a request that fails (503),
// then is refused whole (400) and split, of which one half is delivered
// and the other fails until the period gives up on it: the record of its
// first failure is replaced by one of the undelivered half, which is
// delivered once.
func TestInPeriodRetrySplitRewritesItsRecord(t *testing.T) {
	var first string // the first name of the request: in the half delivered
	f, s := inPeriodSetup(t, 3, func(call int, b *librato.Batch) error {
		switch {
		case call == 1:
			first = b.Measurements[0].Name
			return down
		case len(b.Measurements) == 300:
			return &librato.Error{StatusCode: 400, Message: "bad"}
		case b.Measurements[0].Name != first:
			return down
		}
		return nil
	})
	res := f.Flush(context.Background(), t0)
	if res.Sent != 150 || res.Pending != 150 {
		t.Fatalf("result %+v, want 150 sent and 150 pending", res)
	}
	if st := f.lane.sp.Stats(); st.Pending.Measurements != 150 || st.Pending.Records != 1 {
		t.Errorf("spool: %d pending in %d records; want 150 in 1",
			st.Pending.Measurements, st.Pending.Records)
	}
	checkAccounts(t, "after the period", f, f.lane.sp)
	s.setAnswer(nil)
	drain(t, f)
	checkAccounts(t, "after the resend", f, f.lane.sp)
	deliveredOnce(t, s)
}

// drain resends f's backlog until it is empty.
func drain(t *testing.T, f *Flusher) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.drainLoop(ctx) }()
	f.backlog.retryNow()
	eventually.True(10*time.Second, func() bool { return f.backlog.empty() })
	cancel()
	<-done
}
