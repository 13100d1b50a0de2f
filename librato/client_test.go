package librato

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const testToken = "s3cr3t-t0ken-value"

// testBatch is a small batch with one plain point and one summary.
func testBatch() *Batch {
	return &Batch{Time: 1700000000, Period: 10, Source: "web1", Tags: []Tag{{"host", "web1"}},
		Measurements: []Measurement{
			{Name: "requests", Value: 42},
			{Name: "latency", Count: 2, Sum: 4, Min: 1, Max: 3, SumSquares: 10},
		}}
}

// newTestClient returns a client for srvURL with the test token and a short
// timeout.
func newTestClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	if cfg.API == 0 {
		cfg.API = Tagged
	}
	if cfg.Token == "" {
		cfg.Token = testToken
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// newServer starts a test server on 127.0.0.1, stopped at the end of the test.
func newServer(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// captured is what the test server saw of one request.
type captured struct {
	method, path, contentType, accept, userAgent, encoding string
	user, pass                                             string
	hasAuth                                                bool
	body                                                   []byte
}

func TestSendRequest(t *testing.T) {
	tests := []struct {
		name      string
		cfg       Config
		wantPath  string
		wantUser  string
		wantPass  string
		wantUA    string
		wantGzip  bool
		wantLists string // the measurement list key
	}{
		{"tagged with email", Config{API: Tagged, Email: "me@example.com", UserAgent: "libratod/1.2.3 (go1.26; linux/amd64)"},
			"/v1/measurements", "me@example.com", testToken, "libratod/1.2.3 (go1.26; linux/amd64)", false, "measurements"},
		{"legacy token only", Config{API: Legacy},
			"/v1/metrics", testToken, "", DefaultUserAgent, false, "gauges"},
		{"tagged gzip", Config{API: Tagged, Gzip: true},
			"/v1/measurements", testToken, "", DefaultUserAgent, true, "measurements"},
		{"legacy gzip with email", Config{API: Legacy, Email: "me@example.com", Gzip: true},
			"/v1/metrics", "me@example.com", testToken, DefaultUserAgent, true, "gauges"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := make(chan captured, 1)
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				c := captured{method: r.Method, path: r.URL.Path, contentType: r.Header.Get("Content-Type"),
					accept: r.Header.Get("Accept"), userAgent: r.Header.Get("User-Agent"),
					encoding: r.Header.Get("Content-Encoding")}
				c.user, c.pass, c.hasAuth = r.BasicAuth()
				c.body, _ = io.ReadAll(r.Body)
				got <- c
				w.WriteHeader(http.StatusAccepted)
			})
			cfg := tt.cfg
			cfg.URL = srv.URL + "/" // a trailing slash is tolerated
			c := newTestClient(t, cfg)
			res, err := c.Send(context.Background(), testBatch())
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			if want := (Result{StatusCode: http.StatusAccepted, Sent: 2}); !reflect.DeepEqual(res, want) {
				t.Errorf("Result = %+v, want %+v", res, want)
			}
			r := <-got
			if r.method != http.MethodPost || r.path != tt.wantPath {
				t.Errorf("request %s %s, want POST %s", r.method, r.path, tt.wantPath)
			}
			if r.contentType != "application/json" || r.accept != "application/json" {
				t.Errorf("Content-Type %q, Accept %q; want application/json", r.contentType, r.accept)
			}
			if r.userAgent != tt.wantUA {
				t.Errorf("User-Agent %q, want %q", r.userAgent, tt.wantUA)
			}
			if !r.hasAuth || r.user != tt.wantUser || r.pass != tt.wantPass {
				t.Errorf("basic auth (%v) %q:%q, want %q:%q", r.hasAuth, r.user, r.pass, tt.wantUser, tt.wantPass)
			}
			body := r.body
			if tt.wantGzip {
				if r.encoding != "gzip" {
					t.Fatalf("Content-Encoding %q, want gzip", r.encoding)
				}
				zr, err := gzip.NewReader(bytes.NewReader(body))
				if err != nil {
					t.Fatalf("gzip body: %v", err)
				}
				if body, err = io.ReadAll(zr); err != nil {
					t.Fatalf("gzip body: %v", err)
				}
			} else if r.encoding != "" {
				t.Errorf("Content-Encoding %q, want none", r.encoding)
			}
			want, _, _ := encode(nil, cfg.API, testBatch())
			if !bytes.Equal(body, want) {
				t.Errorf("body\n got %s\nwant %s", body, want)
			}
			var doc map[string]json.RawMessage
			if err := json.Unmarshal(body, &doc); err != nil || doc[tt.wantLists] == nil {
				t.Errorf("body not JSON with %q: %v", tt.wantLists, err)
			}
		})
	}
}

