package ingest

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/libratod/libratod/aggregator"
	"github.com/libratod/libratod/listener"
	"github.com/libratod/libratod/parser"
)

// gauges returns the gauge series of agg's open period as
// "name tag=value ... = value", sorted, and starts a new period.
func gauges(agg *aggregator.Aggregator) []string {
	var out []string
	agg.Snapshot().Each(func(s *aggregator.Series) {
		if s.Kind != aggregator.Gauge {
			return
		}
		id := s.Name
		for _, tg := range s.Tags() {
			id += " " + tg.Name + "=" + tg.Value
		}
		out = append(out, id+" = "+strconv.FormatFloat(s.Value, 'g', -1, 64))
	})
	slices.Sort(out)
	return out
}

// TestServiceChecksBecomeGauges checks that a valid service check is a
// gauge named after the check with its status as value, the check's tags
// and its host as the host tag; that the last status of a period wins; and
// that a malformed one is still an invalid line.
func TestServiceChecksBecomeGauges(t *testing.T) {
	in, agg, _ := newTestIngest(t, Config{ServiceChecks: true, ServiceCheckHostTag: "host"})
	in.Handle(listener.UDP, []byte(strings.Join([]string{
		"_sc|db.up|0|#env:prod",
		"_sc|db.up|2|d:1700000000|h:web-1|#env:prod|m:connection refused",
		"_sc|db.up|1|#env:prod",
		"_sc|queue|3",
		"_sc|disk|2|h:web-2|#host:ignored,team:a",
		"_sc|bad|9",
		"_sc||0",
	}, "\n")))
	want := []string{
		"db.up env=prod = 1",
		"db.up env=prod host=web-1 = 2",
		"disk host=web-2 team=a = 2",
		"queue = 3",
	}
	if got := gauges(agg); !slices.Equal(got, want) {
		t.Errorf("gauges\n%q, want\n%q", got, want)
	}
	if n := testutil.ToFloat64(in.converted[parser.ErrServiceCheck]); n != 5 {
		t.Errorf("converted{service_check} = %v, want 5", n)
	}
	if n := testutil.ToFloat64(in.unsupported[parser.ErrServiceCheck]); n != 0 {
		t.Errorf("unsupported{service_check} = %v, want 0", n)
	}
	if n := testutil.ToFloat64(in.invalid[parser.ErrBadServiceCheck]); n != 2 {
		t.Errorf("invalid{bad_service_check} = %v, want 2", n)
	}
}

// TestServiceCheckNameSanitized checks that a check's name is sanitized
// like any metric name: a check and a gauge line that Librato would see
// under one name are one series.
func TestServiceCheckNameSanitized(t *testing.T) {
	in, agg, _ := newTestIngest(t, Config{ServiceChecks: true})
	in.Handle(listener.UDP, []byte("db/up:7|g\n_sc|db/up|2\n"))
	if got, want := gauges(agg), []string{"db_up = 2"}; !slices.Equal(got, want) {
		t.Errorf("gauges %q, want %q", got, want)
	}
}

// TestServiceCheckHostTag checks the tag the "h:" host becomes: "source"
// for the legacy API, none when unset; and that a comma in the host does
// not make another tag.
func TestServiceCheckHostTag(t *testing.T) {
	for hostTag, want := range map[string][]string{
		"source": {"up source=web-1 = 1", "x source=a = 0"},
		"":       {"up = 1", "x = 0"},
	} {
		in, agg, _ := newTestIngest(t, Config{ServiceChecks: true, ServiceCheckHostTag: hostTag})
		in.Handle(listener.UDP, []byte("_sc|up|1|h:web-1\n_sc|x|0|h:a,b\n"))
		if got := gauges(agg); !slices.Equal(got, want) {
			t.Errorf("host tag %q: gauges %q, want %q", hostTag, got, want)
		}
	}
}

