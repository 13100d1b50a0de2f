// Package sdnotifytest plays systemd's side of the notification protocol
// for tests: it listens on a notification socket and returns what was sent
// to it. It is used only by tests.
package sdnotifytest

import (
	"errors"
	"net"
	"testing"
	"time"
)

// Listen listens like systemd's notification socket at name (a path, or
// "@name" for the abstract namespace); the socket is closed when the test
// ends.
func Listen(t testing.TB, name string) *net.UnixConn {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// Receive returns the next notification datagram on conn, failing the test
// if none comes within 10s.
func Receive(t testing.TB, conn *net.UnixConn) string {
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

// Quiet reads what conn still holds until nothing comes for 500ms, and
// fails the test if any of it is not allowed (the keep-alives a sender
// queued before it stopped) or if it does not fall silent: a sender still
// running every few tens of milliseconds never leaves 500ms of silence.
func Quiet(t testing.TB, conn *net.UnixConn, allowed string) {
	t.Helper()
	buf := make([]byte, 64)
	for i := 0; ; i++ {
		if err := conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		n, err := conn.Read(buf)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return
		}
		if err != nil || string(buf[:n]) != allowed || i > 1000 {
			t.Fatalf("after stop: %q, %v (#%d)", buf[:n], err, i)
		}
	}
}
