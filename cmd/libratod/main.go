// Command libratod is a StatsD-compatible aggregation daemon that forwards
// to Librato and SolarWinds AppOptics.
//
// Usage:
//
//	libratod [-config /etc/libratod.toml] [-check [-online]] [-dry-run] [-version] [-health]
//
// It listens for StatsD lines on UDP and TCP, aggregates them per period
// and posts the result to Librato. SIGINT and SIGTERM stop it after a
// final flush (SIGTERM after [listen] shutdown_linger, if set); see
// README.md for the configuration.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/libratod/libratod/cmd/libratod/internal/config"
	"github.com/libratod/libratod/cmd/libratod/internal/sdnotify"
	"github.com/libratod/libratod/spool"
)

// version is the release, stamped at build time with
// -ldflags "-X main.version=1.2.3".
var version = "dev"

// Exit codes.
const (
	exitOK     = 0
	exitFail   = 1 // the daemon could not start or failed while running
	exitConfig = 2 // the command line or the configuration is wrong
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

// run is main without the process: it parses args, loads the config and
// runs the daemon until SIGINT or SIGTERM, returning the exit code.
func run(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("libratod", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "/etc/libratod.toml", "path of the TOML configuration `file`")
	check := fs.Bool("check", false, "validate the configuration, print what libratod would do, and exit")
	online := fs.Bool("online", false, "with -check: also send one authenticated request to each output (a read-only GET to librato.url, an empty OTLP request to otlp.endpoint) and report reachability and credentials (and Librato's rate-limit headers); exit 1 unless all pass")
	dryRun := fs.Bool("dry-run", false, "write each request to standard output instead of sending it: Librato's as JSON, OTLP's as OTLP/JSON, one a line (no token needed)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	health := fs.Bool("health", false, "ask the running daemon's /healthz (at metrics.listen in the config); exit 0 if it answers 200, else 1")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitConfig
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "libratod: unexpected arguments %q\n", fs.Args())
		return exitConfig
	}
	if *online && (!*check || *dryRun) {
		fmt.Fprintln(stderr, "libratod: -online goes with -check, and not with -dry-run")
		return exitConfig
	}
	if *showVersion {
		fmt.Fprintln(stdout, "libratod", versionString())
		return exitOK
	}

	if *health {
		return runHealth(*path, getenv, stdout, stderr)
	}

	cfg, err := config.Load(*path, getenv)
	if err == nil {
		err = cfg.Validate(*dryRun)
	}
	if err != nil {
		fmt.Fprintf(stderr, "libratod: configuration %s:\n%v\n", *path, err)
		return exitConfig
	}
	if *check {
		cfg.Describe(stdout)
		if cfg.Librato.SpoolDir != "" {
			if err := spool.Check(cfg.Librato.SpoolDir); err != nil {
				fmt.Fprintf(stderr, "libratod: configuration %s:\nlibrato.spool_dir: %v\n", *path, err)
				return exitConfig
			}
		}
		if *dryRun {
			fmt.Fprintln(stdout, "dry run: requests are written to standard output, not sent")
		}
		if *online {
			return runOnlineCheck(context.Background(), cfg, stdout)
		}
		return exitOK
	}

	// The daemon reads the signals itself rather than through a context: a
	// second one ends [listen] shutdown_linger.
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(signals)
	opts := options{stderr: stderr, notify: sdnotify.FromEnv(getenv), configPath: *path, getenv: getenv, signals: signals}
	if *dryRun {
		opts.dryRun = stdout
	}
	d, err := newDaemon(cfg, opts)
	if err != nil {
		fmt.Fprintf(stderr, "libratod: %v\n", err)
		return exitFail
	}
	// A soft limit: the heap does not grow to twice what is live when
	// that would pass it (a million series and a flush, see README).
	if limit, from := memoryLimit(cfg, getenv); limit > 0 {
		defer debug.SetMemoryLimit(debug.SetMemoryLimit(limit))
		d.log.Info().Int64("memory_limit", limit).Str("from", from).Msg("memory limit set")
	} else {
		d.log.Debug().Str("from", from).Msg("no memory limit set")
	}
	if p, from := gcPercent(getenv); p > 0 {
		defer debug.SetGCPercent(debug.SetGCPercent(p))
		d.log.Info().Int("gc_percent", p).Str("from", from).Msg("garbage collector target set")
	} else {
		d.log.Debug().Str("from", from).Msg("garbage collector target left to GOGC")
	}
	if err := d.run(context.Background()); err != nil {
		d.log.Error().Err(err).Msg("libratod stopped on an error")
		return exitFail
	}
	return exitOK
}
