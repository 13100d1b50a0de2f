package librato

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/libratod/libratod/internal/transport"
)

// DefaultTimeout is the per-request timeout used when Config.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// DefaultUserAgent is the User-Agent sent when Config.UserAgent is empty.
const DefaultUserAgent = "libratod"

const (
	// bufSize is the initial size of a pooled encoding buffer: about 300
	// measurements.
	bufSize = 32 << 10
	// maxPooledBuf is the largest buffer kept in the pool.
	maxPooledBuf = 1 << 20
)

// Config configures a Client.
type Config struct {
	// API selects the endpoint: Tagged or Legacy. Required.
	API API
	// URL is the base URL of the service, such as
	// https://metrics-api.librato.com or https://api.appoptics.com, without
	// /v1. It must be https unless the host is a loopback name (127.0.0.1,
	// localhost, ::1).
	URL string
	// Email is the account email, the Basic auth user. Empty: the token is the
	// user and the password is empty (AppOptics style).
	Email string
	// Token is the API token. Required unless DryRun is set. It is never
	// logged, printed or put in an error.
	Token string
	// UserAgent is sent as the User-Agent header, e.g. "libratod/1.2.3 (go1.26;
	// linux/amd64)". Empty: DefaultUserAgent.
	UserAgent string
	// Timeout bounds each request, from sending to reading the response body;
	// the request is aborted when it expires. Zero: DefaultTimeout. Negative is
	// invalid.
	Timeout time.Duration
	// HTTPClient sends the requests. Nil: a client of its own with TLS
	// verification, connection reuse, proxy settings from the environment, and
	// no redirects followed.
	HTTPClient *http.Client
	// DryRun, when not nil, receives each request instead of the service: a
	// line "POST <url>", the JSON body (uncompressed) on one line, and a blank
	// line. Nothing is sent and Send succeeds.
	DryRun io.Writer
	// Gzip compresses request bodies (Content-Encoding: gzip). Off by default:
	// Librato does not document gzip request bodies; AppOptics' own client
	// sends them.
	Gzip bool
}

// String describes the configuration with the token redacted, so that logging a
// Config cannot leak it.
func (c Config) String() string {
	token := ""
	if c.Token != "" {
		token = "[redacted]"
	}
	return fmt.Sprintf("{API:%v URL:%s Email:%s Token:%s UserAgent:%q Timeout:%v DryRun:%t Gzip:%t}",
		c.API, c.URL, c.Email, token, c.UserAgent, c.Timeout, c.DryRun != nil, c.Gzip)
}

// GoString is String, for the %#v verb.
func (c Config) GoString() string { return c.String() }

// Client sends batches to the Librato API. It is safe for concurrent use.
type Client struct {
	api       API
	base      string // base URL, without a trailing slash
	endpoint  string // full URL of the measurements endpoint
	path      string // measurements endpoint path, for error messages
	user      string
	password  string
	userAgent string
	timeout   time.Duration
	http      *http.Client
	gzip      bool

	dryRunMu sync.Mutex // serializes writes to dryRun
	dryRun   io.Writer

	bufs    sync.Pool // *[]byte encoding buffers
	gzipper transport.Gzipper
}

// New validates cfg and returns a Client.
func New(cfg Config) (*Client, error) {
	if cfg.API != Tagged && cfg.API != Legacy {
		return nil, fmt.Errorf("librato: API not set or unknown (%v)", cfg.API)
	}
	base, err := parseBaseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	if cfg.Token == "" && cfg.DryRun == nil {
		return nil, errors.New("librato: token is empty")
	}
	if strings.ContainsFunc(cfg.UserAgent, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return nil, fmt.Errorf("librato: user agent %q holds control characters", cfg.UserAgent)
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("librato: negative timeout %v", cfg.Timeout)
	}
	c := &Client{
		api:       cfg.API,
		base:      base,
		endpoint:  base + cfg.API.path(),
		path:      cfg.API.path(),
		user:      cfg.Email,
		password:  cfg.Token,
		userAgent: cfg.UserAgent,
		timeout:   cfg.Timeout,
		http:      cfg.HTTPClient,
		gzip:      cfg.Gzip,
		dryRun:    cfg.DryRun,
	}
	if c.user == "" {
		c.user, c.password = cfg.Token, ""
	}
	if c.userAgent == "" {
		c.userAgent = DefaultUserAgent
	}
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	}
	if c.http == nil {
		c.http = transport.NewClient()
	}
	return c, nil
}

