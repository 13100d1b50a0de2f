// Package config loads, validates and describes libratod's TOML configuration.
//
// The TOML keys are the user-facing contract; config.example.toml at the
// repository root documents every one of them with its default.
//
// Loading happens in three steps, all done by [Load] and [Parse]:
//
//  1. start from [Default] and decode the file over it (unknown keys and
//     wrong types are problems);
//  2. apply environment overrides (see [Parse]);
//  3. validate everything except the presence of the API token.
//
// The token rule depends on how the daemon runs (a dry run needs no token),
// so the caller checks it afterwards with [Config.Validate]:
//
//	c, err := config.Load(path, os.Getenv)
//	if err == nil {
//		err = c.Validate(dryRun)
//	}
//
// Every problem found is reported, not just the first: errors are an
// [errors.Join] of [*FieldError] values, one line each, each naming its key.
// The token's value never appears in an error or in [Config.Describe].
package config

import (
	"time"

	"github.com/libratod/libratod/parser"
)

// The values of Librato.API.
const (
	APITagged = "tagged" // the tagged measurements API (/v1/measurements)
	APILegacy = "legacy" // the source-based metrics API (/v1/metrics)
)

// Config is libratod's whole configuration. Each field is a TOML table of
// the same name (the toml struct tags are the file's keys). Every key also
// says whether a reload (SIGHUP) applies it: reload:"live", or
// reload:"restart" when it takes effect at the next start (see
// [RestartKeys]).
type Config struct {
	Listen    Listen    `toml:"listen"`
	Aggregate Aggregate `toml:"aggregate"`
	Librato   Librato   `toml:"librato"`
	// OTLP configures the OTLP output; it is on when its endpoint is set.
	OTLP    OTLP              `toml:"otlp"`
	Tags    map[string]string `toml:"tags" reload:"live"` // global tags added to every measurement (tagged API) and OTLP point
	Log     Log               `toml:"log"`
	Metrics Metrics           `toml:"metrics"`
	// Prometheus serves the aggregated StatsD series to Prometheus.
	Prometheus Prometheus `toml:"prometheus"`
}

// Listen configures the StatsD listeners.
type Listen struct {
	UDP               string        `toml:"udp" reload:"restart"`                 // UDP address "host:port"; "" disables
	TCP               string        `toml:"tcp" reload:"restart"`                 // TCP address "host:port"; "" disables
	UDPReaders        int           `toml:"udp_readers" reload:"restart"`         // goroutines reading the UDP socket; 0 means one per CPU
	ReadBuffer        ByteSize      `toml:"read_buffer" reload:"restart"`         // SO_RCVBUF to request on the UDP socket; 0 leaves the system default
	MaxLineBytes      ByteSize      `toml:"max_line_bytes" reload:"restart"`      // longest TCP line accepted
	TCPIdleTimeout    time.Duration `toml:"tcp_idle_timeout" reload:"restart"`    // a TCP connection idle this long is closed
	TCPMaxConnections int           `toml:"tcp_max_connections" reload:"restart"` // TCP connections open at once
	// Unixgram is the absolute path of a Unix datagram socket to receive
	// StatsD datagrams on (a sidecar shares it through a volume); "" disables.
	Unixgram string `toml:"unixgram" reload:"restart"`
	// UnixgramMode is the socket file's mode, an octal string like "0660"
	// (see [Listen.UnixgramFileMode]).
	UnixgramMode string `toml:"unixgram_mode" reload:"restart"`
	// UnixgramOwner is the socket file's owner, "user:group" with names or
	// numeric ids, either part optional (see [Listen.UnixgramOwnerIDs]); ""
	// leaves the process's.
	UnixgramOwner string `toml:"unixgram_owner" reload:"restart"`
	// ShutdownLinger is how long libratod keeps receiving on every listener
	// after SIGTERM, before it drains, flushes and exits: an application
	// stopped at the same time still has its last lines counted. 0 stops
	// reading at once.
	ShutdownLinger time.Duration `toml:"shutdown_linger" reload:"restart"`
	// TagSyntaxes names the tag syntaxes read in StatsD lines (see
	// [parser.TagSyntaxNames]): "dogstatsd" ("|#k:v"), "librato"
	// ("name#k=v"), "influxdb" ("name,k=v") and "graphite" ("name;k=v"). A
	// syntax left out keeps its bytes in the name (sanitized later), or
	// ignores the "|#" field. It can change on reload.
	TagSyntaxes []string `toml:"tag_syntaxes" reload:"live"`
}

