package sdnotifytest

import (
	"fmt"
	"net"
	"path/filepath"
	"runtime"
	"testing"
)

// fatalTB records whether the helper under test failed the test.
type fatalTB struct {
	testing.TB
	failed bool
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(string, ...any) {
	f.failed = true
	runtime.Goexit()
}

// fails reports whether fn fails the test it is given.
func fails(t *testing.T, fn func(tb testing.TB)) bool {
	tb := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(tb)
	}()
	<-done
	return tb.failed
}

func send(t *testing.T, sock string, msgs ...string) {
	t.Helper()
	c, err := net.Dial("unixgram", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, m := range msgs {
		if _, err := fmt.Fprint(c, m); err != nil {
			t.Fatal(err)
		}
	}
}

func TestListenReceiveQuiet(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	conn := Listen(t, sock)
	send(t, sock, "READY=1\nSTATUS=up", "WATCHDOG=1", "WATCHDOG=1")
	if got := Receive(t, conn); got != "READY=1\nSTATUS=up" {
		t.Errorf("received %q", got)
	}
	if fails(t, func(tb testing.TB) { Quiet(tb, conn, "WATCHDOG=1") }) {
		t.Error("Quiet failed on allowed keep-alives")
	}
	send(t, sock, "WATCHDOG=1", "STOPPING=1")
	if !fails(t, func(tb testing.TB) { Quiet(tb, conn, "WATCHDOG=1") }) {
		t.Error("Quiet passed a notification it does not allow")
	}
}
