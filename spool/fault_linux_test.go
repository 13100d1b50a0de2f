//go:build linux

package spool

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/libratod/libratod/internal/testproc"
)

// tmpfs mounts a tmpfs of the given size (e.g. "64k") on a fresh
// directory and unmounts it when the test ends; it skips the test, saying
// why, where mounting is not permitted (a test that is not root runs
// itself again as root of its own namespaces first: testproc.AsRoot).
func tmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0700"); err != nil {
		t.Skipf("cannot mount a tmpfs (%v): needs root or CAP_SYS_ADMIN", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// filesBytes returns the total size of the spool's files in dir.
func filesBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	for _, pat := range []string{"*" + segSuffix, "*" + ackSuffix} {
		m, _ := filepath.Glob(filepath.Join(dir, pat))
		for _, p := range m {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			n += fi.Size()
		}
	}
	return n
}

func TestDiskFull(t *testing.T) {
	if testproc.AsRoot(t) {
		return // mounts a tmpfs
	}
	dir := tmpfs(t, "64k")
	// Three records of 10 KB a segment: the second segment fills the
	// file system in the middle of its third record (a short write).
	const size = 10_000
	s := open(t, Config{Dir: dir, SegmentBytes: 32 << 10})
	var stored []Record
	var ids []ID
	var err error
	for i := range 100 {
		r := rec(i, size)
		var id ID
		if id, err = s.Append(r); err != nil {
			break
		}
		stored = append(stored, r)
		ids = append(ids, id)
	}
	if err == nil {
		t.Fatal("100 appends of 10 KB fitted in a 64 KiB tmpfs")
	}
	if !errors.Is(err, ErrWrite) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Append on a full disk: %v, want ErrWrite and ENOSPC", err)
	}
	if !strings.Contains(err.Error(), dir) {
		t.Errorf("error %q does not name the file", err)
	}
	t.Logf("%d records stored, then: %v", len(stored), err)
	st := s.Stats()
	if st.WriteErrors != 1 || st.Pending.Records != int64(len(stored)) {
		t.Errorf("stats %+v", st)
	}
	// Nothing of the failed record is left behind.
	if got := filesBytes(t, dir); got != st.Bytes {
		t.Errorf("files hold %d bytes, the spool accounts for %d", got, st.Bytes)
	}
	// Delivering the oldest frees their segment: appends work again.
	taken, err := s.Take(3)
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Ack(ids[:3]...) // may fail to write the ack on the full disk: counted
	sameRecords(t, taken, stored[:3])
	if st := s.Stats(); st.Segments != len(segFiles(t, dir)) {
		t.Errorf("%d segments accounted, %d files", st.Segments, len(segFiles(t, dir)))
	}
	r := rec(1000, size)
	if _, err := s.Append(r); err != nil {
		t.Fatalf("Append after space was freed: %v", err)
	}
	stored = append(stored[3:], r)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := open(t, Config{Dir: dir})
	if st := s2.Stats(); st.CorruptRecords != 0 {
		t.Errorf("the failed append left damage: %+v", st)
	}
	sameRecords(t, takeAll(t, s2, 100), stored)
}

// A full disk while a new segment is created (its header) fails cleanly.
func TestDiskFullAtCreate(t *testing.T) {
	if testproc.AsRoot(t) {
		return // mounts a tmpfs
	}
	dir := tmpfs(t, "64k")
	filler, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	// Fill the file system, leaving room for the lock file only.
	for range 64 {
		if _, err := filler.Write(make([]byte, 4096)); err != nil {
			break
		}
	}
	filler.Close()
	s, err := Open(context.Background(), Config{Dir: dir})
	if err != nil {
		// The lock file did not fit either: the error says so.
		if !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("Open on a full disk: %v", err)
		}
		t.Skip("no room left for the lock file")
	}
	defer s.Close()
	_, err = s.Append(rec(0, 100))
	if !errors.Is(err, ErrWrite) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Append: %v, want ErrWrite and ENOSPC", err)
	}
	if f := segFiles(t, dir); len(f) != 0 {
		t.Errorf("a segment was left behind: %v", f)
	}
	if st := s.Stats(); st.Bytes != 0 || st.Segments != 0 {
		t.Errorf("stats %+v", st)
	}
	os.Remove(filepath.Join(dir, "filler"))
	if _, err := s.Append(rec(0, 100)); err != nil {
		t.Errorf("Append with room again: %v", err)
	}
}

func TestReadOnlyDirectory(t *testing.T) {
	if testproc.AsRoot(t) {
		return // mounts a tmpfs
	}
	mnt := tmpfs(t, "64k")
	dir := filepath.Join(mnt, "spool")
	if err := Check(dir); err != nil {
		t.Fatalf("Check on a writable tmpfs: %v", err)
	}
	if err := unix.Mount("", mnt, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		t.Skipf("cannot remount read-only: %v", err)
	}
	for _, d := range []string{dir, filepath.Join(mnt, "new")} {
		err := Check(d)
		if err == nil || !errors.Is(err, syscall.EROFS) || !strings.Contains(err.Error(), d) {
			t.Errorf("Check(%s) on a read-only file system: %v", d, err)
		}
		_, err = Open(context.Background(), Config{Dir: d})
		if err == nil || !errors.Is(err, syscall.EROFS) {
			t.Errorf("Open(%s) on a read-only file system: %v", d, err)
		}
	}
}

// Without root, a directory without write permission is refused too.
func TestUnwritableDirectoryByPermission(t *testing.T) {
	if testproc.AsNobody(t) {
		return // root bypasses file permissions
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o700) })
	if err := Check(dir); err == nil || !errors.Is(err, os.ErrPermission) {
		t.Errorf("Check: %v, want a permission error", err)
	}
}

// The directory removed under a running spool: the next segment cannot be
// created, Append says so at once.
func TestDirectoryRemoved(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	s := open(t, Config{Dir: dir})
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	_, err := s.Append(rec(0, 10))
	if !errors.Is(err, ErrWrite) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Append: %v, want ErrWrite and ENOENT", err)
	}
	if st := s.Stats(); st.WriteErrors != 1 || st.Segments != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestCheck(t *testing.T) {
	base := t.TempDir()
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		dir     string
		wantErr string
	}{
		{filepath.Join(base, "a", "b"), ""},
		{base, ""},
		{file, "not a directory"},
		{filepath.Join(file, "sub"), "cannot be created"},
		{"", "no directory"},
	} {
		err := Check(tc.dir)
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("Check(%q): %v, want %q", tc.dir, err, tc.wantErr)
		}
	}
	// The probe is gone.
	ents, _ := os.ReadDir(filepath.Join(base, "a", "b"))
	if len(ents) != 0 {
		t.Errorf("Check left %v", ents)
	}
}
