package main

import (
	"context"
	"encoding/json"
	"fmt"
	dto "github.com/prometheus/client_model/go"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libratod/libratod/cmd/libratod/internal/config"
	"github.com/libratod/libratod/internal/eventually"
	"github.com/libratod/libratod/internal/fakelibrato"
	"github.com/libratod/libratod/internal/testproc"
)

const (
	testEmail = "ops@example.com"
	testToken = "s3cr3t-t0ken-value"
)

// request is one request the fake Librato received.
type request struct {
	Method, Path, User, Password, ContentType, UserAgent string
	Body                                                 map[string]any
}

// fakeLibrato is an httptest server (a fakelibrato.Fake) that records
// every request and answers 200, or: 503 while down is set, then what
// handle answers, then the faults queued in faults, then the statuses
// queued in fail, in order. Only requests answered 200, or taken by a
// fault (slow), are recorded.
type fakeLibrato struct {
	*httptest.Server
	mu     sync.Mutex
	reqs   []request
	fail   []int
	faults []fault
	down   atomic.Bool
	got    chan struct{}
	// handle, when set, sees each request first (with its decoded body)
	// and may answer it itself, returning true.
	handle func(w http.ResponseWriter, r *http.Request, body map[string]any) bool
}

// fault answers a request in some broken way; take records the request
// as accepted, for a fault in which Librato took it.
type fault func(w http.ResponseWriter, r *http.Request, take func())

// hangUp closes the connection without an answer.
func hangUp(w http.ResponseWriter, _ *http.Request, _ func()) { fakelibrato.HangUp(w) }

// status answers with code, the headers given as name, value pairs, and body.
func status(code int, body string, headers ...string) fault {
	return func(w http.ResponseWriter, _ *http.Request, _ func()) {
		fakelibrato.Status(w, code, body, headers...)
	}
}

// slow takes the request at once but answers 200 only after d, by which
// time a client with a shorter timeout has given up.
func slow(d time.Duration) fault {
	return func(w http.ResponseWriter, r *http.Request, take func()) {
		take()
		fakelibrato.Wait(r, d)
		w.WriteHeader(http.StatusOK)
	}
}

func newFakeLibrato(t *testing.T) *fakeLibrato {
	t.Helper()
	f := &fakeLibrato{got: make(chan struct{}, 100)}
	f.Server = httptest.NewServer(&fakelibrato.Fake{
		Serve: func(w http.ResponseWriter, r *http.Request, req *fakelibrato.Request, take func()) bool {
			if req.Err != nil {
				t.Errorf("reading body: %v", req.Err)
			}
			var body map[string]any
			if err := json.Unmarshal(req.Body, &body); err != nil {
				t.Errorf("body is not a JSON object: %v: %s", err, req.Body)
			}
			req.Payload = body
			if f.down.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
				return true
			}
			if f.handle != nil && f.handle(w, r, body) {
				return true
			}
			var ft fault
			code := 0
			f.mu.Lock()
			switch {
			case len(f.faults) > 0:
				ft, f.faults = f.faults[0], f.faults[1:]
			case len(f.fail) > 0:
				code, f.fail = f.fail[0], f.fail[1:]
			}
			f.mu.Unlock()
			switch {
			case ft != nil:
				ft(w, r, take)
			case code != 0:
				w.WriteHeader(code)
			default:
				return false
			}
			return true
		},
		Take: func(req *fakelibrato.Request) {
			f.mu.Lock()
			f.reqs = append(f.reqs, request{req.Method, req.Path, req.User, req.Password, req.ContentType, req.UserAgent, req.Payload.(map[string]any)})
			f.mu.Unlock()
		},
		OK: func(w http.ResponseWriter, _ *fakelibrato.Request) {
			w.WriteHeader(http.StatusOK)
			select {
			case f.got <- struct{}{}:
			default:
			}
		},
	})
	t.Cleanup(f.Close)
	return f
}

func (f *fakeLibrato) requests() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]request(nil), f.reqs...)
}

// testConfig is a config that listens on free loopback ports and sends to
// the fake.
func testConfig(url, api string) *config.Config {
	c := config.Default()
	c.Listen.UDP = "127.0.0.1:0"
	c.Listen.TCP = "127.0.0.1:0"
	c.Metrics.Listen = "127.0.0.1:0"
	c.Librato.URL = url
	c.Librato.API = api
	c.Librato.Email = testEmail
	c.Librato.Token = config.Secret(testToken)
	c.Aggregate.Period = time.Hour // only the shutdown flush happens in a test
	c.Aggregate.Percentiles = []float64{50, 99.5}
	c.Tags = map[string]string{"env": "test"}
	c.Log.Level = "warn"
	return &c
}

// startDaemon runs a daemon for cfg until the returned stop is called;
// stop returns what the daemon logged.
func startDaemon(t *testing.T, cfg *config.Config) (d *daemon, stop func() string) {
	t.Helper()
	return startDaemonWith(t, cfg, options{}, nil)
}

