package otlp

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

const (
	testToken  = "tok-3f9a-SECRET"
	testHeader = "hdr-77c1-SECRET"
)

// partialSuccess encodes an ExportMetricsServiceResponse by hand.
func partialSuccess(rejected int64, msg string) []byte {
	var ps []byte
	ps = protowire.AppendTag(ps, 1, protowire.VarintType)
	ps = protowire.AppendVarint(ps, uint64(rejected))
	ps = protowire.AppendTag(ps, 2, protowire.BytesType)
	ps = protowire.AppendString(ps, msg)
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	return protowire.AppendBytes(b, ps)
}

// rpcStatus encodes a google.rpc.Status by hand.
func rpcStatus(code int, msg string) []byte {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(code))
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	return protowire.AppendString(b, msg)
}

// echoHeaders renders every request header, as a careless server might
// put them in an error message.
func echoHeaders(h http.Header) string {
	var lines []string
	for k, v := range h {
		lines = append(lines, k+": "+strings.Join(v, ","))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func newTestClient(t *testing.T, endpoint string, mod func(*Config)) *Client {
	t.Helper()
	cfg := Config{
		Endpoint:  endpoint,
		Token:     testToken,
		Headers:   map[string]string{"X-Api-Key": testHeader},
		UserAgent: "libratod-test/1",
		Timeout:   5 * time.Second,
		Now:       func() time.Time { return time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC) },
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSendRequest(t *testing.T) {
	b := testBatch()
	b.Points = append(b.Points, Point{Name: "g", Kind: KindGauge, Time: t1, Value: 3})
	var e Encoder
	body, _ := e.Append(nil, b)
	for _, gz := range []bool{true, false} {
		t.Run(fmt.Sprintf("gzip=%t", gz), func(t *testing.T) {
			var got atomic.Pointer[metricspb.MetricsData]
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				var problems []string
				want := map[string]string{
					"Content-Type":  "application/x-protobuf",
					"Authorization": "Bearer " + testToken,
					"X-Api-Key":     testHeader,
					"User-Agent":    "libratod-test/1",
				}
				if gz {
					want["Content-Encoding"] = "gzip"
				}
				for k, v := range want {
					if r.Header.Get(k) != v {
						problems = append(problems, fmt.Sprintf("%s: %q", k, r.Header.Get(k)))
					}
				}
				if r.Method != http.MethodPost || r.URL.Path != "/prefix/v1/metrics" {
					problems = append(problems, r.Method+" "+r.URL.Path)
				}
				var rd io.Reader = r.Body
				if r.Header.Get("Content-Encoding") == "gzip" {
					zr, err := gzip.NewReader(r.Body)
					if err != nil {
						problems = append(problems, err.Error())
					} else {
						rd = zr
					}
				}
				raw, _ := io.ReadAll(rd)
				var md metricspb.MetricsData
				if err := proto.Unmarshal(raw, &md); err != nil {
					problems = append(problems, err.Error())
				}
				got.Store(&md)
				if len(problems) > 0 {
					w.WriteHeader(http.StatusTeapot)
					_, _ = io.WriteString(w, strings.Join(problems, "; "))
					return
				}
				w.Header().Set("Content-Type", "application/x-protobuf")
				_, _ = w.Write(partialSuccess(0, ""))
			}))
			defer srv.Close()
			c := newTestClient(t, srv.URL+"/prefix/", func(c *Config) { c.DisableGzip = !gz })
			res, err := c.Send(context.Background(), body)
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != 200 || res.Rejected != 0 || res.Message != "" || res.Undecodable {
				t.Errorf("result %+v", res)
			}
			if d := diff(decodeProto(t, body), got.Load()); d != "" {
				t.Errorf("server received another request:\n%s", d)
			}
		})
	}
}

