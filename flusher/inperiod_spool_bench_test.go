package flusher

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/libratod/libratod/aggregator"
	"github.com/libratod/libratod/librato"
	"github.com/libratod/libratod/spool"
)

// BenchmarkSpoolEarly is what writing a request to the spool at its first
// in-period failure costs: a typical request of 300 timer measurements
// marshalled, appended and taken (spoolEarly), then acknowledged when a
// retry delivers it (the cost the failure path did not pay before), with
// and without an fsync per append (the daemon syncs once per period).
func BenchmarkSpoolEarly(b *testing.B) {
	for _, fsync := range []bool{false, true} {
		b.Run(fmt.Sprintf("fsync=%v", fsync), func(b *testing.B) {
			sp, err := spool.Open(context.Background(), spool.Config{Dir: b.TempDir(), NoSync: !fsync})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { sp.Close() })
			client, err := librato.New(librato.Config{API: librato.Tagged, URL: "https://metrics-api.librato.com", DryRun: io.Discard})
			if err != nil {
				b.Fatal(err)
			}
			f := New(Config{API: librato.Tagged, Period: 10 * time.Second, Spool: sp}, aggregator.New(aggregator.Config{}), client)
			ms := make([]librato.Measurement, 300)
			for i := range ms {
				ms[i] = librato.Measurement{Name: fmt.Sprintf("app.http.request.duration.%04d", i),
					Tags:  []librato.Tag{{Name: "route", Value: fmt.Sprintf("/api/v1/r%d", i%50)}},
					Count: 100, Sum: 5000, Min: 1.5, Max: 200, SumSquares: 400000, Last: 4, HasLast: true}
			}
			batch := &librato.Batch{Time: t0.Unix(), Period: 10, Tags: []librato.Tag{{Name: "host", Value: "web-017"}}, Measurements: ms}
			s := f.lane.set.Load()
			b.ReportAllocs()
			for b.Loop() {
				it, err := f.lane.spoolEarly(s, batch)
				if err != nil || !it.spooled {
					b.Fatal("not spooled", err)
				}
				f.lane.ack(it.id)
			}
		})
	}
}
