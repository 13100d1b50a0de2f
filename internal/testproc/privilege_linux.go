//go:build linux

package testproc

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// childEnv is set, to the test's name, in the environment of a test
// binary that AsNobody or AsRoot runs again: that child runs the test
// itself.
const childEnv = "LIBRATOD_TEST_CHILD"

// Nobody is the user and group id AsNobody runs a test as.
const Nobody = 65534

// AsNobody makes the calling test run as an unprivileged user. As root,
// it runs the test again in a child process as uid and gid Nobody,
// reports the child's result as the test's, and returns true: the caller
// then returns at once. Otherwise (not root, or in that child) it returns
// false and the caller goes on.
func AsNobody(t *testing.T) bool {
	t.Helper()
	if os.Getenv(childEnv) == t.Name() || os.Geteuid() != 0 {
		return false
	}
	// The go command's build directory is root's alone: the child runs
	// a copy in a directory Nobody may read.
	dir, err := os.MkdirTemp("", "libratod-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, filepath.Base(self))
	if err := copyFile(exe, self); err != nil {
		t.Fatalf("copying the test binary: %v", err)
	}
	rerun(t, exe, &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: Nobody, Gid: Nobody}})
	return true
}

// AsRoot makes the calling test run as root, for what only root may do
// (mount a file system, say). As root it returns false and the caller
// goes on. Otherwise it runs the test again in a child process, root of
// its own user and mount namespaces, reports the child's result as the
// test's, and returns true: the caller then returns at once. Where the
// system refuses such namespaces, the test is skipped, saying so.
func AsRoot(t *testing.T) bool {
	t.Helper()
	if os.Getenv(childEnv) == t.Name() || os.Geteuid() == 0 {
		return false
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	rerun(t, self, &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
	})
	return true
}

// rerun runs the test t in the test binary exe with attr, and reports its
// result as t's.
func rerun(t *testing.T, exe string, attr *syscall.SysProcAttr) {
	t.Helper()
	parts := strings.Split(t.Name(), "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "-test.run="+strings.Join(parts, "/"), "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), childEnv+"="+t.Name())
	cmd.Dir = os.TempDir()
	cmd.SysProcAttr = attr
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err != nil && !errors.As(err, &exit) && attr.Cloneflags != 0:
		t.Skipf("cannot run the test as root of a user namespace: %v", err)
	case err != nil:
		t.Fatalf("the test, run again as uid %s: %v\n%s", uidOf(attr), err, out)
	case strings.Contains(string(out), "--- SKIP: "+t.Name()+" "):
		t.Skipf("skipped when run again as uid %s:\n%s", uidOf(attr), out)
	case !strings.Contains(string(out), "--- PASS: "+t.Name()+" "):
		t.Fatalf("the test did not run again as uid %s:\n%s", uidOf(attr), out)
	}
	t.Logf("ran again as uid %s:\n%s", uidOf(attr), out)
}

func uidOf(attr *syscall.SysProcAttr) string {
	if attr.Credential != nil {
		return strconv.Itoa(int(attr.Credential.Uid))
	}
	return "0 of a new user namespace"
}

func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