// Aggregate configures aggregation.
type Aggregate struct {
	Period      time.Duration `toml:"period" reload:"restart"`       // flush period, whole seconds, at least 1s
	Percentiles []float64     `toml:"percentiles" reload:"live"`     // timer percentiles, each in (0, 100); may be empty
	GaugeDeltas bool          `toml:"gauge_deltas" reload:"restart"` // "+3"/"-3" gauge values change the gauge instead of setting it
	Prefix      string        `toml:"prefix" reload:"live"`          // prepended with "." to every metric name; "" for none
	Shards      int           `toml:"shards" reload:"restart"`       // aggregator lock stripes; 0 means the aggregator's default
	MaxSeries   int           `toml:"max_series" reload:"restart"`   // live series in one period; past it new series are dropped; 0: no bound
	// MaxTimerSamples bounds the values a timer series keeps per period for
	// exact percentiles; past it percentiles come from a bounded estimate.
	MaxTimerSamples int `toml:"max_timer_samples" reload:"restart"`
	// MinLevel drops lines whose "level" tag is below it: "" keeps all,
	// else "debug", "info", "warning", "error" or "critical".
	MinLevel string `toml:"min_level" reload:"live"`
	// MaxSetMembers bounds the distinct members a set keeps exactly per
	// period; past it the count is a HyperLogLog estimate.
	MaxSetMembers int `toml:"max_set_members" reload:"restart"`
	// GaugeBaseTTL is how many periods a gauge's last value is kept for
	// "+n"/"-n" deltas after the gauge was last written.
	GaugeBaseTTL int `toml:"gauge_base_ttl" reload:"restart"`
	// ServiceChecks makes each DogStatsD service check a gauge named after
	// the check, its status (0 OK to 3 unknown) the value; false drops
	// them (counted as unsupported lines).
	ServiceChecks bool `toml:"service_checks" reload:"live"`
	// TimestampGrace is how long each period stays open after its end for
	// the lines stamped ("|T") with a time in it, which delays every
	// period's delivery as much: 0 (off) to one Period.
	TimestampGrace time.Duration `toml:"timestamp_grace" reload:"restart"`
	// MemoryLimit is the soft limit of the Go runtime's memory (see
	// runtime/debug.SetMemoryLimit): near it the garbage collector runs
	// more often instead of letting the heap grow to twice what is live. 0
	// derives it from MaxSeries and the backlogs (see
	// Config.MemoryLimitFor), none when MaxSeries is 0. The GOMEMLIMIT
	// environment variable, when set, wins.
	MemoryLimit ByteSize `toml:"memory_limit" reload:"restart"`
}

// Librato configures the Librato output and its API client.
type Librato struct {
	// Enabled turns the Librato output on (the default) or off.
	Enabled bool   `toml:"enabled" reload:"restart"`
	API     string `toml:"api" reload:"restart"` // APITagged or APILegacy
	URL     string `toml:"url" reload:"live"`    // API base URL
	// Email is the account email (HTTP Basic user); may be empty. Like
	// every credential it is tagged secret (see secretTag).
	Email string `toml:"email" reload:"live" secret:"true"`
	// Token is the API token; required unless dry run.
	Token           Secret        `toml:"token" reload:"live" secret:"true"`
	Source          string        `toml:"source" reload:"live"`           // legacy API: default source; "" means the host name (resolved by the caller)
	BatchSize       int           `toml:"batch_size" reload:"live"`       // measurements per POST, 1..1000
	HostTag         bool          `toml:"host_tag" reload:"live"`         // tagged API: add a "host" tag with the host name
	Timeout         time.Duration `toml:"timeout" reload:"live"`          // per request
	Concurrency     int           `toml:"concurrency" reload:"live"`      // POSTs in flight at once
	MaxAttempts     int           `toml:"max_attempts" reload:"live"`     // attempts per request, including the first
	ShutdownTimeout time.Duration `toml:"shutdown_timeout" reload:"live"` // bounded wait for the final flush at SIGTERM
	Gzip            bool          `toml:"gzip" reload:"live"`             // gzip request bodies
	Backlog         int           `toml:"backlog" reload:"live"`          // undelivered measurements kept for later retries; oldest dropped first past it
	MaxAge          time.Duration `toml:"max_age" reload:"live"`          // undelivered data older than this is dropped, not resent
	SourceRegex     string        `toml:"source_regex" reload:"live"`     // capture groups of a matching name become the source, the match leaves the name
	Include         []string      `toml:"include" reload:"live"`          // name patterns to send (all when empty)
	Exclude         []string      `toml:"exclude" reload:"live"`          // name patterns not to send
	EventsStream    string        `toml:"events_stream" reload:"restart"` // annotation stream of DogStatsD events without a "stream" tag; "" ignores events
	CountersAs      string        `toml:"counters_as" reload:"live"`      // "gauge": each period's sum; "counter" (legacy API): a running Librato counter
	// SpoolDir is the directory of the on-disk spool of undelivered
	// requests (package spool); "" keeps them in memory only.
	SpoolDir string `toml:"spool_dir" reload:"restart"`
	// SpoolMaxBytes bounds the spool's files; past it the oldest go first.
	SpoolMaxBytes ByteSize `toml:"spool_max_bytes" reload:"restart"`
}

