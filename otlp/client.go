package otlp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/libratod/libratod/internal/transport"
)

// DefaultTimeout is the per-request timeout used when Config.Timeout is
// zero.
const DefaultTimeout = 10 * time.Second

// DefaultUserAgent is the User-Agent sent when Config.UserAgent is empty.
const DefaultUserAgent = "libratod"

// MetricsPath is the path of the OTLP/HTTP metrics endpoint, appended to
// Config.Endpoint.
const MetricsPath = "/v1/metrics"

// Config configures a Client.
type Config struct {
	// Endpoint is the base URL of the OTLP/HTTP receiver, such as
	// https://otel.collector.na-01.cloud.solarwinds.com or
	// http://127.0.0.1:4318; requests go to Endpoint + "/v1/metrics". It
	// must be http or https, without user, query or fragment; it may have a
	// path prefix, and a trailing slash is ignored.
	Endpoint string
	// Token, when set, is sent as "Authorization: Bearer <Token>". It is
	// never logged, printed or put in an error.
	Token string
	// Headers are extra request headers, e.g. an API key header. Their
	// values are treated as secrets, like Token. They may not set
	// Content-Type, Content-Encoding, Content-Length, Host or User-Agent,
	// nor Authorization when Token is set.
	Headers map[string]string
	// UserAgent is sent as the User-Agent header. Empty: DefaultUserAgent.
	UserAgent string
	// Timeout bounds each request, from sending to reading the response
	// body. Zero: DefaultTimeout. Negative is invalid.
	Timeout time.Duration
	// HTTPClient sends the requests. Nil: a client of its own with TLS
	// verification, connection reuse, proxy settings from the environment
	// and no redirects followed.
	HTTPClient *http.Client
	// DisableGzip sends request bodies uncompressed. By default they are
	// gzip-compressed (Content-Encoding: gzip), which every OTLP/HTTP
	// receiver must accept.
	DisableGzip bool
	// Now returns the current time, for Retry-After dates. Nil: time.Now.
	Now func() time.Time
}

// String describes the configuration with the token and header values
// redacted, so that logging a Config cannot leak them.
func (c Config) String() string {
	token := ""
	if c.Token != "" {
		token = "[redacted]"
	}
	names := make([]string, 0, len(c.Headers))
	for k := range c.Headers {
		names = append(names, k+":[redacted]")
	}
	sort.Strings(names)
	return fmt.Sprintf("{Endpoint:%s Token:%s Headers:[%s] UserAgent:%q Timeout:%v DisableGzip:%t}",
		c.Endpoint, token, strings.Join(names, " "), c.UserAgent, c.Timeout, c.DisableGzip)
}

// GoString is String, for the %#v verb.
func (c Config) GoString() string { return c.String() }

// Client sends encoded requests to an OTLP/HTTP receiver. It is safe for
// concurrent use.
type Client struct {
	url       string // full URL of the metrics endpoint
	header    http.Header
	secrets   []string // token and header values, for redacting errors
	userAgent string
	timeout   time.Duration
	http      *http.Client
	gzip      bool
	now       func() time.Time

	gzipper transport.Gzipper
}

// New validates cfg and returns a Client.
func New(cfg Config) (*Client, error) {
	u, err := endpointURL(cfg.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("otlp: endpoint: %w", err)
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("otlp: negative timeout %v", cfg.Timeout)
	}
	if !validHeaderValue(cfg.UserAgent) {
		return nil, fmt.Errorf("otlp: user agent %q is not a valid header value", cfg.UserAgent)
	}
	c := &Client{
		url:       u,
		header:    http.Header{},
		userAgent: cfg.UserAgent,
		timeout:   cfg.Timeout,
		http:      cfg.HTTPClient,
		gzip:      !cfg.DisableGzip,
		now:       cfg.Now,
	}
	if cfg.Token != "" {
		if !validHeaderValue(cfg.Token) || strings.ContainsAny(cfg.Token, " \t") {
			return nil, errors.New("otlp: token holds spaces or characters not allowed in a header")
		}
		c.header.Set("Authorization", "Bearer "+cfg.Token)
		c.secrets = append(c.secrets, cfg.Token)
	}
	for k, v := range cfg.Headers {
		if !validHeaderName(k) {
			return nil, fmt.Errorf("otlp: header name %q is not valid", k)
		}
		if !validHeaderValue(v) {
			// The value is a secret: not shown.
			return nil, fmt.Errorf("otlp: header %s: value holds characters not allowed in a header", k)
		}
		switch http.CanonicalHeaderKey(k) {
		case "Content-Type", "Content-Encoding", "Content-Length", "Host", "User-Agent":
			return nil, fmt.Errorf("otlp: header %s is set by the client", k)
		case "Authorization":
			if cfg.Token != "" {
				return nil, errors.New("otlp: header Authorization given with a token")
			}
		}
		c.header.Set(k, v)
		if v = strings.TrimSpace(v); v != "" {
			c.secrets = append(c.secrets, v)
		}
	}
	// Longest first: a secret inside another is redacted with it.
	sort.Slice(c.secrets, func(i, j int) bool { return len(c.secrets[i]) > len(c.secrets[j]) })
	if c.userAgent == "" {
		c.userAgent = DefaultUserAgent
	}
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	}
	if c.http == nil {
		c.http = transport.NewClient()
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c, nil
}

