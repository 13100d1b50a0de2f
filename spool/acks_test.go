package spool

import (
	"os"
	"strings"
	"testing"
)

// ackFile returns the path of the acknowledgement file of the first
// segment in dir.
func ackFile(t *testing.T, dir string) string {
	t.Helper()
	return strings.TrimSuffix(segFiles(t, dir)[0], segSuffix) + ackSuffix
}

// A torn acknowledgement (the process died in the middle of writing one)
// must not break the ones written after it: records acknowledged before
// or after the damage are never taken again, over two more restarts.
func TestTornAckThenMoreAcks(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Dir: dir, NoSync: true}
	s := open(t, cfg)
	var all []Record
	for i := range 8 {
		all = append(all, rec(i, 100))
		mustAppend(t, s, all[i])
	}
	got := takeAll(t, s, 10)
	if err := s.Ack(got[0].ID, got[1].ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// The acknowledgement of record 2 was being written: 3 of its 8 bytes
	// made it.
	ap := ackFile(t, dir)
	b, err := os.ReadFile(ap)
	if err != nil {
		t.Fatal(err)
	}
	torn := ackEntry(got[2].ID.seq, uint32(segHeaderLen+2*(frameHeader+100)))
	if err := os.WriteFile(ap, append(b, torn[:3]...), 0o600); err != nil {
		t.Fatal(err)
	}

	s = open(t, cfg)
	got = takeAll(t, s, 10)
	sameRecords(t, got, all[2:])
	// Acknowledge records 2, 3 and 4.
	if err := s.Ack(got[0].ID, got[1].ID, got[2].ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, cfg)
	got = takeAll(t, s, 10)
	sameRecords(t, got, all[5:])
	if err := s.Ack(got[0].ID); err != nil { // record 5
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, cfg)
	sameRecords(t, takeAll(t, s, 10), all[6:])
}

// An acknowledgement file already misaligned by an earlier version (a
// torn entry, then entries appended after it) is read whole: the entries
// after the damage count too.
func TestMisalignedAcksAreRealigned(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Dir: dir, NoSync: true}
	s := open(t, cfg)
	var all []Record
	for i := range 6 {
		all = append(all, rec(i, 100))
		mustAppend(t, s, all[i])
	}
	got := takeAll(t, s, 10)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	off := func(i int) uint32 { return uint32(segHeaderLen + i*(frameHeader+100)) }
	seq := got[0].ID.seq
	var b []byte
	for _, i := range []int{0, 1} {
		e := ackEntry(seq, off(i))
		b = append(b, e[:]...)
	}
	e := ackEntry(seq, off(2))
	b = append(b, e[:5]...) // torn
	for _, i := range []int{3, 4} {
		e := ackEntry(seq, off(i))
		b = append(b, e[:]...)
	}
	if err := os.WriteFile(ackFile(t, dir), b, 0o600); err != nil {
		t.Fatal(err)
	}
	s = open(t, cfg)
	sameRecords(t, takeAll(t, s, 10), []Record{all[2], all[5]})
}

// Open trims what follows the last valid acknowledgement, so that the
// entries appended next are aligned again.
func TestOpenTrimsTornAck(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Dir: dir, NoSync: true}
	s := open(t, cfg)
	for i := range 3 {
		mustAppend(t, s, rec(i, 100))
	}
	got := takeAll(t, s, 10)
	if err := s.Ack(got[0].ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ap := ackFile(t, dir)
	b, err := os.ReadFile(ap)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ap, append(b, 0xAA, 0xBB, 0xCC), 0o600); err != nil {
		t.Fatal(err)
	}
	s = open(t, cfg)
	fi, err := os.Stat(ap)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != ackEntryLen {
		t.Errorf("acknowledgement file of %d bytes after Open, want %d", fi.Size(), ackEntryLen)
	}
	if st := s.Stats(); st.Bytes != int64(segHeaderLen+3*(frameHeader+100)+ackEntryLen) {
		t.Errorf("spool bytes %d, want the segment and one entry", st.Bytes)
	}
}