// parseBaseURL checks the base URL (see CheckURL) and returns it without a
// trailing slash.
func parseBaseURL(raw string) (string, error) {
	s, err := baseURL(raw)
	if err != nil {
		return "", fmt.Errorf("librato: URL: %w", err)
	}
	return s, nil
}

// Result describes an accepted request (or, in dry-run mode, a request written
// out).
type Result struct {
	// StatusCode is the HTTP status of the response; 0 when nothing was sent
	// (dry run, or every measurement skipped).
	StatusCode int
	// Sent is the number of measurements encoded and sent.
	Sent int
	// Skipped is the number of measurements not sent because they were
	// unsendable: a NaN, infinite or too large (|x| > 1e126) number, an empty
	// name, or more than MaxTags tags.
	Skipped int
	// Errors holds the "errors" a 2xx body still reported (a partial failure),
	// flattened as "param: message".
	Errors []string
	// Failed is the number of distinct measurements Errors names by their place
	// in the request ("measurements.3.value: ..."; legacy "gauges.N" and
	// "counters.N"): measurements the service reported as not taken although it
	// answered 2xx. 0 when Errors names none, in which case how many were not
	// taken, if any, is unknown.
	Failed int
	// RateLimit is the rate-limit state reported by the response headers.
	RateLimit RateLimit
}

// RateLimit is the rate-limit state of the account, from the
// X-Librato-RateLimit-Agg and X-Librato-RateLimit-Std response headers.
type RateLimit struct {
	// Agg is the limit on aggregated measurements (X-Librato-RateLimit-Agg).
	Agg Quota
	// Std is the limit on standard requests (X-Librato-RateLimit-Std).
	Std Quota
}

// Quota is one rate-limit header: "limit=L,remaining=R,reset=S".
type Quota struct {
	// Present says whether the header was present with a remaining= value.
	Present bool
	// Limit is the size of the quota; 0 when not given.
	Limit int64
	// Remaining is what is left of the quota.
	Remaining int64
	// Reset is the reset value as the service sent it: seconds from now,
	// or a Unix time from a service that sends one; 0 when not given.
	Reset int64
}

// Send encodes b and POSTs it. A nil or empty batch, or one whose measurements
// are all skipped, sends nothing and succeeds. Send does not retry: the caller
// owns retries and backoff. Every error it returns is an *Error, whose
// Retryable field says whether b may be sent again later; with an error, only
// Result.Skipped is set (those measurements can never be sent).
func (c *Client) Send(ctx context.Context, b *Batch) (Result, error) {
	if b == nil || len(b.Measurements) == 0 {
		return Result{}, nil
	}
	bufp := c.getBuf()
	defer c.putBuf(bufp)
	body, sent, skipped := encode((*bufp)[:0], c.api, b)
	*bufp = body
	res := Result{Sent: sent, Skipped: skipped}
	if sent == 0 {
		return res, nil
	}
	code, rl, respBody, err := c.deliver(ctx, c.endpoint, c.path, body)
	if err != nil {
		return Result{Skipped: skipped}, err
	}
	if code == 0 { // dry run
		return res, nil
	}
	res.StatusCode = code
	res.RateLimit = rl
	res.Errors = bodyErrors(respBody, false)
	res.Failed = failedMeasurements(res.Errors, sent)
	return res, nil
}