// URL returns the URL requests are sent to.
func (c *Client) URL() string { return c.url }

// endpointURL checks a base URL and returns the metrics endpoint URL.
func endpointURL(raw string) (string, error) {
	if raw == "" {
		return "", errors.New("empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("%q: scheme must be http or https", raw)
	case u.Host == "" || u.Hostname() == "":
		return "", fmt.Errorf("%q: no host", raw)
	case u.User != nil:
		return "", errors.New("credentials in the URL: use the token or headers")
	case u.RawQuery != "" || u.ForceQuery:
		return "", fmt.Errorf("%q: a query is not allowed", raw)
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return "", fmt.Errorf("%q: a fragment is not allowed", raw)
	case u.Opaque != "":
		return "", fmt.Errorf("%q: not a hierarchical URL", raw)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = strings.TrimRight(u.RawPath, "/")
	return u.String() + MetricsPath, nil
}

// Result describes a request the receiver accepted (HTTP 2xx).
type Result struct {
	// StatusCode is the HTTP status of the answer.
	StatusCode int
	// Rejected is the number of data points the receiver reported as
	// refused (partial_success.rejected_data_points): they were not taken
	// and resending them will not help. The others were accepted.
	Rejected int64
	// Message is the receiver's partial_success.error_message, cleaned for a
	// log line: why points were refused, or a warning.
	Message string
	// Undecodable is set when the body of the answer could not be decoded
	// (the request was accepted all the same); Message then says why.
	Undecodable bool
}

// Send POSTs body, an encoded ExportMetricsServiceRequest (Encoder.Append),
// compressed unless DisableGzip. It does not retry: the caller owns retries
// and backoff. Every error it returns is an *Error that says whether the
// same body may be sent again. body is not kept after Send returns.
func (c *Client) Send(ctx context.Context, body []byte) (Result, error) {
	code, r, respBody, err := c.post(ctx, body)
	if err != nil {
		return Result{}, err
	}
	if code < 200 || code > 299 {
		return Result{}, c.statusError(code, r, respBody)
	}
	res := Result{StatusCode: code}
	rejected, msg, err := decodeResponse(respBody, r.json)
	if err != nil {
		res.Undecodable = true
		res.Message = c.redact("undecodable response: " + err.Error())
		return res, nil
	}
	res.Rejected = rejected
	res.Message = transport.Bound(transport.CleanMessage(c.redact(msg)))
	return res, nil
}

// response is what post keeps of a response besides its status and body.
type response struct {
	retryAfter string // the Retry-After header
	json       bool   // the body is application/json
}

// post sends body and returns the status, the headers of interest and at
// most transport.MaxBody bytes of the response body. A failure to get a response is
// an *Error.
func (c *Client) post(ctx context.Context, body []byte) (int, response, []byte, error) {
	// The request gets memory of its own: the transport may still read a
	// request body after Do returns, and the caller reuses its buffer.
	encoding := ""
	if c.gzip {
		z, err := c.gzipper.Compress(body, len(body)/3+64)
		if err != nil {
			return 0, response{}, nil, &Error{Message: "gzip: " + err.Error(), Err: err}
		}
		body, encoding = z, "gzip"
	} else {
		body = bytes.Clone(body)
	}
	reqCtx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := c.newRequest(reqCtx, body, encoding)
	if err != nil {
		return 0, response{}, nil, &Error{Message: "building request: " + c.redact(err.Error()), Err: err}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, response{}, nil, c.transportError(ctx, reqCtx, err)
	}
	r := response{retryAfter: resp.Header.Get("Retry-After"), json: isJSON(resp.Header)}
	return resp.StatusCode, r, transport.ReadBody(resp.Body), nil
}

// newRequest builds the POST of body with every header.
func (c *Client) newRequest(ctx context.Context, body []byte, encoding string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	for k, v := range c.header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("User-Agent", c.userAgent)
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	return req, nil
}

// transportError classifies a failure to get a response: always retryable,
// since the receiver did not refuse the request. ctx is the caller's
// context, reqCtx the request's.
func (c *Client) transportError(ctx, reqCtx context.Context, err error) *Error {
	// Without the URL, which Error() names already.
	msg := transport.FailureMessage(ctx, reqCtx, c.timeout, err)
	if ctx.Err() != nil {
		msg = "canceled by the caller: " + msg
	}
	return &Error{Message: transport.Bound(c.redact(msg)), Retryable: true, Err: err}
}

// redact replaces every secret (token, header value) in s.
func (c *Client) redact(s string) string {
	for _, v := range c.secrets {
		s = strings.ReplaceAll(s, v, "[redacted]")
	}
	return s
}

// validHeaderName reports whether s is an HTTP token (RFC 9110).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
		if !ok {
			return false
		}
	}
	return true
}

// validHeaderValue reports whether s may be a header value: no control
// characters but tab.
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// isJSON reports whether a response's Content-Type is application/json.
func isJSON(h http.Header) bool {
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	return err == nil && mt == "application/json"
}
