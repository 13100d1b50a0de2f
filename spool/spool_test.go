package spool

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// rec returns a record whose payload and metadata derive from i.
func rec(i, size int) Record {
	p := make([]byte, size)
	for j := range p {
		p[j] = byte('a' + (i+j)%26)
	}
	copy(p, fmt.Sprintf("record-%d;", i))
	return Record{Time: 1_700_000_000 + int64(i)*10, Measurements: 300 + i, Kind: uint8(i % 3), Payload: p}
}

func open(t testing.TB, cfg Config) *Spool {
	t.Helper()
	s, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustAppend(t testing.TB, s *Spool, r Record) ID {
	t.Helper()
	id, err := s.Append(r)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return id
}

// takeAll takes everything waiting, k at a time.
func takeAll(t testing.TB, s *Spool, k int) []Entry {
	t.Helper()
	var all []Entry
	for range 1 << 20 {
		es, err := s.Take(k)
		if err != nil {
			t.Fatalf("Take: %v", err)
		}
		if len(es) == 0 {
			return all
		}
		all = append(all, es...)
	}
	t.Fatal("Take never ran dry")
	return nil
}

func ids(es []Entry) []ID {
	out := make([]ID, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

// sameRecords checks that got holds exactly the records want, in order.
func sameRecords(t *testing.T, got []Entry, want []Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d (first got: %v)", len(got), len(want), names(got))
	}
	for i := range want {
		g, w := got[i].Record, want[i]
		if g.Time != w.Time || g.Measurements != w.Measurements || g.Kind != w.Kind || !bytes.Equal(g.Payload, w.Payload) {
			t.Fatalf("record %d: got %q (time %d, %d measurements, kind %d), want %q (time %d, %d, kind %d)",
				i, head(g.Payload), g.Time, g.Measurements, g.Kind, head(w.Payload), w.Time, w.Measurements, w.Kind)
		}
	}
}

func head(p []byte) string {
	s, _, _ := strings.Cut(string(p[:min(len(p), 20)]), ";")
	return s
}

func names(es []Entry) []string {
	var out []string
	for _, e := range es[:min(len(es), 10)] {
		out = append(out, head(e.Payload))
	}
	return out
}

func segFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+segSuffix))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(m)
	return m
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name   string
		sizes  []int
		noSync bool
	}{
		{"empty payload", []int{0}, false},
		{"small", []int{1, 10, 100}, false},
		{"typical request", []int{40_000, 40_000}, false},
		{"no sync", []int{5, 40_000, 7}, true},
		{"one large", []int{3 << 20}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := open(t, Config{Dir: dir, NoSync: tc.noSync})
			var want []Record
			for i, n := range tc.sizes {
				r := rec(i, n)
				r.Payload = r.Payload[:n]
				want = append(want, r)
				mustAppend(t, s, r)
			}
			got := takeAll(t, s, 100)
			sameRecords(t, got, want)
			st := s.Stats()
			if st.Appended.Records != int64(len(want)) || st.Pending.Records != int64(len(want)) || st.InFlight.Records != int64(len(want)) {
				t.Errorf("stats before ack: %+v", st)
			}
			if err := s.Ack(ids(got)...); err != nil {
				t.Fatal(err)
			}
			st = s.Stats()
			if st.Acknowledged.Records != int64(len(want)) || st.Pending.Records != 0 || st.Bytes != 0 || st.Segments != 0 {
				t.Errorf("stats after ack: %+v", st)
			}
			if f := segFiles(t, dir); len(f) != 0 {
				t.Errorf("segments left after every record was acknowledged: %v", f)
			}
		})
	}
}

// A spool that is never appended to writes nothing but its lock file.
func TestNothingWrittenUnlessNeeded(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "spool")
	s := open(t, Config{Dir: dir})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != lockName {
		t.Errorf("directory holds %v, want only the lock file", ents)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %v, want 0700", fi.Mode().Perm())
	}
}

