package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/libratod/libratod/cmd/libratod/internal/sdnotify"
	"github.com/libratod/libratod/cmd/libratod/internal/sdnotify/sdnotifytest"
	"github.com/libratod/libratod/internal/testproc"
)

// TestDaemonNotifies runs a daemon under a fake systemd: READY=1 once
// bound, WATCHDOG=1 keep-alives, RELOADING=1/READY=1 on demand, STOPPING=1
// at shutdown, and nothing after run returns.
func TestDaemonNotifies(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	conn := sdnotifytest.Listen(t, sock)
	env := map[string]string{"NOTIFY_SOCKET": sock, "WATCHDOG_USEC": "100000"} // a keep-alive every 50ms
	cfg := testConfig("http://127.0.0.1:1", "tagged")
	var logs testproc.SafeBuffer
	d, err := newDaemon(cfg, options{stderr: &logs, hostname: "test-host", notify: sdnotify.FromEnv(func(k string) string { return env[k] })})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- d.run(ctx) }()

	if got := sdnotifytest.Receive(t, conn); got != "READY=1" {
		t.Fatalf("first notification %q, want READY=1", got)
	}
	select {
	case <-d.ready:
	default:
		t.Error("READY=1 sent before the listeners were bound")
	}
	for i := 0; i < 2; i++ {
		if got := sdnotifytest.Receive(t, conn); got != "WATCHDOG=1" {
			t.Fatalf("notification %q, want WATCHDOG=1", got)
		}
	}
	d.notifyReloading()
	d.notifyReady()
	want := []string{"RELOADING=1", "READY=1", "STOPPING=1"}
	cancel()
	for i := 0; i < 50 && len(want) > 0; i++ { // keep-alives may come in between
		if got := sdnotifytest.Receive(t, conn); got == want[0] {
			want = want[1:]
		} else if got != "WATCHDOG=1" {
			t.Fatalf("notification %q, want %q", got, want[0])
		}
	}
	if len(want) > 0 {
		t.Fatalf("never received %q", want)
	}
	select {
	case err := <-errc:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("daemon did not stop")
	}
	// The watchdog goroutine has ended: after the keep-alives queued before
	// the exit, silence.
	sdnotifytest.Quiet(t, conn, "WATCHDOG=1")
}

func TestSendNotifyLogsFailures(t *testing.T) {
	var logs testproc.SafeBuffer
	d := &daemon{log: zerolog.New(&logs), notify: sdnotify.FromEnv(func(string) string { return "/nonexistent/libratod/notify" })}
	d.sendNotify("READY=1")
	if got := logs.String(); !strings.Contains(got, "cannot notify systemd") {
		t.Errorf("log %q lacks the failure", got)
	}
}
