package config

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/libratod/libratod/cmd/libratod/internal/config/secrettest"
)

// TestLoadErrorsHideSecrets loads every secrettest case from a file: no
// message may show any four bytes of a secret, and each still says where
// (a line or a key).
func TestLoadErrorsHideSecrets(t *testing.T) {
	for _, tc := range secrettest.Cases() {
		t.Run(tc.Name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "libratod.toml")
			if err := os.WriteFile(path, []byte(tc.File), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path, func(k string) string { return tc.Env[k] })
			if err == nil {
				t.Fatal("no error")
			}
			msg := strings.ReplaceAll(err.Error(), path, "<config>") // the test's path
			if leak := secrettest.Leak(msg); leak != "" {
				t.Fatalf("the message shows %q of a secret:\n%s", leak, msg)
			}
			if _, reason, ok := strings.Cut(msg, "invalid TOML at line "); ok {
				_, reason, _ = strings.Cut(reason, ": ")
				if !slices.ContainsFunc(syntaxReasons(), func(r struct{ prefix, reason string }) bool { return r.reason == reason }) {
					t.Errorf("a syntax error's reason is not one of libratod's own: %q", reason)
				}
			}
			if strings.Contains(msg, "the parser's words are not shown") {
				t.Errorf("no reason of its own for the parser's message (toml upgraded?):\n%s", msg)
			}
			if !strings.Contains(msg, "line ") && !strings.Contains(msg, "librato.") &&
				!strings.Contains(msg, "aggregate.") {
				t.Errorf("the message no longer says where:\n%s", msg)
			}
		})
	}
}

// TestValidateHidesSecrets: Validate, called on a Config built by hand,
// redacts the secrets it holds too.
func TestValidateHidesSecrets(t *testing.T) {
	c := Default()
	c.Librato.Token = secrettest.Token
	c.Librato.Email = secrettest.Email
	c.Librato.API = "x" + secrettest.Token
	c.Librato.CountersAs = secrettest.Email + "y"
	err := c.Validate(false)
	if err == nil {
		t.Fatal("no error")
	}
	if leak := secrettest.Leak(err.Error()); leak != "" {
		t.Fatalf("the message shows %q of a secret:\n%s", leak, err)
	}
	for _, key := range []string{"librato.api", "librato.counters_as"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("the message lost %s:\n%s", key, err)
		}
	}
}

// secretName matches the names of keys that hold credentials.
var secretName = regexp.MustCompile(`(?i)token|email|passw|secret|header|credential|auth|api_?key`)

// TestSecretFieldsAreTagged: every key named like a credential is tagged
// secret:"true" (so that its value is redacted from every message), and
// every tagged field is of a kind the redaction reads.
func TestSecretFieldsAreTagged(t *testing.T) {
	var c Config
	tagged := 0
	for _, s := range settings(&c) {
		name := strings.Join(s.key, ".")
		if secretName.MatchString(s.key[1]) && !s.secret {
			t.Errorf("%s looks like a credential but is not tagged secret:\"true\"", name)
		}
		if s.field.Type() == reflect.TypeFor[Secret]() && !s.secret {
			t.Errorf("%s is a Secret but is not tagged secret:\"true\"", name)
		}
		if !s.secret {
			continue
		}
		tagged++
		ft := s.field.Type()
		if ft.Kind() != reflect.String && (ft.Kind() != reflect.Map || ft.Key().Kind() != reflect.String || ft.Elem().Kind() != reflect.String) {
			t.Errorf("%s is tagged secret but is a %s: only strings and maps of strings are redacted", name, ft)
		}
	}
	if tagged < 2 {
		t.Errorf("%d fields tagged secret, want at least librato.token and librato.email", tagged)
	}
}

// TestRedact checks the redaction of runs of a secret.
func TestRedact(t *testing.T) {
	secrets := []string{"abcdefgh", "xy", "éabcz"}
	for _, tt := range []struct{ in, want string }{
		{`got "abcdefgh"`, `got "[redacted]"`},
		{`got "zzabcdzz"`, `got "zz[redacted]zz"`},
		// Three bytes are ordinary text.
		{`got "abc"`, `got "abc"`},
		// Two runs side by side.
		{`got "efghabcd"`, `got "[redacted]"`},
		// A secret shorter than four bytes: only where quoted whole.
		{`got "xy" and "axyb"`, `got "[redacted]" and "axyb"`},
		// A run cut inside a character takes the whole character.
		{"got \"\u00e9abc\"", `got "[redacted]"`},
		{"got \"\u00a9abc\"", `got "[redacted]"`},
		{`nothing`, `nothing`},
	} {
		if got := redact(tt.in, secrets); got != tt.want {
			t.Errorf("redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestSecretStrings: a secret map's values are secrets, its keys (header
// names) are not; any value a secret key holds counts, whatever its type.
func TestSecretStrings(t *testing.T) {
	for _, tt := range []struct {
		v    any
		keys bool
		want []string
	}{
		{map[string]string{"X-Api-Key": "v1"}, false, []string{"v1"}},
		{map[string]any{"k": []any{"a", int64(12345)}}, true, []string{"k", "a", "12345"}},
		{Secret("tok"), false, []string{"tok"}},
		{true, false, nil},
	} {
		got := secretStrings(tt.v, tt.keys)
		slices.Sort(got)
		slices.Sort(tt.want)
		if !slices.Equal(got, tt.want) {
			t.Errorf("secretStrings(%#v, %t) = %q, want %q", tt.v, tt.keys, got, tt.want)
		}
	}
}
