package flusher

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the flusher's self-metrics. Those of delivery carry an
// "output" label: "librato" or "otlp" ("" for what is dropped before any
// output, see Dropped).
type Metrics struct {
	flushDuration *prometheus.HistogramVec
	series        *prometheus.GaugeVec
	sent          *prometheus.CounterVec
	requests      *prometheus.CounterVec
	retries       *prometheus.CounterVec
	partial       *prometheus.CounterVec
	dropped       *prometheus.CounterVec
	tagsDropped   *prometheus.CounterVec
	backlog       *prometheus.GaugeVec
	stopList      *prometheus.GaugeVec
	annotations   *prometheus.CounterVec
	// requestDuration times each POST of measurements, answered or not.
	requestDuration *prometheus.HistogramVec
	rateLimit       *prometheus.GaugeVec
	// cumulativeSeries and cumulativeResets describe the OTLP output's
	// cumulative state (temporality = "cumulative").
	cumulativeSeries prometheus.Gauge
	cumulativeResets prometheus.Counter
}

// laneMetrics are the metrics of one output: Metrics with its label set.
type laneMetrics struct {
	flushDuration   prometheus.Observer
	sent            prometheus.Counter
	requests        *prometheus.CounterVec
	retries         prometheus.Counter
	partial         prometheus.Counter
	dropped         *prometheus.CounterVec
	backlog         prometheus.Gauge
	stopList        prometheus.Gauge
	requestDuration prometheus.Observer
	rateLimit       *prometheus.GaugeVec
	// shared: those without an output label.
	tagsDropped *prometheus.CounterVec
	annotations *prometheus.CounterVec
}

// forOutput returns the metrics of the output name.
func (m *Metrics) forOutput(name string) *laneMetrics {
	l := prometheus.Labels{"output": name}
	return &laneMetrics{
		flushDuration:   m.flushDuration.WithLabelValues(name),
		sent:            m.sent.WithLabelValues(name),
		requests:        m.requests.MustCurryWith(l),
		retries:         m.retries.WithLabelValues(name),
		partial:         m.partial.WithLabelValues(name),
		dropped:         m.dropped.MustCurryWith(l),
		backlog:         m.backlog.WithLabelValues(name),
		stopList:        m.stopList.WithLabelValues(name),
		requestDuration: m.requestDuration.WithLabelValues(name),
		rateLimit:       m.rateLimit.MustCurryWith(l),
		tagsDropped:     m.tagsDropped,
		annotations:     m.annotations,
	}
}

// NewMetrics creates the flusher's metrics and registers them with reg,
// unless reg is nil.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		flushDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "libratod_flush_duration_seconds",
			Help:    "Time from the end of a period to the end of its delivery, by output.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}, []string{"output"}),
		series: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "libratod_series",
			Help: "Series in the last flushed period, by type.",
		}, []string{"type"}),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "libratod_measurements_sent_total",
			Help: "Measurements (Librato) or data points (OTLP) accepted, by output.",
		}, []string{"output"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "libratod_requests_total",
			Help: "Requests by output and HTTP status (\"error\" when no response came).",
		}, []string{"output", "status"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "libratod_retries_total",
			Help: "Requests sent again after a failure, by output.",
		}, []string{"output"}),
		partial: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "libratod_partial_failures_total",
			Help: "Requests accepted while the answer reported errors or refused points, by output.",
		}, []string{"output"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "libratod_measurements_dropped_total",
			Help: "Measurements, data points or series not delivered, by output (\"\" before any output) and reason.",
		}, []string{"output", "reason"}),
		tagsDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "libratod_tags_dropped_total",
			Help: "Tags left off measurements, by reason.",
		}, []string{"reason"}),
		backlog: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "libratod_backlog_measurements",
			Help: "Measurements or data points waiting to be resent, by output.",
		}, []string{"output"}),
		stopList: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "libratod_type_conflict_names",
			Help: "Metric names no longer sent because the output has them with another type (Librato's legacy API).",
		}, []string{"output"}),
		cumulativeSeries: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "libratod_otlp_cumulative_series",
			Help: "Series whose running totals the OTLP output keeps for cumulative temporality.",
		}),
		cumulativeResets: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "libratod_otlp_cumulative_resets_total",
			Help: "OTLP points of new series past aggregate.max_series sent with their own period as start (a reset) rather than a running total.",
		}),
		annotations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "libratod_annotations_total",
			Help: "Annotations (from StatsD events) by outcome: sent, rejected, spooled (kept in the spool for a later flush or run), dropped (no room to keep them for a retry), too_old (kept past max_age), unsupported.",
		}, []string{"result"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "libratod_request_duration_seconds",
			Help:    "Time of each POST of measurements or points, from sending to the answer or the failure, by output.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 10),
		}, []string{"output"}),
		rateLimit: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "libratod_ratelimit_remaining",
			Help: "What is left of the Librato rate limit, from the last X-Librato-RateLimit-Agg (limit=\"agg\") or -Std (limit=\"std\") header seen.",
		}, []string{"output", "limit"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.flushDuration, m.series, m.sent, m.requests, m.retries, m.partial, m.dropped, m.tagsDropped, m.backlog, m.stopList, m.annotations, m.requestDuration, m.rateLimit, m.cumulativeSeries, m.cumulativeResets} {
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
	return m.dropped.WithLabelValues("", reason)
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
