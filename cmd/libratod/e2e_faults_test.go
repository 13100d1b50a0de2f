package main

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/libratod/libratod/cmd/libratod/internal/config"
	"github.com/libratod/libratod/internal/eventually"
	"github.com/libratod/libratod/internal/testproc"
)

// delivered sums the values of plain measurements by name, and records
// the times each name was delivered at.
func delivered(reqs []request) (sums map[string]float64, times map[string][]int64) {
	sums, times = map[string]float64{}, map[string][]int64{}
	for _, r := range reqs {
		tm, _ := r.Body["time"].(float64)
		list, _ := r.Body["measurements"].([]any)
		if list == nil {
			list, _ = r.Body["gauges"].([]any)
		}
		for _, m := range list {
			m := m.(map[string]any)
			name := m["name"].(string)
			v, ok := m["value"].(float64)
			if !ok {
				continue
			}
			sums[name] += v
			times[name] = append(times[name], int64(tm))
		}
	}
	return sums, times
}

// TestFaultsDeliverExactlyOnce sends one period through every kind of
// failure Librato can answer with, in turn: the counter arrives once.
func TestFaultsDeliverExactlyOnce(t *testing.T) {
	fake := newFakeLibrato(t)
	fake.faults = []fault{
		hangUp,
		status(http.StatusTooManyRequests, `{"error":"You have hit the API limit for measurements [measure:raw_rate]."}`, "Retry-After", "0"),
		status(http.StatusForbidden, `{"error":"You have hit the API limit"}`, "X-Librato-RateLimit-Std", "limit=300,remaining=0,reset=1"),
		status(http.StatusBadGateway, "<html>bad gateway</html>"),
		status(http.StatusInternalServerError, `{"errors":{"system":["oops"]}}`),
	}
	cfg := testConfig(fake.URL, "tagged")
	cfg.Librato.Timeout = 100 * time.Millisecond
	cfg.Librato.ShutdownTimeout = 30 * time.Second
	d, stop := startDaemon(t, cfg)
	sendUDP(t, d.lst.UDPAddr(), "units:7|c\nunits:3|c\n")
	waitSeen(t, d, 2)
	logs := stop()
	sums, times := delivered(fake.requests())
	if sums["units"] != 10 || len(times["units"]) != 1 {
		t.Fatalf("delivered units=%v in %d requests, want 10 in one; logs:\n%s", sums["units"], len(times["units"]), logs)
	}
	fake.mu.Lock()
	left := len(fake.faults)
	fake.mu.Unlock()
	if left != 0 {
		t.Errorf("%d faults were never met: the daemon gave up early", left)
	}
}

// TestSlowAnswerIsSentAgain has Librato take a request but answer only
// after the client's timeout: libratod cannot tell this from a lost
// request, so it sends it again, and Librato gets the same point (name,
// tags, time) twice. This is the one case the README says a point may be
// doubled; the test pins it down.
func TestSlowAnswerIsSentAgain(t *testing.T) {
	fake := newFakeLibrato(t)
	fake.faults = []fault{slow(500 * time.Millisecond)}
	cfg := testConfig(fake.URL, "tagged")
	cfg.Librato.Timeout = 100 * time.Millisecond
	cfg.Librato.ShutdownTimeout = 30 * time.Second
	d, stop := startDaemon(t, cfg)
	sendUDP(t, d.lst.UDPAddr(), "units:7|c\n")
	waitSeen(t, d, 1)
	logs := stop()
	sums, times := delivered(fake.requests())
	if len(times["units"]) != 2 || times["units"][0] != times["units"][1] || sums["units"] != 14 {
		t.Fatalf("units delivered %v in %d requests at %v; want the same point twice (taken, answered late, sent again); logs:\n%s",
			sums["units"], len(times["units"]), times["units"], logs)
	}
}

