// Command statsd-load sends a configurable mix of StatsD lines to libratod and
// checks that what reaches Librato (a fake one the tool serves) is exactly what
// was sent: nothing lost, nothing doubled. It prints one summary line with the
// rate achieved and, when it started the daemon itself, the daemon's CPU use
// and peak memory.
//
// See the usage text (statsd-load -h) or the "Load tool" section of README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := realMain(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit codes.
const (
	exitOK    = 0
	exitLoss  = 1 // something was lost or doubled, or the run failed
	exitUsage = 2
)

const usageHead = `usage: statsd-load [flags]

Sends StatsD lines to a libratod and checks that what reaches a fake Librato is exactly what
was sent. With -daemon it starts the daemon itself (UDP and TCP on free 127.0.0.1 ports, the
tagged API pointed at the fake, the period of -period), stops it with SIGTERM at the end
(which flushes) and reports its CPU use and peak RSS. Without -daemon it sends to -addr and
serves the fake at -librato-listen: point the daemon's librato.url there (api = "tagged").

With -output otlp the fake is an OTLP/HTTP receiver instead (POST /v1/metrics, protobuf,
gzip or not) and the daemon -daemon starts sends to it only ([librato] enabled = false,
[otlp] temporality = "delta"; cumulative is not supported: the tool adds up what arrives).
With -collector it starts an OpenTelemetry Collector (libratod-otelcol, scripts/tools otelcol)
instead of the daemon: its StatsD receiver on a free UDP port with aggregation_interval
-period, counters as monotonic delta Sums, timers as exponential histograms, its file
exporter read back at the end; sets are not supported by that receiver.

It prints one summary line and exits 1 when anything was lost or doubled (unless -allow-loss),
2 on a bad command line.

Names are PREFIX.TYPE.INDEX (load.c.3); counters send 1, timers 0..999, gauges increasing
values (each gauge name belongs to one sender, so its last value is known), set members unique
over the run (so delivered cardinalities add up to the lines). A unit is a counter's value/rate,
a timer value's weight 1/rate, or a set member; gauges are checked by their last value.

flags:
`

