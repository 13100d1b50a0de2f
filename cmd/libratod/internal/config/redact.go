package config

import (
	"regexp"
	"strings"

	"github.com/BurntSushi/toml"
)

// isSecretKey reports whether key is librato.token or librato.email, the
// keys whose values no message may show, not even in part.
func isSecretKey(key toml.Key) bool {
	return len(key) == 2 && key[0] == "librato" && (key[1] == "token" || key[1] == "email")
}

// secretLine matches a line of TOML text assigning token or email, by a
// bare, quoted or dotted key: `token = `, `"email" =`, `librato.token =`.
var secretLine = regexp.MustCompile(`^\s*(?:(?:librato|"librato"|'librato')\s*\.\s*)?(?:token|email|"token"|"email"|'token'|'email')\s*=(.*)$`)

// secrets finds the lines of data that assign token or email: their line
// numbers (from 1) and the text of each value, without quotes or spaces.
func secrets(data []byte) (lines map[int]bool, values []string) {
	lines = map[int]bool{}
	for i, line := range strings.Split(string(data), "\n") {
		m := secretLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		lines[i+1] = true
		v := strings.Trim(strings.TrimSpace(m[1]), `"'`)
		if v != "" {
			values = append(values, v)
		}
	}
	return lines, values
}

// quoted matches a fragment a parser message quotes: "x" or 'x'.
var quoted = regexp.MustCompile(`"[^"]*"|'[^']*'`)

// redactParseMessage returns msg, the parser's message about line of
// data, fit to show: the parser's own words when the line assigns neither
// token nor email and nothing it quotes overlaps their values, else a
// description that quotes nothing.
func redactParseMessage(msg string, line int, data []byte) string {
	lines, values := secrets(data)
	const generic = "the value of librato.token or librato.email is not valid TOML (not shown; write it in quotes, or use LIBRATO_TOKEN and LIBRATO_EMAIL)"
	if lines[line] {
		return generic
	}
	out := quoted.ReplaceAllStringFunc(msg, func(q string) string {
		for _, v := range values {
			if overlaps(q[1:len(q)-1], v) {
				return `"[redacted]"`
			}
		}
		return q
	})
	for _, v := range values {
		if len(v) >= 4 && strings.Contains(out, v) {
			return generic
		}
	}
	return out
}

// overlaps reports whether a quoted fragment q shares with a secret value
// v a run of at least four characters, or all of the shorter one.
func overlaps(q, v string) bool {
	if q == "" || v == "" {
		return false
	}
	if strings.Contains(v, q) || strings.Contains(q, v) {
		return true
	}
	const run = 4
	for i := 0; i+run <= len(q); i++ {
		if strings.Contains(v, q[i:i+run]) {
			return true
		}
	}
	return false
}
