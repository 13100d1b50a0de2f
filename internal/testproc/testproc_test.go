package testproc

import (
	"fmt"
	"net"
	"os/exec"
	"sync"
	"testing"
)

func TestFreePort(t *testing.T) {
	port := FreePort(t)
	ln, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		t.Fatalf("port %s not free: %v", port, err)
	}
	ln.Close()
}

func TestSafeBuffer(t *testing.T) {
	var b SafeBuffer
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fmt.Fprintf(&b, "%d", i)
		}()
		_ = b.String() // read while others write (checked by -race)
	}
	wg.Wait()
	if got := len(b.String()); got != 4 {
		t.Errorf("buffer holds %d bytes, want 4", got)
	}
}

func TestWaitExit(t *testing.T) {
	for _, code := range []int{0, 3} {
		cmd := exec.Command("sh", "-c", fmt.Sprintf("exit %d", code))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if got := WaitExit(t, cmd); got != code {
			t.Errorf("exit code %d, want %d", got, code)
		}
	}
}
