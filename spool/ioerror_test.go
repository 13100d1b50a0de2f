package spool

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
)

// ioFault makes the spool's reads of segment files fail with err: at
// open, or at read, for the segment files whose base name is in only (all
// when only is empty), until cleared.
type ioFault struct {
	atOpen bool
	err    error
	only   []string
	on     bool
}

func (x *ioFault) hits(name string) bool {
	return x.on && (len(x.only) == 0 || slices.Contains(x.only, filepath.Base(name)))
}

func (x *ioFault) install(s *Spool) {
	s.openSeg = func(name string) (*os.File, error) {
		if x.atOpen && x.hits(name) {
			return nil, &os.PathError{Op: "open", Path: name, Err: x.err}
		}
		return os.Open(name)
	}
	s.readAt = func(f *os.File, b []byte, off int64) (int, error) {
		if !x.atOpen && x.hits(f.Name()) {
			return 0, &os.PathError{Op: "read", Path: f.Name(), Err: x.err}
		}
		return f.ReadAt(b, off)
	}
}

// spoolOfSix leaves six records, two a segment, in a closed spool in a
// new directory, and returns its configuration and the records.
func spoolOfSix(t *testing.T) (Config, []Record) {
	t.Helper()
	cfg := Config{Dir: t.TempDir(), SegmentBytes: 1000, NoSync: true}
	s := open(t, cfg)
	var all []Record
	for i := range 6 {
		all = append(all, rec(i, 400))
		mustAppend(t, s, all[i])
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if f := segFiles(t, cfg.Dir); len(f) != 3 {
		t.Fatalf("segments %v, want 3", f)
	}
	return cfg, all
}

// A segment file that cannot be opened or read (a transient error: too
// many open files, EIO, a network file system's hiccup) loses nothing:
// Take reports the error and returns no record of that file; the records
// stay, are taken once the error clears, and are still there after a
// restart. Only records proven damaged (framing, checksum) are skipped.
func TestTakeReadErrorKeepsRecords(t *testing.T) {
	for _, tc := range []struct {
		name   string
		atOpen bool
		err    syscall.Errno
	}{
		{"open EMFILE", true, syscall.EMFILE},
		{"open EIO", true, syscall.EIO},
		{"read EIO", false, syscall.EIO},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, all := spoolOfSix(t)
			fault := &ioFault{atOpen: tc.atOpen, err: tc.err, on: true}
			s := open(t, cfg)
			fault.install(s)
			for range 3 { // a flusher's refill calls again and again
				got, err := s.Take(10)
				if !errors.Is(err, tc.err) || !errors.Is(err, ErrRead) || len(got) != 0 {
					t.Fatalf("Take: %d records, %v; want none and %v", len(got), err, tc.err)
				}
			}
			st := s.Stats()
			if st.Pending.Records != 6 || st.CorruptRecords != 0 || st.Segments != 3 || st.ReadErrors < 3 {
				t.Fatalf("after failed Takes: %+v; want 6 pending, none corrupt, 3 segments, read errors counted", st)
			}
			if f := segFiles(t, cfg.Dir); len(f) != 3 {
				t.Fatalf("segments on disk %v, want 3", f)
			}
			fault.on = false
			sameRecords(t, takeAll(t, s, 4), all)
		})
		t.Run(tc.name+" then restart", func(t *testing.T) {
			cfg, all := spoolOfSix(t)
			fault := &ioFault{atOpen: tc.atOpen, err: tc.err, on: true}
			s := open(t, cfg)
			fault.install(s)
			if got, err := s.Take(10); !errors.Is(err, tc.err) || len(got) != 0 {
				t.Fatalf("Take: %d records, %v; want none and %v", len(got), err, tc.err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s2 := open(t, cfg)
			if st := s2.Stats(); st.Replayed.Records != 6 {
				t.Errorf("after restart: %+v, want 6 replayed", st)
			}
			sameRecords(t, takeAll(t, s2, 4), all)
		})
	}
}

// One segment that cannot be read does not hold back the others; its
// records are taken once it can be read again.
func TestTakeReadErrorInOneSegment(t *testing.T) {
	cfg, all := spoolOfSix(t)
	s := open(t, cfg)
	fault := &ioFault{err: syscall.EIO, only: []string{filepath.Base(segFiles(t, cfg.Dir)[1])}, on: true}
	fault.install(s)
	got, err := s.Take(10)
	if !errors.Is(err, syscall.EIO) || !errors.Is(err, ErrRead) {
		t.Errorf("Take: %v, want ErrRead and EIO", err)
	}
	sameRecords(t, got, []Record{all[0], all[1], all[4], all[5]})
	if err := s.Ack(ids(got)...); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Pending.Records != 2 || st.CorruptRecords != 0 || st.ReadErrors != 1 {
		t.Errorf("stats %+v, want 2 pending, none corrupt, 1 read error", st)
	}
	fault.on = false
	sameRecords(t, takeAll(t, s, 10), all[2:4])
}

// A segment cut short after Open is damage, not a transient error: the
// records past its end are skipped and counted, not tried forever.
func TestTakeTruncatedAfterOpen(t *testing.T) {
	cfg, all := spoolOfSix(t)
	s := open(t, cfg)
	f := segFiles(t, cfg.Dir)[1]
	if err := os.Truncate(f, segHeaderLen+frameHeader+400+10); err != nil {
		t.Fatal(err)
	}
	var got []Entry
	for range 3 {
		es, err := s.Take(10)
		if errors.Is(err, ErrRead) {
			t.Errorf("Take: %v, want damage, not ErrRead", err)
		}
		got = append(got, es...)
	}
	sameRecords(t, got, []Record{all[0], all[1], all[2], all[4], all[5]})
	if st := s.Stats(); st.Pending.Records != 5 || st.CorruptRecords != 1 {
		t.Errorf("stats %+v, want the 5 intact records pending and 1 corrupt", st)
	}
}

// A segment file removed behind the spool's back will not come back: its
// records are skipped as damage, not tried forever.
func TestTakeRemovedIsNotErrRead(t *testing.T) {
	cfg, all := spoolOfSix(t)
	s := open(t, cfg)
	if err := os.Remove(segFiles(t, cfg.Dir)[0]); err != nil {
		t.Fatal(err)
	}
	got, err := s.Take(10)
	if !errors.Is(err, os.ErrNotExist) || errors.Is(err, ErrRead) {
		t.Errorf("Take: %v, want ErrNotExist, not ErrRead", err)
	}
	sameRecords(t, got, all[2:])
	if st := s.Stats(); st.ReadErrors != 0 || st.CorruptRecords != 2 {
		t.Errorf("stats %+v", st)
	}
}
