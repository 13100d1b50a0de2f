package spool

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// requestBody returns a tagged-API request body of n summary measurements
// much like the flusher's (about 135 bytes each: 300 make 40 KB).
func requestBody(n int) []byte {
	b := []byte(`{"time":1700000000,"period":10,"tags":{"host":"web-017","env":"prod"},"measurements":[`)
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = fmt.Appendf(b, `{"name":"app.http.request.duration.%04d","count":%d,"sum":%d.25,"min":1.5,"max":%d.75,"stddev":20.125,"tags":{"route":"/api/v1/r%d"}}`,
			i, 100+i, 5000+i*7, 200+i, i%50)
	}
	return append(b, "]}"...)
}

func TestRequestBodySize(t *testing.T) {
	if n := len(requestBody(300)); n < 38_000 || n > 44_000 {
		t.Errorf("a 300-measurement body is %d bytes, want about 40 KB", n)
	}
}

func BenchmarkAppend(b *testing.B) {
	body := requestBody(300)
	for _, bc := range []struct {
		name      string
		noSync    bool
		syncEvery int // Sync after this many appends (with NoSync)
	}{
		{"fsync-each", false, 0},
		{"fsync-every-10", true, 10},
		{"fsync-per-period-of-1M", true, 3334}, // one flush of 1,000,000 series, then Sync
		{"no-fsync", true, 0},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := open(b, Config{Dir: b.TempDir(), MaxBytes: 256 << 20, NoSync: bc.noSync})
			r := Record{Time: 1_700_000_000, Measurements: 300, Payload: body}
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := s.Append(r); err != nil {
					b.Fatal(err)
				}
				i++
				if bc.syncEvery > 0 && i%bc.syncEvery == 0 {
					if err := s.Sync(); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// BenchmarkReplay opens a spool holding 1,000,200 measurements (3,334
// requests of 300, 40 KB each, 134 MB) left by an earlier process, and
// takes and acknowledges everything, 64 records at a time, as a resender
// would.
func BenchmarkReplay(b *testing.B) {
	const records, per = 3334, 300
	body := requestBody(per)
	src := b.TempDir()
	s := open(b, Config{Dir: src, NoSync: true})
	for i := range records {
		if _, err := s.Append(Record{Time: 1_700_000_000 + int64(i)*10, Measurements: per, Payload: body}); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	segs, err := filepath.Glob(filepath.Join(src, "*"+segSuffix))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(records * len(body)))
	b.ReportAllocs()
	for n := 0; b.Loop(); n++ {
		b.StopTimer()
		// A fresh copy, by hard links: the spool never writes to an old
		// segment, it only removes it.
		dir := filepath.Join(b.TempDir(), strconv.Itoa(n))
		if err := os.Mkdir(dir, 0o700); err != nil {
			b.Fatal(err)
		}
		for _, p := range segs {
			if err := os.Link(p, filepath.Join(dir, filepath.Base(p))); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		s, err := Open(context.Background(), Config{Dir: dir})
		if err != nil {
			b.Fatal(err)
		}
		got := 0
		for {
			es, err := s.Take(64)
			if err != nil {
				b.Fatal(err)
			}
			if len(es) == 0 {
				break
			}
			got += len(es)
			if err := s.Ack(ids(es)...); err != nil {
				b.Fatal(err)
			}
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		if got != records {
			b.Fatalf("replayed %d records, want %d", got, records)
		}
	}
	sec := b.Elapsed().Seconds()
	b.ReportMetric(float64(records*b.N)/sec, "records/s")
	b.ReportMetric(float64(records*per*b.N)/sec, "measurements/s")
}
