//go:build race

package otlp

// raceEnabled reports a -race build, in which allocation tests skip
// themselves: they measure the ordinary runtime (scripts/test runs them
// without -race).
const raceEnabled = true
