package librato

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// MaxNameLen is the longest metric name or source Librato accepts, in bytes.
const MaxNameLen = maxNameLen

// CheckName returns nil if s is a metric name Librato accepts as it is, which
// SanitizeName leaves unchanged: 1 to 255 of A-Z a-z 0-9 and ".:_-", at least
// one letter or digit. Otherwise the error says so, quoting s.
func CheckName(s string) error {
	return check(s, SanitizeName(s), maxNameLen, nameChars)
}

// CheckSource returns nil if s is a source Librato accepts as it is, which
// SanitizeSource leaves unchanged: a name (see CheckName) other than the
// reserved "all".
func CheckSource(s string) error {
	if strings.EqualFold(s, reservedSource) {
		return fmt.Errorf("%q is reserved by Librato", s)
	}
	return check(s, SanitizeSource(s), maxNameLen, nameChars)
}

// CheckTagName returns nil if s is a tag name Librato accepts as it is, which
// SanitizeTagName leaves unchanged: 1 to 64 of A-Z a-z 0-9 and ".:_-", at least
// one letter or digit.
func CheckTagName(s string) error {
	return check(s, SanitizeTagName(s), maxTagNameLen, nameChars)
}

// CheckTagValue returns nil if s is a tag value Librato accepts as it is, which
// SanitizeTagValue leaves unchanged: 1 to 255 of A-Z a-z 0-9 and ".:_-?/ ", at
// least one letter or digit.
func CheckTagValue(s string) error {
	return check(s, SanitizeTagValue(s), maxTagValueLen, tagValueChars)
}

// check returns nil if s is not empty and its sanitized form is s itself.
func check(s, sanitized string, limit int, cs charset) error {
	if s != "" && s == sanitized {
		return nil
	}
	return fmt.Errorf("must be 1 to %d of A-Z a-z 0-9 and %q, with a letter or digit, got %q", limit, cs.extra(), s)
}

// extra returns the bytes cs allows besides ASCII letters and digits, in byte
// order.
func (cs charset) extra() string {
	var b []byte
	for c := byte(' '); c < 0x7f; c++ {
		if !isAlnum(c) && cs.allows(c) {
			b = append(b, c)
		}
	}
	return string(b)
}

// CheckURL returns nil if raw is a base URL the Client accepts (Config.URL),
// and otherwise an error saying why. The error never quotes raw, which may hold
// credentials.
func CheckURL(raw string) error {
	_, err := baseURL(raw)
	return err
}

// baseURL checks the base URL and returns it without a trailing slash; its
// errors never quote raw.
func baseURL(raw string) (string, error) {
	const like = `"https://metrics-api.librato.com"`
	if raw == "" {
		return "", errors.New("required, like " + like)
	}
	u, err := url.Parse(raw)
	if err != nil {
		// Not err: its text quotes parts of the URL.
		return "", errors.New("not a valid URL; expected one like " + like)
	}
	if u.User != nil {
		return "", errors.New("must not contain credentials: set the email and the token instead")
	}
	switch u.Scheme {
	case "https":
	case "http":
		switch u.Hostname() {
		case "127.0.0.1", "localhost", "::1":
		default:
			return "", errors.New("http is allowed only for 127.0.0.1, localhost and [::1]: the token would travel in clear; use https")
		}
	default:
		return "", fmt.Errorf("scheme must be https, got %q", u.Scheme)
	}
	if u.Host == "" {
		return "", errors.New("must be an absolute URL with a host, like " + like)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", errors.New("must not have a query or a fragment")
	}
	s := strings.TrimRight(u.String(), "/")
	if strings.HasSuffix(s, "/v1") {
		return "", errors.New(`give the base URL, without "/v1" (it is added to each request)`)
	}
	return s, nil
}
