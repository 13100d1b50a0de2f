package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/libratod/libratod/listener"
)

// floorCommand is the first argument that makes the tool the floor: a bare
// receive loop on the daemon's kind of sockets. The tool runs itself so with
// -floor; it is not meant to be run by hand.
const floorCommand = "floor-serve"

// floorStopLimit bounds the floor's own stop (its listener's drain).
const floorStopLimit = 10 * time.Second

// lineCounter is the floor's listener.Handler: it counts the lines and bytes
// of what the listener reads, and does nothing else.
type lineCounter struct {
	packets, lines, bytes atomic.Uint64
}

// Handle implements listener.Handler. A datagram's lines, and a TCP chunk's,
// are joined by '\n' (the last one without it).
func (c *lineCounter) Handle(_ listener.Transport, p []byte) {
	c.packets.Add(1)
	c.lines.Add(uint64(bytes.Count(p, []byte{'\n'}) + 1))
	c.bytes.Add(uint64(len(p)))
}

// floorReport is the line the floor prints when it stops.
const floorReport = "floor: packets=%d lines=%d bytes=%d\n"

// serveFloor is the floor process: it listens on the -udp and -tcp addresses
// with the daemon's listener (the same sockets, SO_REUSEPORT readers, batched
// reads and read buffer as a daemon with default settings), with -readers
// UDP readers (0: one per CPU, the daemon's default), counts lines until ctx
// ends (SIGTERM), then stops the listener, which drains the sockets, and
// prints floorReport. It returns the exit code.
func serveFloor(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(floorCommand, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg listener.Config
	fs.StringVar(&cfg.UDP, "udp", "", "UDP `address` to listen on")
	fs.StringVar(&cfg.TCP, "tcp", "", "TCP `address` to listen on")
	fs.IntVar(&cfg.UDPReaders, "readers", 0, "UDP readers; 0: one per CPU")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 || cfg.UDP == "" || cfg.TCP == "" || cfg.UDPReaders < 0 {
		fmt.Fprintf(stderr, "%s: want -udp and -tcp addresses, -readers >= 0, no arguments\n", floorCommand)
		return exitUsage
	}
	cfg.Logger = zerolog.New(stderr).Level(zerolog.WarnLevel)
	var c lineCounter
	l := listener.New(cfg, &c)
	if err := l.Start(); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", floorCommand, err)
		return exitLoss
	}
	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.Background(), floorStopLimit)
	defer cancel()
	if err := l.Stop(stopCtx); err != nil {
		fmt.Fprintf(stderr, "%s: stopping: %v\n", floorCommand, err)
		return exitLoss
	}
	fmt.Fprintf(stdout, floorReport, c.packets.Load(), c.lines.Load(), c.bytes.Load())
	return exitOK
}

// parseFloorReport returns the lines and bytes of the floor's report in out,
// its standard output and error.
func parseFloorReport(out string) (lines, bytes uint64, err error) {
	for l := range strings.SplitSeq(out, "\n") {
		if !strings.HasPrefix(l, "floor: ") {
			continue
		}
		var packets uint64
		if _, err := fmt.Sscanf(l, strings.TrimSuffix(floorReport, "\n"), &packets, &lines, &bytes); err != nil {
			return 0, 0, fmt.Errorf("floor report %q: %w", l, err)
		}
		return lines, bytes, nil
	}
	return 0, 0, fmt.Errorf("no floor report in %q", out)
}

// startFloor starts the floor process (this program, as floorCommand) on
// free 127.0.0.1 ports with readers UDP readers (0: one per CPU), returning
// once it accepts TCP connections.
func startFloor(ctx context.Context, readers int) (*daemonProc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("the floor: finding this program: %w", err)
	}
	up, tp, err := freePorts()
	if err != nil {
		return nil, err
	}
	d := &daemonProc{
		udp: net.JoinHostPort("127.0.0.1", strconv.Itoa(up)),
		tcp: net.JoinHostPort("127.0.0.1", strconv.Itoa(tp)),
	}
	cmd := exec.Command(self, floorCommand, "-udp", d.udp, "-tcp", d.tcp, "-readers", strconv.Itoa(readers))
	return d.launch(ctx, cmd)
}

// floorResult is what one run against the floor measured.
type floorResult struct {
	send     sendStats
	elapsed  time.Duration
	received uint64 // lines the floor counted
	cpu      time.Duration
	peakRSS  uint64
}

// runFloor sends cfg's traffic to a fresh floor process, as run sends it to
// a daemon, and measures the floor's CPU the same way: from the start of
// sending until it is idle.
func runFloor(ctx context.Context, cfg runConfig) (*floorResult, error) {
	d, err := startFloor(ctx, cfg.readers)
	if err != nil {
		return nil, err
	}
	defer func() {
		if d != nil { // not stopped on the way: an error
			d.kill()
		}
	}()
	target := d.udp
	if cfg.proto == "tcp" {
		target = d.tcp
	}
	cfg.logf("floor pid %d, udp %s, tcp %s", d.cmd.Process.Pid, d.udp, d.tcp)
	cpu0, err := d.cpu()
	if err != nil {
		return nil, err
	}
	_, st, elapsed, err := send(ctx, cfg, target)
	if err != nil {
		return nil, err
	}
	cpu1, err := d.waitIdle(ctx)
	if err != nil {
		return nil, err
	}
	rss, err := d.peakRSS()
	if err != nil {
		return nil, err
	}
	stopErr := d.stop()
	out := d.logs.String()
	d = nil
	if stopErr != nil {
		return nil, fmt.Errorf("the floor: %w", stopErr)
	}
	lines, _, err := parseFloorReport(out)
	if err != nil {
		return nil, err
	}
	return &floorResult{send: st, elapsed: elapsed, received: lines, cpu: cpu1 - cpu0, peakRSS: rss}, nil
}

