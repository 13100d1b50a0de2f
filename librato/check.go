package librato

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/libratod/libratod/internal/transport"
)

// checkPath is the read-only request Check sends: the first entry of the
// metrics listing, which needs the same credentials as posting measurements.
const checkPath = "/v1/metrics?length=1"

// CheckStep names a step of reaching the service.
type CheckStep = transport.CheckStep

// The steps of a request, in order. A proxy (HTTPS_PROXY) is what the DNS and
// TCP steps reach when one is set.
const (
	StepDNS  = transport.StepDNS  // resolving the host name
	StepTCP  = transport.StepTCP  // opening the connection
	StepTLS  = transport.StepTLS  // the handshake, certificate verification included
	StepHTTP = transport.StepHTTP // sending the request and reading the answer's headers
)

// CheckResult is what Check learned, as far as it got.
type CheckResult struct {
	// URL is the URL requested; it never holds credentials.
	URL string
	// Reached says whether the service answered over HTTP: the name resolved,
	// the connection opened and, for https, the TLS handshake verified the
	// certificate.
	Reached bool
	// FailedStep is the step that failed when Reached is false.
	FailedStep CheckStep
	// TLS says whether the request went over TLS (false for plain http to a
	// loopback host).
	TLS bool
	// StatusCode is the HTTP status of the answer; 0 when not Reached.
	StatusCode int
	// Authorized says whether the credentials were accepted: a 2xx answer
	// holding the metrics listing. A 401 means they were rejected; other
	// answers leave it unknown (see Check's error).
	Authorized bool
	// RateLimit is the account's rate-limit state from the answer's
	// X-Librato-RateLimit-Agg and X-Librato-RateLimit-Std headers; each Quota's
	// Present says whether that header was seen.
	RateLimit RateLimit
}

// Check sends one read-only, authenticated request, GET
// {url}/v1/metrics?length=1, and reports whether the service was reached,
// whether it accepted the credentials and which rate-limit headers it sent. It
// sends no measurement and does not retry. The error is nil only when the
// credentials were accepted; otherwise it says what failed (never with the
// credentials), and the result holds what was learned before. A dry-run Client
// sends nothing and returns an error.
func (c *Client) Check(ctx context.Context) (CheckResult, error) {
	res := CheckResult{URL: c.base + checkPath}
	if c.dryRun != nil {
		return res, errors.New("librato: check: a dry-run client sends nothing")
	}
	res.TLS = strings.HasPrefix(c.base, "https:")

	var trace transport.StepTrace
	reqCtx, cancel := context.WithTimeout(trace.Context(ctx), c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(reqCtx, http.MethodGet, res.URL, nil)
	if err != nil {
		return res, fmt.Errorf("librato: check: building request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	req.SetBasicAuth(c.user, c.password)

	resp, err := c.http.Do(req)
	if err != nil {
		res.FailedStep = trace.Failed()
		msg := transport.FailureMessage(ctx, reqCtx, c.timeout, err)
		return res, fmt.Errorf("librato: check: GET %s: %s failed: %s: %w", checkPath, res.FailedStep, transport.Bound(msg), err)
	}
	res.Reached = true
	res.StatusCode = resp.StatusCode
	res.RateLimit = RateLimit{
		Agg: parseQuota(resp.Header.Get("X-Librato-RateLimit-Agg")),
		Std: parseQuota(resp.Header.Get("X-Librato-RateLimit-Std")),
	}
	body := transport.ReadBody(resp.Body)

	switch code := resp.StatusCode; {
	case code >= 200 && code <= 299:
		var listing struct {
			Metrics *json.RawMessage `json:"metrics"`
		}
		if json.Unmarshal(body, &listing) != nil || listing.Metrics == nil {
			return res, fmt.Errorf("librato: check: GET %s: HTTP %d, but the answer is not Librato's metrics listing (a proxy or the wrong URL?)", checkPath, code)
		}
		res.Authorized = true
		return res, nil
	case code == http.StatusUnauthorized:
		// The body is not shown: it can say nothing useful about which
		// credential is wrong.
		return res, fmt.Errorf("librato: check: GET %s: HTTP 401: the credentials were rejected", checkPath)
	default:
		msg := strings.Join(bodyErrors(body, true), "; ")
		if msg == "" {
			msg = http.StatusText(code)
		}
		return res, fmt.Errorf("librato: check: GET %s: HTTP %d: %s", checkPath, code, transport.Bound(msg))
	}
}