// startDaemonWith is startDaemon with options; logs, when not nil,
// receives the daemon's log as it runs.
func startDaemonWith(t *testing.T, cfg *config.Config, opts options, logs *testproc.SafeBuffer) (d *daemon, stop func() string) {
	t.Helper()
	if logs == nil {
		logs = &testproc.SafeBuffer{}
	}
	opts.stderr, opts.hostname = logs, "test-host"
	if opts.now == nil {
		opts.now = testClock()
	}
	d, err := newDaemon(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- d.run(ctx) }()
	select {
	case <-d.ready:
	case err := <-errc:
		cancel()
		t.Fatalf("daemon failed to start: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("daemon not ready within 10s")
	}
	return d, func() string {
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("daemon: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("daemon did not stop within 20s")
		}
		return logs.String()
	}
}

// testClock returns a clock that runs with the wall clock, a whole number
// of seconds from it, but reads one minute past an hour (and a fraction of
// a second) when it is made, so that a test with the 1 h period of
// testConfig sees no period boundary unless it runs for 59 minutes.
func testClock() func() time.Time {
	real := time.Now()
	shift := real.Truncate(time.Hour).Add(time.Minute).Sub(real.Truncate(time.Second))
	return func() time.Time { return time.Now().Add(shift) }
}

func sendUDP(t *testing.T, addr net.Addr, payload string) {
	t.Helper()
	c, err := net.Dial("udp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(payload)); err != nil {
		t.Fatal(err)
	}
}

func sendTCP(t *testing.T, addr net.Addr, payload string) {
	t.Helper()
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte(payload)); err != nil {
		t.Fatal(err)
	}
	c.Close()
}

// waitSeen waits until the daemon has counted n lines, so that the
// shutdown flush is sure to hold them (TCP is read asynchronously).
func waitSeen(t *testing.T, d *daemon, n float64) {
	t.Helper()
	eventually.Require(t, 5*time.Second, func() bool { return linesReceived(t, d) >= n }, "the daemon saw %v lines", n)
}

func linesReceived(t *testing.T, d *daemon) float64 {
	return counterValue(t, d, "libratod_lines_received_total", "")
}

// counterValue sums a counter's series whose first label value is label
// (any when label is "").
func counterValue(t *testing.T, d *daemon, name, label string) float64 {
	t.Helper()
	mfs, err := d.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label == "" || hasLabelValue(m, label) {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}

// hasLabelValue reports whether one of m's labels other than "output" has
// the value v.
func hasLabelValue(m *dto.Metric, v string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() != "output" && l.GetValue() == v {
			return true
		}
	}
	return false
}