func TestSendStatus(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	type answer struct {
		code   int
		ctype  string
		header map[string]string
		body   []byte
	}
	tests := []struct {
		name    string
		answer  answer
		wantRes Result
		wantErr *Error
	}{
		{"200 empty", answer{code: 200}, Result{StatusCode: 200}, nil},
		{"202 empty", answer{code: 202}, Result{StatusCode: 202}, nil},
		{"200 partial success", answer{200, "application/x-protobuf", nil, partialSuccess(3, "bad\npoints")},
			Result{StatusCode: 200, Rejected: 3, Message: "bad points"}, nil},
		{"200 negative rejected", answer{200, "application/x-protobuf", nil, partialSuccess(-4, "")},
			Result{StatusCode: 200}, nil},
		{"200 JSON string count", answer{200, "application/json; charset=utf-8", nil,
			[]byte(`{"partialSuccess":{"rejectedDataPoints":"5","errorMessage":"five"}}`)},
			Result{StatusCode: 200, Rejected: 5, Message: "five"}, nil},
		{"200 JSON number count", answer{200, "application/json", nil,
			[]byte(`{"partialSuccess":{"rejectedDataPoints":2}}`)}, Result{StatusCode: 200, Rejected: 2}, nil},
		{"200 JSON empty object", answer{200, "application/json", nil, []byte(`{}`)}, Result{StatusCode: 200}, nil},
		{"200 garbage", answer{200, "application/x-protobuf", nil, []byte{0xff, 0xff}},
			Result{StatusCode: 200, Undecodable: true}, nil},
		{"400 status message", answer{400, "application/x-protobuf", nil, rpcStatus(3, "metric name\tinvalid")}, Result{},
			&Error{StatusCode: 400, Refused: true, Message: "metric name invalid"}},
		{"400 JSON status", answer{400, "application/json", nil, []byte(`{"code":3,"message":"nope"}`)}, Result{},
			&Error{StatusCode: 400, Refused: true, Message: "nope"}},
		{"401", answer{code: 401}, Result{}, &Error{StatusCode: 401, Credentials: true, Message: "Unauthorized"}},
		{"403 text", answer{403, "text/plain", nil, []byte("bad key")}, Result{},
			&Error{StatusCode: 403, Credentials: true, Message: "bad key"}},
		{"404", answer{code: 404}, Result{}, &Error{StatusCode: 404, Message: "Not Found"}},
		{"413", answer{code: 413}, Result{}, &Error{StatusCode: 413, Message: "Request Entity Too Large"}},
		{"429 seconds", answer{429, "", map[string]string{"Retry-After": "30"}, nil}, Result{},
			&Error{StatusCode: 429, Retryable: true, RetryAfter: 30 * time.Second, Message: "Too Many Requests"}},
		{"503 date", answer{503, "", map[string]string{"Retry-After": now.Add(90 * time.Second).Format(http.TimeFormat)}, nil}, Result{},
			&Error{StatusCode: 503, Retryable: true, RetryAfter: 90 * time.Second, Message: "Service Unavailable"}},
		{"502 past date", answer{502, "", map[string]string{"Retry-After": now.Add(-time.Hour).Format(http.TimeFormat)}, nil}, Result{},
			&Error{StatusCode: 502, Retryable: true, Message: "Bad Gateway"}},
		{"504 absurd", answer{504, "", map[string]string{"Retry-After": "99999999999999999999"}, nil}, Result{},
			&Error{StatusCode: 504, Retryable: true, Message: "Gateway Timeout"}},
		{"503 huge", answer{503, "", map[string]string{"Retry-After": "86400"}, nil}, Result{},
			&Error{StatusCode: 503, Retryable: true, RetryAfter: MaxRetryAfter, Message: "Service Unavailable"}},
		{"500", answer{code: 500}, Result{}, &Error{StatusCode: 500, Retryable: true, Message: "Internal Server Error"}},
		{"302", answer{302, "", map[string]string{"Location": "http://127.0.0.1:1/"}, nil}, Result{}, &Error{StatusCode: 302, Message: "Found"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				for k, v := range tt.answer.header {
					w.Header().Set(k, v)
				}
				if tt.answer.ctype != "" {
					w.Header().Set("Content-Type", tt.answer.ctype)
				}
				w.WriteHeader(tt.answer.code)
				_, _ = w.Write(tt.answer.body)
			}))
			defer srv.Close()
			c := newTestClient(t, srv.URL, func(c *Config) { c.Now = func() time.Time { return now } })
			res, err := c.Send(context.Background(), []byte{})
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("error %v", err)
				}
				if tt.wantRes.Undecodable {
					if !res.Undecodable || res.Message == "" {
						t.Errorf("result %+v, want undecodable with a message", res)
					}
					res.Message = ""
				}
				if res != tt.wantRes {
					t.Errorf("result %+v, want %+v", res, tt.wantRes)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T), want *Error; result %+v", err, err, res)
			}
			if *e != *tt.wantErr {
				t.Errorf("error %+v, want %+v", *e, *tt.wantErr)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("HTTP %d", tt.wantErr.StatusCode)) {
				t.Errorf("error text %q", err)
			}
		})
	}
}

