package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc/PID/stat's CPU times: 100 on every
// Linux architecture Go supports (sysconf(_SC_CLK_TCK) is not reachable without
// cgo).
const clockTicks = 100

// Bounds of the waits on the daemon.
const (
	daemonStartLimit  = 10 * time.Second
	daemonStopLimit   = 60 * time.Second // the config's shutdown_timeout is 30s
	daemonIdleLimit   = 5 * time.Second
	daemonIdlePoll    = 100 * time.Millisecond
	daemonIdleCPU     = 10 * time.Millisecond // CPU per poll below which the daemon counts as idle
	daemonLogTailSize = 64 << 10
)

// daemonConfig is what the tool's config for a daemon it starts says.
type daemonConfig struct {
	udp, tcp   string // listen addresses
	librato    string // the fake's base URL
	otlp       string // the fake OTLP receiver's base URL: send to it only, Librato off; "" none
	period     time.Duration
	udpReaders int    // 0: the daemon's default
	maxSeries  int    // aggregate.max_series; 0: the daemon's default
	logLevel   string // "" means warn
}

// toml returns the daemon's configuration file. The token is a placeholder the
// fake ignores.
func (c daemonConfig) toml() string {
	var b strings.Builder
	fmt.Fprintf(&b, "[listen]\nudp = %q\ntcp = %q\n", c.udp, c.tcp)
	if c.udpReaders > 0 {
		fmt.Fprintf(&b, "udp_readers = %d\n", c.udpReaders)
	}
	fmt.Fprintf(&b, "\n[aggregate]\nperiod = %q\npercentiles = []\n", c.period.String())
	if c.maxSeries > 0 {
		fmt.Fprintf(&b, "max_series = %d\n", c.maxSeries)
	}
	if c.otlp != "" {
		// The daemon still wants credentials for the output it leaves off.
		b.WriteString("\n[librato]\nenabled = false\nemail = \"statsd-load@example.com\"\n" +
			"token = \"statsd-load-placeholder\"\nshutdown_timeout = \"30s\"\n")
		fmt.Fprintf(&b, "\n[otlp]\nendpoint = %q\ntemporality = \"delta\"\n", c.otlp)
	} else {
		fmt.Fprintf(&b, "\n[librato]\napi = \"tagged\"\nurl = %q\nemail = \"statsd-load@example.com\"\n", c.librato)
		b.WriteString("token = \"statsd-load-placeholder\"\nshutdown_timeout = \"30s\"\n")
	}
	fmt.Fprintf(&b, "\n[log]\nlevel = %q\n\n[metrics]\nlisten = \"\"\n", cmp.Or(c.logLevel, "warn"))
	return b.String()
}

// freePorts returns a UDP and a TCP port on 127.0.0.1 that were free a moment
// ago.
func freePorts() (udp, tcp int, err error) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return 0, 0, fmt.Errorf("free udp port: %w", err)
	}
	udp = pc.LocalAddr().(*net.UDPAddr).Port
	_ = pc.Close() // only its port was needed
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, 0, fmt.Errorf("free tcp port: %w", err)
	}
	tcp = ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close() // only its port was needed
	return udp, tcp, nil
}

// daemonProc is a libratod the tool started.
type daemonProc struct {
	cmd      *exec.Cmd
	dir      string // temporary; holds the config
	udp, tcp string
	logs     *tailBuffer
	exited   chan struct{} // closed when the process has exited
	waitErr  error         // set before exited is closed
}

