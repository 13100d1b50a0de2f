package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	metricsv1 "go.opentelemetry.io/proto/otlp/metrics/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/libratod/libratod/internal/testproc"
)

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "libratod.toml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func noEnv(string) string { return "" }

func TestRunFlags(t *testing.T) {
	good := writeConfig(t, fmt.Sprintf("[librato]\ntoken = %q\n", testToken))
	noToken := writeConfig(t, "")
	bad := writeConfig(t, "[listen]\nudp = \"\"\ntcp = \"\"\n[aggregate]\nperiod = \"ten\"\n[librato]\nbatch_size = 0\n")
	unquoted := writeConfig(t, "[librato]\ntoken = abcdefsecret123\n")
	v1URL := writeConfig(t, fmt.Sprintf("[librato]\ntoken = %q\nurl = \"https://metrics-api.librato.com/v1\"\n", testToken))
	spoolDir := filepath.Join(t.TempDir(), "spool")
	spoolGood := writeConfig(t, fmt.Sprintf("[librato]\ntoken = %q\nspool_dir = %q\n", testToken, spoolDir))
	notADir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notADir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	spoolBad := writeConfig(t, fmt.Sprintf("[librato]\ntoken = %q\nspool_dir = %q\n", testToken, filepath.Join(notADir, "spool")))
	tests := map[string]struct {
		args       []string
		code       int
		stdout     []string // substrings
		stderr     []string
		notInOuput string
	}{
		"version":             {args: []string{"-version"}, code: 0, stdout: []string{"libratod dev (commit ", "; go1.", runtime.GOOS + "/" + runtime.GOARCH + ")"}},
		"check":               {args: []string{"-config", good, "-check"}, code: 0, stdout: []string{"127.0.0.1:8125", "tagged", "metrics-api.librato.com"}, notInOuput: testToken},
		"check without token": {args: []string{"-config", noToken, "-check"}, code: 2, stderr: []string{"librato.token"}},
		"check dry run":       {args: []string{"-config", noToken, "-check", "-dry-run"}, code: 0, stdout: []string{"dry run"}},
		"bad config":          {args: []string{"-config", bad, "-check", "-dry-run"}, code: 2, stderr: []string{"aggregate.period", "librato.batch_size"}},
		"missing file":        {args: []string{"-config", "/nonexistent/libratod.toml", "-check"}, code: 2, stderr: []string{"/nonexistent/libratod.toml"}},
		"unquoted token":      {args: []string{"-config", unquoted, "-check"}, code: 2, stderr: []string{"line 2, column 9"}, notInOuput: "abcdef"},
		"unknown flag":        {args: []string{"-frobnicate"}, code: 2, stderr: []string{"frobnicate"}},
		"check spool":         {args: []string{"-config", spoolGood, "-check"}, code: 0, stdout: []string{"spool", spoolDir, "1GiB"}},
		"check bad spool":     {args: []string{"-config", spoolBad, "-check"}, code: 2, stderr: []string{"librato.spool_dir", "cannot be created"}},
		"check /v1 url":       {args: []string{"-config", v1URL, "-check"}, code: 2, stderr: []string{"librato.url", "without"}},
		"stray argument":      {args: []string{"-check", "extra"}, code: 2, stderr: []string{"extra"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(tc.args, &out, &errb, noEnv)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tc.code, errb.String())
			}
			for _, s := range tc.stdout {
				if !strings.Contains(out.String(), s) {
					t.Errorf("stdout lacks %q:\n%s", s, out.String())
				}
			}
			for _, s := range tc.stderr {
				if !strings.Contains(errb.String(), s) {
					t.Errorf("stderr lacks %q:\n%s", s, errb.String())
				}
			}
			if tc.notInOuput != "" && strings.Contains(out.String()+errb.String(), tc.notInOuput) {
				t.Errorf("output shows %q", tc.notInOuput)
			}
		})
	}
}

