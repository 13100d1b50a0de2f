// Package librato is a client for the Librato (and AppOptics) metrics API.
//
// It encodes batches of measurements for either the tagged endpoint (POST
// /v1/measurements) or the legacy, source-based endpoint (POST /v1/metrics),
// sends them with HTTP Basic authentication and classifies the answer: a Result
// for an accepted request, or an *Error that says whether the batch may be
// resent later. It does not retry: the caller owns retries and backoff.
//
// The package knows nothing of StatsD. Callers are expected to clean names,
// sources and tags with the Sanitize functions before building a Batch; the
// encoder escapes any string correctly but does not otherwise validate names.
package librato

import "fmt"

// API selects the Librato endpoint and payload shape.
type API uint8

const (
	// Tagged is the tagged API: POST {url}/v1/measurements, up to MaxTags tags
	// per measurement.
	Tagged API = iota + 1
	// Legacy is the source-based API: POST {url}/v1/metrics, one source per
	// measurement.
	Legacy
)

// ParseAPI parses the name of an API: "tagged" or "legacy".
func ParseAPI(s string) (API, error) {
	switch s {
	case "tagged":
		return Tagged, nil
	case "legacy":
		return Legacy, nil
	}
	return 0, fmt.Errorf("librato: unknown API %q (want \"tagged\" or \"legacy\")", s)
}

// String returns the name ParseAPI accepts, or "API(n)" for an unknown value.
func (a API) String() string {
	switch a {
	case Tagged:
		return "tagged"
	case Legacy:
		return "legacy"
	}
	return fmt.Sprintf("API(%d)", uint8(a))
}

// path returns the endpoint path of the API.
func (a API) path() string {
	if a == Legacy {
		return "/v1/metrics"
	}
	return "/v1/measurements"
}

// MaxTags is the most tags one measurement may carry on the tagged API.
const MaxTags = 50

// Tag is one tag of a measurement: a name and a value.
type Tag struct{ Name, Value string }

// Measurement is one point.
//
// When Count > 0 it is a summary (Count, Sum, Min, Max, SumSquares, and Last
// when HasLast) and Value is ignored; otherwise it is a plain gauge with Value.
type Measurement struct {
	// Name is the metric name (see SanitizeName). A measurement with an empty
	// name is skipped.
	Name string
	// Tags is, on the tagged API, the full tag set of this measurement: it
	// replaces the batch's tags, it is not merged with them. Nil or empty: the
	// batch's tags apply. Ignored by the legacy API.
	Tags []Tag
	// Source is, on the legacy API, the source of this measurement; "" means
	// the batch's source. Ignored by the tagged API.
	Source string
	// Value is the value of a plain gauge (Count <= 0).
	Value float64
	// Count is the number of samples of a summary; a summary when > 0.
	Count int64
	// Sum, Min, Max and SumSquares describe the samples of a summary. The
	// tagged API receives the population standard deviation, StdDev when
	// HasStdDev is set, else derived from Count, Sum and SumSquares; the legacy
	// API receives SumSquares as sum_squares.
	Sum, Min, Max, SumSquares float64
	// StdDev is the population standard deviation of a summary's samples, sent
	// by the tagged API when HasStdDev is set. Deriving it from SumSquares
	// loses it to cancellation when the samples are large and close (1e9 and
	// 1e9+1 have a standard deviation of 0.5, their sum of squares and squared
	// mean agree to 17 digits), so callers that know it should set it.
	StdDev float64
	// HasStdDev says whether StdDev is set.
	HasStdDev bool
	// Last is the last sample of a summary, sent (tagged API only) when HasLast
	// is true.
	Last float64
	// HasLast says whether Last is set.
	HasLast bool
	// Counter sends a plain measurement as a Librato counter, an absolute,
	// monotonically increasing total, in the legacy API's "counters"
	// list. The tagged API has no counters and ignores it.
	Counter bool
}

// Batch is one POST: measurements sharing one time.
type Batch struct {
	// Time is the time of every measurement in unix seconds, sent as "time"
	// (tagged) or "measure_time" (legacy). Zero omits it: the service then uses
	// the time it receives the request.
	Time int64
	// Period is the reporting period in seconds, sent as "period" (tagged API
	// only). Zero omits it.
	Period int64
	// Source is the top-level source of the legacy API. "" omits it.
	Source string
	// Tags are the top-level tags of the tagged API, applying to measurements
	// without their own.
	Tags []Tag
	// Measurements are the points; the caller bounds their number (about 300 a
	// request is advised).
	Measurements []Measurement
}
