package sdnotify

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
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
			if err := (Notifier{socket: addr}).Notify(tc.state); err != nil {
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
	conn := listenNotify(t, sock)
	n := Notifier{socket: sock, watchdog: 20 * time.Millisecond}
	stop := n.StartWatchdog(func(err error) { t.Error(err) })
	for range 2 {
		if got := receive(t, conn); got != Watchdog {
			t.Fatalf("notification %q, want %q", got, Watchdog)
		}
	}
	stop()
	// After the keep-alives queued before stop, silence (a live goroutine
	// would send every 20ms, never 500ms of it).
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
		if err != nil || string(buf[:n]) != Watchdog || i > 1000 {
			t.Fatalf("after stop: %q, %v (#%d)", buf[:n], err, i)
		}
	}
	if (Notifier{watchdog: time.Second}).WatchdogInterval() != 0 {
		t.Error("a watchdog without a socket: keep-alives due")
	}
	Notifier{}.StartWatchdog(func(err error) { t.Error(err) })() // starts nothing, stops at once
}
