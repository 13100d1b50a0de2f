package main

import (
	"fmt"
	"io"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/rs/zerolog"

	"github.com/libratod/libratod/cmd/libratod/internal/config"
	"github.com/libratod/libratod/flusher"
	"github.com/libratod/libratod/librato"
)

// levelWriter drops log entries below a level that can change while the
// daemon runs (log.level is reloadable); loggers built on it log at every
// level and let it filter.
type levelWriter struct {
	w     io.Writer
	level atomic.Int32
}

func (l *levelWriter) Write(p []byte) (int, error) { return l.w.Write(p) }

// WriteLevel implements zerolog.LevelWriter.
func (l *levelWriter) WriteLevel(level zerolog.Level, p []byte) (int, error) {
	if level < zerolog.Level(l.level.Load()) {
		return len(p), nil
	}
	return l.w.Write(p)
}

func (l *levelWriter) set(level zerolog.Level) { l.level.Store(int32(level)) }

// newLogger returns the daemon's logger and the writer that filters its
// level.
func newLogger(cfg config.Log, w io.Writer) (zerolog.Logger, *levelWriter, error) {
	level, err := zerolog.ParseLevel(cfg.Level)
	if err != nil {
		return zerolog.Nop(), nil, fmt.Errorf("log.level: %w", err)
	}
	if cfg.Format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: "2006-01-02T15:04:05Z07:00"}
	}
	lw := &levelWriter{w: w}
	lw.set(level)
	return zerolog.New(lw).Level(zerolog.DebugLevel).With().Timestamp().Logger(), lw, nil
}

// newClient returns the Librato client for cfg.
func newClient(cfg *config.Config, dryRun io.Writer) (*librato.Client, error) {
	api, err := librato.ParseAPI(cfg.Librato.API)
	if err != nil {
		return nil, fmt.Errorf("librato.api: %w", err)
	}
	c, err := librato.New(librato.Config{
		API:       api,
		URL:       cfg.Librato.URL,
		Email:     cfg.Librato.Email,
		Token:     string(cfg.Librato.Token),
		UserAgent: "libratod/" + versionString(),
		Timeout:   cfg.Librato.Timeout,
		Gzip:      cfg.Librato.Gzip,
		DryRun:    dryRun,
	})
	if err != nil {
		return nil, fmt.Errorf("librato client: %w", err)
	}
	return c, nil
}

// flusherConfig returns the flusher's configuration for cfg.
func (d *daemon) flusherConfig(cfg *config.Config) flusher.Config {
	api, _ := librato.ParseAPI(cfg.Librato.API) // validated by config
	var tags []librato.Tag
	if cfg.Librato.HostTag {
		if _, set := cfg.Tags["host"]; !set {
			tags = append(tags, librato.Tag{Name: "host", Value: d.host})
		}
	}
	names := make([]string, 0, len(cfg.Tags))
	for n := range cfg.Tags {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		tags = append(tags, librato.Tag{Name: n, Value: cfg.Tags[n]})
	}
	source := cfg.Librato.Source
	if source == "" {
		source = d.host
	}
	// The patterns were compiled once already by the config's validation.
	compile := func(ps []string) []*regexp.Regexp {
		var out []*regexp.Regexp
		for _, p := range ps {
			if re, err := regexp.Compile(p); err == nil {
				out = append(out, re)
			}
		}
		return out
	}
	include, exclude := compile(cfg.Librato.Include), compile(cfg.Librato.Exclude)
	var sourceRegex *regexp.Regexp
	if re := compile([]string{cfg.Librato.SourceRegex}); cfg.Librato.SourceRegex != "" && len(re) == 1 {
		sourceRegex = re[0]
	}
	return flusher.Config{
		Include:            include,
		Exclude:            exclude,
		SourceRegex:        sourceRegex,
		Annotations:        d.annotations,
		CountersAsCounters: cfg.Librato.CountersAs == "counter",
		Extra:              d.extra(),
		Period:             cfg.Aggregate.Period,
		Percentiles:        cfg.Aggregate.Percentiles,
		API:                api,
		Prefix:             cfg.Aggregate.Prefix,
		Tags:               tags,
		Source:             source,
		BatchSize:          cfg.Librato.BatchSize,
		Concurrency:        cfg.Librato.Concurrency,
		MaxAttempts:        cfg.Librato.MaxAttempts,
		ShutdownTimeout:    cfg.Librato.ShutdownTimeout,
		Backlog:            cfg.Librato.Backlog,
		MaxAge:             cfg.Librato.MaxAge,
		Logger:             d.log,
		Metrics:            d.fm,
		Observers:          d.observers,
		Now:                d.opts.now,
	}
}

