package parser

// Error is why Parse, ParseEvent or ParseServiceCheck rejected a line. It is
// a small integer, so returning it as an error does not allocate. Callers
// get it back with errors.As or a type assertion (err.(parser.Error)) and
// count rejected lines by Reason.
type Error uint8

// The reasons a line is rejected. ErrEvent and ErrServiceCheck are not
// malformed lines: they are how Parse marks DogStatsD events ("_e{...") and
// service checks ("_sc|..."), which ParseEvent and ParseServiceCheck decode.
// ErrBadEvent and ErrBadServiceCheck come only from those two.
const (
	ErrEmptyName       Error = iota + 1 // nothing before the ':' (or before the name's tags)
	ErrBadName                          // the name holds a control byte (< 0x20 or 0x7f) or '|'
	ErrBadTags                          // the Librato-style tags after the name's '#' are not "k=v,k2=v2"
	ErrNoValue                          // no ':' or nothing between the ':' and the '|'
	ErrBadValue                         // a value is not a finite decimal number of magnitude <= 1e126
	ErrNoType                           // no "|type" after the value, or an empty one
	ErrBadType                          // the type is not one of c, g, ms, h, d, s
	ErrBadRate                          // the "|@rate" is not a number in (0,1]
	ErrBadTimestamp                     // the "|T" timestamp is not unsigned decimal digits
	ErrTooManyValues                    // the line holds more than MaxValues values
	ErrEvent                            // a DogStatsD event ("_e{"), not a metric: see ParseEvent
	ErrServiceCheck                     // a DogStatsD service check ("_sc|"), not a metric: see ParseServiceCheck
	ErrBadEvent                         // ParseEvent: not an event, or an unusable header, title or timestamp
	ErrBadServiceCheck                  // ParseServiceCheck: not a service check, or an unusable name, status or timestamp
	ErrBadInfluxDBTags                  // the InfluxDB-style tags after the name's ',' hold an empty item or key
	ErrBadGraphiteTags                  // the Graphite-style tags after the name's ';' are not "k=v;k2=v2" with non-empty keys and values
	ErrRateTooLow                       // the "|@rate" is a number in (0,MinRate): it would scale one line by more than 1/MinRate
)

// reasons holds the Prometheus label value of each Error, indexed by Error.
var reasons = [...]string{
	ErrEmptyName:       "empty_name",
	ErrBadName:         "bad_name",
	ErrBadTags:         "bad_tags",
	ErrNoValue:         "no_value",
	ErrBadValue:        "bad_value",
	ErrNoType:          "no_type",
	ErrBadType:         "bad_type",
	ErrBadRate:         "bad_rate",
	ErrBadTimestamp:    "bad_timestamp",
	ErrTooManyValues:   "too_many_values",
	ErrEvent:           "event",
	ErrServiceCheck:    "service_check",
	ErrBadEvent:        "bad_event",
	ErrBadServiceCheck: "bad_service_check",
	ErrBadInfluxDBTags: "bad_influxdb_tags",
	ErrBadGraphiteTags: "bad_graphite_tags",
	ErrRateTooLow:      "rate_too_low",
}

// messages holds the Error() text of each Error, indexed by Error.
var messages = [...]string{
	ErrEmptyName:       "statsd: empty metric name",
	ErrBadName:         "statsd: control character or '|' in metric name",
	ErrBadTags:         "statsd: malformed tags in metric name",
	ErrNoValue:         "statsd: missing value",
	ErrBadValue:        "statsd: malformed value",
	ErrNoType:          "statsd: missing metric type",
	ErrBadType:         "statsd: unknown metric type",
	ErrBadRate:         "statsd: sample rate not in (0,1]",
	ErrBadTimestamp:    "statsd: malformed timestamp",
	ErrTooManyValues:   "statsd: too many values in one line",
	ErrEvent:           "statsd: a DogStatsD event, not a metric",
	ErrServiceCheck:    "statsd: a DogStatsD service check, not a metric",
	ErrBadEvent:        "statsd: malformed DogStatsD event",
	ErrBadServiceCheck: "statsd: malformed DogStatsD service check",
	ErrBadInfluxDBTags: "statsd: malformed InfluxDB-style tags in metric name",
	ErrBadGraphiteTags: "statsd: malformed Graphite-style tags in metric name",
	ErrRateTooLow:      "statsd: sample rate below 1e-6",
}

// Reasons returns every Error that Parse, ParseEvent and ParseServiceCheck
// can return, so that a caller can create one counter per Reason up front.
// It returns a new slice.
func Reasons() []Error {
	all := make([]Error, 0, len(reasons)-1)
	for e := ErrEmptyName; int(e) < len(reasons); e++ {
		all = append(all, e)
	}
	return all
}

// Error returns a human-readable description of e.
func (e Error) Error() string {
	if e == 0 || int(e) >= len(messages) {
		return "statsd: unknown parse error"
	}
	return messages[e]
}

// Reason returns a short, stable snake_case label for e, such as "bad_value",
// suitable as a Prometheus label value.
func (e Error) Reason() string {
	if e == 0 || int(e) >= len(reasons) {
		return "unknown"
	}
	return reasons[e]
}
