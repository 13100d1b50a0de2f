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

// sanitize replaces every byte of s that allowed rejects with '_' (one '_' per UTF-8 character or per
// invalid byte), cuts the result to limit bytes and returns "" if it holds no letter or digit. A valid
// s within the limit is returned without allocating.
func sanitize(s string, limit int, allowed func(byte) bool) string {
	clean := 0
	for clean < len(s) && clean < limit && allowed(s[clean]) {
		clean++
	}
	out := s[:clean]
	if clean < len(s) && clean < limit {
		b := make([]byte, clean, min(len(s), limit))
		copy(b, s[:clean])
		for i := clean; i < len(s) && len(b) < limit; {
			c := s[i]
			if c < utf8.RuneSelf {
				if !allowed(c) {
					c = '_'
				}
				b = append(b, c)
				i++
				continue
			}
			_, size := utf8.DecodeRuneInString(s[i:])
			b = append(b, '_')
			i += size
		}
		out = string(b)
	}
	for i := 0; i < len(out); i++ {
		if isAlnum(out[i]) {
			return out
		}
	}
	return ""
}
