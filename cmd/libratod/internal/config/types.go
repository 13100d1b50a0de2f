package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// ByteSize is a number of bytes. In the file it is an integer (1048576) or
// a string with a unit ("8MiB", "512KiB", "1048576"). The units are B, KiB,
// MiB, GiB (powers of 1024) and KB, MB, GB (powers of 1000), any case.
type ByteSize int64

// Binary byte-size units.
const (
	KiB ByteSize = 1 << 10
	MiB ByteSize = 1 << 20
	GiB ByteSize = 1 << 30
)

// byteUnits maps a lower-cased unit to its size.
var byteUnits = map[string]ByteSize{
	"": 1, "b": 1,
	"kib": KiB, "mib": MiB, "gib": GiB,
	"kb": 1e3, "mb": 1e6, "gb": 1e9,
}

// byteSizeForm describes what a ByteSize looks like, for error messages.
const byteSizeForm = `a byte size like "8MiB", "512KiB" or 1048576`

// UnmarshalText parses a byte size such as "8MiB" or "1048576".
func (b *ByteSize) UnmarshalText(text []byte) error {
	s := strings.TrimSpace(string(text))
	digits := len(s) - len(strings.TrimLeft(s, "0123456789"))
	unit, ok := byteUnits[strings.ToLower(strings.TrimSpace(s[digits:]))]
	n, err := strconv.ParseInt(s[:digits], 10, 64)
	if !ok || err != nil || n > math.MaxInt64/int64(unit) {
		return fmt.Errorf("expected %s, got %q", byteSizeForm, text)
	}
	*b = ByteSize(n) * unit
	return nil
}

// String formats b with the largest binary unit that divides it: "8MiB",
// "64KiB", "1000B".
func (b ByteSize) String() string {
	for _, u := range []struct {
		size ByteSize
		name string
	}{{GiB, "GiB"}, {MiB, "MiB"}, {KiB, "KiB"}} {
		if b != 0 && b%u.size == 0 {
			return strconv.FormatInt(int64(b/u.size), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}

// durationForm describes what a duration looks like, for error messages.
const durationForm = `a duration like "10s"`

// durationText decodes a time.Duration from a string such as "10s". (The
// toml library would take an integer as nanoseconds, a trap in a config.)
type durationText time.Duration

// UnmarshalText parses a Go duration string.
func (d *durationText) UnmarshalText(text []byte) error {
	v, err := time.ParseDuration(string(text))
	if err != nil {
		return fmt.Errorf("expected %s, got %q", durationForm, text)
	}
	*d = durationText(v)
	return nil
}

// Secret is a string that is never printed: fmt (every verb), String and
// MarshalText (so JSON too) show "[redacted]" when it is set and "" when it
// is empty. Use string(s) to get the value.
type Secret string

// redacted is what a Secret that is set prints as.
const redacted = "[redacted]"

// String returns "[redacted]", or "" when s is empty.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// Format writes s.String() whatever the verb, so that even %#v and %x do
// not show the value.
func (s Secret) Format(f fmt.State, _ rune) {
	_, _ = f.Write([]byte(s.String()))
}

// MarshalText returns s.String(), so encoders do not show the value.
func (s Secret) MarshalText() ([]byte, error) {
	return []byte(s.String()), nil
}
