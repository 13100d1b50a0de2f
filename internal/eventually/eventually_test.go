package eventually

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestTrue(t *testing.T) {
	var n atomic.Int32
	go func() {
		for range 3 {
			n.Add(1)
		}
	}()
	if !True(10*time.Second, func() bool { return n.Load() == 3 }) {
		t.Error("True: false for a condition that comes to hold")
	}
	if True(20*time.Millisecond, func() bool { return false }) {
		t.Error("True: true for a condition that never holds")
	}
	polls := 0
	if !True(time.Hour, func() bool { polls++; return true }) || polls != 1 {
		t.Errorf("a condition that holds at once was polled %d times, want 1", polls)
	}
}
