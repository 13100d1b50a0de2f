package config

import (
	"errors"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

// testToken is a token value that must never be shown.
const testToken = "tok-3f9a1c0b7e-SECRET"

// examplePath is the documented example, relative to this package.
const examplePath = "../../../../config.example.toml"

// mapEnv returns an env function backed by m.
func mapEnv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// fieldErrors returns the *FieldError values joined in err, failing the test
// if err holds anything else.
func fieldErrors(t *testing.T, err error) []*FieldError {
	t.Helper()
	if err == nil {
		return nil
	}
	list := []error{err}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		list = joined.Unwrap()
	}
	out := make([]*FieldError, 0, len(list))
	for _, e := range list {
		var fe *FieldError
		if !errors.As(e, &fe) {
			t.Fatalf("problem %q (%T) is not a *FieldError", e, e)
		}
		out = append(out, fe)
	}
	return out
}

// keys returns the sorted, de-duplicated keys named by errs.
func keys(errs []*FieldError) []string {
	var out []string
	for _, e := range errs {
		out = append(out, e.Key)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func TestParseEmptyIsDefault(t *testing.T) {
	for _, in := range []string{"", "# nothing\n", "[listen]\n[aggregate]\n[librato]\n[tags]\n[log]\n[metrics]\n[prometheus]\n"} {
		c, err := Parse([]byte(in), nil)
		if err != nil {
			t.Fatalf("Parse(%q): %v", in, err)
		}
		if want := Default(); !reflect.DeepEqual(*c, want) {
			t.Errorf("Parse(%q) =\n%+v\nwant Default() =\n%+v", in, *c, want)
		}
	}
}

func TestParseFull(t *testing.T) {
	data, err := os.ReadFile("testdata/full.toml")
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(data, nil)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := Config{
		Listen: Listen{
			UDP: "0.0.0.0:9000", TCP: "", UDPReaders: 3, ReadBuffer: MiB, MaxLineBytes: KiB,
			TCPIdleTimeout: 2 * time.Minute, TCPMaxConnections: 10,
			Unixgram: "/run/libratod/statsd.sock", UnixgramMode: "0620", UnixgramOwner: "65534:1000",
			ShutdownLinger: 3 * time.Second,
			TagSyntaxes:    []string{"dogstatsd", "graphite"},
		},
		Aggregate: Aggregate{
			Period: time.Minute, Percentiles: []float64{50, 99.9}, GaugeDeltas: false, Prefix: "myapp.web", Shards: 128, MaxSeries: 5000, MaxTimerSamples: 100, MinLevel: "warning", MaxSetMembers: 500, GaugeBaseTTL: 60, ServiceChecks: false, TimestampGrace: 2500 * time.Millisecond,
			MemoryLimit: 512 * MiB,
		},
		Librato: Librato{
			Enabled: false,
			API:     APILegacy, URL: "http://localhost:8080/api", Email: "ops@example.com", Token: "file-token",
			Source: "web-1", BatchSize: 1000, HostTag: false, Timeout: 2500 * time.Millisecond, Concurrency: 1,
			MaxAttempts: 1, ShutdownTimeout: 30 * time.Second, Gzip: true, Backlog: 20000, MaxAge: 30 * time.Minute,
			SourceRegex: `^([^.]+)\.`, Include: []string{"^app"}, Exclude: []string{"debug"}, EventsStream: "deploys", CountersAs: "counter",
			SpoolDir: "/var/lib/libratod/spool", SpoolMaxBytes: 256 * MiB,
		},
		OTLP: OTLP{
			Endpoint: "https://otel.example.com:4318/otlp", Token: "otlp-file-token",
			Headers:     map[string]string{"x-honeycomb-dataset": "statsd"},
			Temporality: TemporalityCumulative, TimersAs: TimersAsSummaryOTLP, ServiceName: "checkout",
			BatchSize: 500, Timeout: 3 * time.Second, Concurrency: 2, MaxAttempts: 3, Gzip: false,
			Backlog: 5000, MaxAge: 20 * time.Minute,
		},
		Tags:    map[string]string{"environment": "production", "region.name": "us east/1"},
		Log:     Log{Level: "debug", Format: "console"},
		Metrics: Metrics{Listen: "", ToLibrato: true},
		Prometheus: Prometheus{
			Listen: "127.0.0.1:9102", MaxSeries: 20000, Expire: 0, TimerAs: TimerAsHistogram,
			Buckets: []float64{0.5, 1, 2.5}, TimerUnitSeconds: true,
		},
	}
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("Parse(full.toml) =\n%#v\nwant\n%#v", *got, want)
	}
	// Every field differs from the default, so the fixture really sets
	// every key (and a key silently ignored would show).
	def := Default()
	for _, s := range settings(got) {
		if reflect.DeepEqual(s.field.Interface(), fieldOf(&def, s.key).Interface()) {
			t.Errorf("full.toml leaves %s at its default", s.key)
		}
	}
}

// fieldOf returns c's field for key.
func fieldOf(c *Config, key toml.Key) reflect.Value {
	for _, s := range settings(c) {
		if s.key.String() == key.String() {
			return s.field
		}
	}
	panic("no setting " + key.String())
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/does-not-exist.toml", nil)
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) error = %v, want os.ErrNotExist", err)
	}
}