func TestSendStatus(t *testing.T) {
	typeConflict := `{"errors":{"params":{"type":["'app.hits' is a counter, but was submitted as different type"]}}}`
	tests := []struct {
		name    string
		status  int
		header  map[string]string
		body    string
		wantRes *Result // for a 2xx
		wantErr *Error  // for a failure; path and Err are not compared
	}{
		{name: "200 empty body", status: 200,
			wantRes: &Result{StatusCode: 200, Sent: 2}},
		{name: "202 summary body", status: 202, body: `{"measurements":{"summary":{"total":2,"accepted":2}}}`,
			wantRes: &Result{StatusCode: 202, Sent: 2}},
		{name: "200 not JSON", status: 200, body: "OK",
			wantRes: &Result{StatusCode: 200, Sent: 2}},
		{name: "202 partial failure", status: 202,
			body: `{"errors":{"params":{"name":["is invalid"],"tags":{"host":["too long","bad"]}},"request":["one dropped"]}}`,
			wantRes: &Result{StatusCode: 202, Sent: 2,
				Errors: []string{"name: is invalid", "tags.host: too long", "tags.host: bad", "request: one dropped"}}},
		{name: "200 rate limit headers", status: 200,
			header: map[string]string{"X-Librato-RateLimit-Agg": "limit=100,remaining=99,reset=1700000060",
				"X-Librato-RateLimit-Std": "limit=300, remaining=0, reset=60"},
			wantRes: &Result{StatusCode: 200, Sent: 2, RateLimit: RateLimit{
				Agg: Quota{Present: true, Limit: 100, Remaining: 99, Reset: 1700000060},
				Std: Quota{Present: true, Limit: 300, Remaining: 0, Reset: 60}}}},
		{name: "400 type conflict", status: 400, body: typeConflict,
			wantErr: &Error{StatusCode: 400, Message: "type: 'app.hits' is a counter, but was submitted as different type",
				TypeConflicts: []string{"app.hits"}}},
		{name: "400 time in the past", status: 400,
			body:    `{"errors":{"params":{"measure_time":["is too far in the past"]}}}`,
			wantErr: &Error{StatusCode: 400, Message: "measure_time: is too far in the past"}},
		{name: "401", status: 401, body: `{"errors":{"request":["Authorization Required"]}}`,
			wantErr: &Error{StatusCode: 401, Message: "request: Authorization Required"}},
		{name: "403 rate limit body", status: 403,
			body: `{"error":"You have hit the API limit for measurements [measure:raw_rate]. Contact: support"}`,
			wantErr: &Error{StatusCode: 403, Retryable: true, RateLimited: true,
				Message: "You have hit the API limit for measurements [measure:raw_rate]. Contact: support"}},
		{name: "403 forbidden", status: 403, body: `{"errors":{"request":["Forbidden"]}}`,
			wantErr: &Error{StatusCode: 403, Message: "request: Forbidden"}},
		{name: "403 exhausted rate limit header", status: 403,
			header: map[string]string{"X-Librato-RateLimit-Std": "limit=300,remaining=0,reset=12"},
			wantErr: &Error{StatusCode: 403, Retryable: true, RateLimited: true, Message: "Forbidden",
				RateLimit: RateLimit{Std: Quota{Present: true, Limit: 300, Remaining: 0, Reset: 12}}}},
		{name: "404", status: 404, wantErr: &Error{StatusCode: 404, Message: "Not Found"}},
		{name: "408", status: 408, wantErr: &Error{StatusCode: 408, Retryable: true, Message: "Request Timeout"}},
		{name: "415", status: 415, body: `{"errors":{"request":["Unsupported media type"]}}`,
			wantErr: &Error{StatusCode: 415, Message: "request: Unsupported media type"}},
		{name: "422", status: 422, body: `{"errors":{"params":{"name":["already exists"]}}}`,
			wantErr: &Error{StatusCode: 422, Message: "name: already exists"}},
		{name: "429 retry after seconds", status: 429, header: map[string]string{"Retry-After": "7"},
			body: `{"error":"You have hit the API limit"}`,
			wantErr: &Error{StatusCode: 429, Retryable: true, RateLimited: true, RetryAfter: 7 * time.Second,
				Message: "You have hit the API limit"}},
		{name: "500 html body", status: 500, body: "<html>\n\t<body>Internal\x00 Error</body>\n</html>\xff",
			wantErr: &Error{StatusCode: 500, Retryable: true, Message: "<html> <body>Internal Error</body> </html>"}},
		{name: "503 maintenance", status: 503, body: `{"errors":{"system":["Down for maintenance"]}}`,
			wantErr: &Error{StatusCode: 503, Retryable: true, Message: "system: Down for maintenance"}},
		{name: "302 not followed", status: 302, header: map[string]string{"Location": "/elsewhere"},
			wantErr: &Error{StatusCode: 302, Message: "Found"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hits atomic.Int32
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			})
			c := newTestClient(t, Config{URL: srv.URL})
			res, err := c.Send(context.Background(), testBatch())
			if n := hits.Load(); n != 1 {
				t.Errorf("server saw %d requests, want 1", n)
			}
			if tt.wantRes != nil {
				if err != nil {
					t.Fatalf("Send: %v", err)
				}
				if !reflect.DeepEqual(res, *tt.wantRes) {
					t.Errorf("Result\n got %+v\nwant %+v", res, *tt.wantRes)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Send error %v (%T), want *Error", err, err)
			}
			got := *e
			got.path, got.Err = "", nil
			if !reflect.DeepEqual(got, *tt.wantErr) {
				t.Errorf("Error\n got %+v\nwant %+v", got, *tt.wantErr)
			}
			if !reflect.DeepEqual(res, Result{}) {
				t.Errorf("Result with an error = %+v, want zero", res)
			}
			wantText := fmt.Sprintf("librato: POST /v1/measurements: HTTP %d: %s", tt.status, tt.wantErr.Message)
			if e.Error() != wantText {
				t.Errorf("Error() = %q, want %q", e.Error(), wantText)
			}
		})
	}
}