func TestOrderAcrossSegments(t *testing.T) {
	for _, k := range []int{1, 7, 1000} {
		t.Run(fmt.Sprint("take ", k), func(t *testing.T) {
			dir := t.TempDir()
			s := open(t, Config{Dir: dir, SegmentBytes: 4096, NoSync: true})
			var want []Record
			for i := range 100 {
				r := rec(i, 100+i*10)
				want = append(want, r)
				mustAppend(t, s, r)
			}
			if n := len(segFiles(t, dir)); n < 10 {
				t.Fatalf("%d segments, want many", n)
			}
			var got []Entry
			for {
				es, err := s.Take(k)
				if err != nil {
					t.Fatal(err)
				}
				if len(es) == 0 {
					break
				}
				got = append(got, es...)
				if err := s.Ack(ids(es)...); err != nil {
					t.Fatal(err)
				}
			}
			sameRecords(t, got, want)
			if f := segFiles(t, dir); len(f) != 0 {
				t.Errorf("segments left: %v", f)
			}
		})
	}
}

func TestReleaseReturnsRecordsInPlace(t *testing.T) {
	s := open(t, Config{Dir: t.TempDir(), NoSync: true})
	var want []Record
	for i := range 6 {
		want = append(want, rec(i, 50))
		mustAppend(t, s, want[i])
	}
	a, _ := s.Take(2) // 0, 1
	b, _ := s.Take(2) // 2, 3
	s.Release(a[1].ID, b[0].ID)
	if err := s.Ack(a[0].ID, b[1].ID); err != nil {
		t.Fatal(err)
	}
	got := takeAll(t, s, 10)
	sameRecords(t, got, []Record{want[1], want[2], want[4], want[5]})
}

