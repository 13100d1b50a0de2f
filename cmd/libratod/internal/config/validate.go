package config

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/libratod/libratod/ingest"
	"github.com/libratod/libratod/librato"
	"github.com/libratod/libratod/otlp"
	"github.com/libratod/libratod/parser"
)

// Limits checked by Validate.
// Bounds of librato.spool_max_bytes: room for a few of the largest
// requests, and a terabyte.
const (
	minSpoolBytes = MiB
	maxSpoolBytes = 1024 * GiB
)

const (
	maxUDPReaders = 1024
	maxReadBuffer = GiB
	maxLineBytes  = 16 * MiB
	maxShards     = 4096
	maxBatchSize  = 1000
)

// Validate checks c and returns every problem found, joined (see
// [FieldError]), or nil. The token is required unless dryRun is set. No
// problem shows any part of a secret (a field tagged secret:"true").
//
// [Load] and [Parse] already check everything but the token, so after them
// Validate(dryRun) only adds the token rule; it exists separately because
// only the caller knows whether this is a dry run.
func (c *Config) Validate(dryRun bool) error {
	return errors.Join(redactErrors(c.problems(dryRun), c.secretValues())...)
}

// problems is Validate returning the list.
func (c *Config) problems(dryRun bool) []error {
	var p problems

	l := &c.Listen
	p.address("listen.udp", l.UDP)
	p.address("listen.tcp", l.TCP)
	p.unixgram(l)
	if l.UDP == "" && l.TCP == "" && l.Unixgram == "" {
		p.add("listen", `no listener: set listen.udp or listen.tcp (or both) to an address like "127.0.0.1:8125", or listen.unixgram to a socket path`)
	}
	p.between("listen.udp_readers", l.UDPReaders, 0, maxUDPReaders, " (0: one per CPU)")
	p.between("listen.read_buffer", int(l.ReadBuffer), 0, int(maxReadBuffer), " bytes (0: the system default)")
	p.between("listen.max_line_bytes", int(l.MaxLineBytes), 1, int(maxLineBytes), " bytes")
	p.positive("listen.tcp_idle_timeout", l.TCPIdleTimeout)
	p.between("listen.tcp_max_connections", l.TCPMaxConnections, 1, maxCount, "")
	if l.ShutdownLinger < 0 || l.ShutdownLinger > maxShutdownLinger {
		p.add("listen.shutdown_linger", fmt.Sprintf(`must be between 0 and %s, like "2s", got %s`, maxShutdownLinger, l.ShutdownLinger))
	}
	if _, err := parser.ParseTagSyntaxes(l.TagSyntaxes); err != nil {
		p.add("listen.tag_syntaxes", err.Error())
	}

	a := &c.Aggregate
	switch {
	case a.Period < time.Second:
		p.add("aggregate.period", fmt.Sprintf(`must be at least 1s, got %s`, a.Period))
	case a.Period%time.Second != 0:
		p.add("aggregate.period", fmt.Sprintf(`must be whole seconds like "10s" (Librato times are unix seconds), got %s`, a.Period))
	}
	for i, pct := range a.Percentiles {
		switch {
		case !(pct > 0 && pct <= 100):
			p.add("aggregate.percentiles", fmt.Sprintf("each must be above 0 and at most 100, got %v", pct))
		case slices.Contains(a.Percentiles[:i], pct):
			p.add("aggregate.percentiles", fmt.Sprintf("%v is listed twice", pct))
		}
	}
	if a.Prefix != "" {
		if max := librato.MaxNameLen - 2; len(a.Prefix) > max { // room for "." and a name
			p.add("aggregate.prefix", fmt.Sprintf(`must be 1 to %d bytes (room for "." and a name), got %d`, max, len(a.Prefix)))
		} else {
			p.check("aggregate.prefix", librato.CheckName(a.Prefix))
		}
		if strings.HasSuffix(a.Prefix, ".") {
			p.add("aggregate.prefix", `must not end with "." (the "." before the name is added)`)
		}
	}
	p.between("aggregate.shards", a.Shards, 0, maxShards, " (0: the default)")
	p.between("aggregate.max_series", a.MaxSeries, 0, maxCount, " (0: no bound)")
	p.between("aggregate.max_timer_samples", a.MaxTimerSamples, 1, maxCount, "")
	p.between("aggregate.max_set_members", a.MaxSetMembers, 1, maxCount, "")
	p.between("aggregate.gauge_base_ttl", a.GaugeBaseTTL, 1, 65536, " periods")
	if a.TimestampGrace < 0 || a.TimestampGrace > a.Period && a.Period >= time.Second {
		p.add("aggregate.timestamp_grace", fmt.Sprintf(`must be from 0 (off) to the period (%s), got %s`, a.Period, a.TimestampGrace))
	}
	if m := a.MemoryLimit; m != 0 && (m < MinMemoryLimit || m > MaxMemoryLimit) {
		p.add("aggregate.memory_limit", fmt.Sprintf("expected 0 (derived from max_series) or a size between %s and %s, got %s", MinMemoryLimit, MaxMemoryLimit, m))
	}
	if err := ingest.CheckLevel(a.MinLevel); err != nil {
		p.add("aggregate.min_level", err.Error())
	}

	lb := &c.Librato
	if lb.API != APITagged && lb.API != APILegacy {
		p.add("librato.api", fmt.Sprintf("expected %q or %q, got %q", APITagged, APILegacy, lb.API))
	}
	p.check("librato.url", librato.CheckURL(lb.URL))
	if !lb.Enabled && !c.OTLP.On() {
		p.add("librato.enabled", `no output is on: set [otlp] endpoint, or turn [librato] enabled back on`)
	}
	if lb.Token == "" && !dryRun && lb.Enabled {
		p.add("librato.token", "required: set it in the file or in the LIBRATO_TOKEN environment variable (a dry run needs none)")
	}
	if lb.Source != "" {
		p.check("librato.source", librato.CheckSource(lb.Source))
	}
	p.between("librato.batch_size", lb.BatchSize, 1, maxBatchSize, " measurements")
	p.positive("librato.timeout", lb.Timeout)
	p.between("librato.concurrency", lb.Concurrency, 1, maxCount, "")
	p.between("librato.max_attempts", lb.MaxAttempts, 1, maxCount, "")
	p.positive("librato.shutdown_timeout", lb.ShutdownTimeout)
	p.between("librato.backlog", lb.Backlog, 0, maxCount, " measurements (0: keep nothing undelivered)")
	p.positive("librato.max_age", lb.MaxAge)
	if lb.SpoolMaxBytes < minSpoolBytes || lb.SpoolMaxBytes > maxSpoolBytes {
		p.add("librato.spool_max_bytes", fmt.Sprintf("expected a size between %s and %s, got %s", minSpoolBytes, maxSpoolBytes, lb.SpoolMaxBytes))
	}
	p.pattern("librato.source_regex", lb.SourceRegex)
	switch lb.CountersAs {
	case "gauge":
	case "counter":
		if lb.API != APILegacy {
			p.add("librato.counters_as", `"counter" needs api = "legacy": the tagged API has no counters`)
		}
	default:
		p.add("librato.counters_as", fmt.Sprintf(`expected "gauge" or "counter", got %q`, lb.CountersAs))
	}
	if lb.EventsStream != "" {
		p.check("librato.events_stream", librato.CheckName(lb.EventsStream))
	}
	for _, re := range lb.Include {
		p.pattern("librato.include", re)
	}
	for _, re := range lb.Exclude {
		p.pattern("librato.exclude", re)
	}
	if lb.SourceRegex != "" {
		if re, err := regexp.Compile(lb.SourceRegex); err == nil && re.NumSubexp() == 0 {
			p.add("librato.source_regex", "needs a capture group: its text becomes the source")
		}
	}

	p.otlp(&c.OTLP)

	limit := librato.MaxTags
	if lb.HostTag {
		limit-- // the host tag counts
	}
	if len(c.Tags) > limit {
		p.add(tagsKey, fmt.Sprintf("at most %d tags (Librato allows %d a measurement, host_tag included), got %d", limit, librato.MaxTags, len(c.Tags)))
	}
	for _, name := range slices.Sorted(maps.Keys(c.Tags)) {
		key := toml.Key{tagsKey, name}.String()
		if err := librato.CheckTagName(name); err != nil {
			p.add(key, "name "+err.Error())
		}
		if err := librato.CheckTagValue(c.Tags[name]); err != nil {
			p.add(key, "value "+err.Error())
		}
	}

	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		p.add("log.level", fmt.Sprintf(`expected "debug", "info", "warn" or "error", got %q`, c.Log.Level))
	}
	switch c.Log.Format {
	case "json", "console":
	default:
		p.add("log.format", fmt.Sprintf(`expected "json" or "console", got %q`, c.Log.Format))
	}

	p.address("metrics.listen", c.Metrics.Listen)
	if m := c.Metrics.Listen; m != "" && m == l.TCP && !strings.HasSuffix(m, ":0") {
		p.add("metrics.listen", fmt.Sprintf("%q is also listen.tcp: both cannot listen there", m))
	}

	pr := &c.Prometheus
	p.address("prometheus.listen", pr.Listen)
	if a := pr.Listen; a != "" && !strings.HasSuffix(a, ":0") {
		for _, other := range []struct{ key, addr string }{{"listen.tcp", l.TCP}, {"metrics.listen", c.Metrics.Listen}} {
			if a == other.addr {
				p.add("prometheus.listen", fmt.Sprintf("%q is also %s: both cannot listen there", a, other.key))
			}
		}
	}
	p.between("prometheus.max_series", pr.MaxSeries, 0, maxCount, " (0: aggregate.max_series)")
	if pr.Expire < 0 {
		p.add("prometheus.expire", fmt.Sprintf(`must be 0 (never) or more, like "5m", got %s`, pr.Expire))
	}
	if pr.TimerAs != TimerAsSummary && pr.TimerAs != TimerAsHistogram {
		p.add("prometheus.timer_as", fmt.Sprintf("expected %q or %q, got %q", TimerAsSummary, TimerAsHistogram, pr.TimerAs))
	}
	for i, b := range pr.Buckets {
		switch {
		case math.IsNaN(b) || math.IsInf(b, 0):
			p.add("prometheus.buckets", fmt.Sprintf("each must be a finite number (the +Inf bucket is always there), got %v", b))
		case i > 0 && !math.IsNaN(pr.Buckets[i-1]) && !(b > pr.Buckets[i-1]):
			p.add("prometheus.buckets", fmt.Sprintf("must increase: %v follows %v", b, pr.Buckets[i-1]))
		}
	}
	if pr.TimerAs == TimerAsHistogram && len(pr.Buckets) == 0 {
		p.add("prometheus.buckets", `at least one bound is needed with timer_as = "histogram"`)
	}
	return p
}

