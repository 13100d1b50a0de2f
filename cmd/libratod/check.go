package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

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
	lines = append(lines,
		reachLine(res.Reached, res.TLS, res.FailedStep, "plain http, no TLS", err),
		credentialsLine(res.Reached, res.Authorized,
			res.StatusCode == 401 || res.StatusCode == 403, res.StatusCode,
			"the endpoint", "check LIBRATOD_OTLP_TOKEN (or otlp.token) and [otlp.headers]", err))
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

// reachLine is an online check's line on reaching an output: ok over TLS,
// ok in plain http (plain says which), or the step that failed and err.
func reachLine(reached, tls bool, failed librato.CheckStep, plain string, err error) string {
	switch {
	case reached && tls:
		return "reach: ok (DNS, TCP and TLS with a verified certificate)"
	case reached:
		return "reach: ok (DNS and TCP; " + plain + ")"
	case failed != "":
		return fmt.Sprintf("reach: FAILED at %s: %v", failed, err)
	default:
		return fmt.Sprintf("reach: FAILED: %v", err)
	}
}

// credentialsLine is an online check's line on the credentials: not checked
// (target, the output, was not reached), accepted, rejected (status, and
// hint, what to check) or unknown (err says why).
func credentialsLine(reached, authorized, rejected bool, status int, target, hint string, err error) string {
	switch {
	case !reached:
		return "credentials: not checked (" + target + " was not reached)"
	case authorized:
		return fmt.Sprintf("credentials: accepted (HTTP %d)", status)
	case rejected:
		return fmt.Sprintf("credentials: REJECTED (HTTP %d): %s", status, hint)
	default:
		return fmt.Sprintf("credentials: UNKNOWN: %v", err)
	}
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

// unixResetMin is the least rate-limit reset read as a Unix time rather
// than as seconds from now: 10^9 seconds is over 31 years, a Unix time
// of 2001.
const unixResetMin = 1_000_000_000

// onlineReport turns a check's result and error into the lines -check
// -online prints: the request, reach, credentials, rate limits and the
// verdict ("online check: passed" or "online check: FAILED").
func onlineReport(res librato.CheckResult, err error) []string {
	lines := []string{"online check: GET " + res.URL}
	pass := err == nil

	lines = append(lines,
		reachLine(res.Reached, res.TLS, res.FailedStep, "plain http to a loopback host, no TLS", err),
		credentialsLine(res.Reached, res.Authorized, res.StatusCode == 401, res.StatusCode,
			"Librato", "check LIBRATO_TOKEN and LIBRATO_EMAIL "+
				"(or librato.token and librato.email; the environment wins); "+
				"for AppOptics the email must be empty", err))

	q := func(name string, q librato.Quota) string {
		if !q.Present {
			return name + " absent"
		}
		s := fmt.Sprintf("%s %d left", name, q.Remaining)
		if q.Limit > 0 {
			s += fmt.Sprintf(" of %d", q.Limit)
		}
		switch {
		case q.Reset >= unixResetMin:
			s += ", resets at " + time.Unix(q.Reset, 0).UTC().Format(time.RFC3339)
		case q.Reset > 0:
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