func TestRestartReplaysUnacknowledgedOnly(t *testing.T) {
	dir := t.TempDir()
	s := open(t, Config{Dir: dir, SegmentBytes: 2000, NoSync: true})
	var all []Record
	var idl []ID
	for i := range 20 {
		all = append(all, rec(i, 300))
		idl = append(idl, mustAppend(t, s, all[i]))
	}
	taken, err := s.Take(12)
	if err != nil || len(taken) != 12 {
		t.Fatalf("Take: %d, %v", len(taken), err)
	}
	// Acknowledged out of order; 3 and 11 stay in flight at Close, 5 is
	// released.
	acked := map[int]bool{0: true, 1: true, 2: true, 4: true, 9: true, 7: true, 6: true, 10: true, 8: true}
	for i := range 12 {
		if acked[i] {
			if err := s.Ack(idl[i]); err != nil {
				t.Fatal(err)
			}
		}
	}
	s.Release(idl[5])
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2 := open(t, Config{Dir: dir, SegmentBytes: 2000, NoSync: true})
	var want []Record
	for i := range 20 {
		if !acked[i] {
			want = append(want, all[i])
		}
	}
	st := s2.Stats()
	if st.Replayed.Records != int64(len(want)) || st.Pending.Records != int64(len(want)) {
		t.Errorf("replayed %d, pending %d, want %d", st.Replayed.Records, st.Pending.Records, len(want))
	}
	var wantM int64
	for _, r := range want {
		wantM += int64(r.Measurements)
	}
	if st.Replayed.Measurements != wantM {
		t.Errorf("replayed %d measurements, want %d", st.Replayed.Measurements, wantM)
	}
	// New records come after the replayed ones.
	extra := rec(99, 10)
	mustAppend(t, s2, extra)
	got := takeAll(t, s2, 3)
	sameRecords(t, got, append(want, extra))
	if err := s2.Ack(ids(got)...); err != nil {
		t.Fatal(err)
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	s3 := open(t, Config{Dir: dir})
	if st := s3.Stats(); st.Replayed.Records != 0 || st.Segments != 0 {
		t.Errorf("after everything was acknowledged: %+v", st)
	}
	if f := segFiles(t, dir); len(f) != 0 {
		t.Errorf("segments left: %v", f)
	}
}

// writeSegment appends the records to a fresh spool in dir, closes it and
// returns the frame offsets of the records in the single segment file.
func writeSegment(t *testing.T, dir string, recs []Record) (path string, offs []int) {
	t.Helper()
	s := open(t, Config{Dir: dir, NoSync: true})
	off := segHeaderLen
	for _, r := range recs {
		mustAppend(t, s, r)
		offs = append(offs, off)
		off += frameHeader + len(r.Payload)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	f := segFiles(t, dir)
	if len(f) != 1 {
		t.Fatalf("segments %v, want one", f)
	}
	return f[0], offs
}

func TestTornTail(t *testing.T) {
	recs := []Record{rec(0, 500), rec(1, 500), rec(2, 500)}
	last := segHeaderLen + 2*(frameHeader+500)
	for _, tc := range []struct {
		name    string
		cut     int // file length after the cut
		want    []Record
		badRecs int64
	}{
		{"in the magic", last + 2, recs[:2], 1},
		{"in the header", last + 10, recs[:2], 1},
		{"just after the header", last + frameHeader, recs[:2], 1},
		{"in the payload", last + frameHeader + 250, recs[:2], 1},
		{"one byte short", last + frameHeader + 499, recs[:2], 1},
		{"at a record boundary", last, recs[:2], 0},
		{"in the file header", 7, nil, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path, _ := writeSegment(t, dir, recs)
			if err := os.Truncate(path, int64(tc.cut)); err != nil {
				t.Fatal(err)
			}
			s := open(t, Config{Dir: dir})
			st := s.Stats()
			wantBad := 0
			if tc.badRecs > 0 {
				wantBad = tc.cut - last
				if tc.cut < last {
					wantBad = tc.cut
				}
			}
			if st.CorruptRecords != tc.badRecs || st.CorruptBytes != int64(wantBad) {
				t.Errorf("corrupt %d records, %d bytes; want %d, %d", st.CorruptRecords, st.CorruptBytes, tc.badRecs, wantBad)
			}
			got := takeAll(t, s, 10)
			sameRecords(t, got, tc.want)
			// Once its records are acknowledged the damaged segment goes.
			if err := s.Ack(ids(got)...); err != nil {
				t.Fatal(err)
			}
			if f := segFiles(t, dir); len(f) != 0 {
				t.Errorf("segments left: %v", f)
			}
		})
	}
}

func TestFlippedByte(t *testing.T) {
	recs := []Record{rec(0, 400), rec(1, 400), rec(2, 400), rec(3, 400), rec(4, 400)}
	frameLen := frameHeader + 400
	for _, tc := range []struct {
		name    string
		at      func(offs []int) int
		want    []Record
		badRecs int64
		bad     int64
	}{
		{"payload of the middle record", func(o []int) int { return o[2] + frameHeader + 200 }, slices.Delete(slices.Clone(recs), 2, 3), 1, int64(frameLen)},
		{"magic", func(o []int) int { return o[2] + 1 }, slices.Delete(slices.Clone(recs), 2, 3), 1, int64(frameLen)},
		{"checksum", func(o []int) int { return o[1] + 5 }, slices.Delete(slices.Clone(recs), 1, 2), 1, int64(frameLen)},
		{"length", func(o []int) int { return o[3] + 8 }, slices.Delete(slices.Clone(recs), 3, 4), 1, int64(frameLen)},
		{"time", func(o []int) int { return o[0] + 13 }, recs[1:], 1, int64(frameLen)},
		{"last byte of the file", func(o []int) int { return o[4] + frameLen - 1 }, recs[:4], 1, int64(frameLen)},
		{"file header", func(o []int) int { return 3 }, recs, 1, segHeaderLen},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path, offs := writeSegment(t, dir, recs)
			flip(t, path, tc.at(offs))
			s := open(t, Config{Dir: dir})
			st := s.Stats()
			if st.CorruptRecords != tc.badRecs || st.CorruptBytes != tc.bad {
				t.Errorf("corrupt %d records, %d bytes; want %d, %d", st.CorruptRecords, st.CorruptBytes, tc.badRecs, tc.bad)
			}
			sameRecords(t, takeAll(t, s, 2), tc.want)
		})
	}
}

