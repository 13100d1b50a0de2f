package librato

import (
	"strings"
	"testing"
)

func TestSanitize(t *testing.T) {
	long := strings.Repeat("a", 300)
	tests := []struct {
		name string
		fn   func(string) string
		in   string
		want string
	}{
		{"name valid", SanitizeName, "app.req-count:5_x", "app.req-count:5_x"},
		{"name empty", SanitizeName, "", ""},
		{"name spaces and slashes", SanitizeName, "a b/c\\d", "a_b_c_d"},
		{"name multibyte rune is one _", SanitizeName, "café.日本", "caf_.__"},
		{"name invalid utf8 byte is one _ each", SanitizeName, "a\xff\xfeb", "a__b"},
		{"name truncated rune bytes", SanitizeName, "a\xe6\x97", "a__"},
		{"name control and quote", SanitizeName, "a\x00\"\n", "a___"},
		{"name cut at 255", SanitizeName, long, long[:255]},
		{"name cut after replacement", SanitizeName, "é" + long, "_" + long[:254]},
		{"name no letter or digit", SanitizeName, "._-:", ""},
		{"name only non-Latin", SanitizeName, "日本語", ""},
		{"name alnum only past the limit", SanitizeName, strings.Repeat("-", 255) + "a", ""},
		{"name keeps case", SanitizeName, "MyApp", "MyApp"},
		{"source valid", SanitizeSource, "web-01.example.com", "web-01.example.com"},
		{"source reserved all", SanitizeSource, "all", "all_"},
		{"source reserved ALL any case", SanitizeSource, "ALL", "ALL_"},
		{"source containing all is fine", SanitizeSource, "allx", "allx"},
		{"source sanitized to all", SanitizeSource, "all\n", "all_"},
		{"source spaces", SanitizeSource, "web 01", "web_01"},
		{"source cut at 255", SanitizeSource, long, long[:255]},
		{"tag name valid", SanitizeTagName, "env.name:x_y-z", "env.name:x_y-z"},
		{"tag name slash and space", SanitizeTagName, "a/b c?", "a_b_c_"},
		{"tag name cut at 64", SanitizeTagName, long, long[:64]},
		{"tag name empty", SanitizeTagName, "", ""},
		{"tag value valid with space slash question", SanitizeTagValue, "/api/v1 items?x:y_z-1.2", "/api/v1 items?x:y_z-1.2"},
		{"tag value backslash replaced", SanitizeTagValue, `C:\dir`, "C:_dir"},
		{"tag value other punctuation", SanitizeTagValue, "a=b,c#d\"e", "a_b_c_d_e"},
		{"tag value multibyte", SanitizeTagValue, "zürich", "z_rich"},
		{"tag value cut at 255", SanitizeTagValue, long, long[:255]},
		{"tag value spaces only", SanitizeTagValue, "   ", ""},
		{"tag value slashes only", SanitizeTagValue, "//", ""},
	}
	// The append forms apply the same rules: they are what the string forms
	// use.
	appenders := map[string]func([]byte, []byte) []byte{
		"name": AppendName[[]byte], "source": AppendSource[[]byte], "tag name": AppendTagName[[]byte],
		"tag value": AppendTagValue[[]byte],
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.fn(tt.in); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			var app func([]byte, []byte) []byte
			for prefix, fn := range appenders {
				if strings.HasPrefix(tt.name, prefix+" ") {
					app = fn
				}
			}
			if got := string(app([]byte("pre|"), []byte(tt.in))); got != "pre|"+tt.want {
				t.Errorf("append form: got %q, want %q", got, "pre|"+tt.want)
			}
		})
	}
}

func TestAppendDoesNotAllocate(t *testing.T) {
	dst := make([]byte, 0, 1024)
	in := [][]byte{[]byte("app.requests.count"), []byte("caf\xc3\xa9 a b"), []byte("all"), []byte("..."), []byte("x y?z")}
	allocs := testing.AllocsPerRun(100, func() {
		for _, b := range in {
			dst = AppendName(dst[:0], b)
			dst = AppendSource(dst, b)
			dst = AppendTagName(dst, b)
			dst = AppendTagValue(dst, b)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations, want 0", allocs)
	}
}

func TestSanitizeValidDoesNotAllocate(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		_ = SanitizeName("app.requests.count")
		_ = SanitizeTagValue("/api/v1 items")
	})
	if allocs != 0 {
		t.Errorf("sanitizing valid input: %v allocations, want 0", allocs)
	}
}

// checkSanitized checks the invariants of one sanitizer's output for input in.
func checkSanitized(t *testing.T, fn func(string) string, allowed func(byte) bool, limit int, in string) {
	t.Helper()
	out := fn(in)
	if len(out) > limit {
		t.Fatalf("%q -> %q: longer than %d", in, out, limit)
	}
	hasAlnum := false
	for i := 0; i < len(out); i++ {
		if !allowed(out[i]) {
			t.Fatalf("%q -> %q: invalid byte %q", in, out, out[i])
		}
		hasAlnum = hasAlnum || isAlnum(out[i])
	}
	if out != "" && !hasAlnum {
		t.Fatalf("%q -> %q: no letter or digit but not empty", in, out)
	}
	if again := fn(out); again != out {
		t.Fatalf("%q -> %q -> %q: not idempotent", in, out, again)
	}
	if len(out) > len(in)+1 {
		t.Fatalf("%q -> %q: grew", in, out)
	}
}

// addSeeds adds the seed corpus shared by the sanitizer fuzz tests.
func addSeeds(f *testing.F) {
	for _, s := range []string{"", "a", "all", "ALL", "app.requests", "a b/c?d\\e", "é日本\xff", "\x00\n\"", "...",
		strings.Repeat("x", 300), strings.Repeat("é", 200) + "abc"} {
		f.Add(s)
	}
}

func FuzzSanitizeName(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, s string) {
		checkSanitized(t, SanitizeName, isNameByte, maxNameLen, s)
	})
}

func FuzzSanitizeSource(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, s string) {
		checkSanitized(t, SanitizeSource, isNameByte, maxNameLen, s)
		if strings.EqualFold(SanitizeSource(s), reservedSource) {
			t.Fatalf("%q -> reserved source", s)
		}
	})
}

func FuzzSanitizeTagName(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, s string) {
		checkSanitized(t, SanitizeTagName, isNameByte, maxTagNameLen, s)
	})
}

func FuzzSanitizeTagValue(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, s string) {
		checkSanitized(t, SanitizeTagValue, isTagValueByte, maxTagValueLen, s)
	})
}
