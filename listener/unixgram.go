package listener

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"syscall"

	"github.com/rs/zerolog"
)

// unixgramSocket is the bound Unix datagram socket, its file and its readers.
type unixgramSocket struct {
	conn    *net.UnixConn
	path    string
	file    fs.FileInfo // the socket file as bound: Stop removes the file at path only if it is still this one
	readers []*datagramReader
}

// sunPathMax is the longest socket path bind takes (sockaddr_un's sun_path
// holds 108 bytes with the final NUL on Linux, 104 on the BSDs and macOS, which
// Go's own check applies).
const sunPathMax = 107

// bindUnixgram binds the Unix datagram socket at cfg.Unixgram (replacing a
// stale socket file there), with the file's owner and mode set before it
// appears at that path, and makes its readers, all sharing the one socket. On
// failure it closes the socket and removes its file.
//
// The socket file is created by bind with a mode that only the process-wide
// umask controls, and setting the mode afterwards through the path would leave
// a window in which the file has the wrong mode, and in which another process
// with write access to the directory could put a symbolic link there that chmod
// and chown would follow. So bindUnixgram binds in a private directory it
// creates beside the path (mode 0700, so no other user can reach or swap the
// file in it), sets the owner (not following links) and the mode there, and
// then gives the socket its name with link(2), which fails rather than follows
// or replaces anything found at the path. The private directory is removed at
// once; the socket, an inode, answers at its new name.
func (l *Listener) bindUnixgram() (*unixgramSocket, error) {
	path := l.cfg.Unixgram
	if !unixgramSupported {
		return nil, fmt.Errorf("listener: unixgram %s: Unix datagram sockets are not supported on %s", path, runtime.GOOS)
	}
	if len(path) > sunPathMax {
		return nil, fmt.Errorf("listener: listen on unixgram %s: the path is %d bytes long, more than the %d a socket address holds",
			path, len(path), sunPathMax)
	}
	if err := removeStaleSocket(path); err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	private, err := os.MkdirTemp(dir, ".") // ".<digits>", mode 0700
	if err != nil {
		if !dirExists(dir) {
			return nil, fmt.Errorf("listener: listen on unixgram %s: the directory %s does not exist", path, dir)
		}
		return nil, fmt.Errorf("listener: listen on unixgram %s: make a private directory to bind in: %w", path, err)
	}
	defer func() { _ = os.RemoveAll(private) }() // holds at most the socket's first name
	tmp := filepath.Join(private, "s")
	if len(tmp) > sunPathMax {
		return nil, fmt.Errorf("listener: listen on unixgram %s: libratod binds the socket in a private directory "+
			"beside it first (%s), a path %d bytes too long for a socket: choose a shorter path or a longer file name",
			path, tmp, len(tmp)-sunPathMax)
	}
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: tmp, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("listener: listen on unixgram %s: %w", path, err)
	}
	s := &unixgramSocket{conn: c, path: path}
	fail := func(err error) (*unixgramSocket, error) {
		s.close(l.cfg.Logger)
		return nil, err
	}
	if l.afterUnixgramBind != nil {
		l.afterUnixgramBind()
	}
	uid, gid := max(l.cfg.UnixgramUID, -1), max(l.cfg.UnixgramGID, -1)
	if uid >= 0 || gid >= 0 {
		// Lchown is fchownat(AT_SYMLINK_NOFOLLOW).
		if err := os.Lchown(tmp, uid, gid); err != nil {
			return fail(fmt.Errorf("listener: unixgram %s: set the owner to %d:%d (-1: unchanged): %w", path, uid, gid, withoutPath(err)))
		}
	}
	mode := l.cfg.UnixgramMode.Perm()
	// chmod follows links, but tmp is the socket just bound, in a directory no
	// other user can write to.
	if err := os.Chmod(tmp, mode); err != nil {
		return fail(fmt.Errorf("listener: unixgram %s: set the mode to %#o: %w", path, uint32(mode), withoutPath(err)))
	}
	file, err := os.Lstat(tmp)
	if err != nil {
		return fail(fmt.Errorf("listener: unixgram %s: %w", path, err))
	}
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fail(fmt.Errorf("listener: unixgram %s: a file appeared at the path while libratod bound the socket; "+
				"it is left as it is", path))
		}
		return fail(fmt.Errorf("listener: unixgram %s: give the socket its name: %w", path, err))
	}
	s.file = file // close removes the file at path only if it is still this one

	// The kernel bounds what a Unix datagram socket holds by a number of
	// datagrams (net.unix.max_dgram_qlen) rather than by its receive buffer:
	// the drain takes what UDP's would when the buffer size is unknown.
	drain := 2 * max(l.cfg.ReadBuffer, DefaultReadBuffer)
	drained := new(atomic.Bool)
	for range l.cfg.UDPReaders {
		r, err := newDatagramReader(Unixgram, c, l.udpBatch, l.cfg.MaxPacketBytes+1)
		if err != nil {
			return fail(fmt.Errorf("listener: unixgram %s: %w", path, err))
		}
		r.drain, r.drained = drain, drained
		s.readers = append(s.readers, r)
	}
	l.cfg.Logger.Info().Str("path", path).Str("mode", fmt.Sprintf("%#o", uint32(mode))).Int("uid", uid).Int("gid", gid).
		Int("readers", len(s.readers)).Msg("listening on unixgram")
	return s, nil
}

// close closes the socket and removes its file, unless another file has taken
// its place since it was bound.
func (s *unixgramSocket) close(log zerolog.Logger) {
	_ = s.conn.Close() // a second close (Stop called twice) fails harmlessly
	if s.file == nil {
		return
	}
	if fi, err := os.Lstat(s.path); err != nil || !os.SameFile(fi, s.file) {
		return // removed already, or someone else's now
	}
	if err := os.Remove(s.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		log.Warn().Err(err).Str("path", s.path).Msg("unixgram: cannot remove the socket file")
	}
}

// removeStaleSocket removes the socket file at path if no process reads it
// (left by a crashed run). Nothing at path is fine; anything else there
// (another kind of file, a socket in use) is an error naming path.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("listener: unixgram %s: %w", path, err)
	case fi.Mode().Type() != fs.ModeSocket:
		return fmt.Errorf("listener: unixgram %s: the path exists and is %s, not a socket; remove it or choose another path",
			path, fileKind(fi.Mode()))
	}
	// A socket some process still reads is not stale: replacing it would
	// silently take that process's traffic.
	c, err := net.Dial("unixgram", path)
	if err == nil {
		_ = c.Close() // nothing was sent
		return fmt.Errorf("listener: unixgram %s: another process is reading this socket", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("listener: unixgram %s: cannot tell whether the socket there is in use: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("listener: unixgram %s: remove the stale socket: %w", path, err)
	}
	return nil
}

// withoutPath returns the error inside a *fs.PathError, whose path would be the
// socket's temporary name, else err.
func withoutPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// fileKind names the type of a file mode for people: "a regular file", "a
// directory", ...
func fileKind(m fs.FileMode) string {
	switch m.Type() {
	case 0:
		return "a regular file"
	case fs.ModeDir:
		return "a directory"
	case fs.ModeSymlink:
		return "a symbolic link"
	case fs.ModeNamedPipe:
		return "a named pipe"
	}
	return "a special file (" + m.Type().String() + ")"
}

// dirExists reports whether dir is a directory.
func dirExists(dir string) bool {
	fi, err := os.Stat(dir)
	return err == nil && fi.IsDir()
}