func flip(t *testing.T, path string, at int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[at] ^= 0x10
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// Damage after Open (the index is in memory, the payload is read at Take)
// is detected too, and the record skipped for good.
func TestDamageAfterOpen(t *testing.T) {
	dir := t.TempDir()
	s := open(t, Config{Dir: dir, NoSync: true})
	recs := []Record{rec(0, 100), rec(1, 100), rec(2, 100)}
	for _, r := range recs {
		mustAppend(t, s, r)
	}
	flip(t, segFiles(t, dir)[0], segHeaderLen+frameHeader+100+frameHeader+50)
	sameRecords(t, takeAll(t, s, 10), []Record{recs[0], recs[2]})
	if st := s.Stats(); st.CorruptRecords != 1 || st.CorruptBytes != frameHeader+100 || st.Pending.Records != 2 {
		t.Errorf("stats %+v", st)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// The damaged record was acknowledged as gone: not taken again (its
	// bytes are still in the file, so Open counts them again).
	s2 := open(t, Config{Dir: dir})
	if st := s2.Stats(); st.Replayed.Records != 2 || st.CorruptRecords != 1 {
		t.Errorf("after restart: %+v", st)
	}
}

// A damaged or torn acknowledgement only makes its record come back.
func TestDamagedAcks(t *testing.T) {
	dir := t.TempDir()
	s := open(t, Config{Dir: dir, NoSync: true})
	recs := []Record{rec(0, 100), rec(1, 100), rec(2, 100), rec(3, 100)}
	for _, r := range recs {
		mustAppend(t, s, r)
	}
	got := takeAll(t, s, 10)
	if err := s.Ack(got[0].ID, got[1].ID, got[2].ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ap := strings.TrimSuffix(segFiles(t, dir)[0], segSuffix) + ackSuffix
	b, err := os.ReadFile(ap)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 3*ackEntryLen {
		t.Fatalf("ack file of %d bytes", len(b))
	}
	b[ackEntryLen+1] ^= 1 // damage the second entry
	b = b[:len(b)-3]      // tear the third
	if err := os.WriteFile(ap, b, 0o600); err != nil {
		t.Fatal(err)
	}
	s2 := open(t, Config{Dir: dir})
	sameRecords(t, takeAll(t, s2, 10), recs[1:])
}

func TestMaxBytesEvictsOldestSegments(t *testing.T) {
	const size = 1000
	frameLen := frameHeader + size
	perSeg := 4
	segBytes := int64(segHeaderLen + perSeg*frameLen)
	maxBytes := 3 * segBytes // room for three full segments
	for _, tc := range []struct {
		name     string
		appends  int
		wantKept int // the newest records kept
	}{
		{"under the limit", 12, 12},
		{"one past", 13, 9},
		{"many past", 50, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := open(t, Config{Dir: dir, MaxBytes: maxBytes, SegmentBytes: segBytes, NoSync: true})
			var all []Record
			for i := range tc.appends {
				all = append(all, rec(i, size))
				mustAppend(t, s, all[i])
				if st := s.Stats(); st.Bytes > maxBytes {
					t.Fatalf("after append %d: %d bytes, more than %d", i, st.Bytes, maxBytes)
				}
			}
			st := s.Stats()
			dropped := tc.appends - tc.wantKept
			var dm int64
			for _, r := range all[:dropped] {
				dm += int64(r.Measurements)
			}
			if d := st.Dropped[ReasonFull]; d.Records != int64(dropped) || d.Measurements != dm {
				t.Errorf("dropped %+v, want %d records, %d measurements", d, dropped, dm)
			}
			sameRecords(t, takeAll(t, s, 100), all[dropped:])
		})
	}
}

// Records in flight when their segment is evicted: Ack does not count them
// as dropped, Release does.
func TestEvictionOfRecordsInFlight(t *testing.T) {
	const size = 1000
	segBytes := int64(segHeaderLen + 2*(frameHeader+size))
	s := open(t, Config{Dir: t.TempDir(), MaxBytes: 2 * segBytes, SegmentBytes: segBytes, NoSync: true})
	for i := range 4 {
		mustAppend(t, s, rec(i, size))
	}
	taken, _ := s.Take(2) // records 0 and 1, the first segment
	mustAppend(t, s, rec(4, size))
	st := s.Stats()
	if d := st.Dropped[ReasonFull]; d.Records != 0 {
		t.Fatalf("records in flight counted as dropped at eviction: %+v", d)
	}
	if st.InFlight.Records != 2 {
		t.Errorf("in flight %d, want 2", st.InFlight.Records)
	}
	if err := s.Ack(taken[0].ID); err != nil {
		t.Fatal(err)
	}
	s.Release(taken[1].ID)
	st = s.Stats()
	if d := st.Dropped[ReasonFull]; d.Records != 1 || d.Measurements != int64(rec(1, 0).Measurements) {
		t.Errorf("dropped %+v, want record 1 only", d)
	}
	if st.InFlight.Records != 0 {
		t.Errorf("in flight %d, want 0", st.InFlight.Records)
	}
	sameRecords(t, takeAll(t, s, 10), []Record{rec(2, size), rec(3, size), rec(4, size)})
}

func TestTooLarge(t *testing.T) {
	s := open(t, Config{Dir: t.TempDir(), MaxBytes: 10_000})
	mustAppend(t, s, rec(0, 100))
	for _, r := range []Record{
		{Payload: make([]byte, 10_000)},
		{Payload: make([]byte, MaxPayload+1)},
		{Measurements: -1},
	} {
		_, err := s.Append(r)
		if !errors.Is(err, ErrTooLarge) || !errors.Is(err, ErrWrite) {
			t.Errorf("Append of %d bytes: %v, want ErrTooLarge and ErrWrite", len(r.Payload), err)
		}
	}
	// Nothing was evicted for a record that could never fit.
	if st := s.Stats(); st.Pending.Records != 1 || st.WriteErrors != 3 {
		t.Errorf("stats %+v", st)
	}
}

func TestDropOlderThan(t *testing.T) {
	dir := t.TempDir()
	s := open(t, Config{Dir: dir, SegmentBytes: 1000, NoSync: true})
	var all []Record
	for i := range 10 {
		all = append(all, rec(i, 200)) // times 1_700_000_000 + 10 i
		mustAppend(t, s, all[i])
	}
	inflight, _ := s.Take(1) // record 0 is not dropped: the caller holds it
	cut := time.Unix(all[5].Time, 0)
	c, err := s.DropOlderThan(cut)
	if err != nil {
		t.Fatal(err)
	}
	var wantM int64
	for _, r := range all[1:5] {
		wantM += int64(r.Measurements)
	}
	if c.Records != 4 || c.Measurements != wantM {
		t.Errorf("dropped %+v, want 4 records, %d measurements", c, wantM)
	}
	if d := s.Stats().Dropped[ReasonTooOld]; d != c {
		t.Errorf("Stats: %+v, want %+v", d, c)
	}
	if oldest, ok := s.Oldest(); !ok || oldest != all[5].Time {
		t.Errorf("Oldest: %d %v, want %d", oldest, ok, all[5].Time)
	}
	s.Release(inflight[0].ID)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := open(t, Config{Dir: dir})
	sameRecords(t, takeAll(t, s2, 10), append([]Record{all[0]}, all[5:]...))
}

func TestVersionRefused(t *testing.T) {
	dir := t.TempDir()
	path, _ := writeSegment(t, dir, []Record{rec(0, 10)})
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	hv := segHeaderWithVersion(2)
	copy(b, hv[:])
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Open(context.Background(), Config{Dir: dir})
	if !errors.Is(err, ErrVersion) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Open: %v, want ErrVersion naming %s", err, path)
	}
	// The lock was released: a spool can open the directory once the file
	// is moved away.
	if err := os.Rename(path, path+".v2"); err != nil {
		t.Fatal(err)
	}
	open(t, Config{Dir: dir})
}

func segHeaderWithVersion(v byte) [segHeaderLen]byte {
	h := segHeader()
	h[8] = v
	binary.LittleEndian.PutUint32(h[12:], crc32.Checksum(h[:12], castagnoli))
	return h
}

func TestLockConflict(t *testing.T) {
	dir := t.TempDir()
	s := open(t, Config{Dir: dir})
	_, err := Open(context.Background(), Config{Dir: dir})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	if !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), fmt.Sprint("pid ", os.Getpid())) {
		t.Errorf("error %q does not name the directory and the holder", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	open(t, Config{Dir: dir}) // free again
}

// The lock holds against another process, and dies with its holder.
func TestLockConflictAcrossProcesses(t *testing.T) {
	if dir := os.Getenv("SPOOL_TEST_LOCK_DIR"); dir != "" {
		// The child: try to open the spool and report.
		s, err := Open(context.Background(), Config{Dir: dir})
		if err != nil {
			fmt.Println("open failed:", err)
			os.Exit(3)
		}
		s.Close()
		fmt.Println("opened")
		os.Exit(0)
	}
	dir := t.TempDir()
	child := func() (string, int) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestLockConflictAcrossProcesses$", "-test.count=1")
		cmd.Env = append(os.Environ(), "SPOOL_TEST_LOCK_DIR="+dir)
		out, err := cmd.CombinedOutput()
		code := 0
		if err != nil {
			code = cmd.ProcessState.ExitCode()
		}
		return string(out), code
	}
	s := open(t, Config{Dir: dir})
	out, code := child()
	if code != 3 || !strings.Contains(out, "in use by another process") || !strings.Contains(out, dir) {
		t.Errorf("child with the lock held: exit %d, %q", code, out)
	}
	s.Close()
	out, code = child()
	if code != 0 || !strings.Contains(out, "opened") {
		t.Errorf("child with the lock free: exit %d, %q", code, out)
	}
}

