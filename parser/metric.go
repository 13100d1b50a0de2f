// Package parser decodes the StatsD line protocol (Etsy StatsD and DogStatsD
// extensions) into metrics. It is pure: no I/O, no logging, no metrics.
// A well-formed line is parsed without allocating.
package parser

// Type is the kind of a StatsD metric.
type Type uint8

// The metric types. Timer covers "ms", "h" (histogram) and "d" (distribution).
const (
	Counter Type = iota + 1 // "c": add value/rate to the period's sum
	Gauge                   // "g": last value, or a delta when Delta is set
	Timer                   // "ms", "h", "d": a sampled value
	Set                     // "s": a distinct member
)

// String returns the StatsD name of the type ("c", "g", "ms", "s").
func (t Type) String() string {
	switch t {
	case Counter:
		return "c"
	case Gauge:
		return "g"
	case Timer:
		return "ms"
	case Set:
		return "s"
	}
	return "invalid"
}

// Metric is one sample parsed from a line. Its byte slices point into the
// line that was parsed: they are valid only as long as that buffer is.
type Metric struct {
	// Name is the metric name without any tags written in it ("name" of
	// "name#k=v", "name,k=v" or "name;k=v").
	Name []byte
	// NameTags holds the tags written in the name, after the '#', ',' or
	// ';' that starts them ("k=v,k2=v2" or "k=v;k2=v2"), or nil. Each item
	// is split at its first '='; an item without '=' (InfluxDB syntax
	// only) is a bare tag.
	NameTags []byte
	// NameTagSep is the byte between the items of NameTags: ',' (Librato
	// and InfluxDB syntaxes) or ';' (Graphite syntax). Zero, as in a Metric
	// that Parse did not make, means ','.
	NameTagSep byte
	// Tags holds the raw DogStatsD tag field after "|#" ("k:v,k2:v2,bare"),
	// or nil.
	Tags []byte
	// Type is the metric type.
	Type Type
	// Value is the numeric value of counters, gauges and timers; 0 for sets.
	Value float64
	// Delta reports that a gauge value was written with an explicit sign
	// ("+3" or "-3"); whether that means a change is the caller's choice.
	Delta bool
	// Member is the member of a set, as written; nil for other types.
	Member []byte
	// Rate is the sample rate ("|@0.5") in [MinRate,1]; 1 when the line has
	// none. It is checked for every type but means something only for counters
	// and timers.
	Rate float64
	// Timestamp is the DogStatsD "|T<unix seconds>" field, or 0.
	Timestamp int64
}
