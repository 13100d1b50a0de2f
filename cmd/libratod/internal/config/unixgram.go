package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os/user"
	"path"
	"strconv"
	"strings"
)

// maxSocketPath is the longest path a Unix socket can be bound at: Linux's
// sun_path holds 108 bytes, the final NUL included.
const maxSocketPath = 107

// maxOwnerID is the largest numeric user or group id accepted.
const maxOwnerID = 1<<31 - 1

// The forms of the unixgram keys, for error messages.
const (
	unixgramModeForm  = `an octal file mode from "0001" to "0777", like "0660"`
	unixgramOwnerForm = `"user:group", "user" or ":group" (names or numeric ids), or "" to leave the owner as it is`
)

// unixgram checks listen.unixgram, listen.unixgram_mode and
// listen.unixgram_owner. It looks no name up: [Listen.UnixgramOwnerIDs]
// does, when the daemon starts.
func (p *problems) unixgram(l *Listen) {
	if s := l.Unixgram; s != "" {
		switch {
		case !path.IsAbs(s):
			p.add("listen.unixgram", fmt.Sprintf(`must be an absolute path like "/run/libratod/statsd.sock", or "" to disable, got %q`, s))
		case len(s) > maxSocketPath:
			p.add("listen.unixgram", fmt.Sprintf("must be at most %d bytes long (the kernel's limit for a socket path), got %d", maxSocketPath, len(s)))
		case strings.HasSuffix(s, "/"):
			p.add("listen.unixgram", fmt.Sprintf("must name a file, not a directory, got %q", s))
		}
	}
	if _, err := parseMode(l.UnixgramMode); err != nil {
		p.add("listen.unixgram_mode", err.Error())
	}
	if _, _, err := splitOwner(l.UnixgramOwner); err != nil {
		p.add("listen.unixgram_owner", err.Error())
	}
}

// UnixgramFileMode returns listen.unixgram_mode as file permission bits, or
// 0 when it is not valid (which Validate reports).
func (l *Listen) UnixgramFileMode() fs.FileMode {
	m, _ := parseMode(l.UnixgramMode)
	return m
}

// UnixgramOwnerIDs resolves listen.unixgram_owner to the user and group ids
// to give the socket file: a numeric part is an id as it is; a name is looked
// up in the system's user or group database (os/user); a part left out is
// -1, which leaves the file's as it is (the process's). A name the system
// does not know is a *FieldError naming the key.
func (l *Listen) UnixgramOwnerIDs() (uid, gid int, err error) {
	const key = "listen.unixgram_owner"
	u, g, err := splitOwner(l.UnixgramOwner)
	if err != nil {
		return -1, -1, &FieldError{Key: key, Problem: err.Error()}
	}
	uid, gid = -1, -1
	if u != "" {
		if uid, err = lookupID(u, "user", func(name string) (string, error) {
			found, err := user.Lookup(name)
			if err != nil {
				return "", err
			}
			return found.Uid, nil
		}); err != nil {
			return -1, -1, &FieldError{Key: key, Problem: err.Error()}
		}
	}
	if g != "" {
		if gid, err = lookupID(g, "group", func(name string) (string, error) {
			found, err := user.LookupGroup(name)
			if err != nil {
				return "", err
			}
			return found.Gid, nil
		}); err != nil {
			return -1, -1, &FieldError{Key: key, Problem: err.Error()}
		}
	}
	return uid, gid, nil
}

// lookupID returns the id that s, a numeric id or a name of the given kind
// ("user" or "group"), stands for; lookup returns a name's id as text.
func lookupID(s, kind string, lookup func(name string) (string, error)) (int, error) {
	if id, ok := numericID(s); ok {
		return id, nil
	}
	text, err := lookup(s)
	var unknownUser user.UnknownUserError
	var unknownGroup user.UnknownGroupError
	switch {
	case errors.As(err, &unknownUser), errors.As(err, &unknownGroup):
		return -1, fmt.Errorf("this system has no %s named %q", kind, s)
	case err != nil:
		return -1, fmt.Errorf("looking up the %s %q: %w", kind, s, err)
	}
	id, ok := numericID(text)
	if !ok {
		return -1, fmt.Errorf("the %s %q has id %q, not a number", kind, s, text)
	}
	return id, nil
}

// parseMode parses an octal file mode such as "0660".
func parseMode(s string) (fs.FileMode, error) {
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil || n == 0 || n > 0o777 {
		return 0, fmt.Errorf("expected %s, got %q", unixgramModeForm, s)
	}
	return fs.FileMode(n), nil
}

// splitOwner splits "user:group" into its parts, either of which may be
// empty, and checks each is a numeric id or a plausible name.
func splitOwner(s string) (u, g string, err error) {
	if s == "" {
		return "", "", nil
	}
	u, g, _ = strings.Cut(s, ":")
	if strings.Contains(g, ":") || u == "" && g == "" || !ownerName(u) || !ownerName(g) {
		return "", "", fmt.Errorf("expected %s, got %q", unixgramOwnerForm, s)
	}
	return u, g, nil
}

// ownerName reports whether s is empty, a numeric id, or a name of letters,
// digits, ".", "_" and "-" not starting with "-" (the portable user and group
// names of POSIX), at most 256 bytes.
func ownerName(s string) bool {
	if _, ok := numericID(s); ok || s == "" {
		return true
	}
	digits := strings.Trim(s, "0123456789") == "" // an id too large
	return !digits && len(s) <= 256 && s[0] != '-' && validChars(s, "._-")
}

// numericID returns s as a user or group id if it is one: decimal digits, at
// most maxOwnerID.
func numericID(s string) (int, bool) {
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	if err != nil || n > maxOwnerID {
		return 0, false
	}
	return n, true
}

// validChars reports whether s holds only ASCII letters, digits and bytes of
// extra.
func validChars(s, extra string) bool {
	for i := range len(s) {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(extra, c) >= 0) {
			return false
		}
	}
	return true
}
