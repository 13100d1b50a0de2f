package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/libratod/libratod/aggregator"
	"github.com/libratod/libratod/cmd/libratod/internal/config"
	"github.com/libratod/libratod/cmd/libratod/internal/sdnotify"
	"github.com/libratod/libratod/exposition"
	"github.com/libratod/libratod/flusher"
	"github.com/libratod/libratod/ingest"
	"github.com/libratod/libratod/librato"
	"github.com/libratod/libratod/listener"
	"github.com/libratod/libratod/otlp"
	"github.com/libratod/libratod/spool"
)

// options are the parts of a daemon's setup that come from the command
// line rather than the config file.
type options struct {
	stderr   io.Writer // logs
	dryRun   io.Writer // non-nil: requests are written here instead of sent
	hostname string    // "" means os.Hostname
	// configPath and getenv are where a reload (SIGHUP) reads the
	// configuration again; an empty path disables reload.
	configPath string
	getenv     func(string) string
	notify     sdnotify.Notifier // systemd notifications; the zero value sends none
	// signals delivers the stop signals (SIGINT, SIGTERM). The first one
	// stops the daemon as the end of run's ctx does; during the linger
	// ([listen] shutdown_linger) another one ends the linger. nil: only
	// ctx stops the daemon.
	signals <-chan os.Signal
	// now is the flusher's clock, which places periods; nil means time.Now.
	now func() time.Time
}

// daemon is one running libratod: every stage wired together.
type daemon struct {
	cfg     *config.Config
	log     zerolog.Logger
	reg     *prometheus.Registry
	agg     *aggregator.Aggregator
	lst     *listener.Listener
	flusher *flusher.Flusher
	metrics *http.Server
	metLn   net.Listener
	ready   chan struct{} // closed once every listener is bound
	opts    options
	levels  *levelWriter   // the reloadable log level
	hup     chan os.Signal // SIGHUP: reload
	// parts are what the flusher's configuration holds besides the file's
	// settings, kept for reloads.
	parts  flusherParts
	ingest *ingest.Handler
	health *health           // /healthz and /readyz (health.go)
	notify sdnotify.Notifier // systemd notifications (notify.go)

	// expo is the Prometheus exposition of the StatsD series
	// ([prometheus]), served by expoSrv on expoLn; nil when disabled.
	expo    *exposition.Store
	expoSrv *http.Server
	expoLn  net.Listener
	// spool keeps what Librato has not taken across restarts
	// ([librato] spool_dir); nil when off. otlpSpool is the OTLP
	// output's (spool_dir/otlp).
	spool, otlpSpool *spool.Spool
}

// openSpool opens the spool in dir (librato.spool_dir, or its otlp
// subdirectory), with one fsync per
// period rather than per request (the flusher calls Sync).
func openSpool(dir string, maxBytes config.ByteSize) (*spool.Spool, error) {
	sp, err := spool.Open(context.Background(), spool.Config{
		Dir: dir, MaxBytes: int64(maxBytes), NoSync: true,
	})
	if errors.Is(err, spool.ErrLocked) {
		return nil, fmt.Errorf("librato.spool_dir %s is in use by another libratod (one daemon per spool directory): %w", dir, err)
	}
	if err != nil {
		return nil, fmt.Errorf("librato.spool_dir %s cannot be used (set it to a writable directory, or to \"\" to keep undelivered data in memory only): %w", dir, err)
	}
	return sp, nil
}