// TestOutageEndToEnd keeps Librato down for several periods while sending,
// then brings it back: every period arrives once with its own time, and
// the counter total equals what was sent.
func TestOutageEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for several periods")
	}
	fake := newFakeLibrato(t)
	fake.down.Store(true)
	cfg := testConfig(fake.URL, "tagged")
	cfg.Aggregate.Period = time.Second
	d, stop := startDaemon(t, cfg)
	sent := 0
	seenPeriods := map[int64]bool{}
	for i := 0; len(seenPeriods) < 5 && i < 100; i++ {
		seenPeriods[time.Now().Unix()] = true
		sendUDP(t, d.lst.UDPAddr(), "outage:1|c\n")
		sent++
		time.Sleep(100 * time.Millisecond)
	}
	waitSeen(t, d, float64(sent))
	eventually.Require(t, 5*time.Second, func() bool { return d.flusher.Status().Pending != 0 }, "something waits in the backlog during the outage")
	fake.down.Store(false)
	eventually.True(20*time.Second, func() bool {
		sums, _ := delivered(fake.requests())
		return sums["outage"] == float64(sent)
	})
	stop()
	sums, times := delivered(fake.requests())
	if sums["outage"] != float64(sent) {
		t.Fatalf("delivered %v of %d", sums["outage"], sent)
	}
	seen := map[int64]bool{}
	for _, tm := range times["outage"] {
		if seen[tm] {
			t.Errorf("period %d delivered twice", tm)
		}
		seen[tm] = true
	}
	if len(seen) < 3 {
		t.Errorf("only %d periods delivered (%v); want each period on its own", len(seen), times["outage"])
	}
}