func TestConcurrentAppendAndReader(t *testing.T) {
	s := open(t, Config{Dir: t.TempDir(), SegmentBytes: 8192, NoSync: true})
	const writers, per = 4, 200
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range per {
				if _, err := s.Append(rec(w*per+i, 64)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	seen := make(map[string]int)
	stop := make(chan struct{})
	var rg sync.WaitGroup
	rg.Go(func() {
		for {
			es, err := s.Take(5)
			if err != nil {
				t.Error(err)
				return
			}
			for i, e := range es {
				if i%3 == 1 { // some fail and come back
					s.Release(e.ID)
					continue
				}
				seen[head(e.Payload)]++
				if err := s.Ack(e.ID); err != nil {
					t.Error(err)
				}
			}
			if len(es) == 0 {
				select {
				case <-stop:
					return
				default:
				}
			}
			_ = s.Stats()
		}
	})
	wg.Wait()
	close(stop)
	rg.Wait()
	for _, e := range takeAll(t, s, 10) {
		seen[head(e.Payload)]++
	}
	if len(seen) != writers*per {
		t.Errorf("%d distinct records, want %d", len(seen), writers*per)
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("%s delivered %d times", k, n)
		}
	}
}

func TestClosed(t *testing.T) {
	s := open(t, Config{Dir: t.TempDir()})
	id := mustAppend(t, s, rec(0, 10))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := s.Append(rec(1, 10)); !errors.Is(err, ErrClosed) || !errors.Is(err, ErrWrite) {
		t.Errorf("Append after Close: %v", err)
	}
	if _, err := s.Take(1); !errors.Is(err, ErrClosed) {
		t.Errorf("Take after Close: %v", err)
	}
	if err := s.Ack(id); !errors.Is(err, ErrClosed) {
		t.Errorf("Ack after Close: %v", err)
	}
}

func TestOpenCancelled(t *testing.T) {
	dir := t.TempDir()
	writeSegment(t, dir, []Record{rec(0, 10)})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Open(ctx, Config{Dir: dir}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Open: %v, want context.Canceled", err)
	}
	open(t, Config{Dir: dir}) // and the lock was released
}

// Leftovers of a crash between removing a segment and its acknowledgements,
// and files that are not the spool's, are handled.
func TestStrayFiles(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"000000007.ack":    "12345678",
		"notes.txt":        "keep me",
		"x.spool":          "keep me",
		"0000000001.spool": "keep me", // not a name the spool writes
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s := open(t, Config{Dir: dir})
	if _, err := os.Stat(filepath.Join(dir, "000000007.ack")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("orphan acknowledgement file kept: %v", err)
	}
	for _, n := range []string{"notes.txt", "x.spool", "0000000001.spool"} {
		if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
			t.Errorf("foreign file %s: %v", n, err)
		}
	}
	// Numbering continues past the orphan, so an old acknowledgement can
	// never apply to a new segment.
	mustAppend(t, s, rec(0, 10))
	if f := segFiles(t, dir); len(f) != 3 || filepath.Base(f[1]) != "000000008.spool" {
		t.Errorf("segments %v, want 000000008.spool (and x.spool)", f)
	}
}

