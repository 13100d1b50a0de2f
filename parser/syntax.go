package parser

import (
	"fmt"
	"strings"
)

// TagSyntaxes is a set of the tag syntaxes that ParseWith reads, one bit
// each. A syntax left out is not an error: its bytes stay where they are
// (in the name, or an ignored "|#" field).
type TagSyntaxes uint8

// The tag syntaxes. Each name-tag syntax starts at a byte that Librato
// does not allow in a name, so reading it as tags loses nothing; a user
// whose names carry that byte can turn the syntax off.
const (
	// DogStatsDTags is the "|#k:v,k2:v2,bare" field after the type
	// (DogStatsD clients, hot-shots, datadog-go, statsd-ruby's Datadog mode).
	DogStatsDTags TagSyntaxes = 1 << iota
	// LibratoTags is "name#k=v,k2=v2" (Librato's statsd-librato-backend).
	LibratoTags
	// InfluxDBTags is "name,k=v,k2=v2" (Telegraf's statsd input; sent by
	// hot-shots with telegraf: true, Micrometer's TELEGRAF flavor,
	// smira/go-statsd's InfluxDB tag format).
	InfluxDBTags
	// GraphiteTags is "name;k=v;k2=v2" (Graphite 1.1 tags; read by Etsy
	// StatsD, sent by smira/go-statsd's Graphite tag format).
	GraphiteTags

	// AllTagSyntaxes is every tag syntax: what Parse reads.
	AllTagSyntaxes = DogStatsDTags | LibratoTags | InfluxDBTags | GraphiteTags
)

// tagSyntaxNames names each syntax, in bit order, as the configuration
// spells it.
var tagSyntaxNames = [...]string{"dogstatsd", "librato", "influxdb", "graphite"}

// TagSyntaxNames returns the name of every tag syntax, in a fixed order:
// "dogstatsd", "librato", "influxdb", "graphite". It returns a new slice.
func TagSyntaxNames() []string {
	return append([]string(nil), tagSyntaxNames[:]...)
}

// ParseTagSyntaxes returns the set of the syntaxes named (see
// TagSyntaxNames). An empty list is the empty set. An unknown name is an
// error that names it and lists the known ones.
func ParseTagSyntaxes(names []string) (TagSyntaxes, error) {
	var s TagSyntaxes
	for _, name := range names {
		found := false
		for i, n := range tagSyntaxNames {
			if n == name {
				s |= 1 << i
				found = true
			}
		}
		if !found {
			return 0, fmt.Errorf("unknown tag syntax %q: expected %s", name, strings.Join(quoted(tagSyntaxNames[:]), ", "))
		}
	}
	return s, nil
}

// String returns the names of the syntaxes in s, comma-separated, or
// "none".
func (s TagSyntaxes) String() string {
	var names []string
	for i, n := range tagSyntaxNames {
		if s&(1<<i) != 0 {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ",")
}

func quoted(ss []string) []string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return q
}