// TestServiceChecksOff checks that with the mapping off nothing reaches the
// aggregator and service checks are counted as unsupported, and that
// SetServiceChecks changes it while running.
func TestServiceChecksOff(t *testing.T) {
	in, agg, _ := newTestIngest(t, Config{ServiceChecks: false, ServiceCheckHostTag: "host"})
	packet := []byte("_sc|db.up|2|#env:prod\n")
	in.Handle(listener.UDP, packet)
	if got := gauges(agg); len(got) != 0 {
		t.Errorf("off: gauges %q, want none", got)
	}
	if n := testutil.ToFloat64(in.unsupported[parser.ErrServiceCheck]); n != 1 {
		t.Errorf("off: unsupported{service_check} = %v, want 1", n)
	}
	in.SetServiceChecks(true)
	in.Handle(listener.UDP, packet)
	if got, want := gauges(agg), []string{"db.up env=prod = 2"}; !slices.Equal(got, want) {
		t.Errorf("turned on: gauges %q, want %q", got, want)
	}
	in.SetServiceChecks(false)
	in.Handle(listener.UDP, packet)
	if got := gauges(agg); len(got) != 0 {
		t.Errorf("turned off: gauges %q, want none", got)
	}
	if n := testutil.ToFloat64(in.unsupported[parser.ErrServiceCheck]); n != 2 {
		t.Errorf("turned off: unsupported{service_check} = %v, want 2", n)
	}
	if n := testutil.ToFloat64(in.converted[parser.ErrServiceCheck]); n != 1 {
		t.Errorf("converted{service_check} = %v, want 1", n)
	}
}

// TestServiceCheckMinLevel checks that a service check below
// aggregate.min_level is dropped like any line.
func TestServiceCheckMinLevel(t *testing.T) {
	in, agg, fm := newTestIngest(t, Config{ServiceChecks: true, MinLevel: "warning"})
	in.Handle(listener.UDP, []byte("_sc|a|0|#level:debug\n_sc|b|0|#level:error\n"))
	if got, want := gauges(agg), []string{"b level=error = 0"}; !slices.Equal(got, want) {
		t.Errorf("gauges %q, want %q", got, want)
	}
	if n := testutil.ToFloat64(fm.Dropped("below_min_level")); n != 1 {
		t.Errorf("below_min_level = %v, want 1", n)
	}
}

// TestServiceChecksDoNotAllocate proves service checks, host tag
// included, take the hot path without allocating once their series exist.
func TestServiceChecksDoNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation tests run without -race, as scripts/test does: the race runtime is not the one measured")
	}
	in, _, _ := newTestIngest(t, Config{ServiceChecks: true, ServiceCheckHostTag: "host"})
	packet := []byte("_sc|db.up|0|#env:prod\n_sc|db.up|2|h:web-1|#env:prod,team:a|m:down\n_sc|q|3\napp.hits:1|c\n")
	in.Handle(listener.UDP, packet) // create the series
	if n := testing.AllocsPerRun(500, func() { in.Handle(listener.UDP, packet) }); n != 0 {
		t.Errorf("Handle: %v allocs per packet, want 0", n)
	}
}

// BenchmarkHandleServiceChecks measures service checks from a packet to the
// aggregator, host tag included, in wall time per line as BenchmarkHandle;
// the same lines as gauges ("gauge") are the yardstick.
func BenchmarkHandleServiceChecks(b *testing.B) {
	for _, kind := range []string{"service_check", "gauge"} {
		b.Run(kind, func(b *testing.B) {
			in, _, _ := newTestIngest(b, Config{ServiceChecks: true, ServiceCheckHostTag: "host"})
			var lines []string
			for i := range 20 {
				name := "app.check." + string(rune('a'+i))
				if kind == "gauge" {
					lines = append(lines, name+":2|g|#env:prod,host:web-1")
				} else {
					lines = append(lines, "_sc|"+name+"|2|h:web-1|#env:prod|m:down")
				}
			}
			packet := []byte(strings.Join(lines, "\n") + "\n")
			in.Handle(listener.UDP, packet)
			b.ReportAllocs()
			b.SetBytes(int64(len(packet)))
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					in.Handle(listener.UDP, packet)
				}
			})
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(lines)), "wall-ns/line")
		})
	}
}