// parseFlags parses the command line into a run configuration and says whether
// to search for the highest zero-loss rate and whether losses only get
// reported.
func parseFlags(args []string, stderr io.Writer) (cfg runConfig, findMax, allowLoss bool, err error) {
	fs := flag.NewFlagSet("statsd-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usageHead)
		fs.PrintDefaults()
	}
	var (
		types   = fs.String("types", "c,g,ms,s", "metric `types` to send, c, g, ms and s, with weights if wanted: c=8,ms=2")
		faults  = fs.String("faults", "", "faults the fake Librato injects, each `WHAT:P` with a probability P per request: an HTTP status\n(503:0.2); delay=D (wait D, then take the request and answer 200 if the client still waits);\nslow=D (take the request, answer 200 after D: a client giving up first resends a request\nalready taken, a duplicate); drop (close the connection unanswered); e.g.\n\"503:0.2,429:0.05,delay=2s:0.05,slow=2s:0.02,drop:0.05\"")
		verbose = fs.Bool("v", false, "log progress and the daemon's log to standard error")
		seed    = fs.Uint64("seed", 0, "seed of the fault rolls; 0 picks one")
		prefix  = fs.String("prefix", "", "name prefix; \"\" makes a fresh one per run (load.r<hex>), so runs never mix")
	)
	fs.StringVar(&cfg.daemon, "daemon", "", "`path` of a built libratod to start, load and stop; without it the tool targets -addr")
	fs.StringVar(&cfg.collector, "collector", "", "`path` of libratod-otelcol (an OpenTelemetry Collector with the StatsD receiver) to start,\nload and stop instead of a daemon; UDP only, no sets, no -faults or -down")
	output := fs.String("output", "librato", "what the fake serves and the daemon sends to: librato (the tagged API) or otlp (OTLP/HTTP)")
	fs.StringVar(&cfg.addr, "addr", "127.0.0.1:8125", "`host:port` of a running daemon (without -daemon)")
	fs.StringVar(&cfg.libratoListen, "librato-listen", "127.0.0.1:0", "`address` the fake Librato listens on")
	fs.DurationVar(&cfg.period, "period", time.Second, "flush period of the daemon the tool starts (whole seconds)")
	fs.IntVar(&cfg.readers, "readers", 0, "udp_readers of the daemon the tool starts; 0: its default (one per CPU)")
	fs.DurationVar(&cfg.settle, "settle", 0, "without -daemon: how long to wait after sending for the daemon's flush; 0: -period + 2s\n(set -period to the daemon's aggregate.period)")
	fs.IntVar(&cfg.gen.names, "names", 100, "distinct names per type")
	fs.IntVar(&cfg.gen.tags, "tags", 2, "DogStatsD tags per line (0 to 40); a name's tags are always the same")
	fs.Float64Var(&cfg.gen.rate, "rate", 1, "sample `rate` of counter and timer lines, sent as |@rate; 1/rate must be whole (0.5, 0.1)")
	fs.IntVar(&cfg.linesPerPacket, "lines-per-packet", 10, "lines per UDP datagram or TCP write (a datagram stops at 60000 bytes)")
	fs.StringVar(&cfg.proto, "proto", "udp", "udp or tcp")
	fs.IntVar(&cfg.gen.conns, "conns", 1, "concurrent senders, each with its own socket")
	fs.DurationVar(&cfg.duration, "duration", 5*time.Second, "how long to send (unless -count)")
	fs.Uint64Var(&cfg.count, "count", 0, "lines to send in all; 0: send for -duration")
	fs.Float64Var(&cfg.pps, "pps", 0, "target lines per second over every sender; 0: as fast as possible")
	fs.IntVar(&cfg.setLimit, "set-limit", 10000, "the daemon's bound on the members one set keeps per period: when a delivered cardinality\ncomes within 10% of it, the daemon may be estimating, so sets are reported apart, not checked exactly")
	fs.BoolVar(&allowLoss, "allow-loss", false, "only report losses: exit 0 anyway")
	fs.DurationVar(&cfg.down, "down", 0, "the fake Librato answers 503 to everything for this long after it starts")
	fs.IntVar(&cfg.floorRounds, "floor", 0, "with -daemon: run `N` rounds of the same traffic, each against a fresh floor (a bare\nreceive loop: this tool as a separate process, reading the daemon's kind of sockets with its\nnumber of UDP readers and counting lines, nothing else) and then a fresh daemon; report each\nside's CPU (cpu-s, cpu-ns/line) and the daemon's CPU per line as a ratio to the floor's")
	fs.BoolVar(&cfg.cardinality, "cardinality", false, "with -daemon: measure the daemon's RSS before sending (idle), start sending just after a\nperiod boundary so every line falls in one period (make -period longer than the sending),\nand report the live series of the fullest period delivered and the peak RSS per series\n(peak - idle) / series; the daemon's max_series is raised to 2*-names (at least 1000)")
	stamps := fs.Float64("timestamps", -1, "stamp every line with a DogStatsD |T of the time it is sent, and this `fraction` (0 to 1)\nof the lines (counters, timers and sets only) with the time one -period earlier (for the daemon's\naggregate.timestamp_grace); below 0, no |T")
	fs.BoolVar(&findMax, "find-max", false, "with -daemon: run again and again (a fresh daemon each time), doubling -pps (from 50000\nwhen 0) until something is lost, then bisecting; report the highest zero-loss rate")

	if err := fs.Parse(args); err != nil {
		return cfg, false, false, err
	}
	if fs.NArg() > 0 {
		return cfg, false, false, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	var problems []error
	bad := func(format string, args ...any) { problems = append(problems, fmt.Errorf(format, args...)) }
	if cfg.gen.mix, err = parseMix(*types); err != nil {
		bad("-types: %w", err)
	}
	if cfg.faults, err = parseFaults(*faults); err != nil {
		bad("-faults: %w", err)
	}
	if err := checkRate(cfg.gen.rate); err != nil {
		bad("-rate: %w", err)
	}
	if *stamps > 1 {
		bad("-timestamps %v: want a fraction from 0 to 1 (below 0: off)", *stamps)
	}
	cfg.gen.stamp, cfg.gen.backFrac, cfg.gen.back = *stamps >= 0, *stamps, int64(cfg.period/time.Second)
	if cfg.proto != "udp" && cfg.proto != "tcp" {
		bad("-proto %q: want udp or tcp", cfg.proto)
	}
	if cfg.period < time.Second || cfg.period%time.Second != 0 {
		bad("-period %v: want whole seconds, at least 1s", cfg.period)
	}
	if cfg.gen.names < 1 || cfg.gen.names > 1_000_000 {
		bad("-names %d: want 1 to 1000000", cfg.gen.names)
	}
	if cfg.gen.tags < 0 || cfg.gen.tags > 40 {
		bad("-tags %d: want 0 to 40", cfg.gen.tags)
	}
	if cfg.linesPerPacket < 1 || cfg.linesPerPacket > 10000 {
		bad("-lines-per-packet %d: want 1 to 10000", cfg.linesPerPacket)
	}
	if cfg.gen.conns < 1 || cfg.gen.conns > 1024 {
		bad("-conns %d: want 1 to 1024", cfg.gen.conns)
	}
	if cfg.gen.mix[gaugeType] > 0 && cfg.gen.names < cfg.gen.conns {
		bad("-names %d with -conns %d: each sender needs gauge names of its own, so -names must be at least -conns", cfg.gen.names, cfg.gen.conns)
	}
	if cfg.count == 0 && cfg.duration <= 0 {
		bad("-duration %v: want > 0 (or a -count)", cfg.duration)
	}
	if !(cfg.pps >= 0) {
		bad("-pps %v: want >= 0", cfg.pps)
	}
	if cfg.setLimit < 1 {
		bad("-set-limit %d: want at least 1", cfg.setLimit)
	}
	if cfg.down < 0 || cfg.settle < 0 || cfg.readers < 0 {
		bad("-down, -settle and -readers must not be negative")
	}
	switch *output {
	case "librato":
	case "otlp":
		cfg.otlp = true
	default:
		bad("-output %q: want librato or otlp", *output)
	}
	if cfg.collector != "" {
		if cfg.daemon != "" || cfg.otlp {
			bad("-collector replaces -daemon and its -output")
		}
		if cfg.proto != "udp" || cfg.gen.mix[setType] > 0 || len(cfg.faults) > 0 || cfg.down > 0 ||
			cfg.floorRounds > 0 || cfg.cardinality {
			bad("-collector: UDP only, no sets (its StatsD receiver drops them), no -faults, -down, -floor or -cardinality")
		}
	}
	if findMax && cfg.daemon == "" && cfg.collector == "" {
		bad("-find-max needs -daemon (or -collector): each step runs a fresh daemon")
	}
	if cfg.floorRounds < 0 || cfg.floorRounds > 100 {
		bad("-floor %d: want 0 to 100 rounds", cfg.floorRounds)
	}
	if cfg.floorRounds > 0 && (cfg.daemon == "" || findMax) {
		bad("-floor needs -daemon (it compares a daemon with the floor), and not -find-max")
	}
	if cfg.cardinality && cfg.daemon == "" {
		bad("-cardinality needs -daemon: it measures the daemon's memory")
	}
	if *prefix != "" && strings.ContainsAny(*prefix, ":|#@\n ") {
		bad("-prefix %q: no ':', '|', '#', '@', spaces or newlines", *prefix)
	}
	if err := errors.Join(problems...); err != nil {
		return cfg, false, false, err
	}

	cfg.gen.prefix = *prefix
	cfg.seed = *seed
	if cfg.seed == 0 {
		cfg.seed = rand.Uint64()
	}
	if cfg.settle == 0 {
		cfg.settle = cfg.period + 2*time.Second
	}
	if *verbose {
		cfg.log = stderr
	}
	return cfg, findMax, allowLoss, nil
}

// freshPrefix returns a name prefix no earlier run used.
func freshPrefix() string {
	return fmt.Sprintf("load.r%06x", rand.Uint32()&0xffffff)
}

// realMain runs the tool and returns its exit code.
func realMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == floorCommand {
		return serveFloor(ctx, args[1:], stdout, stderr)
	}
	cfg, findMax, allowLoss, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "statsd-load: %v\n", err)
		return exitUsage
	}
	if findMax {
		return searchMax(ctx, cfg, stdout, stderr)
	}
	if cfg.floorRounds > 0 {
		return compareFloor(ctx, cfg, cfg.floorRounds, allowLoss, stdout, stderr)
	}
	if cfg.gen.prefix == "" {
		cfg.gen.prefix = freshPrefix()
	}
	res, err := run(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "statsd-load: %v\n", err)
		return exitLoss
	}
	fmt.Fprintln(stdout, res.summary())
	if !res.clean() && !allowLoss {
		return exitLoss
	}
	return exitOK
}