// TestParseProblems checks, for each kind of bad input, exactly which keys
// are named and that each problem says something useful.
func TestParseProblems(t *testing.T) {
	tests := []struct {
		name string
		toml string
		env  map[string]string
		keys []string // keys named, sorted
		want []string // substrings of the error text
	}{
		// Syntax and structure.
		{"syntax error", "[listen\nudp = 1", nil, []string{""}, []string{"invalid TOML at line 2"}},
		{"syntax error after key", "[aggregate]\nperiod = = 1\n", nil, []string{"aggregate.period"}, []string{"invalid TOML at line 2"}},
		{"unknown top-level key", "udp = \"127.0.0.1:1\"\n", nil, []string{"udp"}, []string{"udp: unknown key", "[listen]"}},
		{"unknown table", "[listener]\nudp = \"x\"\n", nil, []string{"listener"}, []string{"unknown key"}},
		{"unknown key in table", "[listen]\nudpp = \"127.0.0.1:1\"\n", nil, []string{"listen.udpp"}, []string{"listen.udpp: unknown key", "known: udp, tcp"}},
		{"keys are case-sensitive", "[listen]\nUDP = \"127.0.0.1:1\"\n", nil, []string{"listen.UDP"}, []string{"unknown key"}},
		{"quoted unknown key", "[log]\n\"my key\" = 1\n", nil, []string{`log."my key"`}, []string{"unknown key"}},
		{"table is a value", "listen = 5\n", nil, []string{"listen"}, []string{"expected a table [listen], got an integer"}},
		{"array of tables", "[[metrics]]\nlisten = \"\"\n", nil, []string{"metrics"}, []string{"an array of tables"}},

		// Wrong types: the key and the line are named.
		{"string as integer", "[listen]\nudp = 8125\n", nil, []string{"listen.udp"}, []string{"line 2: expected a string"}},
		{"float as int", "[librato]\nbatch_size = 1.5\n", nil, []string{"librato.batch_size"}, []string{"line 2: expected an integer"}},
		{"string as bool", "[librato]\ngzip = \"yes\"\n", nil, []string{"librato.gzip"}, []string{"expected true or false"}},
		{"int out of range", "[listen]\nudp_readers = 99999999999999999999\n", nil, []string{"listen.udp_readers"}, []string{"out of range"}},
		{"percentiles not a list", "[aggregate]\npercentiles = 99\n", nil, []string{"aggregate.percentiles"}, []string{"expected a list of numbers"}},
		{"percentile a string", "[aggregate]\npercentiles = [90, \"99\"]\n", nil, []string{"aggregate.percentiles"}, []string{"line 2: expected a list of numbers"}},
		{"tag value not a string", "[tags]\nport = 80\n", nil, []string{"tags.port"}, []string{"expected a string"}},
		{"tag value a table", "[tags]\nsub = {a = \"b\"}\n", nil, []string{"tags.sub"}, []string{"expected a string"}},
		{"tags not a table", "tags = [\"a\"]\n", nil, []string{"tags"}, []string{"expected a table [tags]"}},

		// Durations and byte sizes.
		{"duration in words", "[aggregate]\nperiod = \"10 seconds\"\n", nil, []string{"aggregate.period"}, []string{`line 2: expected a duration like "10s", got "10 seconds"`}},
		{"duration as integer", "[librato]\ntimeout = 10\n", nil, []string{"librato.timeout"}, []string{`expected a duration like "10s"`}},
		{"duration as bool", "[librato]\nshutdown_timeout = true\n", nil, []string{"librato.shutdown_timeout"}, []string{`expected a duration`}},
		{"duration as list", "[listen]\ntcp_idle_timeout = [1]\n", nil, []string{"listen.tcp_idle_timeout"}, []string{`expected a duration`}},
		{"byte size unit", "[listen]\nread_buffer = \"8 megs\"\n", nil, []string{"listen.read_buffer"}, []string{`expected a byte size like "8MiB"`}},
		{"byte size fraction", "[listen]\nmax_line_bytes = \"1.5KiB\"\n", nil, []string{"listen.max_line_bytes"}, []string{`expected a byte size`}},
		{"byte size negative", "[listen]\nread_buffer = -1\n", nil, []string{"listen.read_buffer"}, []string{`expected a byte size`}},
		{"byte size float", "[listen]\nread_buffer = 1.5\n", nil, []string{"listen.read_buffer"}, []string{`expected a byte size`}},

		// Validation rules.
		{"no listener", "[listen]\nudp = \"\"\ntcp = \"\"\n", nil, []string{"listen"}, []string{"no listener"}},
		{"udp not host:port", "[listen]\nudp = \"8125\"\n", nil, []string{"listen.udp"}, []string{`expected "host:port"`}},
		{"tcp port not numeric", "[listen]\ntcp = \"127.0.0.1:statsd\"\n", nil, []string{"listen.tcp"}, []string{"port must be a number"}},
		{"tcp port too big", "[listen]\ntcp = \"127.0.0.1:65536\"\n", nil, []string{"listen.tcp"}, []string{"0 to 65535"}},
		{"tcp port empty", "[listen]\ntcp = \"127.0.0.1:\"\n", nil, []string{"listen.tcp"}, []string{"port must be a number"}},
		{"unixgram relative", "[listen]\nunixgram = \"run/statsd.sock\"\n", nil, []string{"listen.unixgram"}, []string{"absolute path", `got "run/statsd.sock"`}},
		{"unixgram too long", "[listen]\nunixgram = \"/" + strings.Repeat("s", 107) + "\"\n", nil, []string{"listen.unixgram"}, []string{"at most 107 bytes", "got 108"}},
		{"unixgram directory", "[listen]\nunixgram = \"/run/libratod/\"\n", nil, []string{"listen.unixgram"}, []string{"not a directory"}},
		{"unixgram mode not octal", "[listen]\nunixgram_mode = \"0680\"\n", nil, []string{"listen.unixgram_mode"}, []string{"octal file mode", `got "0680"`}},
		{"unixgram mode too big", "[listen]\nunixgram_mode = \"1777\"\n", nil, []string{"listen.unixgram_mode"}, []string{`"0777"`, `got "1777"`}},
		{"unixgram mode zero", "[listen]\nunixgram_mode = \"0000\"\n", nil, []string{"listen.unixgram_mode"}, []string{`from "0001"`}},
		{"unixgram mode empty", "[listen]\nunixgram_mode = \"\"\n", nil, []string{"listen.unixgram_mode"}, []string{`got ""`}},
		{"unixgram mode symbolic", "[listen]\nunixgram_mode = \"rw-rw----\"\n", nil, []string{"listen.unixgram_mode"}, []string{"octal"}},
		{"unixgram mode integer", "[listen]\nunixgram_mode = 0o660\n", nil, []string{"listen.unixgram_mode"}, []string{"expected a string"}},
		{"unixgram owner two colons", "[listen]\nunixgram_owner = \"a:b:c\"\n", nil, []string{"listen.unixgram_owner"}, []string{`"user:group"`, `got "a:b:c"`}},
		{"unixgram owner colon only", "[listen]\nunixgram_owner = \":\"\n", nil, []string{"listen.unixgram_owner"}, []string{`got ":"`}},
		{"unixgram owner space", "[listen]\nunixgram_owner = \"app user\"\n", nil, []string{"listen.unixgram_owner"}, []string{`got "app user"`}},
		{"unixgram owner leading dash", "[listen]\nunixgram_owner = \"-x:g\"\n", nil, []string{"listen.unixgram_owner"}, []string{`got "-x:g"`}},
		{"unixgram owner id too big", "[listen]\nunixgram_owner = \":4294967296\"\n", nil, []string{"listen.unixgram_owner"}, []string{`got ":4294967296"`}},
		{"env unixgram relative", "", map[string]string{"LIBRATOD_LISTEN_UNIXGRAM": "statsd.sock"}, []string{"listen.unixgram"}, []string{"absolute path"}},
		{"udp readers negative", "[listen]\nudp_readers = -1\n", nil, []string{"listen.udp_readers"}, []string{"between 0 and 1024"}},
		{"read buffer too big", "[listen]\nread_buffer = \"2GiB\"\n", nil, []string{"listen.read_buffer"}, []string{"between 0 and"}},
		{"spool too small", "[librato]\nspool_max_bytes = \"64KiB\"\n", nil, []string{"librato.spool_max_bytes"}, []string{"between 1MiB and 1024GiB"}},
		{"max line zero", "[listen]\nmax_line_bytes = 0\n", nil, []string{"listen.max_line_bytes"}, []string{"between 1 and"}},
		{"idle timeout zero", "[listen]\ntcp_idle_timeout = \"0s\"\n", nil, []string{"listen.tcp_idle_timeout"}, []string{"more than 0"}},
		{"max connections zero", "[listen]\ntcp_max_connections = 0\n", nil, []string{"listen.tcp_max_connections"}, []string{"between 1 and"}},
		{"linger negative", "[listen]\nshutdown_linger = \"-1s\"\n", nil, []string{"listen.shutdown_linger"}, []string{"between 0 and 5m0s"}},
		{"linger too long", "[listen]\nshutdown_linger = \"1h\"\n", nil, []string{"listen.shutdown_linger"}, []string{"between 0 and 5m0s"}},
		{"period sub-second", "[aggregate]\nperiod = \"500ms\"\n", nil, []string{"aggregate.period"}, []string{"at least 1s"}},
		{"period fractional", "[aggregate]\nperiod = \"1500ms\"\n", nil, []string{"aggregate.period"}, []string{"whole seconds", "1.5s"}},
		{"period negative", "[aggregate]\nperiod = \"-10s\"\n", nil, []string{"aggregate.period"}, []string{"at least 1s"}},
		{"grace above the period", "[aggregate]\nperiod = \"2s\"\ntimestamp_grace = \"2001ms\"\n", nil, []string{"aggregate.timestamp_grace"}, []string{"from 0 (off) to the period (2s), got 2.001s"}},
		{"grace negative", "[aggregate]\ntimestamp_grace = \"-1s\"\n", nil, []string{"aggregate.timestamp_grace"}, []string{"got -1s"}},
		{"percentile 0", "[aggregate]\npercentiles = [0]\n", nil, []string{"aggregate.percentiles"}, []string{"above 0 and at most 100, got 0"}},
		{"percentile 100.5", "[aggregate]\npercentiles = [100.5]\n", nil, []string{"aggregate.percentiles"}, []string{"got 100.5"}},
		{"counters_as counter on tagged", "[librato]\ncounters_as = \"counter\"\n", nil, []string{"librato.counters_as"}, []string{"legacy"}},
		{"counters_as unknown", "[librato]\ncounters_as = \"rate\"\n", nil, []string{"librato.counters_as"}, []string{`got "rate"`}},
		{"min_level unknown", "[aggregate]\nmin_level = \"loud\"\n", nil, []string{"aggregate.min_level"}, []string{`got "loud"`}},
		{"tag_syntaxes unknown", "[listen]\ntag_syntaxes = [\"influxdb\", \"telegraf\"]\n", nil, []string{"listen.tag_syntaxes"},
			[]string{`unknown tag syntax "telegraf"`, `"dogstatsd", "librato", "influxdb", "graphite"`}},
		{"tag_syntaxes not a list", "[listen]\ntag_syntaxes = \"influxdb\"\n", nil, []string{"listen.tag_syntaxes"}, []string{"expected a list of strings"}},
		{"tag_syntaxes env", "", map[string]string{"LIBRATOD_LISTEN_TAG_SYNTAXES": "dogstatsd, librato"}, []string{"listen.tag_syntaxes"}, []string{`unknown tag syntax " librato"`}},
		{"source_regex bad", "[librato]\nsource_regex = \"(\"\n", nil, []string{"librato.source_regex"}, []string{"not a regular expression"}},
		{"source_regex without group", "[librato]\nsource_regex = \"^web\"\n", nil, []string{"librato.source_regex"}, []string{"capture group"}},
		{"include bad", "[librato]\ninclude = [\"ok\", \"[\"]\n", nil, []string{"librato.include"}, []string{"not a regular expression"}},
		{"exclude not a list", "[librato]\nexclude = \"x\"\n", nil, []string{"librato.exclude"}, []string{"expected a list of strings"}},
		{"percentile nan", "[aggregate]\npercentiles = [nan]\n", nil, []string{"aggregate.percentiles"}, []string{"got NaN"}},
		{"percentile duplicate", "[aggregate]\npercentiles = [99, 99.0]\n", nil, []string{"aggregate.percentiles"}, []string{"99 is listed twice"}},
		{"prefix space", "[aggregate]\nprefix = \"my app\"\n", nil, []string{"aggregate.prefix"}, []string{"A-Z a-z 0-9"}},
		{"prefix trailing dot", "[aggregate]\nprefix = \"app.\"\n", nil, []string{"aggregate.prefix"}, []string{`must not end with "."`}},
		{"prefix too long", "[aggregate]\nprefix = \"" + strings.Repeat("a", 254) + "\"\n", nil, []string{"aggregate.prefix"}, []string{"1 to 253"}},
		{"shards too many", "[aggregate]\nshards = 8192\n", nil, []string{"aggregate.shards"}, []string{"between 0 and 4096"}},
		{"max_series negative", "[aggregate]\nmax_series = -1\n", nil, []string{"aggregate.max_series"}, []string{"between 0"}},
		{"max_timer_samples zero", "[aggregate]\nmax_timer_samples = 0\n", nil, []string{"aggregate.max_timer_samples"}, []string{"between 1"}},
		{"backlog negative", "[librato]\nbacklog = -5\n", nil, []string{"librato.backlog"}, []string{"between 0"}},
		{"max_age zero", "[librato]\nmax_age = \"0s\"\n", nil, []string{"librato.max_age"}, nil},
		{"api unknown", "[librato]\napi = \"v2\"\n", nil, []string{"librato.api"}, []string{`"tagged" or "legacy"`}},
		{"url empty", "[librato]\nurl = \"\"\n", nil, []string{"librato.url"}, []string{"required"}},
		{"url scheme", "[librato]\nurl = \"ftp://metrics-api.librato.com\"\n", nil, []string{"librato.url"}, []string{"scheme must be https"}},
		{"url http remote", "[librato]\nurl = \"http://metrics-api.librato.com\"\n", nil, []string{"librato.url"}, []string{"http is allowed only"}},
		{"url relative", "[librato]\nurl = \"metrics-api.librato.com\"\n", nil, []string{"librato.url"}, []string{"scheme must be https"}},
		{"url no host", "[librato]\nurl = \"https:///v1\"\n", nil, []string{"librato.url"}, []string{"with a host"}},
		{"url unparsable", "[librato]\nurl = \"https://[::1\"\n", nil, []string{"librato.url"}, []string{"not a valid URL"}},
		{"url credentials", "[librato]\nurl = \"https://me:pw@metrics-api.librato.com\"\n", nil, []string{"librato.url"}, []string{"must not contain credentials"}},
		{"url query", "[librato]\nurl = \"https://metrics-api.librato.com/?a=b\"\n", nil, []string{"librato.url"}, []string{"query"}},
		{"source chars", "[librato]\nsource = \"web 1\"\n", nil, []string{"librato.source"}, []string{"A-Z a-z 0-9"}},
		{"source all", "[librato]\nsource = \"ALL\"\n", nil, []string{"librato.source"}, []string{"reserved"}},
		{"batch size zero", "[librato]\nbatch_size = 0\n", nil, []string{"librato.batch_size"}, []string{"between 1 and 1000"}},
		{"batch size too big", "[librato]\nbatch_size = 1001\n", nil, []string{"librato.batch_size"}, []string{"got 1001"}},
		{"timeout zero", "[librato]\ntimeout = \"0s\"\n", nil, []string{"librato.timeout"}, []string{"more than 0"}},
		{"concurrency zero", "[librato]\nconcurrency = 0\n", nil, []string{"librato.concurrency"}, []string{"between 1 and"}},
		{"max attempts zero", "[librato]\nmax_attempts = 0\n", nil, []string{"librato.max_attempts"}, []string{"between 1 and"}},
		{"shutdown timeout negative", "[librato]\nshutdown_timeout = \"-1s\"\n", nil, []string{"librato.shutdown_timeout"}, []string{"more than 0"}},
		{"tag name chars", "[tags]\n\"a b\" = \"x\"\n", nil, []string{`tags."a b"`}, []string{"1 to 64"}},
		{"tag name too long", "[tags]\n" + strings.Repeat("n", 65) + " = \"x\"\n", nil, []string{"tags." + strings.Repeat("n", 65)}, []string{"1 to 64"}},
		{"tag value empty", "[tags]\nenv = \"\"\n", nil, []string{"tags.env"}, []string{"value must be 1 to 255"}},
		{"tag value chars", "[tags]\nenv = \"a,b\"\n", nil, []string{"tags.env"}, []string{"value must be"}},
		// What the sender would rewrite is refused, not sent changed.
		{"tag value backslash", "[tags]\nenv = \"a\\\\b\"\n", nil, []string{"tags.env"}, []string{"value must be", `got "a\\b"`}},
		{"tag value no letter", "[tags]\nenv = \"..\"\n", nil, []string{"tags.env"}, []string{"with a letter or digit"}},
		{"tag name no letter", "[tags]\n\"-\" = \"x\"\n", nil, []string{"tags.-"}, []string{"name must be"}},
		{"url v1", "[librato]\nurl = \"https://metrics-api.librato.com/v1/\"\n", nil, []string{"librato.url"}, []string{"without \"/v1\""}},
		{"prefix no letter", "[aggregate]\nprefix = \"_\"\n", nil, []string{"aggregate.prefix"}, []string{"with a letter or digit"}},
		{"events_stream chars", "[librato]\nevents_stream = \"a b\"\n", nil, []string{"librato.events_stream"}, []string{"A-Z a-z 0-9"}},
		{"too many tags", "[tags]\n" + manyTags(50), nil, []string{"tags"}, []string{"at most 49 tags"}},
		{"log level", "[log]\nlevel = \"verbose\"\n", nil, []string{"log.level"}, []string{`"debug", "info", "warn" or "error"`}},
		{"log format", "[log]\nformat = \"text\"\n", nil, []string{"log.format"}, []string{`"json" or "console"`}},
		{"metrics not host:port", "[metrics]\nlisten = \"localhost\"\n", nil, []string{"metrics.listen"}, []string{`expected "host:port"`}},
		{"metrics on tcp address", "[metrics]\nlisten = \"127.0.0.1:8125\"\n", nil, []string{"metrics.listen"}, []string{"also listen.tcp"}},
		{"prometheus not host:port", "[prometheus]\nlisten = \"9102\"\n", nil, []string{"prometheus.listen"}, []string{`expected "host:port"`}},
		{"prometheus on metrics address", "[prometheus]\nlisten = \"127.0.0.1:9125\"\n", nil, []string{"prometheus.listen"}, []string{"also metrics.listen"}},
		{"prometheus on tcp address", "[prometheus]\nlisten = \"127.0.0.1:8125\"\n", nil, []string{"prometheus.listen"}, []string{"also listen.tcp"}},
		{"prometheus max_series negative", "[prometheus]\nmax_series = -1\n", nil, []string{"prometheus.max_series"}, []string{"between 0"}},
		{"prometheus expire negative", "[prometheus]\nexpire = \"-1m\"\n", nil, []string{"prometheus.expire"}, []string{"0 (never) or more"}},
		{"prometheus expire integer", "[prometheus]\nexpire = 300\n", nil, []string{"prometheus.expire"}, []string{`expected a duration`}},
		{"prometheus timer_as", "[prometheus]\ntimer_as = \"gauge\"\n", nil, []string{"prometheus.timer_as"}, []string{`"summary" or "histogram", got "gauge"`}},
		{"prometheus buckets decrease", "[prometheus]\nbuckets = [1, 5, 5, 2]\n", nil, []string{"prometheus.buckets"}, []string{"5 follows 5", "2 follows 5"}},
		{"prometheus buckets infinite", "[prometheus]\nbuckets = [1, inf]\n", nil, []string{"prometheus.buckets"}, []string{"finite", "got +Inf"}},
		{"prometheus buckets nan", "[prometheus]\nbuckets = [nan, 1]\n", nil, []string{"prometheus.buckets"}, []string{"got NaN"}},
		{"prometheus histogram without buckets", "[prometheus]\ntimer_as = \"histogram\"\nbuckets = []\n", nil, []string{"prometheus.buckets"}, []string{"at least one"}},
		{"prometheus unknown key", "[prometheus]\nlisten_addr = \"\"\n", nil, []string{"prometheus.listen_addr"}, []string{"unknown key", "known: listen, max_series"}},
		{"env prometheus buckets", "", map[string]string{"LIBRATOD_PROMETHEUS_BUCKETS": "1,x"}, []string{"prometheus.buckets"}, []string{"LIBRATOD_PROMETHEUS_BUCKETS: expected comma-separated numbers"}},

		// Bad environment values name the key and the variable.
		{"env int", "", map[string]string{"LIBRATOD_LISTEN_UDP_READERS": "four"}, []string{"listen.udp_readers"}, []string{"LIBRATOD_LISTEN_UDP_READERS: expected an integer"}},
		{"env bool", "", map[string]string{"LIBRATOD_LIBRATO_GZIP": "sure"}, []string{"librato.gzip"}, []string{"expected true or false"}},
		{"env duration", "", map[string]string{"LIBRATOD_AGGREGATE_PERIOD": "10"}, []string{"aggregate.period"}, []string{"LIBRATOD_AGGREGATE_PERIOD: expected a duration"}},
		{"env bytes", "", map[string]string{"LIBRATOD_LISTEN_READ_BUFFER": "lots"}, []string{"listen.read_buffer"}, []string{"expected a byte size"}},
		{"env list", "", map[string]string{"LIBRATOD_AGGREGATE_PERCENTILES": "90,,99"}, []string{"aggregate.percentiles"}, []string{"comma-separated numbers"}},
		{"env tags", "", map[string]string{"LIBRATOD_TAGS": "env=prod,oops"}, []string{"tags"}, []string{`got "oops"`}},
		{"env value validated", "", map[string]string{"LIBRATOD_LOG_LEVEL": "loud"}, []string{"log.level"}, []string{`got "loud"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.toml), mapEnv(tt.env))
			if err == nil {
				t.Fatalf("Parse succeeded (%+v), want problems with %q", c, tt.keys)
			}
			if c != nil {
				t.Errorf("Parse returned a Config with its error")
			}
			if got := keys(fieldErrors(t, err)); !slices.Equal(got, tt.keys) {
				t.Errorf("keys named = %q, want %q; error:\n%v", got, tt.keys, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
		})
	}
}

// manyTags returns n valid tag lines.
func manyTags(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString("t" + strings.Repeat("x", i) + " = \"v\"\n")
	}
	return b.String()
}

func TestParseAccepts(t *testing.T) {
	tests := []struct{ name, toml string }{
		{"udp only", "[listen]\ntcp = \"\"\n"},
		{"grace off", "[aggregate]\ntimestamp_grace = \"0s\"\n"},
		{"grace a whole period", "[aggregate]\nperiod = \"1s\"\ntimestamp_grace = \"1s\"\n"},
		{"grace fractional", "[aggregate]\ntimestamp_grace = \"1500ms\"\n"},
		{"tcp only", "[listen]\nudp = \"\"\n"},
		{"all interfaces, port 0", "[listen]\nudp = \":0\"\ntcp = \"[::1]:0\"\n"},
		{"metrics and tcp both on port 0", "[listen]\ntcp = \"127.0.0.1:0\"\n[metrics]\nlisten = \"127.0.0.1:0\"\n"},
		{"no percentiles", "[aggregate]\npercentiles = []\n"},
		{"fractional percentile", "[aggregate]\npercentiles = [99.9, 0.1]\n"},
		{"percentile 100", "[aggregate]\npercentiles = [100]\n"},
		{"whole minutes", "[aggregate]\nperiod = \"2m\"\n"},
		{"http on loopback", "[librato]\nurl = \"http://127.0.0.1:8080\"\n"},
		{"http on localhost", "[librato]\nurl = \"http://localhost\"\n"},
		{"http on ::1", "[librato]\nurl = \"http://[::1]:9/x\"\n"},
		{"appoptics", "[librato]\nurl = \"https://api.appoptics.com\"\n"},
		{"byte size forms", "[listen]\nread_buffer = \"512kib\"\nmax_line_bytes = \"1 KB\"\n"},
		{"49 tags with host tag", "[tags]\n" + manyTags(49)},
		{"50 tags without host tag", "[librato]\nhost_tag = false\n[tags]\n" + manyTags(50)},
		{"tag value with space and slash", "[tags]\npath = \"a/b c?d\"\n"},
		{"inline tables", "listen = {udp = \"127.0.0.1:1\"}\n"},
		{"dotted keys", "listen.udp = \"127.0.0.1:1\"\n"},
		{"unixgram alone", "[listen]\nudp = \"\"\ntcp = \"\"\nunixgram = \"/run/libratod/statsd.sock\"\n"},
		{"unixgram longest path", "[listen]\nunixgram = \"/" + strings.Repeat("s", 106) + "\"\n"},
		{"unixgram mode without leading 0", "[listen]\nunixgram_mode = \"600\"\n"},
		{"unixgram mode 0777", "[listen]\nunixgram_mode = \"0777\"\n"},
		{"unixgram mode 0001", "[listen]\nunixgram_mode = \"0001\"\n"},
		{"unixgram owner user", "[listen]\nunixgram_owner = \"app\"\n"},
		{"unixgram owner user and group", "[listen]\nunixgram_owner = \"www-data:statsd_1.x\"\n"},
		{"unixgram owner group", "[listen]\nunixgram_owner = \":1000\"\n"},
		{"unixgram owner user and colon", "[listen]\nunixgram_owner = \"1000:\"\n"},
		{"unixgram owner ids", "[listen]\nunixgram_owner = \"0:2147483647\"\n"},
		{"prometheus on", "[prometheus]\nlisten = \"127.0.0.1:9102\"\n"},
		{"prometheus on port 0 like metrics", "[metrics]\nlisten = \"127.0.0.1:0\"\n[prometheus]\nlisten = \"127.0.0.1:0\"\n"},
		{"prometheus histogram", "[prometheus]\ntimer_as = \"histogram\"\nbuckets = [0.001, 1e3]\n"},
		{"prometheus summary without buckets", "[prometheus]\nbuckets = []\nexpire = \"0s\"\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Parse([]byte(tt.toml), nil); err != nil {
				t.Errorf("Parse(%q): %v", tt.toml, err)
			}
		})
	}
}

func TestManyProblemsReportedTogether(t *testing.T) {
	_, err := Load("testdata/many-problems.toml", nil)
	errs := fieldErrors(t, err)
	want := []string{
		"aggregate.percentiles", "aggregate.period", "aggregate.prefix",
		"extra",
		"librato.api", "librato.batch_size", "librato.url",
		"listen", "listen.read_buffer", "listen.tag_syntaxes", "listen.tcp_idle_timeout", "listen.tcp_max_connections", "listen.udpp",
		"log.level", "metrics.listen",
	}
	if got := keys(errs); !slices.Equal(got, want) {
		t.Errorf("keys named = %q\nwant %q\nerror:\n%v", got, want, err)
	}
	// percentiles has three problems: 0, 50 twice, 100.
	n := 0
	for _, e := range errs {
		if e.Key == "aggregate.percentiles" {
			n++
		}
	}
	if n != 3 {
		t.Errorf("%d problems with aggregate.percentiles, want 3", n)
	}
	// One line per problem, each starting with its key.
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(errs) {
		t.Fatalf("%d lines for %d problems:\n%v", len(lines), len(errs), err)
	}
	for i, line := range lines {
		if !strings.HasPrefix(line, errs[i].Key+": ") {
			t.Errorf("line %q does not start with its key %q", line, errs[i].Key)
		}
	}
}

func TestValidateToken(t *testing.T) {
	tests := []struct {
		name   string
		token  Secret
		dryRun bool
		want   []string
	}{
		{"no token", "", false, []string{"librato.token"}},
		{"no token, dry run", "", true, nil},
		{"token", testToken, false, nil},
		{"token, dry run", testToken, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			c.Librato.Token = tt.token
			if got := keys(fieldErrors(t, c.Validate(tt.dryRun))); !slices.Equal(got, tt.want) {
				t.Errorf("Validate(%v) keys = %q, want %q", tt.dryRun, got, tt.want)
			}
		})
	}
}

func TestParseDoesNotRequireToken(t *testing.T) {
	c, err := Parse(nil, nil)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	err = c.Validate(false)
	if got := keys(fieldErrors(t, err)); !slices.Equal(got, []string{"librato.token"}) {
		t.Errorf("Validate(false) keys = %q, want only librato.token", got)
	}
	if !strings.Contains(err.Error(), "LIBRATO_TOKEN") {
		t.Errorf("token error does not say how to set it: %v", err)
	}
}

func TestValidateReportsAll(t *testing.T) {
	c := Default()
	c.Listen.UDP, c.Listen.TCP = "", ""
	c.Aggregate.Period = 0
	c.Librato.BatchSize = 0
	c.Log.Format = "xml"
	err := c.Validate(false)
	want := []string{"aggregate.period", "librato.batch_size", "librato.token", "listen", "log.format"}
	if got := keys(fieldErrors(t, err)); !slices.Equal(got, want) {
		t.Errorf("keys = %q, want %q", got, want)
	}
}

func TestEnv(t *testing.T) {
	tests := []struct {
		name  string
		toml  string
		env   map[string]string
		check func(c *Config) bool
	}{
		{"LIBRATO_TOKEN overrides the file", "[librato]\ntoken = \"file\"\n",
			map[string]string{"LIBRATO_TOKEN": "env"}, func(c *Config) bool { return c.Librato.Token == "env" }},
		{"LIBRATO_EMAIL overrides the file", "[librato]\nemail = \"a@file\"\n",
			map[string]string{"LIBRATO_EMAIL": "b@env"}, func(c *Config) bool { return c.Librato.Email == "b@env" }},
		{"empty LIBRATO_TOKEN does not override", "[librato]\ntoken = \"file\"\n",
			map[string]string{"LIBRATO_TOKEN": ""}, func(c *Config) bool { return c.Librato.Token == "file" }},
		{"LIBRATOD_LIBRATO_TOKEN wins over LIBRATO_TOKEN", "",
			map[string]string{"LIBRATO_TOKEN": "generic", "LIBRATOD_LIBRATO_TOKEN": "specific"},
			func(c *Config) bool { return c.Librato.Token == "specific" }},
		{"string", "[listen]\nudp = \"127.0.0.1:1\"\n",
			map[string]string{"LIBRATOD_LISTEN_UDP": "0.0.0.0:2"}, func(c *Config) bool { return c.Listen.UDP == "0.0.0.0:2" }},
		{"int", "", map[string]string{"LIBRATOD_LIBRATO_BATCH_SIZE": "50"}, func(c *Config) bool { return c.Librato.BatchSize == 50 }},
		{"bool", "", map[string]string{"LIBRATOD_AGGREGATE_GAUGE_DELTAS": "false"}, func(c *Config) bool { return !c.Aggregate.GaugeDeltas }},
		{"duration", "", map[string]string{"LIBRATOD_AGGREGATE_PERIOD": "1m"}, func(c *Config) bool { return c.Aggregate.Period == time.Minute }},
		{"byte size", "", map[string]string{"LIBRATOD_LISTEN_READ_BUFFER": "16MiB"}, func(c *Config) bool { return c.Listen.ReadBuffer == 16*MiB }},
		{"list", "", map[string]string{"LIBRATOD_AGGREGATE_PERCENTILES": "50, 99.9"},
			func(c *Config) bool { return slices.Equal(c.Aggregate.Percentiles, []float64{50, 99.9}) }},
		{"string list", "", map[string]string{"LIBRATOD_LISTEN_TAG_SYNTAXES": "dogstatsd,graphite"},
			func(c *Config) bool { return slices.Equal(c.Listen.TagSyntaxes, []string{"dogstatsd", "graphite"}) }},
		{"tags merge with the file's", "[tags]\na = \"file\"\nb = \"file\"\n",
			map[string]string{"LIBRATOD_TAGS": "b=env,c=env"},
			func(c *Config) bool {
				return reflect.DeepEqual(c.Tags, map[string]string{"a": "file", "b": "env", "c": "env"})
			}},
		{"unrelated variables ignored", "", map[string]string{"LIBRATOD_LISTEN": "x", "LIBRATOD_NOPE_UDP": "x"},
			func(c *Config) bool { return reflect.DeepEqual(*c, Default()) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.toml), mapEnv(tt.env))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !tt.check(c) {
				t.Errorf("env %q not applied as expected: %+v", tt.env, *c)
			}
		})
	}
}

// TestEnvCoversEverySetting checks that every key can be set from its
// LIBRATOD_ variable, so a new field of a new type cannot be forgotten.
func TestEnvCoversEverySetting(t *testing.T) {
	text := map[reflect.Type]string{
		reflect.TypeFor[string]():            "x",
		reflect.TypeFor[Secret]():            "x",
		reflect.TypeFor[bool]():              "false",
		reflect.TypeFor[int]():               "7",
		reflect.TypeFor[time.Duration]():     "7s",
		reflect.TypeFor[ByteSize]():          "7KiB",
		reflect.TypeFor[[]float64]():         "7",
		reflect.TypeFor[[]string]():          "x,y",
		reflect.TypeFor[map[string]string](): "x=y",
	}
	def := Default()
	for _, s := range settings(&def) {
		v, ok := text[s.field.Type()]
		if s.field.Kind() == reflect.Bool {
			v = strconv.FormatBool(!s.field.Bool()) // the other value
		}
		if !ok {
			t.Errorf("%s: no test value for type %s", s.key, s.field.Type())
			continue
		}
		env := map[string]string{s.env(): v}
		c := Default()
		if problems := applyEnv(&c, mapEnv(env)); len(problems) > 0 {
			t.Errorf("%s=%q: %v", s.env(), v, problems)
			continue
		}
		if reflect.DeepEqual(c, Default()) {
			t.Errorf("%s=%q changed nothing", s.env(), v)
		}
	}
}

func TestExampleIsDefault(t *testing.T) {
	c, err := Load(examplePath, nil)
	if err != nil {
		t.Fatalf("Load(%s): %v", examplePath, err)
	}
	if want := Default(); !reflect.DeepEqual(*c, want) {
		t.Errorf("example config =\n%+v\nwant Default() =\n%+v", *c, want)
	}
	if err := c.Validate(true); err != nil {
		t.Errorf("example config: Validate(true): %v", err)
	}
	for _, addr := range []string{c.Listen.UDP, c.Listen.TCP} {
		if addr != "127.0.0.1:8125" {
			t.Errorf("example listens on %q, want 127.0.0.1:8125", addr)
		}
	}
}

// TestExampleDocumentsEveryKey checks that every key of Config is set in the
// example file with a comment just above it, so the docs cannot drift.
func TestExampleDocumentsEveryKey(t *testing.T) {
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	md, err := toml.Decode(string(data), &raw)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	var c Config
	all := settings(&c)
	if len(all) < 27 {
		t.Fatalf("settings found only %d keys", len(all))
	}
	for _, s := range all {
		if !md.IsDefined(s.key...) {
			t.Errorf("%s is not in the example file", s.key)
			continue
		}
		if !commentedKey(lines, s.key[0], s.key[1]) {
			t.Errorf("%s has no comment line just above it in the example file", s.key)
		}
	}
	if !md.IsDefined(tagsKey) {
		t.Errorf("[%s] is not in the example file", tagsKey)
	}
}

// commentedKey reports whether "key = " appears in [section] of lines with a
// comment on the line before.
func commentedKey(lines []string, section, key string) bool {
	in := false
	for i, line := range lines {
		if strings.HasPrefix(line, "[") {
			in = line == "["+section+"]"
			continue
		}
		if in && strings.HasPrefix(line, key+" = ") {
			return i > 0 && strings.HasPrefix(lines[i-1], "#")
		}
	}
	return false
}

func TestByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want ByteSize
		ok   bool
	}{
		{"0", 0, true},
		{"1048576", MiB, true},
		{"8MiB", 8 * MiB, true},
		{"512KiB", 512 * KiB, true},
		{"1GiB", GiB, true},
		{"2 mib", 2 * MiB, true},
		{" 64KB ", 64000, true},
		{"3MB", 3e6, true},
		{"1GB", 1e9, true},
		{"10B", 10, true},
		{"", 0, false},
		{"MiB", 0, false},
		{"-1", 0, false},
		{"+1", 0, false},
		{"1.5MiB", 0, false},
		{"8 megs", 0, false},
		{"8TiB", 0, false},
		{"99999999999GiB", 0, false},
		{"99999999999999999999", 0, false},
	}
	for _, tt := range tests {
		var b ByteSize
		err := b.UnmarshalText([]byte(tt.in))
		if (err == nil) != tt.ok || b != tt.want {
			t.Errorf("UnmarshalText(%q) = %d, %v; want %d, ok %v", tt.in, b, err, tt.want, tt.ok)
		}
	}
}

func TestByteSizeString(t *testing.T) {
	tests := []struct {
		in   ByteSize
		want string
	}{
		{0, "0B"}, {1000, "1000B"}, {KiB, "1KiB"}, {64 * KiB, "64KiB"}, {8 * MiB, "8MiB"},
		{1536 * KiB, "1536KiB"}, {2 * GiB, "2GiB"},
	}
	for _, tt := range tests {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("ByteSize(%d).String() = %q, want %q", int64(tt.in), got, tt.want)
		}
		var back ByteSize
		if err := back.UnmarshalText([]byte(tt.want)); err != nil || back != tt.in {
			t.Errorf("UnmarshalText(%q) = %d, %v; want %d", tt.want, back, err, tt.in)
		}
	}
}

// FuzzParse checks that no input makes Parse panic, and that what it
// accepts is valid.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"testdata/full.toml", "testdata/many-problems.toml", examplePath} {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("listen = 5\n[[tags]]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, nil)
		if err != nil {
			if c != nil {
				t.Errorf("Parse returned a Config with an error")
			}
			fieldErrors(t, err)
			return
		}
		if err := c.Validate(true); err != nil {
			t.Errorf("Parse accepted %q but Validate(true) = %v", data, err)
		}
	})
}

// TestOutputsValidation: the [otlp] table and [librato] enabled, each
// problem named by its key; no output at all is refused naming both.
func TestOutputsValidation(t *testing.T) {
	tests := []struct {
		name, file string
		want       []string // keys at fault; none: valid
	}{
		{"librato only (default)", ``, nil},
		{"otlp only", "[librato]\nenabled = false\n[otlp]\nendpoint = \"http://127.0.0.1:4318\"\n", nil},
		{"both", "[otlp]\nendpoint = \"https://otel.example.com\"\ntemporality = \"cumulative\"\ntimers_as = \"summary\"\n", nil},
		{"no output", "[librato]\nenabled = false\n", []string{"librato.enabled"}},
		{"bad endpoint", "[otlp]\nendpoint = \"ftp://x\"\n", []string{"otlp"}},
		{"bad temporality and timers_as", "[otlp]\nendpoint = \"http://127.0.0.1:4318\"\ntemporality = \"both\"\ntimers_as = \"gauge\"\n",
			[]string{"otlp.temporality", "otlp.timers_as"}},
		{"token and Authorization", "[otlp]\nendpoint = \"http://127.0.0.1:4318\"\ntoken = \"abcd1234\"\n[otlp.headers]\nAuthorization = \"Basic eA==\"\n",
			[]string{"otlp.headers"}},
		{"bounds", "[otlp]\nendpoint = \"http://127.0.0.1:4318\"\nbatch_size = 0\nconcurrency = 0\nmax_attempts = 0\nbacklog = -1\ntimeout = \"0s\"\nmax_age = \"0s\"\n",
			[]string{"otlp.backlog", "otlp.batch_size", "otlp.concurrency", "otlp.max_age", "otlp.max_attempts", "otlp.timeout"}},
		{"otlp keys ignored while off", "[otlp]\ntemporality = \"both\"\n", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.file), nil)
			if err == nil {
				err = c.Validate(true)
			}
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected problems: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no problem, want %v", tc.want)
			}
			if got := keys(fieldErrors(t, err)); !slices.Equal(got, tc.want) {
				t.Errorf("keys %v, want %v\n%v", got, tc.want, err)
			}
		})
	}
	c, err := Parse([]byte("[librato]\nenabled = false\n"), nil)
	if err == nil {
		err = c.Validate(true)
	}
	if err == nil || !strings.Contains(err.Error(), "[otlp] endpoint") || !strings.Contains(err.Error(), "[librato] enabled") {
		t.Errorf("no output: the error names both ways out: %v", err)
	}
}
