package main

import (
	"fmt"
	"io"
	"regexp"
	"sort"
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

// reload re-reads the configuration file and applies what can change
// while running (the keys tagged reload:"live" in package config): delivery
// settings, credentials, tags, prefix, percentiles, min_level, tag_syntaxes
// and the log level. The others keep their running values (a warning names
// those that changed). A configuration that does not load or validate is
// logged and the running one kept. Aggregated data is never touched.
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
	if keys := config.KeepRestartValues(d.cfg, cur); len(keys) > 0 {
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