// A segment that cannot be read (here: deleted behind the spool's back)
// does not stop the records behind it.
func TestUnreadableSegmentSkipped(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Dir: dir, SegmentBytes: 1000, NoSync: true}
	s := open(t, cfg)
	var all []Record
	for i := range 6 {
		all = append(all, rec(i, 400)) // two a segment
		mustAppend(t, s, all[i])
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, cfg)
	f := segFiles(t, dir)
	if len(f) != 3 {
		t.Fatalf("segments %v, want 3", f)
	}
	if err := os.Remove(f[1]); err != nil {
		t.Fatal(err)
	}
	got, err := s.Take(10)
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Take: %v, want the read error", err)
	}
	sameRecords(t, got, []Record{all[0], all[1], all[4], all[5]})
	if st := s.Stats(); st.CorruptRecords != 2 || st.Segments != 2 {
		t.Errorf("stats %+v", st)
	}
	if got, err := s.Take(10); err != nil || len(got) != 0 {
		t.Errorf("second Take: %d records, %v", len(got), err)
	}
}

// MaxBytes lowered between runs: Open drops the oldest segments.
func TestMaxBytesLoweredAtOpen(t *testing.T) {
	dir := t.TempDir()
	segBytes := int64(segHeaderLen + 2*(frameHeader+400))
	s := open(t, Config{Dir: dir, SegmentBytes: segBytes, NoSync: true})
	var all []Record
	for i := range 6 {
		all = append(all, rec(i, 400))
		mustAppend(t, s, all[i])
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, Config{Dir: dir, MaxBytes: 2 * segBytes})
	st := s.Stats()
	if d := st.Dropped[ReasonFull]; d.Records != 2 || st.Replayed.Records != 4 || st.Bytes != 2*segBytes {
		t.Errorf("stats %+v", st)
	}
	sameRecords(t, takeAll(t, s, 10), all[2:])
}

