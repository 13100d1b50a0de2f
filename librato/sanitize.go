package librato

import (
	"strings"
	"unicode/utf8"
)

// Length limits of the Librato API, in bytes (every allowed character is one ASCII byte).
const (
	maxNameLen     = 255
	maxTagNameLen  = 64
	maxTagValueLen = 255
)

// reservedSource is the source name Librato reserves; SanitizeSource maps it to reservedSource+"_".
const reservedSource = "all"

// SanitizeName returns s as a valid Librato metric name: each byte outside [A-Za-z0-9.:_-] becomes '_',
// and the result is cut to 255 bytes. A multibyte UTF-8 character becomes a single '_'; each byte of
// invalid UTF-8 becomes one '_'. It returns "" when the result would hold no ASCII letter or digit
// (for example "", "...", or a name written only in non-Latin script), since such a name is unusable.
// Librato treats names case-insensitively; the case is kept.
func SanitizeName(s string) string {
	return sanitize(s, maxNameLen, isNameByte)
}

// SanitizeSource returns s as a valid Librato source, by the rules of SanitizeName. The reserved source
// "all" (in any case) becomes "all_" (keeping the case of s).
func SanitizeSource(s string) string {
	s = sanitize(s, maxNameLen, isNameByte)
	if strings.EqualFold(s, reservedSource) {
		s += "_"
	}
	return s
}

// SanitizeTagName returns s as a valid tag name: by the rules of SanitizeName ([-.:_A-Za-z0-9]) but cut
// to 64 bytes. The service lower-cases tag names; the case is kept here.
func SanitizeTagName(s string) string {
	return sanitize(s, maxTagNameLen, isNameByte)
}

// SanitizeTagValue returns s as a valid tag value: each byte outside [-.:_?/A-Za-z0-9 ] (space allowed)
// becomes '_', multibyte and invalid UTF-8 as in SanitizeName, cut to 255 bytes; "" when the result
// holds no ASCII letter or digit. The backslash is replaced too: the published pattern is ambiguous
// about it, and a refused value fails the whole request.
func SanitizeTagValue(s string) string {
	return sanitize(s, maxTagValueLen, isTagValueByte)
}

// isNameByte reports whether c may appear in a metric name, a source or a tag name.
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

// sanitize returns s cleaned by appendSanitized. A valid s within the limit is returned without allocating.
func sanitize(s string, limit int, allowed func(byte) bool) string {
	clean := 0
	for clean < len(s) && clean < limit && allowed(s[clean]) {
		clean++
	}
	if clean == len(s) {
		if hasAlnum(s) {
			return s
		}
		return ""
	}
	return string(appendSanitized(make([]byte, 0, min(len(s), limit)), s, limit, allowed))
}

// appendSanitized appends s to dst with every byte that allowed rejects replaced by '_' (one '_' per UTF-8
// character or per invalid byte), cut to limit bytes. When the result holds no letter or digit it appends
// nothing. It writes at most min(len(s), limit) bytes and allocates only to grow dst.
func appendSanitized[S ~string | ~[]byte](dst []byte, s S, limit int, allowed func(byte) bool) []byte {
	start := len(dst)
	for i := 0; i < len(s) && len(dst)-start < limit; {
		c := s[i]
		if c < utf8.RuneSelf {
			if !allowed(c) {
				c = '_'
			}
			dst = append(dst, c)
			i++
			continue
		}
		dst = append(dst, '_')
		i += runeSize(s, i)
	}
	if !hasAlnum(dst[start:]) {
		return dst[:start]
	}
	return dst
}

// runeSize returns the length of the UTF-8 character at s[i], 1 for an invalid byte, as
// utf8.DecodeRuneInString does.
func runeSize[S ~string | ~[]byte](s S, i int) int {
	var b [utf8.UTFMax]byte
	n := copy(b[:], s[i:])
	_, size := utf8.DecodeRune(b[:n])
	return size
}

// hasAlnum reports whether s holds an ASCII letter or digit.
func hasAlnum[S ~string | ~[]byte](s S) bool {
	for i := 0; i < len(s); i++ {
		if isAlnum(s[i]) {
			return true
		}
	}
	return false
}

// AppendName appends name, cleaned as SanitizeName does, to dst and returns the extended slice; it appends
// nothing when SanitizeName would return "". It appends at most len(name) bytes and allocates only to grow
// dst.
func AppendName[S ~string | ~[]byte](dst []byte, name S) []byte {
	return appendSanitized(dst, name, maxNameLen, isNameByte)
}

// AppendSource appends s, cleaned as SanitizeSource does, to dst; nothing when SanitizeSource would return
// "". It appends at most len(s)+1 bytes (the reserved "all" becomes "all_") and allocates only to grow dst.
func AppendSource[S ~string | ~[]byte](dst []byte, s S) []byte {
	start := len(dst)
	dst = appendSanitized(dst, s, maxNameLen, isNameByte)
	if len(dst)-start == len(reservedSource) && strings.EqualFold(string(dst[start:]), reservedSource) {
		dst = append(dst, '_')
	}
	return dst
}

// AppendTagName appends name, cleaned as SanitizeTagName does, to dst; nothing when SanitizeTagName would
// return "". It appends at most len(name) bytes and allocates only to grow dst.
func AppendTagName[S ~string | ~[]byte](dst []byte, name S) []byte {
	return appendSanitized(dst, name, maxTagNameLen, isNameByte)
}

// AppendTagValue appends v, cleaned as SanitizeTagValue does, to dst; nothing when SanitizeTagValue would
// return "". It appends at most len(v) bytes and allocates only to grow dst.
func AppendTagValue[S ~string | ~[]byte](dst []byte, v S) []byte {
	return appendSanitized(dst, v, maxTagValueLen, isTagValueByte)
}
