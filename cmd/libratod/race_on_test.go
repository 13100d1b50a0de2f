//go:build race

package main

// raceEnabled reports a -race build, where sync.Pool drops items at
// random, so allocation counts mean nothing.
const raceEnabled = true
