// Package config loads, validates and describes libratod's TOML configuration.
//
// The TOML keys are the user-facing contract; config.example.toml at the
// repository root documents every one of them with its default.
//
// Loading happens in three steps, all done by [Load] and [Parse]:
//
//  1. start from [Default] and decode the file over it (unknown keys and
//     wrong types are problems);
//  2. apply environment overrides (see [Parse]);
//  3. validate everything except the presence of the API token.
//
// The token rule depends on how the daemon runs (a dry run needs no token),
// so the caller checks it afterwards with [Config.Validate]:
//
//	c, err := config.Load(path, os.Getenv)
//	if err == nil {
//		err = c.Validate(dryRun)
//	}
//
// Every problem found is reported, not just the first: errors are an
// [errors.Join] of [*FieldError] values, one line each, each naming its key.
// The token's value never appears in an error or in [Config.Describe].
package config

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/libratod/libratod/parser"
)

// The values of Librato.API.
const (
	APITagged = "tagged" // the tagged measurements API (/v1/measurements)
	APILegacy = "legacy" // the source-based metrics API (/v1/metrics)
)

// Config is libratod's whole configuration. Each field is a TOML table of
// the same name (the toml struct tags are the file's keys). Every key also
// says whether a reload (SIGHUP) applies it: reload:"live", or
// reload:"restart" when it takes effect at the next start (see
// [RestartKeys]).
type Config struct {
	Listen    Listen            `toml:"listen"`
	Aggregate Aggregate         `toml:"aggregate"`
	Librato   Librato           `toml:"librato"`
	Tags      map[string]string `toml:"tags" reload:"live"` // global tags added to every measurement (tagged API)
	Log       Log               `toml:"log"`
	Metrics   Metrics           `toml:"metrics"`
	// Prometheus serves the aggregated StatsD series to Prometheus.
	Prometheus Prometheus `toml:"prometheus"`
}

// Listen configures the StatsD listeners.
type Listen struct {
	UDP               string        `toml:"udp" reload:"restart"`                 // UDP address "host:port"; "" disables
	TCP               string        `toml:"tcp" reload:"restart"`                 // TCP address "host:port"; "" disables
	UDPReaders        int           `toml:"udp_readers" reload:"restart"`         // goroutines reading the UDP socket; 0 means one per CPU
	ReadBuffer        ByteSize      `toml:"read_buffer" reload:"restart"`         // SO_RCVBUF to request on the UDP socket; 0 leaves the system default
	MaxLineBytes      ByteSize      `toml:"max_line_bytes" reload:"restart"`      // longest TCP line accepted
	TCPIdleTimeout    time.Duration `toml:"tcp_idle_timeout" reload:"restart"`    // a TCP connection idle this long is closed
	TCPMaxConnections int           `toml:"tcp_max_connections" reload:"restart"` // TCP connections open at once
	// Unixgram is the absolute path of a Unix datagram socket to receive
	// StatsD datagrams on (a sidecar shares it through a volume); "" disables.
	Unixgram string `toml:"unixgram" reload:"restart"`
	// UnixgramMode is the socket file's mode, an octal string like "0660"
	// (see [Listen.UnixgramFileMode]).
	UnixgramMode string `toml:"unixgram_mode" reload:"restart"`
	// UnixgramOwner is the socket file's owner, "user:group" with names or
	// numeric ids, either part optional (see [Listen.UnixgramOwnerIDs]); ""
	// leaves the process's.
	UnixgramOwner string `toml:"unixgram_owner" reload:"restart"`
	// ShutdownLinger is how long libratod keeps receiving on every listener
	// after SIGTERM, before it drains, flushes and exits: an application
	// stopped at the same time still has its last lines counted. 0 stops
	// reading at once.
	ShutdownLinger time.Duration `toml:"shutdown_linger" reload:"restart"`
	// TagSyntaxes names the tag syntaxes read in StatsD lines (see
	// [parser.TagSyntaxNames]): "dogstatsd" ("|#k:v"), "librato"
	// ("name#k=v"), "influxdb" ("name,k=v") and "graphite" ("name;k=v"). A
	// syntax left out keeps its bytes in the name (sanitized later), or
	// ignores the "|#" field. It can change on reload.
	TagSyntaxes []string `toml:"tag_syntaxes" reload:"live"`
}

