package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/libratod/libratod/cmd/libratod/internal/config"
	"github.com/libratod/libratod/internal/eventually"
	"github.com/libratod/libratod/internal/testproc"
	"github.com/libratod/libratod/spool"
)

// point is one measurement Librato received: its request's time and its
// fields (value, or count and sum of a summary).
type point struct {
	time       int64
	value      float64
	count, sum float64
}

// received returns the points the fake took, by measurement name.
func received(reqs []request) map[string][]point {
	out := map[string][]point{}
	for _, r := range reqs {
		tm, _ := r.Body["time"].(float64)
		ms, _ := r.Body["measurements"].([]any)
		for _, m := range ms {
			m := m.(map[string]any)
			p := point{time: int64(tm)}
			p.value, _ = m["value"].(float64)
			p.count, _ = m["count"].(float64)
			p.sum, _ = m["sum"].(float64)
			name := m["name"].(string)
			out[name] = append(out[name], p)
		}
	}
	return out
}

// spoolConfig is a daemon configuration for the binary with a spool.
func spoolConfig(t *testing.T, url, period, dir string) string {
	return writeConfig(t, fmt.Sprintf(`
[listen]
udp = "127.0.0.1:0"
tcp = "127.0.0.1:0"
[aggregate]
period = %q
percentiles = []
[librato]
url = %q
token = %q
shutdown_timeout = "1s"
max_attempts = 1
spool_dir = %q
[metrics]
listen = "127.0.0.1:0"
`, period, url, testToken, dir))
}

func sendLines(t *testing.T, addr string, lines ...string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Fprint(c, strings.Join(lines, "\n")+"\n"); err != nil {
		t.Fatal(err)
	}
	c.Close()
}

func repeat(line string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = line
	}
	return out
}

