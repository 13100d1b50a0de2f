// Package secrettest holds configuration files that hold secrets and are
// malformed or wrong, for the tests that load them through the config
// loader, libratod -check and a SIGHUP reload: no output may show any part
// of a secret.
package secrettest

import "strings"

// The secrets the cases hold. Each is distinctive enough that no four bytes
// of it occur in libratod's own words. Token and Email start with letters:
// the TOML lexer quotes a bare word of letters whole.
const (
	Token  = "zqxkwjvhpmt7R3b9"     // the Librato token
	Email  = "qqzkwxjv@vy-hh.io"    // the Librato email (HTTP Basic user)
	Number = "77777777777777777777" // a token that TOML reads as a number (one run of four, "7777", so that the digits of a temporary path or a port rarely look like it)
	Hex    = "0x7f3e9b2dZ"          // a token that looks like a hex number
)

// Secrets returns every secret the cases hold.
func Secrets() []string { return []string{Token, Email, Number, Hex} }

// Case is one configuration that must fail to load: File is its text and
// Env the environment (nil for none).
type Case struct {
	Name string
	File string
	Env  map[string]string
}

// Cases returns the configurations: syntax errors around the token and the
// email written every way TOML allows, values of the wrong type, and
// secrets that end up in another key's value (from the file or the
// environment).
func Cases() []Case {
	const T, E = Token, Email
	f := func(name, file string) Case { return Case{Name: name, File: file} }
	return []Case{
		f("unquoted token", "[librato]\ntoken = "+T+"\n"),
		f("unquoted email", "[librato]\nemail = "+E+"\n"),
		f("inline table token", "librato = { token = "+T+" }\n"),
		f("inline table email", "librato = { url = \"http://127.0.0.1:1\", email = "+E+" }\n"),
		f("inline table no spaces", "librato={token="+T+"}\n"),
		f("dotted key", "librato.token = "+T+"\n"),
		f("dotted key, spaces", "librato . token="+T+"\n"),
		f("dotted quoted key", "\"librato\".\"token\" = "+T+"\n"),
		f("quoted key", "[librato]\n\"token\" = "+T+"\n"),
		f("literal quoted key", "[librato]\n'email' = "+E+"\n"),
		f("token with spaces", "[librato]\ntoken = "+T[:4]+" "+T[4:]+"\n"),
		f("tabs", "[librato]\n\ttoken\t=\t"+T+"\t\n"),
		f("no spaces", "[librato]\ntoken="+T+"\n"),
		f("comment after", "[librato]\ntoken = "+T+" # the token\n"),
		f("unterminated", "[librato]\ntoken = \""+T+"\n"),
		f("unterminated literal", "[librato]\ntoken = '"+T+"\n"),
		f("unterminated multi-line", "[librato]\ntoken = \"\"\""+T+"\n"),
		f("unterminated multi-line literal", "[librato]\ntoken = '''"+T+"\n"),
		f("multi-line, bad escape", "[librato]\ntoken = \"\"\"\n"+T[:8]+"\n\\q"+T[8:]+"\"\"\"\n"),
		f("split over lines", "[librato]\ntoken = \""+T[:8]+"\n"+T[8:]+"\"\n"),
		f("split, unquoted", "[librato]\ntoken = "+T[:8]+"\n"+T[8:]+"\n"),
		f("bad escape", "[librato]\ntoken = \""+T[:4]+"\\"+T[4:]+"\"\n"),
		f("bad \\x escape", "[librato]\ntoken = \"\\x"+T+"\"\n"),
		f("bad \\u escape", "[librato]\ntoken = \"\\u"+T+"\"\n"),
		f("digits first", "[librato]\ntoken = 123"+T+"\n"),
		f("trailing text", "[librato]\ntoken = \""+T[:7]+"\" "+T[7:]+"\n"),
		f("in a list", "[librato]\ntoken = ["+T+"]\n"),
		f("in an inline table", "[librato]\ntoken = {x = "+T+"}\n"),
		f("like a date", "[librato]\ntoken = 1979-05-27T"+T+"\n"),
		f("like a float", "[librato]\ntoken = 9876.5432.109\n"),
		f("out of range", "[librato]\ntoken = "+Number+"\n"),
		f("like hex", "[librato]\ntoken = "+Hex+"\n"),
		f("as a key", "[librato]\n"+T+"\n"),
		f("error on a later line", "[librato]\ntoken = \""+T+"\"\nemail = \""+E+"\"\nbatch_size = "+T+"\n"),
		f("an integer token", "[librato]\ntoken = "+Number[:18]+"\n"),
		f("a float token", "[librato]\ntoken = 9876.54321\n"),
		f("a list token", "[librato]\ntoken = [\""+T+"\", \""+E+"\"]\n"),
		f("a table token", "[librato]\ntoken = { a = \""+T+"\" }\n"),
		f("a date email", "[librato]\nemail = 1987-06-05T04:03:02Z\n"),
		f("token in another key", "[librato]\ntoken = \""+T+"\"\napi = \""+T+"\"\n"),
		f("email in another key", "[librato]\nemail = \""+E+"\"\nsource = \""+E+"\"\nevents_stream = \""+E+"\"\n"),
		f("multi-line token in another key", "[librato]\ntoken = \"\"\"\n"+T[:8]+"\n"+T[8:]+"\"\"\"\napi = \""+T[:8]+"\"\n"),
		f("literal token in another key", "[librato]\ntoken = '"+T+"'\nsource_regex = '("+T+"'\n"),
		f("token in a dotted table", "librato.token = \""+T+"\"\nlibrato.counters_as = \"x"+T+"\"\n"),
		{Name: "env token in another key", File: "", Env: map[string]string{
			"LIBRATOD_LIBRATO_TOKEN": T, "LIBRATOD_LIBRATO_BATCH_SIZE": T}},
		{Name: "env email in another key", File: "", Env: map[string]string{
			"LIBRATO_EMAIL": E, "LIBRATOD_AGGREGATE_PERIOD": E, "LIBRATOD_LIBRATO_API": "x" + E}},
		{Name: "env token, file error", File: "[librato]\nbatch_size = \"" + T + "\"\n", Env: map[string]string{
			"LIBRATO_TOKEN": T}},
	}
}

// Leak returns the first run of four bytes of a secret found in out, or ""
// when out shows none.
func Leak(out string) string {
	for _, s := range Secrets() {
		for i := 0; i+4 <= len(s); i++ {
			if strings.Contains(out, s[i:i+4]) {
				return s[i : i+4]
			}
		}
	}
	return ""
}
