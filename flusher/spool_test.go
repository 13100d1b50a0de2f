package flusher

import (
	"bytes"
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
	"github.com/libratod/libratod/internal/eventually"
	"github.com/libratod/libratod/librato"
	"github.com/libratod/libratod/spool"
)

func openSpool(t testing.TB, dir string) *spool.Spool {
	t.Helper()
	sp, err := spool.Open(context.Background(), spool.Config{Dir: dir, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	return sp
}

// names returns how many times each measurement name of the accepted
// batches arrived, keyed by name and time.
func arrivals(s *scripted) map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	got := map[string]int{}
	for _, b := range s.accepted {
		for _, m := range b.Measurements {
			got[fmt.Sprintf("%s@%d", m.Name, b.Time)]++
		}
	}
	return got
}

// TestCredentialsRefusedAreKept: a 401 keeps the data (it used to be
// dropped), without splitting the request; once the configuration
// changes (a reload with the right token) it is resent at once and
// delivered once.
func TestCredentialsRefusedAreKept(t *testing.T) {
	for _, status := range []int{401, 403} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			a := aggregator.New(aggregator.Config{})
			s := &scripted{answer: func(int, *librato.Batch) error {
				return &librato.Error{StatusCode: status, Message: "bad credentials"}
			}}
			cfg := fastConfig(newMetrics(t))
			cfg.MinBackoff, cfg.MaxBackoff = time.Hour, time.Hour
			f := New(cfg, a, s)
			var lines []string
			for i := range 300 {
				lines = append(lines, fmt.Sprintf("c%d:1|c", i))
			}
			feed(t, a, lines...)
			res := f.Flush(context.Background(), t0)
			if res.Dropped != 0 || res.Pending != 300 || s.calls != 1 {
				t.Fatalf("result %+v after %d calls, want one call and 300 kept", res, s.calls)
			}
			good := &scripted{}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); f.drainLoop(ctx) }()
			f.Reconfigure(cfg, good) // resends at once, not in an hour
			eventually.True(10*time.Second, func() bool { return len(arrivals(good)) >= 300 })
			cancel()
			<-done
			got := arrivals(good)
			for i := range 300 {
				if n := got[fmt.Sprintf("c%d@%d", i, t0.Unix())]; n != 1 {
					t.Fatalf("c%d arrived %d times, want once at its period's time", i, n)
				}
			}
		})
	}
}

// TestSpoolSurvivesRestart: periods Librato did not take are in the
// spool when the flusher stops; a new flusher on the same spool resends
// every one once, with its own time, and the accounting stays exact.
func TestSpoolSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	sp := openSpool(t, dir)
	a := aggregator.New(aggregator.Config{})
	s := &scripted{answer: func(int, *librato.Batch) error { return down }}
	cfg := fastConfig(newMetrics(t))
	cfg.Spool, cfg.BatchSize, cfg.Backlog = sp, 2, 3 // the memory window holds less than the spool
	cfg.MaxAge = 24 * time.Hour * 365 * 100
	f := New(cfg, a, s)
	for p := range 4 {
		feed(t, a, "a:1|c", "b:2|c", "c:3|c")
		f.Flush(context.Background(), t0.Add(time.Duration(p)*10*time.Second))
	}
	if n, disk := f.backlog.memory(); n > 3+2 || disk == 0 {
		t.Errorf("memory %d, disk only %d: want the memory bounded and the rest on disk", n, disk)
	}
	if st := sp.Stats(); st.Pending.Measurements != 12 {
		t.Fatalf("spool holds %d measurements, want 12", st.Pending.Measurements)
	}
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}

	sp2 := openSpool(t, dir)
	good := &scripted{}
	m := newMetrics(t)
	cfg.Spool, cfg.Metrics = sp2, m
	f2 := New(cfg, aggregator.New(aggregator.Config{}), good)
	if st := f2.Status(); st.Pending != 12 || st.OldestPending.Unix() != t0.Unix() {
		t.Errorf("status %+v, want 12 pending since %v", st, t0)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := f2.Run(ctx) // stopped at once: the shutdown drains the spool
	if res.Pending != 0 || res.Dropped != 0 || f2.sent.Load() != 12 {
		t.Errorf("result %+v, %d sent in all, want 12 sent", res, f2.sent.Load())
	}
	got := arrivals(good)
	for p := range 4 {
		for _, n := range []string{"a", "b", "c"} {
			if c := got[fmt.Sprintf("%s@%d", n, t0.Unix()+int64(p)*10)]; c != 1 {
				t.Errorf("%s of period %d arrived %d times", n, p, c)
			}
		}
	}
	if st := sp2.Stats(); st.Pending.Records != 0 || st.Replayed.Measurements != 12 {
		t.Errorf("spool after delivery: %+v", st)
	}
}

