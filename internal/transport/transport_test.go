package transport

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 21, 13, 0, 0, 0, time.UTC)
	const limit = 24 * time.Hour
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"7", 7 * time.Second},
		{" 120 ", 2 * time.Minute},
		{"-5", 0},
		{"1.5", 0},
		{"soon", 0},
		{"99999999999", limit},
		{"Sat, 21 Nov 2026 13:00:30 GMT", 30 * time.Second},
		{"Sat, 21 Nov 2026 12:59:00 GMT", 0},
		{"Sunday, 22-Nov-26 13:00:00 GMT", 24 * time.Hour},
		{"Mon, 21 Dec 2026 13:00:00 GMT", limit},
	}
	for _, tt := range tests {
		if got := ParseRetryAfter(tt.in, now, limit); got != tt.want {
			t.Errorf("ParseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
	// A smaller limit (otlp's hour) caps both forms.
	for _, in := range []string{"7200", "Sat, 21 Nov 2026 15:00:00 GMT"} {
		if got := ParseRetryAfter(in, now, time.Hour); got != time.Hour {
			t.Errorf("ParseRetryAfter(%q, 1h) = %v, want 1h", in, got)
		}
	}
}

func TestBound(t *testing.T) {
	tests := []struct {
		in      string
		wantLen int
	}{
		{"short", 5},
		{strings.Repeat("a", MaxMessage), MaxMessage},
		{strings.Repeat("a", MaxMessage+1), MaxMessage},
		{strings.Repeat("é", MaxMessage), MaxMessage - 1}, // cut on a rune boundary
	}
	for _, tt := range tests {
		got := Bound(tt.in)
		if len(got) != tt.wantLen || !strings.HasPrefix(tt.in, strings.TrimSuffix(got, "...")) {
			t.Errorf("Bound(%d bytes) = %d bytes %q..., want %d", len(tt.in), len(got), got[:min(10, len(got))], tt.wantLen)
		}
	}
}

func TestCleanMessage(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"plain", "plain"},
		{"  two\n\tlines\r\n ", "two lines"},
		{"bad \xff byte", "bad byte"},
		{"bell\x07and\x7fdel", "bell and del"},
		{"nbsp\u00a0sep\u2028", "nbsp sep"},
	}
	for _, tt := range tests {
		if got := CleanMessage(tt.in); got != tt.want {
			t.Errorf("CleanMessage(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNewClient(t *testing.T) {
	c := NewClient()
	tr, ok := c.Transport.(*http.Transport)
	if !ok {
		t.Fatalf("Transport is %T", c.Transport)
	}
	if tr.TLSClientConfig == nil || tr.TLSClientConfig.MinVersion != tls.VersionTLS12 ||
		tr.TLSClientConfig.InsecureSkipVerify {
		t.Errorf("TLS config %+v: want verified TLS 1.2+", tr.TLSClientConfig)
	}
	if tr.Proxy == nil || tr.DialContext == nil || tr.TLSHandshakeTimeout <= 0 {
		t.Error("no proxy from the environment, dialer or handshake timeout")
	}

	var hits int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	defer tr.CloseIdleConnections()
	resp, err := c.Post(srv.URL, "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	_ = ReadBody(resp.Body)
	if resp.StatusCode != http.StatusTemporaryRedirect || hits != 1 {
		t.Errorf("status %d after %d requests: want the 307 itself", resp.StatusCode, hits)
	}
}

// body is a response body that counts what is read and whether it was
// closed.
type body struct {
	r      io.Reader
	read   int
	closed bool
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.read += n
	return n, err
}

func (b *body) Close() error { b.closed = true; return nil }

func TestReadBody(t *testing.T) {
	tests := []struct {
		size, wantLen, wantRead int
	}{
		{0, 0, 0},
		{10, 10, 10},
		{MaxBody, MaxBody, MaxBody},
		{MaxBody + 5, MaxBody, MaxBody + 5},
		{MaxBody + MaxDrain + 100, MaxBody, MaxBody + MaxDrain},
	}
	for _, tt := range tests {
		b := &body{r: strings.NewReader(strings.Repeat("x", tt.size))}
		got := ReadBody(b)
		if len(got) != tt.wantLen || b.read != tt.wantRead || !b.closed {
			t.Errorf("size %d: got %d bytes, read %d, closed %t; want %d, %d, true",
				tt.size, len(got), b.read, b.closed, tt.wantLen, tt.wantRead)
		}
	}
}

func TestFailureMessage(t *testing.T) {
	live := context.Background()
	expired, cancel := context.WithTimeout(live, -time.Second)
	defer cancel()
	canceled, cancel2 := context.WithCancel(live)
	cancel2()
	tests := []struct {
		name        string
		ctx, reqCtx context.Context
		err         error
		want        string
	}{
		{"plain", live, live, errors.New("boom"), "boom"},
		{"url stripped", live, live, urlError(), "connection refused"},
		{"timed out", live, expired, urlError(), "timed out after 3s: connection refused"},
		{"caller canceled", canceled, canceled, urlError(), "connection refused"},
	}
	for _, tt := range tests {
		if got := FailureMessage(tt.ctx, tt.reqCtx, 3*time.Second, tt.err); got != tt.want {
			t.Errorf("%s: FailureMessage = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// urlError is the kind of error http.Client.Do returns: a *url.Error
// naming the URL around the cause.
func urlError() error {
	return &url.Error{Op: "Post", URL: "http://127.0.0.1:1/secret/path",
		Err: errors.New("connection refused")}
}

func TestStepTrace(t *testing.T) {
	var zero StepTrace
	if got := zero.Failed(); got != StepHTTP {
		t.Errorf("no failure: Failed() = %q, want HTTP", got)
	}

	// A closed port fails at TCP.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	var trace StepTrace
	req, err := http.NewRequestWithContext(trace.Context(context.Background()),
		http.MethodGet, "http://"+addr+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: &http.Transport{}}
	if resp, err := c.Do(req); err == nil {
		_ = ReadBody(resp.Body)
		t.Fatal("a closed port answered")
	}
	if got := trace.Failed(); got != StepTCP {
		t.Errorf("closed port: Failed() = %q, want TCP", got)
	}

	// A plain-http server met with https fails at TLS.
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	var trace2 StepTrace
	req, err = http.NewRequestWithContext(trace2.Context(context.Background()),
		http.MethodGet, "https://"+srv.Listener.Addr().String()+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := c.Do(req); err == nil {
		_ = ReadBody(resp.Body)
		t.Fatal("plain http answered a TLS handshake")
	}
	if got := trace2.Failed(); got != StepTLS {
		t.Errorf("no TLS: Failed() = %q, want TLS", got)
	}
}

func TestGzipperCompress(t *testing.T) {
	var g Gzipper
	for _, in := range []string{"", "x", strings.Repeat(`{"name":"a","value":1}`, 500)} {
		for range 2 { // the second round reuses the pooled writer
			z, err := g.Compress([]byte(in), 64)
			if err != nil {
				t.Fatal(err)
			}
			zr, err := gzip.NewReader(bytes.NewReader(z))
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(zr)
			if err != nil || string(got) != in {
				t.Errorf("round trip of %d bytes: %d bytes, %v", len(in), len(got), err)
			}
		}
	}
}