// startDaemon writes a config for the daemon at path and starts it, returning
// once it accepts TCP connections.
func startDaemon(ctx context.Context, path string, cfg daemonConfig) (*daemonProc, error) {
	up, tp, err := freePorts()
	if err != nil {
		return nil, err
	}
	cfg.udp = net.JoinHostPort("127.0.0.1", strconv.Itoa(up))
	cfg.tcp = net.JoinHostPort("127.0.0.1", strconv.Itoa(tp))
	dir, err := os.MkdirTemp("", "statsd-load-")
	if err != nil {
		return nil, fmt.Errorf("temporary directory: %w", err)
	}
	cfgPath := filepath.Join(dir, "libratod.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg.toml()), 0o600); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("writing the daemon config: %w", err)
	}
	d := &daemonProc{dir: dir, udp: cfg.udp, tcp: cfg.tcp}
	return d.launch(ctx, exec.Command(path, "-config", cfgPath))
}

// launch starts cmd as d's process, returning once it accepts TCP
// connections on d.tcp; on failure it removes d.dir.
func (d *daemonProc) launch(ctx context.Context, cmd *exec.Cmd) (*daemonProc, error) {
	d.cmd, d.logs, d.exited = cmd, &tailBuffer{max: daemonLogTailSize}, make(chan struct{})
	d.cmd.Stdout, d.cmd.Stderr = d.logs, d.logs
	d.cmd.Env = daemonEnv(os.Environ())
	if err := d.cmd.Start(); err != nil {
		d.removeDir()
		return nil, fmt.Errorf("starting %s: %w", d.cmd.Path, err)
	}
	go func() {
		d.waitErr = d.cmd.Wait()
		close(d.exited)
	}()
	if err := d.waitReady(ctx); err != nil {
		d.kill()
		return nil, err
	}
	return d, nil
}

// waitReady waits until the daemon accepts TCP connections (it binds UDP before
// TCP).
func (d *daemonProc) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(daemonStartLimit)
	var dialer net.Dialer
	for {
		c, err := dialer.DialContext(ctx, "tcp", d.tcp)
		if err == nil {
			_ = c.Close() // only a probe
			return nil
		}
		select {
		case <-d.exited:
			return fmt.Errorf("the daemon exited at start (%v): %s", d.waitErr, d.logs.String())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the daemon did not listen on %s within %v: %s", d.tcp, daemonStartLimit, d.logs.String())
		}
	}
}

// cpu returns the daemon's user+system CPU time so far.
func (d *daemonProc) cpu() (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", d.cmd.Process.Pid))
	if err != nil {
		return 0, fmt.Errorf("daemon cpu: %w", err)
	}
	return parseProcStat(data)
}

// peakRSS returns the daemon's peak resident set size in bytes.
func (d *daemonProc) peakRSS() (uint64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.cmd.Process.Pid))
	if err != nil {
		return 0, fmt.Errorf("daemon peak rss: %w", err)
	}
	return parseVmHWM(data)
}

// rss returns the daemon's resident set size now, in bytes.
func (d *daemonProc) rss() (uint64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.cmd.Process.Pid))
	if err != nil {
		return 0, fmt.Errorf("daemon rss: %w", err)
	}
	return parseStatusBytes(data, "VmRSS")
}

// waitIdle waits until the daemon stops using CPU (it has worked through what
// its sockets held), at most daemonIdleLimit, and returns its CPU time then.
func (d *daemonProc) waitIdle(ctx context.Context) (time.Duration, error) {
	last, err := d.cpu()
	if err != nil {
		return 0, err
	}
	for deadline := time.Now().Add(daemonIdleLimit); time.Now().Before(deadline); {
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case <-time.After(daemonIdlePoll):
		}
		now, err := d.cpu()
		if err != nil {
			return 0, err
		}
		if now-last < daemonIdleCPU {
			return now, nil
		}
		last = now
	}
	return last, nil
}

// stop sends SIGTERM (the daemon drains its sockets and flushes) and waits for
// the exit; past daemonStopLimit it kills the daemon. It removes the temporary
// directory.
func (d *daemonProc) stop() error {
	defer d.removeDir()
	return d.halt()
}