// perLine returns cpu per line in nanoseconds; 0 without lines.
func perLine(cpu time.Duration, lines uint64) float64 {
	if lines == 0 {
		return 0
	}
	return float64(cpu.Nanoseconds()) / float64(lines)
}

// summary is the one line that tells how a floor run went.
func (f *floorResult) summary() string {
	secs := f.elapsed.Seconds()
	rate := 0.0
	if secs > 0 {
		rate = float64(f.send.lines) / secs
	}
	return fmt.Sprintf("floor: sent=%d lines in %.1fs (%s lines/s) received=%d lost=%d cpu-s=%.2f cpu-ns/line=%.0f peak_rss=%dMiB",
		f.send.lines, secs, si(rate), f.received, f.lost(), f.cpu.Seconds(), perLine(f.cpu, f.send.lines), f.peakRSS>>20)
}

// lost returns the lines sent that the floor did not count.
func (f *floorResult) lost() uint64 {
	if f.received >= f.send.lines {
		return 0
	}
	return f.send.lines - f.received
}

// floorRound is one round of -floor: the same traffic against the floor and
// against the daemon.
type floorRound struct {
	floor  *floorResult
	daemon *result
}

// ratio returns the daemon's CPU per line over the floor's; 0 when either
// is unknown.
func (r floorRound) ratio() float64 {
	f := perLine(r.floor.cpu, r.floor.send.lines)
	if f == 0 || r.daemon.daemon == nil {
		return 0
	}
	return perLine(r.daemon.daemon.cpu, r.daemon.send.lines) / f
}

// median returns the median of xs (the mean of the middle two for an even
// count); 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// floorSummary is the closing line of -floor: the medians over the rounds of
// each side's CPU and CPU per line, and of the rounds' ratios.
func floorSummary(rounds []floorRound) string {
	var fCPU, fPer, dCPU, dPer, ratios []float64
	for _, r := range rounds {
		fCPU = append(fCPU, r.floor.cpu.Seconds())
		fPer = append(fPer, perLine(r.floor.cpu, r.floor.send.lines))
		if r.daemon.daemon != nil {
			dCPU = append(dCPU, r.daemon.daemon.cpu.Seconds())
			dPer = append(dPer, perLine(r.daemon.daemon.cpu, r.daemon.send.lines))
		}
		if x := r.ratio(); x > 0 {
			ratios = append(ratios, x)
		}
	}
	return fmt.Sprintf("floor-compare: %d rounds, medians: floor cpu-s=%.2f cpu-ns/line=%.0f daemon cpu-s=%.2f cpu-ns/line=%.0f ratio=%.2f",
		len(rounds), median(fCPU), median(fPer), median(dCPU), median(dPer), median(ratios))
}

// compareFloor runs rounds rounds of the same traffic, each against a fresh
// floor process and then a fresh daemon, prints each run's summary and then
// floorSummary, and returns the exit code: exitLoss when a daemon run lost
// or doubled something or the floor lost lines, unless allowLoss.
func compareFloor(ctx context.Context, cfg runConfig, rounds int, allowLoss bool, stdout, stderr io.Writer) int {
	prefix := cfg.gen.prefix
	var done []floorRound
	lossy := false
	for i := range rounds {
		f, err := runFloor(ctx, cfg)
		if err != nil {
			fmt.Fprintf(stderr, "statsd-load: round %d: %v\n", i+1, err)
			return exitLoss
		}
		fmt.Fprintf(stdout, "round %d %s\n", i+1, f.summary())
		c := cfg
		c.gen.prefix = prefix
		if c.gen.prefix == "" {
			c.gen.prefix = freshPrefix()
		}
		res, err := run(ctx, c)
		if err != nil {
			fmt.Fprintf(stderr, "statsd-load: round %d: %v\n", i+1, err)
			return exitLoss
		}
		r := floorRound{floor: f, daemon: res}
		cpuNs := 0.0
		if res.daemon != nil {
			cpuNs = perLine(res.daemon.cpu, res.send.lines)
		}
		fmt.Fprintf(stdout, "round %d daemon: %s cpu-ns/line=%.0f ratio=%.2f\n", i+1, res.summary(), cpuNs, r.ratio())
		lossy = lossy || !res.clean() || f.lost() > 0
		done = append(done, r)
	}
	fmt.Fprintln(stdout, floorSummary(done))
	if lossy && !allowLoss {
		return exitLoss
	}
	return exitOK
}

var _ listener.Handler = (*lineCounter)(nil)