// Aggregate configures aggregation.
type Aggregate struct {
	Period      time.Duration `toml:"period" reload:"restart"`       // flush period, whole seconds, at least 1s
	Percentiles []float64     `toml:"percentiles" reload:"live"`     // timer percentiles, each in (0, 100); may be empty
	GaugeDeltas bool          `toml:"gauge_deltas" reload:"restart"` // "+3"/"-3" gauge values change the gauge instead of setting it
	Prefix      string        `toml:"prefix" reload:"live"`          // prepended with "." to every metric name; "" for none
	Shards      int           `toml:"shards" reload:"restart"`       // aggregator lock stripes; 0 means the aggregator's default
	MaxSeries   int           `toml:"max_series" reload:"restart"`   // live series in one period; past it new series are dropped; 0: no bound
	// MaxTimerSamples bounds the values a timer series keeps per period for
	// exact percentiles; past it percentiles come from a bounded estimate.
	MaxTimerSamples int `toml:"max_timer_samples" reload:"restart"`
	// MinLevel drops lines whose "level" tag is below it: "" keeps all,
	// else "debug", "info", "warning", "error" or "critical".
	MinLevel string `toml:"min_level" reload:"live"`
	// MaxSetMembers bounds the distinct members a set keeps exactly per
	// period; past it the count is a HyperLogLog estimate.
	MaxSetMembers int `toml:"max_set_members" reload:"restart"`
	// GaugeBaseTTL is how many periods a gauge's last value is kept for
	// "+n"/"-n" deltas after the gauge was last written.
	GaugeBaseTTL int `toml:"gauge_base_ttl" reload:"restart"`
}

// Librato configures the Librato API client.
type Librato struct {
	API             string        `toml:"api" reload:"restart"`           // APITagged or APILegacy
	URL             string        `toml:"url" reload:"live"`              // API base URL
	Email           string        `toml:"email" reload:"live"`            // account email (HTTP Basic user); may be empty
	Token           Secret        `toml:"token" reload:"live"`            // API token; required unless dry run
	Source          string        `toml:"source" reload:"live"`           // legacy API: default source; "" means the host name (resolved by the caller)
	BatchSize       int           `toml:"batch_size" reload:"live"`       // measurements per POST, 1..1000
	HostTag         bool          `toml:"host_tag" reload:"live"`         // tagged API: add a "host" tag with the host name
	Timeout         time.Duration `toml:"timeout" reload:"live"`          // per request
	Concurrency     int           `toml:"concurrency" reload:"live"`      // POSTs in flight at once
	MaxAttempts     int           `toml:"max_attempts" reload:"live"`     // attempts per request, including the first
	ShutdownTimeout time.Duration `toml:"shutdown_timeout" reload:"live"` // bounded wait for the final flush at SIGTERM
	Gzip            bool          `toml:"gzip" reload:"live"`             // gzip request bodies
	Backlog         int           `toml:"backlog" reload:"live"`          // undelivered measurements kept for later retries; oldest dropped first past it
	MaxAge          time.Duration `toml:"max_age" reload:"live"`          // undelivered data older than this is dropped, not resent
	SourceRegex     string        `toml:"source_regex" reload:"live"`     // capture groups of a matching name become the source, the match leaves the name
	Include         []string      `toml:"include" reload:"live"`          // name patterns to send (all when empty)
	Exclude         []string      `toml:"exclude" reload:"live"`          // name patterns not to send
	EventsStream    string        `toml:"events_stream" reload:"restart"` // annotation stream of DogStatsD events without a "stream" tag; "" ignores events
	CountersAs      string        `toml:"counters_as" reload:"live"`      // "gauge": each period's sum; "counter" (legacy API): a running Librato counter
	// SpoolDir is the directory of the on-disk spool of undelivered
	// requests (package spool); "" keeps them in memory only.
	SpoolDir string `toml:"spool_dir" reload:"restart"`
	// SpoolMaxBytes bounds the spool's files; past it the oldest go first.
	SpoolMaxBytes ByteSize `toml:"spool_max_bytes" reload:"restart"`
}

