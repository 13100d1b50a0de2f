// Package transport is the HTTP transport both output clients (librato and
// otlp) use: the default HTTP client, bounded reading of answers, the
// step-detecting trace of an online check, and the cleaning and bounding of
// untrusted text put in errors.
package transport

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

const (
	// MaxBody is the most bytes of a response body ReadBody returns.
	MaxBody = 64 << 10
	// MaxDrain is the most bytes of a response body ReadBody discards after
	// MaxBody, so that the connection can be reused; a longer body closes
	// the connection instead.
	MaxDrain = 64 << 10
	// MaxMessage is the most bytes Bound leaves of a message.
	MaxMessage = 1 << 10
)

// NewClient returns the default HTTP client of an output: verified TLS 1.2+,
// bounded dial and handshake times, kept-alive connections, proxies from the
// environment. It does not follow redirects: a redirected POST would lose
// its body or its credentials, so a 3xx is reported as an error instead.
func NewClient() *http.Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           dialer.DialContext,
			TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout:   10 * time.Second,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          32,
			MaxIdleConnsPerHost:   16,
			IdleConnTimeout:       90 * time.Second,
			ExpectContinueTimeout: time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// ReadBody returns at most MaxBody bytes of body, then discards at most
// MaxDrain more and closes it. A body cut short (timeout, reset) is
// returned as far as it was read: the status of the answer decides.
func ReadBody(body io.ReadCloser) []byte {
	b, _ := io.ReadAll(io.LimitReader(body, MaxBody))
	_, _ = io.CopyN(io.Discard, body, MaxDrain)
	_ = body.Close()
	return b
}

// FailureMessage describes err, the failure of a request whose context
// reqCtx is the caller's ctx bounded by timeout: err's text without the URL
// (which the caller names), prefixed with "timed out after <timeout>: " when
// the timeout expired while ctx was still live.
func FailureMessage(ctx, reqCtx context.Context, timeout time.Duration, err error) string {
	msg := err.Error()
	var uerr *url.Error
	if errors.As(err, &uerr) {
		msg = uerr.Err.Error()
	}
	if ctx.Err() == nil && reqCtx.Err() != nil {
		msg = fmt.Sprintf("timed out after %v: %s", timeout, msg)
	}
	return msg
}

// CheckStep names a step of reaching a server.
type CheckStep string

// The steps of a request, in order. A proxy (HTTPS_PROXY) is what the DNS
// and TCP steps reach when one is set.
const (
	// StepDNS is resolving the host name.
	StepDNS CheckStep = "DNS"
	// StepTCP is opening the connection.
	StepTCP CheckStep = "TCP"
	// StepTLS is the handshake, certificate verification included.
	StepTLS CheckStep = "TLS"
	// StepHTTP is sending the request and reading the answer's headers.
	StepHTTP CheckStep = "HTTP"
)

// StepTrace records which step of a request failed. Its zero value is
// ready; it must not be copied after first use. It is safe for the
// transport's goroutines, which run its hooks.
type StepTrace struct {
	mu     sync.Mutex
	failed CheckStep
}

// Context returns ctx carrying the trace hooks that record a failed DNS,
// TCP or TLS step.
func (t *StepTrace) Context(ctx context.Context) context.Context {
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		DNSDone:          func(i httptrace.DNSDoneInfo) { t.fail(StepDNS, i.Err) },
		ConnectDone:      func(_, _ string, err error) { t.fail(StepTCP, err) },
		TLSHandshakeDone: func(_ tls.ConnectionState, err error) { t.fail(StepTLS, err) },
	})
}

// fail records step when err is not nil.
func (t *StepTrace) fail(step CheckStep, err error) {
	if err != nil {
		t.mu.Lock()
		t.failed = step
		t.mu.Unlock()
	}
}

// Failed returns the step that failed last, or StepHTTP when no DNS, TCP
// or TLS step did: for a request that got no answer, the step it failed at.
func (t *StepTrace) Failed() CheckStep {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.failed == "" {
		return StepHTTP
	}
	return t.failed
}

// CleanMessage makes untrusted text fit for a log line: invalid UTF-8 and
// control characters become spaces, runs of spaces collapse, and the ends
// are trimmed.
func CleanMessage(s string) string {
	s = strings.ToValidUTF8(s, " ")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.IsSpace(r) {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

// Bound cuts s to MaxMessage bytes on a character boundary, marking the
// cut.
func Bound(s string) string {
	if len(s) <= MaxMessage {
		return s
	}
	const mark = "..."
	n := MaxMessage - len(mark)
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + mark
}

// ParseRetryAfter parses a Retry-After header, delay-seconds or an HTTP
// date, relative to now. It returns 0 for an absent, invalid or past value,
// and at most limit.
func ParseRetryAfter(v string, now time.Time, limit time.Duration) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.ParseUint(v, 10, 64); err == nil {
		if n >= uint64(limit/time.Second) {
			return limit
		}
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), limit)
}

// Gzipper gzip-compresses request bodies, reusing its writers. Its zero
// value is ready; it is safe for concurrent use and must not be copied.
type Gzipper struct {
	writers sync.Pool // *gzip.Writer
}

// Compress returns the gzip compression of body in a new slice; sizeHint is
// the expected compressed size.
func (g *Gzipper) Compress(body []byte, sizeHint int) ([]byte, error) {
	var w bytes.Buffer
	w.Grow(sizeHint)
	zw, ok := g.writers.Get().(*gzip.Writer)
	if ok {
		zw.Reset(&w)
	} else {
		zw = gzip.NewWriter(&w)
	}
	defer g.writers.Put(zw)
	if _, err := zw.Write(body); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return w.Bytes(), nil
}
