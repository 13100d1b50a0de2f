package librato

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/libratod/libratod/internal/transport"
)

const (
	// maxMessage bounds Error.Message, in bytes.
	maxMessage = transport.MaxMessage
	// maxRetryAfter bounds Error.RetryAfter against absurd header values.
	maxRetryAfter = 24 * time.Hour
)

// Error is a failed request: a transport failure or a non-2xx response.
type Error struct {
	// StatusCode is the HTTP status; 0 for a transport error (timeout, reset,
	// DNS, ...) or a local one.
	StatusCode int
	// Message is the flattened error body ("param: message; ..."), or the
	// status text when the body said nothing, or the transport error text. At
	// most 1 KiB.
	Message string
	// Retryable says whether the same batch may succeed if sent again later:
	// true for 5xx, 408, 429, a rate-limit 403, timeouts, network errors and a
	// canceled context (the batch was not refused).
	Retryable bool
	// RateLimited says the service refused the request for its rate limit: 429,
	// or a 403 whose body mentions a limit or whose rate-limit header has
	// nothing remaining.
	RateLimited bool
	// RetryAfter is the delay asked by a Retry-After header (seconds or HTTP
	// date), capped at 24h; 0 if absent.
	RetryAfter time.Duration
	// TypeConflicts are the metric names a 400 reported as already existing
	// with another type ("'x' is a counter, but was submitted as different
	// type").
	TypeConflicts []string
	// RateLimit is the rate-limit state reported by the response headers.
	RateLimit RateLimit
	// Err is the underlying error, if any: the transport error (for errors.Is
	// with context.DeadlineExceeded, context.Canceled, net.Error...) or the
	// dry-run writer's error.
	Err error

	path string // endpoint path, for Error()
}

// Error returns a one-line description; it never holds credentials.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("librato: ")
	if e.path != "" {
		b.WriteString("POST ")
		b.WriteString(e.path)
		b.WriteString(": ")
	}
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, "HTTP %d: ", e.StatusCode)
	}
	b.WriteString(e.Message)
	return b.String()
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// newStatusError classifies a non-2xx response.
func newStatusError(path string, code int, r response, body []byte) *Error {
	msgs := bodyErrors(body, true)
	e := &Error{
		StatusCode: code,
		Message:    transport.Bound(strings.Join(msgs, "; ")),
		RetryAfter: transport.ParseRetryAfter(r.retryAfter, time.Now(), maxRetryAfter),
		RateLimit:  r.limits,
		path:       path,
	}
	if e.Message == "" {
		e.Message = http.StatusText(code)
	}
	switch {
	case code == http.StatusTooManyRequests:
		e.Retryable, e.RateLimited = true, true
	case code == http.StatusForbidden && (mentionsLimit(body) || r.limits.exhausted()):
		e.Retryable, e.RateLimited = true, true
	case code == http.StatusRequestTimeout || code >= 500:
		e.Retryable = true
	case code == http.StatusBadRequest:
		e.TypeConflicts = typeConflicts(msgs)
	}
	return e
}

// mentionsLimit reports whether a body speaks of a limit ("You have hit the API
// limit ...").
func mentionsLimit(body []byte) bool {
	return strings.Contains(strings.ToLower(string(body)), "limit")
}

// exhausted reports whether a rate-limit header said nothing remains.
func (rl RateLimit) exhausted() bool {
	return rl.Agg.Present && rl.Agg.Remaining <= 0 || rl.Std.Present && rl.Std.Remaining <= 0
}

// bodyErrors flattens the errors a response body reports: the "errors" object
// ({"params":{attr:[msg]},"request":[msg],"system":[msg]}) into "attr: msg" and
// "request: msg", or a flat {"error": msg}. A body that is not JSON is returned
// as cleaned text when raw is set, else ignored.
func bodyErrors(body []byte, raw bool) []string {
	if len(body) == 0 {
		return nil
	}
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		if raw {
			if s := transport.CleanMessage(string(body)); s != "" {
				return []string{s}
			}
		}
		return nil
	}
	var out []string
	if errs, ok := doc["errors"]; ok {
		out = flatten(out, "", errs, true)
	}
	if e, ok := doc["error"]; ok {
		out = flatten(out, "", e, false)
	}
	return out
}

// flatten appends the leaves of v as "path: text"; at the top level of an
// errors object the "params" key is left out of the path.
func flatten(out []string, prefix string, v any, top bool) []string {
	switch v := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p := k
			switch {
			case top && k == "params":
				p = prefix
			case prefix != "":
				p = prefix + "." + k
			}
			out = flatten(out, p, v[k], false)
		}
	case []any:
		for _, e := range v {
			out = flatten(out, prefix, e, false)
		}
	case nil:
	default:
		s, ok := v.(string)
		if !ok {
			s = fmt.Sprint(v)
		}
		s = transport.CleanMessage(s)
		if prefix != "" {
			s = transport.CleanMessage(prefix) + ": " + s
		}
		out = append(out, s)
	}
	return out
}

// failedMeasurements counts the distinct measurements that flattened error
// messages name by their place in a request of sent measurements: a path
// "measurements.N..." (tagged) or "gauges.N..." or "counters.N..." (legacy), N
// in [0, sent).
func failedMeasurements(msgs []string, sent int) int {
	seen := map[string]bool{}
	for _, m := range msgs {
		path, _, ok := strings.Cut(m, ": ")
		if !ok {
			continue
		}
		parts := strings.SplitN(path, ".", 3)
		if len(parts) < 2 {
			continue
		}
		switch parts[0] {
		case "measurements", "gauges", "counters":
		default:
			continue
		}
		i, err := strconv.Atoi(parts[1])
		if err != nil || i < 0 || i >= sent {
			continue
		}
		seen[parts[0]+"."+parts[1]] = true
	}
	return min(len(seen), sent)
}

// typeConflicts returns the metric names of messages like
// "type: 'x' is a counter, but was submitted as different type".
func typeConflicts(msgs []string) []string {
	var names []string
	for _, m := range msgs {
		if !strings.Contains(m, "submitted as") {
			continue
		}
		i := strings.IndexByte(m, '\'')
		if i < 0 {
			continue
		}
		j := strings.Index(m[i+1:], "' is a")
		if j <= 0 {
			continue
		}
		names = append(names, m[i+1:i+1+j])
	}
	return names
}

// parseQuota parses a rate-limit header: comma-separated key=value pairs with
// integer values, of which limit, remaining and reset are kept. Garbage is
// ignored.
func parseQuota(h string) Quota {
	var q Quota
	for _, part := range strings.Split(h, ",") {
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "limit":
			q.Limit = n
		case "remaining":
			q.Remaining, q.Present = n, true
		case "reset":
			q.Reset = n
		}
	}
	return q
}
