package flusher

import (
	"context"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/libratod/libratod/aggregator"
	"github.com/libratod/libratod/librato"
)

// annotating is a scripted Sender that also takes annotations.
type annotating struct {
	scripted
	amu    sync.Mutex
	errs   map[string][]error // by title, answered in order
	posted []string
}

func (a *annotating) SendAnnotation(_ context.Context, an *librato.Annotation) error {
	a.amu.Lock()
	defer a.amu.Unlock()
	if errs := a.errs[an.Title]; len(errs) > 0 {
		a.errs[an.Title] = errs[1:]
		return errs[0]
	}
	a.posted = append(a.posted, an.Title)
	return nil
}

func TestAnnotations(t *testing.T) {
	a := aggregator.New(aggregator.Config{})
	s := &annotating{errs: map[string][]error{
		"flaky":    {down},
		"refused":  {&librato.Error{StatusCode: 400, Message: "bad"}},
		"too busy": {&librato.Error{StatusCode: 429, Retryable: true, RateLimited: true}},
	}}
	m := newMetrics(t)
	cfg := fastConfig(m)
	cfg.Annotations = NewAnnotations(3)
	f := New(cfg, a, s)
	for _, title := range []string{"deploy", "flaky", "refused", "too busy"} {
		ok := cfg.Annotations.Add(librato.Annotation{Stream: "statsd", Title: title})
		if ok != (title != "too busy") {
			t.Fatalf("Add(%s) = %v with a queue of 3", title, ok)
		}
	}
	f.Flush(context.Background(), t0)
	if len(s.posted) != 2 {
		t.Fatalf("posted %v, want deploy and flaky (after a retry)", s.posted)
	}
	if n := testutil.ToFloat64(m.annotations.WithLabelValues("rejected")); n != 1 {
		t.Errorf("rejected = %v, want 1", n)
	}
	// A rate-limited one waits for the next flush.
	cfg.Annotations.Add(librato.Annotation{Stream: "statsd", Title: "too busy"})
	f.Flush(context.Background(), t0)
	f.Flush(context.Background(), t0)
	if len(s.posted) != 3 || s.posted[2] != "too busy" {
		t.Errorf("posted %v, want the rate-limited one on a later flush", s.posted)
	}
}
