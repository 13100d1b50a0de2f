package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
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
	host    string
	levels  *levelWriter // the reloadable log level
	fm      *flusher.Metrics
	// observers are told of every period besides Librato (see flusher.Observer).
	observers []flusher.Observer
	hup       chan os.Signal // SIGHUP: reload
	// self sends the self-metrics to Librato ([metrics] to_librato); nil when off.
	self *selfReport
	// annotations queues the annotations made from events for the flusher.
	annotations *flusher.Annotations
	ingest      *ingest.Handler
	health      *health           // /healthz and /readyz (health.go)
	notify      sdnotify.Notifier // systemd notifications (notify.go)

	// expo is the Prometheus exposition of the StatsD series
	// ([prometheus]), served by expoSrv on expoLn; nil when disabled.
	expo    *exposition.Store
	expoSrv *http.Server
	expoLn  net.Listener
	// spool keeps what Librato has not taken across restarts
	// ([librato] spool_dir); nil when off.
	spool *spool.Spool
}

// openSpool opens the spool of [librato] spool_dir, with one fsync per
// period rather than per request (the flusher calls Sync).
func openSpool(cfg config.Librato) (*spool.Spool, error) {
	sp, err := spool.Open(context.Background(), spool.Config{
		Dir: cfg.SpoolDir, MaxBytes: int64(cfg.SpoolMaxBytes), NoSync: true,
	})
	if errors.Is(err, spool.ErrLocked) {
		return nil, fmt.Errorf("librato.spool_dir %s is in use by another libratod (one daemon per spool directory): %w", cfg.SpoolDir, err)
	}
	if err != nil {
		return nil, fmt.Errorf("librato.spool_dir %s cannot be used (set it to a writable directory, or to \"\" to keep undelivered data in memory only): %w", cfg.SpoolDir, err)
	}
	return sp, nil
}

// newDaemon wires the stages for cfg; nothing runs until run.
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

	reg := prometheus.NewRegistry()
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, err
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, err
	}
	if err := registerBuildInfo(reg); err != nil {
		return nil, err
	}
	fm, err := flusher.NewMetrics(reg)
	if err != nil {
		return nil, err
	}

	d := &daemon{cfg: cfg, log: log, reg: reg, ready: make(chan struct{}), opts: opts, host: host, levels: levels, fm: fm,
		hup: make(chan os.Signal, 1), annotations: flusher.NewAnnotations(maxQueuedAnnotations)}
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

	if cfg.Prometheus.Listen != "" {
		if err := d.newExposition(cfg); err != nil {
			return nil, err
		}
	}
	if cfg.Metrics.ToLibrato {
		d.self = newSelfReport(reg, cfg.Librato.API == config.APILegacy)
	}
	fcfg := d.flusherConfig(cfg)
	if cfg.Librato.SpoolDir != "" {
		if d.spool, err = openSpool(cfg.Librato); err != nil {
			return nil, err
		}
		defer func() {
			if err != nil {
				d.spool.Close()
			}
		}()
		fcfg.Spool = d.spool
	}
	d.flusher = flusher.New(fcfg, d.agg, client)
	if c := d.flusher.SpoolCollector(); c != nil {
		if err = reg.Register(c); err != nil {
			return nil, err
		}
	}

	var events ingest.EventSink
	if cfg.Librato.EventsStream != "" {
		events = &flusher.EventAnnotations{Stream: cfg.Librato.EventsStream, Host: host, Queue: d.annotations,
			Dropped: fm.Annotation("dropped"), Now: time.Now}
	}
	in, err := ingest.New(ingest.Config{
		Aggregator:  d.agg,
		Registerer:  reg,
		Dropped:     fm.Dropped,
		TagsDropped: fm.TagsDropped,
		Logger:      log,
		TagSyntaxes: cfg.Listen.TagSyntaxes,
		MinLevel:    cfg.Aggregate.MinLevel,
		Period:      cfg.Aggregate.Period,
		Events:      events,
	})
	if err != nil {
		return nil, err
	}
	d.ingest = in
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
	}, in)
	if err := registerListenerMetrics(reg, d.lst); err != nil {
		return nil, err
	}

	d.notify = opts.notify
	d.health = newHealth(d.ready, d.flusher.Status, cfg.Aggregate.Period)
	if cfg.Metrics.Listen != "" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
		d.health.register(mux)
		d.metrics = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	}
	return d, nil
}

