package config

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func TestDescribe(t *testing.T) {
	tests := []struct {
		name    string
		toml    string
		env     map[string]string
		want    []string
		notWant []string
	}{
		{
			name: "defaults with a token",
			env:  map[string]string{"LIBRATO_TOKEN": testToken},
			want: []string{
				"udp: 127.0.0.1:8125 (readers: one per CPU, read buffer: 32MiB)\n",
				"tcp: 127.0.0.1:8125 (max line: 64KiB, idle timeout: 1m0s, max connections: 1024)\n",
				"unixgram: disabled\n",
				"tag syntaxes: dogstatsd,librato,influxdb,graphite\n",
				"api: tagged\n",
				"url: https://metrics-api.librato.com\n",
				"period: 10s\n",
				"percentiles: 90, 95, 99\n",
				"batch size: 300\n",
				"global tags: none\n",
				"host tag: on\n",
				"metrics: 127.0.0.1:9125\n",
				"prometheus: disabled\n",
				"email: empty\n",
				"token: set\n",
			},
			notWant: []string{"source:"},
		},
		{
			name: "tag syntaxes",
			toml: "[listen]\ntag_syntaxes = [\"graphite\", \"dogstatsd\"]\n",
			want: []string{"tag syntaxes: dogstatsd,graphite\n"},
		},
		{
			name: "no tag syntaxes",
			toml: "[listen]\ntag_syntaxes = []\n",
			want: []string{"tag syntaxes: none\n"},
		},
		{
			name: "no token",
			want: []string{"token: empty\n"},
		},
		{
			name: "prometheus summary",
			toml: "[aggregate]\nmax_series = 77\n[prometheus]\nlisten = \"127.0.0.1:9102\"\n",
			want: []string{"prometheus: 127.0.0.1:9102 (timers: summary, values as received; 77 series (0: none); expire: 5m0s)\n"},
		},
		{
			name: "prometheus histogram",
			toml: "[prometheus]\nlisten = \"127.0.0.1:9102\"\ntimer_as = \"histogram\"\nbuckets = [1, 2.5]\n" +
				"timer_unit_seconds = true\nmax_series = 5\nexpire = \"0s\"\n",
			want: []string{"prometheus: 127.0.0.1:9102 (timers: histogram [1, 2.5], values / 1000 (ms to s); 5 series (0: none); expire: never)\n"},
		},
		{
			name: "unixgram, owner left",
			toml: "[listen]\nunixgram = \"/run/libratod/statsd.sock\"\n",
			want: []string{"unixgram: /run/libratod/statsd.sock (mode: 0660, owner: libratod's user and group)\n"},
		},
		{
			name: "unixgram with mode and owner",
			toml: "[listen]\nunixgram = \"/s.sock\"\nunixgram_mode = \"0600\"\nunixgram_owner = \"app:1000\"\n",
			want: []string{"unixgram: /s.sock (mode: 0600, owner: app:1000)\n"},
		},
		{
			name: "legacy, tags, disabled listeners",
			toml: `
[listen]
tcp = ""
udp_readers = 2
[aggregate]
percentiles = []
period = "1m"
prefix = "app"
shards = 16
[librato]
api = "legacy"
url = "http://localhost:8080"
email = "me@example.com"
token = "` + testToken + `"
batch_size = 7
[tags]
region = "eu"
env = "prod"
[metrics]
listen = ""
`,
			want: []string{
				"udp: 127.0.0.1:8125 (readers: 2,",
				"tcp: disabled\n",
				"period: 1m0s\n",
				"percentiles: none\n",
				"prefix: app\n",
				"shards: 16\n",
				"api: legacy\n",
				"url: http://localhost:8080\n",
				"source: host name\n",
				"batch size: 7\n",
				"global tags: env=prod, region=eu (ignored by the legacy API)\n",
				"metrics: disabled\n",
				"email: set\n",
				"token: set\n",
			},
			notWant: []string{"me@example.com", "host tag:"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.toml), mapEnv(tt.env))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			var b strings.Builder
			c.Describe(&b)
			out := b.String()
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("Describe output lacks %q:\n%s", w, out)
				}
			}
			for _, w := range append(tt.notWant, testToken) {
				if strings.Contains(out, w) {
					t.Errorf("Describe output contains %q:\n%s", w, out)
				}
			}
		})
	}
}