// TestSendRedactsSecrets answers with every request header echoed, in
// several forms, and checks that neither the token nor a header value
// reaches a result or an error.
func TestSendRedactsSecrets(t *testing.T) {
	// Prefixes that make bound cut 10 bytes into the secret after them.
	authPrefix := strings.Repeat("p", maxMessage-3-len("Bearer ")-10)
	hdrPrefix := strings.Repeat("p", maxMessage-3-10)
	forms := map[string]func(w http.ResponseWriter, h http.Header){
		"text 500": func(w http.ResponseWriter, h http.Header) {
			w.WriteHeader(500)
			_, _ = io.WriteString(w, echoHeaders(h))
		},
		"status 400": func(w http.ResponseWriter, h http.Header) {
			w.WriteHeader(400)
			_, _ = w.Write(rpcStatus(3, echoHeaders(h)))
		},
		"JSON 401": func(w http.ResponseWriter, h http.Header) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(401)
			_, _ = fmt.Fprintf(w, `{"message":%q}`, echoHeaders(h))
		},
		"cut at the bound": func(w http.ResponseWriter, h http.Header) {
			w.WriteHeader(400)
			_, _ = io.WriteString(w, authPrefix+h.Get("Authorization"))
		},
		"partial success": func(w http.ResponseWriter, h http.Header) {
			_, _ = w.Write(partialSuccess(1, echoHeaders(h)))
		},
		"partial success cut": func(w http.ResponseWriter, h http.Header) {
			_, _ = w.Write(partialSuccess(1, hdrPrefix+h.Get("X-Api-Key")))
		},
	}
	for name, answer := range forms {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				answer(w, r.Header)
			}))
			defer srv.Close()
			c := newTestClient(t, srv.URL, nil)
			res, err := c.Send(context.Background(), nil)
			text := fmt.Sprintf("%v %+v %#v", err, res, err)
			if !strings.Contains(text, "[redacted]") && !strings.Contains(text, "...") {
				t.Errorf("the echo did not come through: %s", text)
			}
			for _, secret := range []string{testToken, testHeader, testToken[:8], testHeader[:8]} {
				if strings.Contains(text, secret) {
					t.Errorf("%q leaked: %s", secret, text)
				}
			}
		})
	}
	// Nor does the configuration print them.
	cfg := Config{Endpoint: "https://x", Token: testToken, Headers: map[string]string{"X-Api-Key": testHeader}}
	for _, s := range []string{fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg)} {
		if strings.Contains(s, testToken) || strings.Contains(s, testHeader) {
			t.Errorf("Config prints a secret: %s", s)
		}
	}
}

func TestSendTransportErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // nothing listens there now
	c := newTestClient(t, "http://"+addr, nil)
	_, err = c.Send(context.Background(), []byte{1})
	var e *Error
	if !errors.As(err, &e) || !e.Retryable || e.StatusCode != 0 {
		t.Errorf("refused connection: %v, want a retryable *Error", err)
	}

	// A canceled context is retryable too, and says so.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = c.Send(ctx, []byte{1})
	if !errors.As(err, &e) || !e.Retryable || !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v", err)
	}
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		cfg     Config
		wantURL string // "" for an error
	}{
		{Config{Endpoint: "https://otel.example.com"}, "https://otel.example.com/v1/metrics"},
		{Config{Endpoint: "https://otel.example.com/"}, "https://otel.example.com/v1/metrics"},
		{Config{Endpoint: "http://127.0.0.1:4318/otlp//"}, "http://127.0.0.1:4318/otlp/v1/metrics"},
		{Config{Endpoint: "https://[::1]:4318/a%2Fb"}, "https://[::1]:4318/a%2Fb/v1/metrics"},
		{Config{Endpoint: ""}, ""},
		{Config{Endpoint: "ftp://x"}, ""},
		{Config{Endpoint: "otel.example.com:4318"}, ""},
		{Config{Endpoint: "https://"}, ""},
		{Config{Endpoint: "https://u:p@x"}, ""},
		{Config{Endpoint: "https://x?a=b"}, ""},
		{Config{Endpoint: "https://x?"}, ""},
		{Config{Endpoint: "https://x#f"}, ""},
		{Config{Endpoint: "https://x", Timeout: -1}, ""},
		{Config{Endpoint: "https://x", Token: "a\nb"}, ""},
		{Config{Endpoint: "https://x", Token: "a b"}, ""},
		{Config{Endpoint: "https://x", UserAgent: "a\rb"}, ""},
		{Config{Endpoint: "https://x", Headers: map[string]string{"Bad Name": "v"}}, ""},
		{Config{Endpoint: "https://x", Headers: map[string]string{"X-K": "v\n"}}, ""},
		{Config{Endpoint: "https://x", Headers: map[string]string{"content-type": "v"}}, ""},
		{Config{Endpoint: "https://x", Token: "t", Headers: map[string]string{"Authorization": "v"}}, ""},
		{Config{Endpoint: "https://x", Headers: map[string]string{"Authorization": "Api-Key v"}}, "https://x/v1/metrics"},
	}
	for _, tt := range tests {
		c, err := New(tt.cfg)
		switch {
		case tt.wantURL == "" && err == nil:
			t.Errorf("%v: accepted", tt.cfg)
		case tt.wantURL != "" && err != nil:
			t.Errorf("%v: %v", tt.cfg, err)
		case err == nil && c.URL() != tt.wantURL:
			t.Errorf("%v: URL %s, want %s", tt.cfg, c.URL(), tt.wantURL)
		}
		if err != nil && (strings.Contains(err.Error(), "a\nb") || strings.Contains(err.Error(), "v\n")) {
			t.Errorf("error shows a secret: %v", err)
		}
	}
}

func TestCheck(t *testing.T) {
	var gotBody atomic.Int64
	status := atomic.Int64{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		gotBody.Store(int64(len(raw)))
		if r.Header.Get("Authorization") != "Bearer "+testToken {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()

	status.Store(200)
	res, err := newTestClient(t, srv.URL, nil).Check(context.Background())
	if err != nil || !res.Reached || !res.Authorized || res.StatusCode != 200 || res.TLS || gotBody.Load() != 0 {
		t.Errorf("accepted: %+v, %v, body %d bytes", res, err, gotBody.Load())
	}
	res, err = newTestClient(t, srv.URL, func(c *Config) { c.Token = "wrong" }).Check(context.Background())
	if err == nil || !res.Reached || res.Authorized || res.StatusCode != 401 || strings.Contains(err.Error(), "wrong") {
		t.Errorf("rejected: %+v, %v", res, err)
	}
	status.Store(404)
	res, err = newTestClient(t, srv.URL, nil).Check(context.Background())
	if err == nil || !res.Reached || res.Authorized || res.StatusCode != 404 {
		t.Errorf("404: %+v, %v", res, err)
	}

	// TLS with a certificate the client does not trust.
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0)
	defer tlsSrv.Close()
	res, err = newTestClient(t, tlsSrv.URL, nil).Check(context.Background())
	if err == nil || res.Reached || res.FailedStep != StepTLS || !res.TLS {
		t.Errorf("untrusted certificate: %+v, %v", res, err)
	}
	// Trusted: reached.
	res, err = newTestClient(t, tlsSrv.URL, func(c *Config) { c.HTTPClient = tlsSrv.Client() }).Check(context.Background())
	if err != nil || !res.Reached || !res.Authorized {
		t.Errorf("trusted certificate: %+v, %v", res, err)
	}

	// Nothing listening.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	res, err = newTestClient(t, "http://"+addr, nil).Check(context.Background())
	if err == nil || res.Reached || res.FailedStep != StepTCP {
		t.Errorf("closed port: %+v, %v", res, err)
	}
}
