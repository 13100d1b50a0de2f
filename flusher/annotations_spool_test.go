package flusher

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/libratod/libratod/aggregator"
	"github.com/libratod/libratod/librato"
	"github.com/libratod/libratod/spool"
)

// downFor returns a script of n 503 answers.
func downFor(n int) []error {
	return slices.Repeat([]error{down}, n)
}

// spoolEvent runs a flusher on the spool in dir while Librato is down,
// for measurements and annotations alike, with one annotation titled
// title and one counter, and returns its metrics once its spool is
// closed.
func spoolEvent(t *testing.T, dir, title string) *Metrics {
	t.Helper()
	sp := openSpool(t, dir)
	a := aggregator.New(aggregator.Config{})
	s := &annotating{errs: map[string][]error{title: downFor(100)}}
	s.answer = func(int, *librato.Batch) error { return down }
	m := newMetrics(t)
	cfg := fastConfig(m)
	cfg.Spool = sp
	cfg.Annotations = NewAnnotations(10)
	f := New(cfg, a, s)
	cfg.Annotations.Add(librato.Annotation{Stream: "deploys", Title: title, StartTime: 1700000000})
	feed(t, a, "kept:1|c")
	f.Flush(context.Background(), t0)
	if len(s.posted) != 0 {
		t.Fatalf("posted %v while Librato was down", s.posted)
	}
	if n := testutil.ToFloat64(m.annotations.WithLabelValues("spooled")); n != 1 {
		t.Errorf("spooled = %v, want 1", n)
	}
	if st := sp.Stats(); st.Pending.Records != 2 || st.Pending.Measurements != 1 {
		t.Errorf("spool pending %+v, want the annotation and the batch of 1", st.Pending)
	}
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	return m
}

// restart runs a flusher on the spool in dir with Librato up, its clock
// at now, and flushes it three times.
func restart(t *testing.T, dir string, now func() time.Time) (*annotating, *Metrics, *spool.Spool) {
	t.Helper()
	sp := openSpool(t, dir)
	a := aggregator.New(aggregator.Config{})
	s := &annotating{}
	m := newMetrics(t)
	cfg := fastConfig(m)
	cfg.Now = now
	cfg.Spool = sp
	cfg.Annotations = NewAnnotations(10)
	f := New(cfg, a, s)
	for range 3 {
		f.Flush(context.Background(), t0.Add(time.Minute))
		f.lane.drainAll(context.Background())
	}
	return s, m, sp
}

// TestAnnotationSurvivesRestart: an annotation Librato could not take is
// kept in the spool beside the measurements and delivered once by the
// next process, which delivers the measurements too.
func TestAnnotationSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	spoolEvent(t, dir, "deploy")
	s, m, sp := restart(t, dir, testClock())
	if !slices.Equal(s.posted, []string{"deploy"}) {
		t.Errorf("posted %v, want deploy once", s.posted)
	}
	if got := arrivals(&s.scripted); got[fmt.Sprintf("kept@%d", t0.Unix())] != 1 {
		t.Errorf("measurements delivered %v, want kept once", got)
	}
	if n := testutil.ToFloat64(m.annotations.WithLabelValues("sent")); n != 1 {
		t.Errorf("sent = %v, want 1", n)
	}
	if st := sp.Stats(); st.Pending.Records != 0 {
		t.Errorf("spool pending %+v after delivery, want nothing", st.Pending)
	}
}

// TestAnnotationTooOld: an annotation kept past max_age is dropped by
// the next process, counted too_old, and its record removed.
func TestAnnotationTooOld(t *testing.T) {
	dir := t.TempDir()
	spoolEvent(t, dir, "stale")
	late := func() time.Time { return t0.Add(2 * time.Hour) }
	s, m, sp := restart(t, dir, late)
	if len(s.posted) != 0 {
		t.Errorf("posted %v, want nothing past max_age", s.posted)
	}
	if n := testutil.ToFloat64(m.annotations.WithLabelValues("too_old")); n != 1 {
		t.Errorf("too_old = %v, want 1", n)
	}
	if st := sp.Stats(); st.Pending.Records != 0 {
		t.Errorf("spool pending %+v, want nothing", st.Pending)
	}
}

// TestAnnotationSpoolCannotTake: an annotation the spool cannot take
// (larger than the spool may ever hold) stays in memory and is delivered
// once Librato is back.
func TestAnnotationSpoolCannotTake(t *testing.T) {
	sp, err := spool.Open(context.Background(), spool.Config{Dir: t.TempDir(), NoSync: true, MaxBytes: 1 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	a := aggregator.New(aggregator.Config{})
	big := string(slices.Repeat([]byte("x"), 4<<10))
	s := &annotating{errs: map[string][]error{"big": downFor(2)}}
	m := newMetrics(t)
	cfg := fastConfig(m)
	cfg.Spool = sp
	cfg.Annotations = NewAnnotations(10)
	f := New(cfg, a, s)
	cfg.Annotations.Add(librato.Annotation{Stream: "s", Title: "big", Description: big})
	f.Flush(context.Background(), t0)
	if len(s.posted) != 0 {
		t.Fatalf("posted %v while down", s.posted)
	}
	if n := testutil.ToFloat64(m.annotations.WithLabelValues("spooled")); n != 0 {
		t.Errorf("spooled = %v, want 0: the spool cannot hold it", n)
	}
	if st := sp.Stats(); st.Pending.Records != 0 || st.WriteErrors != 1 {
		t.Errorf("spool %+v, want nothing held and one write error", st)
	}
	f.Flush(context.Background(), t0)
	if !slices.Equal(s.posted, []string{"big"}) {
		t.Errorf("posted %v, want big once, from memory", s.posted)
	}
}

// TestAnnotationRecordUndecodable: a record of the annotation kind that
// does not decode is dropped and counted, and the rest of the spool is
// read.
func TestAnnotationRecordUndecodable(t *testing.T) {
	dir := t.TempDir()
	sp := openSpool(t, dir)
	for _, p := range [][]byte{{9, 9}, librato.MarshalAnnotation(nil, &librato.Annotation{Stream: "s", Title: "ok"})} {
		if _, err := sp.Append(spool.Record{Time: t0.Unix(), Kind: annotationSpoolKind, Payload: p}); err != nil {
			t.Fatal(err)
		}
	}
	if err := sp.Close(); err != nil && !errors.Is(err, spool.ErrClosed) {
		t.Fatal(err)
	}
	s, m, sp := restart(t, dir, testClock())
	if !slices.Equal(s.posted, []string{"ok"}) {
		t.Errorf("posted %v, want ok once", s.posted)
	}
	if n := testutil.ToFloat64(m.annotations.WithLabelValues("dropped")); n != 1 {
		t.Errorf("dropped = %v, want 1", n)
	}
	if st := sp.Stats(); st.Pending.Records != 0 {
		t.Errorf("spool pending %+v, want nothing", st.Pending)
	}
}