// halt sends SIGTERM and waits for the exit, as stop does, but keeps the
// temporary directory (a collector's output is in it).
func (d *daemonProc) halt() error {
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		d.kill()
		return fmt.Errorf("stopping the daemon: %w", err)
	}
	select {
	case <-d.exited:
	case <-time.After(daemonStopLimit):
		d.kill()
		return fmt.Errorf("the daemon did not exit within %v of SIGTERM; killed", daemonStopLimit)
	}
	if d.waitErr != nil {
		return fmt.Errorf("the daemon exited: %w: %s", d.waitErr, d.logs.String())
	}
	return nil
}

// kill kills the daemon and waits for it.
func (d *daemonProc) kill() {
	_ = d.cmd.Process.Kill() // it may be gone already
	<-d.exited
	d.removeDir()
}

// removeDir removes the temporary directory, if there is one.
func (d *daemonProc) removeDir() {
	if d.dir != "" {
		_ = os.RemoveAll(d.dir) // in the system's temporary directory
	}
}

// ownedKeys are the settings the tool's config must decide: environment
// overrides of them are not passed on.
var ownedKeys = []string{
	"LIBRATOD_LISTEN_UDP=", "LIBRATOD_LISTEN_TCP=", "LIBRATOD_AGGREGATE_PERIOD=", "LIBRATOD_AGGREGATE_PERCENTILES=",
	"LIBRATOD_AGGREGATE_PREFIX=", "LIBRATOD_LIBRATO_API=", "LIBRATOD_LIBRATO_URL=", "LIBRATOD_METRICS_LISTEN=",
	"LIBRATOD_LIBRATO_TOKEN=", "LIBRATOD_LIBRATO_EMAIL=", "LIBRATO_TOKEN=", "LIBRATO_EMAIL=", "LIBRATOD_TAGS=",
	"LIBRATOD_LIBRATO_ENABLED=", "LIBRATOD_OTLP_ENDPOINT=", "LIBRATOD_OTLP_TOKEN=", "LIBRATOD_OTLP_TEMPORALITY=",
	"LIBRATOD_OTLP_HEADERS=",
}

// daemonEnv returns the daemon's environment: the tool's, without the overrides
// of the settings the tool decides (nor any real Librato credentials). Other
// LIBRATOD_ variables pass, to tune the daemon under test.
func daemonEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		if !slices.ContainsFunc(ownedKeys, func(k string) bool { return strings.HasPrefix(kv, k) }) {
			out = append(out, kv)
		}
	}
	return out
}

// parseProcStat returns the user+system CPU time in a /proc/PID/stat line:
// fields 14 and 15, counted after the command name, which is in parentheses and
// may hold spaces and parentheses itself.
func parseProcStat(data []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, errors.New("/proc stat: no command name")
	}
	f := strings.Fields(string(data[i+1:])) // f[0] is field 3, the state
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc stat: %d fields after the name, want at least 13", len(f))
	}
	var ticks uint64
	for _, s := range f[11:13] {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc stat: cpu time %q: %w", s, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * (time.Second / clockTicks), nil
}

// parseVmHWM returns the VmHWM (peak resident set size) of a /proc/PID/status
// file, in bytes.
func parseVmHWM(data []byte) (uint64, error) { return parseStatusBytes(data, "VmHWM") }

// parseStatusBytes returns a size field ("VmHWM", "VmRSS") of a
// /proc/PID/status file, in bytes.
func parseStatusBytes(data []byte, field string) (uint64, error) {
	for l := range strings.SplitSeq(string(data), "\n") {
		rest, ok := strings.CutPrefix(l, field+":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("/proc status: %s %q: want \"N kB\"", field, strings.TrimSpace(rest))
		}
		kb, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc status: %s: %w", field, err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("/proc status: no %s", field)
}

// tailBuffer is an io.Writer keeping the last max bytes written, safe for
// concurrent use.
type tailBuffer struct {
	max int
	mu  sync.Mutex
	b   []byte
}

// Write implements io.Writer.
func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

// String returns what the buffer holds.
func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.b))
}

var _ io.Writer = (*tailBuffer)(nil)