// TestDescribeRedactsURL checks that an (invalid) URL holding credentials is
// not shown with them.
func TestDescribeRedactsURL(t *testing.T) {
	for _, u := range []string{"https://me:" + testToken + "@example.com", "https://" + testToken + "@example.com", "https://[::1" + testToken} {
		c := Default()
		c.Librato.URL = u
		var b strings.Builder
		c.Describe(&b)
		if strings.Contains(b.String(), testToken) {
			t.Errorf("Describe shows the token from url %q:\n%s", u, b.String())
		}
	}
}

// TestTokenNeverInErrors loads bad configurations holding the token, from
// the file and from the environment, and checks no error shows it.
func TestTokenNeverInErrors(t *testing.T) {
	inputs := []string{
		// Every kind of problem at once, token in the file.
		"[librato]\ntoken = \"" + testToken + "\"\nurl = \"ftp://x\"\nbatch_size = 0\napi = \"x\"\n[listen]\nudp = 1\n",
		// The token pasted into the URL, in several broken forms.
		"[librato]\nurl = \"https://me:" + testToken + "@metrics-api.librato.com\"\n",
		"[librato]\nurl = \"http://" + testToken + "@example.com\"\n",
		"[librato]\nurl = \"https://x:" + testToken + "\"\n",
		"[librato]\nurl = \"https://[" + testToken + "\"\n",
		"[librato]\nurl = \"" + testToken + "\"\n",
		"[librato]\nurl = \"%" + testToken + "\"\n",
		// The token as a wrong type.
		"[librato]\ntoken = 5\nemail = []\n",
		// Syntax error after the token.
		"[librato]\ntoken = \"" + testToken + "\"\nbatch_size = = 1\n",
	}
	env := mapEnv(map[string]string{"LIBRATO_TOKEN": testToken, "LIBRATOD_AGGREGATE_PERIOD": "nope"})
	for _, in := range inputs {
		_, err := Parse([]byte(in), env)
		if err == nil {
			t.Errorf("Parse(%q) succeeded, want an error", in)
			continue
		}
		if strings.Contains(err.Error(), testToken) {
			t.Errorf("error shows the token:\n%v", err)
		}
	}
	// And the token rule itself.
	c := Default()
	c.Librato.URL = "https://me:" + testToken + "@example.com"
	if err := c.Validate(false); err == nil || strings.Contains(err.Error(), testToken) {
		t.Errorf("Validate(false) = %v, want an error without the token", err)
	}
}

// TestSecretFormatting checks that printing a Config, however it is done,
// does not show the token.
func TestSecretFormatting(t *testing.T) {
	c := Default()
	c.Librato.Token = testToken
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10.3s"} {
		for _, v := range []any{c, &c, c.Librato, c.Librato.Token} {
			if out := fmt.Sprintf(verb, v); strings.Contains(out, testToken) || strings.Contains(out, fmt.Sprintf("%x", testToken)) {
				t.Errorf("Sprintf(%q, %T) shows the token: %s", verb, v, out)
			}
		}
	}
	out, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), testToken) {
		t.Errorf("json.Marshal shows the token: %s", out)
	}
	if !strings.Contains(string(out), `"Token":"[redacted]"`) {
		t.Errorf("json.Marshal does not show the token as redacted: %s", out)
	}
	if got := fmt.Sprint(c.Librato.Token); got != "[redacted]" {
		t.Errorf("a set token prints as %q, want [redacted]", got)
	}
	if got := fmt.Sprint(Secret("")); got != "" {
		t.Errorf("an empty token prints as %q, want nothing", got)
	}
	if string(c.Librato.Token) != testToken {
		t.Errorf("string(token) = %q, want the value", string(c.Librato.Token))
	}
}
