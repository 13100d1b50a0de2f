package main

import (
	"fmt"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// TestKill9DuringInPeriodRetries kills the daemon (SIGKILL) while a
// request is being retried within its own period (Librato answers 503,
// max_attempts is 10): it was written to the spool at its first failure,
// and the next daemon delivers it once.
func TestKill9DuringInPeriodRetries(t *testing.T) {
	bin := buildBinary(t)
	fake := newFakeLibrato(t)
	var refusing atomic.Bool
	var refused atomic.Int64
	refusing.Store(true)
	fake.handle = func(w http.ResponseWriter, _ *http.Request, body map[string]any) bool {
		if !refusing.Load() || !holds(body, "k9.c") {
			return false
		}
		refused.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
		return true
	}
	dir := filepath.Join(t.TempDir(), "spool")
	cfg := writeConfig(t, fmt.Sprintf(`
[listen]
udp = "127.0.0.1:0"
tcp = "127.0.0.1:0"
[aggregate]
period = "2s"
percentiles = []
[librato]
url = %q
token = %q
shutdown_timeout = "1s"
max_attempts = 10
spool_dir = %q
[metrics]
listen = "127.0.0.1:0"
`, fake.URL, testToken, dir))

	cmd, _, tcp, _, _ := startBinary(t, bin, cfg)
	sendLines(t, tcp, repeat("k9.c:1|c", 5)...)
	// The second attempt: the request is now waiting for its third,
	// within its period (the backoff before it is 0.5 to 1 s).
	for i := 0; refused.Load() < 2; i++ {
		if i == 1000 {
			t.Fatalf("the daemon made %d attempts, want 2", refused.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if n := refused.Load(); n != 2 {
		t.Fatalf("the daemon made %d attempts before it was killed, want 2 (still retrying in period)", n)
	}

	refusing.Store(false)
	got, _ := resendAndStop(t, bin, cfg, fake, "k9.c")
	if p := got["k9.c"][0]; p.value != 5 {
		t.Errorf("k9.c %v, want 5", p)
	}
}

// holds reports whether a decoded Librato request body holds a
// measurement named name.
func holds(body map[string]any, name string) bool {
	ms, _ := body["measurements"].([]any)
	for _, m := range ms {
		if mm, ok := m.(map[string]any); ok && mm["name"] == name {
			return true
		}
	}
	return false
}
