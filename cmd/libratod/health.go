package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/libratod/libratod/cmd/libratod/internal/config"
	"github.com/libratod/libratod/flusher"
)

// readyWindowPeriods is how many flush periods delivery may fall behind
// before /readyz's delivery check fails. Three tolerate one failed or slow
// flush (a delivery may take until the end of the next period); two in a
// row fail the check.
const readyWindowPeriods = 3

// The names of /readyz's checks, which ?exclude= takes.
const (
	checkListeners = "listeners" // the StatsD listeners are bound and the daemon is not shutting down
	checkDelivery  = "delivery"  // Librato has taken everything recently
)

// health serves /healthz (the process answers) and /readyz (it takes
// lines and delivers them) on the metrics listener.
type health struct {
	ready    <-chan struct{}       // closed once the listeners are bound
	status   func() flusher.Status // the flusher's delivery state
	now      func() time.Time
	started  time.Time    // when the daemon was built: the delivery check's origin before the first complete flush
	window   atomic.Int64 // time.Duration: readyWindowPeriods flush periods
	stopping atomic.Bool  // set when shutdown begins
}

// newHealth returns the health state of a daemon whose listeners close
// ready once bound and whose flusher reports status, flushing every period.
func newHealth(ready <-chan struct{}, status func() flusher.Status, period time.Duration) *health {
	h := &health{ready: ready, status: status, now: time.Now, started: time.Now()}
	h.setPeriod(period)
	return h
}

// setPeriod sets the flush period the delivery check is measured in (call
// it when a reload changes aggregate.period).
func (h *health) setPeriod(period time.Duration) {
	h.window.Store(int64(readyWindowPeriods * period))
}

// stop makes /readyz fail from now on: the daemon is shutting down.
func (h *health) stop() {
	h.stopping.Store(true)
}

// register adds /healthz and /readyz to mux.
func (h *health) register(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", h.serveHealthz)
	mux.HandleFunc("GET /readyz", h.serveReadyz)
}

// serveHealthz answers 200 "ok": the process runs and serves HTTP.
func (h *health) serveHealthz(w http.ResponseWriter, _ *http.Request) {
	writeText(w, http.StatusOK, "ok\n")
}

// serveReadyz answers 200 "ok" when every check passes, else 503 with one
// "check: reason" line per failing check. ?exclude=delivery (repeated or
// comma-separated) skips checks by name; an unknown name is a 400, so
// that a misspelt probe fails loudly instead of checking more than meant.
func (h *health) serveReadyz(w http.ResponseWriter, r *http.Request) {
	skip := map[string]bool{}
	for _, v := range r.URL.Query()["exclude"] {
		for name := range strings.SplitSeq(v, ",") {
			if name != checkListeners && name != checkDelivery {
				writeText(w, http.StatusBadRequest, fmt.Sprintf("unknown check %q; the checks are %s and %s\n",
					name, checkListeners, checkDelivery))
				return
			}
			skip[name] = true
		}
	}
	var failed strings.Builder
	for _, c := range []struct {
		name    string
		problem func() string
	}{{checkListeners, h.listenersProblem}, {checkDelivery, h.deliveryProblem}} {
		if skip[c.name] {
			continue
		}
		if p := c.problem(); p != "" {
			fmt.Fprintf(&failed, "%s: %s\n", c.name, p)
		}
	}
	if failed.Len() > 0 {
		writeText(w, http.StatusServiceUnavailable, failed.String())
		return
	}
	writeText(w, http.StatusOK, "ok\n")
}

// listenersProblem says why the daemon cannot take lines, or "" when it can.
func (h *health) listenersProblem() string {
	select {
	case <-h.ready:
	default:
		return "starting: the listeners are not bound yet"
	}
	if h.stopping.Load() {
		return "shutting down"
	}
	return ""
}

// deliveryProblem says why delivery is behind, or "" when it is not. It is
// behind when data has waited to be resent for longer than the window, or
// when no flush has delivered everything it had for longer than the window
// (counted from the start before the first such flush).
func (h *health) deliveryProblem() string {
	window := time.Duration(h.window.Load())
	now := h.now()
	s := h.status()
	if s.Pending > 0 && now.Sub(s.OldestPending) > window {
		return fmt.Sprintf("%d measurements wait to be resent, the oldest from %s (%s ago, more than %s)",
			s.Pending, stamp(s.OldestPending), ago(now, s.OldestPending), window)
	}
	if !s.LastDelivered.IsZero() {
		if now.Sub(s.LastDelivered) > window {
			return fmt.Sprintf("no flush has delivered everything it had since %s (%s ago, more than %s)",
				stamp(s.LastDelivered), ago(now, s.LastDelivered), window)
		}
		return ""
	}
	if now.Sub(h.started) <= window {
		return "" // the first complete flush may still come
	}
	if s.LastFlush.IsZero() {
		return fmt.Sprintf("no flush since the start, %s ago (more than %s)", ago(now, h.started), window)
	}
	return fmt.Sprintf("no flush has delivered everything it had since the start, %s ago (more than %s)",
		ago(now, h.started), window)
}

// stamp formats t for a health message.
func stamp(t time.Time) string {
	return t.UTC().Format(time.RFC3339)
}

// ago is how long before now t was, to the second.
func ago(now, t time.Time) time.Duration {
	return now.Sub(t).Round(time.Second)
}

// writeText writes a short plain-text answer that no cache keeps.
func writeText(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, body)
}

// healthTimeout bounds the whole request of libratod -health.
const healthTimeout = 2 * time.Second

// runHealth is libratod -health: it loads the configuration at path (the
// token is not needed), asks the running daemon's /healthz at
// metrics.listen and returns exitOK when the answer is 200, else exitFail
// with the reason on stderr. It never returns exitConfig: container
// runtimes reserve a health check's exit code 2.
func runHealth(path string, getenv func(string) string, stdout, stderr io.Writer) int {
	cfg, err := config.Load(path, getenv)
	if err != nil {
		fmt.Fprintf(stderr, "libratod -health: configuration %s:\n%v\n", path, err)
		return exitFail
	}
	url, err := healthURL(cfg.Metrics.Listen)
	if err != nil {
		fmt.Fprintf(stderr, "libratod -health: %v\n", err)
		return exitFail
	}
	ctx, cancel := context.WithTimeout(context.Background(), healthTimeout)
	defer cancel()
	if err := probeHealth(ctx, url); err != nil {
		fmt.Fprintf(stderr, "libratod -health: unhealthy: %v\n", err)
		return exitFail
	}
	fmt.Fprintf(stdout, "libratod -health: %s: ok\n", url)
	return exitOK
}

// healthURL returns the /healthz URL of a daemon whose metrics listener
// is at listen. A wildcard host (0.0.0.0, [::] or none) is reached on
// 127.0.0.1.
func healthURL(listen string) (string, error) {
	if listen == "" {
		return "", errors.New("metrics.listen is empty: the daemon serves no /healthz")
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("metrics.listen %q: %w", listen, err)
	}
	if port == "0" {
		return "", fmt.Errorf("metrics.listen %q: port 0 is chosen at random, so the daemon cannot be found", listen)
	}
	if ip, err := netip.ParseAddr(host); host == "" || (err == nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/healthz", nil
}

// probeHealth GETs url and returns nil when the answer is 200.
func probeHealth(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("health request: %w", err)
	}
	// A transport of its own: no proxy from the environment, no idle
	// connection left behind.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %q", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}
