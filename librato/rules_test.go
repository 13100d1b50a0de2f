package librato

import (
	"strings"
	"testing"
)

// TestCheckURLAgreesWithNew checks that CheckURL, which the configuration
// validates with, accepts exactly the URLs the Client accepts, and that its
// errors never quote the URL.
func TestCheckURLAgreesWithNew(t *testing.T) {
	for _, u := range []string{
		"", "https://metrics-api.librato.com", "https://metrics-api.librato.com/", "https://metrics-api.librato.com/v1",
		"https://metrics-api.librato.com/v1/", "https://proxy.example.com/librato", "https://proxy.example.com/librato/v1",
		"http://127.0.0.1:8080", "http://localhost", "http://[::1]:9/x", "http://metrics-api.librato.com",
		"ftp://x.example", "x.example", "https:///v1", "https://[::1", "https://me:s3cret@x.example",
		"https://x.example/?a=b", "https://x.example/#f", "https://x.example/%zz",
	} {
		cerr := CheckURL(u)
		_, nerr := New(Config{API: Tagged, URL: u, Token: "t"})
		if (cerr == nil) != (nerr == nil) {
			t.Errorf("%q: CheckURL: %v; New: %v", u, cerr, nerr)
		}
		if cerr != nil && u != "" && strings.Contains(cerr.Error(), u) {
			t.Errorf("%q: the error quotes the URL: %v", u, cerr)
		}
		if strings.Contains(u, "s3cret") && cerr != nil && strings.Contains(cerr.Error(), "s3cret") {
			t.Errorf("%q: the error quotes the password: %v", u, cerr)
		}
	}
}

// TestCheckAgreesWithSanitize checks that the Check functions accept exactly
// what the sanitizers leave unchanged, so that a configured name is never
// rewritten on the way out.
func TestCheckAgreesWithSanitize(t *testing.T) {
	inputs := []string{"", "a", "app.requests", "web-1:x_y", "a b", "a/b c?d", `a\b`, "...", "-", "_", "all", "ALL",
		"é", "a,b", strings.Repeat("n", 64), strings.Repeat("n", 65), strings.Repeat("n", 255), strings.Repeat("n", 256)}
	for _, tc := range []struct {
		name     string
		check    func(string) error
		sanitize func(string) string
	}{
		{"name", CheckName, SanitizeName},
		{"source", CheckSource, SanitizeSource},
		{"tag name", CheckTagName, SanitizeTagName},
		{"tag value", CheckTagValue, SanitizeTagValue},
	} {
		for _, s := range inputs {
			want := s != "" && tc.sanitize(s) == s
			if got := tc.check(s) == nil; got != want {
				t.Errorf("%s %q: accepted %v, want %v (sanitized %q)", tc.name, s, got, want, tc.sanitize(s))
			}
		}
	}
}
