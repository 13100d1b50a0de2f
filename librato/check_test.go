package librato

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// closedURL returns a loopback URL on which nothing listens: a port that was
// just bound and closed, so connecting to it is refused.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return "http://" + addr
}

const listing = `{"query":{"found":1,"length":1,"offset":0,"total":1},"metrics":[{"name":"a","type":"gauge"}]}`

func TestCheck(t *testing.T) {
	withLimits := func(w http.ResponseWriter) {
		w.Header().Set("X-Librato-RateLimit-Agg", "limit=100000,remaining=99990,reset=3540")
		w.Header().Set("X-Librato-RateLimit-Std", "limit=300,remaining=299,reset=60")
	}
	tests := map[string]struct {
		handler  http.HandlerFunc // nil: a refused connection
		want     CheckResult      // URL and TLS are not compared
		errParts []string         // substrings of the error; none: no error
	}{
		"accepted": {
			handler: func(w http.ResponseWriter, r *http.Request) {
				withLimits(w)
				io.WriteString(w, listing)
			},
			want: CheckResult{Reached: true, StatusCode: 200, Authorized: true, RateLimit: RateLimit{
				Agg: Quota{Present: true, Limit: 100000, Remaining: 99990, Reset: 3540},
				Std: Quota{Present: true, Limit: 300, Remaining: 299, Reset: 60}}},
		},
		"accepted without rate-limit headers": {
			handler: func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, listing) },
			want:    CheckResult{Reached: true, StatusCode: 200, Authorized: true},
		},
		"rejected": {
			handler: func(w http.ResponseWriter, r *http.Request) {
				withLimits(w)
				http.Error(w, `{"errors":{"request":["Authorization Required"]}}`, http.StatusUnauthorized)
			},
			want: CheckResult{Reached: true, StatusCode: 401, RateLimit: RateLimit{
				Agg: Quota{Present: true, Limit: 100000, Remaining: 99990, Reset: 3540},
				Std: Quota{Present: true, Limit: 300, Remaining: 299, Reset: 60}}},
			errParts: []string{"HTTP 401", "credentials were rejected"},
		},
		"forbidden": {
			handler: func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, `{"errors":{"request":["Forbidden: record-only token"]}}`, http.StatusForbidden)
			},
			want:     CheckResult{Reached: true, StatusCode: 403},
			errParts: []string{"HTTP 403", "record-only token"},
		},
		"not Librato": {
			handler:  func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "<html>proxy login</html>") },
			want:     CheckResult{Reached: true, StatusCode: 200},
			errParts: []string{"HTTP 200", "not Librato's metrics listing"},
		},
		"refused": {
			want:     CheckResult{FailedStep: StepTCP},
			errParts: []string{"TCP failed", "refused"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			url := closedURL(t)
			var got *http.Request
			if tc.handler != nil {
				url = newServer(t, func(w http.ResponseWriter, r *http.Request) {
					got = r.Clone(context.Background())
					tc.handler(w, r)
				}).URL
			}
			c := newTestClient(t, Config{URL: url, Email: "ops@example.com", UserAgent: "libratod/test"})
			res, err := c.Check(context.Background())
			if res.URL != url+"/v1/metrics?length=1" || res.TLS {
				t.Errorf("URL %q TLS %v", res.URL, res.TLS)
			}
			res.URL, res.TLS = "", false
			if res != tc.want {
				t.Errorf("result %+v\nwant   %+v", res, tc.want)
			}
			if len(tc.errParts) == 0 && err != nil {
				t.Errorf("error %v", err)
			}
			if len(tc.errParts) > 0 && err == nil {
				t.Error("no error")
			}
			for _, p := range tc.errParts {
				if err != nil && !strings.Contains(err.Error(), p) {
					t.Errorf("error %q lacks %q", err, p)
				}
			}
			if err != nil && (strings.Contains(err.Error(), testToken) || strings.Contains(err.Error(), "ops@example.com")) {
				t.Errorf("error shows a credential: %v", err)
			}
			if got == nil {
				return
			}
			user, pass, ok := got.BasicAuth()
			if got.Method != http.MethodGet || got.URL.Path != "/v1/metrics" || got.URL.RawQuery != "length=1" ||
				!ok || user != "ops@example.com" || pass != testToken || got.UserAgent() != "libratod/test" {
				t.Errorf("request %s %s auth %q:%q (%v) ua %q", got.Method, got.URL, user, pass, ok, got.UserAgent())
			}
		})
	}
}

// TestCheckTLS checks that a certificate the client does not trust fails the
// TLS step, with the request never sent.
func TestCheckTLS(t *testing.T) {
	sent := false
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { sent = true }))
	t.Cleanup(srv.Close)
	c := newTestClient(t, Config{URL: srv.URL})
	res, err := c.Check(context.Background())
	if err == nil || res.Reached || res.FailedStep != StepTLS || !res.TLS || sent {
		t.Errorf("result %+v, error %v, request sent %v", res, err, sent)
	}
}

// TestCheckDNS checks that a name that does not resolve fails the DNS step.
// The resolver is one that cannot reach any server, so nothing leaves the
// machine.
func TestCheckDNS(t *testing.T) {
	resolver := &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
		return nil, errors.New("no DNS server in tests")
	}}
	dialer := &net.Dialer{Resolver: resolver}
	hc := &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext}}
	c := newTestClient(t, Config{URL: "https://libratod-check.invalid", HTTPClient: hc})
	res, err := c.Check(context.Background())
	if err == nil || res.Reached || res.FailedStep != StepDNS {
		t.Errorf("result %+v, error %v", res, err)
	}
}

func TestCheckDryRun(t *testing.T) {
	c := newTestClient(t, Config{URL: "https://metrics-api.librato.com", DryRun: io.Discard})
	if _, err := c.Check(context.Background()); err == nil {
		t.Error("a dry-run client checked")
	}
}

func TestCheckCanceled(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, listing) })
	c := newTestClient(t, Config{URL: srv.URL})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.Check(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
}
