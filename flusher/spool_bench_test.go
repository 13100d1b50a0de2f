package flusher

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/libratod/libratod/aggregator"
	"github.com/libratod/libratod/librato"
	"github.com/libratod/libratod/parser"
	"github.com/libratod/libratod/spool"
)

// BenchmarkFlushSpool is BenchmarkFlush's 10,000 series with Librato
// healthy (a dry-run client), without and with a spool: the spool must
// cost nothing on the happy path.
func BenchmarkFlushSpool(b *testing.B) {
	for _, withSpool := range []bool{false, true} {
		b.Run(fmt.Sprintf("spool=%v", withSpool), func(b *testing.B) {
			const n = 10_000
			client, err := librato.New(librato.Config{API: librato.Tagged, URL: "https://metrics-api.librato.com", DryRun: io.Discard})
			if err != nil {
				b.Fatal(err)
			}
			cfg := Config{API: librato.Tagged, Period: 10 * time.Second, Tags: []librato.Tag{{Name: "host", Value: "h"}}}
			if withSpool {
				cfg.Spool = openSpool(b, b.TempDir())
			}
			a := aggregator.New(aggregator.Config{})
			f := New(cfg, a, client)
			w := a.NewWriter()
			names := make([][]byte, n)
			for i := range names {
				names[i] = fmt.Appendf(nil, "app.requests.%d", i)
			}
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				for i := range names {
					m := parser.Metric{Name: names[i], Tags: []byte("env:prod,region:eu"), Type: parser.Counter, Value: 1, Rate: 1}
					_ = w.Add(&m)
				}
				b.StartTimer()
				if res := f.Flush(context.Background(), t0); res.Sent != n {
					b.Fatalf("sent %d of %d", res.Sent, n)
				}
			}
			if cfg.Spool != nil {
				if st := cfg.Spool.Stats(); st.Appended.Records != 0 {
					b.Fatalf("the happy path wrote %d records", st.Appended.Records)
				}
			}
		})
	}
}

// nopSender takes every batch.
type nopSender struct{}

func (nopSender) Send(_ context.Context, b *librato.Batch) (librato.Result, error) {
	return librato.Result{StatusCode: 202, Sent: len(b.Measurements)}, nil
}

// BenchmarkReplay replays a spool of 1,000,000 timer measurements (3,334
// requests of 300) through a new flusher to a sender that takes
// everything: Open's scan, the reads, decoding and the acknowledgements.
func BenchmarkReplay(b *testing.B) {
	const total, per = 1_000_000, 300
	src := b.TempDir()
	sp, err := spool.Open(context.Background(), spool.Config{Dir: src, NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().Unix()
	ms := make([]librato.Measurement, per)
	for i := range ms {
		ms[i] = librato.Measurement{Name: fmt.Sprintf("app.latency.%d", i), Tags: []librato.Tag{{Name: "env", Value: "prod"}},
			Count: 10, Sum: 55, Min: 1, Max: 10, SumSquares: 385, Last: 4, HasLast: true}
	}
	var buf []byte
	for done := 0; done < total; done += per {
		k := min(per, total-done)
		batch := &librato.Batch{Time: now, Period: 10, Tags: []librato.Tag{{Name: "host", Value: "h"}}, Measurements: ms[:k]}
		buf = librato.MarshalBatch(buf[:0], batch)
		if _, err := sp.Append(spool.Record{Time: now, Measurements: k, Kind: uint8(librato.Tagged), Payload: buf}); err != nil {
			b.Fatal(err)
		}
	}
	if err := sp.Close(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		dir := filepath.Join(b.TempDir(), "spool")
		if out, err := exec.Command("cp", "-r", src, dir).CombinedOutput(); err != nil {
			b.Fatalf("cp: %v: %s", err, out)
		}
		os.Remove(filepath.Join(dir, "lock"))
		b.StartTimer()
		sp, err := spool.Open(context.Background(), spool.Config{Dir: dir, NoSync: true})
		if err != nil {
			b.Fatal(err)
		}
		f := New(Config{API: librato.Tagged, Period: 10 * time.Second, Spool: sp, Concurrency: 4, Backlog: 100_000}, aggregator.New(aggregator.Config{}), nopSender{})
		f.drainAll(context.Background())
		if sent := f.sent.Load(); sent != total {
			b.Fatalf("replayed %d of %d", sent, total)
		}
		b.StopTimer()
		sp.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(total)*float64(b.N)/b.Elapsed().Seconds(), "measurements/s")
}