func TestSendRetryAfterDate(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", time.Now().Add(time.Minute).UTC().Format(http.TimeFormat))
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	c := newTestClient(t, Config{URL: srv.URL})
	_, err := c.Send(context.Background(), testBatch())
	var e *Error
	if !errors.As(err, &e) || !e.Retryable {
		t.Fatalf("Send error %v, want a retryable *Error", err)
	}
	// The date has a one-second resolution; allow generous slack for a slow
	// machine.
	if e.RetryAfter <= 30*time.Second || e.RetryAfter > time.Minute {
		t.Errorf("RetryAfter = %v, want about a minute", e.RetryAfter)
	}
}

func TestSendLargeErrorBodyBounded(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, strings.Repeat("x", 1<<20))
	})
	c := newTestClient(t, Config{URL: srv.URL})
	_, err := c.Send(context.Background(), testBatch())
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("Send error %v, want *Error", err)
	}
	if len(e.Message) > maxMessage || !strings.HasSuffix(e.Message, "...") {
		t.Errorf("Message of %d bytes (suffix %q), want at most %d ending in ...", len(e.Message),
			e.Message[max(0, len(e.Message)-5):], maxMessage)
	}
}

func TestSendNothingToSend(t *testing.T) {
	tests := []struct {
		name  string
		batch *Batch
		want  Result
	}{
		{"nil batch", nil, Result{}},
		{"empty batch", &Batch{Time: 1}, Result{}},
		{"all skipped", &Batch{Measurements: []Measurement{{Name: "a", Value: 1e300}, {Name: ""}}}, Result{Skipped: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hits atomic.Int32
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { hits.Add(1) })
			c := newTestClient(t, Config{URL: srv.URL})
			res, err := c.Send(context.Background(), tt.batch)
			if err != nil || !reflect.DeepEqual(res, tt.want) {
				t.Errorf("Send = %+v, %v; want %+v, nil", res, err, tt.want)
			}
			if n := hits.Load(); n != 0 {
				t.Errorf("server saw %d requests, want none", n)
			}
		})
	}
}