// TestHostileInput sends garbage among valid lines: the daemon counts it,
// keeps going, and delivers the valid lines exactly.
func TestHostileInput(t *testing.T) {
	fake := newFakeLibrato(t)
	cfg := testConfig(fake.URL, "tagged")
	cfg.Aggregate.MaxSeries = 100
	d, stop := startDaemon(t, cfg)
	var tags []string
	for i := range 1000 {
		tags = append(tags, fmt.Sprintf("t%d:v", i))
	}
	hostile := []string{
		"nan:NaN|c", "inf:+Inf|g", "huge:1e300|ms", "zero:1|c|@0", "over:1|c|@1.5",
		"\xff\xfe:1|c", "日本:1|c", "   ", "::::", "|||", "a:|c", ":1|c",
		"many:1|c|#" + strings.Join(tags, ","),
		"good:1|c",
	}
	sendUDP(t, d.lst.UDPAddr(), strings.Join(hostile, "\n"))
	// The valid series exist before the garbage, which may create series
	// of its own (any bytes make a set member) up to max_series.
	waitSeen(t, d, float64(len(hostile)-1))
	rng := rand.New(rand.NewPCG(7, 7))
	garbage := make([]byte, 1400)
	for range 200 {
		for i := range garbage {
			garbage[i] = byte(rng.UintN(256))
		}
		sendUDP(t, d.lst.UDPAddr(), string(garbage))
	}
	// Past max_series: the existing series still counts.
	var b strings.Builder
	for i := range 200 {
		fmt.Fprintf(&b, "card%d:1|c\n", i)
	}
	b.WriteString("good:2|c\n")
	sendTCP(t, d.lst.TCPAddr(), b.String())
	// A TCP client that never sends anything must not hold anything up.
	idle, err := net.Dial("tcp", d.lst.TCPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	sendUDP(t, d.lst.UDPAddr(), "good:4|c\n")
	eventually.True(5*time.Second, func() bool {
		return counterValue(t, d, "libratod_measurements_dropped_total", "max_series") > 0 && linesReceived(t, d) >= 200+float64(len(hostile)-1)+202
	})
	logs := stop()
	sums, _ := delivered(fake.requests())
	if sums["good"] != 7 {
		t.Errorf("good = %v, want 7; logs:\n%s", sums["good"], logs)
	}
	if sums["many"] != 1 {
		t.Errorf("the line with 1000 tags delivered %v, want 1", sums["many"])
	}
	if _, ok := sums["nan"]; ok {
		t.Error("NaN was delivered")
	}
	if n := counterValue(t, d, "libratod_lines_invalid_total", ""); n < 200 {
		t.Errorf("invalid lines counted %v, want at least the 200 garbage datagrams", n)
	}
	if n := counterValue(t, d, "libratod_measurements_dropped_total", "max_series"); n == 0 {
		t.Error("no series dropped past max_series")
	}
	if !strings.Contains(logs, "invalid line dropped") {
		t.Error("invalid lines were not logged")
	}
}

func TestReload(t *testing.T) {
	fake := newFakeLibrato(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "libratod.toml")
	write := func(text string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	base := fmt.Sprintf(`
[listen]
udp = "127.0.0.1:0"
tcp = "127.0.0.1:0"
[aggregate]
period = "1h"
[librato]
url = %q
token = %q
[metrics]
listen = ""
[log]
level = "info"
`, fake.URL, testToken)
	write(base)
	cfg, err := config.Load(path, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	logs := &testproc.SafeBuffer{}
	d, stop := startDaemonWith(t, cfg, options{configPath: path, getenv: noEnv}, logs)
	sendUDP(t, d.lst.UDPAddr(), "before:1|c\nbefore,k=v:1|c\n")
	waitSeen(t, d, 2)

	waitLog := func(msg string) {
		t.Helper()
		eventually.Require(t, 5*time.Second, func() bool { return strings.Contains(logs.String(), msg) }, "%q in the logs:\n%s", msg, logs)
	}

	// A broken file is refused and the running configuration kept.
	write("[aggregate]\nperiod = \"soon\"\n")
	d.hup <- syscall.SIGHUP
	waitLog("the new configuration is invalid")

	// A good one applies: new prefix, tags and tag syntaxes; the listener
	// change waits for a restart.
	write(strings.Replace(strings.Replace(base, "[aggregate]", "[aggregate]\nprefix = \"v2\"", 1),
		`udp = "127.0.0.1:0"`, `udp = "127.0.0.1:1"`+"\ntag_syntaxes = [\"dogstatsd\"]", 1) + "[tags]\nteam = \"core\"\n")
	d.hup <- syscall.SIGHUP
	waitLog("configuration reloaded")
	if !strings.Contains(logs.String(), "listen.udp") {
		t.Errorf("the restart-only change was not reported:\n%s", logs.String())
	}
	sendUDP(t, d.lst.UDPAddr(), "after:2|c\nafter,k=v:2|c\n") // the old socket still works
	waitSeen(t, d, 4)
	stop()

	reqs := fake.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	sums, _ := delivered(reqs)
	if sums["v2.before"] != 2 || sums["v2.after"] != 2 {
		t.Errorf("delivered %v: the data from before the reload must survive it, under the new prefix", sums)
	}
	if sums["v2.after_k_v"] != 2 {
		t.Errorf("delivered %v: after the reload, without the influxdb syntax, \"after,k=v\" is a name", sums)
	}
	tags, _ := reqs[0].Body["tags"].(map[string]any)
	if tags["team"] != "core" {
		t.Errorf("global tags %v, want team=core after the reload", tags)
	}
}

func TestEventsBecomeAnnotations(t *testing.T) {
	fake := newFakeLibrato(t)
	cfg := testConfig(fake.URL, "tagged")
	d, stop := startDaemon(t, cfg)
	sendUDP(t, d.lst.UDPAddr(), "_e{6,12}:Deploy|Version\\n1.2|d:1800000000|h:web-1|t:info|#stream:deploys,env:prod\n"+
		"_e{5,4}:Alert|oops|t:error\n_e{bad\n_sc|db.up|0|h:db-1\n_sc|db.up|9\nplain:1|c\n")
	waitSeen(t, d, 6)
	stop()
	byPath := map[string][]map[string]any{}
	for _, r := range fake.requests() {
		byPath[r.Path] = append(byPath[r.Path], r.Body)
	}
	deploys := byPath["/v1/annotations/deploys"]
	if len(deploys) != 1 {
		t.Fatalf("requests by path: %v", byPath)
	}
	a := deploys[0]
	if a["title"] != "Deploy" || a["source"] != "web-1" || a["start_time"] != 1800000000.0 ||
		!strings.HasPrefix(a["description"].(string), "Version\n1.2\nalert_type: info") ||
		!strings.Contains(a["description"].(string), "tags: env:prod") {
		t.Errorf("annotation %v", a)
	}
	if alerts := byPath["/v1/annotations/statsd"]; len(alerts) != 1 || alerts[0]["title"] != "Alert" || alerts[0]["source"] != "test-host" {
		t.Errorf("default-stream annotation %v", alerts)
	}
	if n := counterValue(t, d, "libratod_lines_invalid_total", "bad_event"); n != 1 {
		t.Errorf("bad events = %v, want 1", n)
	}
	if n := counterValue(t, d, "libratod_lines_invalid_total", "bad_service_check"); n != 1 {
		t.Errorf("bad service checks = %v, want 1", n)
	}
	if n := counterValue(t, d, "libratod_lines_converted_total", "service_check"); n != 1 {
		t.Errorf("service checks made gauges = %v, want 1", n)
	}
}
