package spool

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"
)

// seedSegments returns segment files: valid, torn, damaged, and garbage
// around valid records.
func seedSegments() [][]byte {
	h := segHeader()
	valid := h[:]
	for i := range 3 {
		r := rec(i, 20+i*7)
		valid = appendFrame(valid, &r)
	}
	empty := appendFrame(nil, &Record{})
	flipped := bytes.Clone(valid)
	flipped[segHeaderLen+frameHeader+5] ^= 1
	lenFlip := bytes.Clone(valid)
	lenFlip[segHeaderLen+8] ^= 0x40
	garbage := append([]byte("garbage\xf8\xc1SR"), valid[segHeaderLen:]...)
	garbage = append(garbage, frameMagic[:]...)
	return [][]byte{
		nil,
		h[:],
		valid,
		valid[:len(valid)-5],
		valid[:segHeaderLen+3],
		flipped,
		lenFlip,
		garbage,
		empty,
		append(bytes.Repeat(frameMagic[:], 8), 0xff, 0xff, 0xff, 0x7f),
	}
}

// FuzzScan: no input makes the reader panic; every record it returns is
// whole, in order, and has a valid checksum; valid and corrupt bytes add
// up to the input.
func FuzzScan(f *testing.F) {
	for _, s := range seedSegments() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		prev := 0
		good := 0
		bad, badBytes := scan(data, 0, func(fr frame) {
			if fr.off < prev || fr.n < 0 || fr.end() > len(data) {
				t.Fatalf("frame at %d of %d bytes: out of order or out of bounds (previous end %d, input %d)",
					fr.off, fr.n, prev, len(data))
			}
			if !bytes.Equal(data[fr.off:fr.off+4], frameMagic[:]) ||
				crc32.Checksum(data[fr.off+8:fr.end()], castagnoli) != binary.LittleEndian.Uint32(data[fr.off+4:]) {
				t.Fatalf("frame at %d returned with a bad magic or checksum", fr.off)
			}
			if int(binary.LittleEndian.Uint32(data[fr.off+8:])) != fr.n {
				t.Fatalf("frame at %d: length %d, header says %d", fr.off, fr.n, binary.LittleEndian.Uint32(data[fr.off+8:]))
			}
			good += fr.end() - fr.off
			prev = fr.end()
		})
		if good+badBytes != len(data) {
			t.Fatalf("%d valid + %d corrupt bytes != %d", good, badBytes, len(data))
		}
		if (badBytes == 0) != (bad == 0) {
			t.Fatalf("%d corrupt records of %d bytes", bad, badBytes)
		}
	})
}

// FuzzOpen: a spool directory holding any segment and acknowledgement
// bytes opens, and every record taken from it is intact.
func FuzzOpen(f *testing.F) {
	for _, s := range seedSegments() {
		f.Add(s, []byte(nil))
	}
	e := ackEntry(1, segHeaderLen)
	f.Add(seedSegments()[2], e[:])
	f.Fuzz(func(t *testing.T, seg, ack []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "000000001.spool"), seg, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "000000001.ack"), ack, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(context.Background(), Config{Dir: dir})
		if err != nil {
			if st, _ := parseSegHeader(seg); st == headerVersion {
				return // refused, as documented
			}
			t.Fatalf("Open: %v", err)
		}
		defer s.Close()
		es := takeAll(t, s, 3)
		for _, e := range es {
			g := s.segment(e.ID.seq)
			r := g.recs[e.ID.idx]
			fr, ok := parseFrame(seg, int(r.off))
			if !ok || !bytes.Equal(seg[fr.off+frameHeader:fr.end()], e.Payload) || fr.time != e.Time {
				t.Fatalf("record at %d taken but not intact in the input", r.off)
			}
		}
		if err := s.Ack(ids(es)...); err != nil {
			t.Fatal(err)
		}
		if st := s.Stats(); st.Pending.Records != 0 || st.Segments != 0 {
			t.Fatalf("after acknowledging all: %+v", st)
		}
	})
}
