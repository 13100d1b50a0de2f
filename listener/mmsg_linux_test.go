package listener

import (
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestMmsghdrLayout checks that mmsghdr matches the kernel's struct mmsghdr:
// the message header, then an unsigned int, padded to the header's alignment.
func TestMmsghdrLayout(t *testing.T) {
	var m mmsghdr
	hdr, ptr := unsafe.Sizeof(unix.Msghdr{}), unsafe.Sizeof(uintptr(0))
	wantSize := (hdr + 4 + ptr - 1) / ptr * ptr
	if got := unsafe.Offsetof(m.len); got != hdr {
		t.Errorf("len at offset %d, want %d", got, hdr)
	}
	if got := unsafe.Sizeof(m); got != wantSize {
		t.Errorf("size %d, want %d", got, wantSize)
	}
	if ptr == 8 && wantSize != 64 {
		t.Errorf("size %d on a 64-bit system, want 64", wantSize)
	}
}