// deliver sends one JSON body to endpoint, named by path in errors: to the
// DryRun writer (then code is 0), or by POST, compressed when Gzip is set. body
// may be a pooled buffer: it is not kept. It returns the status, rate limits
// and at most transport.MaxBody bytes of the body of a 2xx answer; anything else (a
// transport failure, a non-2xx answer, a failing DryRun writer) is an *Error.
func (c *Client) deliver(ctx context.Context, endpoint, path string, body []byte) (
	code int, rl RateLimit, respBody []byte, err error) {
	if c.dryRun != nil {
		if err := c.writeDryRun(endpoint, body); err != nil {
			return 0, RateLimit{}, nil, &Error{Message: "dry run: " + err.Error(), Err: err, path: path}
		}
		return 0, RateLimit{}, nil, nil
	}
	// The request body gets memory of its own, not the pooled buffer: the HTTP
	// transport may still read a request body after Do returns.
	encoding := ""
	if c.gzip {
		zbody, err := c.gzipper.Compress(body, len(body)/4+64)
		if err != nil {
			return 0, RateLimit{}, nil, &Error{Message: "gzip: " + err.Error(), Err: err, path: path}
		}
		body, encoding = zbody, "gzip"
	} else {
		body = bytes.Clone(body)
	}
	code, r, respBody, err := c.post(ctx, endpoint, path, body, encoding)
	if err != nil {
		return 0, RateLimit{}, nil, err
	}
	if code < 200 || code > 299 {
		return 0, RateLimit{}, nil, newStatusError(path, code, r, respBody)
	}
	return code, r.limits, respBody, nil
}

// getBuf returns a pooled buffer.
func (c *Client) getBuf() *[]byte {
	if p, ok := c.bufs.Get().(*[]byte); ok {
		return p
	}
	b := make([]byte, 0, bufSize)
	return &b
}

// putBuf returns a buffer to the pool, unless an unusually large batch grew it
// beyond maxPooledBuf.
func (c *Client) putBuf(p *[]byte) {
	if cap(*p) <= maxPooledBuf {
		c.bufs.Put(p)
	}
}

// writeDryRun writes one request block, for endpoint, to the DryRun writer.
func (c *Client) writeDryRun(endpoint string, body []byte) error {
	block := make([]byte, 0, len(endpoint)+len(body)+8)
	block = append(block, "POST "...)
	block = append(block, endpoint...)
	block = append(block, '\n')
	block = append(block, body...)
	block = append(block, '\n', '\n')
	c.dryRunMu.Lock()
	defer c.dryRunMu.Unlock()
	_, err := c.dryRun.Write(block)
	return err
}

// response is what post keeps of a response besides its status and body.
type response struct {
	limits     RateLimit
	retryAfter string // the Retry-After header
}

// post sends body to endpoint and returns the status, headers of interest and
// at most transport.MaxBody bytes of the response body. A transport failure is returned
// as an *Error naming path.
func (c *Client) post(ctx context.Context, endpoint, path string, body []byte, encoding string) (int, response, []byte, error) {
	reqCtx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(reqCtx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return 0, response{}, nil, &Error{Message: "building request: " + err.Error(), Err: err, path: path}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	req.SetBasicAuth(c.user, c.password)

	resp, err := c.http.Do(req)
	if err != nil {
		return 0, response{}, nil, c.transportError(ctx, reqCtx, path, err)
	}
	r := response{
		limits: RateLimit{
			Agg: parseQuota(resp.Header.Get("X-Librato-RateLimit-Agg")),
			Std: parseQuota(resp.Header.Get("X-Librato-RateLimit-Std")),
		},
		retryAfter: resp.Header.Get("Retry-After"),
	}
	return resp.StatusCode, r, transport.ReadBody(resp.Body), nil
}

// transportError classifies a failure to get a response: it is always
// retryable, since the service did not refuse the batch. ctx is the caller's
// context, reqCtx the request's (ctx with the timeout); path names the
// endpoint.
func (c *Client) transportError(ctx, reqCtx context.Context, path string, err error) *Error {
	// Without the URL, which Error() names already.
	msg := transport.FailureMessage(ctx, reqCtx, c.timeout, err)
	if ctx.Err() != nil {
		msg = "canceled by the caller: " + msg
	}
	return &Error{Message: transport.Bound(msg), Retryable: true, Err: err, path: path}
}
