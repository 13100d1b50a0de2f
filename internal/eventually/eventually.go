// Package eventually is the tests' one way of waiting for something that
// happens on another goroutine: poll a condition, with a bound, instead of
// sleeping a guessed time.
package eventually

import (
	"fmt"
	"testing"
	"time"
)

// interval is how often a condition is polled.
const interval = 5 * time.Millisecond

// True polls cond until it holds or within has passed, and reports
// whether it held.
func True(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			return cond()
		}
		time.Sleep(interval)
	}
	return true
}

// Require polls cond as True does and fails the test at once, saying what
// was awaited (format and args, as fmt.Sprintf), when it never holds.
func Require(t testing.TB, within time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	if !True(within, cond) {
		t.Fatalf("not so after %v: %s", within, fmt.Sprintf(format, args...))
	}
}
