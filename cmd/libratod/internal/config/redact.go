package config

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// A key of the file whose field is tagged secret:"true" holds a secret: a
// string, or a map[string]string whose values are all secret. No message
// shows a secret's value, nor any run of minSecretRun of its bytes (see
// redact). Tagging a field is all a new secret needs: decoding, the
// environment overrides, Parse and Validate read the tag.
const secretTag = "secret"

// minSecretRun is the shortest run of a secret's bytes that is redacted
// wherever it appears in a message. Four bytes: a shorter run cannot be told
// from ordinary text (three digits or letters occur in any message), while
// four bytes of a 16-byte or longer token tell next to nothing about it. A
// secret shorter than that is redacted where a message quotes it whole
// ("ab"), not in every word that holds its letters.
const minSecretRun = 4

// secretValues returns the values of c's fields tagged secret, not empty.
func (c *Config) secretValues() []string {
	var out []string
	for _, s := range settings(c) {
		if s.secret {
			out = append(out, secretStrings(s.field.Interface(), false)...)
		}
	}
	return out
}

// secretStrings returns the text of every value in v: a string, a number, a
// date, or a list or a table of them (whose keys count too when keys is
// set). It reads what the toml library decodes and Config's secret fields.
func secretStrings(v any, keys bool) []string {
	var out []string
	add := func(s string) {
		if s != "" {
			out = append(out, s)
		}
	}
	switch v := v.(type) {
	case nil, bool:
	case string:
		add(v)
	case Secret:
		add(string(v))
	case time.Time:
		add(v.Format(time.RFC3339Nano))
	case []any:
		for _, e := range v {
			out = append(out, secretStrings(e, true)...)
		}
	case []map[string]any:
		for _, e := range v {
			out = append(out, secretStrings(e, true)...)
		}
	case map[string]any:
		for k, e := range v {
			if keys {
				add(k)
			}
			out = append(out, secretStrings(e, true)...)
		}
	case map[string]string:
		for k, e := range v {
			if keys {
				add(k)
			}
			add(e)
		}
	default:
		add(fmt.Sprint(v))
	}
	return out
}

// redactErrors returns problems with every secret in secrets redacted from
// their text (see redact). A problem that shows none is kept as it is.
func redactErrors(problems []error, secrets []string) []error {
	if len(secrets) == 0 {
		return problems
	}
	out := make([]error, len(problems))
	for i, p := range problems {
		var fe *FieldError
		switch {
		case errors.As(p, &fe) && p == error(fe):
			out[i] = &FieldError{Key: redact(fe.Key, secrets), Problem: redact(fe.Problem, secrets)}
		case redact(p.Error(), secrets) != p.Error():
			out[i] = &FieldError{Problem: redact(p.Error(), secrets)}
		default:
			out[i] = p
		}
	}
	return out
}

// redact returns s with every run of bytes that is part of a secret and at
// least minSecretRun long replaced by "[redacted]", and every secret shorter
// than that that s quotes whole.
func redact(s string, secrets []string) string {
	hide := make([]bool, len(s))
	found := false
	for _, secret := range secrets {
		if secret == "" {
			continue
		}
		if len(secret) < minSecretRun {
			q := strconv.Quote(secret)
			for i := 0; i+len(q) <= len(s); i++ {
				if s[i:i+len(q)] == q {
					found = true
					for j := i + 1; j < i+len(q)-1; j++ {
						hide[j] = true
					}
				}
			}
			continue
		}
		for i := 0; i+minSecretRun <= len(s); i++ {
			n := 0 // the longest run at i that is part of the secret
			for n < len(s)-i && strings.Contains(secret, s[i:i+n+1]) {
				n++
			}
			if n >= minSecretRun {
				found = true
				for j := i; j < i+n; j++ {
					hide[j] = true
				}
			}
		}
	}
	if !found {
		return s
	}
	// Whole characters: a run that starts or ends inside a UTF-8 sequence
	// takes the rest of it.
	for i := 1; i < len(s); i++ {
		if hide[i-1] && !hide[i] && !utf8.RuneStart(s[i]) {
			hide[i] = true
		}
	}
	for i := len(s) - 2; i >= 0; i-- {
		if hide[i+1] && !hide[i] && !utf8.RuneStart(s[i+1]) {
			hide[i] = true
		}
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if !hide[i] {
			b.WriteByte(s[i])
			continue
		}
		if i == 0 || !hide[i-1] {
			b.WriteString(redacted)
		}
	}
	return b.String()
}

