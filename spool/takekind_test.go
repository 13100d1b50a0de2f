package spool

import (
	"context"
	"testing"
)

// TestTakeKind: TakeKind takes the records of its kind alone, oldest
// first; Take then takes the others, in order, and none of TakeKind's;
// what TakeKind took and did not acknowledge is read back by the next
// Open.
func TestTakeKind(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(context.Background(), Config{Dir: dir, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range []uint8{1, 7, 1, 7, 1} {
		if _, err := s.Append(Record{Time: int64(i), Measurements: int(k), Kind: k, Payload: []byte{byte(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	es, err := s.TakeKind(7, 10)
	if err != nil || len(es) != 2 || es[0].Payload[0] != 1 || es[1].Payload[0] != 3 {
		t.Fatalf("TakeKind(7) = %+v, %v; want records 1 and 3", es, err)
	}
	if err := s.Ack(es[0].ID); err != nil {
		t.Fatal(err)
	}
	rest, err := s.Take(10)
	if err != nil || len(rest) != 3 {
		t.Fatalf("Take = %+v, %v; want the 3 records of kind 1", rest, err)
	}
	for i, e := range rest {
		if e.Kind != 1 || e.Payload[0] != byte(2*i) {
			t.Errorf("Take's record %d: %+v, want kind 1, payload %d", i, e, 2*i)
		}
	}
	if more, _ := s.TakeKind(7, 10); len(more) != 0 {
		t.Errorf("TakeKind again: %+v, want nothing (all taken)", more)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(context.Background(), Config{Dir: dir, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	es, err = s.TakeKind(7, 10)
	if err != nil || len(es) != 1 || es[0].Payload[0] != 3 {
		t.Fatalf("after a reopen TakeKind(7) = %+v, %v; want record 3 alone", es, err)
	}
}
