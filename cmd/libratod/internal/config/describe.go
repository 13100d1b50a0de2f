package config

import (
	"fmt"
	"io"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/libratod/libratod/parser"
)

// Describe writes what the daemon would do with c, one "what: how" line
// each, for people (a dry run, a startup log). The token and the email are
// shown only as "set" or "empty". Write errors are ignored.
func (c *Config) Describe(w io.Writer) {
	var b strings.Builder
	line := func(what, format string, args ...any) {
		fmt.Fprintf(&b, "%s: %s\n", what, fmt.Sprintf(format, args...))
	}

	l := &c.Listen
	if l.UDP == "" {
		line("udp", "disabled")
	} else {
		readers := "one per CPU"
		if l.UDPReaders > 0 {
			readers = strconv.Itoa(l.UDPReaders)
		}
		buffer := l.ReadBuffer.String()
		if l.ReadBuffer == 0 {
			buffer = "system default"
		}
		line("udp", "%s (readers: %s, read buffer: %s)", l.UDP, readers, buffer)
	}
	if l.TCP == "" {
		line("tcp", "disabled")
	} else {
		line("tcp", "%s (max line: %s, idle timeout: %s, max connections: %d)",
			l.TCP, l.MaxLineBytes, l.TCPIdleTimeout, l.TCPMaxConnections)
	}
	if l.Unixgram == "" {
		line("unixgram", "disabled")
	} else {
		line("unixgram", "%s (mode: %s, owner: %s)", l.Unixgram, l.UnixgramMode, orDefault(l.UnixgramOwner, "libratod's user and group"))
	}
	if l.ShutdownLinger == 0 {
		line("shutdown linger", "none: stop reading at SIGTERM")
	} else {
		line("shutdown linger", "%s: keep receiving this long after SIGTERM", l.ShutdownLinger)
	}
	if syntaxes, err := parser.ParseTagSyntaxes(l.TagSyntaxes); err == nil {
		line("tag syntaxes", "%s", syntaxes)
	}

	a := &c.Aggregate
	line("period", "%s", a.Period)
	pcts := make([]string, len(a.Percentiles))
	for i, p := range a.Percentiles {
		pcts[i] = strconv.FormatFloat(p, 'g', -1, 64)
	}
	line("percentiles", "%s", orNone(strings.Join(pcts, ", ")))
	line("gauge deltas", "%s", onOff(a.GaugeDeltas))
	line("service checks", "%s", onOff(a.ServiceChecks))
	if a.TimestampGrace == 0 {
		line("timestamp grace", "off (a |T line for an ended period is late)")
	} else {
		line("timestamp grace", "%s (each period is sent that much after its end)", a.TimestampGrace)
	}
	line("prefix", "%s", orNone(a.Prefix))
	if a.Shards == 0 {
		line("shards", "default")
	} else {
		line("shards", "%d", a.Shards)
	}
	line("limits", "%d series (0: none), %d timer values a series before percentiles are estimated", a.MaxSeries, a.MaxTimerSamples)
	line("gc target", "heap up to %d%% of what is live between collections (GOGC, when set, wins)", 100+GCPercent)
	if m := c.MemoryLimitFor(); m > 0 {
		line("memory limit", "%s (soft; GOMEMLIMIT, when set, wins)", m)
	} else {
		line("memory limit", "none (GOMEMLIMIT, when set, sets one)")
	}

	lb := &c.Librato
	if !lb.Enabled {
		line("librato", "off")
	}
	line("api", "%s", lb.API)
	line("url", "%s", redactURL(lb.URL))
	if lb.API == APILegacy {
		line("source", "%s", orDefault(lb.Source, "host name"))
	} else {
		line("host tag", "%s", onOff(lb.HostTag))
	}
	line("batch size", "%d", lb.BatchSize)
	line("requests", "%d at once, timeout %s, %d attempts, gzip %s",
		lb.Concurrency, lb.Timeout, lb.MaxAttempts, onOff(lb.Gzip))
	line("shutdown timeout", "%s", lb.ShutdownTimeout)
	line("backlog", "%d measurements, dropped after %s", lb.Backlog, lb.MaxAge)
	if lb.SpoolDir == "" {
		line("spool", "none: undelivered measurements are kept in memory only")
	} else {
		line("spool", "%s, at most %s", lb.SpoolDir, lb.SpoolMaxBytes)
	}
	if lb.SourceRegex != "" {
		line("source from name", "%s", lb.SourceRegex)
	}
	if len(lb.Include) > 0 || len(lb.Exclude) > 0 {
		line("names", "include %s, exclude %s", orNone(strings.Join(lb.Include, " ")), orNone(strings.Join(lb.Exclude, " ")))
	}
	if c.Aggregate.MinLevel != "" {
		line("min level", "%s", c.Aggregate.MinLevel)
	}
	if o := &c.OTLP; !o.On() {
		line("otlp", "off")
	} else {
		line("otlp", "%s/v1/metrics (%s, timers as %s)", strings.TrimSuffix(redactURL(o.Endpoint), "/"), o.Temporality, o.TimersAs)
		line("otlp requests", "%d points each, %d at once, timeout %s, %d attempts, gzip %s",
			o.BatchSize, o.Concurrency, o.Timeout, o.MaxAttempts, onOff(o.Gzip))
		line("otlp backlog", "%d points, dropped after %s", o.Backlog, o.MaxAge)
		if lb.SpoolDir != "" {
			line("otlp spool", "%s/otlp", strings.TrimSuffix(lb.SpoolDir, "/"))
		}
		names := slices.Sorted(maps.Keys(o.Headers))
		line("otlp credentials", "token %s, headers %s (values not shown)", setOrEmpty(o.Token != ""), orNone(strings.Join(names, ", ")))
	}

	tags := make([]string, 0, len(c.Tags))
	for _, name := range slices.Sorted(maps.Keys(c.Tags)) {
		tags = append(tags, name+"="+c.Tags[name])
	}
	global := orNone(strings.Join(tags, ", "))
	if lb.API == APILegacy && len(tags) > 0 {
		global += " (ignored by the legacy API)"
	}
	line("global tags", "%s", global)

	line("log", "%s, %s", c.Log.Level, c.Log.Format)
	line("metrics", "%s", orDefault(c.Metrics.Listen, "disabled"))
	if pr := &c.Prometheus; pr.Listen == "" {
		line("prometheus", "disabled")
	} else {
		timers := pr.TimerAs
		if pr.TimerAs == TimerAsHistogram {
			bounds := make([]string, len(pr.Buckets))
			for i, b := range pr.Buckets {
				bounds[i] = strconv.FormatFloat(b, 'g', -1, 64)
			}
			timers += " [" + strings.Join(bounds, ", ") + "]"
		}
		unit := "values as received"
		if pr.TimerUnitSeconds {
			unit = "values / 1000 (ms to s)"
		}
		maxSeries := pr.MaxSeries
		if maxSeries == 0 {
			maxSeries = a.MaxSeries
		}
		expire := "never"
		if pr.Expire > 0 {
			expire = pr.Expire.String()
		}
		line("prometheus", "%s (timers: %s, %s; %d series (0: none); expire: %s)", pr.Listen, timers, unit, maxSeries, expire)
	}
	line("email", "%s", setOrEmpty(lb.Email != ""))
	line("token", "%s", setOrEmpty(lb.Token != ""))

	_, _ = io.WriteString(w, b.String())
}

// redactURL returns s without any user information, which has no business
// there (Validate rejects it) but must not be shown.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(invalid)"
	}
	u.User = nil
	return u.String()
}

// onOff returns "on" or "off".
func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// setOrEmpty returns "set" or "empty".
func setOrEmpty(set bool) string {
	if set {
		return "set"
	}
	return "empty"
}

// orNone returns s, or "none" when s is empty.
func orNone(s string) string { return orDefault(s, "none") }

// orDefault returns s, or def when s is empty.
func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