func TestSendSkippedCounted(t *testing.T) {
	tests := []struct {
		status  int
		want    Result
		wantErr bool
	}{
		{200, Result{StatusCode: 200, Sent: 2, Skipped: 1}, false},
		{500, Result{Skipped: 1}, true},
	}
	for _, tt := range tests {
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(tt.status) })
		c := newTestClient(t, Config{URL: srv.URL})
		b := testBatch()
		b.Measurements = append(b.Measurements, Measurement{Name: "bad", Value: 1e200})
		res, err := c.Send(context.Background(), b)
		if (err != nil) != tt.wantErr || !reflect.DeepEqual(res, tt.want) {
			t.Errorf("status %d: Send = %+v, %v; want %+v, error %v", tt.status, res, err, tt.want, tt.wantErr)
		}
	}
}

// checkTransportError checks err is a retryable transport *Error without the
// token.
func checkTransportError(t *testing.T, err error) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("Send error %v (%T), want *Error", err, err)
	}
	if e.StatusCode != 0 || !e.Retryable || e.RateLimited || e.Err == nil {
		t.Errorf("Error %+v: want status 0, retryable, not rate limited, with Err", e)
	}
	checkNoToken(t, e.Error())
	return e
}

// checkNoToken fails if s holds the token or its Basic auth encodings.
func checkNoToken(t *testing.T, s string) {
	t.Helper()
	for _, secret := range []string{testToken, base64.StdEncoding.EncodeToString([]byte(testToken + ":")),
		base64.StdEncoding.EncodeToString([]byte("me@example.com:" + testToken))} {
		if strings.Contains(s, secret) {
			t.Errorf("token leaked in %q", s)
		}
	}
}

func TestSendTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) }) // runs before srv.Close
	c := newTestClient(t, Config{URL: srv.URL, Email: "me@example.com", Timeout: 100 * time.Millisecond})
	_, err := c.Send(context.Background(), testBatch())
	e := checkTransportError(t, err)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v does not wrap context.DeadlineExceeded", err)
	}
	if !strings.Contains(e.Message, "timed out") {
		t.Errorf("Message %q does not say it timed out", e.Message)
	}
}

func TestSendContextCanceled(t *testing.T) {
	arrived := make(chan struct{})
	release := make(chan struct{})
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) })
	c := newTestClient(t, Config{URL: srv.URL})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-arrived
		cancel()
	}()
	_, err := c.Send(ctx, testBatch())
	e := checkTransportError(t, err)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v does not wrap context.Canceled", err)
	}
	if !strings.Contains(e.Message, "canceled by the caller") {
		t.Errorf("Message %q does not say the caller canceled", e.Message)
	}
}