// Log configures the daemon's own logging.
type Log struct {
	Level  string `toml:"level" reload:"live"`     // "debug", "info", "warn" or "error"
	Format string `toml:"format" reload:"restart"` // "json" or "console"
}

// Metrics configures the self-metrics HTTP server.
type Metrics struct {
	Listen string `toml:"listen" reload:"restart"` // address "host:port"; "" disables
	// ToLibrato also sends libratod's own counters and gauges to Librato
	// as libratod.* measurements at every flush.
	ToLibrato bool `toml:"to_librato" reload:"restart"`
}

// The values of Prometheus.TimerAs.
const (
	TimerAsSummary   = "summary"   // timers are summaries: quantiles, _sum and _count
	TimerAsHistogram = "histogram" // timers are histograms with Prometheus.Buckets
)

// Prometheus configures the Prometheus exposition of the StatsD series
// (package exposition). Every key needs a restart.
type Prometheus struct {
	Listen    string        `toml:"listen" reload:"restart"`     // address "host:port" of its /metrics; "" disables it
	MaxSeries int           `toml:"max_series" reload:"restart"` // series held; past it new ones are dropped; 0: aggregate.max_series
	Expire    time.Duration `toml:"expire" reload:"restart"`     // a series without data this long is dropped; 0: never
	TimerAs   string        `toml:"timer_as" reload:"restart"`   // TimerAsSummary or TimerAsHistogram
	// Buckets are the histogram bucket bounds, increasing, in the unit
	// the timer values are received in (StatsD: milliseconds).
	Buckets []float64 `toml:"buckets" reload:"restart"`
	// TimerUnitSeconds divides timer values (and bucket bounds) by 1000 on
	// exposition: StatsD milliseconds become Prometheus seconds.
	TimerUnitSeconds bool `toml:"timer_unit_seconds" reload:"restart"`
}

// Default returns the default configuration: what an empty file gives.
func Default() Config {
	return Config{
		Listen: Listen{
			UDP:               "127.0.0.1:8125",
			TCP:               "127.0.0.1:8125",
			UDPReaders:        0,
			ReadBuffer:        8 * MiB,
			MaxLineBytes:      64 * KiB,
			TCPIdleTimeout:    60 * time.Second,
			TCPMaxConnections: 1024,
			UnixgramMode:      "0660",
			TagSyntaxes:       parser.TagSyntaxNames(),
		},
		Aggregate: Aggregate{
			Period:          10 * time.Second,
			Percentiles:     []float64{90, 95, 99},
			GaugeDeltas:     true,
			MaxSeries:       1_000_000,
			MaxTimerSamples: 10_000,
			MaxSetMembers:   10_000,
			GaugeBaseTTL:    360,
		},
		Librato: Librato{
			API:             APITagged,
			URL:             "https://metrics-api.librato.com",
			BatchSize:       300,
			HostTag:         true,
			Timeout:         10 * time.Second,
			Concurrency:     4,
			MaxAttempts:     5,
			ShutdownTimeout: 10 * time.Second,
			Backlog:         1_000_000,
			MaxAge:          time.Hour,
			Include:         []string{},
			Exclude:         []string{},
			EventsStream:    "statsd",
			CountersAs:      "gauge",
			SpoolMaxBytes:   GiB,
		},
		Log:     Log{Level: "info", Format: "json"},
		Metrics: Metrics{Listen: "127.0.0.1:9125"},
		Prometheus: Prometheus{
			Expire:  5 * time.Minute,
			TimerAs: TimerAsSummary,
			Buckets: []float64{5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000},
		},
	}
}

// FieldError is one problem with one configuration key.
type FieldError struct {
	Key     string // full TOML key, e.g. "listen.udp"; "" for the file as a whole
	Problem string // what is wrong and what is expected
}

// Error returns "key: problem".
func (e *FieldError) Error() string {
	if e.Key == "" {
		return e.Problem
	}
	return e.Key + ": " + e.Problem
}

// Load reads the TOML file at path and returns it as [Parse] does.
func Load(path string, env func(string) string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(data, env)
}

