package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/libratod/libratod/cmd/libratod/internal/config/secrettest"
)

// TestCheckHidesSecrets runs -check on every secrettest case: it fails
// with exit 2, and nothing it prints shows four bytes of a secret.
func TestCheckHidesSecrets(t *testing.T) {
	for _, tc := range secrettest.Cases() {
		t.Run(tc.Name, func(t *testing.T) {
			path := writeConfig(t, tc.File)
			var out, errb bytes.Buffer
			code := run([]string{"-config", path, "-check"}, &out, &errb, func(k string) string { return tc.Env[k] })
			// The file's path is the test's, not the config's.
			all := strings.ReplaceAll(out.String()+errb.String(), path, "<config>")
			if code != exitConfig {
				t.Errorf("exit %d, want %d:\n%s", code, exitConfig, all)
			}
			if leak := secrettest.Leak(all); leak != "" {
				t.Errorf("-check shows %q of a secret:\n%s", leak, all)
			}
		})
	}
}

// TestCheckOnline runs -check -online against a fake Librato that accepts,
// refuses the credentials, forgets the rate-limit headers, and against a
// closed port.
func TestCheckOnline(t *testing.T) {
	accept := func(w http.ResponseWriter, r *http.Request) {
		if u, p, _ := r.BasicAuth(); u != testEmail || p != testToken || r.URL.Path != "/v1/metrics" {
			http.Error(w, "wrong request", http.StatusBadRequest)
			return
		}
		w.Header().Set("X-Librato-RateLimit-Agg", "limit=100000,remaining=99990,reset=3540")
		w.Header().Set("X-Librato-RateLimit-Std", "limit=300,remaining=299,reset=60")
		io.WriteString(w, `{"query":{"length":1},"metrics":[]}`)
	}
	tests := map[string]struct {
		handler http.HandlerFunc // nil: a closed port
		code    int
		lines   []string
	}{
		"accepted": {accept, exitOK, []string{
			"reach: ok (DNS and TCP; plain http to a loopback host, no TLS)",
			"credentials: accepted (HTTP 200)",
			"rate limits: seen: X-Librato-RateLimit-Agg 99990 left of 100000, reset in 3540s; X-Librato-RateLimit-Std 299 left of 300, reset in 60s",
			"online check: passed"}},
		"rejected": {func(w http.ResponseWriter, r *http.Request) {
			// A server that echoes what it got must not make the check print
			// it.
			u, p, _ := r.BasicAuth()
			http.Error(w, fmt.Sprintf(`{"errors":{"request":["bad credentials %s %s"]}}`, u, p), http.StatusUnauthorized)
		}, exitFail, []string{
			"reach: ok",
			"credentials: REJECTED (HTTP 401)",
			"rate limits: NOT SEEN",
			"online check: FAILED"}},
		"no rate-limit headers": {func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"query":{"length":1},"metrics":[]}`)
		}, exitFail, []string{
			"credentials: accepted (HTTP 200)",
			"rate limits: NOT SEEN",
			"online check: FAILED"}},
		"server error": {func(w http.ResponseWriter, r *http.Request) {
			u, p, _ := r.BasicAuth()
			http.Error(w, fmt.Sprintf(`{"errors":{"system":["down for maintenance %s %s"]}}`, u, p), http.StatusServiceUnavailable)
		}, exitFail, []string{
			"reach: ok",
			"credentials: UNKNOWN: librato: check: GET /v1/metrics?length=1: HTTP 503: system: down for maintenance [redacted] [redacted]",
			"online check: FAILED"}},
		"refused": {nil, exitFail, []string{
			"reach: FAILED at TCP: ",
			"connection refused",
			"credentials: not checked",
			"rate limits: not seen",
			"online check: FAILED"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			url := serverURL(t, tc.handler)
			cfg := writeConfig(t, fmt.Sprintf("[librato]\nurl = %q\nemail = %q\ntoken = %q\n", url, testEmail, testToken))
			var out, errb bytes.Buffer
			code := run([]string{"-config", cfg, "-check", "-online"}, &out, &errb, noEnv)
			if code != tc.code {
				t.Errorf("exit %d, want %d", code, tc.code)
			}
			if !strings.Contains(out.String(), "online check: GET "+url+"/v1/metrics?length=1\n") ||
				!strings.Contains(out.String(), "api: tagged\n") { // what -check prints comes first
				t.Errorf("stdout lacks the check's description or the request")
			}
			for _, l := range tc.lines {
				if !strings.Contains(out.String(), l) {
					t.Errorf("stdout lacks %q", l)
				}
			}
			if all := out.String() + errb.String(); strings.Contains(all, testToken) || strings.Contains(all, testEmail) {
				t.Errorf("output shows a credential")
			}
			if t.Failed() {
				t.Logf("stdout:\n%s\nstderr:\n%s", out.String(), errb.String())
			}
		})
	}
}

func TestCheckOnlineFlags(t *testing.T) {
	good := writeConfig(t, fmt.Sprintf("[librato]\nurl = \"http://127.0.0.1:1\"\ntoken = %q\n", testToken))
	noToken := writeConfig(t, "[librato]\nurl = \"http://127.0.0.1:1\"\n")
	for name, args := range map[string][]string{
		"without -check": {"-config", good, "-online"},
		"with -dry-run":  {"-config", good, "-check", "-online", "-dry-run"},
		"no token":       {"-config", noToken, "-check", "-online"},
	} {
		t.Run(name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(args, &out, &errb, noEnv); code != exitConfig {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, exitConfig, errb.String())
			}
			if strings.Contains(out.String(), "online check") {
				t.Errorf("checked online:\n%s", out.String())
			}
		})
	}
}

// TestCheckOnlineOTLP runs -check -online with the OTLP output on (and
// Librato off): the endpoint accepts the token, refuses it, answers 503,
// or is not there; the verdict and the exit code follow, and nothing
// printed holds the token or a header value.
func TestCheckOnlineOTLP(t *testing.T) {
	const token, header = "otlpTok3nXYZ", "h3aderS3cret"
	accept := func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token || r.Header.Get("X-Team") != header ||
			r.URL.Path != "/otlp/v1/metrics" || r.Method != http.MethodPost {
			http.Error(w, "wrong request", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
	}
	echo := func(code int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "refused "+r.Header.Get("Authorization")+" "+r.Header.Get("X-Team"), code)
		}
	}
	tests := map[string]struct {
		handler http.HandlerFunc // nil: a closed port
		code    int
		lines   []string
	}{
		"accepted": {accept, exitOK, []string{"reach: ok (DNS and TCP; plain http, no TLS)",
			"credentials: accepted (HTTP 200)", "online check (otlp): passed"}},
		"rejected": {echo(401), exitFail, []string{"reach: ok", "credentials: REJECTED (HTTP 401)",
			"online check (otlp): FAILED"}},
		"unavailable": {echo(503), exitFail, []string{"reach: ok", "credentials: UNKNOWN", "online check (otlp): FAILED"}},
		"refused":     {nil, exitFail, []string{"reach: FAILED at TCP", "credentials: not checked", "online check (otlp): FAILED"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			url := serverURL(t, tc.handler)
			cfg := writeConfig(t, fmt.Sprintf("[librato]\nenabled = false\n[otlp]\nendpoint = %q\ntoken = %q\nheaders = { X-Team = %q }\n",
				url+"/otlp", token, header))
			var out, errb bytes.Buffer
			code := run([]string{"-config", cfg, "-check", "-online"}, &out, &errb, noEnv)
			if code != tc.code {
				t.Errorf("exit %d, want %d", code, tc.code)
			}
			all := out.String() + errb.String()
			if !strings.Contains(all, "online check (otlp): POST "+url+"/otlp/v1/metrics\n") {
				t.Errorf("output does not name the request:\n%s", all)
			}
			for _, l := range tc.lines {
				if !strings.Contains(all, l) {
					t.Errorf("output lacks %q:\n%s", l, all)
				}
			}
			if strings.Contains(all, "online check: GET") {
				t.Errorf("Librato is off but was checked:\n%s", all)
			}
			for _, s := range []string{token, header, "Tok3n", "S3cret"} {
				if strings.Contains(all, s) {
					t.Errorf("output shows %q:\n%s", s, all)
				}
			}
			if !strings.Contains(all, "otlp credentials: token set, headers X-Team (values not shown)") {
				t.Errorf("-check's description of the OTLP output:\n%s", all)
			}
		})
	}
}

// serverURL returns the URL of a test server running h, stopped when the
// test ends, or, for a nil h, of a closed port on 127.0.0.1.
func serverURL(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	if h != nil {
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		return srv.URL
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	_ = ln.Close()
	return url
}