// built holds the binary built for this test run, shared by the tests.
var built struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// buildBinary builds libratod once per test run.
func buildBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	built.once.Do(func() {
		built.dir, built.err = os.MkdirTemp("", "libratod-test")
		if built.err != nil {
			return
		}
		built.path = filepath.Join(built.dir, "libratod")
		out, err := exec.Command("go", "build", "-o", built.path, ".").CombinedOutput()
		if err != nil {
			built.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// startBinary runs the built daemon and returns it with the addresses it
// logged at start.
func startBinary(t *testing.T, bin, cfgPath string, args ...string) (cmd *exec.Cmd, udp, tcp string, stdout *bytes.Buffer, stderr *testproc.SafeBuffer) {
	t.Helper()
	cmd = exec.Command(bin, append([]string{"-config", cfgPath}, args...)...)
	stdout, stderr = &bytes.Buffer{}, &testproc.SafeBuffer{}
	cmd.Stdout = stdout
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	started := make(chan map[string]any, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			fmt.Fprintln(stderr, sc.Text())
			var e map[string]any
			if json.Unmarshal(sc.Bytes(), &e) == nil && e["message"] == "libratod started" {
				started <- e
			}
		}
	}()
	select {
	case e := <-started:
		udp, _ = e["udp"].(string)
		tcp, _ = e["tcp"].(string)
	case <-time.After(15 * time.Second):
		t.Fatalf("daemon did not start; stderr:\n%s", stderr.String())
	}
	return cmd, udp, tcp, stdout, stderr
}

func TestBinarySIGTERMFlushes(t *testing.T) {
	bin := buildBinary(t)
	fake := newFakeLibrato(t)
	cfgPath := writeConfig(t, fmt.Sprintf(`
[listen]
udp = "127.0.0.1:0"
tcp = "127.0.0.1:0"
[aggregate]
period = "1h"
[librato]
url = %q
token = %q
[metrics]
listen = "127.0.0.1:0"
`, fake.URL, testToken))
	cmd, udp, tcp, _, stderr := startBinary(t, bin, cfgPath)
	metricsAddr := startedField(t, stderr, "metrics")
	if udp == "" || tcp == "" {
		t.Fatalf("addresses not logged: udp %q tcp %q", udp, tcp)
	}
	c, err := net.Dial("udp", udp)
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		if _, err := c.Write([]byte("sigterm.udp:1|c\n")); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	tc, err := net.Dial("tcp", tcp)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(tc, "sigterm.tcp:2|c\nsigterm.tcp:3|c\n")
	tc.Close()
	// The lines are in the daemon before the signal: this test is about the
	// final flush (the listener's tests check that Stop drains what the sockets
	// hold, TCP connections not yet accepted included).
	waitSelfMetric(t, metricsAddr, `libratod_lines_received_total{transport="tcp"}`, 2)
	waitSelfMetric(t, metricsAddr, `libratod_lines_received_total{transport="udp"}`, 100)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := testproc.WaitExit(t, cmd); code != 0 {
		t.Fatalf("exit %d after SIGTERM; stderr:\n%s", code, stderr.String())
	}
	got := map[string]float64{}
	for _, r := range fake.requests() {
		for _, m := range r.Body["measurements"].([]any) {
			m := m.(map[string]any)
			got[m["name"].(string)] += m["value"].(float64)
		}
	}
	if got["sigterm.udp"] != 100 || got["sigterm.tcp"] != 5 {
		t.Errorf("delivered %v, want sigterm.udp=100 sigterm.tcp=5", got)
	}
	// shutdown_linger is 0 by default: the daemon stops reading at once.
	stopped := stoppedLine(t, stderr) // the last line: all are copied
	if strings.Contains(stderr.String(), "still receiving") {
		t.Errorf("the daemon lingered with shutdown_linger unset; stderr:\n%s", stderr.String())
	}
	if n, ok := stopped["lines_after_sigterm"].(float64); !ok || n != 0 {
		t.Errorf("lines_after_sigterm %v (logged: %t), want 0: every line came before the signal", n, ok)
	}
	if strings.Contains(stderr.String(), testToken) {
		t.Error("the token appears in the logs")
	}
}

func TestBinaryDryRun(t *testing.T) {
	bin := buildBinary(t)
	cfgPath := writeConfig(t, `
[listen]
udp = "127.0.0.1:0"
tcp = ""
[metrics]
listen = ""
`)
	out := dryRunOutput(t, bin, cfgPath, "dry.hits:1|c\n")
	if !strings.HasPrefix(out, "POST https://metrics-api.librato.com/v1/measurements\n") || !strings.Contains(out, `{"name":"dry.hits","value":1}`) {
		t.Errorf("dry-run output:\n%s", out)
	}
}

// TestDryRunOTLP runs the binary with -dry-run and the OTLP output on
// beside Librato: each output's request is printed, the OTLP one as an
// OTLP/JSON line that the upstream decoder reads, with the counter's
// value; nothing is sent (the endpoint does not exist).
func TestDryRunOTLP(t *testing.T) {
	bin := buildBinary(t)
	cfgPath := writeConfig(t, `
[listen]
udp = "127.0.0.1:0"
tcp = ""
[metrics]
listen = ""
[otlp]
endpoint = "https://otlp.invalid"
temporality = "delta"
`)
	out := dryRunOutput(t, bin, cfgPath, "dry.hits:2|c|#env:x\n")
	if !strings.Contains(out, `"name":"dry.hits"`) || !strings.Contains(out, "POST https://metrics-api.librato.com/v1/measurements\n") {
		t.Fatalf("dry-run output:\n%s", out)
	}
	var found bool
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, `{"resourceMetrics"`) {
			continue
		}
		var md metricsv1.MetricsData
		if err := protojson.Unmarshal([]byte(line), &md); err != nil {
			t.Fatalf("an OTLP/JSON line the upstream decoder refuses: %v\n%s", err, line)
		}
		for _, rm := range md.ResourceMetrics {
			for _, sm := range rm.ScopeMetrics {
				for _, m := range sm.Metrics {
					if m.Name == "dry.hits" && len(m.GetSum().GetDataPoints()) == 1 && m.GetSum().DataPoints[0].GetAsDouble() == 2 {
						found = true
					}
				}
			}
		}
	}
	if !found {
		t.Errorf("no OTLP/JSON request with dry.hits = 2:\n%s", out)
	}
}

