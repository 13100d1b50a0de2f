package listener

import (
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsgSupported says whether datagram readers (UDP, unixgram) can take many
// datagrams per system call.
const mmsgSupported = true

// udpBatchDefault is how many datagrams one read (UDP or unixgram) takes at
// most: recvmmsg fills up to this many slots per system call.
const udpBatchDefault = 32

// mmsghdr is the kernel's struct mmsghdr: one message header and the number of
// bytes received into it. Go pads the struct to the alignment of its largest
// field exactly as C does (64 bytes on 64-bit systems, 32 on 32-bit ones);
// TestMmsghdrLayout checks it.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
}

// mmsgReader reads many datagrams per system call with recvmmsg(2) (x/sys/unix
// has no wrapper for it), through the socket's RawConn so that the runtime's
// poller still handles blocking, deadlines and Close.
type mmsgReader struct {
	raw  syscall.RawConn
	hdrs []mmsghdr    // one per slot, each pointing at its iovec
	iovs []unix.Iovec // one per slot, each pointing at its buffer
	lens []int        // the caller's: bytes received into each slot

	recvFn func(fd uintptr) bool // m.recv, made once: a method value built per read would allocate
	n      int                   // datagrams the last recv got
	err    error                 // error of the last recv
}

// newMmsgReader returns a reader of c into bufs (each non-empty, kept by the
// caller for the reader's life), writing the size of each datagram received to
// the same index of lens.
func newMmsgReader(c syscall.Conn, bufs [][]byte, lens []int) (*mmsgReader, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	m := &mmsgReader{
		raw:  raw,
		hdrs: make([]mmsghdr, len(bufs)),
		iovs: make([]unix.Iovec, len(bufs)),
		lens: lens,
	}
	for i, b := range bufs {
		m.iovs[i].Base = &b[0]
		m.iovs[i].SetLen(len(b))
		m.hdrs[i].hdr.Iov = &m.iovs[i]
		m.hdrs[i].hdr.SetIovlen(1)
	}
	m.recvFn = m.recv
	return m, nil
}

// read blocks until at least one datagram can be read (or the read deadline
// passes, or the socket is closed), then reads as many as are queued, up to one
// per slot. It returns how many slots it filled.
func (m *mmsgReader) read() (int, error) {
	if err := m.raw.Read(m.recvFn); err != nil {
		return 0, err
	}
	if m.err != nil {
		return 0, m.err
	}
	for i := range m.n {
		m.lens[i] = int(m.hdrs[i].len)
	}
	return m.n, nil
}

// recv is the RawConn.Read callback: one non-blocking recvmmsg. It returns
// false, asking the poller to wait for the socket to become readable, when
// nothing is queued.
func (m *mmsgReader) recv(fd uintptr) bool {
	for {
		// The headers, iovecs and buffers are heap memory the reader holds, so
		// they stay put and alive for the call; the kernel writes each header's
		// len and flags, never its pointers.
		n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&m.hdrs[0])), uintptr(len(m.hdrs)),
			unix.MSG_DONTWAIT, 0, 0)
		switch errno {
		case 0:
			m.n, m.err = int(n), nil
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		default:
			m.n, m.err = 0, os.NewSyscallError("recvmmsg", errno)
			return true
		}
	}
}
