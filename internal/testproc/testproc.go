// Package testproc holds what tests that run something beside themselves
// (the built daemon, a daemon or a stage on goroutines of the test's own
// process) share: a free loopback port, a buffer it may write to while the
// test reads it, and a bounded wait for a process's exit. It is used only
// by tests.
package testproc

import (
	"bytes"
	"errors"
	"net"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// FreePort returns a loopback TCP port nothing listens on at the time of
// the call.
func FreePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	return port
}

// SafeBuffer is a bytes.Buffer a running process may write to while the
// test reads it. The zero value is an empty buffer ready to use.
type SafeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p to the buffer.
func (s *SafeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what has been written so far.
func (s *SafeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// WaitExit waits for the started cmd, at most 20s, and returns its exit
// code; it fails the test if the wait fails otherwise or times out.
func WaitExit(t testing.TB, cmd *exec.Cmd) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			return 0
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		t.Fatalf("wait: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("daemon did not exit within 20s of SIGTERM")
	}
	return -1
}
