package otlp

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/libratod/libratod/internal/transport"
	"google.golang.org/protobuf/encoding/protowire"
)

const (
	// maxMessage bounds Error.Message and Result.Message, in bytes.
	maxMessage = transport.MaxMessage
	// MaxRetryAfter bounds Error.RetryAfter against absurd header values.
	MaxRetryAfter = time.Hour
)

// Error is a failed request: a transport failure or a non-2xx answer.
type Error struct {
	// StatusCode is the HTTP status; 0 for a transport error (timeout,
	// reset, DNS...) or a local one.
	StatusCode int
	// Message is the receiver's error message (a google.rpc.Status message,
	// a JSON "message" or the text of the body), or the status text, or the
	// transport error text; at most 1 KiB, never with the token or a header
	// value.
	Message string
	// Retryable says whether the same request may succeed if sent again
	// later: 429, 502, 503, 504, other 5xx, timeouts, network errors and a
	// canceled context (the request was not refused).
	Retryable bool
	// Credentials says the receiver refused the credentials (401, 403): the
	// data may be kept and sent once they are fixed.
	Credentials bool
	// Refused says the receiver refused the request's content (400): resent
	// as is it fails again, but a part of it may pass, so a caller may split
	// it to find the bad points. Other 4xx are neither retryable nor
	// refused: the request cannot be sent to this endpoint.
	Refused bool
	// RetryAfter is the delay asked by a Retry-After header (seconds or an
	// HTTP date), at most MaxRetryAfter; 0 if absent or in the past.
	RetryAfter time.Duration
	// Err is the underlying error, if any: the transport error (for
	// errors.Is with context.DeadlineExceeded, context.Canceled...).
	Err error
}

// Error returns a one-line description; it never holds credentials.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("otlp: POST ")
	b.WriteString(MetricsPath)
	b.WriteString(": ")
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, "HTTP %d: ", e.StatusCode)
	}
	b.WriteString(e.Message)
	return b.String()
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// statusError classifies a non-2xx answer.
func (c *Client) statusError(code int, r response, body []byte) *Error {
	e := &Error{
		StatusCode: code,
		Message:    transport.Bound(transport.CleanMessage(c.redact(errorMessage(body, r.json)))),
		RetryAfter: transport.ParseRetryAfter(r.retryAfter, c.now(), MaxRetryAfter),
	}
	if e.Message == "" {
		e.Message = http.StatusText(code)
	}
	switch {
	case code == http.StatusTooManyRequests || code >= 500:
		e.Retryable = true
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		e.Credentials = true
	case code == http.StatusBadRequest:
		e.Refused = true
	}
	return e
}

// errorMessage returns the message of an error answer: the message of a
// google.rpc.Status (protobuf, or JSON when isJSON), else the body as text.
func errorMessage(body []byte, isJSON bool) string {
	if len(body) == 0 {
		return ""
	}
	if isJSON {
		var st struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(body, &st) == nil && st.Message != "" {
			return st.Message
		}
		return string(body)
	}
	if msg, ok := statusMessage(body); ok {
		return msg
	}
	if utf8.Valid(body) {
		return string(body)
	}
	return ""
}

// statusMessage decodes a google.rpc.Status (code = 1, message = 2) and
// returns its message; ok is false when body is not such a message.
func statusMessage(body []byte) (msg string, ok bool) {
	for len(body) > 0 {
		num, typ, n := protowire.ConsumeTag(body)
		if n < 0 {
			return "", false
		}
		body = body[n:]
		if num == 2 && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(body)
			if n < 0 || !utf8.Valid(v) {
				return "", false
			}
			msg, body = string(v), body[n:]
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, body)
		if n < 0 {
			return "", false
		}
		body = body[n:]
	}
	return msg, msg != ""
}

// errResponse is wrapped by every error of decodeResponse.
var errResponse = errors.New("not an ExportMetricsServiceResponse")

// decodeResponse decodes the body of a 2xx answer, an
// ExportMetricsServiceResponse in protobuf or, when isJSON, OTLP/JSON; an
// empty body is a full success. It returns the rejected data points (never
// negative) and the error message as sent: untrusted text, to redact, clean
// and bound.
func decodeResponse(body []byte, isJSON bool) (rejected int64, msg string, err error) {
	if len(body) == 0 {
		return 0, "", nil
	}
	if isJSON {
		var r struct {
			PartialSuccess struct {
				RejectedDataPoints json.Number `json:"rejectedDataPoints"`
				ErrorMessage       string      `json:"errorMessage"`
			} `json:"partialSuccess"`
		}
		if err := json.Unmarshal(body, &r); err != nil {
			return 0, "", fmt.Errorf("%w: %w", errResponse, err)
		}
		if s := r.PartialSuccess.RejectedDataPoints.String(); s != "" {
			rejected, err = strconv.ParseInt(s, 10, 64)
			if err != nil {
				return 0, "", fmt.Errorf("%w: rejectedDataPoints %q", errResponse, transport.Bound(transport.CleanMessage(s)))
			}
		}
		return max(rejected, 0), r.PartialSuccess.ErrorMessage, nil
	}
	for len(body) > 0 {
		num, typ, n := protowire.ConsumeTag(body)
		if n < 0 {
			return 0, "", fmt.Errorf("%w: %w", errResponse, protowire.ParseError(n))
		}
		body = body[n:]
		if num != 1 || typ != protowire.BytesType { // partial_success
			n = protowire.ConsumeFieldValue(num, typ, body)
			if n < 0 {
				return 0, "", fmt.Errorf("%w: %w", errResponse, protowire.ParseError(n))
			}
			body = body[n:]
			continue
		}
		ps, n := protowire.ConsumeBytes(body)
		if n < 0 {
			return 0, "", fmt.Errorf("%w: %w", errResponse, protowire.ParseError(n))
		}
		body = body[n:]
		// A repeated embedded message merges: later fields win.
		if rejected, msg, err = decodePartialSuccess(ps, rejected, msg); err != nil {
			return 0, "", err
		}
	}
	return max(rejected, 0), msg, nil
}

// decodePartialSuccess decodes an ExportMetricsPartialSuccess
// (rejected_data_points = 1, error_message = 2) over the values so far.
func decodePartialSuccess(b []byte, rejected int64, msg string) (int64, string, error) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, "", fmt.Errorf("%w: %w", errResponse, protowire.ParseError(n))
		}
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return 0, "", fmt.Errorf("%w: %w", errResponse, protowire.ParseError(n))
			}
			rejected, b = int64(v), b[n:]
		case num == 2 && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return 0, "", fmt.Errorf("%w: %w", errResponse, protowire.ParseError(n))
			}
			msg, b = string(v), b[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return 0, "", fmt.Errorf("%w: %w", errResponse, protowire.ParseError(n))
			}
			b = b[n:]
		}
	}
	return rejected, msg, nil
}
