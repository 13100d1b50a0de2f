//go:build !linux

package testproc

import (
	"os"
	"testing"
)

// Nobody is the user and group id AsNobody runs a test as.
const Nobody = 65534

// AsNobody, off Linux, lets the calling test go on when it is not root
// and skips it as root: it cannot run itself again without privileges.
func AsNobody(t *testing.T) bool {
	t.Helper()
	if os.Geteuid() == 0 {
		t.Skip("cannot run the test again without root's privileges off Linux")
	}
	return false
}

// AsRoot, off Linux, lets the calling test go on as root and skips it
// otherwise: it cannot run itself again as root of a namespace.
func AsRoot(t *testing.T) bool {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: no user namespaces off Linux")
	}
	return false
}