func TestSendConnectionClosed(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		_ = conn.Close()
	})
	c := newTestClient(t, Config{URL: srv.URL})
	_, err := c.Send(context.Background(), testBatch())
	checkTransportError(t, err)
}

func TestSendConnectionRefused(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more
	c := newTestClient(t, Config{URL: url, Email: "me@example.com"})
	_, err := c.Send(context.Background(), testBatch())
	checkTransportError(t, err)
}

func TestTokenNotInErrors(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"errors":{"request":["Authorization Required"]}}`)
	})
	for _, email := range []string{"", "me@example.com"} {
		c := newTestClient(t, Config{URL: srv.URL, Email: email})
		_, err := c.Send(context.Background(), testBatch())
		if err == nil {
			t.Fatal("Send succeeded on 401")
		}
		checkNoToken(t, err.Error())
		checkNoToken(t, fmt.Sprintf("%+v %#v", err, err))
	}
	cfg := Config{API: Tagged, URL: srv.URL, Token: testToken}
	checkNoToken(t, fmt.Sprintf("%v %+v %#v %s", cfg, cfg, cfg, cfg))
	if !strings.Contains(cfg.String(), "[redacted]") {
		t.Errorf("Config.String() = %q, want the token marked redacted", cfg.String())
	}
}

func TestDryRun(t *testing.T) {
	var out bytes.Buffer
	for _, api := range []API{Tagged, Legacy} {
		c, err := New(Config{API: api, URL: "https://metrics-api.librato.com", Token: testToken, DryRun: &out, Gzip: true})
		if err != nil {
			t.Fatal(err)
		}
		res, err := c.Send(context.Background(), testBatch())
		if err != nil || !reflect.DeepEqual(res, Result{Sent: 2}) {
			t.Errorf("%v: Send = %+v, %v; want 2 sent", api, res, err)
		}
	}
	golden, err := os.ReadFile(filepath.Join("testdata", "dryrun.golden"))
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != string(golden) {
		t.Errorf("dry-run output\n got %q\nwant %q", out.String(), golden)
	}
	checkNoToken(t, out.String())
}

func TestDryRunWithoutToken(t *testing.T) {
	var out bytes.Buffer
	c, err := New(Config{API: Tagged, URL: "https://api.appoptics.com", DryRun: &out})
	if err != nil {
		t.Fatalf("New without token in dry-run mode: %v", err)
	}
	if _, err := c.Send(context.Background(), testBatch()); err != nil || out.Len() == 0 {
		t.Errorf("Send: %v, wrote %d bytes", err, out.Len())
	}
}

// failingWriter fails every write.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestDryRunWriteError(t *testing.T) {
	c := newTestClient(t, Config{URL: "https://metrics-api.librato.com", DryRun: failingWriter{}})
	_, err := c.Send(context.Background(), testBatch())
	var e *Error
	if !errors.As(err, &e) || e.Retryable || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Send error %v, want a non-retryable *Error about the writer", err)
	}
}

func TestSendConcurrent(t *testing.T) {
	var bad atomic.Int32
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				bad.Add(1)
				return
			}
			body = zr
		}
		data, err := io.ReadAll(body)
		if err != nil || !json.Valid(data) {
			bad.Add(1)
		}
	})
	for _, gz := range []bool{false, true} {
		c := newTestClient(t, Config{URL: srv.URL, Gzip: gz})
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for i := range 10 {
					if _, err := c.Send(context.Background(), benchBatch(1+g*i)); err != nil {
						t.Errorf("Send (gzip %v): %v", gz, err)
					}
				}
			})
		}
		wg.Wait()
	}
	if n := bad.Load(); n != 0 {
		t.Errorf("%d bodies were not valid JSON", n)
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name     string
		cfg      Config
		endpoint string // "" when New must fail
	}{
		{"https tagged", Config{API: Tagged, URL: "https://metrics-api.librato.com", Token: "t"},
			"https://metrics-api.librato.com/v1/measurements"},
		{"https legacy trailing slash", Config{API: Legacy, URL: "https://metrics-api.librato.com/", Token: "t"},
			"https://metrics-api.librato.com/v1/metrics"},
		{"path prefix kept", Config{API: Legacy, URL: "https://proxy.example.com/librato", Token: "t"},
			"https://proxy.example.com/librato/v1/metrics"},
		{"http 127.0.0.1", Config{API: Tagged, URL: "http://127.0.0.1:8080", Token: "t"},
			"http://127.0.0.1:8080/v1/measurements"},
		{"http localhost", Config{API: Tagged, URL: "http://localhost", Token: "t"},
			"http://localhost/v1/measurements"},
		{"http ::1", Config{API: Tagged, URL: "http://[::1]:9", Token: "t"}, "http://[::1]:9/v1/measurements"},
		{"dry run without token", Config{API: Tagged, URL: "https://x.example", DryRun: io.Discard},
			"https://x.example/v1/measurements"},
		{"no API", Config{URL: "https://x.example", Token: "t"}, ""},
		{"unknown API", Config{API: 9, URL: "https://x.example", Token: "t"}, ""},
		{"empty URL", Config{API: Tagged, Token: "t"}, ""},
		{"unparsable URL", Config{API: Tagged, URL: "https://x.example/%zz", Token: "t"}, ""},
		{"http remote", Config{API: Tagged, URL: "http://metrics-api.librato.com", Token: "t"}, ""},
		{"http lookalike", Config{API: Tagged, URL: "http://localhost.evil.example", Token: "t"}, ""},
		{"ftp", Config{API: Tagged, URL: "ftp://x.example", Token: "t"}, ""},
		{"with /v1", Config{API: Tagged, URL: "https://x.example/v1", Token: "t"}, ""},
		{"with /v1/", Config{API: Tagged, URL: "https://x.example/v1/", Token: "t"}, ""},
		{"credentials in URL", Config{API: Tagged, URL: "https://me:tok@x.example", Token: "t"}, ""},
		{"query", Config{API: Tagged, URL: "https://x.example?a=b", Token: "t"}, ""},
		{"no token", Config{API: Tagged, URL: "https://x.example"}, ""},
		{"control character in user agent", Config{API: Tagged, URL: "https://x.example", Token: "t", UserAgent: "a\nb"}, ""},
		{"negative timeout", Config{API: Tagged, URL: "https://x.example", Token: "t", Timeout: -1}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.cfg)
			if tt.endpoint == "" {
				if err == nil {
					t.Fatalf("New succeeded, want an error")
				}
				checkNoToken(t, err.Error())
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if c.endpoint != tt.endpoint {
				t.Errorf("endpoint %q, want %q", c.endpoint, tt.endpoint)
			}
			if c.timeout != DefaultTimeout {
				t.Errorf("timeout %v, want the default %v", c.timeout, DefaultTimeout)
			}
		})
	}
}

func TestParseAPI(t *testing.T) {
	tests := []struct {
		in   string
		want API
		ok   bool
	}{
		{"tagged", Tagged, true},
		{"legacy", Legacy, true},
		{"", 0, false},
		{"Tagged", 0, false},
		{"source", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseAPI(tt.in)
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("ParseAPI(%q) = %v, %v; want %v, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
		if tt.ok && got.String() != tt.in {
			t.Errorf("%q: String() = %q", tt.in, got.String())
		}
	}
	if s := API(7).String(); s != "API(7)" {
		t.Errorf("API(7).String() = %q", s)
	}
}

func TestParseQuota(t *testing.T) {
	tests := []struct {
		in   string
		want Quota
	}{
		{"", Quota{}},
		{"limit=100,remaining=42,reset=1700000000", Quota{true, 100, 42, 1700000000}},
		{" Limit = 5 , REMAINING=0 ", Quota{Present: true, Limit: 5}},
		{"limit=100,reset=3", Quota{Limit: 100, Reset: 3}},
		{"remaining=x,limit=,=,,garbage", Quota{}},
		{"remaining=-1", Quota{Present: true, Remaining: -1}},
	}
	for _, tt := range tests {
		if got := parseQuota(tt.in); got != tt.want {
			t.Errorf("parseQuota(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestTypeConflicts(t *testing.T) {
	tests := []struct {
		in   []string
		want []string
	}{
		{nil, nil},
		{[]string{"type: 'a.b' is a counter, but was submitted as different type"}, []string{"a.b"}},
		{[]string{"type: 'g' is a gauge, but was submitted as different type", "name: is invalid",
			"type: 'c' is a counter, but was submitted as different type"}, []string{"g", "c"}},
		{[]string{"type: '' is a counter, but was submitted as different type"}, nil},
		{[]string{"type: 'x' is a counter"}, nil},
		{[]string{"submitted as 'unterminated"}, nil},
	}
	for _, tt := range tests {
		if got := typeConflicts(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("typeConflicts(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestErrorString(t *testing.T) {
	tests := []struct {
		err  *Error
		want string
	}{
		{&Error{StatusCode: 503, Message: "system: down", path: "/v1/metrics"}, "librato: POST /v1/metrics: HTTP 503: system: down"},
		{&Error{Message: "connection refused", path: "/v1/measurements"}, "librato: POST /v1/measurements: connection refused"},
		{&Error{Message: "bare"}, "librato: bare"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	inner := errors.New("inner")
	if err := error(&Error{Err: inner}); !errors.Is(err, inner) {
		t.Error("errors.Is does not reach Err")
	}
}

// BenchmarkSend measures one Send of 300 measurements to a local server,
// request and response included.
func BenchmarkSend(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	defer srv.Close()
	for _, gz := range []bool{false, true} {
		b.Run(fmt.Sprintf("gzip=%v", gz), func(b *testing.B) {
			c, err := New(Config{API: Tagged, URL: srv.URL, Token: testToken, Gzip: gz})
			if err != nil {
				b.Fatal(err)
			}
			batch := benchBatch(300)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Send(context.Background(), batch); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestPartialFailureCount(t *testing.T) {
	tests := map[string]struct {
		body string
		want int
	}{
		"indexed":        {`{"errors":{"params":{"measurements":{"1":{"value":["is not a number"]},"3":{"name":["is invalid"],"value":["bad"]}}}}}`, 2},
		"out of range":   {`{"errors":{"params":{"measurements":{"7":{"value":["bad"]}}}}}`, 0},
		"not indexed":    {`{"errors":{"request":["something went wrong"]}}`, 0},
		"flat list":      {`{"errors":{"params":{"measurements":[{"value":["bad"]}]}}}`, 0},
		"legacy gauges":  {`{"errors":{"params":{"gauges":{"0":{"value":["bad"]}},"counters":{"0":{"value":["bad"]}}}}}`, 2},
		"no errors":      {`{}`, 0},
		"not json":       {`ok`, 0},
		"index not int":  {`{"errors":{"params":{"measurements":{"x":{"value":["bad"]}}}}}`, 0},
		"negative index": {`{"errors":{"params":{"measurements":{"-1":{"value":["bad"]}}}}}`, 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusAccepted)
				io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			c, err := New(Config{API: Tagged, URL: srv.URL, Token: "t"})
			if err != nil {
				t.Fatal(err)
			}
			ms := make([]Measurement, 5)
			for i := range ms {
				ms[i] = Measurement{Name: "m", Value: float64(i)}
			}
			res, err := c.Send(context.Background(), &Batch{Measurements: ms})
			if err != nil {
				t.Fatal(err)
			}
			if res.Failed != tc.want || res.Sent != 5 {
				t.Errorf("Failed = %d, Sent = %d; want %d of 5", res.Failed, res.Sent, tc.want)
			}
		})
	}
}