// startedField returns the field key of the "libratod started" line the daemon
// logged to stderr.
func startedField(t *testing.T, stderr *testproc.SafeBuffer, key string) string {
	t.Helper()
	for line := range strings.SplitSeq(stderr.String(), "\n") {
		var e map[string]any
		if json.Unmarshal([]byte(line), &e) == nil && e["message"] == "libratod started" {
			if v, ok := e[key].(string); ok {
				return v
			}
		}
	}
	t.Fatalf("no %q in the start line; stderr:\n%s", key, stderr.String())
	return ""
}

// selfMetric returns the value of series (name{labels} as the text format
// writes it) on the daemon's /metrics at addr, and whether it is there.
func selfMetric(t *testing.T, addr, series string) (float64, bool) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", series, err)
			}
			return f, true
		}
	}
	return 0, false
}

// waitSelfMetric waits until series on the daemon's /metrics at addr is at
// least want, polling for 10 s at most.
func waitSelfMetric(t *testing.T, addr, series string, want float64) {
	t.Helper()
	var got float64
	for range 1000 {
		if got, _ = selfMetric(t, addr, series); got >= want {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s is %v after 10s, want %v", series, got, want)
}

// dryRunOutput starts bin with cfgPath and -dry-run, sends line to its UDP
// listener, stops it with SIGINT and returns what it printed.
func dryRunOutput(t *testing.T, bin, cfgPath, line string) string {
	t.Helper()
	cmd, udp, _, stdout, stderr := startBinary(t, bin, cfgPath, "-dry-run")
	c, err := net.Dial("udp", udp)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(c, line)
	c.Close()
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := testproc.WaitExit(t, cmd); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
	return stdout.String()
}
