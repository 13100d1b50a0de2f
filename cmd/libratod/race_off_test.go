//go:build !race

package main

// raceEnabled reports a -race build, whose instrumentation changes
// allocation counts, so allocation tests skip themselves.
const raceEnabled = false
