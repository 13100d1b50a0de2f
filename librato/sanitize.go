package librato

import (
	"strings"
	"unicode/utf8"
)

// Length limits of the Librato API, in bytes (every allowed character is one
// ASCII byte).
const (
	maxNameLen     = 255
	maxTagNameLen  = 64
	maxTagValueLen = 255
)

// reservedSource is the source name Librato reserves; SanitizeSource maps it to
// reservedSource+"_".
const reservedSource = "all"

// SanitizeName returns s as a valid Librato metric name: each byte outside
// [A-Za-z0-9.:_-] becomes '_', and the result is cut to 255 bytes. A multibyte
// UTF-8 character becomes a single '_'; each byte of invalid UTF-8 becomes one
// '_'. It returns "" when the result would hold no ASCII letter or digit (for
// example "", "...", or a name written only in non-Latin script), since such a
// name is unusable. Librato treats names case-insensitively; the case is kept.
func SanitizeName(s string) string {
	return sanitize(s, maxNameLen, nameChars)
}

// SanitizeSource returns s as a valid Librato source, by the rules of
// SanitizeName. The reserved source "all" (in any case) becomes "all_" (keeping
// the case of s).
func SanitizeSource(s string) string {
	s = sanitize(s, maxNameLen, nameChars)
	if strings.EqualFold(s, reservedSource) {
		s += "_"
	}
	return s
}

// SanitizeTagName returns s as a valid tag name: by the rules of SanitizeName
// ([-.:_A-Za-z0-9]) but cut to 64 bytes. The service lower-cases tag names; the
// case is kept here.
func SanitizeTagName(s string) string {
	return sanitize(s, maxTagNameLen, nameChars)
}

// SanitizeTagValue returns s as a valid tag value: each byte outside
// [-.:_?/A-Za-z0-9 ] (space allowed) becomes '_', multibyte and invalid UTF-8
// as in SanitizeName, cut to 255 bytes; "" when the result holds no ASCII
// letter or digit. The backslash is replaced too: the published pattern is
// ambiguous about it, and a refused value fails the whole request.
func SanitizeTagValue(s string) string {
	return sanitize(s, maxTagValueLen, tagValueChars)
}

// isNameByte reports whether c may appear in a metric name, a source or a tag
// name.
func isNameByte(c byte) bool {
	return isAlnum(c) || c == '.' || c == ':' || c == '_' || c == '-'
}

// isTagValueByte reports whether c may appear in a tag value.
func isTagValueByte(c byte) bool {
	return isNameByte(c) || c == '?' || c == '/' || c == ' '
}

// isAlnum reports whether c is an ASCII letter or digit.
func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// charset is the set of bytes a kind of string may hold.
type charset bool

// The charsets.
const (
	nameChars     charset = false // isNameByte: names, sources, tag names
	tagValueChars charset = true  // isTagValueByte: tag values
)

// allows reports whether c is in the charset.
func (cs charset) allows(c byte) bool {
	if cs == tagValueChars {
		return isTagValueByte(c)
	}
	return isNameByte(c)
}

// sanitize returns s cleaned by appendSanitized. A valid s within the limit is
// returned without allocating.
func sanitize(s string, limit int, cs charset) string {
	clean, alnum := cleanPrefix(s, limit, cs)
	if clean == len(s) {
		if alnum {
			return s
		}
		return ""
	}
	return string(appendSanitized(make([]byte, 0, min(len(s), limit)), s, limit, cs))
}

// cleanPrefix returns the length of the longest prefix of s, at most limit
// bytes, that cs allows, and whether it holds an ASCII letter or digit.
func cleanPrefix[S ~string | ~[]byte](s S, limit int, cs charset) (n int, alnum bool) {
	for n < len(s) && n < limit {
		c := s[n]
		if isAlnum(c) {
			alnum = true
		} else if !cs.allows(c) {
			break
		}
		n++
	}
	return n, alnum
}

// appendSanitized appends s to dst with every byte that cs does not allow
// replaced by '_' (one '_' per UTF-8 character or per invalid byte), cut to
// limit bytes. When the result holds no letter or digit it appends nothing. It
// writes at most min(len(s), limit) bytes and allocates only to grow dst.
func appendSanitized[S ~string | ~[]byte](dst []byte, s S, limit int, cs charset) []byte {
	clean, alnum := cleanPrefix(s, limit, cs)
	start := len(dst)
	dst = append(dst, s[:clean]...)
	for i := clean; i < len(s) && len(dst)-start < limit; {
		c := s[i]
		if c < utf8.RuneSelf {
			if isAlnum(c) {
				alnum = true
			} else if !cs.allows(c) {
				c = '_'
			}
			dst = append(dst, c)
			i++
			continue
		}
		dst = append(dst, '_')
		i += runeSize(s, i)
	}
	if !alnum {
		return dst[:start]
	}
	return dst
}

// runeSize returns the length of the UTF-8 character at s[i], 1 for an invalid
// byte, as utf8.DecodeRuneInString does.
func runeSize[S ~string | ~[]byte](s S, i int) int {
	var b [utf8.UTFMax]byte
	n := copy(b[:], s[i:])
	_, size := utf8.DecodeRune(b[:n])
	return size
}

// AppendName appends name, cleaned as SanitizeName does, to dst and returns the
// extended slice; it appends nothing when SanitizeName would return "". It
// appends at most len(name) bytes and allocates only to grow dst.
func AppendName[S ~string | ~[]byte](dst []byte, name S) []byte {
	return appendSanitized(dst, name, maxNameLen, nameChars)
}

// AppendSource appends s, cleaned as SanitizeSource does, to dst; nothing when
// SanitizeSource would return "". It appends at most len(s)+1 bytes (the
// reserved "all" becomes "all_") and allocates only to grow dst.
func AppendSource[S ~string | ~[]byte](dst []byte, s S) []byte {
	start := len(dst)
	dst = appendSanitized(dst, s, maxNameLen, nameChars)
	if len(dst)-start == len(reservedSource) && strings.EqualFold(string(dst[start:]), reservedSource) {
		dst = append(dst, '_')
	}
	return dst
}

// AppendTagName appends name, cleaned as SanitizeTagName does, to dst; nothing
// when SanitizeTagName would return "". It appends at most len(name) bytes and
// allocates only to grow dst.
func AppendTagName[S ~string | ~[]byte](dst []byte, name S) []byte {
	return appendSanitized(dst, name, maxTagNameLen, nameChars)
}

// AppendTagValue appends v, cleaned as SanitizeTagValue does, to dst; nothing
// when SanitizeTagValue would return "". It appends at most len(v) bytes and
// allocates only to grow dst.
func AppendTagValue[S ~string | ~[]byte](dst []byte, v S) []byte {
	return appendSanitized(dst, v, maxTagValueLen, tagValueChars)
}