// newDaemon builds every stage for cfg, each from a complete configuration
// and in the order they depend on each other; nothing runs until run.
func newDaemon(cfg *config.Config, opts options) (_ *daemon, err error) {
	log, levels, err := newLogger(cfg.Log, opts.stderr)
	if err != nil {
		return nil, err
	}
	host := opts.hostname
	if host == "" {
		if host, err = os.Hostname(); err != nil {
			return nil, fmt.Errorf("host name: %w", err)
		}
	}
	client, err := newClient(cfg, opts.dryRun)
	if err != nil {
		return nil, err
	}
	otlpClient, err := newOTLPClient(cfg)
	if err != nil {
		return nil, err
	}
	d := &daemon{cfg: cfg, log: log, ready: make(chan struct{}), opts: opts, levels: levels,
		hup: make(chan os.Signal, 1), notify: opts.notify}

	// The self-metrics registry, which the stages register with.
	d.reg = prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		if err := d.reg.Register(c); err != nil {
			return nil, err
		}
	}
	if err := registerBuildInfo(d.reg); err != nil {
		return nil, err
	}
	fm, err := flusher.NewMetrics(d.reg)
	if err != nil {
		return nil, err
	}

	d.agg = aggregator.New(aggregator.Config{
		Shards:          cfg.Aggregate.Shards,
		GaugeDeltas:     cfg.Aggregate.GaugeDeltas,
		MaxSeries:       cfg.Aggregate.MaxSeries,
		MaxTimerSamples: cfg.Aggregate.MaxTimerSamples,
		MaxSetMembers:   cfg.Aggregate.MaxSetMembers,
		GaugeBaseTTL:    cfg.Aggregate.GaugeBaseTTL,
		KeepTags:        keepTags(cfg),
		Sanitizer:       flusher.Names{API: libratoAPI(cfg)},
	})

	// What the flusher needs besides the file's settings, then the flusher.
	d.parts = flusherParts{host: host, annotations: flusher.NewAnnotations(maxQueuedAnnotations),
		metrics: fm, log: log, now: opts.now}
	if cfg.Prometheus.Listen != "" {
		if d.expo, d.expoSrv, err = newExposition(cfg, d.reg); err != nil {
			return nil, err
		}
		d.parts.observers = []flusher.Observer{d.expo}
	}
	if cfg.Metrics.ToLibrato {
		d.parts.extra = newSelfReport(d.reg, cfg.Librato.API == config.APILegacy).measurements
	}
	d.parts.dryRun = opts.dryRun
	if cfg.Librato.SpoolDir != "" && cfg.Librato.Enabled {
		if d.spool, err = openSpool(cfg.Librato.SpoolDir, cfg.Librato.SpoolMaxBytes); err != nil {
			return nil, err
		}
		defer func() {
			if err != nil {
				d.spool.Close()
			}
		}()
		d.parts.spool = d.spool
	}
	if cfg.Librato.SpoolDir != "" && cfg.OTLP.On() {
		if d.otlpSpool, err = openSpool(otlpSpoolDir(cfg), cfg.Librato.SpoolMaxBytes); err != nil {
			return nil, err
		}
		defer func() {
			if err != nil {
				d.otlpSpool.Close()
			}
		}()
		d.parts.otlpSpool = d.otlpSpool
	}
	d.flusher = flusher.New(flusherConfig(cfg, d.parts, otlpClient), d.agg, libratoSender(client))
	if c := d.flusher.SpoolCollector(); c != nil {
		if err = d.reg.Register(c); err != nil {
			return nil, err
		}
	}

	// The ingest stage, then the listeners that feed it.
	var events ingest.EventSink
	if cfg.Librato.EventsStream != "" && cfg.Librato.Enabled { // events are Librato annotations
		events = &flusher.EventAnnotations{Stream: cfg.Librato.EventsStream, Host: host, Queue: d.parts.annotations,
			Dropped: fm.Annotation("dropped"), Now: opts.now}
	}
	if d.ingest, err = ingest.New(ingest.Config{
		Aggregator:  d.agg,
		Registerer:  d.reg,
		Dropped:     fm.Dropped,
		TagsDropped: fm.TagsDropped,
		Logger:      log,
		TagSyntaxes: cfg.Listen.TagSyntaxes,
		MinLevel:    cfg.Aggregate.MinLevel,
		Events:      events,

		ServiceChecks:       cfg.Aggregate.ServiceChecks,
		ServiceCheckHostTag: serviceCheckHostTag(cfg),
	}); err != nil {
		return nil, err
	}
	uid, gid := -1, -1
	if cfg.Listen.Unixgram != "" {
		if uid, gid, err = cfg.Listen.UnixgramOwnerIDs(); err != nil {
			return nil, err
		}
	}
	d.lst = listener.New(listener.Config{
		UDP:               cfg.Listen.UDP,
		TCP:               cfg.Listen.TCP,
		UDPReaders:        cfg.Listen.UDPReaders,
		ReadBuffer:        readBuffer(cfg.Listen.ReadBuffer),
		MaxLineBytes:      int(cfg.Listen.MaxLineBytes),
		TCPIdleTimeout:    cfg.Listen.TCPIdleTimeout,
		TCPMaxConnections: cfg.Listen.TCPMaxConnections,
		Logger:            log,
		Unixgram:          cfg.Listen.Unixgram,
		UnixgramMode:      cfg.Listen.UnixgramFileMode(),
		UnixgramUID:       uid,
		UnixgramGID:       gid,
	}, d.ingest)
	if err := registerListenerMetrics(d.reg, d.lst); err != nil {
		return nil, err
	}

	// Health, and the self-metrics server, which run starts.
	d.health = newHealth(d.ready, d.flusher.Status, cfg.Aggregate.Period)
	if opts.now != nil {
		// The flusher's status is stamped on this clock.
		d.health.now, d.health.started = opts.now, opts.now()
	}
	if cfg.Metrics.Listen != "" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(d.reg, promhttp.HandlerOpts{Registry: d.reg}))
		d.health.register(mux)
		d.metrics = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	}
	return d, nil
}