// canonical re-encodes a payload with its measurements in a stable order
// and its time cleared, after checking the time is that of the first
// period of d, whose clock read a minute past an hour when it started
// (testClock): the start rounded up to a second.
func canonical(t *testing.T, d *daemon, body map[string]any, timeKey string) string {
	t.Helper()
	ts, ok := body[timeKey].(float64)
	now := d.opts.now()
	if min := now.Truncate(time.Hour).Add(time.Minute).Unix(); !ok || int64(ts) < min || int64(ts) > now.Unix() {
		t.Errorf("%s = %v: want the daemon's start rounded up to a second, in [%d, %d]", timeKey, body[timeKey], min, now.Unix())
	}
	delete(body, timeKey)
	for _, list := range []string{"measurements", "gauges"} {
		ms, _ := body[list].([]any)
		sort.Slice(ms, func(i, j int) bool {
			a, _ := json.Marshal(ms[i])
			b, _ := json.Marshal(ms[j])
			return string(a) < string(b)
		})
	}
	out, err := json.MarshalIndent(body, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func reindent(t *testing.T, s string) string {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("bad expected JSON: %v", err)
	}
	for _, list := range []string{"measurements", "gauges"} {
		ms, _ := v[list].([]any)
		sort.Slice(ms, func(i, j int) bool {
			a, _ := json.Marshal(ms[i])
			b, _ := json.Marshal(ms[j])
			return string(a) < string(b)
		})
	}
	out, _ := json.MarshalIndent(v, "", " ")
	return string(out)
}

const e2eUDP = "hits:1|c\nhits:2|c|@0.5\r\n\nlat:10|ms\nlat:20|ms\nlat:30|ms|@0.5\nlat:40|ms\n" +
	"temp:20|g\ntemp:+1.5|g\nusers:alice|s\nusers:bob|s\nusers:alice|s\n" +
	"req#region=eu:1|c|#env:prod\nbad line\nmulti:1:2|ms\n"

const e2eTCP = "conns:7|g\nhits:1|c\npartial:1|c" // no final newline: delivered at EOF

func TestEndToEndTagged(t *testing.T) {
	fake := newFakeLibrato(t)
	d, stop := startDaemon(t, testConfig(fake.URL, "tagged"))
	sendUDP(t, d.lst.UDPAddr(), e2eUDP)
	sendTCP(t, d.lst.TCPAddr(), e2eTCP)
	waitSeen(t, d, 17)
	logs := stop()

	reqs := fake.requests()
	if len(reqs) != 1 {
		t.Fatalf("got %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.Method != "POST" || r.Path != "/v1/measurements" || r.User != testEmail || r.Password != testToken ||
		r.ContentType != "application/json" || r.UserAgent != "libratod/"+versionString() {
		t.Errorf("request %s %s user %q ct %q ua %q", r.Method, r.Path, r.User, r.ContentType, r.UserAgent)
	}
	want := `{
	 "period": 3600,
	 "tags": {"host": "test-host", "env": "test"},
	 "measurements": [
	  {"name": "hits", "value": 6},
	  {"name": "temp", "value": 21.5},
	  {"name": "users", "value": 2},
	  {"name": "conns", "value": 7},
	  {"name": "partial", "value": 1},
	  {"name": "req", "value": 1, "tags": {"host": "test-host", "env": "prod", "region": "eu"}},
	  {"name": "lat", "count": 5, "sum": 130, "min": 10, "max": 40, "last": 40, "stddev": 10.198039027185569},
	  {"name": "lat.50", "count": 2, "sum": 30, "min": 10, "max": 20, "stddev": 5},
	  {"name": "lat.99.5", "count": 4, "sum": 100, "min": 10, "max": 40, "stddev": 11.180339887498949},
	  {"name": "multi", "count": 2, "sum": 3, "min": 1, "max": 2, "last": 2, "stddev": 0.5},
	  {"name": "multi.50", "count": 1, "sum": 1, "min": 1, "max": 1, "stddev": 0},
	  {"name": "multi.99.5", "count": 2, "sum": 3, "min": 1, "max": 2, "stddev": 0.5}
	 ]
	}`
	if got, want := canonical(t, d, r.Body, "time"), reindent(t, want); got != want {
		t.Errorf("payload:\n%s\nwant:\n%s", got, want)
	}
	if strings.Contains(logs, testToken) {
		t.Error("the token appears in the logs")
	}
	if !strings.Contains(logs, `"bad line"`) {
		t.Errorf("the bad line was not logged:\n%s", logs)
	}
}

func TestEndToEndLegacy(t *testing.T) {
	fake := newFakeLibrato(t)
	cfg := testConfig(fake.URL, "legacy")
	cfg.Aggregate.Percentiles = nil
	cfg.Aggregate.Prefix = "app"
	d, stop := startDaemon(t, cfg)
	sendUDP(t, d.lst.UDPAddr(), "hits:1|c\nhits:2|c\nlat:10|ms\nlat:20|ms\ndb:5|g|#source:db-1,role:primary\n")
	waitSeen(t, d, 5)
	stop()

	reqs := fake.requests()
	if len(reqs) != 1 || reqs[0].Path != "/v1/metrics" {
		t.Fatalf("requests %+v, want one to /v1/metrics", reqs)
	}
	want := `{
	 "source": "test-host",
	 "gauges": [
	  {"name": "app.hits", "value": 3},
	  {"name": "app.lat", "count": 2, "sum": 30, "min": 10, "max": 20, "sum_squares": 500},
	  {"name": "app.db", "value": 5, "source": "db-1"}
	 ]
	}`
	if got, want := canonical(t, d, reqs[0].Body, "measure_time"), reindent(t, want); got != want {
		t.Errorf("payload:\n%s\nwant:\n%s", got, want)
	}
}

func TestEndToEndBatches(t *testing.T) {
	fake := newFakeLibrato(t)
	cfg := testConfig(fake.URL, "tagged")
	cfg.Librato.BatchSize = 7
	d, stop := startDaemon(t, cfg)
	var b strings.Builder
	for i := range 50 {
		fmt.Fprintf(&b, "c%d:%d|c\n", i, i)
	}
	sendTCP(t, d.lst.TCPAddr(), b.String())
	waitSeen(t, d, 50)
	stop()
	got := map[string]float64{}
	for _, r := range fake.requests() {
		ms := r.Body["measurements"].([]any)
		if len(ms) > 7 {
			t.Errorf("a request holds %d measurements, batch_size is 7", len(ms))
		}
		for _, m := range ms {
			m := m.(map[string]any)
			got[m["name"].(string)] += m["value"].(float64)
		}
	}
	want := map[string]float64{}
	for i := range 50 {
		want[fmt.Sprintf("c%d", i)] = float64(i)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("delivered %v\nwant %v", got, want)
	}
}

func TestEndToEndRetriesServerErrors(t *testing.T) {
	fake := newFakeLibrato(t)
	fake.fail = []int{503, 500}
	d, stop := startDaemon(t, testConfig(fake.URL, "tagged"))
	sendUDP(t, d.lst.UDPAddr(), "hits:5|c\n")
	waitSeen(t, d, 1)
	stop()
	reqs := fake.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests accepted, want 1 after two 5xx", len(reqs))
	}
	ms := reqs[0].Body["measurements"].([]any)
	if v := ms[0].(map[string]any)["value"]; v != 5.0 {
		t.Errorf("value %v, want 5", v)
	}
}