// Log configures the daemon's own logging.
type Log struct {
	Level  string `toml:"level" reload:"live"`     // "debug", "info", "warn" or "error"
	Format string `toml:"format" reload:"restart"` // "json" or "console"
}

// Metrics configures the self-metrics HTTP server.
type Metrics struct {
	Listen string `toml:"listen" reload:"restart"` // address "host:port"; "" disables
	// ToLibrato also sends libratod's own counters and gauges to Librato
	// as libratod.* measurements at every flush.
	ToLibrato bool `toml:"to_librato" reload:"restart"`
}

// The values of Prometheus.TimerAs.
const (
	TimerAsSummary   = "summary"   // timers are summaries: quantiles, _sum and _count
	TimerAsHistogram = "histogram" // timers are histograms with Prometheus.Buckets
)

// Prometheus configures the Prometheus exposition of the StatsD series
// (package exposition). Every key needs a restart.
type Prometheus struct {
	Listen    string        `toml:"listen" reload:"restart"`     // address "host:port" of its /metrics; "" disables it
	MaxSeries int           `toml:"max_series" reload:"restart"` // series held; past it new ones are dropped; 0: aggregate.max_series
	Expire    time.Duration `toml:"expire" reload:"restart"`     // a series without data this long is dropped; 0: never
	TimerAs   string        `toml:"timer_as" reload:"restart"`   // TimerAsSummary or TimerAsHistogram
	// Buckets are the histogram bucket bounds, increasing, in the unit
	// the timer values are received in (StatsD: milliseconds).
	Buckets []float64 `toml:"buckets" reload:"restart"`
	// TimerUnitSeconds divides timer values (and bucket bounds) by 1000 on
	// exposition: StatsD milliseconds become Prometheus seconds.
	TimerUnitSeconds bool `toml:"timer_unit_seconds" reload:"restart"`
}

// Default returns the default configuration: what an empty file gives.
func Default() Config {
	return Config{
		Listen: Listen{
			UDP:               "127.0.0.1:8125",
			TCP:               "127.0.0.1:8125",
			UDPReaders:        0,
			ReadBuffer:        32 * MiB, // a second of 20 lines a datagram at 400k lines/s
			MaxLineBytes:      64 * KiB,
			TCPIdleTimeout:    60 * time.Second,
			TCPMaxConnections: 1024,
			UnixgramMode:      "0660",
			TagSyntaxes:       parser.TagSyntaxNames(),
		},
		Aggregate: Aggregate{
			Period:          10 * time.Second,
			Percentiles:     []float64{90, 95, 99},
			GaugeDeltas:     true,
			MaxSeries:       1_000_000,
			MaxTimerSamples: 10_000,
			MaxSetMembers:   10_000,
			GaugeBaseTTL:    360,
			ServiceChecks:   true,
			TimestampGrace:  time.Second,
		},
		Librato: Librato{
			Enabled:         true,
			API:             APITagged,
			URL:             "https://metrics-api.librato.com",
			BatchSize:       300,
			HostTag:         true,
			Timeout:         10 * time.Second,
			Concurrency:     4,
			MaxAttempts:     5,
			ShutdownTimeout: 10 * time.Second,
			Backlog:         1_000_000,
			MaxAge:          time.Hour,
			Include:         []string{},
			Exclude:         []string{},
			EventsStream:    "statsd",
			CountersAs:      "gauge",
			SpoolMaxBytes:   GiB,
		},
		OTLP: OTLP{
			Headers:     map[string]string{},
			Temporality: TemporalityDelta,
			TimersAs:    TimersAsExponentialHistogram,
			BatchSize:   1000,
			Timeout:     10 * time.Second,
			Concurrency: 4,
			MaxAttempts: 5,
			Gzip:        true,
			Backlog:     1_000_000,
			MaxAge:      time.Hour,
		},
		Log:     Log{Level: "info", Format: "json"},
		Metrics: Metrics{Listen: "127.0.0.1:9125"},
		Prometheus: Prometheus{
			Expire:  5 * time.Minute,
			TimerAs: TimerAsSummary,
			Buckets: []float64{5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000},
		},
	}
}