// syntaxReasons returns what a message of the toml library (v1.6) says, by
// the text it starts with (or holds, for those that start with the input),
// and what libratod shows instead. The library's messages quote the input
// (a bare word, a number, an escape, a key) and, in a file that does not
// parse, nothing tells which bytes are a secret's: so only these fixed words
// and the position are shown.
func syntaxReasons() []struct{ prefix, reason string } {
	return []struct{ prefix, reason string }{
		{"expected value but found", "expected a value (strings go in quotes: token = \"...\")"},
		{"unexpected EOF", "unexpected end of the file (an unterminated string, array or table?)"},
		{"strings cannot contain newlines", "strings cannot contain newlines (use \"\"\" for a multi-line string)"},
		{"newlines not allowed within inline tables", "newlines are not allowed within inline tables"},
		{"expected a top-level item to end with", "expected a newline or a comment after the value"},
		{"expected end of table array name delimiter", "expected ']]' to end the array of tables' name"},
		{"expected '.' or ']' to end table name", "expected '.' or ']' in the table name"},
		{"unexpected end of table name", "a table name cannot be empty"},
		{"unexpected table separator", "a table name cannot be empty"},
		{"unexpected '=': key name appears blank", "a key cannot be empty"},
		{"unexpected '.': keys cannot start with a '.'", "a key cannot start with '.'"},
		{"unexpected '='", "unexpected '='"},
		{"unexpected '.'", "unexpected '.'"},
		{"expected '.' or '='", "expected '=' after the key"},
		{"unexpected comma", "unexpected comma"},
		{"expected a comma (',') or array terminator", "expected ',' or ']' in the array"},
		{"expected a comma or an inline table terminator", "expected ',' or '}' in the inline table"},
		{"unexpected '\"\"\"\"\"\"'", "too many quotes in a multi-line string"},
		{"unexpected \"''''''\"", "too many quotes in a multi-line string"},
		{"expected two hexadecimal digits after", "invalid \\x escape in a string"},
		{"expected four hexadecimal digits after", "invalid \\u escape in a string"},
		{"expected eight hexadecimal digits after", "invalid \\U escape in a string"},
		{"invalid escape", "invalid escape in a string"},
		{"Escaped character", "invalid escape in a string"},
		{"floats must start with a digit", "a number cannot start with '.'"},
		{"invalid float", "invalid number"},
		{"Invalid float", "invalid number"},
		{"Invalid integer", "invalid number"},
		{"cannot use sign with non-decimal numbers", "invalid number"},
		{"expected a digit", "invalid number"},
		{"not a binary number", "invalid number"},
		{"not an octal number", "invalid number"},
		{"not a hexadecimal number", "invalid number"},
		{" is out of range for ", "number out of range"},
		{" is out of the safe ", "number out of range"},
		{"invalid datetime", "invalid date or time"},
		{"invalid duration", "invalid duration"},
		{"TOML files cannot contain control characters", "TOML files cannot contain control characters"},
		{"invalid UTF-8 byte", "invalid UTF-8"},
		{"files cannot contain NULL bytes", "the file is not UTF-8 (UTF-16?)"},
		{"has already been defined", "a key is defined twice"},
		{"was already created", "a key is defined twice"},
		{"is not a table", "a key is defined as both a value and a table"},
	}
}

// syntaxReason returns what to show for msg, a toml library's message
// about a file that does not parse: fixed words that quote nothing of it.
func syntaxReason(msg string) string {
	for _, r := range syntaxReasons() {
		if strings.HasPrefix(msg, r.prefix) || strings.HasPrefix(r.prefix, " ") && strings.Contains(msg, r.prefix) {
			return r.reason
		}
	}
	return "not valid TOML (the parser's words are not shown: they could quote a secret)"
}

// syntaxKey returns the part of key, the last key the parser read, that
// is a table or a key of the configuration: the parser's key is the file's
// text and could be anything.
func syntaxKey(key string) string {
	var c Config
	var known []string
	for _, s := range settings(&c) {
		known = append(known, s.key[0], s.key.String())
	}
	known = append(known, tagsKey)
	for k := key; k != ""; {
		if slices.Contains(known, k) {
			return k
		}
		i := strings.LastIndexByte(k, '.')
		if i < 0 {
			break
		}
		k = k[:i]
	}
	return ""
}

// isSecretField reports whether the struct field f is tagged secret:"true".
func isSecretField(f reflect.StructField) bool {
	return f.Tag.Get(secretTag) == "true"
}