// maxShutdownLinger bounds listen.shutdown_linger: longer, a stop would wait
// for minutes (and outlast any orchestrator's grace period).
const maxShutdownLinger = 5 * time.Minute

// maxCount bounds the counts that have no natural limit.
const maxCount = 1<<31 - 1

// problems collects *FieldError values.
type problems []error

// add records a problem with key.
func (p *problems) add(key, problem string) {
	*p = append(*p, &FieldError{Key: key, Problem: problem})
}

// between checks lo <= v <= hi; unit follows the numbers in the message.
func (p *problems) between(key string, v, lo, hi int, unit string) {
	if v < lo || v > hi {
		p.add(key, fmt.Sprintf("must be between %d and %d%s, got %d", lo, hi, unit, v))
	}
}

// positive checks d > 0.
func (p *problems) positive(key string, d time.Duration) {
	if d <= 0 {
		p.add(key, fmt.Sprintf(`must be more than 0, like "10s", got %s`, d))
	}
}

// address checks that addr is "" or "host:port" with a numeric port.
func (p *problems) address(key, addr string) {
	if addr == "" {
		return
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		p.add(key, fmt.Sprintf(`expected "host:port" like "127.0.0.1:8125", or "" to disable, got %q`, addr))
		return
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		p.add(key, fmt.Sprintf("port must be a number from 0 to 65535, got %q", port))
	}
}