// run starts every stage, serves until ctx ends, then stops reading,
// flushes the open period and returns. SIGHUP is caught and logged.
func (d *daemon) run(ctx context.Context) error {
	if d.metrics != nil {
		ln, stop, err := d.serve("metrics.listen", d.cfg.Metrics.Listen, d.metrics)
		if err != nil {
			return err
		}
		d.metLn = ln
		defer stop()
	}
	if d.expoSrv != nil {
		ln, stop, err := d.serve("prometheus.listen", d.cfg.Prometheus.Listen, d.expoSrv)
		if err != nil {
			return err
		}
		d.expoLn = ln
		defer stop()
	}
	if err := d.lst.Start(); err != nil {
		return err
	}
	ev := d.log.Info().Str("version", version).Str("api", d.cfg.Librato.API).
		Str("url", d.cfg.Librato.URL).Dur("period", d.cfg.Aggregate.Period)
	if a := d.lst.UDPAddr(); a != nil {
		ev = ev.Str("udp", a.String())
	}
	if a := d.lst.TCPAddr(); a != nil {
		ev = ev.Str("tcp", a.String())
	}
	if a := d.lst.UnixgramAddr(); a != nil {
		ev = ev.Str("unixgram", a.String())
	}
	if d.metLn != nil {
		ev = ev.Str("metrics", d.metLn.Addr().String())
	}
	if d.expoLn != nil {
		ev = ev.Str("prometheus", d.expoLn.Addr().String())
	}
	ev.Msg("libratod started")
	close(d.ready)
	stopWatchdog := d.notifyStarted()
	defer stopWatchdog()

	flushCtx, stopFlush := context.WithCancel(context.Background())
	defer stopFlush()
	final := make(chan flusher.Result, 1)
	go func() { final <- d.flusher.Run(flushCtx) }()

	signal.Notify(d.hup, syscall.SIGHUP)
	defer signal.Stop(d.hup)
	var stopSignal os.Signal // nil when ctx ended
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case stopSignal = <-d.opts.signals:
			done = true
		case <-d.hup:
			d.reload()
		}
	}

	d.notifyStopping()
	linesAtStop := d.ingest.LinesReceived()
	d.linger(stopSignal)
	d.log.Info().Msg("stopping: draining sockets and flushing the open period")
	sctx, cancel := context.WithTimeout(context.Background(), d.cfg.Librato.ShutdownTimeout)
	err := d.lst.Stop(sctx)
	cancel()
	if err != nil {
		d.log.Warn().Err(err).Msg("listeners did not stop in time")
	}
	stopFlush()
	res := <-final
	if d.spool != nil {
		// What is still undelivered stays in the spool for the next start.
		if err := d.spool.Close(); err != nil {
			d.log.Warn().Err(err).Msg("spool: closing failed; what it holds survives a crash of the process, maybe not of the machine")
		}
	}
	// The self-metrics end with the process: what the shutdown lost is in
	// the last log line too.
	reset := d.lst.Stats().TCPResetAtShutdown
	ev = d.log.Info()
	if res.Pending > 0 || res.Dropped > 0 || reset > 0 {
		ev = d.log.Warn()
	}
	ev.Int("series", res.Series).Int("measurements", res.Measurements).Int("carried", res.Carried).
		Int("sent", res.Sent).Int("dropped", res.Dropped).Int("undelivered", res.Pending).
		Uint64("lines_after_sigterm", d.ingest.LinesReceived()-linesAtStop).
		Uint64("tcp_connections_reset", reset).Msg("libratod stopped")
	return nil
}

// linger keeps the listeners receiving for [listen] shutdown_linger after
// the stop signal sig (nil: run's ctx ended, taken as a SIGTERM), so that
// an application stopped at the same time is still heard. SIGINT skips it
// (someone at a terminal wants the daemon to stop), and another stop
// signal during it ends it at once. /readyz already fails.
func (d *daemon) linger(sig os.Signal) {
	linger := d.cfg.Listen.ShutdownLinger
	if linger <= 0 || sig == os.Interrupt {
		return
	}
	d.log.Info().Dur("shutdown_linger", linger).Msg("stopping: still receiving for shutdown_linger")
	t := time.NewTimer(linger)
	defer t.Stop()
	select {
	case <-t.C:
	case sig := <-d.opts.signals:
		d.log.Info().Str("signal", sig.String()).Msg("stopping: shutdown_linger cut short by a second signal")
	}
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

// newExposition makes the Prometheus exposition of the StatsD series
// ([prometheus]): a store that observes every period, and its server,
// which run starts.
func (d *daemon) newExposition(cfg *config.Config) error {
	p := cfg.Prometheus
	maxSeries := p.MaxSeries
	if maxSeries == 0 {
		maxSeries = cfg.Aggregate.MaxSeries
	}
	d.expo = exposition.New(exposition.Config{
		Percentiles:      cfg.Aggregate.Percentiles,
		Histogram:        p.TimerAs == config.TimerAsHistogram,
		Buckets:          p.Buckets,
		TimerUnitSeconds: p.TimerUnitSeconds,
		Prefix:           cfg.Aggregate.Prefix,
		Labels:           cfg.Tags,
		MaxSeries:        maxSeries,
		Expire:           p.Expire,
	})
	if err := d.expo.Register(d.reg); err != nil {
		return fmt.Errorf("prometheus self-metrics: %w", err)
	}
	d.observers = append(d.observers, d.expo)
	mux := http.NewServeMux()
	mux.Handle("/metrics", d.expo)
	d.expoSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	return nil
}

// serve listens on addr (the value of key) and serves srv there until
// stop is called.
func (d *daemon) serve(key, addr string, srv *http.Server) (ln net.Listener, stop func(), err error) {
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", key, addr, err)
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error().Err(err).Str("server", key).Msg("HTTP server stopped")
		}
	}()
	return ln, func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}, nil
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
