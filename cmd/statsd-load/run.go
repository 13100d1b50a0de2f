package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/libratod/libratod/listener"
	metricsv1 "go.opentelemetry.io/proto/otlp/metrics/v1"
)

// maxDatagram bounds the UDP datagrams the tool builds: a packet ends early
// rather than grow past it.
const maxDatagram = 60000

// maxSendErrors is how many UDP writes may fail before a sender gives up: a
// socket with nobody behind it fails every other write (the ICMP error of one
// write is reported by the next).
const maxSendErrors = 1000

// runConfig is one run's settings, from the flags.
type runConfig struct {
	daemon        string // a libratod binary to start; "" targets addr
	collector     string // an OpenTelemetry Collector binary (libratod-otelcol) to start instead; "" none
	otlp          bool   // the daemon sends OTLP to the fake (an OTLP receiver), Librato off
	addr          string
	libratoListen string
	period        time.Duration // of the daemon the tool starts
	readers       int           // its udp_readers; 0: its default
	settle        time.Duration // without -daemon: the wait for the daemon's next flush

	gen            genConfig
	proto          string // "udp" or "tcp"
	linesPerPacket int
	duration       time.Duration
	count          uint64  // lines in all; 0: send for duration
	pps            float64 // lines per second over every sender; 0: as fast as possible
	setLimit       int     // the daemon's bound on a set's members per period (exact below it)

	floorRounds int  // rounds of floor and daemon runs (-floor); 0: none
	cardinality bool // idle RSS, one period, RSS per series

	faults []fault
	down   time.Duration
	seed   uint64

	log io.Writer // progress and the daemon's logs, with -v; nil: none
}