// TestSpoolHappyPathWritesNothing: with Librato healthy nothing reaches
// the disk.
func TestSpoolHappyPathWritesNothing(t *testing.T) {
	dir := t.TempDir()
	sp := openSpool(t, dir)
	a := aggregator.New(aggregator.Config{})
	cfg := fastConfig(newMetrics(t))
	cfg.Spool = sp
	f := New(cfg, a, &scripted{})
	feed(t, a, "a:1|c", "t:3|ms")
	if res := f.Flush(context.Background(), t0); res.Sent == 0 || res.Pending != 0 {
		t.Fatalf("result %+v", res)
	}
	if st := sp.Stats(); st.Appended.Records != 0 || st.Bytes != 0 {
		t.Errorf("spool wrote %+v on the happy path", st)
	}
}

// TestSpoolWriteFailureFallsBackToMemory: a spool that cannot write (its
// directory removed: root or not, nothing can be created there) keeps
// nothing from being kept in memory and delivered later.
func TestSpoolWriteFailureFallsBackToMemory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	sp := openSpool(t, dir)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	a := aggregator.New(aggregator.Config{})
	s := &scripted{answer: func(int, *librato.Batch) error { return down }}
	cfg := fastConfig(newMetrics(t))
	cfg.Spool = sp
	f := New(cfg, a, s)
	feed(t, a, "a:1|c")
	if res := f.Flush(context.Background(), t0); res.Pending != 1 {
		t.Fatalf("result %+v, want the measurement kept", res)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(f.SpoolCollector())
	if n, err := testutil.GatherAndCount(reg, "libratod_spool_write_errors_total"); err != nil || n != 1 {
		t.Fatalf("write errors metric: %d, %v", n, err)
	}
	if st := sp.Stats(); st.WriteErrors != 1 {
		t.Errorf("write errors %d, want 1", st.WriteErrors)
	}
	s.setAnswer(nil)
	f.drainAll(context.Background())
	if got := arrivals(s); got[fmt.Sprintf("a@%d", t0.Unix())] != 1 {
		t.Errorf("arrivals %v", got)
	}
}

// TestSpoolDamageIsSkipped: a flipped byte in one record: the others are
// delivered, the damage counted.
func TestSpoolDamageIsSkipped(t *testing.T) {
	dir := t.TempDir()
	sp := openSpool(t, dir)
	a := aggregator.New(aggregator.Config{})
	cfg := fastConfig(newMetrics(t))
	cfg.Spool, cfg.BatchSize = sp, 1
	cfg.MaxAge = 24 * time.Hour * 365 * 100
	f := New(cfg, a, &scripted{answer: func(int, *librato.Batch) error { return down }})
	feed(t, a, "a:1|c", "b:1|c", "c:1|c")
	f.Flush(context.Background(), t0)
	sp.Close()
	segs, _ := filepath.Glob(filepath.Join(dir, "*.spool"))
	if len(segs) != 1 {
		t.Fatalf("segments %v", segs)
	}
	data, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x40
	if err := os.WriteFile(segs[0], data, 0o600); err != nil {
		t.Fatal(err)
	}
	sp2 := openSpool(t, dir)
	good := &scripted{}
	cfg.Spool = sp2
	f2 := New(cfg, aggregator.New(aggregator.Config{}), good)
	f2.drainAll(context.Background())
	if got := arrivals(good); len(got) != 2 {
		t.Errorf("delivered %v, want the two intact records", got)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(f2.SpoolCollector())
	if v := testutil.ToFloat64(collectorMetric(t, reg, "libratod_spool_corrupt_records_total")); v != 1 {
		t.Errorf("corrupt records %v, want 1", v)
	}
}

func collectorMetric(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "x"})
			m := mf.GetMetric()[0]
			if m.GetCounter() != nil {
				g.Set(m.GetCounter().GetValue())
			} else {
				g.Set(m.GetGauge().GetValue())
			}
			return g
		}
	}
	t.Fatalf("no metric %s", name)
	return nil
}

