//go:build !linux

package listener

import (
	"errors"
	"syscall"
)

// mmsgSupported says whether datagram readers can take many datagrams per
// system call: not here.
const mmsgSupported = false

// udpBatchDefault is 1 where recvmmsg is not available: each read takes one
// datagram.
const udpBatchDefault = 1

// mmsgReader is only implemented on Linux.
type mmsgReader struct{}

// newMmsgReader is only implemented on Linux.
func newMmsgReader(syscall.Conn, [][]byte, []int) (*mmsgReader, error) {
	return nil, errors.ErrUnsupported
}

// read is only implemented on Linux.
func (*mmsgReader) read() (int, error) {
	return 0, errors.ErrUnsupported
}