// Parse decodes data, TOML text, over [Default], applies environment
// overrides and validates the result with everything but the token rule
// (that is, as Validate(true) does). The caller must still call
// [Config.Validate] with its dry-run flag. On failure it returns a nil
// Config and every problem found.
//
// env looks up an environment variable (os.Getenv in production); nil means
// an empty environment. An empty value means "not set". Overrides, applied
// after the file and in this order:
//
//   - LIBRATO_TOKEN and LIBRATO_EMAIL set librato.token and librato.email;
//   - LIBRATOD_<SECTION>_<KEY>, upper-cased, sets any key, e.g.
//     LIBRATOD_LISTEN_UDP="0.0.0.0:8125", LIBRATOD_AGGREGATE_PERIOD="30s",
//     LIBRATOD_LIBRATO_GZIP="true", LIBRATOD_AGGREGATE_PERCENTILES="50,99"
//     (a comma-separated list); so LIBRATOD_LIBRATO_TOKEN wins over
//     LIBRATO_TOKEN;
//   - LIBRATOD_TAGS="name=value,name2=value2" adds global tags, replacing
//     the file's tags of the same names.
//
// Because an empty value means "not set", the environment cannot set a key
// to "" (to disable a listener, say) or a list to empty.
func Parse(data []byte, env func(string) string) (*Config, error) {
	c := Default()
	problems, ok := decode(&c, data)
	if ok {
		problems = append(problems, applyEnv(&c, env)...)
		problems = append(problems, c.problems(true)...)
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	return &c, nil
}

// tagsKey is the table of free-form global tags.
const tagsKey = "tags"

// setting is one fixed key of the file bound to the Config field holding it.
type setting struct {
	key    toml.Key      // section and name, e.g. {"listen", "udp"}
	field  reflect.Value // addressable field of a Config
	reload string        // its reload struct tag: reloadLive or reloadRestart
}

// env is the name of the environment variable that overrides s.
func (s setting) env() string {
	return "LIBRATOD_" + strings.ToUpper(s.key[0]+"_"+s.key[1])
}

// settings lists every key of the file but the free-form [tags] table, in
// declaration order, bound to c's fields. It is driven by the toml struct
// tags so that decoding, environment overrides and the example-file test
// cannot miss a field.
func settings(c *Config) []setting {
	var out []setting
	cv := reflect.ValueOf(c).Elem()
	for i := range cv.NumField() {
		section := cv.Field(i)
		if section.Kind() != reflect.Struct {
			continue // the tags map
		}
		name := cv.Type().Field(i).Tag.Get("toml")
		for j := range section.NumField() {
			tag := section.Type().Field(j).Tag
			key := toml.Key{name, tag.Get("toml")}
			out = append(out, setting{key: key, field: section.Field(j), reload: tag.Get("reload")})
		}
	}
	return out
}

// decode decodes the TOML text data over c. It reports each unknown key and
// each value of the wrong type; a field whose value is bad keeps its
// previous value. ok is false when the text is not TOML at all, in which case
// nothing was decoded.
func decode(c *Config, data []byte) (problems []error, ok bool) {
	var top map[string]toml.Primitive
	md, err := toml.Decode(string(data), &top)
	if err != nil {
		return []error{syntaxError(err, data)}, false
	}

	sections := map[string][]setting{} // section name -> its settings
	var order []string                 // section names in declaration order
	for _, s := range settings(c) {
		if _, seen := sections[s.key[0]]; !seen {
			order = append(order, s.key[0])
		}
		sections[s.key[0]] = append(sections[s.key[0]], s)
	}

	for _, name := range slices.Sorted(maps.Keys(top)) {
		if _, known := sections[name]; !known && name != tagsKey {
			problems = append(problems, &FieldError{
				Key:     toml.Key{name}.String(),
				Problem: "unknown key (the tables are [" + strings.Join(order, "], [") + "], [" + tagsKey + "])",
			})
		}
	}

	for _, section := range order {
		prim, present := top[section]
		if !present {
			continue
		}
		values, err := table(&md, toml.Key{section}, prim)
		if err != nil {
			problems = append(problems, err)
			continue
		}
		var names []string
		for _, s := range sections[section] {
			names = append(names, s.key[1])
			if v, present := values[s.key[1]]; present {
				if err := decodeValue(&md, s.key, v, s.field); err != nil {
					problems = append(problems, err)
				}
			}
		}
		for _, k := range slices.Sorted(maps.Keys(values)) {
			if !slices.Contains(names, k) {
				problems = append(problems, &FieldError{
					Key:     toml.Key{section, k}.String(),
					Problem: "unknown key (known: " + strings.Join(names, ", ") + ")",
				})
			}
		}
	}

	if prim, present := top[tagsKey]; present {
		problems = append(problems, decodeTags(c, &md, prim)...)
	}
	return problems, true
}

// decodeTags decodes the [tags] table into c.Tags.
func decodeTags(c *Config, md *toml.MetaData, prim toml.Primitive) []error {
	values, err := table(md, toml.Key{tagsKey}, prim)
	if err != nil {
		return []error{err}
	}
	var problems []error
	for _, name := range slices.Sorted(maps.Keys(values)) {
		var v string
		if err := decodeValue(md, toml.Key{tagsKey, name}, values[name], reflect.ValueOf(&v).Elem()); err != nil {
			problems = append(problems, err)
			continue
		}
		if c.Tags == nil {
			c.Tags = map[string]string{}
		}
		c.Tags[name] = v
	}
	return problems
}

// table decodes prim, the value of key, as a table of values.
func table(md *toml.MetaData, key toml.Key, prim toml.Primitive) (map[string]toml.Primitive, error) {
	// The library silently decodes a non-table into an empty map, so look
	// at the raw value first.
	var raw any
	if err := md.PrimitiveDecode(prim, &raw); err != nil {
		return nil, decodeError(key, "a table", err)
	}
	if _, ok := raw.(map[string]any); !ok {
		return nil, &FieldError{Key: key.String(), Problem: fmt.Sprintf("expected a table [%s], got %s", key, tomlType(md.Type(key...)))}
	}
	var values map[string]toml.Primitive
	if err := md.PrimitiveDecode(prim, &values); err != nil {
		return nil, decodeError(key, "a table", err)
	}
	return values, nil
}

// decodeValue decodes prim, the value of key, into field. On failure field
// is left as it was.
func decodeValue(md *toml.MetaData, key toml.Key, prim toml.Primitive, field reflect.Value) error {
	v := reflect.New(field.Type()) // decode aside: a failed list decode leaves partial data
	target := v.Interface()
	if d, ok := target.(*time.Duration); ok {
		target = (*durationText)(d) // string durations only; the library takes integers as nanoseconds
	}
	if err := md.PrimitiveDecode(prim, target); err != nil {
		return decodeError(key, expected(field.Type()), err)
	}
	field.Set(v.Elem())
	return nil
}

// expected describes the form a value of type t takes in the file.
func expected(t reflect.Type) string {
	switch t {
	case reflect.TypeFor[time.Duration]():
		return durationForm
	case reflect.TypeFor[ByteSize]():
		return byteSizeForm
	case reflect.TypeFor[[]float64]():
		return "a list of numbers"
	case reflect.TypeFor[[]string]():
		return "a list of strings"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int:
		return "an integer"
	}
	return t.String()
}

// decodeError turns an error of the toml library about key into a
// *FieldError saying what was expected, with the line when known.
func decodeError(key toml.Key, want string, err error) error {
	var pe toml.ParseError
	if isSecretKey(key) {
		// The library's words may quote the value.
		line := 0
		if errors.As(err, &pe) {
			line = pe.Position.Line
		} else if rest, ok := strings.CutPrefix(err.Error(), "toml: "); ok {
			_, _ = fmt.Sscanf(rest, "line %d", &line)
		}
		return &FieldError{Key: key.String(), Problem: atLine(line) + "expected " + want + " (the value is not shown)"}
	}
	if errors.As(err, &pe) {
		// From UnmarshalText (durations, byte sizes: the message says
		// what is expected) or a number out of range.
		msg := pe.Message
		if !strings.HasPrefix(msg, "expected ") {
			msg = "expected " + want + " (" + msg + ")"
		}
		return &FieldError{Key: key.String(), Problem: atLine(pe.Position.Line) + msg}
	}
	// A type mismatch: `toml: line 3 (last key "listen.udp"): incompatible types: ...`.
	msg, line := err.Error(), 0
	if rest, ok := strings.CutPrefix(msg, "toml: "); ok {
		_, _ = fmt.Sscanf(rest, "line %d", &line) // the line is optional: 0 when absent
		if _, detail, ok := strings.Cut(rest, "): "); ok {
			msg = detail
		}
	}
	return &FieldError{Key: key.String(), Problem: atLine(line) + "expected " + want + " (" + msg + ")"}
}

// syntaxError reports a file, data, that is not valid TOML. The parser's
// message is left out when it could show any part of the token or the
// email (see redactParseMessage).
func syntaxError(err error, data []byte) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return &FieldError{
			Key: pe.LastKey,
			Problem: fmt.Sprintf("invalid TOML at line %d, column %d: %s", pe.Position.Line, pe.Position.Col,
				redactParseMessage(pe.Message, pe.Position.Line, data)),
		}
	}
	return &FieldError{Problem: "invalid TOML: " + redactParseMessage(err.Error(), 0, data)}
}

