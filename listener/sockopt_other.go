//go:build !linux

package listener

import (
	"errors"
	"net"
	"syscall"
)

// reusePortSupported says whether each UDP reader gets its own SO_REUSEPORT
// socket; elsewhere than on Linux the readers share one socket.
const reusePortSupported = false

// setReusePort is never used where reusePortSupported is false.
func setReusePort(_, _ string, _ syscall.RawConn) error {
	return errors.ErrUnsupported
}

// setReadBuffer sets the socket's receive buffer to size bytes.
func setReadBuffer(c *net.UDPConn, size int) error {
	return c.SetReadBuffer(size)
}

// readBufferSize is not implemented here: the granted size is reported as 0.
func readBufferSize(syscall.Conn) (int, error) {
	return 0, errors.ErrUnsupported
}

// KernelDrops is only implemented on Linux.
func (l *Listener) KernelDrops() (uint64, error) {
	return 0, errors.ErrUnsupported
}

// UDPPortDrops is only implemented on Linux.
func UDPPortDrops(int) (uint64, error) {
	return 0, errors.ErrUnsupported
}