// waitReceived waits until the fake has taken a point of every name.
func waitReceived(t *testing.T, fake *fakeLibrato, names ...string) {
	t.Helper()
	for range 1500 {
		got := received(fake.requests())
		all := true
		for _, n := range names {
			all = all && len(got[n]) > 0
		}
		if all {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("the fake did not receive all of %v within 15s; it has %v", names, received(fake.requests()))
}

// TestSpoolSIGTERMThenRestart: Librato is down the whole life of the
// first daemon; after its SIGTERM (1s shutdown timeout) a second daemon
// on the same spool, with Librato up, delivers every counter unit, timer
// sample, gauge and set once, at the first daemon's period time.
func TestSpoolSIGTERMThenRestart(t *testing.T) {
	bin := buildBinary(t)
	fake := newFakeLibrato(t)
	fake.down.Store(true)
	dir := filepath.Join(t.TempDir(), "spool")
	cfg := spoolConfig(t, fake.URL, "1h", dir)

	began := time.Now().Unix()
	cmd, _, tcp, _, stderr := startBinary(t, bin, cfg)
	metrics := startedField(t, stderr, "metrics")
	lines := append(repeat("dur.c:1|c", 50), "dur.t:5|ms", "dur.t:7|ms", "dur.g:42|g", "dur.s:a|s", "dur.s:b|s", "dur.s:a|s")
	sendLines(t, tcp, lines...)
	waitSelfMetric(t, metrics, `libratod_lines_received_total{transport="tcp"}`, float64(len(lines)))
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := testproc.WaitExit(t, cmd); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
	ended := time.Now().Unix()
	if stop := stoppedLine(t, stderr); stop["undelivered"] != 4.0 {
		t.Fatalf("stop line %v, want the 4 measurements undelivered", stop)
	}
	if got := fake.requests(); len(got) != 0 {
		t.Fatalf("Librato was down but took %d requests", len(got))
	}

	fake.down.Store(false)
	got, stderr2 := resendAndStop(t, bin, cfg, fake, "dur.c", "dur.t", "dur.g", "dur.s")
	c, tm, g, s := got["dur.c"][0], got["dur.t"][0], got["dur.g"][0], got["dur.s"][0]
	if c.value != 50 || tm.count != 2 || tm.sum != 12 || g.value != 42 || s.value != 2 {
		t.Errorf("counter %v, timer %v, gauge %v, set %v: want 50 units, 2 samples summing 12, 42, 2 members", c, tm, g, s)
	}
	for _, p := range []point{c, tm, g, s} {
		if p.time != c.time || p.time < began || p.time > ended {
			t.Errorf("point %v: want every point at the first daemon's period time, in [%d, %d]", p, began, ended)
		}
	}
	for _, logs := range []string{stderr.String(), stderr2.String()} {
		if strings.Contains(logs, "accounting is off") {
			t.Errorf("the accounting was off:\n%s", logs)
		}
	}
	if stop := stoppedLine(t, stderr2); stop["undelivered"] != 0.0 || stop["dropped"] != 0.0 {
		t.Errorf("second stop line %v, want nothing undelivered or dropped", stop)
	}
	if segs, _ := filepath.Glob(filepath.Join(dir, "*.spool")); len(segs) != 0 {
		t.Errorf("spool segments left after everything was delivered: %v", segs)
	}
}

// resendAndStop starts the daemon again on cfg (its spool holding what an
// earlier one could not deliver), waits until the fake has received names,
// stops it with SIGTERM and returns what the fake received, by name,
// failing t on a name received more than once.
func resendAndStop(t *testing.T, bin, cfg string, fake *fakeLibrato, names ...string) (map[string][]point, *testproc.SafeBuffer) {
	t.Helper()
	cmd, _, _, _, stderr := startBinary(t, bin, cfg)
	waitReceived(t, fake, names...)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := testproc.WaitExit(t, cmd); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
	got := received(fake.requests())
	for name, ps := range got {
		if len(ps) != 1 {
			t.Errorf("%s received %d times: %v", name, len(ps), ps)
		}
	}
	return got, stderr
}

// TestSpoolKill9 kills the daemon (SIGKILL) after two periods failed:
// every unit of both periods is delivered once by the next daemon, each
// period at its own time.
func TestSpoolKill9(t *testing.T) {
	bin := buildBinary(t)
	fake := newFakeLibrato(t)
	fake.down.Store(true)
	dir := filepath.Join(t.TempDir(), "spool")
	cfg := spoolConfig(t, fake.URL, "1s", dir)

	cmd, _, tcp, _, stderr := startBinary(t, bin, cfg)
	metrics := startedField(t, stderr, "metrics")
	sendLines(t, tcp, append(repeat("k1.c:1|c", 10), "k1.t:4|ms", "k1.t:6|ms")...)
	waitSelfMetric(t, metrics, `libratod_spool_pending_measurements{output="librato"}`, 2)
	sendLines(t, tcp, append(repeat("k2.c:1|c", 7), "k2.g:3|g")...)
	waitSelfMetric(t, metrics, `libratod_spool_pending_measurements{output="librato"}`, 4)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	fake.down.Store(false)
	got, _ := resendAndStop(t, bin, cfg, fake, "k1.c", "k1.t", "k2.c", "k2.g")
	k1c, k1t, k2c, k2g := got["k1.c"][0], got["k1.t"][0], got["k2.c"][0], got["k2.g"][0]
	if k1c.value != 10 || k1t.count != 2 || k1t.sum != 10 || k2c.value != 7 || k2g.value != 3 {
		t.Errorf("k1.c %v, k1.t %v, k2.c %v, k2.g %v", k1c, k1t, k2c, k2g)
	}
	if k1c.time != k1t.time || k2c.time != k2g.time || k2c.time <= k1c.time {
		t.Errorf("times: k1 %d %d, k2 %d %d: want each period at its own time", k1c.time, k1t.time, k2c.time, k2g.time)
	}
}

// spoolDaemonConfig is an in-process daemon's configuration with a spool
// in dir.
func spoolDaemonConfig(url, dir string) *config.Config {
	cfg := testConfig(url, "tagged")
	cfg.Aggregate.Percentiles = nil
	cfg.Librato.SpoolDir = dir
	cfg.Librato.ShutdownTimeout = time.Second
	cfg.Librato.MaxAttempts = 1
	return cfg
}

// TestSpoolDamage spools six counters in three requests, damages the
// spool (a flipped byte in the middle, or a file cut in the middle of
// its last record), and restarts: the intact requests are delivered, the
// damaged one counted.
func TestSpoolDamage(t *testing.T) {
	for _, damage := range []string{"flip", "cut"} {
		t.Run(damage, func(t *testing.T) {
			fake := newFakeLibrato(t)
			fake.down.Store(true)
			dir := filepath.Join(t.TempDir(), "spool")
			cfg := spoolDaemonConfig(fake.URL, dir)
			cfg.Librato.BatchSize = 2
			d, stop := startDaemon(t, cfg)
			var lines []string
			for i := range 6 {
				lines = append(lines, fmt.Sprintf("dmg.%d:%d|c", i, i+1))
			}
			sendTCP(t, d.lst.TCPAddr(), strings.Join(lines, "\n")+"\n")
			waitSeen(t, d, 6)
			stop()
			segs, _ := filepath.Glob(filepath.Join(dir, "*.spool"))
			if len(segs) != 1 {
				t.Fatalf("segments %v, want one", segs)
			}
			data, err := os.ReadFile(segs[0])
			if err != nil {
				t.Fatal(err)
			}
			switch damage {
			case "flip":
				data[len(data)/2] ^= 0x10
			case "cut":
				data = data[:len(data)-10]
			}
			if err := os.WriteFile(segs[0], data, 0o600); err != nil {
				t.Fatal(err)
			}

			fake.down.Store(false)
			d2, stop2 := startDaemon(t, spoolDaemonConfig(fake.URL, dir))
			var got map[string][]point
			for range 500 {
				if got = received(fake.requests()); len(got) >= 4 {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			stop2()
			got = received(fake.requests())
			if len(got) != 4 {
				t.Errorf("delivered %v, want the 4 counters of the two intact requests", got)
			}
			for i := range 6 {
				ps := got[fmt.Sprintf("dmg.%d", i)]
				if len(ps) > 1 || len(ps) == 1 && ps[0].value != float64(i+1) {
					t.Errorf("dmg.%d: %v", i, ps)
				}
			}
			if n := gaugeValue(t, d2, "libratod_spool_corrupt_records_total"); n != 1 {
				t.Errorf("libratod_spool_corrupt_records_total = %v, want 1", n)
			}
		})
	}
}

// gaugeValue returns the value of an unlabelled self-metric of d, failing
// the test when it is not registered.
func gaugeValue(t *testing.T, d *daemon, name string) float64 {
	t.Helper()
	v := gathered(t, d, name)
	if v == -1 {
		t.Fatalf("no metric %s", name)
	}
	return v
}

// fillUp writes into dir until its file system is full.
func fillUp(t *testing.T, dir string) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for range 1 << 16 {
		if _, err := f.Write(buf); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return
			}
			t.Fatal(err)
		}
	}
	t.Fatal("the file system did not fill up")
}

// TestSpoolWriteFailure: the spool cannot write (its file system is full,
// or its directory was removed): ingest and delivery go on, the failed
// requests wait in memory and are delivered once Librato is back; the
// failures are counted and logged once.
func TestSpoolWriteFailure(t *testing.T) {
	for _, how := range []string{"full", "removed"} {
		t.Run(how, func(t *testing.T) {
			base := t.TempDir()
			if how == "full" {
				if testproc.AsRoot(t) {
					return // mounts a small tmpfs
				}
				if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", base).CombinedOutput(); err != nil {
					t.Skipf("cannot mount a tmpfs: %v: %s", err, out)
				}
				t.Cleanup(func() { exec.Command("umount", base).Run() })
			}
			dir := filepath.Join(base, "spool")
			fake := newFakeLibrato(t)
			fake.down.Store(true)
			cfg := spoolDaemonConfig(fake.URL, dir)
			cfg.Aggregate.Period = time.Second
			logs := &testproc.SafeBuffer{}
			d, stop := startDaemonWith(t, cfg, options{now: time.Now}, logs)
			switch how {
			case "full":
				fillUp(t, base)
			case "removed":
				if err := os.RemoveAll(dir); err != nil {
					t.Fatal(err)
				}
			}
			sendTCP(t, d.lst.TCPAddr(), "wf.a:1|c\nwf.a:1|c\n")
			waitCounter(t, d, "libratod_spool_write_errors_total", 1)
			sendTCP(t, d.lst.TCPAddr(), "wf.b:5|c\n")
			waitCounter(t, d, "libratod_spool_write_errors_total", 2)
			fake.down.Store(false)
			sendTCP(t, d.lst.TCPAddr(), "wf.c:7|c\n") // the happy path
			waitReceived(t, fake, "wf.a", "wf.b", "wf.c")
			out := stop()
			got := received(fake.requests())
			if len(got["wf.a"]) != 1 || got["wf.a"][0].value != 2 || len(got["wf.b"]) != 1 || got["wf.b"][0].value != 5 ||
				len(got["wf.c"]) != 1 || got["wf.c"][0].value != 7 {
				t.Errorf("delivered %v, want wf.a 2, wf.b 5, wf.c 7, once each", got)
			}
			if n := strings.Count(out, "spool: cannot write"); n != 1 {
				t.Errorf("the write failure was logged %d times, want once:\n%s", n, out)
			}
		})
	}
}

