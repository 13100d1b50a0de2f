package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/libratod/libratod/flusher"
	"github.com/libratod/libratod/spool"
)

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
	ev := d.log.Info().Str("version", version).Dur("period", d.cfg.Aggregate.Period)
	if d.cfg.Librato.Enabled {
		ev = ev.Str("api", d.cfg.Librato.API).Str("url", d.cfg.Librato.URL)
	} else {
		ev = ev.Str("librato", "off")
	}
	if d.cfg.OTLP.On() {
		// The endpoint as configured: Validate refuses user information.
		ev = ev.Str("otlp", d.cfg.OTLP.Endpoint).Str("temporality", d.cfg.OTLP.Temporality)
	}
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
	for _, sp := range []*spool.Spool{d.spool, d.otlpSpool} {
		if sp == nil {
			continue
		}
		// What is still undelivered stays in the spool for the next start.
		if err := sp.Close(); err != nil {
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
		Uint64("tcp_connections_reset", reset)
	for _, o := range res.Outputs {
		// Each output's own accounting: measurements (+ carried) = sent +
		// dropped + undelivered, per output.
		ev = ev.Dict(o.Output, zerolog.Dict().Int("measurements", o.Measurements).Int("carried", o.Carried).
			Int("sent", o.Sent).Int("dropped", o.Dropped).Int("undelivered", o.Pending))
	}
	ev.Msg("libratod stopped")
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