// atLine returns "line n: ", or "" when n is unknown.
func atLine(n int) string {
	if n <= 0 {
		return ""
	}
	return "line " + strconv.Itoa(n) + ": "
}

// tomlType names the library's name for a TOML type ([toml.MetaData.Type])
// for people.
func tomlType(t string) string {
	switch t {
	case "Hash":
		return "a table"
	case "ArrayHash":
		return "an array of tables"
	case "Integer":
		return "an integer"
	case "Array":
		return "an array"
	case "":
		return "a value"
	}
	return "a " + strings.ToLower(t)
}

// applyEnv applies the environment overrides documented on Parse.
func applyEnv(c *Config, env func(string) string) []error {
	if env == nil {
		return nil
	}
	if v := env("LIBRATO_TOKEN"); v != "" {
		c.Librato.Token = Secret(v)
	}
	if v := env("LIBRATO_EMAIL"); v != "" {
		c.Librato.Email = v
	}
	var problems []error
	for _, s := range settings(c) {
		name := s.env()
		v := env(name)
		if v == "" {
			continue
		}
		if err := setText(s.field, v); err != nil {
			// Only non-string fields can fail, so the token is never echoed.
			problems = append(problems, &FieldError{Key: s.key.String(), Problem: name + ": " + err.Error()})
		}
	}
	if v := env("LIBRATOD_TAGS"); v != "" {
		for pair := range strings.SplitSeq(v, ",") {
			name, value, ok := strings.Cut(pair, "=")
			if !ok || name == "" {
				problems = append(problems, &FieldError{Key: tagsKey, Problem: fmt.Sprintf(
					`LIBRATOD_TAGS: expected "name=value" pairs separated by commas, got %q`, pair)})
				continue
			}
			if c.Tags == nil {
				c.Tags = map[string]string{}
			}
			c.Tags[name] = value
		}
	}
	return problems
}

// setText sets field from s, text from the environment.
func setText(field reflect.Value, s string) error {
	switch p := field.Addr().Interface().(type) {
	case *string:
		*p = s
	case *Secret:
		*p = Secret(s)
	case *bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("expected true or false, got %q", s)
		}
		*p = b
	case *int:
		n, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("expected an integer, got %q", s)
		}
		*p = n
	case *time.Duration:
		return (*durationText)(p).UnmarshalText([]byte(s))
	case *ByteSize:
		return p.UnmarshalText([]byte(s))
	case *[]float64:
		var list []float64
		for item := range strings.SplitSeq(s, ",") {
			f, err := strconv.ParseFloat(strings.TrimSpace(item), 64)
			if err != nil {
				return fmt.Errorf("expected comma-separated numbers, got %q", s)
			}
			list = append(list, f)
		}
		*p = list
	case *[]string:
		// Patterns holding a comma cannot be set this way; use the file.
		*p = strings.Split(s, ",")
	default:
		return fmt.Errorf("cannot be set from the environment (type %s)", field.Type())
	}
	return nil
}