// check records err, when not nil, as the problem of key.
func (p *problems) check(key string, err error) {
	if err != nil {
		p.add(key, err.Error())
	}
}

// pattern checks that s, when set, is a regular expression (RE2 syntax).
func (p *problems) pattern(key, s string) {
	if s == "" {
		return
	}
	if _, err := regexp.Compile(s); err != nil {
		p.add(key, fmt.Sprintf("not a regular expression: %v", err))
	}
}

// maxOTLPBatch bounds otlp.batch_size: a request of 10,000 points stays
// within the few MB that receivers take by default.
const maxOTLPBatch = 10000

// otlp checks the [otlp] table, when the output is on.
func (p *problems) otlp(o *OTLP) {
	if !o.On() {
		return
	}
	headers := map[string]string{}
	for k, v := range o.Headers {
		headers[k] = v
	}
	if _, err := otlp.New(otlp.Config{Endpoint: o.Endpoint, Headers: headers}); err != nil {
		p.add("otlp", err.Error())
	}
	for k := range o.Headers {
		if strings.EqualFold(k, "authorization") && o.Token != "" {
			p.add("otlp.headers", "an Authorization header and otlp.token are both set: keep one (token sends \"Authorization: Bearer <token>\")")
		}
	}
	if o.Temporality != TemporalityDelta && o.Temporality != TemporalityCumulative {
		p.add("otlp.temporality", fmt.Sprintf("expected %q or %q, got %q", TemporalityDelta, TemporalityCumulative, o.Temporality))
	}
	if o.TimersAs != TimersAsExponentialHistogram && o.TimersAs != TimersAsSummaryOTLP {
		p.add("otlp.timers_as", fmt.Sprintf("expected %q or %q, got %q", TimersAsExponentialHistogram, TimersAsSummaryOTLP, o.TimersAs))
	}
	p.between("otlp.batch_size", o.BatchSize, 1, maxOTLPBatch, " data points")
	p.positive("otlp.timeout", o.Timeout)
	p.between("otlp.concurrency", o.Concurrency, 1, maxCount, "")
	p.between("otlp.max_attempts", o.MaxAttempts, 1, maxCount, "")
	p.between("otlp.backlog", o.Backlog, 0, maxCount, " data points (0: keep nothing undelivered)")
	p.positive("otlp.max_age", o.MaxAge)
}