// registerListenerMetrics exports the listener's counters.
func registerListenerMetrics(reg prometheus.Registerer, l *listener.Listener) error {
	counter := func(name, help string, get func(listener.Stats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return float64(get(l.Stats())) })
	}
	gauge := func(name, help string, get func(listener.Stats) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help},
			func() float64 { return get(l.Stats()) })
	}
	for _, c := range []prometheus.Collector{
		counter("libratod_udp_truncated_total", "UDP datagrams longer than the read buffer, dropped.",
			func(s listener.Stats) uint64 { return s.UDPTruncated }),
		counter("libratod_unixgram_truncated_total", "Unix datagram socket datagrams longer than the read buffer, dropped.",
			func(s listener.Stats) uint64 { return s.UnixgramTruncated }),
		counter("libratod_tcp_connections_accepted_total", "TCP connections accepted.",
			func(s listener.Stats) uint64 { return s.TCPAccepted }),
		counter("libratod_tcp_connections_refused_total", "TCP connections closed at once because tcp_max_connections were open.",
			func(s listener.Stats) uint64 { return s.TCPRefused }),
		counter("libratod_tcp_idle_timeouts_total", "TCP connections closed after tcp_idle_timeout without data.",
			func(s listener.Stats) uint64 { return s.TCPIdleClosed }),
		counter("libratod_tcp_lines_too_long_total", "TCP lines longer than max_line_bytes, dropped.",
			func(s listener.Stats) uint64 { return s.LinesTooLong }),
		counter("libratod_tcp_connections_reset_at_shutdown_total",
			"TCP connections closed at shutdown before they were read to the end (still queued for accept when the drain's time ran out, still sending, or ending in a partial line): what they held is lost.",
			func(s listener.Stats) uint64 { return s.TCPResetAtShutdown }),
		counter("libratod_read_errors_total", "Failed socket reads and accepts.",
			func(s listener.Stats) uint64 { return s.ReadErrors }),
		gauge("libratod_tcp_connections", "TCP connections open now.",
			func(s listener.Stats) float64 { return float64(s.TCPActive) }),
		gauge("libratod_udp_receive_buffer_bytes", "SO_RCVBUF granted to the UDP sockets.",
			func(s listener.Stats) float64 { return float64(s.ReceiveBufferBytes) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "libratod_udp_kernel_drops_total",
			Help: "UDP datagrams the kernel dropped on the listen port because the receive buffers were full (Linux; 0 elsewhere).",
		}, func() float64 { n, _ := l.KernelDrops(); return float64(n) }),
	} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// readBuffer maps listen.read_buffer to the listener's setting: 0 in the
