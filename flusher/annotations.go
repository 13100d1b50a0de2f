package flusher

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/libratod/libratod/librato"
	"github.com/libratod/libratod/parser"
)

// AnnotationSender delivers one Librato annotation. The Sender given to
// New delivers annotations too when it implements this interface.
type AnnotationSender interface {
	SendAnnotation(ctx context.Context, a *librato.Annotation) error
}

// Annotations is the queue of annotations (from StatsD events) waiting for
// the next flush. It is safe for concurrent use.
type Annotations struct {
	mu  sync.Mutex
	q   []queued
	max int
}

// NewAnnotations returns a queue that holds at most max annotations.
func NewAnnotations(max int) *Annotations {
	return &Annotations{max: max}
}

// Add queues a for the next flush and reports whether there was room.
func (q *Annotations) Add(a librato.Annotation) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.q) >= q.max {
		return false
	}
	q.q = append(q.q, queued{a: a})
	return true
}

func (q *Annotations) take() []queued {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.q
	q.q = nil
	return out
}

// putBack returns annotations that could not be sent yet to the head of
// the queue, as room allows, and returns those that did not fit.
func (q *Annotations) putBack(as []queued) []queued {
	q.mu.Lock()
	defer q.mu.Unlock()
	room := max(q.max-len(q.q), 0)
	keep := as[:min(room, len(as))]
	q.q = append(append(make([]queued, 0, len(keep)+len(q.q)), keep...), q.q...)
	return as[len(keep):]
}

// sendAnnotations delivers the queued annotations, one request each, at
// most Concurrency at once; what fails in a way worth retrying waits for
// the next flush.
func sendAnnotations(ctx context.Context, l *lane[*librato.Batch], s *settings) {
	q := s.cfg.Annotations
	if q == nil {
		return
	}
	as := dropOldAnnotations(l, s, q.take())
	if len(as) == 0 {
		return
	}
	dst, ok := s.dst.(AnnotationSender)
	if !ok {
		l.m.annotations.WithLabelValues("unsupported").Add(float64(len(as)))
		ackAnnotations(l, as)
		return
	}
	var mu sync.Mutex
	var again []queued
	requests := newLimiter(s.cfg.Concurrency)
	actx, cancel := l.attemptCtx(ctx) // as for measurements: never cancel a request under way
	defer cancel()
	for i := range as {
		a := &as[i].a
		requests.Go(func() {
			for attempt := 1; ; attempt++ {
				err := dst.SendAnnotation(actx, a)
				if err == nil {
					l.m.annotations.WithLabelValues("sent").Inc()
					ackAnnotations(l, as[i:i+1])
					return
				}
				le := libratoError(err)
				l.m.setRateLimit(le.RateLimit)
				l.failed(&refusal{status: le.StatusCode})
				if !le.Retryable {
					s.cfg.Logger.Warn().Int("status", le.StatusCode).Str("error", le.Message).
						Str("stream", a.Stream).Msg("Librato refused an annotation; not resending it")
					l.m.annotations.WithLabelValues("rejected").Inc()
					ackAnnotations(l, as[i:i+1])
					return
				}
				wait := l.backoff(s, attempt, le.RetryAfter)
				if attempt >= s.cfg.MaxAttempts || le.RateLimited || !roomFor(ctx, wait) {
					mu.Lock()
					again = append(again, as[i])
					mu.Unlock()
					return
				}
				l.m.retries.Inc()
				sleep(ctx, wait)
			}
		})
	}
	requests.Wait()
	if len(again) > 0 {
		spoolAnnotations(l, s, q, again)
	}
}

// EventAnnotations maps DogStatsD events to Librato annotations and queues
// them for the next flush; it is the ingest stage's EventSink.
type EventAnnotations struct {
	// Stream is the annotation stream of an event without a "stream" tag.
	Stream string
	// Host is the source of an event that names no host.
	Host string
	// Queue receives the annotations.
	Queue *Annotations
	// Dropped counts the annotations a full queue refused.
	Dropped prometheus.Counter
	// Now is the clock that dates an event without a timestamp; nil is
	// time.Now.
	Now func() time.Time
}

// Event queues the annotation for ev. A full queue drops it, counted.
func (e *EventAnnotations) Event(ev *parser.Event) {
	a := librato.Annotation{
		Stream:    e.Stream,
		Title:     string(parser.UnescapeEventText(nil, ev.Title)),
		Source:    librato.SanitizeSource(e.Host),
		StartTime: ev.Timestamp,
	}
	if len(ev.Host) > 0 {
		a.Source = librato.SanitizeSource(string(ev.Host))
	}
	if a.StartTime == 0 {
		now := e.Now
		if now == nil {
			now = time.Now
		}
		a.StartTime = now().Unix()
	}
	var desc strings.Builder
	desc.Write(parser.UnescapeEventText(nil, ev.Text))
	field := func(name string, v []byte) {
		if len(v) == 0 {
			return
		}
		if desc.Len() > 0 {
			desc.WriteByte('\n')
		}
		desc.WriteString(name)
		desc.WriteString(": ")
		desc.Write(v)
	}
	field("alert_type", ev.AlertType)
	field("priority", ev.Priority)
	field("source_type", ev.SourceType)
	field("aggregation_key", ev.AggregationKey)
	var tags []string
	for item := range strings.SplitSeq(string(ev.Tags), ",") {
		if k, v, ok := strings.Cut(item, ":"); ok && k == "stream" && v != "" {
			a.Stream = v
			continue
		}
		if item != "" {
			tags = append(tags, item)
		}
	}
	field("tags", []byte(strings.Join(tags, ", ")))
	a.Description = desc.String()
	if !e.Queue.Add(a) && e.Dropped != nil {
		e.Dropped.Inc()
	}
}
