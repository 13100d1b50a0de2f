package ingest

import (
	"bytes"
	"fmt"

	"github.com/libratod/libratod/parser"
)

// The levels a line's "level" tag may name, lowest first.
const (
	levelOff   = -1 // min_level unset: keep every line
	levelNone  = 1 << 20
	levelDebug = iota
	levelInfo
	levelWarning
	levelError
	levelCritical
)

// CheckLevel returns nil if name is a minimum level (aggregate.min_level)
// the Handler knows, "" included (every line kept), and otherwise an error
// listing those it knows.
func CheckLevel(name string) error {
	switch name {
	case "", "debug", "info", "warning", "error", "critical": // a line's tag may also say "warn", "crit"
		return nil
	}
	return fmt.Errorf(`expected "", "debug", "info", "warning", "error" or "critical", got %q`, name)
}

// parseLevel returns the level a name means, or levelNone.
func parseLevel(b []byte) int32 {
	switch string(b) {
	case "debug":
		return levelDebug
	case "info":
		return levelInfo
	case "warning", "warn":
		return levelWarning
	case "error":
		return levelError
	case "critical", "crit":
		return levelCritical
	}
	return levelNone
}

// lineLevel returns the level of a metric's "level" tag (DogStatsD
// "level:x", or "level=x" among the name's tags); a metric without one, or
// with an unknown one, is above every level and so always kept.
func lineLevel(m *parser.Metric) int32 {
	nameSep := m.NameTagSep
	if nameSep == 0 {
		nameSep = ','
	}
	lvl := int32(levelNone)
	for _, src := range [2]struct {
		raw     []byte
		sep, kv byte
	}{{m.NameTags, nameSep, '='}, {m.Tags, ',', ':'}} {
		raw := src.raw
		for len(raw) > 0 {
			item := raw
			if i := bytes.IndexByte(raw, src.sep); i >= 0 {
				item, raw = raw[:i], raw[i+1:]
			} else {
				raw = nil
			}
			if len(item) > 0 && item[0] == '#' {
				item = item[1:] // "|#a:1,#level:x", as the aggregator reads it
			}
			if len(item) > 6 && string(item[:5]) == "level" && item[5] == src.kv {
				lvl = parseLevel(item[6:]) // the last one wins, as for every tag
			}
		}
	}
	return lvl
}