// run runs the fake Librato (and the daemon, with -daemon), sends, waits for
// the final flush and compares.
func run(ctx context.Context, cfg runConfig) (*result, error) {
	fake := newFake(fakeConfig{prefix: cfg.gen.prefix, faults: cfg.faults, down: cfg.down, seed: cfg.seed,
		otlp: cfg.otlp})
	ln, err := net.Listen("tcp", cfg.libratoListen)
	if err != nil {
		return nil, fmt.Errorf("fake %s: %w", cfg.output(), err)
	}
	srv := &http.Server{Handler: fake, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer func() {
		_ = srv.Close() // ends delayed requests too; their outcome no longer matters
		<-served
	}()
	url := "http://" + ln.Addr().String()
	cfg.logf("fake %s on %s (prefix %s)", cfg.output(), url, cfg.gen.prefix)

	target := cfg.addr
	var d *daemonProc
	if cfg.collector != "" {
		if d, err = startCollector(ctx, cfg.collector, cfg.period); err != nil {
			return nil, err
		}
		defer func() {
			if d != nil { // not stopped on the way: an error
				d.kill()
			}
		}()
		target = d.udp
		cfg.logf("collector pid %d, statsd udp %s", d.cmd.Process.Pid, d.udp)
	} else if cfg.daemon != "" {
		dc := daemonConfig{librato: url, period: cfg.period, udpReaders: cfg.readers, logLevel: "warn"}
		if cfg.otlp {
			dc.otlp = url
		}
		if cfg.cardinality {
			dc.maxSeries = max(2*cfg.gen.names*cfg.gen.mix.types(), 1000)
		}
		if cfg.log != nil {
			dc.logLevel = "debug"
		}
		d, err = startDaemon(ctx, cfg.daemon, dc)
		if err != nil {
			return nil, err
		}
		defer func() {
			if d != nil { // not stopped on the way: an error
				d.kill()
			}
		}()
		target = d.udp
		if cfg.proto == "tcp" {
			target = d.tcp
		}
		cfg.logf("daemon pid %d, udp %s, tcp %s", d.cmd.Process.Pid, d.udp, d.tcp)
	}

	var idleRSS uint64
	if cfg.cardinality && d != nil {
		if idleRSS, err = d.rss(); err != nil {
			return nil, err
		}
		wait := untilBoundary(time.Now(), cfg.period) + boundaryMargin
		cfg.logf("idle rss %dMiB; sending in %v, after a period boundary", idleRSS>>20, wait)
		if err := sleepCtx(ctx, wait); err != nil {
			return nil, err
		}
	}
	drops0, dropsErr := kernelDrops(cfg.proto, target)
	var cpu0 time.Duration
	if d != nil {
		if cpu0, err = d.cpu(); err != nil {
			return nil, err
		}
	}
	want, st, elapsed, err := send(ctx, cfg, target)
	if err != nil {
		return nil, err
	}
	res := &result{proto: cfg.proto, conns: cfg.gen.conns, send: st, elapsed: elapsed, kernelDrops: -1,
		output: cfg.output()}

	if d != nil {
		cpu1, err := d.waitIdle(ctx)
		if err != nil {
			return nil, err
		}
		if cfg.collector != "" {
			// The collector exports an interval's aggregate at the end of
			// the interval, and not at shutdown: wait for the last one.
			cfg.logf("waiting %v for the collector's last export", cfg.period+time.Second)
			if err := sleepCtx(ctx, cfg.period+time.Second); err != nil {
				return nil, err
			}
			if cpu1, err = d.cpu(); err != nil {
				return nil, err
			}
		}
		rss, err := d.peakRSS()
		if err != nil {
			return nil, err
		}
		drops1, err1 := kernelDrops(cfg.proto, target) // before the sockets close
		if dropsErr == nil && err1 == nil {
			res.kernelDrops = int64(drops1 - drops0)
		}
		var stopErr error
		if cfg.collector != "" {
			stopErr = d.halt() // the file exporter flushes at shutdown
			if stopErr == nil {
				var exports []*metricsv1.MetricsData
				if exports, stopErr = d.readExports(); stopErr == nil {
					for _, md := range exports {
						fake.takeExport(md)
					}
				}
			}
			d.removeDir()
		} else {
			stopErr = d.stop()
		}
		if cfg.log != nil {
			if logs := d.logs.String(); logs != "" {
				cfg.logf("daemon log (tail):\n%s", logs)
			}
		}
		d = nil
		if stopErr != nil {
			return nil, stopErr
		}
		res.daemon = &daemonStats{cpu: cpu1 - cpu0, peakRSS: rss, idleRSS: idleRSS}
	} else {
		cfg.logf("waiting %v for the daemon's flush", cfg.settle)
		t := time.NewTimer(cfg.settle)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
		drops1, err1 := kernelDrops(cfg.proto, target)
		if dropsErr == nil && err1 == nil {
			res.kernelDrops = int64(drops1 - drops0)
		}
	}
	fs, got := fake.snapshot()
	res.fake = fs
	if cfg.cardinality {
		res.series = got.maxPeriodSeries()
		res.spread = elapsed > cfg.period-boundaryMargin
	}
	res.cmp = compare(want, got, cfg.setLimit)
	keys := slices.SortedFunc(maps.Keys(got.dupTimes), func(a, b dupKey) int {
		return cmp.Or(cmp.Compare(a.time, b.time), strings.Compare(a.typ, b.typ))
	})
	for _, k := range keys {
		cfg.logf("%d %s points of time %d (%s) delivered more than once", got.dupTimes[k], k.typ, k.time,
			time.Unix(k.time, 0).UTC().Format(time.RFC3339))
	}
	return res, nil
}

// output names where the tool's traffic ends up: "librato", "otlp" or
// "collector".
func (cfg *runConfig) output() string {
	switch {
	case cfg.collector != "":
		return "collector"
	case cfg.otlp:
		return "otlp"
	}
	return "librato"
}

// boundaryMargin is how long after a period boundary -cardinality starts
// sending: the daemon's flusher wakes at the boundary and takes the period
// just ended, so no line sent after it falls in that period.
const boundaryMargin = 200 * time.Millisecond

// untilBoundary returns the time from now to the next period boundary: the
// daemon's periods end at multiples of the period in unix seconds.
func untilBoundary(now time.Time, period time.Duration) time.Duration {
	since := time.Duration(now.UnixNano()) % period
	return period - since
}

// sleepCtx waits d, or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// logf writes a progress line with -v.
func (cfg *runConfig) logf(format string, args ...any) {
	if cfg.log != nil {
		fmt.Fprintf(cfg.log, "statsd-load: "+format+"\n", args...)
	}
}

// kernelDrops returns the kernel's UDP drop count on target's port, when target
// is a loopback address (the daemon is on this machine).
func kernelDrops(proto, target string) (uint64, error) {
	if proto != "udp" {
		return 0, errors.New("not udp")
	}
	host, port, err := net.SplitHostPort(target)
	if err != nil {
		return 0, err
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return 0, errors.New("not a loopback address")
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return 0, err
	}
	return listener.UDPPortDrops(p)
}

// send runs cfg.gen.conns senders to target at once and returns what they sent,
// merged, and how long it took.
func send(ctx context.Context, cfg runConfig, target string) (*tally, sendStats, time.Duration, error) {
	n := cfg.gen.conns
	senders := make([]*sender, n)
	for i := range senders {
		g, err := newGenerator(cfg.gen, i)
		if err != nil {
			return nil, sendStats{}, 0, err
		}
		c, err := net.Dial(cfg.proto, target)
		if err != nil {
			for _, s := range senders[:i] {
				_ = s.w.Close() // nothing sent yet
			}
			return nil, sendStats{}, 0, fmt.Errorf("dial %s %s: %w", cfg.proto, target, err)
		}
		senders[i] = &sender{
			w: c, tcp: cfg.proto == "tcp", gen: g, tally: newTally(cfg.gen.names), weight: 1 / cfg.gen.rate,
			linesPerPacket: cfg.linesPerPacket,
		}
	}

	start := time.Now()
	var deadline time.Time
	if cfg.count == 0 {
		deadline = start.Add(cfg.duration)
	}
	var (
		wg    sync.WaitGroup
		stats = make([]sendStats, n)
		ends  = make([]time.Time, n)
		errs  = make([]error, n)
	)
	for i, s := range senders {
		budget := uint64(0)
		if cfg.count > 0 {
			budget = cfg.count / uint64(n)
			if uint64(i) < cfg.count%uint64(n) {
				budget++
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			stats[i], errs[i] = s.run(ctx, start, budget, deadline, cfg.pps/float64(n))
			ends[i] = time.Now()
			if err := s.w.Close(); err != nil && errs[i] == nil {
				errs[i] = fmt.Errorf("closing sender %d: %w", i, err)
			}
		}()
	}
	wg.Wait()

	want := newTally(cfg.gen.names)
	var total sendStats
	end := start
	for i, s := range senders {
		want.merge(s.tally)
		total.lines += stats[i].lines
		total.packets += stats[i].packets
		total.bytes += stats[i].bytes
		total.errors += stats[i].errors
		if ends[i].After(end) {
			end = ends[i]
		}
	}
	return want, total, end.Sub(start), errors.Join(errs...)
}

// sender writes the lines of one generator to one connection and tallies what
// it wrote.
type sender struct {
	w              net.Conn
	tcp            bool // lines end with '\n'; else (UDP) lines are joined by '\n'
	gen            *generator
	tally          *tally
	weight         float64 // 1/rate
	linesPerPacket int

	buf   []byte
	lines []line
}

// run sends packets of linesPerPacket lines until budget lines are sent (budget
// > 0) or deadline passes, at pps lines per second from start (0: as fast as it
// can).
func (s *sender) run(ctx context.Context, start time.Time, budget uint64, deadline time.Time, pps float64) (sendStats, error) {
	var st sendStats
	pace := time.NewTimer(0)
	defer pace.Stop()
	for {
		if budget > 0 && st.lines >= budget || budget == 0 && !time.Now().Before(deadline) {
			return st, nil
		}
		if err := ctx.Err(); err != nil {
			return st, err
		}
		n := uint64(s.linesPerPacket)
		if budget > 0 {
			n = min(n, budget-st.lines)
		}
		s.fill(int(n))
		k, err := s.w.Write(s.buf)
		if err != nil {
			st.errors++
			if s.tcp {
				// The lines written whole may have arrived; the rest did not.
				for _, l := range s.lines {
					if l.end <= k {
						s.tally.add(l, s.weight)
						st.lines++
					}
				}
				return st, fmt.Errorf("tcp write: %w", err)
			}
			if st.errors >= maxSendErrors {
				return st, fmt.Errorf("udp write: %d failures, the last: %w", st.errors, err)
			}
			if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOBUFS) {
				time.Sleep(time.Millisecond) // nobody listening yet, or the queue is full: a breath
			}
			continue
		}
		for _, l := range s.lines {
			s.tally.add(l, s.weight)
		}
		st.lines += uint64(len(s.lines))
		st.packets++
		st.bytes += uint64(len(s.buf))

		if pps > 0 {
			due := start.Add(time.Duration(float64(st.lines) / pps * float64(time.Second)))
			if wait := time.Until(due); wait > 0 {
				pace.Reset(wait)
				select {
				case <-pace.C:
				case <-ctx.Done():
					return st, ctx.Err()
				}
			}
		}
	}
}

// fill builds the next packet of at most n lines in s.buf, and what they mean
// in s.lines. A UDP packet ends early at maxDatagram bytes.
func (s *sender) fill(n int) {
	s.buf, s.lines = s.buf[:0], s.lines[:0]
	if s.gen.cfg.stamp {
		s.gen.now = time.Now().Unix()
	}
	for i := 0; i < n; i++ {
		if !s.tcp {
			if len(s.buf) > maxDatagram-2048 {
				break
			}
			if i > 0 {
				s.buf = append(s.buf, '\n')
			}
		}
		var l line
		s.buf, l = s.gen.appendLine(s.buf)
		if s.tcp {
			s.buf = append(s.buf, '\n')
		}
		l.end = len(s.buf)
		s.lines = append(s.lines, l)
	}
}
