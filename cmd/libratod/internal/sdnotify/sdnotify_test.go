package sdnotify

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/libratod/libratod/cmd/libratod/internal/sdnotify/sdnotifytest"
)

func TestFromEnv(t *testing.T) {
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
			n := FromEnv(func(k string) string { return tc.env[k] })
			if n.socket != tc.socket || n.watchdog != tc.watchdog {
				t.Errorf("got socket %q watchdog %v, want %q %v", n.socket, n.watchdog, tc.socket, tc.watchdog)
			}
		})
	}
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
			conn := sdnotifytest.Listen(t, addr)
			if err := (Notifier{socket: addr}).Notify(tc.state); err != nil {
				t.Fatal(err)
			}
			if got := sdnotifytest.Receive(t, conn); got != tc.state {
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
			err := (Notifier{socket: tc.socket}).Notify(Ready)
			if (err != nil) != tc.err {
				t.Errorf("notify: %v, want error %v", err, tc.err)
			}
		})
	}
}

// TestStartWatchdog checks the keep-alives: sent every interval until stop,
// nothing after it returns, and nothing started without a watchdog.
func TestStartWatchdog(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	conn := sdnotifytest.Listen(t, sock)
	n := Notifier{socket: sock, watchdog: 20 * time.Millisecond}
	stop := n.StartWatchdog(func(err error) { t.Error(err) })
	for range 2 {
		if got := sdnotifytest.Receive(t, conn); got != Watchdog {
			t.Fatalf("notification %q, want %q", got, Watchdog)
		}
	}
	stop()
	// After the keep-alives queued before stop, silence.
	sdnotifytest.Quiet(t, conn, Watchdog)
	if (Notifier{watchdog: time.Second}).WatchdogInterval() != 0 {
		t.Error("a watchdog without a socket: keep-alives due")
	}
	Notifier{}.StartWatchdog(func(err error) { t.Error(err) })() // starts nothing, stops at once
}
