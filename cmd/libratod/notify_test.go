package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func TestNewNotifier(t *testing.T) {
	self := strconv.Itoa(os.Getpid())
	tests := map[string]struct {
		env      map[string]string
		socket   string
		watchdog time.Duration
	}{
		"outside systemd":     {env: nil},
		"socket only":         {env: map[string]string{"NOTIFY_SOCKET": "/run/systemd/notify"}, socket: "/run/systemd/notify"},
		"watchdog":            {env: map[string]string{"NOTIFY_SOCKET": "@sd", "WATCHDOG_USEC": "30000000"}, socket: "@sd", watchdog: 15 * time.Second},
		"watchdog for us":     {env: map[string]string{"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": self}, watchdog: 500 * time.Millisecond},
		"watchdog for other":  {env: map[string]string{"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}},
		"watchdog zero":       {env: map[string]string{"WATCHDOG_USEC": "0"}},
		"watchdog negative":   {env: map[string]string{"WATCHDOG_USEC": "-4"}},
		"watchdog not number": {env: map[string]string{"WATCHDOG_USEC": "30s"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			n := newNotifier(func(k string) string { return tc.env[k] })
			if n.socket != tc.socket || n.watchdog != tc.watchdog {
				t.Errorf("got socket %q watchdog %v, want %q %v", n.socket, n.watchdog, tc.socket, tc.watchdog)
			}
		})
	}
}

// listenNotify listens like systemd's notification socket at name (a path,
// or "@name" for the abstract namespace), closed when the test ends.
func listenNotify(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// receive returns the next datagram, failing the test after 10s.
func receive(t *testing.T, conn *net.UnixConn) string {
	t.Helper()
	if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("no notification: %v", err)
	}
	return string(buf[:n])
}

func TestNotify(t *testing.T) {
	tests := map[string]struct {
		socket func(t *testing.T) string // creates the listener when it should exist
		state  string
	}{
		"path": {socket: func(t *testing.T) string { return filepath.Join(t.TempDir(), "notify") }, state: "READY=1"},
		"abstract": {socket: func(*testing.T) string {
			return fmt.Sprintf("@libratod-test-%d-%d", os.Getpid(), time.Now().UnixNano())
		}, state: "STOPPING=1"},
		"several lines": {socket: func(t *testing.T) string { return filepath.Join(t.TempDir(), "n") },
			state: "READY=1\nSTATUS=listening"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			addr := tc.socket(t)
			conn := listenNotify(t, addr)
			if err := (notifier{socket: addr}).notify(tc.state); err != nil {
				t.Fatal(err)
			}
			if got := receive(t, conn); got != tc.state {
				t.Errorf("received %q, want %q", got, tc.state)
			}
		})
	}
}

func TestNotifyErrors(t *testing.T) {
	tests := map[string]struct {
		socket string
		err    bool
	}{
		"no socket":      {socket: "", err: false},
		"relative path":  {socket: "run/notify", err: true},
		"vsock":          {socket: "vsock:2:1234", err: true},
		"missing socket": {socket: "/nonexistent/libratod/notify", err: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := (notifier{socket: tc.socket}).notify("READY=1")
			if (err != nil) != tc.err {
				t.Errorf("notify: %v, want error %v", err, tc.err)
			}
		})
	}
}

// TestDaemonNotifies runs a daemon under a fake systemd: READY=1 once
// bound, WATCHDOG=1 keep-alives, RELOADING=1/READY=1 on demand, STOPPING=1
// at shutdown, and nothing after run returns.
func TestDaemonNotifies(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	conn := listenNotify(t, sock)
	env := map[string]string{"NOTIFY_SOCKET": sock, "WATCHDOG_USEC": "100000"} // a keep-alive every 50ms
	cfg := testConfig("http://127.0.0.1:1", "tagged")
	var logs safeBuffer
	d, err := newDaemon(cfg, options{stderr: &logs, hostname: "test-host", notify: newNotifier(func(k string) string { return env[k] })})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- d.run(ctx) }()

	if got := receive(t, conn); got != "READY=1" {
		t.Fatalf("first notification %q, want READY=1", got)
	}
	select {
	case <-d.ready:
	default:
		t.Error("READY=1 sent before the listeners were bound")
	}
	for i := 0; i < 2; i++ {
		if got := receive(t, conn); got != "WATCHDOG=1" {
			t.Fatalf("notification %q, want WATCHDOG=1", got)
		}
	}
	d.notifyReloading()
	d.notifyReady()
	want := []string{"RELOADING=1", "READY=1", "STOPPING=1"}
	cancel()
	for i := 0; i < 50 && len(want) > 0; i++ { // keep-alives may come in between
		if got := receive(t, conn); got == want[0] {
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
	// the exit, silence (a live one would send every 50ms, never 500ms of it).
	buf := make([]byte, 64)
	for i := 0; ; i++ {
		if err := conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		n, err := conn.Read(buf)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			break
		}
		if err != nil || string(buf[:n]) != "WATCHDOG=1" || i > 1000 {
			t.Fatalf("after exit: %q, %v (#%d)", buf[:n], err, i)
		}
	}
}

func TestSendNotifyLogsFailures(t *testing.T) {
	var logs safeBuffer
	d := &daemon{log: zerolog.New(&logs), notify: notifier{socket: "/nonexistent/libratod/notify"}}
	d.sendNotify("READY=1")
	if got := logs.String(); !strings.Contains(got, "cannot notify systemd") {
		t.Errorf("log %q lacks the failure", got)
	}
}
