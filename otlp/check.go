package otlp

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/libratod/libratod/internal/transport"
)

// CheckStep names a step of reaching the receiver.
type CheckStep = transport.CheckStep

// The steps of a request, in order. A proxy (HTTPS_PROXY) is what the DNS
// and TCP steps reach when one is set.
const (
	// StepDNS is resolving the host name.
	StepDNS = transport.StepDNS
	// StepTCP is opening the connection.
	StepTCP = transport.StepTCP
	// StepTLS is the handshake, certificate verification included.
	StepTLS = transport.StepTLS
	// StepHTTP is sending the request and reading the answer's headers.
	StepHTTP = transport.StepHTTP
)

// CheckResult is what Check learned, as far as it got.
type CheckResult struct {
	// URL is the URL requested; it never holds credentials.
	URL string
	// Reached says whether the receiver answered over HTTP: the name
	// resolved, the connection opened and, for https, the TLS handshake
	// verified the certificate.
	Reached bool
	// FailedStep is the step that failed when Reached is false.
	FailedStep CheckStep
	// TLS says whether the request went over TLS.
	TLS bool
	// StatusCode is the HTTP status of the answer; 0 when not Reached.
	StatusCode int
	// Authorized says whether the credentials were accepted: a 2xx answer
	// to the empty request. A 401 or 403 means they were rejected; other
	// answers leave it unknown (see Check's error).
	Authorized bool
}

// Check POSTs an empty ExportMetricsServiceRequest (no resource metrics,
// so no data) with the client's credentials and reports whether the
// receiver was reached, which step failed if not, and whether it accepted
// the credentials. It does not retry. The error is nil only when the
// credentials were accepted; otherwise it says what failed (never with the
// credentials), and the result holds what was learned before.
func (c *Client) Check(ctx context.Context) (CheckResult, error) {
	res := CheckResult{URL: c.url, TLS: strings.HasPrefix(c.url, "https:")}

	var trace transport.StepTrace
	reqCtx, cancel := context.WithTimeout(trace.Context(ctx), c.timeout)
	defer cancel()
	req, err := c.newRequest(reqCtx, nil, "")
	if err != nil {
		return res, fmt.Errorf("otlp: check: building request: %s", c.redact(err.Error()))
	}

	resp, err := c.http.Do(req)
	if err != nil {
		res.FailedStep = trace.Failed()
		msg := transport.FailureMessage(ctx, reqCtx, c.timeout, err)
		return res, fmt.Errorf("otlp: check: POST %s: %s failed: %s: %w",
			MetricsPath, res.FailedStep, transport.Bound(c.redact(msg)), err)
	}
	res.Reached = true
	res.StatusCode = resp.StatusCode
	body := transport.ReadBody(resp.Body)

	switch code := resp.StatusCode; {
	case code >= 200 && code <= 299:
		res.Authorized = true
		return res, nil
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return res, fmt.Errorf("otlp: check: POST %s: HTTP %d: the credentials were rejected", MetricsPath, code)
	default:
		e := c.statusError(code, response{json: isJSON(resp.Header)}, body)
		return res, fmt.Errorf("otlp: check: POST %s: HTTP %d: %s", MetricsPath, code, e.Message)
	}
}