// maxSearchSteps bounds -find-max.
const maxSearchSteps = 12

// searchMax runs at increasing rates, doubling until a run loses something,
// then bisecting between the highest clean rate and the lowest lossy one until
// they are within 10%. It prints each run's summary and then the highest clean
// run's, and returns exitOK when some rate was clean.
func searchMax(ctx context.Context, cfg runConfig, stdout, stderr io.Writer) int {
	prefix := cfg.gen.prefix
	target := cfg.pps
	if target <= 0 {
		target = 50000
	}
	var best *result
	good, bad := 0.0, 0.0 // highest clean and lowest lossy target rates
	for range maxSearchSteps {
		c := cfg
		c.pps = target
		c.gen.prefix = prefix
		if c.gen.prefix == "" {
			c.gen.prefix = freshPrefix()
		}
		res, err := run(ctx, c)
		if err != nil {
			fmt.Fprintf(stderr, "statsd-load: at %s lines/s: %v\n", si(target), err)
			return exitLoss
		}
		fmt.Fprintf(stdout, "target=%s/s %s\n", si(target), res.summary())
		if res.clean() {
			if best == nil || res.rate() > best.rate() {
				best = res
			}
			good = target
			if res.rate() < 0.9*target {
				break // the senders cannot go faster (or TCP holds them back): no higher rate to try
			}
		} else {
			bad = target
		}
		switch {
		case bad == 0:
			target *= 2
		case good == 0:
			target = bad / 2
		default:
			target = (good + bad) / 2
		}
		if bad > 0 && (bad-good)/bad < 0.1 || target < 100 {
			break
		}
	}
	if best == nil {
		fmt.Fprintln(stdout, "find-max: no rate was free of loss")
		return exitLoss
	}
	fmt.Fprintf(stdout, "find-max: highest zero-loss rate %s lines/s: %s\n", si(best.rate()), best.summary())
	return exitOK
}
