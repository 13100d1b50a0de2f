//go:build !unix

package spool

import (
	"errors"
	"fmt"
	"os"
)

// lockDir fails: without flock(2) two processes could share a directory.
func lockDir(dir string) (*os.File, error) {
	return nil, fmt.Errorf("spool: cannot lock %s on this system: %w", dir, errors.ErrUnsupported)
}