// restartKeys returns the keys a reload cannot apply: the sockets, the
// aggregator's shape and the payload shape are fixed for the process.
func restartKeys() []string {
	return []string{
		"listen.udp", "listen.tcp", "listen.udp_readers", "listen.read_buffer", "listen.max_line_bytes",
		"listen.tcp_idle_timeout", "listen.tcp_max_connections",
		"listen.unixgram", "listen.unixgram_mode", "listen.unixgram_owner", "listen.shutdown_linger",
		"aggregate.period", "aggregate.shards", "aggregate.gauge_deltas", "aggregate.max_series",
		"aggregate.max_timer_samples", "aggregate.max_set_members", "aggregate.gauge_base_ttl", "librato.api", "librato.events_stream", "librato.spool_dir", "librato.spool_max_bytes", "log.format", "metrics.listen", "metrics.to_librato",
		"prometheus.listen", "prometheus.max_series", "prometheus.expire", "prometheus.timer_as",
		"prometheus.buckets", "prometheus.timer_unit_seconds",
	}
}

// keepRestartKeys gives cur the running (old) value of every key of
// restartKeys that differs, and returns those keys.
func keepRestartKeys(old, cur *config.Config) []string {
	var changed []string
	for _, k := range restartKeys() {
		o, c := configField(old, k), configField(cur, k)
		if !o.IsValid() || !c.IsValid() {
			continue // not a key of the file: restartKeys is tested against it
		}
		if !reflect.DeepEqual(o.Interface(), c.Interface()) {
			changed = append(changed, k)
			c.Set(o)
		}
	}
	return changed
}

// configField returns the settable field of c that holds key
// ("section.name"), found by the toml tags, or the zero Value.
func configField(c *config.Config, key string) reflect.Value {
	section, name, _ := strings.Cut(key, ".")
	v := reflect.ValueOf(c).Elem()
	for i := range v.NumField() {
		sec := v.Type().Field(i)
		if sec.Tag.Get("toml") != section || sec.Type.Kind() != reflect.Struct {
			continue
		}
		for j := range sec.Type.NumField() {
			if sec.Type.Field(j).Tag.Get("toml") == name {
				return v.Field(i).Field(j)
			}
		}
	}
	return reflect.Value{}
}

// reload re-reads the configuration file and applies what can change
// while running: delivery settings, credentials, tags, prefix,
// percentiles, min_level, tag_syntaxes and the log level. A configuration that does not load or
// validate is logged and the running one kept. Aggregated data is never
// touched.
func (d *daemon) reload() {
	d.notifyReloading()
	defer d.notifyReady()
	if d.opts.configPath == "" {
		d.log.Warn().Msg("SIGHUP: no configuration file to reload")
		return
	}
	cur, err := config.Load(d.opts.configPath, d.opts.getenv)
	if err == nil {
		err = cur.Validate(d.opts.dryRun != nil)
	}
	if err != nil {
		d.log.Error().Str("config", d.opts.configPath).Str("problems", err.Error()).
			Msg("SIGHUP: the new configuration is invalid; keeping the running one")
		return
	}
	if keys := keepRestartKeys(d.cfg, cur); len(keys) > 0 {
		d.log.Warn().Strs("keys", keys).Msg("SIGHUP: these changes need a restart and are not applied")
	}
	client, err := newClient(cur, d.opts.dryRun)
	if err != nil {
		d.log.Error().Err(err).Msg("SIGHUP: keeping the running configuration")
		return
	}
	level, _ := zerolog.ParseLevel(cur.Log.Level) // validated
	d.levels.set(level)
	for _, err := range []error{d.ingest.SetMinLevel(cur.Aggregate.MinLevel), d.ingest.SetTagSyntaxes(cur.Listen.TagSyntaxes)} {
		if err != nil { // validated with the rest of cur: not expected
			d.log.Error().Err(err).Msg("SIGHUP: keeping the running value")
		}
	}
	d.flusher.Reconfigure(d.flusherConfig(cur), client)
	d.cfg = cur
	d.log.Info().Str("config", d.opts.configPath).Msg("SIGHUP: configuration reloaded")
}

// extra returns what the flusher sends besides the StatsD series.
func (d *daemon) extra() func() []librato.Measurement {
	if d.self == nil {
		return nil
	}
	return d.self.measurements
}
