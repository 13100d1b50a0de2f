package config

import (
	"reflect"
	"strings"
)

// The values of the reload struct tag that every key of the file carries.
const (
	reloadLive    = "live"    // a reload (SIGHUP) applies a new value
	reloadRestart = "restart" // a new value takes effect at the next start
)

// RestartKeys returns the keys ("section.name") a reload cannot apply, in
// declaration order: those whose field is tagged reload:"restart" (the
// sockets, the aggregator's shape, the payload shape and what is built
// once at start).
func RestartKeys() []string {
	var keys []string
	var c Config
	for _, s := range settings(&c) {
		if s.reload == reloadRestart {
			keys = append(keys, strings.Join(s.key, "."))
		}
	}
	return keys
}

// KeepRestartValues gives cur the value old has for every key a reload
// cannot apply (see RestartKeys) that differs, and returns those keys.
func KeepRestartValues(old, cur *Config) []string {
	var changed []string
	olds := settings(old)
	for i, s := range settings(cur) {
		if s.reload != reloadRestart {
			continue
		}
		o := olds[i].field
		if !reflect.DeepEqual(o.Interface(), s.field.Interface()) {
			changed = append(changed, strings.Join(s.key, "."))
			s.field.Set(o)
		}
	}
	return changed
}