// Sync, after appends with NoSync, reaches every segment written since the
// last Sync, not only the one being appended to.
func TestSyncCoversRotatedSegments(t *testing.T) {
	dir := t.TempDir()
	s := open(t, Config{Dir: dir, SegmentBytes: 1000, NoSync: true})
	var synced []string
	s.syncFile = func(f *os.File) error {
		synced = append(synced, filepath.Base(f.Name()))
		return f.Sync()
	}
	for i := range 8 {
		mustAppend(t, s, rec(i, 400)) // two a segment
	}
	if len(synced) != 0 {
		t.Fatalf("NoSync appends synced %v", synced)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	want := []string{"000000001.spool", "000000002.spool", "000000003.spool", "000000004.spool"}
	if !slices.Equal(synced, want) {
		t.Errorf("Sync synced %v, want %v", synced, want)
	}
	synced = nil
	if err := s.Sync(); err != nil || len(synced) != 0 {
		t.Errorf("second Sync: %v, synced %v", err, synced)
	}
	mustAppend(t, s, rec(8, 400))
	if err := s.Close(); err != nil || !slices.Equal(synced, []string{"000000005.spool"}) {
		t.Errorf("Close: %v, synced %v", err, synced)
	}
}

// Without NoSync every Append is synced before it returns.
func TestSyncEachAppend(t *testing.T) {
	s := open(t, Config{Dir: t.TempDir(), SegmentBytes: 1000})
	n := 0
	s.syncFile = func(f *os.File) error { n++; return f.Sync() }
	for i := range 4 {
		mustAppend(t, s, rec(i, 400))
	}
	if n != 4+2 { // 4 records, 2 segment headers
		t.Errorf("%d fsyncs, want 6", n)
	}
	s.syncFile = func(*os.File) error { return syscall.EIO }
	if _, err := s.Append(rec(4, 400)); !errors.Is(err, ErrWrite) || !errors.Is(err, syscall.EIO) {
		t.Errorf("Append with a failing fsync: %v", err)
	}
	if st := s.Stats(); st.Pending.Records != 4 {
		t.Errorf("a record whose fsync failed is kept: %+v", st)
	}
}
