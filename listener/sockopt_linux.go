package listener

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// reusePortSupported says whether each UDP reader gets its own SO_REUSEPORT
// socket, the kernel spreading datagrams over them.
const reusePortSupported = true

// setReusePort is a net.ListenConfig.Control function setting SO_REUSEPORT.
func setReusePort(_, _ string, c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	}); err != nil {
		return err
	}
	return os.NewSyscallError("setsockopt SO_REUSEPORT", serr)
}

// setReadBuffer sets the socket's receive buffer to size bytes. It tries
// SO_RCVBUFFORCE first, which ignores net.core.rmem_max but needs
// CAP_NET_ADMIN, then SO_RCVBUF, which the kernel caps at net.core.rmem_max.
func setReadBuffer(c *net.UDPConn, size int) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, size)
	}); err == nil && serr == nil {
		return nil
	}
	return c.SetReadBuffer(size)
}

// readBufferSize returns the socket's receive buffer size as
// getsockopt(SO_RCVBUF) reports it (on Linux, twice the size set).
func readBufferSize(c syscall.Conn) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var (
		n    int
		serr error
	)
	if err := rc.Control(func(fd uintptr) {
		n, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
	}); err != nil {
		return 0, err
	}
	return n, os.NewSyscallError("getsockopt SO_RCVBUF", serr)
}

// KernelDrops returns the number of datagrams the kernel dropped on the UDP
// port (its receive buffers were full), summed over every socket bound to that
// port in /proc/net/udp and /proc/net/udp6 (so including sockets of other
// processes sharing the port with SO_REUSEPORT). It returns 0 when UDP is not
// bound.
func (l *Listener) KernelDrops() (uint64, error) {
	a, ok := l.UDPAddr().(*net.UDPAddr)
	if !ok {
		return 0, nil
	}
	return UDPPortDrops(a.Port)
}

// UDPPortDrops returns the number of datagrams the kernel dropped because the
// receive buffers of the UDP sockets bound to local port port (of any process,
// in this network namespace) were full, as /proc/net/udp and /proc/net/udp6
// count them. A socket's count ends with the socket. It is only implemented on
// Linux.
func UDPPortDrops(port int) (uint64, error) {
	var total uint64
	for _, name := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		f, err := os.Open(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue // no IPv6
		}
		if err != nil {
			return 0, fmt.Errorf("listener: kernel drops: %w", err)
		}
		n, err := parseUDPDrops(f, port)
		_ = f.Close() // read-only
		if err != nil {
			return 0, fmt.Errorf("listener: kernel drops: %s: %w", name, err)
		}
		total += n
	}
	return total, nil
}
