package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/libratod/libratod/cmd/libratod/internal/config"
	"github.com/libratod/libratod/librato"
)

// runOnlineCheck is -check -online after the configuration checked out: it
// checks every output that is on (Librato, then OTLP) and returns exitOK
// when every one passes, else exitFail.
func runOnlineCheck(ctx context.Context, cfg *config.Config, stdout io.Writer) int {
	code := exitOK
	if cfg.Librato.Enabled {
		code = max(code, libratoOnlineCheck(ctx, cfg, stdout))
	}
	if cfg.OTLP.On() {
		code = max(code, otlpOnlineCheck(ctx, cfg, stdout))
	}
	return code
}

// otlpOnlineCheck checks the OTLP output: one POST of an empty request
// (otlp.Client.Check), reported in one line each for reachability and
// credentials, then a verdict. Nothing it prints holds the token or a
// header value.
func otlpOnlineCheck(ctx context.Context, cfg *config.Config, stdout io.Writer) int {
	client, err := newOTLPClient(cfg)
	if err != nil {
		fmt.Fprintf(stdout, "online check (otlp): %v\n", err)
		return exitFail
	}
	res, err := client.Check(ctx)
	lines := []string{"online check (otlp): POST " + res.URL}
	switch {
	case res.Reached && res.TLS:
		lines = append(lines, "reach: ok (DNS, TCP and TLS with a verified certificate)")
	case res.Reached:
		lines = append(lines, "reach: ok (DNS and TCP; plain http, no TLS)")
	case res.FailedStep != "":
		lines = append(lines, fmt.Sprintf("reach: FAILED at %s: %v", res.FailedStep, err))
	default:
		lines = append(lines, fmt.Sprintf("reach: FAILED: %v", err))
	}
	switch {
	case !res.Reached:
		lines = append(lines, "credentials: not checked (the endpoint was not reached)")
	case res.Authorized:
		lines = append(lines, fmt.Sprintf("credentials: accepted (HTTP %d)", res.StatusCode))
	case res.StatusCode == 401 || res.StatusCode == 403:
		lines = append(lines, fmt.Sprintf("credentials: REJECTED (HTTP %d): check LIBRATOD_OTLP_TOKEN (or otlp.token) and [otlp.headers]", res.StatusCode))
	default:
		lines = append(lines, fmt.Sprintf("credentials: UNKNOWN: %v", err))
	}
	verdict := "online check (otlp): passed"
	if err != nil {
		verdict = "online check (otlp): FAILED"
	}
	secrets := []string{string(cfg.OTLP.Token)}
	for _, v := range cfg.OTLP.Headers {
		secrets = append(secrets, v)
	}
	writeRedacted(stdout, append(lines, verdict), secrets)
	if err != nil {
		return exitFail
	}
	return exitOK
}

// writeRedacted writes lines to w, one a line, every secret (a second
// lock: the clients never put them in their errors) replaced.
func writeRedacted(w io.Writer, lines, secrets []string) {
	var b strings.Builder
	for _, l := range lines {
		for _, s := range secrets {
			if s != "" {
				l = strings.ReplaceAll(l, s, "[redacted]")
			}
		}
		b.WriteString(l)
		b.WriteByte('\n')
	}
	_, _ = io.WriteString(w, b.String())
}

// libratoOnlineCheck is the Librato output's check: one read-only,
// authenticated request to librato.url (librato.Client.Check), reported in
// one line each for reachability, credentials and rate-limit headers, then
// a verdict. It returns exitOK when all three pass, else exitFail. Nothing
// it prints holds the token or the email.
func libratoOnlineCheck(ctx context.Context, cfg *config.Config, stdout io.Writer) int {
	client, err := newClient(cfg, nil)
	if err != nil {
		fmt.Fprintf(stdout, "online check: %v\n", err)
		return exitFail
	}
	res, err := client.Check(ctx)
	lines := onlineReport(res, err)

	// The client never puts credentials in its errors; this is a second lock.
	writeRedacted(stdout, lines, []string{string(cfg.Librato.Token), cfg.Librato.Email})
	if err != nil || !res.RateLimit.Agg.Present && !res.RateLimit.Std.Present {
		return exitFail
	}
	return exitOK
}

// onlineReport turns a check's result and error into the lines -check
// -online prints: the request, reach, credentials, rate limits and the
// verdict ("online check: passed" or "online check: FAILED").
func onlineReport(res librato.CheckResult, err error) []string {
	lines := []string{"online check: GET " + res.URL}
	pass := err == nil

	switch {
	case res.Reached && res.TLS:
		lines = append(lines, "reach: ok (DNS, TCP and TLS with a verified certificate)")
	case res.Reached:
		lines = append(lines, "reach: ok (DNS and TCP; plain http to a loopback host, no TLS)")
	case res.FailedStep != "":
		lines = append(lines, fmt.Sprintf("reach: FAILED at %s: %v", res.FailedStep, err))
	default:
		lines = append(lines, fmt.Sprintf("reach: FAILED: %v", err))
	}

	switch {
	case !res.Reached:
		lines = append(lines, "credentials: not checked (Librato was not reached)")
	case res.Authorized:
		lines = append(lines, fmt.Sprintf("credentials: accepted (HTTP %d)", res.StatusCode))
	case res.StatusCode == 401:
		lines = append(lines, "credentials: REJECTED (HTTP 401): check LIBRATO_TOKEN and LIBRATO_EMAIL "+
			"(or librato.token and librato.email; the environment wins); for AppOptics the email must be empty")
	default:
		lines = append(lines, fmt.Sprintf("credentials: UNKNOWN: %v", err))
	}

	q := func(name string, q librato.Quota) string {
		if !q.Present {
			return name + " absent"
		}
		s := fmt.Sprintf("%s %d left", name, q.Remaining)
		if q.Limit > 0 {
			s += fmt.Sprintf(" of %d", q.Limit)
		}
		if q.Reset > 0 {
			s += fmt.Sprintf(", reset in %ds", q.Reset)
		}
		return s
	}
	rl := res.RateLimit
	switch {
	case !res.Reached:
		lines = append(lines, "rate limits: not seen (Librato was not reached)")
	case rl.Agg.Present || rl.Std.Present:
		lines = append(lines, fmt.Sprintf("rate limits: seen: %s; %s",
			q("X-Librato-RateLimit-Agg", rl.Agg), q("X-Librato-RateLimit-Std", rl.Std)))
	default:
		pass = false
		lines = append(lines, "rate limits: NOT SEEN: the answer had no X-Librato-RateLimit-Agg or -Std header (not Librato, or a proxy removed them)")
	}

	if pass {
		return append(lines, "online check: passed")
	}
	return append(lines, "online check: FAILED")
}
