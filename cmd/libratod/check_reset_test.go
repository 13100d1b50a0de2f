package main

import (
	"strings"
	"testing"

	"github.com/libratod/libratod/librato"
)

// TestOnlineReportReset checks how -check -online words a rate-limit
// header's reset: seconds from now as "reset in Ns", a Unix time (10^9 and
// past) as "resets at" its RFC 3339 time in UTC.
func TestOnlineReportReset(t *testing.T) {
	tests := map[string]struct {
		reset int64
		want  string
	}{
		"absent":               {0, "X-Librato-RateLimit-Agg 5 left of 10;"},
		"seconds":              {60, "X-Librato-RateLimit-Agg 5 left of 10, reset in 60s;"},
		"a day of seconds":     {86400, ", reset in 86400s;"},
		"just under unix time": {999_999_999, ", reset in 999999999s;"},
		"first unix time":      {1_000_000_000, ", resets at 2001-09-09T01:46:40Z;"},
		"unix time":            {1_767_225_600, ", resets at 2026-01-01T00:00:00Z;"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			res := librato.CheckResult{URL: "http://127.0.0.1:1/v1/metrics?length=1",
				Reached: true, StatusCode: 200, Authorized: true,
				RateLimit: librato.RateLimit{
					Agg: librato.Quota{Present: true, Limit: 10, Remaining: 5, Reset: tc.reset},
					Std: librato.Quota{Present: true, Remaining: 1},
				}}
			lines := onlineReport(res, nil)
			var rl string
			for _, l := range lines {
				if strings.HasPrefix(l, "rate limits:") {
					rl = l
				}
			}
			if !strings.Contains(rl, tc.want) {
				t.Errorf("rate-limit line %q lacks %q", rl, tc.want)
			}
			if tc.reset >= 1_000_000_000 && strings.Contains(rl, "reset in") {
				t.Errorf("rate-limit line %q gives a Unix time as seconds from now", rl)
			}
		})
	}
}
