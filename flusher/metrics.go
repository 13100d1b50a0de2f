package flusher

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the flusher's self-metrics.
type Metrics struct {
	flushDuration prometheus.Histogram
	series        *prometheus.GaugeVec
	sent          prometheus.Counter
	requests      *prometheus.CounterVec
	retries       prometheus.Counter
	partial       prometheus.Counter
	dropped       *prometheus.CounterVec
	tagsDropped   *prometheus.CounterVec
	backlog       prometheus.Gauge
	stopList      prometheus.Gauge
	annotations   *prometheus.CounterVec
	// requestDuration times each POST of measurements, answered or not.
	requestDuration prometheus.Histogram
	rateLimit       *prometheus.GaugeVec
}

// NewMetrics creates the flusher's metrics and registers them with reg,
// unless reg is nil.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		flushDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "libratod_flush_duration_seconds",
			Help:    "Time from the end of a period to the end of its delivery.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}),
		series: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "libratod_series",
			Help: "Series in the last flushed period, by type.",
		}, []string{"type"}),
		sent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "libratod_measurements_sent_total",
			Help: "Measurements accepted by Librato.",
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "libratod_requests_total",
			Help: "Requests to Librato by HTTP status (\"error\" when no response came).",
		}, []string{"status"}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "libratod_retries_total",
			Help: "Requests to Librato sent again after a failure.",
		}),
		partial: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "libratod_partial_failures_total",
			Help: "Requests Librato accepted while reporting errors in the body.",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "libratod_measurements_dropped_total",
			Help: "Measurements or series not delivered, by reason.",
		}, []string{"reason"}),
		tagsDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "libratod_tags_dropped_total",
			Help: "Tags left off measurements, by reason.",
		}, []string{"reason"}),
		backlog: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "libratod_backlog_measurements",
			Help: "Measurements waiting to be resent to Librato.",
		}),
		stopList: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "libratod_type_conflict_names",
			Help: "Metric names no longer sent because Librato has them with another type (legacy API).",
		}),
		annotations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "libratod_annotations_total",
			Help: "Annotations (from StatsD events) by outcome: sent, rejected, dropped (no room to keep them for a retry), unsupported.",
		}, []string{"result"}),
		requestDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "libratod_request_duration_seconds",
			Help:    "Time of each POST of measurements to Librato, from sending to the answer or the failure.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 10),
		}),
		rateLimit: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "libratod_ratelimit_remaining",
			Help: "What is left of the Librato rate limit, from the last X-Librato-RateLimit-Agg (limit=\"agg\") or -Std (limit=\"std\") header seen.",
		}, []string{"limit"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.flushDuration, m.series, m.sent, m.requests, m.retries, m.partial, m.dropped, m.tagsDropped, m.backlog, m.stopList, m.annotations, m.requestDuration, m.rateLimit} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("registering flusher metrics: %w", err)
			}
		}
	}
	return m, nil
}

// Dropped returns the counter of measurements dropped for reason, for the
// stages before the flusher that drop data (for example "max_series").
func (m *Metrics) Dropped(reason string) prometheus.Counter {
	return m.dropped.WithLabelValues(reason)
}

// Annotation returns the counter of annotations with the given outcome,
// for the stages before the flusher (for example "dropped" when the queue
// is full).
func (m *Metrics) Annotation(result string) prometheus.Counter {
	return m.annotations.WithLabelValues(result)
}

// TagsDropped returns the counter of tags left off for reason, for the
// stages before the flusher (for example "legacy_api").
func (m *Metrics) TagsDropped(reason string) prometheus.Counter {
	return m.tagsDropped.WithLabelValues(reason)
}