// file means the system default, which the listener spells -1.
func readBuffer(b config.ByteSize) int {
	if b == 0 {
		return -1
	}
	return int(b)
}

// maxQueuedAnnotations bounds the annotations waiting for a flush.
const maxQueuedAnnotations = 10000

// libratoAPI returns the API of librato.api (validated by config).
func libratoAPI(cfg *config.Config) librato.API {
	api, _ := librato.ParseAPI(cfg.Librato.API)
	return api
}

// keepTags returns the tags that make a series: on the legacy API, which
// can express nothing but a source, only "source", so that series
// differing in other tags merge rather than collide; on the tagged API all.
func keepTags(cfg *config.Config) []string {
	if cfg.Librato.API == config.APILegacy {
		return []string{"source"}
	}
	return nil
}

// serviceCheckHostTag is the tag a service check's "h:" host becomes: the
// source on the legacy API, which keeps no other tag, else "host" (a
// tagged API tag and an OTLP point attribute).
func serviceCheckHostTag(cfg *config.Config) string {
	if cfg.Librato.API == config.APILegacy {
		return "source"
	}
	return "host"
}

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

// newClient returns the Librato client for cfg, or nil when the Librato
// output is off.
func newClient(cfg *config.Config, dryRun io.Writer) (*librato.Client, error) {
	if !cfg.Librato.Enabled {
		return nil, nil // no token needed: the flusher never sends to Librato
	}
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

// flusherParts are the parts of the flusher's configuration built with the
// daemon, before the flusher, and kept across reloads; flusherConfig adds
// what the configuration file says.
type flusherParts struct {
	host        string                       // the host tag and the default source
	annotations *flusher.Annotations         // the annotations made from events
	extra       func() []librato.Measurement // the self-metrics ([metrics] to_librato), or nil
	observers   []flusher.Observer           // told of every period besides Librato
	metrics     *flusher.Metrics
	log         zerolog.Logger
	now         func() time.Time // nil: time.Now
	spool       *spool.Spool     // nil: undelivered data in memory only
	otlpSpool   *spool.Spool     // the OTLP output's; nil: in memory only
	dryRun      io.Writer        // non-nil: OTLP requests are written here as OTLP/JSON
}

// flusherConfig returns the flusher's configuration for cfg and the parts
// built before it.
func flusherConfig(cfg *config.Config, p flusherParts, otlpDst flusher.OTLPSender) flusher.Config {
	api, _ := librato.ParseAPI(cfg.Librato.API) // validated by config
	var tags []librato.Tag
	if cfg.Librato.HostTag {
		if _, set := cfg.Tags["host"]; !set {
			tags = append(tags, librato.Tag{Name: "host", Value: p.host})
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
		source = p.host
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
		LibratoOff:         !cfg.Librato.Enabled,
		OTLP:               otlpConfig(cfg, p, otlpDst),
		Include:            include,
		Exclude:            exclude,
		SourceRegex:        sourceRegex,
		Annotations:        p.annotations,
		CountersAsCounters: cfg.Librato.CountersAs == "counter",
		Extra:              p.extra,
		Period:             cfg.Aggregate.Period,
		TimestampGrace:     cfg.Aggregate.TimestampGrace,
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
		Logger:             p.log,
		Metrics:            p.metrics,
		Observers:          p.observers,
		Now:                p.now,
		Spool:              p.spool,
	}
}

// libratoSender returns c as the flusher's Sender: none (a nil interface,
// not a nil *librato.Client) when the Librato output is off.
func libratoSender(c *librato.Client) flusher.Sender {
	if c == nil {
		return nil
	}
	return c
}

// otlpSpoolDir is the OTLP output's spool: a subdirectory of
// librato.spool_dir.
func otlpSpoolDir(cfg *config.Config) string {
	return filepath.Join(cfg.Librato.SpoolDir, "otlp")
}

// newOTLPClient returns the OTLP output's client, or nil when it is off.
func newOTLPClient(cfg *config.Config) (*otlp.Client, error) {
	o := cfg.OTLP
	if !o.On() {
		return nil, nil
	}
	c, err := otlp.New(otlp.Config{
		Endpoint:    o.Endpoint,
		Token:       string(o.Token),
		Headers:     o.Headers,
		UserAgent:   "libratod/" + versionString(),
		Timeout:     o.Timeout,
		DisableGzip: !o.Gzip,
	})
	if err != nil {
		return nil, fmt.Errorf("otlp client: %w", err)
	}
	return c, nil
}

// otlpConfig returns the flusher's configuration of the OTLP output, or
// nil when it is off. The resource says which host sent the points
// (host.name, the "host" global tag if set) and, when set, the service
// (service.name); the other global tags are attributes of every point.
func otlpConfig(cfg *config.Config, p flusherParts, dst flusher.OTLPSender) *flusher.OTLPConfig {
	o := cfg.OTLP
	if !o.On() {
		return nil
	}
	host := p.host
	if h, set := cfg.Tags["host"]; set {
		host = h
	}
	res := otlp.Resource{Attributes: []otlp.Attribute{{Key: "host.name", Value: host}}}
	if o.ServiceName != "" {
		res.Attributes = append(res.Attributes, otlp.Attribute{Key: "service.name", Value: o.ServiceName})
	}
	var attrs []otlp.Attribute
	for _, n := range slices.Sorted(maps.Keys(cfg.Tags)) {
		if n != "host" {
			attrs = append(attrs, otlp.Attribute{Key: n, Value: cfg.Tags[n]})
		}
	}
	temporality := otlp.Delta
	if o.Temporality == config.TemporalityCumulative {
		temporality = otlp.Cumulative
	}
	return &flusher.OTLPConfig{
		OTLPMapping: flusher.OTLPMapping{
			Temporality:     temporality,
			TimersAsSummary: o.TimersAs == config.TimersAsSummaryOTLP,
			BatchSize:       o.BatchSize,
			Resource:        res,
			Attributes:      attrs,
			ScopeVersion:    versionString(),
			MaxCumulative:   cfg.Aggregate.MaxSeries,
		},
		Sender:      dst,
		DryRun:      p.dryRun,
		Concurrency: o.Concurrency,
		MaxAttempts: o.MaxAttempts,
		Backlog:     o.Backlog,
		MaxAge:      o.MaxAge,
		Spool:       p.otlpSpool,
	}
}

// newExposition makes the Prometheus exposition of the StatsD series
// ([prometheus]): a store that observes every period, its self-metrics
// registered with reg, and its server, which run starts.
func newExposition(cfg *config.Config, reg prometheus.Registerer) (*exposition.Store, *http.Server, error) {
	p := cfg.Prometheus
	maxSeries := p.MaxSeries
	if maxSeries == 0 {
		maxSeries = cfg.Aggregate.MaxSeries
	}
	expo := exposition.New(exposition.Config{
		Percentiles:      cfg.Aggregate.Percentiles,
		Histogram:        p.TimerAs == config.TimerAsHistogram,
		Buckets:          p.Buckets,
		TimerUnitSeconds: p.TimerUnitSeconds,
		Prefix:           cfg.Aggregate.Prefix,
		Labels:           cfg.Tags,
		MaxSeries:        maxSeries,
		Expire:           p.Expire,
	})
	if err := expo.Register(reg); err != nil {
		return nil, nil, fmt.Errorf("prometheus self-metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", expo)
	return expo, &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}, nil
}
