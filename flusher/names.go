package flusher

import "github.com/libratod/libratod/librato"

// bareTagValue is the value sent for a bare DogStatsD tag ("canary").
const bareTagValue = "true"

// Names is the aggregator.Sanitizer of Librato's rules (librato.AppendName
// and the like), as the flusher applies them to a series: a bare tag is
// sent with the value "true", and on the legacy API a "source" tag is the
// measurement's source. Given to the aggregator, it makes lines that
// Librato would receive as one series one series.
type Names struct {
	// API is the Librato API the series go to.
	API librato.API
}

// AppendName appends the metric name Librato receives for name.
func (Names) AppendName(dst, name []byte) []byte { return librato.AppendName(dst, name) }

// AppendTagName appends the tag name Librato receives for name.
func (Names) AppendTagName(dst, name []byte) []byte { return librato.AppendTagName(dst, name) }

// AppendTagValue appends the value Librato receives for the tag name=value:
// the source on the legacy API for the tag "source", else the tag value;
// "true" for a bare tag.
func (n Names) AppendTagValue(dst, name, value []byte) []byte {
	if n.API == librato.Legacy && string(name) == "source" {
		return librato.AppendSource(dst, value)
	}
	if len(value) == 0 {
		return append(dst, bareTagValue...)
	}
	return librato.AppendTagValue(dst, value)
}

// MaxTags returns librato.MaxTags, the most tags a measurement carries.
func (Names) MaxTags() int { return librato.MaxTags }