// TestSpoolAPIChangeDrops: a record spooled for another API is dropped
// and counted, not sent to the wrong endpoint.
func TestSpoolAPIChangeDrops(t *testing.T) {
	dir := t.TempDir()
	sp := openSpool(t, dir)
	payload := librato.MarshalBatch(nil, &librato.Batch{Time: t0.Unix(), Measurements: []librato.Measurement{{Name: "x", Value: 1}}})
	if _, err := sp.Append(spool.Record{Time: t0.Unix(), Measurements: 1, Kind: uint8(librato.Legacy), Payload: payload}); err != nil {
		t.Fatal(err)
	}
	sp.Close()
	sp2 := openSpool(t, dir)
	good := &scripted{}
	cfg := fastConfig(newMetrics(t))
	cfg.Spool = sp2
	f := New(cfg, aggregator.New(aggregator.Config{}), good)
	f.drainAll(context.Background())
	if good.calls != 0 {
		t.Errorf("%d requests, want none", good.calls)
	}
	if n := testutil.ToFloat64(cfg.Metrics.forOutput("librato").dropped.WithLabelValues("spool_api_changed")); n != 1 {
		t.Errorf("dropped{spool_api_changed} = %v", n)
	}
}

// TestSpoolAccountingWhileDown: what a spool brings from an earlier run
// and cannot deliver yet is accounted for at shutdown (Carried, Pending)
// and stays in the spool, with the memory window smaller than the spool.
func TestSpoolAccountingWhileDown(t *testing.T) {
	dir := t.TempDir()
	sp := openSpool(t, dir)
	now := t0.Unix()
	for i := range 5 {
		b := &librato.Batch{Time: now - int64(10*(5-i)), Measurements: []librato.Measurement{{Name: "a", Value: 1}, {Name: "b", Value: 2}}}
		if _, err := sp.Append(spool.Record{Time: b.Time, Measurements: 2, Kind: uint8(librato.Tagged), Payload: librato.MarshalBatch(nil, b)}); err != nil {
			t.Fatal(err)
		}
	}
	sp.Close()
	sp2 := openSpool(t, dir)
	var logs bytes.Buffer
	cfg := fastConfig(newMetrics(t))
	cfg.Spool, cfg.Backlog, cfg.ShutdownTimeout = sp2, 3, 200*time.Millisecond
	cfg.Logger = zerolog.New(zerolog.SyncWriter(&logs))
	s := &scripted{answer: func(int, *librato.Batch) error { return down }}
	f := New(cfg, aggregator.New(aggregator.Config{}), s)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := f.Run(ctx)
	if res.Carried != 10 || res.Pending != 10 || res.Sent != 0 || res.Dropped != 0 {
		t.Errorf("result %+v, want 10 carried and pending", res)
	}
	if strings.Contains(logs.String(), "accounting is off") {
		t.Errorf("accounting off:\n%s", logs.String())
	}
	if n, disk := f.backlog.memory(); n > 4 || n+disk != 10 {
		t.Errorf("memory %d, disk %d: want at most the window and one request in memory, 10 in all", n, disk)
	}
	if st := sp2.Stats(); st.Pending.Measurements != 10 {
		t.Errorf("spool holds %d, want 10", st.Pending.Measurements)
	}
}

// blocking refuses the credentials, but only once release is closed.
type blocking struct {
	started chan struct{}
	release chan struct{}
}

func (b *blocking) Send(context.Context, *librato.Batch) (librato.Result, error) {
	select {
	case b.started <- struct{}{}:
	default:
	}
	<-b.release
	return librato.Result{}, &librato.Error{StatusCode: 401, Message: "bad credentials"}
}

// TestReloadDuringResend: a reload while a resend is under way makes
// what that resend puts back go again at once, not after the backoff.
func TestReloadDuringResend(t *testing.T) {
	a := aggregator.New(aggregator.Config{})
	cfg := fastConfig(newMetrics(t))
	cfg.MinBackoff, cfg.MaxBackoff = time.Hour, time.Hour
	f := New(cfg, a, &scripted{answer: func(int, *librato.Batch) error { return &librato.Error{StatusCode: 401} }})
	feed(t, a, "x:1|c")
	f.Flush(context.Background(), t0)
	bl := &blocking{started: make(chan struct{}, 1), release: make(chan struct{})}
	f.Reconfigure(cfg, bl)
	done := make(chan struct{})
	go func() { defer close(done); f.drainOnce(context.Background()) }()
	select {
	case <-bl.started:
	case <-time.After(10 * time.Second):
		close(bl.release)
		<-done
		t.Fatal("the backlog was not resent")
	}
	f.Reconfigure(cfg, &scripted{}) // the fixed token, while the resend is under way
	close(bl.release)
	<-done
	if wait, ok := f.backlog.due(time.Now()); !ok || wait > time.Second {
		t.Errorf("next resend in %v (pending %v), want at once after a reload", wait, ok)
	}
}