// waitCounter waits until the unlabelled metric name of d is at least n.
func waitCounter(t *testing.T, d *daemon, name string, n float64) {
	t.Helper()
	for range 1000 {
		if gaugeValue(t, d, name) >= n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s = %v after 10s, want %v", name, gaugeValue(t, d, name), n)
}

// TestWrongTokenThenReload: Librato refuses the token (401) for several
// periods; the operator fixes it and sends SIGHUP: every period is
// delivered once, at its own time, and the refusal logged once, at error.
func TestWrongTokenThenReload(t *testing.T) {
	fake := newFakeLibrato(t)
	var refused atomic.Int64
	fake.handle = func(w http.ResponseWriter, r *http.Request, _ map[string]any) bool {
		// With no email the token is the user name (AppOptics style).
		if user, pass, _ := r.BasicAuth(); pass != testToken && user != testToken {
			refused.Add(1)
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"errors":{"request":["Authorization Required"]}}`)
			return true
		}
		return false
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "libratod.toml")
	text := func(token string) string {
		return fmt.Sprintf("[listen]\nudp = \"127.0.0.1:0\"\ntcp = \"127.0.0.1:0\"\n[aggregate]\nperiod = \"1s\"\npercentiles = []\n"+
			"[librato]\nurl = %q\ntoken = %q\nmax_attempts = 1\nspool_dir = %q\n[metrics]\nlisten = \"\"\n", fake.URL, token, filepath.Join(dir, "spool"))
	}
	if err := os.WriteFile(path, []byte(text("wrong-token")), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	logs := &testproc.SafeBuffer{}
	d, stop := startDaemonWith(t, cfg, options{configPath: path, getenv: noEnv, now: time.Now}, logs)
	sendTCP(t, d.lst.TCPAddr(), "tok.a:1|c\ntok.a:1|c\ntok.a:1|c\n")
	eventually.True(10*time.Second, func() bool { return refused.Load() >= 1 })
	n := refused.Load()
	sendTCP(t, d.lst.TCPAddr(), "tok.b:4|c\n")
	eventually.Require(t, 10*time.Second, func() bool { return refused.Load() > n }, "Librato asked twice")
	if err := os.WriteFile(path, []byte(text(testToken)), 0o600); err != nil {
		t.Fatal(err)
	}
	d.hup <- syscall.SIGHUP
	defer func() {
		if t.Failed() {
			t.Log(logs.String())
		}
	}()
	waitReceived(t, fake, "tok.a", "tok.b")
	out := stop()
	got := received(fake.requests())
	if len(got["tok.a"]) != 1 || got["tok.a"][0].value != 3 || len(got["tok.b"]) != 1 || got["tok.b"][0].value != 4 {
		t.Errorf("delivered %v, want tok.a 3 and tok.b 4, once each", got)
	}
	if got["tok.a"][0].time >= got["tok.b"][0].time {
		t.Errorf("tok.a at %d, tok.b at %d: want each at its own period's time", got["tok.a"][0].time, got["tok.b"][0].time)
	}
	if n := strings.Count(out, "Librato refused the credentials; keeping"); n != 1 {
		t.Errorf("the refusal was logged %d times, want once:\n%s", n, out)
	}
	if strings.Contains(out, "wrong-token") || strings.Contains(out, testToken) {
		t.Error("the log shows the token")
	}
}

// TestSpoolLocked: a second daemon on the same spool directory refuses to
// start, naming the key.
func TestSpoolLocked(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	sp, err := spool.Open(t.Context(), spool.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	cfg := spoolDaemonConfig("http://127.0.0.1:1", dir)
	_, err = newDaemon(cfg, options{stderr: &testproc.SafeBuffer{}, hostname: "h"})
	if !errors.Is(err, spool.ErrLocked) || !strings.Contains(err.Error(), "librato.spool_dir") {
		t.Errorf("newDaemon: %v, want a locked librato.spool_dir", err)
	}
}
