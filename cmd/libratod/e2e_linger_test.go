package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/libratod/libratod/internal/testproc"
)

// lingerConfig is the configuration of a daemon binary with every
// listener on loopback, a period no test reaches, and the given
// shutdown_linger and shutdown_timeout.
func lingerConfig(t *testing.T, url, linger, timeout string) string {
	t.Helper()
	return writeConfig(t, fmt.Sprintf(`
[listen]
udp = "127.0.0.1:0"
tcp = "127.0.0.1:0"
shutdown_linger = %q
[aggregate]
period = "1h"
[librato]
url = %q
token = %q
shutdown_timeout = %q
[metrics]
listen = "127.0.0.1:0"
`, linger, url, testToken, timeout))
}

// sendUDPLines sends n datagrams holding line to addr.
func sendUDPLines(t *testing.T, addr, line string, n int) {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range n {
		if _, err := io.WriteString(c, line+"\n"); err != nil {
			t.Fatal(err)
		}
	}
}

// sendTCPLines opens a new TCP connection to addr, writes line n times and
// closes it.
func sendTCPLines(t *testing.T, addr, line string, n int) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, strings.Repeat(line+"\n", n)); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

// waitLog waits until the daemon has logged a line holding message,
// polling for 10 s at most.
func waitLog(t *testing.T, stderr *testproc.SafeBuffer, message string) {
	t.Helper()
	for range 1000 {
		if strings.Contains(stderr.String(), message) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("the daemon did not log %q; stderr:\n%s", message, stderr.String())
}

// stoppedLine returns the fields of the daemon's "libratod stopped" line.
// The daemon has exited, but the goroutine copying its stderr may not have
// copied the last lines yet: it waits for them, 5 s at most.
func stoppedLine(t *testing.T, stderr *testproc.SafeBuffer) map[string]any {
	t.Helper()
	for range 500 {
		for line := range strings.SplitSeq(stderr.String(), "\n") {
			var e map[string]any
			if json.Unmarshal([]byte(line), &e) == nil && e["message"] == "libratod stopped" {
				return e
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no \"libratod stopped\" line; stderr:\n%s", stderr.String())
	return nil
}

// units sums the values of the measurements in reqs by name.
func units(reqs []request) map[string]float64 {
	got := map[string]float64{}
	for _, r := range reqs {
		ms, _ := r.Body["measurements"].([]any)
		for _, m := range ms {
			m := m.(map[string]any)
			got[m["name"].(string)] += m["value"].(float64)
		}
	}
	return got
}

// getStatus GETs path on the daemon's metrics listener at addr and returns
// the status code and body.
func getStatus(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestBinaryShutdownLinger stops the daemon with SIGTERM under
// shutdown_linger = "5s": lines sent before the signal, and over UDP and
// on a TCP connection opened once the linger has begun, all reach
// Librato, in the final flush; the latter are seen received (the
// daemon's /metrics counts them) before the linger ends. /readyz fails
// during the linger while /healthz answers, and the last log line counts
// the lines that came after the signal.
func TestBinaryShutdownLinger(t *testing.T) {
	const linger = 5 * time.Second
	bin := buildBinary(t)
	fake := newFakeLibrato(t)
	cmd, udp, tcp, _, stderr := startBinary(t, bin, lingerConfig(t, fake.URL, linger.String(), "10s"))
	metricsAddr := startedField(t, stderr, "metrics")

	sendUDPLines(t, udp, "linger.before:1|c", 10)
	sendTCPLines(t, tcp, "linger.before:2|c", 5)
	waitSelfMetric(t, metricsAddr, `libratod_lines_received_total{transport="udp"}`, 10)
	waitSelfMetric(t, metricsAddr, `libratod_lines_received_total{transport="tcp"}`, 5)
	before := len(fake.requests())

	signalled := time.Now() // the linger begins after this
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitLog(t, stderr, "stopping: still receiving for shutdown_linger")
	if code, body := getStatus(t, metricsAddr, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "listeners: shutting down") {
		t.Errorf("/readyz during the linger: %d %q, want 503 saying the listeners are shutting down", code, body)
	}
	if code, _ := getStatus(t, metricsAddr, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz during the linger: %d, want 200", code)
	}
	// The application's last words, after the signal.
	sendUDPLines(t, udp, "linger.udp:1|c", 10)
	sendTCPLines(t, tcp, "linger.tcp:3|c", 5)
	waitSelfMetric(t, metricsAddr, `libratod_lines_received_total{transport="udp"}`, 20)
	waitSelfMetric(t, metricsAddr, `libratod_lines_received_total{transport="tcp"}`, 10)
	if took := time.Since(signalled); took >= linger || strings.Contains(stderr.String(), "stopping: draining sockets") {
		t.Fatalf("the lines sent during the linger were counted %v after the signal, not within the %v linger; stderr:\n%s",
			took, linger, stderr.String())
	}

	if code := testproc.WaitExit(t, cmd); code != 0 {
		t.Fatalf("exit %d after SIGTERM; stderr:\n%s", code, stderr.String())
	}
	reqs := fake.requests()
	final := units(reqs[before:])
	want := map[string]float64{"linger.before": 20, "linger.udp": 10, "linger.tcp": 15}
	for name, v := range want {
		if final[name] != v {
			t.Errorf("the final flush delivered %s=%v, want %v (all requests: %v)", name, final[name], v, units(reqs))
		}
	}
	if n, _ := stoppedLine(t, stderr)["lines_after_sigterm"].(float64); n != 15 {
		t.Errorf("lines_after_sigterm %v, want 15", n)
	}
}

// TestBinaryLingerCutShort checks that a second SIGTERM, or a SIGINT,
// during a long linger ends it at once: the daemon flushes what it has
// (lines sent during the linger included) and exits within
// shutdown_timeout.
func TestBinaryLingerCutShort(t *testing.T) {
	bin := buildBinary(t)
	const shutdownTimeout = 5 * time.Second
	for _, second := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(second.String(), func(t *testing.T) {
			fake := newFakeLibrato(t)
			cmd, udp, _, _, stderr := startBinary(t, bin, lingerConfig(t, fake.URL, "5m", shutdownTimeout.String()))
			metricsAddr := startedField(t, stderr, "metrics")
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			waitLog(t, stderr, "stopping: still receiving for shutdown_linger")
			sendUDPLines(t, udp, "cut.udp:1|c", 10)
			waitSelfMetric(t, metricsAddr, `libratod_lines_received_total{transport="udp"}`, 10)
			sent := time.Now()
			if err := cmd.Process.Signal(second); err != nil {
				t.Fatal(err)
			}
			if code := testproc.WaitExit(t, cmd); code != 0 {
				t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
			}
			// Generous: the point is that the 5 minute linger ended.
			if took := time.Since(sent); took > shutdownTimeout+2*time.Second {
				t.Errorf("exited %v after the second signal, want within shutdown_timeout (%v)", took, shutdownTimeout)
			}
			if got := units(fake.requests())["cut.udp"]; got != 10 {
				t.Errorf("delivered cut.udp=%v, want 10", got)
			}
			stoppedLine(t, stderr) // the last line: all are copied
			if !strings.Contains(stderr.String(), "shutdown_linger cut short by a second signal") {
				t.Errorf("the cut was not logged; stderr:\n%s", stderr.String())
			}
		})
	}
}

// TestBinarySIGINTSkipsLinger checks that SIGINT (someone at a terminal)
// stops at once even with a linger set.
func TestBinarySIGINTSkipsLinger(t *testing.T) {
	bin := buildBinary(t)
	fake := newFakeLibrato(t)
	cmd, udp, _, _, stderr := startBinary(t, bin, lingerConfig(t, fake.URL, "5m", "5s"))
	sendUDPLines(t, udp, "int.udp:1|c", 3)
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := testproc.WaitExit(t, cmd); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
	stoppedLine(t, stderr) // the last line: all are copied
	if strings.Contains(stderr.String(), "still receiving") {
		t.Errorf("SIGINT lingered; stderr:\n%s", stderr.String())
	}
	if got := units(fake.requests())["int.udp"]; got != 3 {
		t.Errorf("delivered int.udp=%v, want 3", got)
	}
}

// TestBinaryTCPClientsBeforeSIGTERM is issue 9's case end to end: 300
// clients connect, write one line and close just before SIGTERM (no
// linger); every line is delivered and nothing is counted as lost.
func TestBinaryTCPClientsBeforeSIGTERM(t *testing.T) {
	const clients = 300
	bin := buildBinary(t)
	fake := newFakeLibrato(t)
	cmd, _, tcp, _, stderr := startBinary(t, bin, lingerConfig(t, fake.URL, "0s", "10s"))
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for range clients {
		wg.Go(func() {
			c, err := net.Dial("tcp", tcp)
			if err != nil {
				errs <- err
				return
			}
			_, err = io.WriteString(c, "queued.tcp:1|c\n")
			if cerr := c.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := testproc.WaitExit(t, cmd); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
	if got := units(fake.requests())["queued.tcp"]; got != clients {
		t.Errorf("delivered queued.tcp=%v, want %d", got, clients)
	}
	if n, ok := stoppedLine(t, stderr)["tcp_connections_reset"].(float64); !ok || n != 0 {
		t.Errorf("tcp_connections_reset %v (logged: %t), want 0", n, ok)
	}
}
