package config

import (
	"strings"
	"testing"
)

// TestParseErrorsHideSecrets feeds files whose token or email lines are
// malformed: no message may carry any part of either value.
func TestParseErrorsHideSecrets(t *testing.T) {
	const token, email = "zq9xkw8jv7hp3mt", "qqz@kwxj-vy.io"
	files := map[string]string{
		"unquoted token":          "[librato]\ntoken = " + token + "\n",
		"unquoted email":          "[librato]\nemail = " + email + "\n",
		"token with spaces":       "[librato]\ntoken = zq9x kw8jv7hp3mt\n",
		"unterminated":            "[librato]\ntoken = \"" + token + "\n",
		"unterminated multi-line": "[librato]\ntoken = \"\"\"" + token + "\n",
		"bad escape":              "[librato]\ntoken = \"zq9\\xkw8jv7hp3mt\"\n",
		"digits first":            "[librato]\ntoken = 123" + token + "\n",
		"trailing text":           "[librato]\ntoken = \"zq9xkw8\" jv7hp3mt\n",
		"in a list":               "[librato]\ntoken = [" + token + "]\n",
		"in a table":              "[librato]\ntoken = {x = " + token + "}\n",
		"dotted key":              "librato.token = " + token + "\n",
		"quoted key":              "[librato]\n\"token\" = " + token + "\n",
		"like a date":             "[librato]\ntoken = 1979-05-27T" + token + "\n",
		"a number":                "[librato]\ntoken = 98765432109876543210987\n",
		"an integer":              "[librato]\ntoken = 1234567\n",
		"the issue's example":     "[librato]\ntoken = abcdefsecret123\n",
		"error on a later line":   "[librato]\ntoken = \"" + token + "\"\nemail = \"" + email + "\"\nbatch_size = " + token + "\n",
	}
	secrets := []string{token, email, "98765432109876543210987", "1234567", "abcdefsecret123"}
	for name, text := range files {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(text), nil)
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			for _, s := range secrets {
				for i := 0; i+4 <= len(s); i++ {
					if strings.Contains(msg, s[i:i+4]) {
						t.Fatalf("the message shows %q of a secret: %s", s[i:i+4], msg)
					}
				}
				for _, q := range quoted.FindAllString(msg, -1) {
					if q := q[1 : len(q)-1]; q != "" && q != "[redacted]" && strings.Contains(s, q) {
						t.Fatalf("the message quotes %q of a secret: %s", q, msg)
					}
				}
			}
			if !strings.Contains(msg, "line ") {
				t.Errorf("the message no longer says where: %s", msg)
			}
		})
	}
}
