package config

import "time"

// The values of OTLP.Temporality.
const (
	TemporalityDelta      = "delta"      // each point covers its own period
	TemporalityCumulative = "cumulative" // each point covers everything since the series' start
)

// The values of OTLP.TimersAs.
const (
	TimersAsExponentialHistogram = "exponential_histogram"
	TimersAsSummaryOTLP          = "summary"
)

// OTLP configures the OTLP/HTTP output. It is on when Endpoint is set.
type OTLP struct {
	// Endpoint is the OTLP/HTTP base URL; requests go to
	// <endpoint>/v1/metrics. "" turns the output off. Turning it on or off
	// needs a restart.
	Endpoint string `toml:"endpoint" reload:"restart"`
	// Token, when set, is sent as "Authorization: Bearer <token>"
	// (LIBRATOD_OTLP_TOKEN sets it too).
	Token Secret `toml:"token" reload:"live" secret:"true"`
	// Headers are sent with every request (Grafana's basic auth,
	// Honeycomb's team key); their values are secrets.
	Headers map[string]string `toml:"headers" reload:"live" secret:"true"`
	// Temporality of counters and histograms: TemporalityDelta or
	// TemporalityCumulative.
	Temporality string `toml:"temporality" reload:"restart"`
	// TimersAs is what timers, histograms and distributions become:
	// TimersAsExponentialHistogram or TimersAsSummaryOTLP.
	TimersAs string `toml:"timers_as" reload:"live"`
	// ServiceName, when set, is the resource's service.name.
	ServiceName string        `toml:"service_name" reload:"live"`
	BatchSize   int           `toml:"batch_size" reload:"live"`   // data points per request
	Timeout     time.Duration `toml:"timeout" reload:"live"`      // per request
	Concurrency int           `toml:"concurrency" reload:"live"`  // requests in flight at once
	MaxAttempts int           `toml:"max_attempts" reload:"live"` // attempts per request within its period
	Gzip        bool          `toml:"gzip" reload:"live"`         // gzip request bodies
	Backlog     int           `toml:"backlog" reload:"live"`      // undelivered points kept for later
	MaxAge      time.Duration `toml:"max_age" reload:"live"`      // undelivered data older than this is dropped
}

// On reports whether the OTLP output is on.
func (o *OTLP) On() bool { return o.Endpoint != "" }
