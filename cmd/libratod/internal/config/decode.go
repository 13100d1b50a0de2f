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
)

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
	problems, secrets, ok := decode(&c, data)
	if ok {
		problems = append(problems, applyEnv(&c, env)...)
		problems = append(problems, c.problems(true)...)
	}
	if len(problems) > 0 {
		secrets = append(secrets, c.secretValues()...)
		secrets = append(secrets, envSecrets(&c, env)...)
		return nil, errors.Join(redactErrors(problems, secrets)...)
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
	secret bool          // tagged secret:"true": never shown (see secretTag)
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
			out = append(out, setting{key: key, field: section.Field(j), reload: tag.Get("reload"),
				secret: isSecretField(section.Type().Field(j))})
		}
	}
	return out
}

// decode decodes the TOML text data over c. It reports each unknown key and
// each value of the wrong type; a field whose value is bad keeps its
// previous value. secrets holds the text of the values of the secret keys,
// whatever their type, for redaction. ok is false when the text is not TOML
// at all, in which case nothing was decoded.
func decode(c *Config, data []byte) (problems []error, secrets []string, ok bool) {
	var top map[string]toml.Primitive
	md, err := toml.Decode(string(data), &top)
	if err != nil {
		return []error{syntaxError(err)}, nil, false
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
				if s.secret {
					var raw any
					if md.PrimitiveDecode(v, &raw) == nil {
						secrets = append(secrets, secretStrings(raw, s.field.Kind() != reflect.Map)...)
					}
				}
				if err := decodeValue(&md, s.key, v, s.field, s.secret); err != nil {
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
	return problems, secrets, true
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
		if err := decodeValue(md, toml.Key{tagsKey, name}, values[name], reflect.ValueOf(&v).Elem(), false); err != nil {
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
		return nil, decodeError(key, "a table", err, false)
	}
	if _, ok := raw.(map[string]any); !ok {
		return nil, &FieldError{Key: key.String(), Problem: fmt.Sprintf("expected a table [%s], got %s", key, tomlType(md.Type(key...)))}
	}
	var values map[string]toml.Primitive
	if err := md.PrimitiveDecode(prim, &values); err != nil {
		return nil, decodeError(key, "a table", err, false)
	}
	return values, nil
}

// decodeValue decodes prim, the value of key, into field. On failure field
// is left as it was. The error of a secret key does not show the value.
func decodeValue(md *toml.MetaData, key toml.Key, prim toml.Primitive, field reflect.Value, secret bool) error {
	v := reflect.New(field.Type()) // decode aside: a failed list decode leaves partial data
	target := v.Interface()
	if d, ok := target.(*time.Duration); ok {
		target = (*durationText)(d) // string durations only; the library takes integers as nanoseconds
	}
	if err := md.PrimitiveDecode(prim, target); err != nil {
		return decodeError(key, expected(field.Type()), err, secret)
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
// *FieldError saying what was expected, with the line when known. When the
// key is secret the library's words, which may quote the value, are left
// out.
func decodeError(key toml.Key, want string, err error, secret bool) error {
	var pe toml.ParseError
	if secret {
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
	// A type mismatch: `toml: line 3 (last key "listen.udp"): incompatible
	// types: ...`.
	msg, line := err.Error(), 0
	if rest, ok := strings.CutPrefix(msg, "toml: "); ok {
		_, _ = fmt.Sscanf(rest, "line %d", &line) // the line is optional: 0 when absent
		if _, detail, ok := strings.Cut(rest, "): "); ok {
			msg = detail
		}
	}
	return &FieldError{Key: key.String(), Problem: atLine(line) + "expected " + want + " (" + msg + ")"}
}

// syntaxError reports a file that is not valid TOML: where, and the
// reason in fixed words (see syntaxReasons). Nothing of the file's text is
// shown, as it could be a secret's.
func syntaxError(err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return &FieldError{
			Key: syntaxKey(pe.LastKey),
			Problem: fmt.Sprintf("invalid TOML at line %d, column %d: %s", pe.Position.Line, pe.Position.Col,
				syntaxReason(pe.Message)),
		}
	}
	return &FieldError{Problem: "invalid TOML (the parser's words are not shown: they could quote a secret)"}
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
			problem := name + ": " + err.Error()
			if s.secret {
				problem = name + ": cannot be set from the environment (the value is not shown)"
			}
			problems = append(problems, &FieldError{Key: s.key.String(), Problem: problem})
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

// envSecrets returns the values env gives the secret keys (see applyEnv),
// for redaction.
func envSecrets(c *Config, env func(string) string) []string {
	if env == nil {
		return nil
	}
	out := []string{env("LIBRATO_TOKEN"), env("LIBRATO_EMAIL")}
	for _, s := range settings(c) {
		if s.secret {
			out = append(out, env(s.env()))
		}
	}
	return out
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
	case *map[string]string:
		// "name=value,name2=value2" ([otlp.headers]); the message never
		// shows the text, whose values may be secrets.
		m := map[string]string{}
		for pair := range strings.SplitSeq(s, ",") {
			name, value, ok := strings.Cut(pair, "=")
			if !ok || strings.TrimSpace(name) == "" {
				return fmt.Errorf(`expected "name=value" pairs separated by commas (the text is not shown)`)
			}
			m[strings.TrimSpace(name)] = value
		}
		*p = m
	default:
		return fmt.Errorf("cannot be set from the environment (type %s)", field.Type())
	}
	return nil
}
